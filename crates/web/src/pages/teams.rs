//! Teams: the list and creation, and a team's page (members with roles, namespaces,
//! rename, delete with the namespaces moved to another team). What a page offers
//! follows the pure policy; the team service checks it again.

use super::namespaces::NamespaceRow;
use super::{Chrome, field_error, page};
use crate::format;
use crate::render::{PageError, PageResult};
use crate::session::{NoFields, PagePath, Submitted, Viewer, see_other};
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_domain::Error;
use portcullis_domain::model::{Id, Role};
use portcullis_domain::policy::{
    can_create_team, can_delete_team, can_manage_members, can_update_team,
};
use portcullis_service::Services;
use portcullis_service::listing::ListParams;
use serde::Deserialize;
use std::collections::BTreeMap;

super::field_errors!(TeamsPage);

pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub role: &'static str,
    pub members: i64,
    pub namespaces: i64,
}

#[derive(askama::Template)]
#[template(path = "teams.html")]
struct TeamsPage {
    chrome: Chrome,
    teams: Vec<TeamRow>,
    may_create: bool,
    admin: bool,
    form: TeamForm,
    errors: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default)]
pub struct TeamForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    /// Admins only: the username of the new team's owner (empty: the admin).
    #[serde(default)]
    owner: String,
}

pub(crate) fn role_name(role: Option<Role>) -> &'static str {
    role.map_or("", Role::as_str)
}

async fn teams_page(
    s: &Services,
    viewer: &Viewer,
    status: StatusCode,
    form: TeamForm,
    errors: BTreeMap<String, Vec<String>>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let all = ListParams {
        all: true,
        ..ListParams::default()
    };
    let teams = s
        .teams
        .list_teams(me, &all)
        .await?
        .items
        .into_iter()
        .map(|t| TeamRow {
            id: t.team.id,
            name: t.team.name,
            role: role_name(t.role),
            members: t.members,
            namespaces: t.namespaces,
        })
        .collect();
    let t = TeamsPage {
        chrome: Chrome::new(s, viewer, "Teams", "teams"),
        teams,
        may_create: can_create_team(&me.subject(), &s.config().policy_options()),
        admin: me.user.admin,
        form,
        errors,
    };
    page(s, viewer, status, &t)
}

pub async fn list(State(s): State<Services>, viewer: Viewer) -> PageResult {
    teams_page(
        &s,
        &viewer,
        StatusCode::OK,
        TeamForm::default(),
        BTreeMap::new(),
    )
    .await
}

