//! Namespaces: listing, validation, creation, changes and deletion.

use crate::activity::Audit;
use crate::auth::Authenticated;
use crate::listing::{ListParams, Paged};
use crate::users::not_found_as;
use portcullis_domain::model::{
    Id, Namespace, NamespaceKind, NamespaceListing, Registry, Role, Team, Visibility,
};
use portcullis_domain::names::is_valid_namespace_name;
use portcullis_domain::policy::PolicyOptions;
use portcullis_domain::policy::{
    NamespaceFacts, can_change_namespace_team, can_change_visibility, can_create_namespace,
    can_delete, can_delete_namespace, can_pull, can_push, can_update_namespace, can_view_namespace,
    can_view_webhooks,
};
use portcullis_domain::{Error, Result};
use portcullis_storage::{NamespaceScope, NamespaceUpdate, NewNamespace};
use std::collections::BTreeMap;

pub const NAMESPACE_SORT: &[&str] = &["id", "name", "created_at", "updated_at", "visibility"];

/// A namespace with what the API shows alongside it.
#[derive(Debug, Clone)]
pub struct NamespaceDetails {
    pub namespace: Namespace,
    pub team: Team,
    pub registry: Registry,
    pub role: Option<Role>,
    pub pull: bool,
    pub push: bool,
    pub delete_images: bool,
    pub change_visibility: bool,
    /// The caller may see the namespace's webhooks.
    pub webhooks: bool,
    pub updatable: bool,
    pub destroyable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct NamespaceChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Name of the team to move the namespace to.
    pub team: Option<String>,
    pub visibility: Option<String>,
}

crate::service! {
    /// Namespaces: listing, validation, creation, changes and deletion.
    NamespaceService
}

impl NamespaceDetails {
    /// What `actor` (`None`: anonymous) may do with a listed namespace. Pure.
    pub(crate) fn new(
        listing: NamespaceListing,
        actor: Option<&Authenticated>,
        p: &PolicyOptions,
    ) -> Self {
        let ns = listing.namespace;
        let facts = NamespaceFacts {
            kind: ns.kind,
            visibility: ns.visibility,
            role: listing.role,
        };
        let subject = actor.map(Authenticated::subject);
        let s = subject.as_ref();
        NamespaceDetails {
            pull: can_pull(s, &facts),
            push: can_push(s, &facts, p),
            delete_images: can_delete(s, &facts, p),
            change_visibility: s.is_some_and(|s| can_change_visibility(s, &facts, p)),
            webhooks: s.is_some_and(|s| can_view_webhooks(s, &facts)),
            updatable: s.is_some_and(|s| can_update_namespace(s, &facts, p)),
            destroyable: ns.kind != NamespaceKind::Personal
                && s.is_some_and(|s| can_delete_namespace(s, &facts, p)),
            namespace: ns,
            team: listing.team,
            registry: listing.registry,
            role: listing.role,
        }
    }

    pub fn facts(&self) -> NamespaceFacts {
        NamespaceFacts {
            kind: self.namespace.kind,
            visibility: self.namespace.visibility,
            role: self.role,
        }
    }
}

fn namespace_audit<'a>(key: &'a str, ns: &Namespace) -> Audit<'a> {
    Audit::new(key, "namespace", Some(ns.id))
        .scope(Some(ns.id), Some(ns.team_id))
        .param("namespace_name", ns.name.clone())
}

impl NamespaceService {
    /// One activity per kind of change (Portus's keys).
    async fn audit_update(
        &self,
        actor: &Authenticated,
        before: &NamespaceDetails,
        update: &NamespaceUpdate,
    ) {
        let ns = &before.namespace;
        if let Some(name) = &update.name {
            namespace_audit("namespace.change_namespace_name", ns)
                .param("old", ns.name.clone())
                .param("new", name.clone())
                .record(&self.ctx, actor)
                .await;
        }
        if let Some(description) = update
            .description
            .as_ref()
            .filter(|d| **d != ns.description)
        {
            namespace_audit("namespace.change_namespace_description", ns)
                .param("old", ns.description.clone())
                .param("new", description.clone())
                .record(&self.ctx, actor)
                .await;
        }
        if let Some(team_id) = update.team_id.filter(|t| *t != ns.team_id) {
            namespace_audit("namespace.change_team", ns)
                .param("old", ns.team_id)
                .param("new", team_id)
                .record(&self.ctx, actor)
                .await;
        }
        if let Some(visibility) = update.visibility.filter(|v| *v != ns.visibility) {
            namespace_audit("namespace.change_visibility", ns)
                .param("visibility", visibility.as_str())
                .record(&self.ctx, actor)
                .await;
        }
    }
}

