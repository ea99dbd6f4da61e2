//! Who is looking at a page, and the CSRF rule for forms.
//!
//! The session cookie (`portcullis_session`) holds a session secret; a visitor without
//! a session gets a `portcullis_visitor` cookie instead, so the sign-in and sign-up
//! forms are protected too. A form's CSRF token is derived from whichever of the two
//! the request carries (`portcullis_service::sessions::csrf_token`). Every form posts
//! through [`Submitted`], which refuses a missing or wrong token and a request another
//! site sent (`Origin` or `Sec-Fetch-Site`), before the handler runs. Cookies are
//! `HttpOnly` and `SameSite=Lax`, and `Secure` when the instance is served over HTTPS.
//! The API never reads these cookies.

use crate::render::PageError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_domain::Error;
use portcullis_http::extract::ClientAddr;
use portcullis_service::sessions::{csrf_matches, csrf_token};
use portcullis_service::{Authenticated, Services};
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub const SESSION_COOKIE: &str = "portcullis_session";
pub const VISITOR_COOKIE: &str = "portcullis_visitor";
/// Largest form accepted (a description, a comment).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value. `max_age` `Some(0)` deletes the cookie; `None` makes it last
/// as long as the browser (the session's own timeouts end it on the server).
pub fn set_cookie(
    services: &Services,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let secure = if services
        .config()
        .server
        .external_url
        .starts_with("https://")
    {
        "; Secure"
    } else {
        ""
    };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The person looking at a page: signed in or not, and the CSRF token their forms
/// carry.
pub struct Viewer {
    pub caller: Option<Authenticated>,
    pub csrf: String,
    /// The session cookie's value, when signed in (sign-out ends it).
    pub session_cookie: Option<String>,
    /// The request's client address (the rate-limit key of sign-in).
    pub client: String,
    pub user_agent: String,
    /// A visitor cookie to set with the response: this is a first visit.
    new_visitor: Option<HeaderValue>,
    /// The request carried a session cookie that no longer works: clear it.
    stale_session: bool,
}

impl Viewer {
    /// The signed-in caller, or the sign-in page.
    pub fn signed_in(&self) -> Result<&Authenticated, PageError> {
        self.caller
            .as_ref()
            .ok_or(PageError::Domain(Error::Unauthenticated))
    }

    /// Adds the cookies this viewer needs to a response.
    pub fn finish(&self, services: &Services, mut response: Response) -> Response {
        let headers = response.headers_mut();
        if let Some(v) = &self.new_visitor {
            headers.append(header::SET_COOKIE, v.clone());
        }
        if self.stale_session {
            headers.append(
                header::SET_COOKIE,
                set_cookie(services, SESSION_COOKIE, "", Some(0)),
            );
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl FromRequestParts<Services> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Services,
    ) -> Result<Self, Self::Rejection> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, services)
            .await
            .unwrap_or_else(|never| match never {});
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut viewer = Viewer {
            caller: None,
            csrf: String::new(),
            session_cookie: None,
            client,
            user_agent,
            new_visitor: None,
            stale_session: false,
        };
        if let Some(value) = cookie(&parts.headers, SESSION_COOKIE) {
            match services.sessions.resume(value).await? {
                Some(caller) => {
                    viewer.caller = Some(caller);
                    viewer.csrf = csrf_token(value);
                    viewer.session_cookie = Some(value.to_owned());
                    return Ok(viewer);
                }
                None => viewer.stale_session = true,
            }
        }
        match cookie(&parts.headers, VISITOR_COOKIE).filter(|v| v.starts_with("pcv_")) {
            Some(value) => viewer.csrf = csrf_token(value),
            None => {
                let value = services.sessions.visitor_cookie();
                viewer.csrf = csrf_token(&value);
                viewer.new_visitor = Some(set_cookie(services, VISITOR_COOKIE, &value, None));
            }
        }
        Ok(viewer)
    }
}

/// Whether the request came from a page of this site: a browser's `Sec-Fetch-Site`
/// must not say `cross-site`, and an `Origin`, when sent, must name this host.
fn same_origin(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// The fields of a form that carries nothing but its CSRF token (sign-out, toggles).
#[derive(Deserialize)]
pub struct NoFields {}

/// A submitted form whose CSRF token and origin were checked, with its viewer.
pub struct Submitted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<Services> for Submitted<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, services: &Services) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        if !same_origin(&parts.headers) {
            return Err(PageError::Csrf);
        }
        let viewer = Viewer::from_request_parts(&mut parts, services).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| Error::Malformed("The form is too large".into()))?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::Csrf)?;
        // A first visit has no cookie its token could match.
        if viewer.new_visitor.is_some() || !matches_csrf(&parts.headers, &viewer, &field.csrf) {
            return Err(PageError::Csrf);
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| Error::Malformed(format!("The form could not be read: {e}")))?;
        Ok(Submitted { viewer, form })
    }
}

fn matches_csrf(headers: &HeaderMap, viewer: &Viewer, submitted: &str) -> bool {
    let bound = match &viewer.session_cookie {
        Some(session) => Some(session.as_str()),
        None => cookie(headers, VISITOR_COOKIE),
    };
    bound.is_some_and(|cookie| csrf_matches(cookie, submitted))
}

/// A path parameter; a malformed one (`/repositories/abc`) is the 404 page, as an
/// unknown id is, instead of axum's plain-text 400.
pub struct PagePath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PagePath<T> {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PagePath(p.0))
            .map_err(|_| PageError::Domain(Error::NotFound("Page")))
    }
}

/// A query string; a malformed one (`?page=x`) is the error page with its reason.
pub struct PageQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| PageQuery(q.0))
            .map_err(|r| PageError::Domain(Error::Malformed(r.body_text())))
    }
}

/// After a form: back to a page (303, so a reload does not post again).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins() {
        for (pairs, ok) in [
            (vec![("host", "p.example")], true),
            (
                vec![("host", "p.example"), ("origin", "https://p.example")],
                true,
            ),
            (
                vec![
                    ("host", "p.example:3000"),
                    ("origin", "http://p.example:3000"),
                ],
                true,
            ),
            (
                vec![("host", "p.example"), ("origin", "https://evil.example")],
                false,
            ),
            (vec![("host", "p.example"), ("origin", "null")], false),
            (
                vec![("host", "p.example"), ("sec-fetch-site", "cross-site")],
                false,
            ),
            (
                vec![("host", "p.example"), ("sec-fetch-site", "same-origin")],
                true,
            ),
        ] {
            assert_eq!(same_origin(&headers(&pairs)), ok, "{pairs:?}");
        }
    }

    #[test]
    fn cookies() {
        let h = headers(&[
            ("cookie", "a=1; portcullis_session=pcs_x"),
            ("cookie", "b=2"),
        ]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("pcs_x"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, VISITOR_COOKIE), None);
    }
}
