//! Repositories: the paged list, a repository's page (description, star, tags grouped
//! by digest with the pull command, tag deletion, comments) and a tag's page.

use super::dashboard::RepositoryRow;
use super::{Chrome, Pager, page};
use crate::format;
use crate::markdown;
use crate::render::PageResult;
use crate::session::{NoFields, PagePath, PageQuery, Submitted, Viewer, see_other};
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_domain::inventory::{Platform, Tag};
use portcullis_domain::model::Id;
use portcullis_service::Services;
use portcullis_service::listing::ListParams;
use portcullis_service::repositories::RepositoryDetails;
use portcullis_storage::RepositoryFilter;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(askama::Template)]
#[template(path = "repositories.html")]
struct RepositoriesPage {
    chrome: Chrome,
    query: String,
    repositories: Vec<RepositoryRow>,
    pager: Pager,
    /// `name` or `updated` (most recently updated first).
    sort: &'static str,
    search_query: String,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    search: String,
    page: Option<i64>,
    sort: Option<String>,
}

pub async fn list(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<ListQuery>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let sort = match q.sort.as_deref() {
        Some("updated") => "updated",
        _ => "name",
    };
    let filter = RepositoryFilter {
        query: Some(q.search.trim().to_owned()).filter(|q| !q.is_empty()),
        ..RepositoryFilter::default()
    };
    let params = ListParams {
        page: q.page.unwrap_or(1).max(1),
        per_page: s.config().pagination.per_page,
        sort_attr: Some(
            if sort == "updated" {
                "updated_at"
            } else {
                "name"
            }
            .into(),
        ),
        sort_order: Some(if sort == "updated" { "desc" } else { "asc" }.into()),
        ..ListParams::default()
    };
    let found = s.repositories.list(Some(me), &filter, &params).await?;
    // The search and the order stay in the page links.
    let search = serde_urlencoded::to_string([("search", q.search.as_str())]).unwrap_or_default();
    let t = RepositoriesPage {
        chrome: Chrome::new(&s, &viewer, "Repositories", "repositories"),
        query: q.search,
        repositories: found.items.iter().map(RepositoryRow::new).collect(),
        pager: Pager::new(
            &found,
            &format!("/repositories?{search}&sort={sort}&"),
            s.config().pagination.before_after,
        ),
        sort,
        search_query: search,
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

/// One digest and the tags pointing at it (Portus groups them in one row).
pub struct TagGroup {
    pub first_id: i64,
    pub names: Vec<(i64, String, String)>,
    pub digest: String,
    pub image_id: String,
    pub author: String,
    pub size: String,
    pub platforms: String,
    pub pushed: String,
    pub pulled: String,
}

/// `os/architecture[/variant]`, as `docker` names a platform.
fn platform_name(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

fn platforms(tag: &Tag) -> String {
    tag.platforms
        .iter()
        .map(platform_name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl TagGroup {
    fn new(tags: &[Tag], pull_base: &str) -> Option<Self> {
        let first = tags.first()?;
        Some(TagGroup {
            first_id: first.id,
            names: tags
                .iter()
                .map(|t| {
                    (
                        t.id,
                        t.name.clone(),
                        format!("docker pull {pull_base}:{}", t.name),
                    )
                })
                .collect(),
            digest: first.digest.clone(),
            image_id: format::short_digest(&first.image_id),
            author: first.author_name.clone(),
            size: format::size(first.size),
            platforms: platforms(first),
            pushed: format::when(first.pushed_at),
            pulled: first.pulled_at.map(format::when).unwrap_or_default(),
        })
    }
}

pub struct CommentView {
    pub id: i64,
    pub author: String,
    pub body_html: String,
    pub when: String,
    pub deletable: bool,
}

#[derive(askama::Template)]
#[template(path = "repository.html")]
struct RepositoryPage {
    chrome: Chrome,
    id: i64,
    full_name: String,
    namespace_id: i64,
    namespace_name: String,
    pull_base: String,
    description: String,
    description_html: String,
    stars: i64,
    starred: bool,
    signed_in: bool,
    updatable: bool,
    destroyable: bool,
    groups: Vec<TagGroup>,
    comments: Vec<CommentView>,
}

fn pull_base(r: &RepositoryDetails) -> String {
    format!("{}/{}", r.registry_hostname, r.full_name)
}

pub async fn show(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath(id): PagePath<Id>,
) -> PageResult {
    if viewer.caller.is_none() && !s.config().anonymous_browsing.enabled {
        viewer.signed_in()?;
    }
    let me = viewer.caller.as_ref();
    let r = s.repositories.show(me, id).await?;
    let base = pull_base(&r);
    let groups = s
        .repositories
        .grouped_tags(me, id)
        .await?
        .iter()
        .filter_map(|g| TagGroup::new(g, &base))
        .collect();
    let comments = s
        .repositories
        .comments(me, id)
        .await?
        .into_iter()
        .map(|c| CommentView {
            id: c.id,
            deletable: me.is_some_and(|m| m.user.admin || c.user_id == Some(m.user.id)),
            author: c.author_name,
            body_html: markdown::render(&c.body),
            when: format::when(c.created_at),
        })
        .collect();
    let t = RepositoryPage {
        chrome: Chrome::new(&s, &viewer, &r.full_name, "repositories"),
        id,
        full_name: r.full_name.clone(),
        namespace_id: r.listing.repository.namespace_id,
        namespace_name: r.listing.namespace_name.clone(),
        pull_base: base,
        description_html: markdown::render(&r.listing.repository.description),
        description: r.listing.repository.description.clone(),
        stars: r.listing.stars,
        starred: r.listing.starred,
        signed_in: me.is_some(),
        updatable: r.updatable,
        destroyable: r.destroyable,
        groups,
        comments,
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

#[derive(Deserialize)]
pub struct StarForm {
    #[serde(default)]
    starred: String,
}

pub async fn star(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<StarForm>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.repositories
        .set_star(me, id, submitted.form.starred == "true")
        .await?;
    Ok(see_other(&format!("/repositories/{id}")))
}

#[derive(Deserialize)]
pub struct DescriptionForm {
    #[serde(default)]
    description: String,
}

pub async fn describe(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<DescriptionForm>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.repositories
        .update_description(me, id, &submitted.form.description)
        .await?;
    Ok(see_other(&format!("/repositories/{id}")))
}

#[derive(Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    body: String,
}

pub async fn comment(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<CommentForm>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.repositories
        .add_comment(me, id, &submitted.form.body)
        .await?;
    Ok(see_other(&format!("/repositories/{id}#comments")))
}

pub async fn delete_comment(
    State(s): State<Services>,
    PagePath((id, comment_id)): PagePath<(Id, Id)>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.repositories.delete_comment(me, id, comment_id).await?;
    Ok(see_other(&format!("/repositories/{id}#comments")))
}

/// Bulk delete: one checkbox per digest group, named `tag_<id of its first tag>`.
pub async fn delete_tags(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<BTreeMap<String, String>>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    let namespace_id = s
        .repositories
        .show(Some(me), id)
        .await?
        .listing
        .repository
        .namespace_id;
    let chosen: Vec<Id> = submitted
        .form
        .keys()
        .filter_map(|k| k.strip_prefix("tag_")?.parse().ok())
        .collect();
    for tag_id in chosen {
        let (tag, _) = s.repositories.tag(Some(me), tag_id).await?;
        if tag.repository_id != id {
            return Err(portcullis_domain::Error::NotFound("Tag").into());
        }
        s.repositories.delete_tag(me, tag_id).await?;
    }
    // Its last tag gone, the repository goes too: back to its namespace then.
    match s.repositories.show(Some(me), id).await {
        Ok(_) => Ok(see_other(&format!("/repositories/{id}"))),
        Err(portcullis_domain::Error::NotFound(_)) => {
            Ok(see_other(&format!("/namespaces/{namespace_id}")))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    let r = s.repositories.show(Some(me), id).await?;
    s.repositories.delete_repository(me, id).await?;
    Ok(see_other(&format!(
        "/namespaces/{}",
        r.listing.repository.namespace_id
    )))
}

#[derive(askama::Template)]
#[template(path = "tag.html")]
struct TagPage {
    chrome: Chrome,
    repository_id: i64,
    full_name: String,
    namespace_id: i64,
    namespace_name: String,
    name: String,
    pull: String,
    digest: String,
    media_type: String,
    image_id: String,
    author: String,
    size: String,
    pushed: String,
    pulled: String,
    /// (platform, digest, size)
    platforms: Vec<(String, String, String)>,
}

pub async fn tag(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath(id): PagePath<Id>,
) -> PageResult {
    if viewer.caller.is_none() && !s.config().anonymous_browsing.enabled {
        viewer.signed_in()?;
    }
    let (tag, r) = s.repositories.tag(viewer.caller.as_ref(), id).await?;
    let t = TagPage {
        chrome: Chrome::new(
            &s,
            &viewer,
            &format!("{}:{}", r.full_name, tag.name),
            "repositories",
        ),
        repository_id: r.listing.repository.id,
        full_name: r.full_name.clone(),
        namespace_id: r.listing.repository.namespace_id,
        namespace_name: r.listing.namespace_name.clone(),
        pull: format!("docker pull {}:{}", pull_base(&r), tag.name),
        name: tag.name.clone(),
        digest: tag.digest.clone(),
        media_type: tag.media_type.clone(),
        image_id: tag.image_id.clone(),
        author: tag.author_name.clone(),
        size: format::size(tag.size),
        pushed: format::when(tag.pushed_at),
        pulled: tag.pulled_at.map(format::when).unwrap_or_default(),
        platforms: tag
            .platforms
            .iter()
            .map(|p| (platform_name(p), p.digest.clone(), format::size(p.size)))
            .collect(),
    };
    page(&s, &viewer, StatusCode::OK, &t)
}
