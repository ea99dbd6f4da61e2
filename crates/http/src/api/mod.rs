//! The REST API, compatible with Portus API v1: same paths, bodies, status codes and
//! pagination headers. Every route is registered through `routes!`, so the OpenAPI
//! document served at `/api/openapi-spec` is generated from this router.

mod entities;
mod inventory;
pub use inventory::activities_csv;
mod meta;
mod namespaces;
mod registries;
mod teams;
mod users;
mod webhooks;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use portcullis_service::Services;
use portcullis_service::listing::{ListParams, Paged};
use serde::Deserialize;
use tower_http::cors::{Any, CorsLayer};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Portcullis API", description = "Portus API v1 compatible management API of Portcullis."),
    modifiers(&SecuritySchemes),
    security(("portus_auth" = []), ("bearer" = []), ("basic" = [])),
    tags(
        (name = "meta", description = "Liveness, health and version"),
        (name = "users", description = "Users, bootstrap and tokens"),
        (name = "teams", description = "Teams and members"),
        (name = "namespaces", description = "Namespaces"),
        (name = "registries", description = "Registries (admins)"),
        (name = "repositories", description = "Repositories, tags, stars, comments, activities"),
        (name = "webhooks", description = "Webhooks of a namespace, their headers and deliveries"),
        (name = "background", description = "Received registry events and background jobs (admins)"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "portus_auth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Portus-Auth",
                "<username>:<application token>",
            ))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("an application token"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// Routes and the OpenAPI document, built by the same calls.
pub fn router() -> OpenApiRouter<Services> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderName::from_static("portus-auth"),
            axum::http::HeaderName::from_static("api_key"),
        ])
        .expose_headers(
            [
                "link",
                "x-total",
                "x-total-pages",
                "x-per-page",
                "x-page",
                "x-next-page",
                "x-prev-page",
            ]
            .map(axum::http::HeaderName::from_static),
        );
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(meta::ping))
        .routes(routes!(meta::health))
        .routes(routes!(meta::version))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::bootstrap))
        .routes(routes!(users::show, users::update, users::destroy))
        .routes(routes!(users::list_tokens, users::create_token))
        .routes(routes!(users::destroy_token))
        .routes(routes!(users::list_refresh_tokens))
        .routes(routes!(users::destroy_refresh_token))
        .routes(routes!(teams::list, teams::create))
        .routes(routes!(teams::show, teams::update, teams::destroy))
        .routes(routes!(teams::namespaces))
        .routes(routes!(teams::members, teams::add_member))
        .routes(routes!(teams::update_member, teams::remove_member))
        .routes(routes!(
            teams::group_sync,
            teams::disable_group_sync,
            teams::enable_group_sync
        ))
        .routes(routes!(namespaces::list, namespaces::create))
        .routes(routes!(namespaces::validate))
        .routes(routes!(
            namespaces::show,
            namespaces::update,
            namespaces::destroy
        ))
        .routes(routes!(registries::list, registries::create))
        .routes(routes!(registries::validate))
        .routes(routes!(registries::update))
        .routes(routes!(inventory::namespace_repositories))
        .routes(routes!(inventory::list_repositories))
        .routes(routes!(
            inventory::show_repository,
            inventory::update_repository,
            inventory::destroy_repository
        ))
        .routes(routes!(inventory::repository_tags))
        .routes(routes!(inventory::grouped_tags))
        .routes(routes!(inventory::repository_tag))
        .routes(routes!(inventory::star, inventory::unstar))
        .routes(routes!(inventory::comments, inventory::create_comment))
        .routes(routes!(inventory::destroy_comment))
        .routes(routes!(inventory::list_tags))
        .routes(routes!(inventory::show_tag, inventory::destroy_tag))
        .routes(routes!(inventory::activities))
        .routes(routes!(inventory::list_events))
        .routes(routes!(inventory::show_event))
        .routes(routes!(inventory::list_jobs))
        .routes(routes!(inventory::show_job))
        .routes(routes!(inventory::retry_job))
        .routes(routes!(inventory::cancel_job))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::show, webhooks::update, webhooks::destroy))
        .routes(routes!(webhooks::toggle_enabled))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::headers, webhooks::create_header))
        .routes(routes!(webhooks::destroy_header))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::delivery, webhooks::resend))
        .routes(routes!(meta::openapi_spec))
        .layer(cors)
}

/// Pagination and ordering query parameters (Portus: `page`, `per_page`, `all`,
/// `sort_attr`, `sort_order`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number.
    page: Option<i64>,
    /// Items per page (default 15).
    per_page: Option<i64>,
    /// `true` returns every item.
    all: Option<bool>,
    /// Attribute to sort by (unknown attributes sort by id).
    sort_attr: Option<String>,
    /// `asc` or `desc`.
    sort_order: Option<String>,
}

impl PageQuery {
    pub fn params(&self) -> ListParams {
        let d = ListParams::default();
        ListParams {
            page: self.page.unwrap_or(d.page),
            per_page: self.per_page.unwrap_or(d.per_page),
            all: self.all.unwrap_or(false),
            sort_attr: self.sort_attr.clone(),
            sort_order: self.sort_order.clone(),
        }
    }
}

/// A JSON list with Portus's pagination headers (`X-Total`, `X-Page`, `Link`, …).
pub fn paginated<T, E: serde::Serialize>(path: &str, page: &Paged<T>, items: Vec<E>) -> Response {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(name, v);
        }
    };
    set("x-total", page.total.to_string());
    set("x-total-pages", page.total_pages.to_string());
    set("x-per-page", page.per_page.to_string());
    set("x-page", page.page.to_string());
    set(
        "x-next-page",
        if page.page < page.total_pages {
            (page.page + 1).to_string()
        } else {
            String::new()
        },
    );
    set(
        "x-prev-page",
        if page.page > 1 {
            (page.page - 1).to_string()
        } else {
            String::new()
        },
    );
    let link = |rel: &str, p: i64| {
        format!(
            "<{path}?page={p}&per_page={}>; rel=\"{rel}\"",
            page.per_page
        )
    };
    let mut links = vec![link("first", 1)];
    if page.page > 1 {
        links.push(link("prev", page.page - 1));
    }
    if page.page < page.total_pages {
        links.push(link("next", page.page + 1));
    }
    links.push(link("last", page.total_pages));
    set("link", links.join(", "));
    (headers, Json(items)).into_response()
}
