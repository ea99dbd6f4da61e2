//! Persistence for Portcullis: one type, [`Store`], over SQLite or PostgreSQL.
//!
//! **One type, two backends.** The backend is chosen by the URL scheme at
//! [`Store::connect`]; callers never see which. Every query is a runtime sqlx query in
//! the SQL subset both databases accept, written once and expanded by a small macro into
//! one arm per backend (see `db.rs`), so the compiler checks bound and decoded types
//! against both drivers. We use neither sqlx's `Any` driver (it limits types and solves
//! no dialect differences) nor compile-time macros (they would need a live database of
//! each kind to build).
//!
//! **SQLite** runs in WAL mode with a single-connection write pool (writers queue in the
//! pool instead of failing with `SQLITE_BUSY`), a read-only pool for queries, and
//! `BEGIN IMMEDIATE` transactions. **PostgreSQL** uses one pool.
//!
//! **Migrations** live in `migrations/sqlite` and `migrations/postgres` in lock-step: the
//! same file names, tables, columns, nullability and constraint names. The contract test
//! suite runs every operation on both databases; `tests/schema.rs` compares the two
//! migrated schemas (columns, keys, indexes, constraints).
//!
//! **Timestamps** are `BIGINT` unix milliseconds passed in from Rust (the callers' clock),
//! never `now()` in SQL: sorting and range queries then behave the same on both
//! databases (sqlx stores date types as TEXT in SQLite), and tests control time.
//!
//! Unique violations surface as [`StoreError::Conflict`] naming the field; operations
//! that touch several tables (creating a user with personal namespaces, a registry with
//! its global team, …) run in one transaction.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod db;
mod error;
mod events;
mod identity;
mod inventory;
mod jobs;
mod namespaces;
mod registries;
mod sessions;
mod teams;
mod tokens;
mod users;
mod webhooks;

/// Not API: public only so the schema drift test can check it against both schemas.
#[doc(hidden)]
pub use error::UNIQUE_FIELDS;
pub use error::{Refusal, StoreError, StoreResult};
pub use events::EventFilter;
pub use identity::GroupSyncChange;
pub use inventory::{
    ActivityScope, Actor, InventoryRow, PushRecord, RepositoryFilter, RepositoryScope,
};
pub use jobs::{Candidacy, GRANTS_CHANNEL, JOBS_CHANNEL, JobFilter, Listener};
pub use namespaces::NamespaceUpdate;
pub use tokens::{NewApplicationToken, RefreshCredential};
pub use users::UserUpdate;
pub use webhooks::{DeliveryAttempt, NewDelivery, NewWebhook, WebhookSecrets, WebhookUpdate};

use portcullis_domain::model::{Id, NamespaceKind, Role, Visibility};

