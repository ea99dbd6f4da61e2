//! Users, their personal teams and namespaces, admin status and login throttling.

use crate::db::{Guard, RowGet, Tx, execute, fetch_all, fetch_one, fetch_optional};
use crate::tokens::{NewApplicationToken, insert_application_token};
use crate::{NewUser, Page, PageRequest, Refusal, Sort, Store, StoreError, StoreResult};
use portcullis_domain::model::{
    ApplicationToken, Id, NamespaceKind, Role, User, UserListing, Visibility,
};
use portcullis_domain::names::personal_namespace_candidates;
use portcullis_domain::time::Timestamp;

/// `SELECT <every user column> FROM users <rest>`, as one static string.
macro_rules! select_users {
    ($rest:literal) => {
        concat!(
            "SELECT id, username, email, display_name, password_hash, admin, enabled, bot, ",
            "failed_attempts, locked_at, credential_version, created_at, updated_at FROM users ",
            $rest
        )
    };
}

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

/// Maps a row selected with [`select_users!`] (`prefix` "") or [`USER_COLUMNS_PREFIXED`]
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

/// Names tried for a personal namespace (`base`, `base1`, …) before giving up.
const MAX_NAME_CANDIDATES: usize = 1000;

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
    // One look-up by the unique index per candidate: the first is free for almost every
    // user. (A prefix search for all candidates at once could not use the index, and
    // adding a registry to an instance of 100,000 users made it quadratic.)
    let mut free = None;
    for candidate in personal_namespace_candidates(base).take(MAX_NAME_CANDIDATES) {
        let taken = fetch_optional!(
            tx.conn(),
            "SELECT id FROM namespaces WHERE registry_id = $1 AND name = $2",
            [registry_id, candidate.as_str()],
            |r| r.col::<i64>("id")
        )
        .is_some();
        if !taken {
            free = Some(candidate);
            break;
        }
    }
    let name =
        free.ok_or_else(|| StoreError::Other("no free personal namespace name".to_owned()))?;
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

/// Inserts the user and, unless `personal_namespace_base` is `None` (bots), the hidden
/// personal team with the user as owner and a personal namespace in every registry. An
/// admin also becomes owner of every global team, as [`Store::set_admin`] would make them.
async fn insert_user(
    tx: &mut Tx,
    u: &NewUser,
    personal_namespace_base: Option<&str>,
    now: Timestamp,
) -> StoreResult<User> {
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
        join_global_teams(tx, user.id, now).await?;
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
            create_personal_namespace(tx, registry_id, team_id, user.id, base, now).await?;
        }
    }
    Ok(user)
}

/// Which user fields an update changes; `None` leaves a field as it is in the database,
/// so concurrent changes of other fields (a disable, a lockout) are never written over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    pub username: Option<String>,
    pub email: Option<String>,
    /// `Some(None)` clears it.
    pub display_name: Option<Option<String>>,
    pub password_hash: Option<String>,
    pub enabled: Option<bool>,
    pub admin: Option<bool>,
}

/// Refuses a change that would leave no enabled admin. Runs under [`Guard::Admins`].
async fn ensure_another_admin(tx: &mut Tx, user_id: Id) -> StoreResult<()> {
    let (target, others): (i64, i64) = fetch_one!(
        tx.conn(),
        "SELECT (SELECT count(*) FROM users WHERE id = $1 AND admin AND enabled) AS target, \
         (SELECT count(*) FROM users WHERE admin AND enabled AND id <> $1) AS others",
        [user_id],
        |r| Ok::<_, StoreError>((r.col::<i64>("target")?, r.col::<i64>("others")?))
    );
    if target > 0 && others == 0 {
        return Err(StoreError::Refused(Refusal::LastAdmin));
    }
    Ok(())
}

