//! Users, their personal teams and namespaces, admin status and login throttling.

use crate::db::{RowGet, Tx, execute, fetch_all, fetch_one, fetch_optional};
use crate::{NewUser, Page, PageRequest, Sort, Store, StoreError, StoreResult};
use portcullis_domain::model::{Id, NamespaceKind, Role, User, Visibility};
use portcullis_domain::names::personal_namespace_candidates;
use portcullis_domain::time::Timestamp;
use std::collections::HashSet;

pub(crate) const USER_COLUMNS: &str = "id, username, email, display_name, password_hash, admin, \
     enabled, bot, failed_attempts, locked_at, credential_version, created_at, updated_at";

/// The user columns of `u` with a `u_` prefix, for joins whose other side has an `id` too.
pub(crate) const USER_COLUMNS_PREFIXED: &str = "u.id AS u_id, u.username AS u_username, \
     u.email AS u_email, u.display_name AS u_display_name, u.password_hash AS u_password_hash, \
     u.admin AS u_admin, u.enabled AS u_enabled, u.bot AS u_bot, \
     u.failed_attempts AS u_failed_attempts, u.locked_at AS u_locked_at, \
     u.credential_version AS u_credential_version, u.created_at AS u_created_at, \
     u.updated_at AS u_updated_at";

/// `password_hash` is deliberately not sortable.
const SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("username", Sort::Text),
    ("email", Sort::Text),
    ("display_name", Sort::NullableText),
    ("admin", Sort::Plain),
    ("enabled", Sort::Plain),
    ("bot", Sort::Plain),
    ("failed_attempts", Sort::Plain),
    ("locked_at", Sort::Nullable),
    ("credential_version", Sort::Plain),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

/// Maps a row selected with [`USER_COLUMNS`] (`prefix` "") or [`USER_COLUMNS_PREFIXED`]
/// (`prefix` "u_").
pub(crate) fn user_row<R: RowGet>(r: &R, prefix: &str) -> StoreResult<User> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(User {
        id: r.col(&c("id"))?,
        username: r.col(&c("username"))?,
        email: r.col(&c("email"))?,
        display_name: r.col(&c("display_name"))?,
        password_hash: r.col(&c("password_hash"))?,
        admin: r.col(&c("admin"))?,
        enabled: r.col(&c("enabled"))?,
        bot: r.col(&c("bot"))?,
        failed_attempts: r.col(&c("failed_attempts"))?,
        locked_at: r.col::<Option<i64>>(&c("locked_at"))?.map(Timestamp),
        credential_version: r.col(&c("credential_version"))?,
        created_at: Timestamp(r.col(&c("created_at"))?),
        updated_at: Timestamp(r.col(&c("updated_at"))?),
    })
}

pub(crate) use portcullis_domain::names::{PERSONAL_TEAM_PREFIX, personal_team_name};

