//! Entities shared by storage, services and the HTTP layer.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

pub type Id = i64;

/// A member's role in a team. Stored as Portus's integers (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer = 0,
    Contributor = 1,
    Owner = 2,
}

impl Role {
    pub fn as_i64(self) -> i64 {
        self as i64
    }
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Role::Viewer),
            1 => Some(Role::Contributor),
            2 => Some(Role::Owner),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Contributor => "contributor",
            Role::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "contributor" => Some(Role::Contributor),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// Who may pull from a namespace. Stored as Portus's integers (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Team members only.
    Private = 0,
    /// Every logged-in user may pull.
    Protected = 1,
    /// Everyone, anonymous included, may pull.
    Public = 2,
}

impl Visibility {
    pub fn as_i64(self) -> i64 {
        self as i64
    }
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            0 => Some(Visibility::Private),
            1 => Some(Visibility::Protected),
            2 => Some(Visibility::Public),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Protected => "protected",
            Visibility::Public => "public",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "private" => Some(Visibility::Private),
            "protected" => Some(Visibility::Protected),
            "public" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// What a namespace is for; decides which rules of the policy apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceKind {
    /// The registry-wide namespace for images without a `ns/` prefix. Owned by the hidden
    /// global team whose owners are all admins.
    Global,
    /// A user's own namespace, owned by a hidden team with that user as the only owner.
    Personal,
    /// A namespace belonging to a regular team.
    Team,
}

impl NamespaceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NamespaceKind::Global => "global",
            NamespaceKind::Personal => "personal",
            NamespaceKind::Team => "team",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "global" => Some(NamespaceKind::Global),
            "personal" => Some(NamespaceKind::Personal),
            "team" => Some(NamespaceKind::Team),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    /// PHC string (argon2id) or a bcrypt hash imported from Portus; `None` for bots and
    /// for users who can only log in through an external identity provider.
    pub password_hash: Option<String>,
    pub admin: bool,
    pub enabled: bool,
    pub bot: bool,
    pub failed_attempts: i64,
    pub locked_at: Option<Timestamp>,
    /// Bumped whenever cached proofs of this user's credentials must stop working:
    /// a password change, a change of `enabled`, a lockout. (Revoking a token deletes it;
    /// the version does not move.)
    pub credential_version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: Id,
    pub name: String,
    pub description: String,
    /// Hidden teams back personal and global namespaces; never listed.
    pub hidden: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub id: Id,
    pub team_id: Id,
    pub user_id: Id,
    pub role: Role,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub id: Id,
    pub name: String,
    /// `host[:port]` Portcullis uses to reach the registry; also matched against the
    /// token request's `service`.
    pub hostname: String,
    pub use_ssl: bool,
    /// An alternative name clients use (matched for `service` too).
    pub external_hostname: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub id: Id,
    pub registry_id: Id,
    pub team_id: Id,
    pub name: String,
    pub description: String,
    pub kind: NamespaceKind,
    pub visibility: Visibility,
    /// The owner of a personal namespace.
    pub user_id: Option<Id>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationToken {
    pub id: Id,
    pub user_id: Id,
    pub application: String,
    /// Tokens restricted to pulling never grant push or delete.
    pub pull_only: bool,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A signed-in web UI browser. The cookie holds a secret; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Id,
    pub user_id: Id,
    pub user_agent: String,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// The absolute end, however busy the session is.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub id: Id,
    pub user_id: Id,
    /// The `service` (audience) the token was issued for; it works for nothing else.
    pub service: String,
    pub client_id: String,
    /// The application token it was obtained with; `None` when obtained with a
    /// password. It dies with that token and never outlives it.
    pub application_token_id: Option<Id>,
    pub last_used_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

// ---- Read models: a list entry with what is shown beside it, loaded in one query ----

/// A user with their personal namespace in the first registry (Portus's single
/// `namespace_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListing {
    pub user: User,
    pub personal_namespace_id: Option<Id>,
}

/// A team with the viewer's role in it and its member and namespace counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamListing {
    pub team: Team,
    pub role: Option<Role>,
    pub members: i64,
    pub namespaces: i64,
}

/// A namespace with its team, its registry and the viewer's role in the team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceListing {
    pub namespace: Namespace,
    pub team: Team,
    pub registry: Registry,
    pub role: Option<Role>,
}