/// Sets the admin flag and keeps memberships in step (admins own every team they are in
/// and every global team), inside the caller's transaction.
async fn write_admin_flag(
    tx: &mut Tx,
    user_id: Id,
    admin: bool,
    now: Timestamp,
) -> StoreResult<User> {
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
        join_global_teams(tx, user_id, now).await?;
    } else {
        execute!(
            tx.conn(),
            "DELETE FROM team_users WHERE user_id = $1 AND team_id IN \
             (SELECT team_id FROM namespaces WHERE kind = 'global')",
            [user_id]
        );
    }
    Ok(user)
}

impl Store {
    /// Creates the user with their personal team and namespaces, all or nothing.
    pub async fn create_user(
        &self,
        u: &NewUser,
        personal_namespace_base: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<User> {
        let mut tx = self.db.begin().await?;
        // Serialised with the bootstrap, which must see every user created before it.
        tx.guard(Guard::Users).await?;
        let user = insert_user(&mut tx, u, personal_namespace_base, now).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Self-service sign-up, decided inside one guarded transaction: the first user
    /// becomes an admin when `first_user_admin`; anybody else is created (not an
    /// admin) only when `signup_open`, else `Refused(SignupClosed)`. Concurrent
    /// sign-ups on an empty instance make exactly one admin.
    pub async fn sign_up_user(
        &self,
        u: &NewUser,
        personal_namespace_base: Option<&str>,
        first_user_admin: bool,
        signup_open: bool,
        now: Timestamp,
    ) -> StoreResult<User> {
        self.sign_up(
            u,
            personal_namespace_base,
            first_user_admin,
            signup_open,
            None,
            now,
        )
        .await
    }

    /// Sign-up through an identity provider: [`Self::sign_up_user`] (always open) with
    /// the account at the provider, `(provider, subject)`, linked in the same
    /// transaction. That account already linked is `Conflict("identity")`.
    pub async fn sign_up_with_identity(
        &self,
        u: &NewUser,
        personal_namespace_base: Option<&str>,
        first_user_admin: bool,
        identity: (&str, &str),
        now: Timestamp,
    ) -> StoreResult<User> {
        self.sign_up(
            u,
            personal_namespace_base,
            first_user_admin,
            true,
            Some(identity),
            now,
        )
        .await
    }

    async fn sign_up(
        &self,
        u: &NewUser,
        personal_namespace_base: Option<&str>,
        first_user_admin: bool,
        signup_open: bool,
        identity: Option<(&str, &str)>,
        now: Timestamp,
    ) -> StoreResult<User> {
        let mut tx = self.db.begin().await?;
        tx.guard(Guard::Users).await?;
        let users: i64 = fetch_one!(tx.conn(), "SELECT count(*) AS n FROM users", [], |r| r
            .col::<i64>("n"));
        let admin = users == 0 && first_user_admin;
        if !admin && !signup_open {
            return Err(StoreError::Refused(Refusal::SignupClosed));
        }
        let new_user = NewUser {
            admin,
            bot: false,
            ..u.clone()
        };
        let user = insert_user(&mut tx, &new_user, personal_namespace_base, now).await?;
        if let Some((provider, subject)) = identity {
            crate::identity::insert_identity(&mut tx, user.id, provider, subject, now).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Stores a password reset token (its hash) for a user.
    pub async fn create_password_reset(
        &self,
        user_id: Id,
        token_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        execute!(
            c.conn(),
            "INSERT INTO password_resets (user_id, token_hash, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, NULL)",
            [user_id, token_hash, now.0, expires_at.0]
        );
        Ok(())
    }

    /// Whether a reset token could be used now (checked before the password is hashed,
    /// so a bad link costs no hash; [`Self::reset_password`] checks again).
    /// Whether a reset token was issued for `user_id` at `since` or later.
    pub async fn password_reset_since(&self, user_id: Id, since: Timestamp) -> StoreResult<bool> {
        let mut c = self.db.reader().await?;
        let n: i64 = fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM password_resets WHERE user_id = $1 AND created_at >= $2",
            [user_id, since.0],
            |r| r.col::<i64>("n")
        );
        Ok(n > 0)
    }

    pub async fn password_reset_usable(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2",
            [token_hash, now.0],
            |r| r.col::<Id>("id")
        )
        .is_some())
    }

    /// Uses a reset token: in one transaction, marks it used (only if unused and not
    /// expired, in the statement that checks it, so two concurrent uses succeed once),
    /// sets the new password, and ends what a password change ends (sessions, refresh
    /// tokens, the user's other reset tokens). `None`: no such usable token, or the
    /// user is a bot or disabled.
    pub async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        let mut tx = self.db.begin().await?;
        let Some(user_id) = fetch_optional!(
            tx.conn(),
            "UPDATE password_resets SET used_at = $2 WHERE token_hash = $1 \
             AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
            [token_hash, now.0],
            |r| r.col::<Id>("user_id")
        ) else {
            return Ok(None);
        };
        let user = fetch_optional!(
            tx.conn(),
            "UPDATE users SET password_hash = $2, credential_version = credential_version + 1, \
             updated_at = $3 WHERE id = $1 AND NOT bot AND enabled \
             RETURNING id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at",
            [user_id, password_hash, now.0],
            |r| user_row(r, "")
        );
        let Some(user) = user else {
            return Ok(None);
        };
        for sql in [
            "DELETE FROM refresh_tokens WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM password_resets WHERE user_id = $1 AND used_at IS NULL",
        ] {
            execute!(tx.conn(), sql, [user_id]);
        }
        tx.commit().await?;
        Ok(Some(user))
    }

