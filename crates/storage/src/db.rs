//! The two backends behind [`Store`](crate::Store): pools, connections, transactions,
//! migrations, and the macros that run one SQL text on whichever backend is live.
//!
//! Every query is written once in the subset both databases accept (`$n` placeholders,
//! `RETURNING`, `lower()` expression indexes). The macros expand the query into one
//! `match` arm per backend, so the compiler checks every bound value and decoded column
//! against both drivers while the SQL stays single-sourced.

use crate::error::{StoreError, StoreResult};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Decode, Postgres, Row, SqlSafeStr, Sqlite, Transaction, Type};
use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// SQLite serializes writers anyway; one writing connection turns lock contention
/// (`SQLITE_BUSY`) into queueing inside the pool.
const SQLITE_WRITE_CONNECTIONS: u32 = 1;
const SQLITE_READ_CONNECTIONS: u32 = 4;
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// `database.pool` unless configured.
pub(crate) const POSTGRES_CONNECTIONS: u32 = 16;

/// The migrations of each backend, embedded in the binary. Listed by hand rather than
/// with `sqlx::migrate!` because that macro needs sqlx's `macros` feature, which the
/// workspace keeps off (no compile-time database macros); a unit test checks that this
/// list and the two folders agree file for file.
macro_rules! embedded_migrations {
    ($($version:literal => $stem:literal),* $(,)?) => {
        const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
            $(($version, $stem, include_str!(concat!("../migrations/sqlite/", $stem, ".sql")))),*
        ];
        const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
            $(($version, $stem, include_str!(concat!("../migrations/postgres/", $stem, ".sql")))),*
        ];
    };
}

embedded_migrations! {
    1 => "0001_initial",
    2 => "0002_refresh_token_binding",
    3 => "0003_inventory",
    4 => "0004_webhook_attempts",
    5 => "0005_sessions",
    6 => "0006_password_resets",
    7 => "0007_scale_indexes",
    8 => "0008_identity",
}

