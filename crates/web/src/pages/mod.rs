//! The pages. Each module holds the handlers of one area and the templates' view
//! models; handlers call services only.

/// `self.error("field")` for the templates of pages that show a refused form: the
/// messages for that field, joined (empty when it was fine).
macro_rules! field_errors {
    ($($page:ty),* $(,)?) => {$(
        impl $page {
            fn error(&self, field: &str) -> String {
                $crate::pages::errors_of(&self.errors, field)
            }
        }
    )*};
}
use field_errors;

mod account;
mod admin;
mod dashboard;
mod explore;
mod external;
mod namespaces;
mod profile;
mod repositories;
mod teams;
mod webhooks;

use crate::session::Viewer;
use axum::Router;
use axum::routing::{get, post};
use portcullis_service::Services;

pub(crate) fn routes() -> Router<Services> {
    Router::new()
        .route("/", get(dashboard::root))
        .route("/dashboard", get(dashboard::dashboard))
        .route(
            "/users/sign_in",
            get(account::sign_in_page).post(account::sign_in),
        )
        .route("/users/sign_out", post(account::sign_out))
        .route("/users/auth/{provider}", get(external::start))
        .route("/users/auth/{provider}/callback", get(external::callback))
        .route(
            "/users/auth/{provider}/account",
            post(external::create_account),
        )
        .route(
            "/users/password/new",
            get(account::forgot_password).post(account::request_reset),
        )
        .route("/users/password/edit", get(account::reset_password_page))
        .route("/users/password/reset", post(account::reset_password))
        .route(
            "/users/sign_up",
            get(account::sign_up_page).post(account::sign_up),
        )
        .route("/users/edit", get(profile::show))
        .route("/users/profile", post(profile::update_account))
        .route("/users/tokens", post(profile::create_token))
        .route("/users/tokens/{id}/delete", post(profile::revoke_token))
        .route("/users/sessions/{id}/delete", post(profile::end_session))
        .route("/users/devices/{id}/delete", post(profile::revoke_device))
        .route("/users/disable", post(profile::disable_account))
        .route("/users/password", post(profile::change_password))
        .route(
            "/namespaces",
            get(namespaces::list).post(namespaces::create),
        )
        .route(
            "/namespaces/{id}",
            get(namespaces::show).post(namespaces::update),
        )
        .route("/namespaces/{id}/delete", post(namespaces::delete))
        .route(
            "/namespaces/{ns}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/namespaces/{ns}/webhooks/{id}",
            get(webhooks::show).post(webhooks::update),
        )
        .route(
            "/namespaces/{ns}/webhooks/{id}/delete",
            post(webhooks::delete),
        )
        .route(
            "/namespaces/{ns}/webhooks/{id}/secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/namespaces/{ns}/webhooks/{id}/headers",
            post(webhooks::add_header),
        )
        .route(
            "/namespaces/{ns}/webhooks/{id}/headers/{header}/delete",
            post(webhooks::delete_header),
        )
        .route(
            "/namespaces/{ns}/webhooks/{id}/deliveries/{delivery}",
            get(webhooks::delivery),
        )
        .route(
            "/namespaces/{ns}/webhooks/{id}/deliveries/{delivery}/resend",
            post(webhooks::resend),
        )
        .route("/repositories", get(repositories::list))
        .route("/repositories/{id}", get(repositories::show))
        .route("/repositories/{id}/star", post(repositories::star))
        .route(
            "/repositories/{id}/description",
            post(repositories::describe),
        )
        .route("/repositories/{id}/comments", post(repositories::comment))
        .route(
            "/repositories/{id}/comments/{comment_id}/delete",
            post(repositories::delete_comment),
        )
        .route(
            "/repositories/{id}/tags/delete",
            post(repositories::delete_tags),
        )
        .route("/repositories/{id}/delete", post(repositories::delete))
        .route("/tags/{id}", get(repositories::tag))
        .route("/teams", get(teams::list).post(teams::create))
        .route("/teams/{id}", get(teams::show).post(teams::update))
        .route("/teams/{id}/delete", post(teams::delete))
        .route("/teams/{id}/members", post(teams::add_member))
        .route("/teams/{id}/members/{member_id}", post(teams::change_role))
        .route(
            "/teams/{id}/members/{member_id}/delete",
            post(teams::remove_member),
        )
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::update_user))
        .route("/admin/users/{id}/edit", get(admin::edit_user))
        .route("/admin/users/{id}/tokens", post(admin::create_bot_token))
        .route(
            "/admin/users/{id}/tokens/{token}/delete",
            post(admin::revoke_bot_token),
        )
        .route("/admin/users/{id}/admin", post(admin::set_admin))
        .route("/admin/users/{id}/enabled", post(admin::set_enabled))
        .route("/admin/users/{id}/delete", post(admin::delete_user))
        .route("/admin/users/{id}/reset_link", post(admin::reset_link))
        .route(
            "/admin/registries",
            get(admin::registries).post(admin::create_registry),
        )
        .route("/admin/registries/{id}", post(admin::update_registry))
        .route("/admin/registries/{id}/edit", get(admin::edit_registry))
        .route("/admin/activities", get(admin::activities))
        .route("/admin/activities.csv", get(admin::activities_csv))
        .route("/admin/events", get(admin::events))
        .route("/admin/jobs", get(admin::jobs))
        .route("/admin/jobs/{id}/retry", post(admin::retry_job))
        .route("/admin/jobs/{id}/cancel", post(admin::cancel_job))
        .route("/search", get(explore::search))
        .route("/help", get(explore::help))
        .route("/explore", get(explore::explore))
}

