//! Application tokens and refresh tokens. Only SHA-256 hashes of the secrets are
//! stored (computed by callers); look-ups by hash join the owner so the token endpoint
//! needs one query per credential.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::users::{USER_COLUMNS_PREFIXED, user_row};
use crate::{Store, StoreError, StoreResult};
use portcullis_domain::model::{ApplicationToken, Id, RefreshToken, User};
use portcullis_domain::time::Timestamp;

/// `last_used_at` is informational; recording it at most once a minute keeps the token
/// hot path free of writes.
const TOUCH_INTERVAL_MS: i64 = 60_000;

fn application_token_row<R: RowGet>(r: &R) -> StoreResult<ApplicationToken> {
    Ok(ApplicationToken {
        id: r.col("id")?,
        user_id: r.col("user_id")?,
        application: r.col("application")?,
        pull_only: r.col("pull_only")?,
        expires_at: r.col::<Option<i64>>("expires_at")?.map(Timestamp),
        last_used_at: r.col::<Option<i64>>("last_used_at")?.map(Timestamp),
        created_at: Timestamp(r.col("created_at")?),
    })
}

fn refresh_token_row<R: RowGet>(r: &R) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        id: r.col("id")?,
        user_id: r.col("user_id")?,
        service: r.col("service")?,
        client_id: r.col("client_id")?,
        last_used_at: r.col::<Option<i64>>("last_used_at")?.map(Timestamp),
        created_at: Timestamp(r.col("created_at")?),
    })
}

impl Store {
    /// A second token of the same user with the same application name is
    /// `Conflict("application")`.
    pub async fn create_application_token(
        &self,
        user_id: Id,
        application: &str,
        token_hash: &str,
        pull_only: bool,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> StoreResult<ApplicationToken> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "INSERT INTO application_tokens (user_id, application, token_hash, pull_only, \
             expires_at, last_used_at, created_at) VALUES ($1, $2, $3, $4, $5, NULL, $6) \
             RETURNING id, user_id, application, pull_only, expires_at, last_used_at, created_at",
            [
                user_id,
                application,
                token_hash,
                pull_only,
                expires_at.map(|t| t.0),
                now.0,
            ],
            |r| application_token_row(r)
        ))
    }

    pub async fn application_token_by_id(&self, id: Id) -> StoreResult<Option<ApplicationToken>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, user_id, application, pull_only, expires_at, last_used_at, created_at \
             FROM application_tokens WHERE id = $1",
            [id],
            |r| application_token_row(r)
        ))
    }

    pub async fn list_application_tokens(&self, user_id: Id) -> StoreResult<Vec<ApplicationToken>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, user_id, application, pull_only, expires_at, last_used_at, created_at \
             FROM application_tokens WHERE user_id = $1 ORDER BY id",
            [user_id],
            |r| application_token_row(r)
        ))
    }

    pub async fn count_application_tokens(&self, user_id: Id) -> StoreResult<i64> {
        let mut c = self.db.reader().await?;
        Ok(fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM application_tokens WHERE user_id = $1",
            [user_id],
            |r| r.col::<i64>("n")
        ))
    }

    pub async fn delete_application_token(&self, id: Id) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        let deleted = execute!(
            c.conn(),
            "DELETE FROM application_tokens WHERE id = $1",
            [id]
        );
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn application_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(ApplicationToken, User)>> {
        let sql = format!(
            "SELECT t.id, t.user_id, t.application, t.pull_only, t.expires_at, t.last_used_at, \
             t.created_at, {USER_COLUMNS_PREFIXED} FROM application_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
        );
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [token_hash],
            |r| Ok::<_, StoreError>((application_token_row(r)?, user_row(r, "u_")?))
        ))
    }

    /// Records use, unless it was recorded less than a minute ago.
    pub async fn touch_application_token(&self, id: Id, now: Timestamp) -> StoreResult<()> {
        self.touch(
            "SELECT id FROM application_tokens WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < $2)",
            "UPDATE application_tokens SET last_used_at = $3 WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < $2)",
            id,
            now,
        )
        .await
    }

    pub async fn create_refresh_token(
        &self,
        user_id: Id,
        service: &str,
        client_id: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<RefreshToken> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "INSERT INTO refresh_tokens (user_id, service, client_id, token_hash, last_used_at, \
             created_at) VALUES ($1, $2, $3, $4, NULL, $5) \
             RETURNING id, user_id, service, client_id, last_used_at, created_at",
            [user_id, service, client_id, token_hash, now.0],
            |r| refresh_token_row(r)
        ))
    }

    pub async fn refresh_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(RefreshToken, User)>> {
        let sql = format!(
            "SELECT t.id, t.user_id, t.service, t.client_id, t.last_used_at, t.created_at, \
             {USER_COLUMNS_PREFIXED} FROM refresh_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
        );
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [token_hash],
            |r| Ok::<_, StoreError>((refresh_token_row(r)?, user_row(r, "u_")?))
        ))
    }

    pub async fn refresh_token_by_id(&self, id: Id) -> StoreResult<Option<RefreshToken>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, user_id, service, client_id, last_used_at, created_at \
             FROM refresh_tokens WHERE id = $1",
            [id],
            |r| refresh_token_row(r)
        ))
    }

    pub async fn list_refresh_tokens(&self, user_id: Id) -> StoreResult<Vec<RefreshToken>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, user_id, service, client_id, last_used_at, created_at \
             FROM refresh_tokens WHERE user_id = $1 ORDER BY id",
            [user_id],
            |r| refresh_token_row(r)
        ))
    }

    pub async fn delete_refresh_token(&self, id: Id) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        let deleted = execute!(c.conn(), "DELETE FROM refresh_tokens WHERE id = $1", [id]);
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Returns how many were deleted (e.g. on password change or disable).
    pub async fn delete_refresh_tokens_of_user(&self, user_id: Id) -> StoreResult<u64> {
        let mut c = self.db.writer().await?;
        Ok(execute!(
            c.conn(),
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            [user_id]
        ))
    }

    /// Records use, unless it was recorded less than a minute ago.
    pub async fn touch_refresh_token(&self, id: Id, now: Timestamp) -> StoreResult<()> {
        self.touch(
            "SELECT id FROM refresh_tokens WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < $2)",
            "UPDATE refresh_tokens SET last_used_at = $3 WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < $2)",
            id,
            now,
        )
        .await
    }

    /// Sets `last_used_at = now` where it is older than the touch interval. On SQLite a
    /// reader checks first: even an UPDATE that matches nothing queues for the single
    /// writer, and this runs on every authenticated token request. PostgreSQL's UPDATE
    /// writes nothing when no row matches, so it goes straight there.
    async fn touch(
        &self,
        check: &'static str,
        update: &'static str,
        id: Id,
        now: Timestamp,
    ) -> StoreResult<()> {
        let stale_before = now.0 - TOUCH_INTERVAL_MS;
        if self.db.is_sqlite() {
            let mut c = self.db.reader().await?;
            let stale = fetch_optional!(c.conn(), check, [id, stale_before], |r| r.col::<Id>("id"));
            if stale.is_none() {
                return Ok(());
            }
        }
        let mut c = self.db.writer().await?;
        execute!(c.conn(), update, [id, stale_before, now.0]);
        Ok(())
    }
}
