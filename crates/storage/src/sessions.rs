//! Web UI sessions. Only the SHA-256 of the cookie's secret is stored (computed by
//! callers); the look-up joins the user, so resuming a session is one query.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::users::{USER_COLUMNS_PREFIXED, user_row};
use crate::{Store, StoreError, StoreResult};
use portcullis_domain::model::{Id, Session, User};
use portcullis_domain::time::Timestamp;

const SESSION_COLUMNS: &str = "id, user_id, user_agent, created_at, last_seen_at, expires_at";

fn session_row<R: RowGet>(r: &R) -> StoreResult<Session> {
    Ok(Session {
        id: r.col("id")?,
        user_id: r.col("user_id")?,
        user_agent: r.col("user_agent")?,
        created_at: Timestamp(r.col("created_at")?),
        last_seen_at: Timestamp(r.col("last_seen_at")?),
        expires_at: Timestamp(r.col("expires_at")?),
    })
}

impl Store {
    pub async fn create_session(
        &self,
        user_id: Id,
        token_hash: &str,
        user_agent: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<Session> {
        let mut c = self.db.writer().await?;
        let sql = format!(
            "INSERT INTO sessions (token_hash, user_id, user_agent, created_at, last_seen_at, \
             expires_at) VALUES ($1, $2, $3, $4, $4, $5) RETURNING {SESSION_COLUMNS}"
        );
        Ok(fetch_one!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [token_hash, user_id, user_agent, now.0, expires_at.0],
            |r| session_row(r)
        ))
    }

    /// The session with this secret's hash and its user, whatever its age (the caller
    /// decides about timeouts).
    pub async fn session_by_hash(&self, token_hash: &str) -> StoreResult<Option<(Session, User)>> {
        let sql = format!(
            "SELECT s.id, s.user_id, s.user_agent, s.created_at, s.last_seen_at, s.expires_at, \
             {USER_COLUMNS_PREFIXED} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1"
        );
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [token_hash],
            |r| Ok::<_, StoreError>((session_row(r)?, user_row(r, "u_")?))
        ))
    }

    /// Records activity for the idle timeout, at most once a minute.
    pub async fn touch_session(&self, id: Id, now: Timestamp) -> StoreResult<()> {
        self.touch(
            "SELECT id FROM sessions WHERE id = $1 AND last_seen_at < $2",
            "UPDATE sessions SET last_seen_at = $3 WHERE id = $1 AND last_seen_at < $2",
            id,
            now,
        )
        .await
    }

    pub async fn list_sessions(&self, user_id: Id) -> StoreResult<Vec<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY id");
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [user_id],
            |r| session_row(r)
        ))
    }

    /// Ends one session; ending one that is gone is not an error (sign-out twice).
    pub async fn delete_session_by_hash(&self, token_hash: &str) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        execute!(
            c.conn(),
            "DELETE FROM sessions WHERE token_hash = $1",
            [token_hash]
        );
        Ok(())
    }

    /// Ends one of the user's sessions (the profile's "sign out that device").
    pub async fn delete_session(&self, user_id: Id, id: Id) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        let deleted = execute!(
            c.conn(),
            "DELETE FROM sessions WHERE id = $1 AND user_id = $2",
            [id, user_id]
        );
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Removes sessions past their absolute end or idle since `idle_before`.
    pub async fn prune_sessions(&self, now: Timestamp, idle_before: Timestamp) -> StoreResult<u64> {
        let mut c = self.db.writer().await?;
        Ok(execute!(
            c.conn(),
            "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2",
            [now.0, idle_before.0]
        ))
    }
}
