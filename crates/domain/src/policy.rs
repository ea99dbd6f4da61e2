//! The authorization policy: who may pull, push and delete in a namespace (the registry
//! token matrix of Portus, reference §2.2–2.3) and who may manage teams and namespaces
//! (§2.4). Pure functions of facts the caller has already loaded.
//!
//! Deliberate differences from Portus (its "Q" rows):
//! - an unknown `push_images.policy` value is rejected when the configuration is loaded,
//!   instead of silently denying every push, so [`PushPolicy`] has no "unknown" variant;
//! - team deletion with `delete.contributors` works for contributors (Portus crashed);
//! - application tokens can be restricted to pulling ([`Subject::pull_only`]);
//! - listing or minting another user's application tokens needs admin rights, and then
//!   only for bots (Portus had no ownership check).

use crate::model::{Id, NamespaceKind, Role, Visibility};
use crate::scope::Action;
use serde::{Deserialize, Serialize};

/// `user_permission.push_images.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushPolicy {
    /// Owners and contributors push to their teams' namespaces; everyone to their own.
    #[serde(rename = "allow-teams")]
    AllowTeams,
    /// Only admins push to team namespaces; everyone to their own personal namespace.
    #[serde(rename = "allow-personal")]
    AllowPersonal,
    /// Only admins push.
    #[serde(rename = "admin-only")]
    AdminOnly,
}

/// The configuration switches the policy reads (`user_permission.*` and `delete.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyOptions {
    pub push_policy: PushPolicy,
    pub delete_enabled: bool,
    pub delete_contributors: bool,
    pub create_namespace: bool,
    pub manage_namespace: bool,
    pub change_visibility: bool,
    pub create_team: bool,
    pub manage_team: bool,
    pub create_webhook: bool,
    pub manage_webhook: bool,
}

impl Default for PolicyOptions {
    /// Portus's defaults.
    fn default() -> Self {
        Self {
            push_policy: PushPolicy::AllowTeams,
            delete_enabled: true,
            delete_contributors: false,
            create_namespace: true,
            manage_namespace: true,
            change_visibility: true,
            create_team: true,
            manage_team: true,
            create_webhook: true,
            manage_webhook: true,
        }
    }
}

/// An authenticated caller. Anonymous callers are `None` wherever a `Option<&Subject>`
/// is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub user_id: Id,
    pub admin: bool,
    pub bot: bool,
    /// Authenticated with an application token restricted to pulls.
    pub pull_only: bool,
}

/// What the policy needs to know about one namespace, seen from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceFacts {
    pub kind: NamespaceKind,
    pub visibility: Visibility,
    /// The caller's role in the team owning the namespace; for a personal namespace the
    /// owner is `Owner` of its hidden team.
    pub role: Option<Role>,
}

impl NamespaceFacts {
    fn is_own_personal(&self) -> bool {
        self.kind == NamespaceKind::Personal && self.role == Some(Role::Owner)
    }
}

pub fn can_pull(who: Option<&Subject>, ns: &NamespaceFacts) -> bool {
    if ns.visibility == Visibility::Public {
        return true;
    }
    let Some(s) = who else { return false };
    s.admin
        || ns.visibility == Visibility::Protected
        || ns.kind == NamespaceKind::Global
        || ns.role.is_some()
}

pub fn can_push(who: Option<&Subject>, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    let Some(s) = who else { return false };
    if s.pull_only {
        return false;
    }
    if s.admin {
        return true;
    }
    if ns.kind == NamespaceKind::Global {
        return false;
    }
    match opts.push_policy {
        PushPolicy::AllowTeams => matches!(ns.role, Some(Role::Owner | Role::Contributor)),
        PushPolicy::AllowPersonal => ns.is_own_personal(),
        PushPolicy::AdminOnly => false,
    }
}

/// Deleting images: `delete.enabled` and (admin, team owner, or contributor when
/// `delete.contributors`). Owning a personal namespace means owning its hidden team.
pub fn can_delete(who: Option<&Subject>, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    let Some(s) = who else { return false };
    if s.pull_only || !opts.delete_enabled {
        return false;
    }
    s.admin
        || ns.role == Some(Role::Owner)
        || (opts.delete_contributors && ns.role == Some(Role::Contributor))
}

/// The actions granted on a `repository` scope: the requested ones the caller may do,
/// in request order, each once. `*` is granted as `*` alone when pull, push and delete
/// are all allowed (as Portus answered; the registry reads `*` as every action, and up
/// to 2.6 deleted with it); otherwise it stands for the allowed ones among the three.
/// Unknown actions are dropped. `ns` is `None` when the namespace does not exist: then
/// only admins get anything (the service creates the namespace on an admin push).
pub fn repository_grant(
    who: Option<&Subject>,
    ns: Option<&NamespaceFacts>,
    requested: &[Action],
    opts: &PolicyOptions,
) -> Vec<Action> {
    let allowed = |a: &Action| -> bool {
        match ns {
            Some(ns) => match a {
                Action::Pull => can_pull(who, ns),
                Action::Push => can_push(who, ns, opts),
                Action::Delete => can_delete(who, ns, opts),
                Action::All | Action::Other(_) => false,
            },
            None => match who {
                Some(s) if s.admin && !s.pull_only => match a {
                    Action::Pull | Action::Push => true,
                    Action::Delete => opts.delete_enabled,
                    Action::All | Action::Other(_) => false,
                },
                _ => false,
            },
        }
    };
    let mut out: Vec<Action> = Vec::new();
    let add = |a: Action, out: &mut Vec<Action>| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for a in requested {
        match a {
            Action::All => {
                let basics = [Action::Pull, Action::Push, Action::Delete];
                let granted: Vec<Action> = basics.into_iter().filter(|b| allowed(b)).collect();
                let everything = granted.len() == 3;
                for g in granted {
                    add(g, &mut out);
                }
                if everything {
                    add(Action::All, &mut out);
                }
            }
            other if allowed(other) => add(other.clone(), &mut out),
            _ => {}
        }
    }
    if out.contains(&Action::All) {
        return vec![Action::All];
    }
    out
}

