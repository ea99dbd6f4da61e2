//! Sign-in through an identity provider (Portus's `/users/auth/<provider>` and
//! `/users/oauth`): the button's form starts it, the provider's callback finishes it,
//! and someone new picks a username. The pending sign-in travels in a sealed,
//! short-lived cookie limited to these paths (see `portcullis_service::external_login`).

use super::account::{sign_in_form, signed_in};
use super::{Chrome, page};
use crate::render::{PageError, PageResult};
use crate::session::{PagePath, PageQuery, Submitted, Viewer, cookie, see_other};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use portcullis_domain::Error;
use portcullis_service::Services;
use portcullis_service::external_login::{NewAccount, Outcome};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The cookie holding the pending sign-in.
const PENDING_COOKIE: &str = "portcullis_oidc";
const COOKIE_PATH: &str = "/users/auth";

/// Set (or with `None` cleared) for the provider paths only. `SameSite=Lax`: it must
/// come along when the provider sends the browser back (a top-level GET).
fn pending_cookie(s: &Services, value: Option<&str>) -> HeaderValue {
    let secure = if s.config().external_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let (value, age) = match value {
        Some(v) => (v, 600),
        None => ("", 0),
    };
    let v = format!(
        "{PENDING_COOKIE}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={age}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn callback_url(s: &Services, provider: &str) -> String {
    format!(
        "{}/users/auth/{provider}/callback",
        s.config().external_url()
    )
}

/// What a refused or failed provider sign-in shows: the sign-in page with why.
fn refused(s: &Services, viewer: &Viewer, e: Error) -> PageResult {
    let (status, message) = match e {
        Error::Unprocessable(message) => (StatusCode::FORBIDDEN, message),
        Error::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The identity provider does not answer. Try again in a few minutes.".to_owned(),
        ),
        other => return Err(PageError::Domain(other)),
    };
    sign_in_form(s, viewer, status, String::new(), Some(message), false)
}

/// The button (a link): off to the provider. A GET, because the page's content
/// security policy lets forms post only to us, and browsers apply that to where a
/// form's answer redirects. Nothing changes here before the callback, whose state,
/// nonce and PKCE verifier bind it to this browser's pending cookie.
pub async fn start(
    State(s): State<Services>,
    PagePath(provider): PagePath<String>,
    viewer: Viewer,
) -> PageResult {
    let redirect_uri = callback_url(&s, &provider);
    match s.external_login.begin(&provider, &redirect_uri).await {
        Ok((url, pending)) => {
            let mut response = see_other(&url);
            response
                .headers_mut()
                .append(header::SET_COOKIE, pending_cookie(&s, Some(&pending)));
            Ok(response)
        }
        Err(e) => refused(&s, &viewer, e),
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    state: String,
    code: Option<String>,
    error: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "oauth_username.html")]
struct UsernamePage {
    chrome: Chrome,
    provider: String,
    account: NewAccount,
    errors: BTreeMap<String, Vec<String>>,
}

super::field_errors!(UsernamePage);

/// The provider sends the browser back here.
pub async fn callback(
    State(s): State<Services>,
    PagePath(provider): PagePath<String>,
    headers: HeaderMap,
    viewer: Viewer,
    PageQuery(q): PageQuery<CallbackQuery>,
) -> PageResult {
    let pending = cookie(&headers, PENDING_COOKIE)
        .unwrap_or_default()
        .to_owned();
    let finished = s
        .external_login
        .finish(
            &provider,
            &pending,
            &q.state,
            q.code.as_deref(),
            q.error.as_deref(),
        )
        .await;
    let mut response = match finished {
        Ok(Outcome::SignedIn(caller)) => {
            let session = s.sessions.open(caller, &viewer.user_agent).await?;
            signed_in(&s, &session.cookie)
        }
        Ok(Outcome::ChooseUsername(account)) => {
            let t = UsernamePage {
                chrome: Chrome::new(&s, &viewer, "Choose your username", "sign_in"),
                provider,
                account,
                errors: BTreeMap::new(),
            };
            page(&s, &viewer, StatusCode::OK, &t)?
        }
        Err(e) => refused(&s, &viewer, e)?,
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, pending_cookie(&s, None));
    Ok(response)
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    sealed: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
}

/// The username page's form: the new account, signed in.
pub async fn create_account(
    State(s): State<Services>,
    PagePath(provider): PagePath<String>,
    submitted: Submitted<AccountForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let created = s
        .external_login
        .create_account(
            &provider,
            &form.sealed,
            &form.username,
            &form.email,
            &form.display_name,
        )
        .await;
    match created {
        Ok(caller) => {
            let session = s.sessions.open(caller, &viewer.user_agent).await?;
            Ok(signed_in(&s, &session.cookie))
        }
        Err(Error::Invalid(errors)) => {
            let t = UsernamePage {
                chrome: Chrome::new(&s, &viewer, "Choose your username", "sign_in"),
                provider,
                account: NewAccount {
                    username: form.username,
                    email: form.email,
                    display_name: form.display_name,
                    sealed: form.sealed,
                },
                errors,
            };
            page(&s, &viewer, StatusCode::UNPROCESSABLE_ENTITY, &t)
        }
        Err(e) => refused(&s, &viewer, e),
    }
}
