//! JSON shapes of the API, field for field those of Portus's entities (reference §9.3),
//! with additions marked. Timestamps are RFC 3339 in UTC.

use portcullis_domain::model::{
    ApplicationToken, Namespace, NamespaceKind, RefreshToken, Registry, TeamListing, TeamMember,
    User, UserListing,
};
use portcullis_service::namespaces::NamespaceDetails;
use serde::Serialize;
use utoipa::ToSchema;

use crate::rfc3339 as time;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserEntity {
    pub id: i64,
    pub username: String,
    pub email: String,
    /// Not tracked yet (web sessions arrive with the UI); always null.
    pub current_sign_in_at: Option<String>,
    pub last_sign_in_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub admin: bool,
    pub enabled: bool,
    pub locked_at: Option<String>,
    /// The personal namespace in the first registry, if any.
    pub namespace_id: Option<i64>,
    pub display_name: Option<String>,
    pub bot: bool,
    /// Only when an admin creates a bot: its `default` application token, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_token: Option<String>,
}

impl UserEntity {
    pub fn new(listing: &UserListing) -> Self {
        let u = &listing.user;
        Self {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            current_sign_in_at: None,
            last_sign_in_at: None,
            created_at: time(u.created_at),
            updated_at: time(u.updated_at),
            admin: u.admin,
            enabled: u.enabled,
            locked_at: u.locked_at.map(time),
            namespace_id: listing.personal_namespace_id,
            display_name: u.display_name.clone(),
            bot: u.bot,
            plain_token: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationTokenEntity {
    pub id: i64,
    pub application: String,
    /// Beyond Portus: the token can only pull.
    pub pull_only: bool,
    /// Beyond Portus.
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_at: String,
    /// Only in the creation response: the token itself, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_token: Option<String>,
}

impl ApplicationTokenEntity {
    pub fn new(t: &ApplicationToken, plain: Option<String>) -> Self {
        Self {
            id: t.id,
            application: t.application.clone(),
            pull_only: t.pull_only,
            expires_at: t.expires_at.map(time),
            last_used_at: t.last_used_at.map(time),
            created_at: time(t.created_at),
            plain_token: plain,
        }
    }
}

/// Beyond Portus: a device's refresh (identity) token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshTokenEntity {
    pub id: i64,
    pub service: String,
    pub client_id: String,
    pub last_used_at: Option<String>,
    pub created_at: String,
}

impl From<&RefreshToken> for RefreshTokenEntity {
    fn from(t: &RefreshToken) -> Self {
        Self {
            id: t.id,
            service: t.service.clone(),
            client_id: t.client_id.clone(),
            last_used_at: t.last_used_at.map(time),
            created_at: time(t.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryEntity {
    pub id: i64,
    pub name: String,
    pub hostname: String,
    pub external_hostname: Option<String>,
    pub use_ssl: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Registry> for RegistryEntity {
    fn from(r: &Registry) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            hostname: r.hostname.clone(),
            external_hostname: r.external_hostname.clone(),
            use_ssl: r.use_ssl,
            created_at: time(r.created_at),
            updated_at: time(r.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamRef {
    pub id: i64,
    pub name: String,
    pub hidden: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamespacePermissions {
    /// The caller's role in the owning team, if any.
    pub role: Option<String>,
    pub pull: bool,
    pub push: bool,
    /// Beyond Portus: the caller may delete images here.
    pub delete: bool,
    /// The caller may see the namespace's webhooks.
    pub webhooks: bool,
    /// The caller may change the visibility.
    pub visibility: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceEntity {
    pub id: i64,
    /// The global namespace shows as its registry's hostname (Portus).
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    pub description: String,
    pub team: TeamRef,
    /// `private`, `protected` or `public`.
    pub visibility: String,
    pub global: bool,
    /// Beyond Portus: `global`, `personal` or `team`.
    pub kind: String,
    /// Beyond Portus: several registries are supported.
    pub registry_id: i64,
    pub permissions: NamespacePermissions,
    pub updatable: bool,
    pub destroyable: bool,
}

pub fn namespace_name(ns: &Namespace, registry: &Registry) -> String {
    if ns.kind == NamespaceKind::Global {
        registry
            .external_hostname
            .clone()
            .unwrap_or_else(|| registry.hostname.clone())
    } else {
        ns.name.clone()
    }
}

impl From<&NamespaceDetails> for NamespaceEntity {
    fn from(d: &NamespaceDetails) -> Self {
        let ns = &d.namespace;
        Self {
            id: ns.id,
            name: namespace_name(ns, &d.registry),
            created_at: time(ns.created_at),
            updated_at: time(ns.updated_at),
            description: ns.description.clone(),
            team: TeamRef {
                id: d.team.id,
                name: d.team.name.clone(),
                hidden: d.team.hidden,
            },
            visibility: ns.visibility.as_str().to_owned(),
            global: ns.kind == NamespaceKind::Global,
            kind: ns.kind.as_str().to_owned(),
            registry_id: ns.registry_id,
            permissions: NamespacePermissions {
                role: d.role.map(|r| r.as_str().to_owned()),
                pull: d.pull,
                push: d.push,
                delete: d.delete_images,
                webhooks: d.webhooks,
                visibility: d.change_visibility,
            },
            updatable: d.updatable,
            destroyable: d.destroyable,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamEntity {
    pub id: i64,
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    pub description: String,
    pub hidden: bool,
    /// The caller's role in the team.
    pub role: Option<String>,
    pub users_count: i64,
    pub namespaces_count: i64,
}

impl TeamEntity {
    pub fn new(listing: &TeamListing) -> Self {
        let t = &listing.team;
        Self {
            id: t.id,
            name: t.name.clone(),
            created_at: time(t.created_at),
            updated_at: time(t.updated_at),
            description: t.description.clone(),
            hidden: t.hidden,
            role: listing.role.map(|r| r.as_str().to_owned()),
            users_count: listing.members,
            namespaces_count: listing.namespaces,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamMemberEntity {
    pub id: i64,
    pub team_id: i64,
    pub user_id: i64,
    pub created_at: String,
    pub updated_at: String,
    pub role: String,
    /// The display name, or the username when none is set.
    pub display_name: String,
    pub admin: bool,
}

impl TeamMemberEntity {
    pub fn new(m: &TeamMember, u: &User) -> Self {
        Self {
            id: m.id,
            team_id: m.team_id,
            user_id: m.user_id,
            created_at: time(m.created_at),
            updated_at: time(m.updated_at),
            role: m.role.as_str().to_owned(),
            display_name: u.display_name.clone().unwrap_or_else(|| u.username.clone()),
            admin: u.admin,
        }
    }
}

/// `{"valid": bool, "messages": {field: [..]}}` of the validate endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationEntity {
    pub valid: bool,
    pub messages: std::collections::BTreeMap<String, Vec<String>>,
}

/// The error body of every API failure: a string, or field → messages for 422s.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEntity {
    #[schema(value_type = Object)]
    pub message: serde_json::Value,
}
