//! Storage errors. Unique violations become [`StoreError::Conflict`] naming the field, so
//! services can answer "username has already been taken" without a racy look-up first.

use sqlx::error::{DatabaseError, ErrorKind};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the field is one of `username`, `email`,
    /// `display_name`, `name`, `hostname`, `application`, `member`, `user`.
    #[error("{0} has already been taken")]
    Conflict(&'static str),
    /// The row to change does not exist, or a row it refers to does not.
    #[error("record not found")]
    NotFound,
    /// Anything else the database or driver reported.
    #[error("database error: {0}")]
    Backend(String),
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
        "application_tokens_user_id_application_key",
        "application_tokens.user_id, application_tokens.application",
        "application",
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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => match conflict_field(db.as_ref()) {
                    Some(field) => StoreError::Conflict(field),
                    None => StoreError::Backend(e.to_string()),
                },
                // Inserting or updating a reference to a row that does not exist.
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ => StoreError::Backend(e.to_string()),
            },
            _ => StoreError::Backend(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Backend(format!("migration failed: {e}"))
    }
}

impl From<StoreError> for portcullis_domain::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(field) => {
                portcullis_domain::Error::invalid(field, "has already been taken")
            }
            StoreError::NotFound => portcullis_domain::Error::NotFound("record"),
            StoreError::Backend(message) => portcullis_domain::Error::Internal(message),
        }
    }
}
