//! Application tokens and refresh tokens. Only SHA-256 hashes of the secrets are
//! stored (computed by callers); look-ups by hash join the owner so the token endpoint
//! needs one query per credential.

use crate::db::{Guard, RowGet, Tx, execute, fetch_all, fetch_one, fetch_optional};
use crate::users::{USER_COLUMNS_PREFIXED, user_row};
use crate::{Refusal, Store, StoreError, StoreResult};
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
        application_token_id: r.col("application_token_id")?,
        last_used_at: r.col::<Option<i64>>("last_used_at")?.map(Timestamp),
        created_at: Timestamp(r.col("created_at")?),
    })
}

/// A new application token; only the hash of its secret is stored.
#[derive(Debug, Clone, Copy)]
pub struct NewApplicationToken<'a> {
    pub application: &'a str,
    pub token_hash: &'a str,
    pub pull_only: bool,
    pub expires_at: Option<Timestamp>,
}

pub(crate) async fn insert_application_token(
    tx: &mut Tx,
    user_id: Id,
    t: &NewApplicationToken<'_>,
    now: Timestamp,
) -> StoreResult<ApplicationToken> {
    Ok(fetch_one!(
        tx.conn(),
        "INSERT INTO application_tokens (user_id, application, token_hash, pull_only, \
         expires_at, last_used_at, created_at) VALUES ($1, $2, $3, $4, $5, NULL, $6) \
         RETURNING id, user_id, application, pull_only, expires_at, last_used_at, created_at",
        [
            user_id,
            t.application,
            t.token_hash,
            t.pull_only,
            t.expires_at.map(|e| e.0),
            now.0,
        ],
        |r| application_token_row(r)
    ))
}

/// A refresh token found by its secret, with what decides whether it still works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshCredential {
    pub token: RefreshToken,
    pub user: User,
    /// The expiry of the application token it was obtained with, if any.
    pub application_token_expires_at: Option<Timestamp>,
}

impl Store {
    /// Creates a token unless the user already holds `max_per_user` (checked and
    /// written under [`Guard::TokenQuota`], so concurrent requests cannot exceed it:
    /// `Refused(TokenQuota)`). A second token of the same user with the same
    /// application name is `Conflict("application")`.
    pub async fn create_application_token(
        &self,
        user_id: Id,
        token: &NewApplicationToken<'_>,
        max_per_user: i64,
        now: Timestamp,
    ) -> StoreResult<ApplicationToken> {
        let mut tx = self.db.begin().await?;
        tx.guard(Guard::TokenQuota(user_id)).await?;
        let held: i64 = fetch_one!(
            tx.conn(),
            "SELECT count(*) AS n FROM application_tokens WHERE user_id = $1",
            [user_id],
            |r| r.col::<i64>("n")
        );
        if held >= max_per_user {
            return Err(StoreError::Refused(Refusal::TokenQuota(max_per_user)));
        }
        let created = insert_application_token(&mut tx, user_id, token, now).await?;
        tx.commit().await?;
        Ok(created)
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

    /// `application_token_id`: the application token the caller authenticated with, if
    /// any; the refresh token is deleted with it. `NotFound` when that token is not the
    /// user's.
    pub async fn create_refresh_token(
        &self,
        user_id: Id,
        application_token_id: Option<Id>,
        service: &str,
        client_id: &str,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<RefreshToken> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "INSERT INTO refresh_tokens (user_id, application_token_id, service, client_id, \
             token_hash, last_used_at, created_at) SELECT $1, $2, $3, $4, $5, NULL, $6 \
             WHERE $2 IS NULL OR EXISTS (SELECT 1 FROM application_tokens a \
             WHERE a.id = $2 AND a.user_id = $1) \
             RETURNING id, user_id, application_token_id, service, client_id, last_used_at, \
             created_at",
            [
                user_id,
                application_token_id,
                service,
                client_id,
                token_hash,
                now.0
            ],
            |r| refresh_token_row(r)
        ))
    }

    pub async fn refresh_token_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshCredential>> {
        let sql = format!(
            "SELECT t.id, t.user_id, t.application_token_id, t.service, t.client_id, \
             t.last_used_at, t.created_at, a.expires_at AS a_expires_at, \
             {USER_COLUMNS_PREFIXED} FROM refresh_tokens t \
             JOIN users u ON u.id = t.user_id \
             LEFT JOIN application_tokens a ON a.id = t.application_token_id \
             WHERE t.token_hash = $1"
        );
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [token_hash],
            |r| Ok::<_, StoreError>(RefreshCredential {
                token: refresh_token_row(r)?,
                user: user_row(r, "u_")?,
                application_token_expires_at: r.col::<Option<i64>>("a_expires_at")?.map(Timestamp),
            })
        ))
    }

    pub async fn refresh_token_by_id(&self, id: Id) -> StoreResult<Option<RefreshToken>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, user_id, application_token_id, service, client_id, last_used_at, \
             created_at FROM refresh_tokens WHERE id = $1",
            [id],
            |r| refresh_token_row(r)
        ))
    }

    pub async fn list_refresh_tokens(&self, user_id: Id) -> StoreResult<Vec<RefreshToken>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, user_id, application_token_id, service, client_id, last_used_at, \
             created_at FROM refresh_tokens WHERE user_id = $1 ORDER BY id",
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
    pub(crate) async fn touch(
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
