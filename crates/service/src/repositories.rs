//! Repositories and tags as the API shows them: every list filtered by the policy (a
//! user sees exactly what they may pull), deletion through the registry, stars,
//! comments and the activity feed.

use crate::auth::Authenticated;
use crate::inventory::registry_client;
use crate::listing::{ListParams, Paged};
use crate::users::not_found_as;
use portcullis_domain::inventory::{Activity, Comment, RepositoryListing, Tag};
use portcullis_domain::model::{Id, NamespaceListing};
use portcullis_domain::policy::{NamespaceFacts, can_delete, can_pull, can_update_namespace};
use portcullis_domain::{Error, Result};
use portcullis_registry::inventory_client::ClientError;
use portcullis_storage::{ActivityScope, Actor, RepositoryFilter, RepositoryScope};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

pub const REPOSITORY_SORT: &[&str] = &["id", "name", "created_at", "updated_at"];
pub const TAG_SORT: &[&str] = &["id", "name", "size", "pushed_at", "pulled_at", "created_at"];
const COMMENT_MAX_CHARS: usize = 10_000;

/// A repository with what the caller may do with it.
#[derive(Debug, Clone)]
pub struct RepositoryDetails {
    pub listing: RepositoryListing,
    /// `ns/name`, or the bare name in the global namespace.
    pub full_name: String,
    pub registry_hostname: String,
    pub updatable: bool,
    pub destroyable: bool,
}

crate::service! {
    /// Repositories, tags, stars, comments and activities.
    RepositoryService
}

fn facts(ns: &NamespaceListing) -> NamespaceFacts {
    NamespaceFacts {
        kind: ns.namespace.kind,
        visibility: ns.namespace.visibility,
        role: ns.role,
    }
}