/// Result of `GET /namespaces/validate`.
#[derive(Debug, Clone)]
pub struct Validation {
    pub valid: bool,
    pub messages: BTreeMap<String, Vec<String>>,
}

impl NamespaceService {
    /// One namespace with what the caller may do in it; `Forbidden` when they may not
    /// even see it.
    pub async fn show_namespace(&self, actor: &Authenticated, id: Id) -> Result<NamespaceDetails> {
        let listing = self
            .ctx
            .store
            .namespace_listing(id, Some(actor.user.id))
            .await?
            .ok_or(Error::NotFound("Namespace"))?;
        let details = NamespaceDetails::new(listing, Some(actor), &self.ctx.policy);
        if !can_view_namespace(Some(&actor.subject()), &details.facts()) {
            return Err(Error::Forbidden);
        }
        Ok(details)
    }

    /// The namespaces the caller can see (admins: all), each with its team, registry
    /// and the caller's permissions, in one query.
    pub async fn list_namespaces(
        &self,
        actor: &Authenticated,
        params: &ListParams,
    ) -> Result<Paged<NamespaceDetails>> {
        let scope = if actor.user.admin {
            NamespaceScope::All
        } else {
            NamespaceScope::VisibleTo
        };
        let page = self
            .ctx
            .store
            .list_namespaces(
                scope,
                Some(actor.user.id),
                &params.to_page_request(NAMESPACE_SORT)?,
            )
            .await?;
        let items = page
            .items
            .into_iter()
            .map(|l| NamespaceDetails::new(l, Some(actor), &self.ctx.policy))
            .collect();
        Ok(params.paged(items, page.total))
    }

    /// The registry a new namespace goes to: the given one, or the only one there is.
    async fn target_registry(&self, registry_id: Option<Id>) -> Result<Registry> {
        if let Some(id) = registry_id {
            return self
                .ctx
                .store
                .registry_by_id(id)
                .await?
                .ok_or(Error::NotFound("Registry"));
        }
        let mut all = self.ctx.store.list_registries().await?;
        match all.len() {
            0 => Err(Error::Unprocessable(
                "no registry configured: create one first".into(),
            )),
            1 => Ok(all.remove(0)),
            _ => Err(Error::invalid(
                "registry_id",
                "is required when several registries exist",
            )),
        }
    }

    pub async fn validate_namespace(
        &self,
        name: &str,
        registry_id: Option<Id>,
    ) -> Result<Validation> {
        let mut messages = BTreeMap::new();
        if let Some(m) = self.namespace_name_problem(name, registry_id, None).await? {
            messages.insert("name".to_owned(), vec![m]);
        }
        Ok(Validation {
            valid: messages.is_empty(),
            messages,
        })
    }

    async fn namespace_name_problem(
        &self,
        name: &str,
        registry_id: Option<Id>,
        current: Option<Id>,
    ) -> Result<Option<String>> {
        if name.is_empty() {
            return Ok(Some("can't be blank".into()));
        }
        if !is_valid_namespace_name(name) {
            return Ok(Some(
                "can only contain lower case alphanumeric characters, with optional underscores, dashes or dots in the middle (at most 255 characters)".into(),
            ));
        }
        let registry = self.target_registry(registry_id).await?;
        let taken = self
            .ctx
            .store
            .namespace_by_name(registry.id, name)
            .await?
            .is_some_and(|n| Some(n.id) != current);
        Ok(taken.then(|| "has already been taken".to_owned()))
    }

    pub async fn create_namespace(
        &self,
        actor: &Authenticated,
        name: &str,
        team_name: &str,
        description: &str,
        registry_id: Option<Id>,
    ) -> Result<NamespaceDetails> {
        let team = self
            .ctx
            .store
            .team_by_name(team_name)
            .await?
            .filter(|t| !t.hidden)
            .ok_or(Error::NotFound("Team"))?;
        let role = self
            .ctx
            .store
            .membership(team.id, actor.user.id)
            .await?
            .map(|m| m.role);
        if !can_create_namespace(&actor.subject(), role, &self.ctx.policy) {
            return Err(actor.refusal());
        }
        let registry = self.target_registry(registry_id).await?;
        if let Some(problem) = self
            .namespace_name_problem(name, Some(registry.id), None)
            .await?
        {
            return Err(Error::invalid("name", problem));
        }
        let ns = self
            .ctx
            .store
            .create_namespace(
                &NewNamespace {
                    registry_id: registry.id,
                    team_id: team.id,
                    name: name.to_owned(),
                    description: description.to_owned(),
                    kind: NamespaceKind::Team,
                    visibility: Visibility::Private,
                    user_id: None,
                },
                self.ctx.clock.now(),
            )
            .await?;
        self.ctx.grants_changed();
        namespace_audit("namespace.create", &ns)
            .param("team", team.name.clone())
            .record(&self.ctx, actor)
            .await;
        self.show_namespace(actor, ns.id).await
    }