/// The actions granted on a `registry` scope: only `registry:catalog:*`, only to admins
/// (the registry does not filter the catalog per user).
pub fn registry_grant(who: Option<&Subject>, name: &str, requested: &[Action]) -> Vec<Action> {
    let admin = who.is_some_and(|s| s.admin && !s.pull_only);
    if admin && name == "catalog" && requested.contains(&Action::All) {
        vec![Action::All]
    } else {
        Vec::new()
    }
}

// ---- Management permissions (API and UI), Portus reference §2.4 ----
//
// A pull-only application token is a read-only credential everywhere: every function
// below that allows a change refuses it, whatever the holder's role.

impl Subject {
    /// Whether this credential may change anything at all.
    pub fn may_write(&self) -> bool {
        !self.pull_only
    }
}

/// Seeing a namespace (and its repositories) is the same rule as pulling from it.
pub fn can_view_namespace(who: Option<&Subject>, ns: &NamespaceFacts) -> bool {
    can_pull(who, ns)
}

/// Creating a namespace in a team where the caller has `role_in_team`.
pub fn can_create_namespace(s: &Subject, role_in_team: Option<Role>, opts: &PolicyOptions) -> bool {
    if !s.may_write() {
        return false;
    }
    if s.admin {
        return true;
    }
    opts.create_namespace
        && opts.push_policy == PushPolicy::AllowTeams
        && matches!(role_in_team, Some(Role::Owner | Role::Contributor))
}

/// Renaming or describing a namespace.
pub fn can_update_namespace(s: &Subject, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    (s.admin || (opts.manage_namespace && ns.role == Some(Role::Owner)))
        && can_push(Some(s), ns, opts)
}

/// Moving a namespace to another team.
pub fn can_change_namespace_team(s: &Subject, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    ns.kind == NamespaceKind::Team && can_update_namespace(s, ns, opts)
}

pub fn can_change_visibility(s: &Subject, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    s.may_write()
        && (s.admin
            || (opts.change_visibility
                && ns.kind != NamespaceKind::Global
                && ns.role == Some(Role::Owner)))
}

/// Deleting a namespace. Personal namespaces are refused by the service with a 422.
pub fn can_delete_namespace(s: &Subject, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    s.may_write()
        && opts.delete_enabled
        && ns.kind != NamespaceKind::Global
        && (s.admin
            || ns.role == Some(Role::Owner)
            || (opts.delete_contributors && ns.role == Some(Role::Contributor)))
}

/// Seeing a namespace's webhooks and their deliveries: admins and members of the
/// namespace's team (Portus). Deliveries show the events and the receivers' answers,
/// so readers of a public namespace do not see them.
pub fn can_view_webhooks(s: &Subject, ns: &NamespaceFacts) -> bool {
    s.admin || ns.role.is_some()
}

/// Creating and deleting webhooks: admins, or owners when `create_webhook` is on.
pub fn can_create_webhook(s: &Subject, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    s.may_write() && (s.admin || (opts.create_webhook && ns.role == Some(Role::Owner)))
}

/// Changing webhooks (settings, enabling, headers, re-sending a delivery): admins, or
/// owners when `manage_webhook` is on.
pub fn can_manage_webhook(s: &Subject, ns: &NamespaceFacts, opts: &PolicyOptions) -> bool {
    s.may_write() && (s.admin || (opts.manage_webhook && ns.role == Some(Role::Owner)))
}

pub fn can_view_team(s: &Subject, role: Option<Role>) -> bool {
    s.admin || role.is_some()
}

pub fn can_create_team(s: &Subject, opts: &PolicyOptions) -> bool {
    s.may_write() && (s.admin || opts.create_team)
}

pub fn can_update_team(
    s: &Subject,
    hidden: bool,
    role: Option<Role>,
    opts: &PolicyOptions,
) -> bool {
    s.may_write() && !hidden && (s.admin || (opts.manage_team && role == Some(Role::Owner)))
}

pub fn can_delete_team(
    s: &Subject,
    hidden: bool,
    role: Option<Role>,
    opts: &PolicyOptions,
) -> bool {
    s.may_write()
        && opts.delete_enabled
        && !hidden
        && (s.admin
            || role == Some(Role::Owner)
            || (opts.delete_contributors && role == Some(Role::Contributor)))
}

pub fn can_manage_members(s: &Subject, hidden: bool, role: Option<Role>) -> bool {
    s.may_write() && !hidden && (s.admin || role == Some(Role::Owner))
}

/// Listing the application and refresh tokens of `owner`: the owner, or an admin acting
/// for a bot.
pub fn can_view_tokens_of(s: &Subject, owner_id: Id, owner_is_bot: bool) -> bool {
    s.user_id == owner_id || (s.admin && owner_is_bot)
}

/// Creating or revoking them: the same people, never with a read-only credential (a
/// pull-only token must not mint a full one).
pub fn can_manage_tokens_of(s: &Subject, owner_id: Id, owner_is_bot: bool) -> bool {
    s.may_write() && can_view_tokens_of(s, owner_id, owner_is_bot)
}

/// Admin-only changes (users, registries): an admin with a credential that may write.
pub fn can_administer(s: &Subject) -> bool {
    s.admin && s.may_write()
}

#[cfg(test)]
mod tests;
