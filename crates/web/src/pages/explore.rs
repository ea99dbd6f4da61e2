//! Help (the exact `docker login` / `push` commands of this instance) and the public
//! explore page for anonymous visitors (`anonymous_browsing.enabled`).

use super::dashboard::RepositoryRow;
use super::{Chrome, page};
use crate::render::{PageError, PageResult};
use crate::session::{PageQuery, Viewer};
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_domain::Error;
use portcullis_service::Services;
use portcullis_service::listing::ListParams;
use portcullis_storage::RepositoryFilter;
use serde::Deserialize;

#[derive(askama::Template)]
#[template(path = "help.html")]
struct HelpPage {
    chrome: Chrome,
    /// `host[:port]` of each registry, as clients name it.
    registries: Vec<String>,
    username: String,
    api_docs: String,
}

pub async fn help(State(s): State<Services>, viewer: Viewer) -> PageResult {
    let me = viewer.signed_in()?;
    let registries = s
        .registries
        .list_registries(me)
        .await?
        .into_iter()
        .map(|r| r.external_hostname.unwrap_or(r.hostname))
        .collect();
    let t = HelpPage {
        chrome: Chrome::new(&s, &viewer, "Help", "help"),
        registries,
        username: me.user.username.clone(),
        api_docs: "/api/openapi-spec".to_owned(),
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

#[derive(askama::Template)]
#[template(path = "explore.html")]
struct ExplorePage {
    chrome: Chrome,
    query: String,
    repositories: Vec<RepositoryRow>,
}

#[derive(Deserialize)]
pub struct ExploreQuery {
    #[serde(default)]
    search: String,
}

pub async fn explore(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<ExploreQuery>,
) -> PageResult {
    if viewer.caller.is_none() && !s.config().anonymous_browsing.enabled {
        return Err(PageError::Domain(Error::Unauthenticated));
    }
    let filter = RepositoryFilter {
        query: Some(q.search.trim().to_owned()).filter(|q| !q.is_empty()),
        ..RepositoryFilter::default()
    };
    let params = ListParams {
        per_page: s.config().pagination.per_page.max(1) * 5,
        ..ListParams::default()
    };
    // Signed in or not, explore shows public repositories only, as Portus's did.
    let repositories = s
        .repositories
        .list(None, &filter, &params)
        .await?
        .items
        .iter()
        .map(RepositoryRow::new)
        .collect();
    let t = ExplorePage {
        chrome: Chrome::new(&s, &viewer, "Explore", "explore"),
        query: q.search,
        repositories,
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

#[derive(askama::Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    query: String,
    repositories: Vec<RepositoryRow>,
    /// (id, name, description)
    namespaces: Vec<(i64, String, String)>,
    teams: Vec<(i64, String, String)>,
}

/// Repositories, namespaces and teams the caller may see, matching the text before a
/// `:` (so `ns/app:v1` finds `ns/app`), as Portus's search did.
pub async fn search(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<ExploreQuery>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let text = q
        .search
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let needle = text.to_lowercase();
    let matches = |name: &str, description: &str| {
        !needle.is_empty()
            && (name.to_lowercase().contains(&needle)
                || description.to_lowercase().contains(&needle))
    };
    let all = ListParams {
        all: true,
        ..ListParams::default()
    };
    let (repositories, namespaces, teams) = if needle.is_empty() {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        let filter = RepositoryFilter {
            query: Some(text.clone()),
            ..RepositoryFilter::default()
        };
        let repositories = s
            .repositories
            .list(Some(me), &filter, &all)
            .await?
            .items
            .iter()
            .map(RepositoryRow::new)
            .collect();
        let namespaces = s
            .namespaces
            .list_namespaces(me, &all)
            .await?
            .items
            .into_iter()
            .filter(|d| matches(&d.namespace.name, &d.namespace.description))
            .map(|d| (d.namespace.id, d.namespace.name, d.namespace.description))
            .collect();
        let teams = s
            .teams
            .list_teams(me, &all)
            .await?
            .items
            .into_iter()
            .filter(|t| matches(&t.team.name, &t.team.description))
            .map(|t| (t.team.id, t.team.name, t.team.description))
            .collect();
        (repositories, namespaces, teams)
    };
    let t = SearchPage {
        chrome: Chrome::new(&s, &viewer, "Search", "search"),
        query: q.search,
        repositories,
        namespaces,
        teams,
    };
    page(&s, &viewer, StatusCode::OK, &t)
}