    /// Changes name, description, team or visibility; only the given fields are
    /// written, so concurrent changes of the others stay.
    pub async fn update_namespace(
        &self,
        actor: &Authenticated,
        id: Id,
        changes: NamespaceChanges,
    ) -> Result<NamespaceDetails> {
        let current = self.show_namespace(actor, id).await?;
        let ns = &current.namespace;
        let facts = current.facts();
        let subject = actor.subject();
        let policy = &self.ctx.policy;
        let mut update = NamespaceUpdate::default();
        if changes.name.is_some() || changes.description.is_some() {
            if !can_update_namespace(&subject, &facts, policy) {
                return Err(actor.refusal());
            }
            if let Some(name) = changes.name.filter(|n| *n != ns.name) {
                if ns.kind != NamespaceKind::Team {
                    return Err(Error::Unprocessable(
                        "global and personal namespaces cannot be renamed".into(),
                    ));
                }
                if let Some(problem) = self
                    .namespace_name_problem(&name, Some(ns.registry_id), Some(ns.id))
                    .await?
                {
                    return Err(Error::invalid("name", problem));
                }
                update.name = Some(name);
            }
            update.description = changes.description;
        }
        if let Some(team_name) = changes.team {
            if !can_change_namespace_team(&subject, &facts, policy) {
                return Err(actor.refusal());
            }
            let team = self
                .ctx
                .store
                .team_by_name(&team_name)
                .await?
                .filter(|t| !t.hidden)
                .ok_or(Error::NotFound("Team"))?;
            update.team_id = Some(team.id);
        }
        if let Some(v) = changes.visibility {
            let visibility = Visibility::parse(&v).ok_or_else(|| {
                Error::invalid("visibility", "must be one of private, protected, public")
            })?;
            if !can_change_visibility(&subject, &facts, policy) {
                return Err(actor.refusal());
            }
            if ns.kind == NamespaceKind::Global && visibility == Visibility::Private {
                return Err(Error::invalid(
                    "visibility",
                    "the global namespace cannot be private",
                ));
            }
            update.visibility = Some(visibility);
        }
        if update == NamespaceUpdate::default() {
            // Nothing to change; also refuse the empty write to a read-only credential.
            actor.require_writable()?;
            return Ok(current);
        }
        self.ctx
            .store
            .update_namespace(ns.id, &update, self.ctx.clock.now())
            .await
            .map_err(not_found_as("Namespace"))?;
        self.ctx.grants_changed();
        self.audit_update(actor, &current, &update).await;
        self.show_namespace(actor, id).await
    }

    pub async fn delete_namespace(&self, actor: &Authenticated, id: Id) -> Result<()> {
        let details = self.show_namespace(actor, id).await?;
        if details.namespace.kind == NamespaceKind::Personal {
            return Err(Error::Unprocessable(
                "Cannot remove personal namespace".into(),
            ));
        }
        if !details.destroyable {
            return Err(actor.refusal());
        }
        // Its images go from the registry first (Portus deleted only its rows and left
        // the images behind, invisible and unreachable). A registry failure stops here,
        // with the namespace and what is left of it still listed.
        let repositories = self
            .ctx
            .store
            .list_repositories(
                Some(actor.user.id),
                portcullis_storage::RepositoryScope::All,
                &portcullis_storage::RepositoryFilter {
                    namespace_id: Some(details.namespace.id),
                    ..Default::default()
                },
                portcullis_storage::PageRequest::default(),
            )
            .await?;
        let repository_service = crate::RepositoryService::new(self.ctx.clone());
        for listing in repositories.items {
            repository_service
                .delete_repository(actor, listing.repository.id)
                .await?;
        }
        self.ctx
            .store
            .delete_namespace(details.namespace.id)
            .await
            .map_err(not_found_as("Namespace"))?;
        self.ctx.grants_changed();
        // Portus: the namespace is gone, so the activity hangs on its registry.
        Audit::new("registry.delete", "registry", Some(details.registry.id))
            .scope(None, Some(details.team.id))
            .param("namespace_name", details.namespace.name.clone())
            .param("team_name", details.team.name.clone())
            .param("registry_id", details.registry.id)
            .record(&self.ctx, actor)
            .await;
        Ok(())
    }
}
