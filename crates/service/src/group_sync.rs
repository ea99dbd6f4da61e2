//! LDAP group sync (Portus's `ldap.group_sync`): teams filled from the directory
//! group of the same name, as a periodic worker task.
//!
//! Unlike Portus, which re-checked a team at most weekly and remembered which users it
//! had checked, every run reads all groups in one paged search and compares them with
//! every synced team: a member who joins a group, or signs in for the first time,
//! joins the team within one period, and a removed member (with
//! `ldap.group_sync.remove_members`) leaves it as quickly. Which teams are synced is
//! the team's flag (`POST`/`DELETE /api/v1/teams/:id/ldap_check`); which memberships
//! the sync made is recorded, so it never removes a member added by hand.

use crate::activity::Audit;
use crate::background::JobOutcome;
use crate::inventory::SYSTEM_ACTOR;
use crate::ldap::DirectoryGroup;
use portcullis_domain::model::{Id, Role, Team, User};
use portcullis_domain::{Error, Result};
use std::collections::{HashMap, HashSet};

crate::service! {
    /// LDAP groups into teams.
    GroupSyncService
}

/// What one run did, for the log and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSyncReport {
    /// Synced teams whose group was found.
    pub teams: usize,
    pub added: usize,
    pub removed: usize,
}

/// The members a team should have according to its group: the group's usernames that
/// are Portcullis users (bots and disabled users excepted), admins as owners. Pure.
pub fn wanted_members(
    group: &DirectoryGroup,
    users: &HashMap<String, User>,
    default_role: Role,
) -> Vec<(Id, Role)> {
    let mut wanted: Vec<(Id, Role)> = group
        .members
        .iter()
        .filter_map(|name| users.get(&name.to_lowercase()))
        .filter(|u| !u.bot && u.enabled)
        .map(|u| (u.id, if u.admin { Role::Owner } else { default_role }))
        .collect();
    wanted.sort_unstable();
    wanted.dedup_by_key(|(id, _)| *id);
    wanted
}

impl GroupSyncService {
    /// Whether the configuration asks for the sync.
    pub fn enabled(&self) -> bool {
        enabled(&self.ctx)
    }

    /// The periodic job: the directory unreachable is a retry (the next period runs
    /// anyway), never a change to any team.
    pub async fn run_job(&self) -> JobOutcome {
        match self.run().await {
            Ok(report) => {
                if report.added + report.removed > 0 {
                    tracing::info!(
                        teams = report.teams,
                        added = report.added,
                        removed = report.removed,
                        "LDAP group sync"
                    );
                }
                JobOutcome::Done
            }
            Err(e) => JobOutcome::Retry(e.to_string()),
        }
    }

    /// One sync of every synced team whose group exists.
    pub async fn run(&self) -> Result<GroupSyncReport> {
        let Some(directory) = self.ctx.auth.directory().filter(|_| self.enabled()) else {
            return Ok(GroupSyncReport::default());
        };
        let groups = directory
            .groups()
            .await
            .map_err(|e| Error::Unavailable(e.into()))?;
        let by_name: HashMap<String, &DirectoryGroup> =
            groups.iter().map(|g| (g.name.to_lowercase(), g)).collect();
        let store = &self.ctx.store;
        let teams: Vec<(Team, &DirectoryGroup)> = store
            .group_sync_teams()
            .await?
            .into_iter()
            .filter_map(|t| {
                let group = by_name.get(&t.name.to_lowercase())?;
                Some((t, *group))
            })
            .collect();
        let names: Vec<String> = teams
            .iter()
            .flat_map(|(_, g)| g.members.iter().cloned())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let users: HashMap<String, User> = store
            .users_named(&names)
            .await?
            .into_iter()
            .map(|u| (u.username.to_lowercase(), u))
            .collect();
        let by_id: HashMap<Id, &User> = users.values().map(|u| (u.id, u)).collect();
        let sync = &self.ctx.config.ldap.group_sync;
        let mut report = GroupSyncReport {
            teams: teams.len(),
            ..Default::default()
        };
        for (team, group) in &teams {
            let wanted = wanted_members(group, &users, sync.default_role);
            let change = store
                .apply_group_sync(team.id, &wanted, sync.remove_members, self.ctx.clock.now())
                .await?;
            if change.added.is_empty() && change.removed.is_empty() {
                continue;
            }
            self.ctx.grants_changed();
            report.added += change.added.len();
            report.removed += change.removed.len();
            for (user_id, role) in &change.added {
                if let Some(user) = by_id.get(user_id) {
                    audit("team.add_member", team, user)
                        .param("role", role.as_str())
                        .record_by_system(&self.ctx, SYSTEM_ACTOR)
                        .await;
                }
            }
            for user_id in &change.removed {
                // A leaver is no longer in the group, so not among the users read.
                let user = match by_id.get(user_id) {
                    Some(u) => Some((*u).clone()),
                    None => store.user_by_id(*user_id).await?,
                };
                if let Some(user) = user {
                    audit("team.remove_member", team, &user)
                        .record_by_system(&self.ctx, SYSTEM_ACTOR)
                        .await;
                }
            }
            for user_id in &change.kept_last_owner {
                tracing::warn!(
                    team = %team.name,
                    user_id,
                    "LDAP group sync: a member left the group but stays, as the team's only owner"
                );
            }
        }
        Ok(report)
    }
}

pub(crate) fn enabled(ctx: &crate::Context) -> bool {
    let ldap = &ctx.config.ldap;
    ldap.enabled && ldap.group_sync.enabled && ctx.auth.directory().is_some()
}

fn audit<'a>(key: &'a str, team: &Team, user: &User) -> Audit<'a> {
    Audit::new(key, "team", Some(team.id))
        .recipient("user", user.id)
        .scope(None, Some(team.id))
        .param("team", team.name.clone())
        .param("user", user.username.clone())
        .param("source", "ldap")
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_domain::time::Timestamp;

    fn user(id: Id, name: &str, admin: bool, bot: bool, enabled: bool) -> User {
        User {
            id,
            username: name.into(),
            email: String::new(),
            display_name: None,
            password_hash: None,
            admin,
            enabled,
            bot,
            failed_attempts: 0,
            locked_at: None,
            credential_version: 0,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn group_members_who_are_users_with_their_roles() {
        let users: HashMap<String, User> = [
            user(1, "alice", false, false, true),
            user(2, "Boss", true, false, true),
            user(3, "ci-bot", false, true, true),
            user(4, "gone", false, false, false),
        ]
        .into_iter()
        .map(|u| (u.username.to_lowercase(), u))
        .collect();
        type Case<'a> = (&'a [&'a str], &'a [(Id, Role)]);
        let cases: &[Case] = &[
            (&[], &[]),
            (&["alice"], &[(1, Role::Viewer)]),
            (&["ALICE", "alice"], &[(1, Role::Viewer)]),
            (&["boss", "alice"], &[(1, Role::Viewer), (2, Role::Owner)]),
            (&["ci-bot", "gone", "stranger"], &[]),
        ];
        for (members, want) in cases {
            let group = DirectoryGroup {
                name: "developers".into(),
                members: members.iter().map(|m| m.to_string()).collect(),
            };
            assert_eq!(
                wanted_members(&group, &users, Role::Viewer),
                *want,
                "{members:?}"
            );
        }
    }
}
