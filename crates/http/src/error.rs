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
        Error::Forbidden => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::Invalid(_) | Error::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        Error::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let message = match &self.0 {
            Error::Invalid(fields) => json!(fields),
            Error::Internal(detail) => {
                // Details go to the log, never to the client.
                tracing::error!(%detail, "internal error");
                json!("Internal server error")
            }
            other => json!(other.to_string()),
        };
        let mut response = (status, Json(json!({ "message": message }))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        }
        response
    }
}

/// Unknown routes answer 404 in the API's shape.
pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("Route"))
}

/// A known route with the wrong method answers 405 in the API's shape.
pub async fn method_not_allowed() -> ApiError {
    ApiError(Error::MethodNotAllowed("Method not allowed".into()))
}