fn migrator(migrations: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|(version, stem, sql)| {
                // The description is what sqlx derives from the file name, so a later
                // switch to `sqlx::migrate!` finds the same rows in `_sqlx_migrations`.
                let name = stem.split_once('_').map_or(*stem, |(_, name)| name);
                Migration::new(
                    *version,
                    Cow::Owned(name.replace('_', " ")),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite { write: SqlitePool, read: SqlitePool },
    Postgres(PgPool),
}

/// A connection of either backend, borrowed from a pool or a transaction.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// A connection checked out of a pool; returned to it on drop.
pub(crate) enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A transaction of either backend; rolled back on drop unless committed, so `?` inside
/// a multi-statement operation leaves nothing half-done.
pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// An invariant that a transaction checks and then writes ("there is always an admin",
/// "a team always has an owner", …). Taking its guard first makes concurrent
/// transactions that check the same invariant run one after the other.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Guard {
    /// The set of users (the first-admin bootstrap).
    Users,
    /// Who is an enabled admin.
    Admins,
    /// Who owns which team.
    TeamOwners,
    /// The application tokens of one user (the per-user quota).
    TokenQuota(i64),
}

impl Guard {
    /// The PostgreSQL advisory lock key: the kind in the top byte, an id below it.
    fn key(self) -> i64 {
        let (kind, id) = match self {
            Guard::Users => (1, 0),
            Guard::Admins => (2, 0),
            Guard::TeamOwners => (3, 0),
            Guard::TokenQuota(user_id) => (4, user_id & 0x00ff_ffff_ffff_ffff),
        };
        (kind << 56) | id
    }
}

impl Tx {
    /// Serialises this transaction with every other one that takes the same guard.
    /// PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback;
    /// under READ COMMITTED every later statement then sees what the previous holder
    /// committed. SQLite: nothing to do, because `BEGIN IMMEDIATE` already holds the
    /// database's only write lock for the whole transaction (and this process has a
    /// single writing connection). Guards must be taken in the order of [`Guard`]'s
    /// variants, so two transactions never wait for each other.
    pub(crate) async fn guard(&mut self, guard: Guard) -> StoreResult<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(guard.key())
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Tells other nodes' workers that a job was queued (PostgreSQL `NOTIFY`, delivered
    /// when this transaction commits; nothing on SQLite, where the caller wakes its own
    /// workers in memory).
    pub(crate) async fn notify_jobs(&mut self) -> StoreResult<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(crate::jobs::JOBS_CHANNEL)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t) => Conn::Sqlite(t),
            Tx::Postgres(t) => Conn::Postgres(t),
        }
    }

    pub(crate) async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Db {
    pub(crate) async fn connect(url: &str, pg_connections: u32) -> StoreResult<Db> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            // sqlx's own spelling: `sqlite://relative/path` and `sqlite:///absolute`.
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split_once('?').map_or(rest, |(path, _)| path);
            return connect_sqlite(path).await;
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Other(format!("invalid PostgreSQL URL: {e}")))?;
            // One direct connection first: a pool retries until its timeout and then
            // reports only "timed out", while this fails at once with the cause.
            let probe = PgConnection::connect_with(&options)
                .await
                .map_err(|e| StoreError::Other(format!("cannot connect to PostgreSQL: {e}")))?;
            let _ = probe.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(pg_connections.max(1))
                .connect_lazy_with(options);
            tracing::debug!("connected to PostgreSQL");
            return Ok(Db::Postgres(pool));
        }
        // Only the scheme is echoed: the rest of a URL may carry a password.
        let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
        Err(StoreError::Other(format!(
            "unsupported database URL scheme `{scheme}`: expected `sqlite:PATH` or `postgres://…`"
        )))
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Connections this process holds: (in use, idle), over every pool.
    pub(crate) fn connections(&self) -> (u32, u32) {
        let stats = |size: u32, idle: usize| {
            let idle = u32::try_from(idle).unwrap_or(u32::MAX);
            (size.saturating_sub(idle), idle)
        };
        match self {
            Db::Sqlite { read, write } => {
                let (r_used, r_idle) = stats(read.size(), read.num_idle());
                let (w_used, w_idle) = stats(write.size(), write.num_idle());
                (r_used + w_used, r_idle + w_idle)
            }
            Db::Postgres(pool) => stats(pool.size(), pool.num_idle()),
        }
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, Db::Sqlite { .. })
    }

    /// A connection for queries that only read. On SQLite this is the read pool, so
    /// readers never queue behind the single writer (WAL lets them run concurrently).
    pub(crate) async fn reader(&self) -> StoreResult<Pooled> {
        Ok(match self {
            Db::Sqlite { read, .. } => Pooled::Sqlite(read.acquire().await?),
            Db::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// A connection for a single writing statement.
    pub(crate) async fn writer(&self) -> StoreResult<Pooled> {
        Ok(match self {
            Db::Sqlite { write, .. } => Pooled::Sqlite(write.acquire().await?),
            Db::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
        })
    }

    /// A transaction for read-modify-write sequences. SQLite takes the write lock at
    /// `BEGIN IMMEDIATE` rather than at the first write, so two processes sharing the
    /// file cannot both read and then fail to upgrade (which `busy_timeout` can't fix).
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite { write, .. } => Tx::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite { write, read } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    pub(crate) async fn migrate(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite { write, .. } => migrator(SQLITE_MIGRATIONS).run(write).await?,
            Db::Postgres(pool) => migrator(POSTGRES_MIGRATIONS).run(pool).await?,
        }
        Ok(())
    }

    /// Versions this binary knows; both lists are identical by construction.
    pub(crate) fn known_versions(&self) -> Vec<i64> {
        let list = match self {
            Db::Sqlite { .. } => SQLITE_MIGRATIONS,
            Db::Postgres(_) => POSTGRES_MIGRATIONS,
        };
        list.iter().map(|(version, _, _)| *version).collect()
    }
}

async fn connect_sqlite(path: &str) -> StoreResult<Db> {
    if path.is_empty() {
        return Err(StoreError::Other(
            "the sqlite: database URL has no path".to_owned(),
        ));
    }
    let options = SqliteConnectOptions::new()
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .synchronous(SqliteSynchronous::Normal);
    if path == ":memory:" {
        // Every connection to `:memory:` is its own database: share one connection.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.in_memory(true))
            .await?;
        return Ok(Db::Sqlite {
            write: pool.clone(),
            read: pool,
        });
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent).await.map_err(|e| {
            StoreError::Other(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let options = options.filename(path).journal_mode(SqliteJournalMode::Wal);
    // The writer connects first: it creates the file and switches it to WAL, which the
    // read-only connections then find in place.
    // No liveness ping before each use: a file database has no connection to lose,
    // and the ping was one more round trip through the driver's thread per statement.
    let write = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(SQLITE_WRITE_CONNECTIONS)
        .connect_with(options.clone().create_if_missing(true))
        .await?;
    let read = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(SQLITE_READ_CONNECTIONS)
        .connect_with(options.read_only(true))
        .await?;
    tracing::debug!(path, "opened SQLite database");
    Ok(Db::Sqlite { write, read })
}

/// Values that decode from both backends' rows.
pub(crate) trait Portable:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Portable for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// Lets one row-mapping function serve both backends' row types.
pub(crate) trait RowGet {
    fn col<T: Portable>(&self, name: &str) -> StoreResult<T>;
}

impl RowGet for SqliteRow {
    fn col<T: Portable>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

impl RowGet for PgRow {
    fn col<T: Portable>(&self, name: &str) -> StoreResult<T> {
        Ok(self.try_get(name)?)
    }
}

/// `Some(T)` for the first row, mapped by `|row| expr` (which returns a `StoreResult`).
macro_rules! fetch_optional {
    ($conn:expr, $sql:expr, [$($arg:expr),* $(,)?], |$row:ident| $map:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => {
                match ::sqlx::query($sql)$(.bind($arg))*.fetch_optional(c).await? {
                    Some(row) => {
                        let $row = &row;
                        Some($map?)
                    }
                    None => None,
                }
            }
            $crate::db::Conn::Postgres(c) => {
                match ::sqlx::query($sql)$(.bind($arg))*.fetch_optional(c).await? {
                    Some(row) => {
                        let $row = &row;
                        Some($map?)
                    }
                    None => None,
                }
            }
        }
    };
}

/// The first row mapped; `StoreError::NotFound` when there is none.
macro_rules! fetch_one {
    ($conn:expr, $sql:expr, [$($arg:expr),* $(,)?], |$row:ident| $map:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => {
                let row = ::sqlx::query($sql)$(.bind($arg))*.fetch_one(c).await?;
                let $row = &row;
                $map?
            }
            $crate::db::Conn::Postgres(c) => {
                let row = ::sqlx::query($sql)$(.bind($arg))*.fetch_one(c).await?;
                let $row = &row;
                $map?
            }
        }
    };
}

/// Every row mapped, in the order the query returns them.
macro_rules! fetch_all {
    ($conn:expr, $sql:expr, [$($arg:expr),* $(,)?], |$row:ident| $map:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => ::sqlx::query($sql)$(.bind($arg))*
                .fetch_all(c)
                .await?
                .iter()
                .map(|$row| $map)
                .collect::<$crate::error::StoreResult<Vec<_>>>()?,
            $crate::db::Conn::Postgres(c) => ::sqlx::query($sql)$(.bind($arg))*
                .fetch_all(c)
                .await?
                .iter()
                .map(|$row| $map)
                .collect::<$crate::error::StoreResult<Vec<_>>>()?,
        }
    };
}

/// Runs a statement; evaluates to the number of rows it affected.
macro_rules! execute {
    ($conn:expr, $sql:expr, [$($arg:expr),* $(,)?]) => {
        match $conn {
            $crate::db::Conn::Sqlite(c) => {
                ::sqlx::query($sql)$(.bind($arg))*.execute(c).await?.rows_affected()
            }
            $crate::db::Conn::Postgres(c) => {
                ::sqlx::query($sql)$(.bind($arg))*.execute(c).await?.rows_affected()
            }
        }
    };
}

pub(crate) use {execute, fetch_all, fetch_one, fetch_optional};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn files(backend: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn embedded(list: &[(i64, &str, &str)]) -> BTreeSet<String> {
        list.iter()
            .map(|(_, stem, _)| format!("{stem}.sql"))
            .collect()
    }

    #[test]
    fn every_migration_file_is_embedded() {
        assert_eq!(files("sqlite"), embedded(SQLITE_MIGRATIONS));
        assert_eq!(files("postgres"), embedded(POSTGRES_MIGRATIONS));
    }

    #[test]
    fn versions_match_file_names_and_ascend() {
        for (version, stem, _) in SQLITE_MIGRATIONS.iter().chain(POSTGRES_MIGRATIONS) {
            let prefix = stem.split_once('_').unwrap().0;
            assert_eq!(prefix.parse::<i64>().unwrap(), *version, "{stem}");
        }
        let versions: Vec<i64> = SQLITE_MIGRATIONS.iter().map(|m| m.0).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    }
}