impl RepositoryService {
    /// What the caller may see and do with a repository of namespace `ns`; `None` when
    /// they may not pull from it (then not even its existence is shown).
    fn describe(
        &self,
        actor: Option<&Authenticated>,
        listing: RepositoryListing,
        ns: &NamespaceListing,
    ) -> Option<RepositoryDetails> {
        let subject = actor.map(Authenticated::subject);
        let f = facts(ns);
        if !can_pull(subject.as_ref(), &f) {
            return None;
        }
        let p = &self.ctx.policy;
        Some(RepositoryDetails {
            full_name: listing.full_name(),
            registry_hostname: ns
                .registry
                .external_hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| ns.registry.hostname.clone()),
            updatable: subject
                .as_ref()
                .is_some_and(|s| can_update_namespace(s, &f, p)),
            destroyable: can_delete(subject.as_ref(), &f, p),
            listing,
        })
    }

    async fn namespace_of(
        &self,
        actor: Option<&Authenticated>,
        listing: &RepositoryListing,
    ) -> Result<Option<NamespaceListing>> {
        Ok(self
            .ctx
            .store
            .namespace_listing(listing.repository.namespace_id, actor.map(|a| a.user.id))
            .await?)
    }

    /// One repository the caller may pull; `NotFound` otherwise (as for a missing one).
    pub async fn show(&self, actor: Option<&Authenticated>, id: Id) -> Result<RepositoryDetails> {
        let listing = self
            .ctx
            .store
            .repository_listing(id, actor.map(|a| a.user.id))
            .await?
            .ok_or(Error::NotFound("Repository"))?;
        let ns = self.namespace_of(actor, &listing).await?;
        ns.and_then(|ns| self.describe(actor, listing, &ns))
            .ok_or(Error::NotFound("Repository"))
    }

    /// The repositories the caller may pull: one query for the page, one per distinct
    /// namespace on it (a page is usually a few namespaces).
    pub async fn list(
        &self,
        actor: Option<&Authenticated>,
        filter: &RepositoryFilter,
        params: &ListParams,
    ) -> Result<Paged<RepositoryDetails>> {
        let scope = match actor {
            Some(a) if a.user.admin => RepositoryScope::All,
            Some(_) => RepositoryScope::PullableBy,
            None => RepositoryScope::Public,
        };
        let page = self
            .ctx
            .store
            .list_repositories(
                actor.map(|a| a.user.id),
                scope,
                filter,
                params.to_page_request(REPOSITORY_SORT)?,
            )
            .await?;
        let mut namespaces: HashMap<Id, Option<NamespaceListing>> = HashMap::new();
        let mut items = Vec::with_capacity(page.items.len());
        for listing in page.items {
            let ns = match namespaces.entry(listing.repository.namespace_id) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(self.namespace_of(actor, &listing).await?),
            };
            // The scope already filtered by pull rights; a namespace deleted meanwhile
            // or a rule the SQL does not know drops the row.
            if let Some(details) = ns.as_ref().and_then(|ns| self.describe(actor, listing, ns)) {
                items.push(details);
            }
        }
        Ok(params.paged(items, page.total))
    }

    pub async fn update_description(
        &self,
        actor: &Authenticated,
        id: Id,
        description: &str,
    ) -> Result<RepositoryDetails> {
        let details = self.show(Some(actor), id).await?;
        if !details.updatable {
            return Err(actor.refusal());
        }
        self.ctx
            .store
            .update_repository_description(id, description, self.ctx.clock.now())
            .await
            .map_err(not_found_as("Repository"))?;
        self.show(Some(actor), id).await
    }

    pub async fn tags(&self, actor: Option<&Authenticated>, id: Id) -> Result<Vec<Tag>> {
        self.show(actor, id).await?;
        Ok(self.ctx.store.tags_of_repository(id).await?)
    }

    /// Tags grouped by digest, newest group first (Portus's `tags/grouped`).
    pub async fn grouped_tags(
        &self,
        actor: Option<&Authenticated>,
        id: Id,
    ) -> Result<Vec<Vec<Tag>>> {
        let tags = self.tags(actor, id).await?;
        // Group index by digest: a linear search per tag was quadratic, seconds for a
        // repository with thousands of images.
        let mut by_digest: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<Vec<Tag>> = Vec::new();
        for tag in tags {
            match by_digest.get(&tag.digest) {
                Some(&i) => groups[i].push(tag),
                None => {
                    by_digest.insert(tag.digest.clone(), groups.len());
                    groups.push(vec![tag]);
                }
            }
        }
        Ok(groups)
    }

    pub async fn tag(
        &self,
        actor: Option<&Authenticated>,
        tag_id: Id,
    ) -> Result<(Tag, RepositoryDetails)> {
        let tag = self
            .ctx
            .store
            .tag_by_id(tag_id)
            .await?
            .ok_or(Error::NotFound("Tag"))?;
        let repository = self
            .show(actor, tag.repository_id)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => Error::NotFound("Tag"),
                other => other,
            })?;
        Ok((tag, repository))
    }

    /// Every tag (admins only, as Portus).
    pub async fn all_tags(&self, actor: &Authenticated, params: &ListParams) -> Result<Paged<Tag>> {
        actor.require_admin()?;
        let page = self
            .ctx
            .store
            .list_tags(params.to_page_request(TAG_SORT)?)
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    /// Deletes the tag's manifest in the registry, so every tag sharing its digest goes
    /// (as the registry does), then the inventory rows.
    pub async fn delete_tag(&self, actor: &Authenticated, tag_id: Id) -> Result<Vec<String>> {
        let (tag, repository) = self.tag(Some(actor), tag_id).await?;
        if !repository.destroyable {
            return Err(actor.refusal());
        }
        self.delete_digest(actor, &repository, &tag.digest).await
    }

    /// Deletes every manifest of the repository in the registry, then the repository.
    pub async fn delete_repository(&self, actor: &Authenticated, id: Id) -> Result<()> {
        let repository = self.show(Some(actor), id).await?;
        if !repository.destroyable {
            return Err(actor.refusal());
        }
        let mut digests: Vec<String> = self
            .ctx
            .store
            .tags_of_repository(id)
            .await?
            .into_iter()
            .map(|t| t.digest)
            .collect();
        digests.sort();
        digests.dedup();
        for digest in digests {
            self.delete_digest(actor, &repository, &digest).await?;
        }
        // The last digest removed the repository; one without tags goes now.
        match self
            .ctx
            .store
            .delete_repository(id, &actor_of(actor), self.ctx.clock.now())
            .await
        {
            Ok(()) | Err(portcullis_storage::StoreError::NotFound) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_digest(
        &self,
        actor: &Authenticated,
        repository: &RepositoryDetails,
        digest: &str,
    ) -> Result<Vec<String>> {
        let registry = self
            .ctx
            .store
            .registry_by_id(repository.listing.registry_id)
            .await?
            .ok_or(Error::NotFound("Registry"))?;
        let client = registry_client(&self.ctx, &registry)?;
        match client.delete_manifest(&repository.full_name, digest).await {
            Ok(()) | Err(ClientError::NotFound(_)) => {}
            Err(ClientError::DeleteDisabled(_)) => {
                return Err(Error::Unprocessable(
                    "the registry does not allow deletes: set storage.delete.enabled: true in its configuration".into(),
                ));
            }
            Err(e) if e.is_transient() => {
                return Err(Error::Unavailable(e.to_string().into()));
            }
            Err(e) => return Err(Error::Unprocessable(format!("the registry refused: {e}"))),
        }
        Ok(self
            .ctx
            .store
            .delete_tags_by_digest(
                repository.listing.repository.namespace_id,
                &repository.listing.repository.name,
                digest,
                &actor_of(actor),
                None,
                self.ctx.clock.now(),
            )
            .await?)
    }

    /// Stars (or unstars) a repository the caller may pull.
    pub async fn set_star(
        &self,
        actor: &Authenticated,
        id: Id,
        starred: bool,
    ) -> Result<RepositoryDetails> {
        actor.require_writable()?;
        self.show(Some(actor), id).await?;
        self.ctx
            .store
            .set_star(actor.user.id, id, starred, self.ctx.clock.now())
            .await
            .map_err(not_found_as("Repository"))?;
        self.show(Some(actor), id).await
    }

    pub async fn comments(&self, actor: Option<&Authenticated>, id: Id) -> Result<Vec<Comment>> {
        self.show(actor, id).await?;
        Ok(self.ctx.store.comments_of_repository(id).await?)
    }

    /// Anyone who may pull may comment (Portus).
    pub async fn add_comment(&self, actor: &Authenticated, id: Id, body: &str) -> Result<Comment> {
        actor.require_writable()?;
        self.show(Some(actor), id).await?;
        let body = body.trim();
        if body.is_empty() {
            return Err(Error::invalid("body", "can't be blank"));
        }
        if body.chars().count() > COMMENT_MAX_CHARS {
            return Err(Error::invalid(
                "body",
                format!("is too long (at most {COMMENT_MAX_CHARS} characters)"),
            ));
        }
        self.ctx
            .store
            .create_comment(
                id,
                actor.user.id,
                &actor.user.username,
                body,
                self.ctx.clock.now(),
            )
            .await
            .map_err(not_found_as("Repository"))
    }

    /// The author or an admin deletes a comment.
    pub async fn delete_comment(
        &self,
        actor: &Authenticated,
        id: Id,
        comment_id: Id,
    ) -> Result<()> {
        actor.require_writable()?;
        self.show(Some(actor), id).await?;
        let comment = self
            .ctx
            .store
            .comment_by_id(comment_id)
            .await?
            .filter(|c| c.repository_id == id)
            .ok_or(Error::NotFound("Comment"))?;
        if !(actor.user.admin || comment.user_id == Some(actor.user.id)) {
            return Err(actor.refusal());
        }
        self.ctx.store.delete_comment(comment_id).await?;
        Ok(())
    }

    /// Portus's dashboard feed for the caller; everything for admins asking for `all`.
    pub async fn activities(
        &self,
        actor: &Authenticated,
        all: bool,
        params: &ListParams,
    ) -> Result<Paged<Activity>> {
        let scope = if all {
            actor.require_admin()?;
            ActivityScope::All
        } else {
            ActivityScope::DashboardOf(actor.user.id)
        };
        let mut page_request = params.to_page_request(&["id"])?;
        // Newest first unless asked otherwise.
        page_request.descending = params.sort_order.as_deref() != Some("asc");
        let page = self.ctx.store.list_activities(scope, page_request).await?;
        Ok(params.paged(page.items, page.total))
    }
}

fn actor_of(a: &Authenticated) -> Actor {
    Actor {
        user_id: Some(a.user.id),
        name: a.user.username.clone(),
    }
}