/// The signed-in user as the page header shows them.
pub struct ChromeUser {
    pub shown_name: String,
    pub admin: bool,
}

/// What every page's frame needs: title, navigation, the user, the CSRF token for the
/// sign-out form, asset URLs.
pub struct Chrome {
    pub title: String,
    pub user: Option<ChromeUser>,
    pub csrf: String,
    pub style: String,
    pub script: String,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    /// Anonymous visitors may browse public repositories.
    pub explore: bool,
    pub signup: bool,
    /// An error page shown without knowing the viewer: no navigation but the brand.
    pub bare: bool,
}

impl Chrome {
    pub fn new(services: &Services, viewer: &Viewer, title: &str, section: &'static str) -> Self {
        let config = services.config();
        Chrome {
            title: title.to_owned(),
            user: viewer.caller.as_ref().map(|c| ChromeUser {
                shown_name: c
                    .user
                    .display_name
                    .clone()
                    .filter(|_| config.display_name.enabled)
                    .unwrap_or_else(|| c.user.username.clone()),
                admin: c.user.admin,
            }),
            csrf: viewer.csrf.clone(),
            style: crate::assets::style_url(),
            script: crate::assets::script_url(),
            section,
            explore: config.anonymous_browsing.enabled,
            signup: config.signup.enabled,
            bare: false,
        }
    }

    /// The frame of a page shown without a viewer (error pages from the fallback).
    pub fn bare(title: &str) -> Self {
        Chrome {
            title: title.to_owned(),
            user: None,
            csrf: String::new(),
            style: crate::assets::style_url(),
            script: crate::assets::script_url(),
            section: "",
            explore: false,
            signup: false,
            bare: true,
        }
    }
}

/// Page links of a paged list: previous, next, and the pages up to
/// `pagination.before_after` either side of the current one (Portus's window).
/// `base` ends in `?` or `&`, ready for `page=`.
pub struct Pager {
    pub page: i64,
    pub total_pages: i64,
    pub total: i64,
    /// (page, its URL) of the numbered links.
    pub window: Vec<(i64, String)>,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub fn new<T>(
        paged: &portcullis_service::listing::Paged<T>,
        base: &str,
        before_after: i64,
    ) -> Self {
        let url = |page: i64| format!("{base}page={page}");
        let first = (paged.page - before_after).max(1);
        let last = (paged.page + before_after).min(paged.total_pages);
        Pager {
            page: paged.page,
            total_pages: paged.total_pages,
            total: paged.total,
            window: (first..=last).map(|n| (n, url(n))).collect(),
            previous: (paged.page > 1).then(|| url(paged.page - 1)),
            next: (paged.page < paged.total_pages).then(|| url(paged.page + 1)),
        }
    }
}

/// A form refusal with one message for one field.
pub(crate) fn field_error(
    field: &str,
    message: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    std::collections::BTreeMap::from([(field.to_owned(), vec![message.to_owned()])])
}

/// The messages for one field of a refused form, joined (empty when it was fine).
pub(crate) fn errors_of(
    errors: &std::collections::BTreeMap<String, Vec<String>>,
    field: &str,
) -> String {
    errors.get(field).map(|m| m.join(", ")).unwrap_or_default()
}

/// Renders a page for a viewer, with the cookies the viewer needs.
pub(crate) fn page(
    services: &Services,
    viewer: &Viewer,
    status: axum::http::StatusCode,
    t: &impl askama::Template,
) -> crate::render::PageResult {
    use axum::response::IntoResponse;
    let body = crate::render::html(t)?;
    Ok(viewer.finish(
        services,
        (status, axum::response::Html(body)).into_response(),
    ))
}