pub async fn create(State(s): State<Services>, submitted: Submitted<TeamForm>) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let owner = match form.owner.trim() {
        "" => None,
        name => match s.users.find_by_username(me, name).await {
            Ok(user) => Some(user.id),
            Err(Error::NotFound(_)) => {
                let errors = field_error("owner", "is not a user");
                return teams_page(&s, &viewer, StatusCode::UNPROCESSABLE_ENTITY, form, errors)
                    .await;
            }
            Err(e) => return Err(e.into()),
        },
    };
    match s
        .teams
        .create_team(me, &form.name, &form.description, owner)
        .await
    {
        Ok(t) => Ok(see_other(&format!("/teams/{}", t.team.id))),
        Err(Error::Invalid(errors)) => {
            teams_page(&s, &viewer, StatusCode::UNPROCESSABLE_ENTITY, form, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

pub struct MemberRow {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    pub since: String,
}

#[derive(askama::Template)]
#[template(path = "team.html")]
struct TeamPage {
    chrome: Chrome,
    id: i64,
    name: String,
    description_html: String,
    description: String,
    role: &'static str,
    members: Vec<MemberRow>,
    namespaces: Vec<NamespaceRow>,
    manage_members: bool,
    updatable: bool,
    destroyable: bool,
    error: Option<String>,
    typed: Typed,
}

/// What was typed into the team page's forms, shown again after a refusal.
#[derive(Default)]
pub struct Typed {
    pub member_username: String,
    /// (name, description) of a refused rename.
    pub rename: Option<(String, String)>,
    pub migrate_to: String,
}

async fn team_page(
    s: &Services,
    viewer: &Viewer,
    id: Id,
    status: StatusCode,
    error: Option<String>,
    typed: Typed,
) -> PageResult {
    let me = viewer.signed_in()?;
    let listing = s.teams.visible_team(me, id).await?;
    let members = s
        .teams
        .team_members(me, id)
        .await?
        .into_iter()
        .map(|(m, u)| MemberRow {
            id: m.id,
            username: u.username,
            role: m.role.as_str(),
            since: format::when(m.created_at),
        })
        .collect();
    let namespaces = s
        .teams
        .team_namespaces(me, id)
        .await?
        .iter()
        .map(NamespaceRow::new)
        .collect();
    let subject = me.subject();
    let opts = s.config().policy_options();
    let team = &listing.team;
    let t = TeamPage {
        chrome: Chrome::new(s, viewer, &team.name, "teams"),
        id,
        name: team.name.clone(),
        description_html: crate::markdown::render(&team.description),
        description: team.description.clone(),
        role: role_name(listing.role),
        members,
        namespaces,
        manage_members: can_manage_members(&subject, team.hidden, listing.role),
        updatable: can_update_team(&subject, team.hidden, listing.role, &opts),
        destroyable: can_delete_team(&subject, team.hidden, listing.role, &opts),
        error,
        typed,
    };
    page(s, viewer, status, &t)
}

pub async fn show(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath(id): PagePath<Id>,
) -> PageResult {
    team_page(&s, &viewer, id, StatusCode::OK, None, Typed::default()).await
}

/// A refusal the team page shows in place (a rule of the operation, an unknown user);
/// anything else is the error page.
async fn refused_on_team_page(
    s: &Services,
    viewer: &Viewer,
    id: Id,
    e: Error,
    typed: Typed,
) -> PageResult {
    let message = match e {
        Error::Unprocessable(m) => m,
        Error::Invalid(_) => e.to_string(),
        Error::NotFound("User") => "There is no such user.".to_owned(),
        Error::NotFound("Team") => "There is no such team to move the namespaces to.".to_owned(),
        other => return Err(PageError::Domain(other)),
    };
    team_page(
        s,
        viewer,
        id,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(message),
        typed,
    )
    .await
}

fn parse_role(role: &str) -> Result<Role, PageError> {
    match role {
        "owner" => Ok(Role::Owner),
        "contributor" => Ok(Role::Contributor),
        "viewer" => Ok(Role::Viewer),
        other => Err(Error::Malformed(format!("unknown role {other:?}")).into()),
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

pub async fn add_member(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<MemberForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let role = parse_role(&form.role)?;
    match s.teams.add_member(me, id, form.username.trim(), role).await {
        Ok(_) => Ok(see_other(&format!("/teams/{id}"))),
        Err(e) => {
            let typed = Typed {
                member_username: form.username,
                ..Typed::default()
            };
            refused_on_team_page(&s, &viewer, id, e, typed).await
        }
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn change_role(
    State(s): State<Services>,
    PagePath((id, member_id)): PagePath<(Id, Id)>,
    submitted: Submitted<RoleForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let role = parse_role(&form.role)?;
    match s.teams.update_member(me, id, member_id, role).await {
        Ok(_) => Ok(see_other(&format!("/teams/{id}"))),
        Err(e) => refused_on_team_page(&s, &viewer, id, e, Typed::default()).await,
    }
}

pub async fn remove_member(
    State(s): State<Services>,
    PagePath((id, member_id)): PagePath<(Id, Id)>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let viewer = submitted.viewer;
    let me = viewer.signed_in()?;
    match s.teams.remove_member(me, id, member_id).await {
        Ok(()) => Ok(see_other(&format!("/teams/{id}"))),
        Err(e) => refused_on_team_page(&s, &viewer, id, e, Typed::default()).await,
    }
}

pub async fn update(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<TeamForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let typed = Typed {
        rename: Some((form.name.clone(), form.description.clone())),
        ..Typed::default()
    };
    let name = Some(form.name.trim()).filter(|n| !n.is_empty());
    match s
        .teams
        .update_team(me, id, name, Some(&form.description))
        .await
    {
        Ok(_) => Ok(see_other(&format!("/teams/{id}"))),
        Err(e) => refused_on_team_page(&s, &viewer, id, e, typed).await,
    }
}

#[derive(Deserialize)]
pub struct DeleteTeamForm {
    /// The team that takes over the namespaces; empty: they are deleted with the team.
    #[serde(default)]
    migrate_to: String,
}

pub async fn delete(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<DeleteTeamForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let typed = Typed {
        migrate_to: form.migrate_to.clone(),
        ..Typed::default()
    };
    let target = Some(form.migrate_to.trim()).filter(|t| !t.is_empty());
    match s.teams.delete_team(me, id, target).await {
        Ok(()) => Ok(see_other("/teams")),
        Err(e) => refused_on_team_page(&s, &viewer, id, e, typed).await,
    }
}
