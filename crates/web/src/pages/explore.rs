//! Help (the exact `docker login` / `push` commands of this instance) and the public
//! explore page for anonymous visitors (`anonymous_browsing.enabled`).

use super::dashboard::RepositoryRow;
use super::{Chrome, page};
use crate::render::{PageError, PageResult};
use crate::session::Viewer;
use axum::extract::{Query, State};
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
    Query(q): Query<ExploreQuery>,
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