    /// Whether any user exists (an empty instance leads to sign-up).
    pub async fn has_users(&self) -> StoreResult<bool> {
        let mut c = self.db.reader().await?;
        Ok(
            fetch_optional!(c.conn(), "SELECT id FROM users LIMIT 1", [], |r| r
                .col::<Id>("id"))
            .is_some(),
        )
    }

    /// The first-admin bootstrap: creates `u` as an admin with the application token
    /// `token`, only while there is no user at all — checked and written in one guarded
    /// transaction, so concurrent bootstraps create exactly one admin
    /// (`Refused(AlreadyBootstrapped)` for the others).
    pub async fn bootstrap_admin(
        &self,
        u: &NewUser,
        personal_namespace_base: Option<&str>,
        token: &NewApplicationToken<'_>,
        now: Timestamp,
    ) -> StoreResult<(User, ApplicationToken)> {
        let mut tx = self.db.begin().await?;
        tx.guard(Guard::Users).await?;
        let users: i64 = fetch_one!(tx.conn(), "SELECT count(*) AS n FROM users", [], |r| r
            .col::<i64>("n"));
        if users > 0 {
            return Err(StoreError::Refused(Refusal::AlreadyBootstrapped));
        }
        let admin = NewUser {
            admin: true,
            ..u.clone()
        };
        let user = insert_user(&mut tx, &admin, personal_namespace_base, now).await?;
        let token = insert_application_token(&mut tx, user.id, token, now).await?;
        tx.commit().await?;
        Ok((user, token))
    }

