//! The one domain error. The HTTP layer renders it as `{"message": …}` with a status
//! code (API) and later as a page (UI); the CLI prints it as one line.

use std::collections::BTreeMap;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cause of an internal or availability error: kept for the log, never shown.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No or wrong credentials (HTTP 401).
    #[error("Authentication fails")]
    Unauthenticated,
    /// Authenticated but not allowed (HTTP 403).
    #[error("Authorization fails")]
    Forbidden,
    /// The credential only reads (a pull-only application token) and the operation
    /// writes (HTTP 403 with this message).
    #[error(
        "This credential is read-only (a pull-only application token): it cannot change anything"
    )]
    ReadOnlyCredential,
    /// The named thing does not exist (HTTP 404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is malformed: a missing, mistyped or out-of-range parameter (HTTP 400).
    #[error("{0}")]
    Malformed(String),
    /// Values are well-formed but break a rule; field → messages (HTTP 422).
    #[error("{}", display_fields(.0))]
    Invalid(BTreeMap<String, Vec<String>>),
    /// A rule of the operation itself refuses it (HTTP 422), e.g. removing the last owner.
    #[error("{0}")]
    Unprocessable(String),
    /// The operation is switched off by configuration (HTTP 405, as Portus).
    #[error("{0}")]
    Disabled(String),
    /// Too many attempts from this client; try again later (HTTP 429).
    #[error("Too many requests")]
    RateLimited,
    /// A dependency (the database) cannot answer right now (HTTP 503). Never reported as
    /// bad credentials: the caller should retry, not re-enter a password.
    #[error("service unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Anything unexpected. Logged with its cause, rendered without details (HTTP 500).
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
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

    /// An internal error with a cause that is only a message.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into().into())
    }

    /// Errors whose cause belongs in the log (500 and 503).
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Error::Internal(c) | Error::Unavailable(c) => Some(c),
            _ => None,
        }
    }
}