/// Creates `user_id`'s personal namespace in `registry_id`, named by the first free
/// candidate derived from `base` (`base`, `base1`, …). Runs inside the caller's
/// transaction so the free name stays free until commit.
pub(crate) async fn create_personal_namespace(
    tx: &mut Tx,
    registry_id: Id,
    team_id: Id,
    user_id: Id,
    base: &str,
    now: Timestamp,
) -> StoreResult<()> {
    // One query for every name the candidates could collide with; `_` is a LIKE
    // wildcard and valid in namespace names, so it is escaped.
    let pattern = format!(
        "{}%",
        base.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let taken: HashSet<String> = fetch_all!(
        tx.conn(),
        "SELECT name FROM namespaces WHERE registry_id = $1 AND name LIKE $2 ESCAPE '\\'",
        [registry_id, pattern.as_str()],
        |r| r.col::<String>("name")
    )
    .into_iter()
    .collect();
    let name = personal_namespace_candidates(base)
        .find(|candidate| !taken.contains(candidate))
        .ok_or_else(|| StoreError::Backend("no free personal namespace name".to_owned()))?;
    execute!(
        tx.conn(),
        "INSERT INTO namespaces (registry_id, team_id, name, description, kind, visibility, \
         user_id, created_at, updated_at) VALUES ($1, $2, $3, '', $4, $5, $6, $7, $7)",
        [
            registry_id,
            team_id,
            name.as_str(),
            NamespaceKind::Personal.as_str(),
            Visibility::Private.as_i64(),
            user_id,
            now.0,
        ]
    );
    Ok(())
}

/// Makes an admin owner of every registry's global team (Portus: the global namespace
/// belongs to the admins).
async fn join_global_teams(tx: &mut Tx, user_id: Id, now: Timestamp) -> StoreResult<()> {
    execute!(
        tx.conn(),
        "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at) \
         SELECT DISTINCT n.team_id, $1, $2, $3, $3 FROM namespaces n \
         WHERE n.kind = 'global' AND NOT EXISTS (SELECT 1 FROM team_users tu \
         WHERE tu.team_id = n.team_id AND tu.user_id = $1)",
        [user_id, Role::Owner.as_i64(), now.0]
    );
    Ok(())
}

impl Store {
    /// Creates the user and, unless `personal_namespace_base` is `None` (bots), the
    /// hidden personal team with the user as owner and a personal namespace in every
    /// registry — all or nothing. An admin also becomes owner of every global team, as
    /// [`Store::set_admin`] would make them.
    pub async fn create_user(
        &self,
        u: &NewUser,
        personal_namespace_base: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<User> {
        let mut tx = self.db.begin().await?;
        let user = fetch_one!(
            tx.conn(),
            "INSERT INTO users (username, email, display_name, password_hash, admin, enabled, \
             bot, failed_attempts, locked_at, credential_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, true, $6, 0, NULL, 0, $7, $7) \
             RETURNING id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at",
            [
                u.username.as_str(),
                u.email.as_str(),
                u.display_name.as_deref(),
                u.password_hash.as_deref(),
                u.admin,
                u.bot,
                now.0,
            ],
            |r| user_row(r, "")
        );
        if user.admin {
            join_global_teams(&mut tx, user.id, now).await?;
        }
        if let Some(base) = personal_namespace_base {
            let team_id: Id = fetch_one!(
                tx.conn(),
                "INSERT INTO teams (name, description, hidden, created_at, updated_at) \
                 VALUES ($1, '', true, $2, $2) RETURNING id",
                [personal_team_name(user.id), now.0],
                |r| r.col::<Id>("id")
            );
            execute!(
                tx.conn(),
                "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
                [team_id, user.id, Role::Owner.as_i64(), now.0]
            );
            let registries: Vec<Id> = fetch_all!(
                tx.conn(),
                "SELECT id FROM registries ORDER BY id",
                [],
                |r| r.col::<Id>("id")
            );
            for registry_id in registries {
                create_personal_namespace(&mut tx, registry_id, team_id, user.id, base, now)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(user)
    }

    pub async fn user_by_id(&self, id: Id) -> StoreResult<Option<User>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at \
             FROM users WHERE id = $1",
            [id],
            |r| user_row(r, "")
        ))
    }

    /// Case-insensitive, like the unique index.
    pub async fn user_by_username(&self, name: &str) -> StoreResult<Option<User>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at \
             FROM users WHERE lower(username) = lower($1)",
            [name],
            |r| user_row(r, "")
        ))
    }

    /// Case-insensitive. The empty email is shared by many users and finds none.
    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at \
             FROM users WHERE lower(email) = lower($1) AND email <> ''",
            [email],
            |r| user_row(r, "")
        ))
    }

    pub async fn list_users(&self, p: &PageRequest) -> StoreResult<Page<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u{}",
            p.clause("u", SORTABLE)
        );
        let mut c = self.db.reader().await?;
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(sql), [], |r| user_row(r, ""));
        let total = fetch_one!(c.conn(), "SELECT count(*) AS n FROM users", [], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }

    pub async fn count_users(&self) -> StoreResult<i64> {
        let mut c = self.db.reader().await?;
        Ok(fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM users",
            [],
            |r| r.col::<i64>("n")
        ))
    }

    /// Admins who can act: disabled admins don't count (e.g. "last admin" checks).
    pub async fn count_admins(&self) -> StoreResult<i64> {
        let mut c = self.db.reader().await?;
        Ok(fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM users WHERE admin AND enabled",
            [],
            |r| r.col::<i64>("n")
        ))
    }

    /// Writes every mutable field except `admin`, which has team memberships attached
    /// and changes only through [`Store::set_admin`].
    pub async fn update_user(&self, u: &User, now: Timestamp) -> StoreResult<User> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE users SET username = $2, email = $3, display_name = $4, password_hash = $5, \
             enabled = $6, bot = $7, failed_attempts = $8, locked_at = $9, \
             credential_version = $10, updated_at = $11 WHERE id = $1 \
             RETURNING id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at",
            [
                u.id,
                u.username.as_str(),
                u.email.as_str(),
                u.display_name.as_deref(),
                u.password_hash.as_deref(),
                u.enabled,
                u.bot,
                u.failed_attempts,
                u.locked_at.map(|t| t.0),
                u.credential_version,
                now.0,
            ],
            |r| user_row(r, "")
        )
        .ok_or(StoreError::NotFound)
    }

    /// Portus keeps admins as owners of every team they belong to and of every global
    /// team; this keeps the memberships in step with the flag in one transaction.
    pub async fn set_admin(&self, user_id: Id, admin: bool, now: Timestamp) -> StoreResult<User> {
        let mut tx = self.db.begin().await?;
        let user = fetch_optional!(
            tx.conn(),
            "UPDATE users SET admin = $2, updated_at = $3 WHERE id = $1 \
             RETURNING id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at",
            [user_id, admin, now.0],
            |r| user_row(r, "")
        )
        .ok_or(StoreError::NotFound)?;
        if admin {
            execute!(
                tx.conn(),
                "UPDATE team_users SET role = $2, updated_at = $3 WHERE user_id = $1 AND role <> $2",
                [user_id, Role::Owner.as_i64(), now.0]
            );
            join_global_teams(&mut tx, user_id, now).await?;
        } else {
            execute!(
                tx.conn(),
                "DELETE FROM team_users WHERE user_id = $1 AND team_id IN \
                 (SELECT team_id FROM namespaces WHERE kind = 'global')",
                [user_id]
            );
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Counts a failed login in one statement (concurrent failures all count). Reaching
    /// `max_attempts` locks the account and bumps `credential_version`, which ends what
    /// was issued on the old credentials. `max_attempts <= 0` never locks.
    pub async fn record_failed_login(
        &self,
        user_id: Id,
        now: Timestamp,
        max_attempts: i64,
    ) -> StoreResult<User> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE users SET failed_attempts = failed_attempts + 1, \
             locked_at = CASE WHEN $3 > 0 AND failed_attempts + 1 >= $3 AND locked_at IS NULL \
                 THEN $2 ELSE locked_at END, \
             credential_version = CASE WHEN $3 > 0 AND failed_attempts + 1 >= $3 \
                 AND locked_at IS NULL THEN credential_version + 1 ELSE credential_version END \
             WHERE id = $1 \
             RETURNING id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at",
            [user_id, now.0, max_attempts],
            |r| user_row(r, "")
        )
        .ok_or(StoreError::NotFound)
    }

    /// Called after every successful login, so it must not write in the common case of
    /// nothing to clear: on SQLite a reader checks first, because even an UPDATE that
    /// matches nothing queues for the single writer.
    pub async fn clear_failed_logins(&self, user_id: Id) -> StoreResult<()> {
        if self.db.is_sqlite() {
            let mut c = self.db.reader().await?;
            let dirty = fetch_optional!(
                c.conn(),
                "SELECT id FROM users WHERE id = $1 AND (failed_attempts <> 0 OR locked_at IS NOT NULL)",
                [user_id],
                |r| r.col::<Id>("id")
            );
            if dirty.is_none() {
                return Ok(());
            }
        }
        let mut c = self.db.writer().await?;
        execute!(
            c.conn(),
            "UPDATE users SET failed_attempts = 0, locked_at = NULL \
             WHERE id = $1 AND (failed_attempts <> 0 OR locked_at IS NOT NULL)",
            [user_id]
        );
        Ok(())
    }

    /// Deletes the user with their personal team and namespaces (memberships and tokens
    /// go by cascade). `false` when there was no such user.
    pub async fn delete_user(&self, id: Id) -> StoreResult<bool> {
        let personal_team = personal_team_name(id);
        let mut tx = self.db.begin().await?;
        execute!(
            tx.conn(),
            "DELETE FROM namespaces WHERE user_id = $1 OR team_id IN \
             (SELECT id FROM teams WHERE hidden AND name = $2)",
            [id, personal_team.as_str()]
        );
        execute!(
            tx.conn(),
            "DELETE FROM teams WHERE hidden AND name = $1",
            [personal_team.as_str()]
        );
        let deleted = execute!(tx.conn(), "DELETE FROM users WHERE id = $1", [id]);
        tx.commit().await?;
        Ok(deleted > 0)
    }
}