    pub async fn user_by_id(&self, id: Id) -> StoreResult<Option<User>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            select_users!("WHERE id = $1"),
            [id],
            |r| user_row(r, "")
        ))
    }

    /// Case-insensitive, like the unique index.
    pub async fn user_by_username(&self, name: &str) -> StoreResult<Option<User>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            select_users!("WHERE lower(username) = lower($1)"),
            [name],
            |r| user_row(r, "")
        ))
    }

    /// Case-insensitive. The empty email is shared by many users and finds none.
    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            select_users!("WHERE lower(email) = lower($1) AND email <> ''"),
            [email],
            |r| user_row(r, "")
        ))
    }

    /// Users with their personal namespace in the first registry, in one query.
    pub async fn list_users(&self, p: &PageRequest) -> StoreResult<Page<UserListing>> {
        let sql = format!(
            "SELECT {USER_COLUMNS_PREFIXED}, n.id AS namespace_id FROM users u \
             LEFT JOIN namespaces n ON n.user_id = u.id \
             AND n.registry_id = (SELECT min(id) FROM registries){}",
            p.clause("u", SORTABLE)
        );
        let mut c = self.db.reader().await?;
        let items = fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [],
            |r| user_listing_row(r)
        );
        let total = fetch_one!(c.conn(), "SELECT count(*) AS n FROM users", [], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }

    /// One user as [`Store::list_users`] shows them.
    pub async fn user_listing(&self, id: Id) -> StoreResult<Option<UserListing>> {
        let sql = format!(
            "SELECT {USER_COLUMNS_PREFIXED}, n.id AS namespace_id FROM users u \
             LEFT JOIN namespaces n ON n.user_id = u.id \
             AND n.registry_id = (SELECT min(id) FROM registries) WHERE u.id = $1"
        );
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [id],
            |r| user_listing_row(r)
        ))
    }

    /// Changes only the fields `changes` names, in one transaction: a new password or a
    /// change of `enabled` bumps the credential version in SQL (never from a value read
    /// earlier); a new password or a disable ends every refresh token; disabling or
    /// demoting the last enabled admin is refused under [`Guard::Admins`]. Returns the
    /// user and whether their credentials changed (a new password or a disable).
    pub async fn update_user(
        &self,
        id: Id,
        changes: &UserUpdate,
        now: Timestamp,
    ) -> StoreResult<(User, bool)> {
        let mut tx = self.db.begin().await?;
        if changes.enabled == Some(false) || changes.admin == Some(false) {
            tx.guard(Guard::Admins).await?;
            ensure_another_admin(&mut tx, id).await?;
        }
        if changes.admin == Some(false) {
            // A demoted admin leaves the global teams, whose owners are the admins.
            tx.guard(Guard::TeamOwners).await?;
        }
        let (set_display_name, display_name) = match &changes.display_name {
            Some(d) => (true, d.as_deref()),
            None => (false, None),
        };
        let mut user = fetch_optional!(
            tx.conn(),
            "UPDATE users SET username = COALESCE($2, username), email = COALESCE($3, email), \
             display_name = CASE WHEN $4 THEN $5 ELSE display_name END, \
             password_hash = COALESCE($6, password_hash), \
             credential_version = credential_version + \
                 CASE WHEN $6 IS NOT NULL OR ($7 IS NOT NULL AND $7 <> enabled) THEN 1 ELSE 0 END, \
             enabled = COALESCE($7, enabled), updated_at = $8 WHERE id = $1 \
             RETURNING id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at",
            [
                id,
                changes.username.as_deref(),
                changes.email.as_deref(),
                set_display_name,
                display_name,
                changes.password_hash.as_deref(),
                changes.enabled,
                now.0,
            ],
            |r| user_row(r, "")
        )
        .ok_or(StoreError::NotFound)?;
        // Decided by the request, not by values read earlier: a new password or a
        // disable ends every device session (re-enabling finds none left).
        let credentials_changed = changes.password_hash.is_some() || changes.enabled == Some(false);
        if credentials_changed {
            // A new password or a disabled account ends every device session and
            // every web UI session.
            execute!(
                tx.conn(),
                "DELETE FROM refresh_tokens WHERE user_id = $1",
                [id]
            );
            execute!(tx.conn(), "DELETE FROM sessions WHERE user_id = $1", [id]);
        }
        if let Some(admin) = changes.admin
            && admin != user.admin
        {
            user = write_admin_flag(&mut tx, id, admin, now).await?;
        }
        tx.commit().await?;
        Ok((user, credentials_changed))
    }

    /// Promotes or demotes (see [`Store::update_user`] for the last-admin rule).
    pub async fn set_admin(&self, user_id: Id, admin: bool, now: Timestamp) -> StoreResult<User> {
        let changes = UserUpdate {
            admin: Some(admin),
            ..UserUpdate::default()
        };
        Ok(self.update_user(user_id, &changes, now).await?.0)
    }

    /// Replaces a password hash with a stronger one for the same password (the bcrypt
    /// upgrade), only if neither the hash nor the credential version changed since they
    /// were read. `false` when something changed in between (nothing is written then).
    pub async fn upgrade_password_hash(
        &self,
        user_id: Id,
        read_hash: &str,
        read_credential_version: i64,
        new_hash: &str,
    ) -> StoreResult<bool> {
        let mut c = self.db.writer().await?;
        let updated = execute!(
            c.conn(),
            "UPDATE users SET password_hash = $4 WHERE id = $1 AND password_hash = $2 \
             AND credential_version = $3",
            [user_id, read_hash, read_credential_version, new_hash]
        );
        Ok(updated > 0)
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
    /// matches nothing queues for the single writer. A lock set meanwhile by concurrent
    /// failures stays (only [`Store::clear_expired_lock`] lifts one).
    pub async fn clear_failed_logins(&self, user_id: Id) -> StoreResult<()> {
        if self.db.is_sqlite() {
            let mut c = self.db.reader().await?;
            let dirty = fetch_optional!(
                c.conn(),
                "SELECT id FROM users WHERE id = $1 AND failed_attempts <> 0 AND locked_at IS NULL",
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
            "UPDATE users SET failed_attempts = 0 \
             WHERE id = $1 AND failed_attempts <> 0 AND locked_at IS NULL",
            [user_id]
        );
        Ok(())
    }

    /// Lifts the lock set at `locked_at` once it has run out and starts a fresh count;
    /// a lock set later (a new one) is left alone.
    pub async fn clear_expired_lock(&self, user_id: Id, locked_at: Timestamp) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        execute!(
            c.conn(),
            "UPDATE users SET failed_attempts = 0, locked_at = NULL \
             WHERE id = $1 AND locked_at = $2",
            [user_id, locked_at.0]
        );
        Ok(())
    }

    /// Deletes the user with their personal team and namespaces (memberships and tokens
    /// go by cascade), refusing — under [`Guard::Admins`] and [`Guard::TeamOwners`], so a
    /// concurrent demotion or member removal cannot slip in between — to remove the last
    /// enabled admin or the only owner of a team. `false` when there was no such user.
    pub async fn delete_user(&self, id: Id) -> StoreResult<bool> {
        let personal_team = personal_team_name(id);
        let mut tx = self.db.begin().await?;
        tx.guard(Guard::Admins).await?;
        tx.guard(Guard::TeamOwners).await?;
        ensure_another_admin(&mut tx, id).await?;
        // Visible teams only: hidden ones are the user's personal team (deleted below)
        // and global teams, whose owners are the admins (covered by the check above).
        let sole_owner_of: Vec<String> = fetch_all!(
            tx.conn(),
            "SELECT t.name FROM teams t JOIN team_users tu ON tu.team_id = t.id \
             WHERE tu.user_id = $1 AND tu.role = $2 AND NOT t.hidden \
             AND NOT EXISTS (SELECT 1 FROM team_users o WHERE o.team_id = t.id \
             AND o.role = $2 AND o.user_id <> $1) ORDER BY t.name",
            [id, Role::Owner.as_i64()],
            |r| r.col::<String>("name")
        );
        if !sole_owner_of.is_empty() {
            return Err(StoreError::Refused(Refusal::OnlyOwnerOf(sole_owner_of)));
        }
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

fn user_listing_row<R: RowGet>(r: &R) -> StoreResult<UserListing> {
    Ok(UserListing {
        user: user_row(r, "u_")?,
        personal_namespace_id: r.col("namespace_id")?,
    })
}
