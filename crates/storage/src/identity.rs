//! Identity sources: what the LDAP group sync reads and writes, and accounts at
//! OpenID Connect / OAuth providers (`(provider, subject) -> user`).

use crate::db::{Conn, Guard, RowGet, Tx, execute, fetch_all, fetch_optional};
use crate::teams::team_row;
use crate::users::user_row;
use crate::{Store, StoreError, StoreResult};
use portcullis_domain::model::{Id, Role, Team, User};
use portcullis_domain::time::Timestamp;
use std::collections::HashSet;

/// What one team's group sync changed: the users added and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSyncChange {
    pub added: Vec<(Id, Role)>,
    pub removed: Vec<Id>,
    /// Leavers kept because they are the team's only owner.
    pub kept_last_owner: Vec<Id>,
}

pub(crate) async fn insert_identity(
    tx: &mut Tx,
    user_id: Id,
    provider: &str,
    subject: &str,
    now: Timestamp,
) -> StoreResult<()> {
    execute!(
        tx.conn(),
        "INSERT INTO external_identities (user_id, provider, subject, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $4)",
        [user_id, provider, subject, now.0]
    );
    Ok(())
}

impl Store {
    /// The user an account at a provider is linked to.
    pub async fn identity_user(&self, provider: &str, subject: &str) -> StoreResult<Option<User>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT u.id, u.username, u.email, u.display_name, u.password_hash, u.admin, \
             u.enabled, u.bot, u.failed_attempts, u.locked_at, u.credential_version, \
             u.created_at, u.updated_at FROM external_identities i \
             JOIN users u ON u.id = i.user_id WHERE i.provider = $1 AND i.subject = $2",
            [provider, subject],
            |r| user_row(r, "")
        ))
    }

    /// Links an account at a provider to an existing user; already linked (to anyone)
    /// is `Conflict("identity")`.
    pub async fn link_identity(
        &self,
        user_id: Id,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        insert_identity(&mut tx, user_id, provider, subject, now).await?;
        tx.commit().await
    }

    /// Records a sign-in through the account (shown to admins).
    pub async fn identity_used(
        &self,
        provider: &str,
        subject: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        execute!(
            c.conn(),
            "UPDATE external_identities SET last_used_at = $3 WHERE provider = $1 AND subject = $2",
            [provider, subject, now.0]
        );
        Ok(())
    }

    /// The providers a user's accounts are at, oldest link first.
    pub async fn identities_of(&self, user_id: Id) -> StoreResult<Vec<String>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT provider FROM external_identities WHERE user_id = $1 ORDER BY id",
            [user_id],
            |r| r.col::<String>("provider")
        ))
    }

    /// The teams the LDAP group sync looks after: not hidden (personal and global
    /// teams are no group's), and not opted out by their owner.
    pub async fn group_sync_teams(&self) -> StoreResult<Vec<Team>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, name, description, hidden, created_at, updated_at FROM teams \
             WHERE NOT hidden AND ldap_group_sync ORDER BY id",
            [],
            |r| team_row(r)
        ))
    }

    /// Whether the group sync looks after `team_id` (`None`: no such team).
    pub async fn team_group_sync(&self, team_id: Id) -> StoreResult<Option<bool>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT ldap_group_sync FROM teams WHERE id = $1",
            [team_id],
            |r| r.col::<bool>("ldap_group_sync")
        ))
    }

    /// Turns the group sync of one team on or off. `NotFound` without the team.
    pub async fn set_team_group_sync(
        &self,
        team_id: Id,
        enabled: bool,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        let updated = execute!(
            c.conn(),
            "UPDATE teams SET ldap_group_sync = $2, updated_at = $3 WHERE id = $1",
            [team_id, enabled, now.0]
        );
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The users with these names (case-insensitive, like the unique index), in one
    /// query whatever the number of names: the names travel as one JSON array.
    pub async fn users_named(&self, names: &[String]) -> StoreResult<Vec<User>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let names = serde_json::to_string(names).map_err(|e| StoreError::Other(e.to_string()))?;
        let mut c = self.db.reader().await?;
        let conn = c.conn();
        let elements = match conn {
            Conn::Sqlite(_) => "SELECT lower(value) FROM json_each($1)",
            Conn::Postgres(_) => "SELECT lower(value) FROM json_array_elements_text($1::json)",
        };
        let sql = format!(
            "SELECT id, username, email, display_name, password_hash, admin, enabled, bot, \
             failed_attempts, locked_at, credential_version, created_at, updated_at FROM users \
             WHERE lower(username) IN ({elements}) ORDER BY id"
        );
        Ok(fetch_all!(
            conn,
            sqlx::AssertSqlSafe(sql),
            [names.as_str()],
            |r| user_row(r, "")
        ))
    }

    /// Applies one team's group: adds `members` that are not members yet (marked as
    /// made by the sync), and with `remove_leavers` removes the sync's own memberships
    /// of users not in `members` (never one added by hand, never the only owner). One
    /// transaction, serialised with owner changes like every membership removal.
    pub async fn apply_group_sync(
        &self,
        team_id: Id,
        members: &[(Id, Role)],
        remove_leavers: bool,
        now: Timestamp,
    ) -> StoreResult<GroupSyncChange> {
        let mut tx = self.db.begin().await?;
        tx.guard(Guard::TeamOwners).await?;
        let mut change = GroupSyncChange::default();
        for &(user_id, role) in members {
            let added = fetch_optional!(
                tx.conn(),
                "INSERT INTO team_users (team_id, user_id, role, ldap_synced, created_at, \
                 updated_at) VALUES ($1, $2, $3, true, $4, $4) \
                 ON CONFLICT (team_id, user_id) DO NOTHING RETURNING user_id",
                [team_id, user_id, role.as_i64(), now.0],
                |r| r.col::<Id>("user_id")
            );
            if added.is_some() {
                change.added.push((user_id, role));
            }
        }
        if remove_leavers {
            let keep: HashSet<Id> = members.iter().map(|(id, _)| *id).collect();
            let synced = fetch_all!(
                tx.conn(),
                "SELECT user_id FROM team_users WHERE team_id = $1 AND ldap_synced \
                 ORDER BY id",
                [team_id],
                |r| r.col::<Id>("user_id")
            );
            for user_id in synced.into_iter().filter(|id| !keep.contains(id)) {
                // The only owner stays, whoever added them: a team must keep one.
                let removed = execute!(
                    tx.conn(),
                    "DELETE FROM team_users WHERE team_id = $1 AND user_id = $2 \
                     AND (role <> $3 OR (SELECT count(*) FROM team_users o \
                     WHERE o.team_id = $1 AND o.role = $3) > 1)",
                    [team_id, user_id, Role::Owner.as_i64()]
                );
                if removed > 0 {
                    change.removed.push(user_id);
                } else {
                    change.kept_last_owner.push(user_id);
                }
            }
        }
        execute!(
            tx.conn(),
            "UPDATE teams SET ldap_checked_at = $2 WHERE id = $1",
            [team_id, now.0]
        );
        tx.commit().await?;
        Ok(change)
    }
}
