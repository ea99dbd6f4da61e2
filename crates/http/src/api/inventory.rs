//! `/api/v1/repositories`, `/api/v1/tags`, `/api/v1/namespaces/:id/repositories`,
//! stars, comments, `/api/v1/activities`, and the admin views of the background work:
//! `/api/v1/events` and `/api/v1/jobs`.

use super::entities::ErrorEntity;
use super::{PageQuery, paginated};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller, OptionalCaller};
use crate::rfc3339 as time;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_domain::Error;
use portcullis_domain::inventory::{
    Activity, Comment, EventStatus, Job, JobState, Platform, RegistryEvent, Tag,
};
use portcullis_service::Services;
use portcullis_service::repositories::RepositoryDetails;
use portcullis_storage::{EventFilter, JobFilter, RepositoryFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct IdName {
    pub id: Option<i64>,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RepositoryEntity {
    pub id: i64,
    pub name: String,
    /// `namespace/name`, or the bare name in the global namespace.
    pub full_name: String,
    pub created_at: String,
    pub updated_at: String,
    pub description: String,
    pub namespace: IdName,
    pub stars: i64,
    pub tags_count: i64,
    pub registry_hostname: String,
    pub starred: bool,
    pub updatable: bool,
    pub destroyable: bool,
}

impl From<&RepositoryDetails> for RepositoryEntity {
    fn from(d: &RepositoryDetails) -> Self {
        let r = &d.listing.repository;
        Self {
            id: r.id,
            name: r.name.clone(),
            full_name: d.full_name.clone(),
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
            description: r.description.clone(),
            namespace: IdName {
                id: Some(r.namespace_id),
                name: d.listing.namespace_name.clone(),
            },
            stars: d.listing.stars,
            tags_count: d.listing.tags,
            registry_hostname: d.registry_hostname.clone(),
            starred: d.listing.starred,
            updatable: d.updatable,
            destroyable: d.destroyable,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformEntity {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub digest: String,
    pub size: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagEntity {
    pub id: i64,
    pub name: String,
    pub author: IdName,
    pub digest: String,
    /// The config digest without `sha256:`; empty for a multi-arch index.
    pub image_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub size: i64,
    /// Portus's scan state; scanning is not built, so always 0 (pending).
    pub scanned: i64,
    /// Null while scanning is not configured (as Portus).
    pub vulnerabilities: Option<Vec<String>>,
    /// Beyond Portus.
    pub repository_id: i64,
    pub media_type: String,
    pub platforms: Vec<PlatformEntity>,
    pub pushed_at: String,
    pub pulled_at: Option<String>,
}

fn platform(p: &Platform) -> PlatformEntity {
    PlatformEntity {
        os: p.os.clone(),
        architecture: p.architecture.clone(),
        variant: p.variant.clone(),
        digest: p.digest.clone(),
        size: p.size,
    }
}

impl From<&Tag> for TagEntity {
    fn from(t: &Tag) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            author: IdName {
                id: t.author_id,
                name: t.author_name.clone(),
            },
            digest: t.digest.clone(),
            image_id: t.image_id.clone(),
            created_at: time(t.created_at),
            updated_at: time(t.updated_at),
            size: t.size,
            scanned: 0,
            vulnerabilities: None,
            repository_id: t.repository_id,
            media_type: t.media_type.clone(),
            platforms: t.platforms.iter().map(platform).collect(),
            pushed_at: time(t.pushed_at),
            pulled_at: t.pulled_at.map(time),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommentEntity {
    pub id: i64,
    pub repository_id: i64,
    pub created_at: String,
    pub updated_at: String,
    pub body: String,
    pub author: IdName,
}

impl From<&Comment> for CommentEntity {
    fn from(c: &Comment) -> Self {
        Self {
            id: c.id,
            repository_id: c.repository_id,
            created_at: time(c.created_at),
            updated_at: time(c.updated_at),
            body: c.body.clone(),
            author: IdName {
                id: c.user_id,
                name: c.author_name.clone(),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityEntity {
    pub id: i64,
    pub key: String,
    pub owner: IdName,
    pub trackable_type: String,
    pub trackable_id: Option<i64>,
    pub recipient_type: Option<String>,
    pub recipient_id: Option<i64>,
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    pub created_at: String,
}

impl From<&Activity> for ActivityEntity {
    fn from(a: &Activity) -> Self {
        Self {
            id: a.id,
            key: a.key.clone(),
            owner: IdName {
                id: a.owner_id,
                name: a.owner_name.clone(),
            },
            trackable_type: a.trackable_type.clone(),
            trackable_id: a.trackable_id,
            recipient_type: a.recipient_type.clone(),
            recipient_id: a.recipient_id,
            parameters: serde_json::to_value(&a.parameters).unwrap_or_default(),
            created_at: time(a.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventEntity {
    pub id: i64,
    pub event_id: String,
    pub registry_id: Option<i64>,
    /// `pending`, `done`, `failed`, `ignored` or `unknown_registry`.
    pub status: String,
    pub action: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub actor: Option<String>,
    pub request_host: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub occurred_at: String,
    pub received_at: String,
    pub processed_at: Option<String>,
    /// The event as the registry sent it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<&RegistryEvent> for EventEntity {
    fn from(e: &RegistryEvent) -> Self {
        Self {
            id: e.id,
            event_id: e.event_id.clone(),
            registry_id: e.registry_id,
            status: e.status.as_str().to_owned(),
            action: e.action.clone(),
            repository: e.repository.clone(),
            tag: e.tag.clone(),
            digest: e.digest.clone(),
            media_type: e.media_type.clone(),
            actor: e.actor.clone(),
            request_host: e.request_host.clone(),
            attempts: e.attempts,
            error: e.error.clone(),
            occurred_at: time(e.occurred_at),
            received_at: time(e.received_at),
            processed_at: e.processed_at.map(time),
            data: serde_json::from_str(&e.data).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobEntity {
    pub id: i64,
    pub kind: String,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: String,
    pub lease_until: Option<String>,
    pub worker: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl From<&Job> for JobEntity {
    fn from(j: &Job) -> Self {
        Self {
            id: j.id,
            kind: j.kind.clone(),
            state: j.state.as_str().to_owned(),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: time(j.run_at),
            lease_until: j.lease_until.map(time),
            worker: j.worker.clone(),
            last_error: j.last_error.clone(),
            payload: serde_json::from_str(&j.payload).unwrap_or_default(),
            created_at: time(j.created_at),
            updated_at: time(j.updated_at),
            finished_at: j.finished_at.map(time),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepositoryQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    all: Option<bool>,
    sort_attr: Option<String>,
    sort_order: Option<String>,
    /// Beyond Portus: repositories whose (namespace) name contains this.
    q: Option<String>,
    /// Beyond Portus: only those the caller starred.
    starred: Option<bool>,
}

impl RepositoryQuery {
    fn page(&self) -> PageQuery {
        PageQuery {
            page: self.page,
            per_page: self.per_page,
            all: self.all,
            sort_attr: self.sort_attr.clone(),
            sort_order: self.sort_order.clone(),
        }
    }
    fn filter(&self, namespace_id: Option<i64>) -> RepositoryFilter {
        RepositoryFilter {
            namespace_id,
            query: self.q.clone().filter(|q| !q.trim().is_empty()),
            starred_only: self.starred.unwrap_or(false),
        }
    }
}

fn repositories_response(
    path: &str,
    page: &portcullis_service::listing::Paged<RepositoryDetails>,
) -> Response {
    let items: Vec<RepositoryEntity> = page.items.iter().map(RepositoryEntity::from).collect();
    paginated(path, page, items)
}

/// Repositories the caller may pull (anonymous: public ones, when anonymous browsing
/// is on).
#[utoipa::path(get, path = "/api/v1/repositories", tag = "repositories", params(RepositoryQuery), responses((status = 200, body = [RepositoryEntity])))]
pub async fn list_repositories(
    State(s): State<Services>,
    OptionalCaller(me): OptionalCaller,
    ApiQuery(q): ApiQuery<RepositoryQuery>,
) -> ApiResult<Response> {
    let me = anonymous_allowed(&s, me)?;
    let page = s
        .repositories
        .list(me.as_ref(), &q.filter(None), &q.page().params())
        .await?;
    Ok(repositories_response("/api/v1/repositories", &page))
}

/// Anonymous callers browse only when `anonymous_browsing.enabled`.
fn anonymous_allowed(
    s: &Services,
    me: Option<portcullis_service::Authenticated>,
) -> Result<Option<portcullis_service::Authenticated>, Error> {
    if me.is_none() && !s.config().anonymous_browsing.enabled {
        return Err(Error::Unauthenticated);
    }
    Ok(me)
}

/// Repositories of a namespace.
#[utoipa::path(get, path = "/api/v1/namespaces/{id}/repositories", tag = "namespaces", params(("id" = i64, Path), RepositoryQuery), responses((status = 200, body = [RepositoryEntity]), (status = 404, body = ErrorEntity)))]
pub async fn namespace_repositories(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<RepositoryQuery>,
) -> ApiResult<Response> {
    s.namespaces.show_namespace(&me, id).await?;
    let page = s
        .repositories
        .list(Some(&me), &q.filter(Some(id)), &q.page().params())
        .await?;
    Ok(repositories_response(
        &format!("/api/v1/namespaces/{id}/repositories"),
        &page,
    ))
}

/// A repository.
#[utoipa::path(get, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)), responses((status = 200, body = RepositoryEntity), (status = 404, body = ErrorEntity)))]
pub async fn show_repository(
    State(s): State<Services>,
    OptionalCaller(me): OptionalCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RepositoryEntity>> {
    let me = anonymous_allowed(&s, me)?;
    Ok(Json(RepositoryEntity::from(
        &s.repositories.show(me.as_ref(), id).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RepositoryFields {
    description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateRepository {
    repository: RepositoryFields,
}

/// Change the description (namespace owners and admins).
#[utoipa::path(put, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)), request_body = UpdateRepository,
    responses((status = 200, body = RepositoryEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn update_repository(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<UpdateRepository>,
) -> ApiResult<Json<RepositoryEntity>> {
    Ok(Json(RepositoryEntity::from(
        &s.repositories
            .update_description(&me, id, &b.repository.description)
            .await?,
    )))
}

/// Delete a repository: every manifest in the registry, then the repository.
#[utoipa::path(delete, path = "/api/v1/repositories/{id}", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity), (status = 503, body = ErrorEntity)))]
pub async fn destroy_repository(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    s.repositories.delete_repository(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The repository's tags, newest first.
#[utoipa::path(get, path = "/api/v1/repositories/{id}/tags", tag = "repositories", params(("id" = i64, Path)), responses((status = 200, body = [TagEntity]), (status = 404, body = ErrorEntity)))]
pub async fn repository_tags(
    State(s): State<Services>,
    OptionalCaller(me): OptionalCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<TagEntity>>> {
    let me = anonymous_allowed(&s, me)?;
    let tags = s.repositories.tags(me.as_ref(), id).await?;
    Ok(Json(tags.iter().map(TagEntity::from).collect()))
}

/// Tags grouped by digest, newest group first.
#[utoipa::path(get, path = "/api/v1/repositories/{id}/tags/grouped", tag = "repositories", params(("id" = i64, Path)), responses((status = 200, body = [Vec<TagEntity>]), (status = 404, body = ErrorEntity)))]
pub async fn grouped_tags(
    State(s): State<Services>,
    OptionalCaller(me): OptionalCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<Vec<TagEntity>>>> {
    let me = anonymous_allowed(&s, me)?;
    let groups = s.repositories.grouped_tags(me.as_ref(), id).await?;
    Ok(Json(
        groups
            .iter()
            .map(|g| g.iter().map(TagEntity::from).collect())
            .collect(),
    ))
}

/// A tag of the repository.
#[utoipa::path(get, path = "/api/v1/repositories/{id}/tags/{tag_id}", tag = "repositories", params(("id" = i64, Path), ("tag_id" = i64, Path)), responses((status = 200, body = TagEntity), (status = 404, body = ErrorEntity)))]
pub async fn repository_tag(
    State(s): State<Services>,
    OptionalCaller(me): OptionalCaller,
    ApiPath((id, tag_id)): ApiPath<(i64, i64)>,
) -> ApiResult<Json<TagEntity>> {
    let me = anonymous_allowed(&s, me)?;
    let (tag, _) = s.repositories.tag(me.as_ref(), tag_id).await?;
    if tag.repository_id != id {
        return Err(Error::NotFound("Tag").into());
    }
    Ok(Json(TagEntity::from(&tag)))
}

/// Every tag (admins).
#[utoipa::path(get, path = "/api/v1/tags", tag = "repositories", params(PageQuery), responses((status = 200, body = [TagEntity]), (status = 403, body = ErrorEntity)))]
pub async fn list_tags(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let page = s.repositories.all_tags(&me, &q.params()).await?;
    let items: Vec<TagEntity> = page.items.iter().map(TagEntity::from).collect();
    Ok(paginated("/api/v1/tags", &page, items))
}

/// A tag.
#[utoipa::path(get, path = "/api/v1/tags/{id}", tag = "repositories", params(("id" = i64, Path)), responses((status = 200, body = TagEntity), (status = 404, body = ErrorEntity)))]
pub async fn show_tag(
    State(s): State<Services>,
    OptionalCaller(me): OptionalCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TagEntity>> {
    let me = anonymous_allowed(&s, me)?;
    Ok(Json(TagEntity::from(
        &s.repositories.tag(me.as_ref(), id).await?.0,
    )))
}

/// Delete a tag: its manifest goes from the registry, and with it every tag sharing
/// the digest (as the registry does); the repository goes when it is empty.
#[utoipa::path(delete, path = "/api/v1/tags/{id}", tag = "repositories", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity), (status = 503, body = ErrorEntity)))]
pub async fn destroy_tag(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    s.repositories.delete_tag(&me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Star a repository.
#[utoipa::path(post, path = "/api/v1/repositories/{id}/star", tag = "repositories", params(("id" = i64, Path)), responses((status = 200, body = RepositoryEntity), (status = 404, body = ErrorEntity)))]
pub async fn star(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RepositoryEntity>> {
    Ok(Json(RepositoryEntity::from(
        &s.repositories.set_star(&me, id, true).await?,
    )))
}

/// Remove the caller's star.
#[utoipa::path(delete, path = "/api/v1/repositories/{id}/star", tag = "repositories", params(("id" = i64, Path)), responses((status = 200, body = RepositoryEntity), (status = 404, body = ErrorEntity)))]
pub async fn unstar(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RepositoryEntity>> {
    Ok(Json(RepositoryEntity::from(
        &s.repositories.set_star(&me, id, false).await?,
    )))
}

/// Comments on a repository, oldest first.
#[utoipa::path(get, path = "/api/v1/repositories/{id}/comments", tag = "repositories", params(("id" = i64, Path)), responses((status = 200, body = [CommentEntity]), (status = 404, body = ErrorEntity)))]
pub async fn comments(
    State(s): State<Services>,
    OptionalCaller(me): OptionalCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<CommentEntity>>> {
    let me = anonymous_allowed(&s, me)?;
    let list = s.repositories.comments(me.as_ref(), id).await?;
    Ok(Json(list.iter().map(CommentEntity::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CommentFields {
    body: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateComment {
    comment: CommentFields,
}

/// Comment on a repository the caller may pull.
#[utoipa::path(post, path = "/api/v1/repositories/{id}/comments", tag = "repositories", params(("id" = i64, Path)), request_body = CreateComment,
    responses((status = 201, body = CommentEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create_comment(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<CreateComment>,
) -> ApiResult<Response> {
    let c = s.repositories.add_comment(&me, id, &b.comment.body).await?;
    Ok((StatusCode::CREATED, Json(CommentEntity::from(&c))).into_response())
}

/// Delete a comment (its author or an admin).
#[utoipa::path(delete, path = "/api/v1/repositories/{id}/comments/{comment_id}", tag = "repositories", params(("id" = i64, Path), ("comment_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn destroy_comment(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((id, comment_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    s.repositories.delete_comment(&me, id, comment_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    all: Option<bool>,
    sort_order: Option<String>,
    /// `csv`: the admin export of every activity.
    format: Option<String>,
}

/// The caller's dashboard activities (newest first); admins get every activity as CSV
/// with `?format=csv` or `Accept: text/csv`.
#[utoipa::path(get, path = "/api/v1/activities", tag = "repositories", params(ActivityQuery), responses((status = 200, body = [ActivityEntity]), (status = 403, body = ErrorEntity)))]
pub async fn activities(
    State(s): State<Services>,
    Caller(me): Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> ApiResult<Response> {
    let wants_csv = q.format.as_deref() == Some("csv")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"));
    let params = PageQuery {
        page: q.page,
        per_page: q.per_page,
        all: Some(q.all.unwrap_or(false) || wants_csv),
        sort_attr: None,
        sort_order: q.sort_order.clone(),
    }
    .params();
    let page = s.repositories.activities(&me, wants_csv, &params).await?;
    if wants_csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"activities.csv\"",
                ),
            ],
            activities_csv(&page.items),
        )
            .into_response());
    }
    let items: Vec<ActivityEntity> = page.items.iter().map(ActivityEntity::from).collect();
    Ok(paginated("/api/v1/activities", &page, items))
}

/// One line per activity: time, key, owner, object and its parameters. Cells are
/// quoted, and a leading `=`, `+`, `-` or `@` is defused so a spreadsheet never runs
/// a pushed tag name as a formula.
pub fn activities_csv(items: &[Activity]) -> String {
    fn cell(v: &str) -> String {
        let defused = if v.starts_with(['=', '+', '-', '@']) {
            format!("'{v}")
        } else {
            v.to_owned()
        };
        format!("\"{}\"", defused.replace('"', "\"\""))
    }
    let mut out = String::from("created_at,key,owner,trackable_type,trackable_id,parameters\r\n");
    for a in items {
        let row = [
            time(a.created_at),
            a.key.clone(),
            a.owner_name.clone(),
            a.trackable_type.clone(),
            a.trackable_id.map(|i| i.to_string()).unwrap_or_default(),
            serde_json::to_string(&a.parameters).unwrap_or_default(),
        ];
        out.push_str(&row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    all: Option<bool>,
    sort_attr: Option<String>,
    sort_order: Option<String>,
    /// `pending`, `done`, `failed`, `ignored` or `unknown_registry`.
    status: Option<String>,
    action: Option<String>,
    repository: Option<String>,
    registry_id: Option<i64>,
}

/// Received registry notifications with their processing status (admins).
#[utoipa::path(get, path = "/api/v1/events", tag = "background", params(EventQuery), responses((status = 200, body = [EventEntity]), (status = 400, body = ErrorEntity), (status = 403, body = ErrorEntity)))]
pub async fn list_events(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> ApiResult<Response> {
    let status = q
        .status
        .as_deref()
        .map(|v| {
            EventStatus::parse(v).ok_or_else(|| {
                Error::Malformed(format!(
                    "status {v:?} is not one of pending, done, failed, ignored, unknown_registry"
                ))
            })
        })
        .transpose()?;
    let filter = EventFilter {
        status,
        action: q.action.clone(),
        repository: q.repository.clone(),
        registry_id: q.registry_id,
    };
    let params = PageQuery {
        page: q.page,
        per_page: q.per_page,
        all: q.all,
        sort_attr: q.sort_attr.clone(),
        sort_order: q.sort_order.clone().or(Some("desc".into())),
    }
    .params();
    let page = s.inventory.list_events(&me, &filter, &params).await?;
    let items: Vec<EventEntity> = page.items.iter().map(EventEntity::from).collect();
    Ok(paginated("/api/v1/events", &page, items))
}

/// One received event (admins).
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "background", params(("id" = i64, Path)), responses((status = 200, body = EventEntity), (status = 404, body = ErrorEntity)))]
pub async fn show_event(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<EventEntity>> {
    Ok(Json(EventEntity::from(
        &s.inventory.show_event(&me, id).await?,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    all: Option<bool>,
    sort_attr: Option<String>,
    sort_order: Option<String>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    state: Option<String>,
    kind: Option<String>,
}

/// Background jobs with state, attempts and last error (admins).
#[utoipa::path(get, path = "/api/v1/jobs", tag = "background", params(JobQuery), responses((status = 200, body = [JobEntity]), (status = 400, body = ErrorEntity), (status = 403, body = ErrorEntity)))]
pub async fn list_jobs(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiQuery(q): ApiQuery<JobQuery>,
) -> ApiResult<Response> {
    let state = q
        .state
        .as_deref()
        .map(|v| {
            JobState::parse(v).ok_or_else(|| {
                Error::Malformed(format!(
                    "state {v:?} is not one of queued, running, done, failed, cancelled"
                ))
            })
        })
        .transpose()?;
    let filter = JobFilter {
        state,
        kind: q.kind.clone(),
    };
    let params = PageQuery {
        page: q.page,
        per_page: q.per_page,
        all: q.all,
        sort_attr: q.sort_attr.clone(),
        sort_order: q.sort_order.clone().or(Some("desc".into())),
    }
    .params();
    let page = s.background.list_jobs(&me, &filter, &params).await?;
    let items: Vec<JobEntity> = page.items.iter().map(JobEntity::from).collect();
    Ok(paginated("/api/v1/jobs", &page, items))
}

/// One job (admins).
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "background", params(("id" = i64, Path)), responses((status = 200, body = JobEntity), (status = 404, body = ErrorEntity)))]
pub async fn show_job(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<JobEntity>> {
    Ok(Json(JobEntity::from(
        &s.background.show_job(&me, id).await?,
    )))
}

/// Queue a failed or cancelled job again (admins).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "background", params(("id" = i64, Path)), responses((status = 200, body = JobEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn retry_job(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<JobEntity>> {
    Ok(Json(JobEntity::from(
        &s.background.retry_job(&me, id).await?,
    )))
}

/// Cancel a queued or failed job (admins).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "background", params(("id" = i64, Path)), responses((status = 200, body = JobEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn cancel_job(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<JobEntity>> {
    Ok(Json(JobEntity::from(
        &s.background.cancel_job(&me, id).await?,
    )))
}
