//! Storage errors. Unique violations become [`StoreError::Conflict`] naming the field, so
//! services can answer "username has already been taken" without a racy look-up first.

use sqlx::error::{DatabaseError, ErrorKind};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the field is one of `username`, `email`,
    /// `display_name`, `name`, `hostname`, `application`, `member`, `user`, `job`.
    #[error("{0} has already been taken")]
    Conflict(&'static str),
    /// The row to change does not exist, or a row it refers to does not.
    #[error("record not found")]
    NotFound,
    /// A guarded write found that it would break an invariant, and wrote nothing.
    #[error("{0}")]
    Refused(Refusal),
    /// The database cannot be reached or cannot answer now (connection refused or lost,
    /// pool exhausted or closed, database busy or shutting down). Callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else the database or driver reported.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A value this crate cannot work with: a bad URL or path, a row that does not decode.
    #[error("{0}")]
    Other(String),
}

/// Invariants the store enforces inside the transaction that writes (see `db::Guard`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("you can only use this when there are no users on the system")]
    AlreadyBootstrapped,
    #[error("cannot remove the last admin")]
    LastAdmin,
    #[error("cannot remove or demote the only owner of the team")]
    LastOwner,
    /// The user is the only owner of these teams.
    #[error("the user is the only owner of {}: give the team another owner first", .0.join(", "))]
    OnlyOwnerOf(Vec<String>),
    /// The user already holds this many application tokens.
    #[error("Users cannot have more than {0} application tokens")]
    TokenQuota(i64),
    /// Sign-up is closed: `signup` is disabled and this is not the first user.
    #[error("sign-up is disabled on this instance")]
    SignupClosed,
    /// The registry event is no longer pending: another run of the `process_events` job
    /// (one that took over this run's lapsed lease) finished it first. Nothing of this
    /// run's effects was written.
    #[error("the event was already processed by another run")]
    EventAlreadyFinished,
}

/// Unique constraints and the field each protects: (PostgreSQL constraint or index name,
/// the detail SQLite puts after "UNIQUE constraint failed: ", field). SQLite names the
/// columns for column constraints and the index only for expression indexes.
/// `tests/schema.rs` checks every entry against both migrated schemas.
pub const UNIQUE_FIELDS: &[(&str, &str, &str)] = &[
    (
        "users_username_key",
        "index 'users_username_key'",
        "username",
    ),
    ("users_email_key", "index 'users_email_key'", "email"),
    (
        "users_display_name_key",
        "users.display_name",
        "display_name",
    ),
    ("teams_name_key", "index 'teams_name_key'", "name"),
    ("registries_name_key", "registries.name", "name"),
    ("registries_hostname_key", "registries.hostname", "hostname"),
    (
        "namespaces_registry_id_name_key",
        "namespaces.registry_id, namespaces.name",
        "name",
    ),
    (
        "namespaces_registry_id_user_id_key",
        "namespaces.registry_id, namespaces.user_id",
        "user",
    ),
    (
        "team_users_team_id_user_id_key",
        "team_users.team_id, team_users.user_id",
        "member",
    ),
    (
        "external_identities_provider_subject_key",
        "external_identities.provider, external_identities.subject",
        "identity",
    ),
    (
        "application_tokens_user_id_application_key",
        "application_tokens.user_id, application_tokens.application",
        "application",
    ),
    ("jobs_singleton_key", "jobs.singleton", "job"),
    (
        "repositories_namespace_id_name_key",
        "repositories.namespace_id, repositories.name",
        "name",
    ),
    (
        "tags_repository_id_name_key",
        "tags.repository_id, tags.name",
        "name",
    ),
    (
        "webhook_headers_webhook_id_name_key",
        "index 'webhook_headers_webhook_id_name_key'",
        "name",
    ),
];

const SQLITE_UNIQUE_PREFIX: &str = "UNIQUE constraint failed: ";

fn conflict_field(e: &dyn DatabaseError) -> Option<&'static str> {
    if let Some(constraint) = e.constraint() {
        return UNIQUE_FIELDS
            .iter()
            .find(|(pg, _, _)| *pg == constraint)
            .map(|(_, _, field)| *field);
    }
    let detail = e.message().strip_prefix(SQLITE_UNIQUE_PREFIX)?;
    UNIQUE_FIELDS
        .iter()
        .find(|(_, sqlite, _)| *sqlite == detail)
        .map(|(_, _, field)| *field)
}

/// Errors that mean "cannot reach or use the database right now" rather than "this
/// statement is wrong": the caller should retry later.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // PostgreSQL: class 08 connection exceptions, 57P0x shutdown/crash,
            // 53300 too many connections. SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED (the
            // busy timeout ran out).
            code.starts_with("08")
                || code.starts_with("57P0")
                || code == "53300"
                || code == "5"
                || code == "6"
        }),
        _ => false,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            return StoreError::Unavailable(e);
        }
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => match conflict_field(db.as_ref()) {
                    Some(field) => StoreError::Conflict(field),
                    None => StoreError::Database(e),
                },
                // Inserting or updating a reference to a row that does not exist.
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ => StoreError::Database(e),
            },
            _ => StoreError::Database(e),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => StoreError::Other(format!("migration failed: {other}")),
        }
    }
}

impl From<StoreError> for portcullis_domain::Error {
    fn from(e: StoreError) -> Self {
        use portcullis_domain::Error;
        match e {
            StoreError::Conflict(field) => Error::invalid(field, "has already been taken"),
            StoreError::NotFound => Error::NotFound("record"),
            StoreError::Refused(refusal) => Error::Unprocessable(refusal.to_string()),
            StoreError::Unavailable(_) => Error::Unavailable(Box::new(e)),
            StoreError::Database(_) | StoreError::Other(_) => Error::Internal(Box::new(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_unavailable_and_keep_their_cause() {
        let e = StoreError::from(sqlx::Error::PoolClosed);
        assert!(matches!(e, StoreError::Unavailable(_)));
        let domain: portcullis_domain::Error = e.into();
        assert!(matches!(domain, portcullis_domain::Error::Unavailable(_)));
        let cause = domain.cause().map(|c| c.to_string()).unwrap_or_default();
        assert!(cause.contains("closed"), "{cause}");
        let e = StoreError::from(sqlx::Error::ColumnNotFound("x".into()));
        assert!(matches!(e, StoreError::Database(_)));
        assert!(matches!(
            portcullis_domain::Error::from(e),
            portcullis_domain::Error::Internal(_)
        ));
    }
}
