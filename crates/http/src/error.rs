//! The domain error rendered for the API: a status code and `{"message": …}`, the body
//! shape Portus clients (portusctl, scripts) parse.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_domain::Error;
use serde_json::json;

/// Wraps the domain error so handlers can return `Result<_, ApiError>` and use `?`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Unauthenticated => StatusCode::UNAUTHORIZED,
        Error::Forbidden | Error::ReadOnlyCredential => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Malformed(_) => StatusCode::BAD_REQUEST,
        Error::Invalid(_) | Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Disabled(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The cause chain of an error, for the log.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// Logs the cause of an internal or availability error, once, where the response is
/// rendered (the API here, the web UI's error page); clients never see it.
pub fn log_cause(e: &Error) {
    if let Some(cause) = e.cause() {
        let cause = causes(cause.as_ref());
        if status_of(e) == StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(%cause, "service unavailable");
        } else {
            tracing::error!(%cause, "internal error");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        log_cause(&self.0);
        let message = match &self.0 {
            Error::Invalid(fields) => json!(fields),
            Error::Internal(_) => json!("Internal server error"),
            Error::Unavailable(_) => json!("Service unavailable: please retry shortly"),
            other => json!(other.to_string()),
        };
        let mut response = (status, Json(json!({ "message": message }))).into_response();
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS => Some("60"),
            StatusCode::SERVICE_UNAVAILABLE => Some("5"),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static(secs));
        }
        response
    }
}

/// Unknown routes answer 404 in the API's shape.
pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("Route"))
}

/// A known route with the wrong method answers 405 in the API's shape.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({ "message": "Method not allowed" })),
    )
        .into_response()
}
