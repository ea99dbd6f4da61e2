//! The front page and the dashboard: admin statistics, recent activities (scoped as
//! Portus's dashboard), and the repositories tabs All / Starred / Personal.

use super::{Chrome, page};
use crate::format;
use crate::render::PageResult;
use crate::session::{PageQuery, Viewer, see_other};
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_service::Services;
use portcullis_service::listing::ListParams;
use portcullis_service::repositories::RepositoryDetails;
use portcullis_storage::RepositoryFilter;
use serde::Deserialize;

/// `/`: the dashboard when signed in; an empty instance leads to sign-up; otherwise
/// the sign-in page (or the public explore page when anonymous browsing is on).
pub async fn root(State(s): State<Services>, viewer: Viewer) -> PageResult {
    if viewer.caller.is_some() {
        return Ok(see_other("/dashboard"));
    }
    let config = s.config();
    if (config.first_user_admin.enabled || config.signup.enabled) && s.users.is_empty().await? {
        return Ok(see_other("/users/sign_up"));
    }
    Ok(see_other("/users/sign_in"))
}

pub struct ActivityRow {
    pub text: String,
    pub when: String,
    pub at: String,
}

impl ActivityRow {
    pub fn new(a: &portcullis_domain::inventory::Activity) -> Self {
        ActivityRow {
            text: format::activity(a),
            when: format::when(a.created_at),
            at: format::rfc3339(a.created_at),
        }
    }
}

pub struct RepositoryRow {
    pub id: i64,
    pub full_name: String,
    pub tags: i64,
    pub stars: i64,
    pub updated: String,
}

impl RepositoryRow {
    pub fn new(r: &RepositoryDetails) -> Self {
        RepositoryRow {
            id: r.listing.repository.id,
            full_name: r.full_name.clone(),
            tags: r.listing.tags,
            stars: r.listing.stars,
            updated: format::when(r.listing.repository.updated_at),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    /// An admin of an instance without a registry is told to add one.
    no_registry: bool,
    /// (label, count) for admins.
    stats: Vec<(&'static str, i64)>,
    activities: Vec<ActivityRow>,
    tab: String,
    repositories: Vec<RepositoryRow>,
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    tab: Option<String>,
}

fn count_only() -> ListParams {
    ListParams {
        per_page: 1,
        ..ListParams::default()
    }
}

pub async fn dashboard(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<DashboardQuery>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let mut stats = Vec::new();
    let mut no_registry = false;
    if me.user.admin {
        let registries = s.registries.list_registries(me).await?.len() as i64;
        no_registry = registries == 0;
        stats.push(("Registries", registries));
        stats.push(("Users", s.users.list_users(me, &count_only()).await?.total));
        stats.push(("Teams", s.teams.list_teams(me, &count_only()).await?.total));
        stats.push((
            "Namespaces",
            s.namespaces.list_namespaces(me, &count_only()).await?.total,
        ));
    }
    let recent = ListParams {
        per_page: 20,
        ..ListParams::default()
    };
    let activities = s
        .repositories
        .activities(me, false, &recent)
        .await?
        .items
        .iter()
        .map(ActivityRow::new)
        .collect();
    let tab = match q.tab.as_deref() {
        Some("starred") => "starred",
        Some("personal") => "personal",
        _ => "all",
    };
    let mut filter = RepositoryFilter {
        starred_only: tab == "starred",
        ..RepositoryFilter::default()
    };
    if tab == "personal" {
        filter.namespace_id = s.users.listing(me.user.id).await?.personal_namespace_id;
    }
    let repositories = if tab == "personal" && filter.namespace_id.is_none() {
        Vec::new() // bots have no personal namespace
    } else {
        s.repositories
            .list(Some(me), &filter, &recent)
            .await?
            .items
            .iter()
            .map(RepositoryRow::new)
            .collect()
    };
    let t = DashboardPage {
        chrome: Chrome::new(&s, &viewer, "Dashboard", "dashboard"),
        no_registry,
        stats,
        activities,
        tab: tab.to_owned(),
        repositories,
    };
    page(&s, &viewer, StatusCode::OK, &t)
}