/// The application's database. Cheap to clone: clones share the connection pools.
#[derive(Debug, Clone)]
pub struct Store {
    db: db::Db,
    /// Shared by every clone: concurrent `store_events` calls commit together.
    intake: std::sync::Arc<events::GroupCommit>,
    /// SQLite's stand-in for the advisory lock of [`Store::candidacy`]: one process.
    sole_leader: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Which page of a list, sorted how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: i64,
    /// `None` returns everything from `offset` on.
    pub limit: Option<i64>,
    /// A column of the listed table. Anything else sorts by `id`: the value ends up in
    /// SQL text, so it is checked against the table's columns, never trusted.
    pub order_by: &'static str,
    pub descending: bool,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: None,
            order_by: "id",
            descending: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Number of matching rows ignoring offset and limit.
    pub total: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceScope {
    All,
    /// Public and protected namespaces plus those whose team has the viewer as a member.
    VisibleTo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamScope {
    /// Every team that is not hidden.
    AllVisible,
    /// The non-hidden teams the viewer is a member of.
    MemberOf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub admin: bool,
    pub bot: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistry {
    pub name: String,
    pub hostname: String,
    pub use_ssl: bool,
    pub external_hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNamespace {
    pub registry_id: Id,
    pub team_id: Id,
    pub name: String,
    pub description: String,
    pub kind: NamespaceKind,
    pub visibility: Visibility,
    pub user_id: Option<Id>,
}

/// What the token endpoint needs about one namespace, in one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceAccess {
    pub namespace_id: Id,
    pub kind: NamespaceKind,
    pub visibility: Visibility,
    /// The user's role in the owning team; `None` for anonymous users and non-members.
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationState {
    UpToDate,
    /// Some migrations of this binary have not been applied.
    Pending,
    /// No migration has ever run against this database.
    Uninitialized,
}

/// How a sortable column orders, so both databases order rows the same way.
#[derive(Clone, Copy)]
enum Sort {
    Plain,
    /// Compared case-insensitively (`lower()`), as people expect names to sort.
    Text,
    /// NULLs go last ascending and first descending (PostgreSQL's default; SQLite's is
    /// the opposite, hence spelled out).
    Nullable,
    NullableText,
}

impl PageRequest {
    /// `ORDER BY … LIMIT … OFFSET …` for a table aliased `alias` whose sortable columns
    /// are `columns`. Only whitelisted names and integers reach the SQL text.
    fn clause(&self, alias: &str, columns: &[(&str, Sort)]) -> String {
        format!("{}{}", self.order(alias, columns), self.limits())
    }

    /// A page of `select` (a `SELECT … FROM … alias …` of the full rows, without
    /// `WHERE`) whose rows are those of `ids_from` (`… FROM … WHERE …`, naming the same
    /// `alias`) on this page: the page's ids are found first, then only they are
    /// joined to their columns. With a large `OFFSET`, the rows skipped then cost an
    /// index step each instead of every joined column and correlated count.
    fn page_of(
        &self,
        select: &str,
        ids_from: &str,
        alias: &str,
        columns: &[(&str, Sort)],
    ) -> String {
        let order = self.order(alias, columns);
        let limits = self.limits();
        format!(
            "{select} JOIN (SELECT {alias}.id FROM {ids_from}{order}{limits}) page \
             ON page.id = {alias}.id{order}"
        )
    }

    fn order(&self, alias: &str, columns: &[(&str, Sort)]) -> String {
        let (column, sort) = columns
            .iter()
            .find(|(name, _)| *name == self.order_by)
            .copied()
            .unwrap_or(("id", Sort::Plain));
        let dir = if self.descending { "DESC" } else { "ASC" };
        let key = match sort {
            Sort::Plain => format!("{alias}.{column} {dir}"),
            Sort::Text => format!("lower({alias}.{column}) {dir}, {alias}.{column} {dir}"),
            Sort::Nullable => format!("{alias}.{column} IS NULL {dir}, {alias}.{column} {dir}"),
            Sort::NullableText => format!(
                "{alias}.{column} IS NULL {dir}, lower({alias}.{column}) {dir}, {alias}.{column} {dir}"
            ),
        };
        format!(" ORDER BY {key}, {alias}.id {dir}")
    }

    fn limits(&self) -> String {
        // No LIMIT means all rows; both databases accept the largest BIGINT for that.
        let limit = self.limit.map_or(i64::MAX, |l| l.max(0));
        let offset = self.offset.max(0);
        format!(" LIMIT {limit} OFFSET {offset}")
    }
}

impl Store {
    /// Opens the database named by `url`: `sqlite:PATH` / `sqlite://PATH` (the file and
    /// its directory are created when missing; `sqlite::memory:` for a private in-memory
    /// database) or `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        Self::connect_with_pool(url, db::POSTGRES_CONNECTIONS).await
    }

    /// [`Store::connect`] keeping at most `pg_connections` PostgreSQL connections
    /// (`database.pool`; SQLite's pools are fixed).
    pub async fn connect_with_pool(url: &str, pg_connections: u32) -> StoreResult<Store> {
        Ok(Store {
            db: db::Db::connect(url, pg_connections).await?,
            intake: std::sync::Arc::default(),
            sole_leader: std::sync::Arc::default(),
        })
    }

    /// Applies pending migrations. Safe to run from several processes at once on
    /// PostgreSQL (sqlx holds an advisory lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.db.migrate().await
    }

    pub async fn migration_state(&self) -> StoreResult<MigrationState> {
        let mut c = self.db.reader().await?;
        let sql = if self.db.is_sqlite() {
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
        } else {
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
        };
        let tables: i64 = db::fetch_one!(c.conn(), sql, [], |r| db::RowGet::col(r, "n"));
        if tables == 0 {
            return Ok(MigrationState::Uninitialized);
        }
        let applied: Vec<i64> = db::fetch_all!(
            c.conn(),
            "SELECT version FROM _sqlx_migrations WHERE success",
            [],
            |r| db::RowGet::col(r, "version")
        );
        if applied.is_empty() {
            return Ok(MigrationState::Uninitialized);
        }
        let pending = self
            .db
            .known_versions()
            .iter()
            .any(|v| !applied.contains(v));
        Ok(if pending {
            MigrationState::Pending
        } else {
            MigrationState::UpToDate
        })
    }

    /// Closes every connection; later operations fail with [`StoreError::Unavailable`].
    /// For graceful shutdown (and for tests of what an outage looks like).
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let mut c = self.db.reader().await?;
        let _: i64 = db::fetch_one!(c.conn(), "SELECT CAST(1 AS BIGINT) AS one", [], |r| {
            db::RowGet::col(r, "one")
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: &[(&str, Sort)] = &[
        ("id", Sort::Plain),
        ("name", Sort::Text),
        ("locked_at", Sort::Nullable),
    ];

    #[test]
    fn order_by_is_whitelisted() {
        let p = PageRequest {
            offset: 5,
            limit: Some(10),
            order_by: "name; DROP TABLE users",
            descending: true,
        };
        assert_eq!(
            p.clause("t", COLUMNS),
            " ORDER BY t.id DESC, t.id DESC LIMIT 10 OFFSET 5"
        );
        let p = PageRequest {
            order_by: "name",
            ..PageRequest::default()
        };
        assert_eq!(
            p.clause("t", COLUMNS),
            format!(
                " ORDER BY lower(t.name) ASC, t.name ASC, t.id ASC LIMIT {} OFFSET 0",
                i64::MAX
            )
        );
        let p = PageRequest {
            order_by: "locked_at",
            offset: -3,
            limit: Some(-1),
            descending: false,
        };
        assert_eq!(
            p.clause("t", COLUMNS),
            " ORDER BY t.locked_at IS NULL ASC, t.locked_at ASC, t.id ASC LIMIT 0 OFFSET 0"
        );
    }

    #[test]
    fn store_is_shareable() {
        fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync_clone::<Store>();
    }
}
