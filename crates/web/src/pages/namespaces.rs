//! Namespaces: the list in Portus's panels (special, member, other), creation, and a
//! namespace's page (description, visibility, delete, its repositories).

use super::dashboard::RepositoryRow;
use super::teams::role_name;
use super::{Chrome, field_error, page};
use crate::markdown;
use crate::render::{PageError, PageResult};
use crate::session::{NoFields, PagePath, Submitted, Viewer, see_other};
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_domain::Error;
use portcullis_domain::model::NamespaceKind;
use portcullis_domain::policy::can_change_namespace_team;
use portcullis_service::Services;
use portcullis_service::listing::ListParams;
use portcullis_service::namespaces::{NamespaceChanges, NamespaceDetails};
use portcullis_storage::RepositoryFilter;
use serde::Deserialize;
use std::collections::BTreeMap;

super::field_errors!(NamespacesPage, NamespacePage);

pub struct NamespaceRow {
    pub id: i64,
    pub name: String,
    pub team: String,
    pub visibility: &'static str,
    pub role: &'static str,
    pub created: String,
}

impl NamespaceRow {
    pub(crate) fn new(d: &NamespaceDetails) -> Self {
        NamespaceRow {
            id: d.namespace.id,
            name: d.namespace.name.clone(),
            team: d.team.name.clone(),
            visibility: d.namespace.visibility.as_str(),
            role: role_name(d.role),
            created: crate::format::when(d.namespace.created_at),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "namespaces.html")]
struct NamespacesPage {
    chrome: Chrome,
    special: Vec<NamespaceRow>,
    member: Vec<NamespaceRow>,
    other: Vec<NamespaceRow>,
    form: NewNamespaceForm,
    errors: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default)]
pub struct NewNamespaceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    description: String,
}

async fn namespaces_page(
    s: &Services,
    viewer: &Viewer,
    status: StatusCode,
    form: NewNamespaceForm,
    errors: BTreeMap<String, Vec<String>>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let all = ListParams {
        all: true,
        ..ListParams::default()
    };
    let (mut special, mut member, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for d in s.namespaces.list_namespaces(me, &all).await?.items {
        let row = NamespaceRow::new(&d);
        match d.namespace.kind {
            NamespaceKind::Global => special.push(row),
            NamespaceKind::Personal if d.namespace.user_id == Some(me.user.id) => {
                special.push(row);
            }
            _ if d.role.is_some() => member.push(row),
            _ => other.push(row),
        }
    }
    let t = NamespacesPage {
        chrome: Chrome::new(s, viewer, "Namespaces", "namespaces"),
        special,
        member,
        other,
        form,
        errors,
    };
    page(s, viewer, status, &t)
}

pub async fn list(State(s): State<Services>, viewer: Viewer) -> PageResult {
    namespaces_page(
        &s,
        &viewer,
        StatusCode::OK,
        NewNamespaceForm::default(),
        BTreeMap::new(),
    )
    .await
}

pub async fn create(
    State(s): State<Services>,
    submitted: Submitted<NewNamespaceForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let created = s
        .namespaces
        .create_namespace(
            me,
            form.name.trim(),
            form.team.trim(),
            &form.description,
            None,
        )
        .await;
    match created {
        Ok(d) => Ok(see_other(&format!("/namespaces/{}", d.namespace.id))),
        Err(Error::Invalid(errors)) => {
            namespaces_page(&s, &viewer, StatusCode::UNPROCESSABLE_ENTITY, form, errors).await
        }
        Err(Error::NotFound("Team")) => {
            let errors = field_error("team", "does not exist");
            namespaces_page(&s, &viewer, StatusCode::UNPROCESSABLE_ENTITY, form, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(askama::Template)]
#[template(path = "namespace.html")]
struct NamespacePage {
    chrome: Chrome,
    ns: NamespaceRow,
    team_id: i64,
    description_html: String,
    description: String,
    role: &'static str,
    push: bool,
    webhooks: bool,
    change_visibility: bool,
    updatable: bool,
    /// A team namespace may be renamed and moved to another team.
    renamable: bool,
    change_team: bool,
    destroyable: bool,
    repositories: Vec<RepositoryRow>,
    /// A refused edit: what was typed (shown again) and why.
    edit: Option<NamespaceEdit>,
    errors: BTreeMap<String, Vec<String>>,
}

/// The edit form's values as typed.
pub struct NamespaceEdit {
    pub name: String,
    pub team: String,
    pub description: String,
}

pub async fn show(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath(id): PagePath<i64>,
) -> PageResult {
    namespace_page(&s, &viewer, id, StatusCode::OK, None, BTreeMap::new()).await
}

async fn namespace_page(
    s: &Services,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    edit: Option<NamespaceEdit>,
    errors: BTreeMap<String, Vec<String>>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let d = s.namespaces.show_namespace(me, id).await?;
    let filter = RepositoryFilter {
        namespace_id: Some(id),
        ..RepositoryFilter::default()
    };
    let all = ListParams {
        all: true,
        ..ListParams::default()
    };
    let repositories = s
        .repositories
        .list(Some(me), &filter, &all)
        .await?
        .items
        .iter()
        .map(RepositoryRow::new)
        .collect();
    let team_namespace = d.namespace.kind == NamespaceKind::Team;
    let change_team = team_namespace
        && can_change_namespace_team(&me.subject(), &d.facts(), &s.config().policy_options());
    let t = NamespacePage {
        chrome: Chrome::new(s, viewer, &d.namespace.name, "namespaces"),
        ns: NamespaceRow::new(&d),
        team_id: d.team.id,
        description_html: markdown::render(&d.namespace.description),
        description: d.namespace.description.clone(),
        role: role_name(d.role),
        push: d.push,
        webhooks: d.webhooks,
        change_visibility: d.change_visibility,
        updatable: d.updatable,
        renamable: d.updatable && team_namespace,
        change_team,
        destroyable: d.destroyable,
        repositories,
        edit,
        errors,
    };
    page(s, viewer, status, &t)
}

#[derive(Deserialize)]
pub struct NamespaceForm {
    name: Option<String>,
    team: Option<String>,
    description: Option<String>,
    visibility: Option<String>,
}

pub async fn update(
    State(s): State<Services>,
    PagePath(id): PagePath<i64>,
    submitted: Submitted<NamespaceForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let changes = NamespaceChanges {
        name: given(&form.name),
        team: given(&form.team),
        description: form.description.clone(),
        visibility: form.visibility.clone(),
    };
    let errors = match s.namespaces.update_namespace(me, id, changes).await {
        Ok(_) => return Ok(see_other(&format!("/namespaces/{id}"))),
        Err(Error::Invalid(errors)) => errors,
        Err(Error::NotFound("Team")) => field_error("team", "does not exist"),
        Err(Error::Unprocessable(message)) => field_error("base", &message),
        Err(e) => return Err(e.into()),
    };
    // The edit form again, with what was typed.
    let edit = NamespaceEdit {
        name: form.name.unwrap_or_default(),
        team: form.team.unwrap_or_default(),
        description: form.description.unwrap_or_default(),
    };
    namespace_page(
        &s,
        &viewer,
        id,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(edit),
        errors,
    )
    .await
}

pub async fn delete(
    State(s): State<Services>,
    PagePath(id): PagePath<i64>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.namespaces
        .delete_namespace(me, id)
        .await
        .map_err(PageError::from)?;
    Ok(see_other("/namespaces"))
}
