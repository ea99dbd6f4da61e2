//! Rendering: templates to responses, and the domain error as a page in the same look
//! (the API renders the same error as JSON, `portcullis_http::error`).

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use portcullis_domain::Error;
use portcullis_http::error::{log_cause, status_of};

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    Domain(Error),
    /// A form without the CSRF token of its session, or from another site.
    Csrf,
}

impl<E: Into<Error>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError::Domain(e.into())
    }
}

pub type PageResult = Result<Response, PageError>;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: crate::pages::Chrome,
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// A full error page; it needs no session, so it also serves the fallback.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        chrome: crate::pages::Chrome::bare(title),
        status: status.as_u16(),
        title,
        message,
    };
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(_) => (status, title.to_owned()).into_response(),
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = match self {
            PageError::Csrf => {
                return error_page(
                    StatusCode::FORBIDDEN,
                    "Form expired",
                    "This form has expired or was sent from another site. Go back, reload the page and try again.",
                );
            }
            PageError::Domain(e) => e,
        };
        if matches!(e, Error::Unauthenticated) {
            // No working session: to the sign-in page, dropping a stale session cookie.
            let mut response = Redirect::to("/users/sign_in").into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                header::HeaderValue::from_static(
                    "portcullis_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
                ),
            );
            return response;
        }
        log_cause(&e);
        let status = status_of(&e);
        let (title, message) = match &e {
            Error::NotFound(_) => (
                "Not found",
                "There is nothing here, or you may not see it.".to_owned(),
            ),
            Error::Forbidden | Error::ReadOnlyCredential => {
                ("Not allowed", "You may not do this.".to_owned())
            }
            Error::Internal(_) => (
                "Something went wrong",
                "The error has been logged. Please try again later.".to_owned(),
            ),
            Error::Unavailable(_) => (
                "Temporarily unavailable",
                "Portcullis cannot reach its database right now. Please retry shortly.".to_owned(),
            ),
            Error::RateLimited => (
                "Too many attempts",
                "Too many attempts from your address. Wait a minute and try again.".to_owned(),
            ),
            Error::Invalid(_) => ("Invalid input", e.to_string()),
            other => ("Cannot do this", other.to_string()),
        };
        let mut response = error_page(status, title, &message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        response
    }
}

/// Renders a template; a failure is an internal error page.
pub fn html(t: &impl Template) -> Result<String, PageError> {
    t.render()
        .map_err(|e| PageError::Domain(Error::Internal(Box::new(e))))
}
