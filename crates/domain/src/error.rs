//! The one domain error. The HTTP layer renders it as `{"message": …}` with a status
//! code (API) and later as a page (UI); the CLI prints it as one line.

use std::collections::BTreeMap;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No or wrong credentials (HTTP 401).
    #[error("Authentication fails")]
    Unauthenticated,
    /// Authenticated but not allowed (HTTP 403).
    #[error("Authorization fails")]
    Forbidden,
    /// The named thing does not exist (HTTP 404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Request shape is wrong: missing or mistyped parameter (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// Values are well-formed but break a rule; field → messages (HTTP 422).
    #[error("{}", display_fields(.0))]
    Invalid(BTreeMap<String, Vec<String>>),
    /// A rule of the operation itself refuses it (HTTP 422), e.g. removing the last owner.
    #[error("{0}")]
    Unprocessable(String),
    /// The operation is switched off by configuration (HTTP 405, as Portus).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Too many attempts from this client; try again later (HTTP 429).
    #[error("Too many requests")]
    TooManyRequests,
    /// Anything unexpected: storage failures, I/O. Logged, rendered without details (HTTP 500).
    #[error("internal error: {0}")]
    Internal(String),
}

fn display_fields(fields: &BTreeMap<String, Vec<String>>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k} {}", v.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// A 422 for one field, the shape Portus uses: `{"message": {"field": ["msg"]}}`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut m = BTreeMap::new();
        m.insert(field.to_owned(), vec![message.into()]);
        Error::Invalid(m)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}
