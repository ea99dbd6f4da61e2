//! `/api/v1/teams`: teams, their members and their namespaces.

use super::entities::{ErrorEntity, NamespaceEntity, TeamEntity, TeamMemberEntity};
use super::{PageQuery, paginated};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_domain::Error;
use portcullis_domain::model::Role;
use portcullis_service::Services;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

fn parse_role(role: &str) -> Result<Role, Error> {
    Role::parse(role).ok_or_else(|| {
        Error::Malformed("role does not have a valid value (viewer, contributor, owner)".into())
    })
}

/// Teams: all visible teams for admins, the caller's teams otherwise.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", params(PageQuery), responses((status = 200, body = [TeamEntity])))]
pub async fn list(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Response> {
    let page = s.teams.list_teams(&me, &q.params()).await?;
    let items = page.items.iter().map(TeamEntity::new).collect();
    Ok(paginated("/api/v1/teams", &page, items))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTeam {
    name: String,
    #[serde(default)]
    description: String,
    /// Admins may create a team owned by somebody else.
    owner_id: Option<i64>,
}

/// Create a team owned by the caller (or by `owner_id`, admins only).
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = CreateTeam,
    responses((status = 201, body = TeamEntity), (status = 403, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn create(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiJson(b): ApiJson<CreateTeam>,
) -> ApiResult<Response> {
    let team = s
        .teams
        .create_team(&me, &b.name, &b.description, b.owner_id)
        .await?;
    Ok((StatusCode::CREATED, Json(TeamEntity::new(&team))).into_response())
}

/// A team (members and admins).
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = TeamEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn show(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TeamEntity>> {
    Ok(Json(TeamEntity::new(&s.teams.visible_team(&me, id).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TeamFields {
    name: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateTeam {
    team: TeamFields,
}

/// Rename or describe a team (owners and admins).
#[utoipa::path(put, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path)), request_body = UpdateTeam,
    responses((status = 200, body = TeamEntity), (status = 403, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn update(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<UpdateTeam>,
) -> ApiResult<Json<TeamEntity>> {
    let team = s
        .teams
        .update_team(
            &me,
            id,
            b.team.name.as_deref(),
            b.team.description.as_deref(),
        )
        .await?;
    Ok(Json(TeamEntity::new(&team)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteTeam {
    /// Move the team's namespaces to this team instead of deleting them.
    new_team: Option<String>,
}

/// Delete a team, deleting its namespaces or moving them to `new_team`.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = i64, Path), DeleteTeam),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn destroy(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DeleteTeam>,
) -> ApiResult<StatusCode> {
    s.teams.delete_team(&me, id, q.new_team.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The team's namespaces.
#[utoipa::path(get, path = "/api/v1/teams/{id}/namespaces", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = [NamespaceEntity]), (status = 403, body = ErrorEntity)))]
pub async fn namespaces(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<NamespaceEntity>>> {
    let namespaces = s.teams.team_namespaces(&me, id).await?;
    Ok(Json(namespaces.iter().map(NamespaceEntity::from).collect()))
}

/// The team's members.
#[utoipa::path(get, path = "/api/v1/teams/{id}/members", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = [TeamMemberEntity]), (status = 403, body = ErrorEntity)))]
pub async fn members(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<TeamMemberEntity>>> {
    let members = s.teams.team_members(&me, id).await?;
    Ok(Json(
        members
            .iter()
            .map(|(m, u)| TeamMemberEntity::new(m, u))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddMember {
    /// Username of the new member.
    user: String,
    /// `viewer`, `contributor` or `owner` (admins always join as owners).
    role: String,
}

/// Add a member (owners and admins).
#[utoipa::path(post, path = "/api/v1/teams/{id}/members", tag = "teams", params(("id" = i64, Path)), request_body = AddMember,
    responses((status = 201, body = TeamMemberEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn add_member(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(b): ApiJson<AddMember>,
) -> ApiResult<Response> {
    let role = parse_role(&b.role)?;
    let (m, u) = s.teams.add_member(&me, id, &b.user, role).await?;
    Ok((StatusCode::CREATED, Json(TeamMemberEntity::new(&m, &u))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMember {
    role: String,
}

/// Change a member's role; the only owner and admins cannot be demoted.
#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{member_id}", tag = "teams", params(("id" = i64, Path), ("member_id" = i64, Path)), request_body = UpdateMember,
    responses((status = 200, body = TeamMemberEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn update_member(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((id, member_id)): ApiPath<(i64, i64)>,
    ApiJson(b): ApiJson<UpdateMember>,
) -> ApiResult<Json<TeamMemberEntity>> {
    let role = parse_role(&b.role)?;
    let (m, u) = s.teams.update_member(&me, id, member_id, role).await?;
    Ok(Json(TeamMemberEntity::new(&m, &u)))
}

/// Remove a member; the only owner stays.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{member_id}", tag = "teams", params(("id" = i64, Path), ("member_id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 422, body = ErrorEntity)))]
pub async fn remove_member(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath((id, member_id)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    s.teams.remove_member(&me, id, member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the LDAP group sync fills the team from the group of the same name.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct GroupSyncEntity {
    ldap_group_sync: bool,
}

/// Whether the LDAP group sync fills this team.
#[utoipa::path(get, path = "/api/v1/teams/{id}/ldap_check", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = GroupSyncEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity)))]
pub async fn group_sync(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<GroupSyncEntity>> {
    let ldap_group_sync = s.teams.group_sync(&me, id).await?;
    Ok(Json(GroupSyncEntity { ldap_group_sync }))
}

/// Stop the LDAP group sync for this team (Portus; owners and admins). 405 unless LDAP
/// and the group sync are enabled.
#[utoipa::path(post, path = "/api/v1/teams/{id}/ldap_check", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = GroupSyncEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 405, body = ErrorEntity)))]
pub async fn disable_group_sync(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<GroupSyncEntity>> {
    s.teams.set_group_sync(&me, id, false).await?;
    Ok(Json(GroupSyncEntity {
        ldap_group_sync: false,
    }))
}

/// Resume the LDAP group sync for this team (owners and admins); 405 as above.
#[utoipa::path(delete, path = "/api/v1/teams/{id}/ldap_check", tag = "teams", params(("id" = i64, Path)),
    responses((status = 200, body = GroupSyncEntity), (status = 403, body = ErrorEntity), (status = 404, body = ErrorEntity), (status = 405, body = ErrorEntity)))]
pub async fn enable_group_sync(
    State(s): State<Services>,
    Caller(me): Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<GroupSyncEntity>> {
    s.teams.set_group_sync(&me, id, true).await?;
    Ok(Json(GroupSyncEntity {
        ldap_group_sync: true,
    }))
}
