//! The typed configuration tree. Field names are the YAML keys; several are a contract
//! with tools outside this repository (see docs/CONFIGURATION.md).

use ipnet::IpNet;
use portcullis_domain::policy::PushPolicy;
use portcullis_domain::signing::{Algorithm, KidFormat};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;

// --- token exchange (RFC 8693): its whole tree lives in model/token_exchange.rs ---
mod token_exchange;
pub use token_exchange::{DEFAULT_EXCHANGE_LIFETIME_SECONDS, TokenExchange, TrustRule};
// --- end token exchange ---

/// Portus wraps some scalars as `key: {value: …}`; we keep that shape for compatibility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value<T> {
    pub value: T,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    pub enabled: bool,
}

const fn on() -> Enabled {
    Enabled { enabled: true }
}
const fn off() -> Enabled {
    Enabled { enabled: false }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    /// Folder for the SQLite database and generated keys.
    pub data_dir: PathBuf,
    /// The JWT issuer; must equal the registry's `auth.token.issuer`.
    pub machine_fqdn: Value<String>,
    pub token: Token,
    pub registry: RegistrySettings,
    pub notifications: Notifications,
    pub delete: Delete,
    pub user_permission: UserPermission,
    pub first_user_admin: Enabled,
    pub signup: Enabled,
    pub anonymous_browsing: Enabled,
    pub display_name: Enabled,
    pub pagination: Pagination,
    pub security_policy: SecurityPolicy,
    pub background: Background,
    pub webhooks: Webhooks,
    pub log: Log,
    pub metrics: Metrics,
    pub ldap: Ldap,
    pub email: Email,
    pub oauth: OAuth,
    /// OAuth 2.0 Token Exchange of CI ID tokens (see [`TokenExchange`]).
    pub token_exchange: TokenExchange,
}

/// Portus's `oauth.*`: sign-in through identity providers beside local accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth {
    /// `false` hides and refuses the web UI's username and password form (unless LDAP
    /// is on); `docker login` with application tokens is unaffected.
    pub local_login: Enabled,
    pub openid_connect: OpenIdConnect,
    pub google_oauth2: GoogleOAuth2,
    pub github: GitHub,
    pub gitlab: GitLab,
    pub bitbucket: Bitbucket,
}

/// Google (Portus's `oauth.google_oauth2`): an OpenID Connect provider, signed in
/// through the same client as `openid_connect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleOAuth2 {
    pub enabled: bool,
    /// The OAuth client id.
    pub id: String,
    pub secret: String,
    /// Only emails of this domain may sign in (empty: any).
    pub domain: String,
    pub options: GoogleOptions,
    /// Not in Portus: the issuer, `https://accounts.google.com`; another one only
    /// for tests (a fake provider).
    pub issuer: String,
}

/// `value`, or `default` when it is empty: Portus's files leave the servers empty for
/// the public services.
fn or_default<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.trim().is_empty() {
        default
    } else {
        value
    }
}

impl GoogleOAuth2 {
    pub fn issuer(&self) -> &str {
        or_default(&self.issuer, "https://accounts.google.com")
    }
}

impl GitHub {
    pub fn server(&self) -> &str {
        or_default(&self.server, "https://github.com")
    }
}

impl GitLab {
    pub fn server(&self) -> &str {
        or_default(&self.server, "https://gitlab.com")
    }
}

impl Bitbucket {
    pub fn server(&self) -> &str {
        or_default(&self.server, "https://bitbucket.org")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleOptions {
    /// The Google Workspace (G Suite) domain: sent as `hd`, and the ID token's `hd`
    /// claim must equal it (empty: any account).
    pub hd: String,
}

/// GitHub (Portus's `oauth.github`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHub {
    pub enabled: bool,
    pub client_id: String,
    pub client_secret: String,
    /// Only members of this organization (its login) may sign in (empty: anyone).
    pub organization: String,
    /// Only members of this team (its name or slug; in `organization` when that is
    /// set) may sign in (empty: any).
    pub team: String,
    /// Only accounts whose primary verified email is of this domain (empty: any).
    pub domain: String,
    /// Not in Portus: the web address, `https://github.com` (API
    /// `https://api.github.com`); a GitHub Enterprise Server's `https://<host>` has its
    /// API at `https://<host>/api/v3`.
    pub server: String,
}

/// GitLab (Portus's `oauth.gitlab`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitLab {
    pub enabled: bool,
    pub application_id: String,
    pub secret: String,
    /// Only members (Guest or more) of this group, by its full path (`parent/child`;
    /// paths are unique, display names are not) may sign in (empty: anyone).
    pub group: String,
    pub domain: String,
    /// The GitLab instance; its API is `<server>/api/v4`.
    pub server: String,
}

/// Bitbucket Cloud (Portus's `oauth.bitbucket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bitbucket {
    pub enabled: bool,
    /// The OAuth consumer's key and secret.
    pub key: String,
    pub secret: String,
    pub domain: String,
    pub options: BitbucketOptions,
    /// Not in Portus: the web address, `https://bitbucket.org` (API
    /// `https://api.bitbucket.org`); another one only for tests (a fake, whose API is
    /// at `<server>/api`).
    pub server: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitbucketOptions {
    /// Only members of this workspace (Portus's "team"; its slug) may sign in
    /// (empty: anyone).
    pub team: String,
}

/// A generic OpenID Connect provider (Portus's `oauth.openid_connect`): the
/// authorization code flow with PKCE, discovery from `issuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenIdConnect {
    pub enabled: bool,
    /// The issuer URL; `<issuer>/.well-known/openid-configuration` is read.
    pub issuer: String,
    /// The client id registered at the provider.
    pub identifier: String,
    /// The client secret (empty: a public client, PKCE only).
    pub secret: String,
    /// Not in Portus: the button's label ("Sign in with <name>").
    pub name: String,
    /// Portus's `domain`: only emails of this domain may sign in (empty: any).
    pub domain: String,
}

/// Portus's `email.*`, key for key: the sender of Portcullis's mail (password resets)
/// and how it leaves: SMTP when `smtp.enabled`, else the sendmail program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub from: String,
    /// The sender's display name: `"<name> <from>"`.
    pub name: String,
    /// Empty: no `Reply-To`.
    pub reply_to: String,
    pub smtp: Smtp,
    /// Not in Portus, which always ran `/usr/sbin/sendmail -i -t`: that program's path.
    pub sendmail: Sendmail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smtp {
    pub enabled: bool,
    pub address: String,
    pub port: i64,
    /// The name Portcullis greets the server with (HELO/EHLO).
    pub domain: String,
    /// `ssl` or `tls`: implicit TLS from the first byte (SMTPS, usually port 465).
    pub ssl_tls: SmtpImplicitTls,
    /// STARTTLS on the plain port. Unlike Portus's "when offered", it is required as
    /// soon as credentials are configured, so a downgrade cannot expose them.
    pub enable_starttls_auto: bool,
    /// `peer` (the certificate is checked) or `none`. Portus's default was `none`;
    /// ours is `peer`.
    pub openssl_verify_mode: SmtpVerifyMode,
    /// A folder of PEM files, each trusted besides the system roots.
    pub ca_path: String,
    /// A PEM file of CAs trusted besides the system roots.
    pub ca_file: String,
    /// Empty: no authentication.
    pub user_name: String,
    pub password: String,
    pub authentication: SmtpAuthentication,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmtpImplicitTls {
    #[serde(rename = "")]
    None,
    #[serde(rename = "ssl")]
    Ssl,
    #[serde(rename = "tls")]
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpVerifyMode {
    None,
    Peer,
}

/// Portus's values. `cram_md5` is understood but refused at start: the mail library
/// does not offer it (RFC 8314 era servers take `plain` or `login` over TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpAuthentication {
    Login,
    Plain,
    CramMd5,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sendmail {
    pub location: String,
}

/// Portus's `ldap.*`, key for key: sign-in against an LDAP directory (a Portus `ldap:`
/// block works unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ldap {
    pub enabled: bool,
    pub hostname: String,
    pub port: i64,
    /// Seconds a connection, bind or search may take.
    pub timeout: i64,
    pub encryption: LdapEncryption,
    /// Where users are searched.
    pub base: String,
    /// Searched first when set: a user found there signs in as an admin.
    pub admin_base: String,
    /// Where the groups of the group sync are searched (empty: `base`).
    pub group_base: String,
    /// An extra LDAP filter every user must match, e.g. `(memberOf=cn=registry,…)`.
    pub filter: String,
    /// The attribute holding the username (`uid`; Active Directory: `sAMAccountName`).
    pub uid: String,
    pub authentication: LdapAuthentication,
    pub group_sync: LdapGroupSync,
    pub guess_email: LdapGuessEmail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapEncryption {
    pub method: LdapEncryptionMethod,
    pub options: LdapEncryptionOptions,
}

/// Portus's values: empty (none), `start_tls` (alias `starttls`), `simple_tls` (LDAPS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LdapEncryptionMethod {
    #[serde(rename = "")]
    None,
    #[serde(rename = "start_tls", alias = "starttls")]
    StartTls,
    #[serde(rename = "simple_tls")]
    SimpleTls,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapEncryptionOptions {
    /// PEM file of the CA(s) to trust besides the system roots.
    pub ca_file: String,
    /// The lowest TLS version: `TLSv1_2` (Portus's default) or `TLSv1_3`.
    pub ssl_version: String,
}

/// The service account that searches for users (else searches are anonymous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapAuthentication {
    pub enabled: bool,
    pub bind_dn: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapGroupSync {
    pub enabled: bool,
    /// The role of a member the sync adds (admins join as owners).
    pub default_role: portcullis_domain::model::Role,
    /// Not in Portus, whose sync only adds: also remove the members the sync added
    /// once they left the group (never a member added by hand, never the only owner).
    pub remove_members: bool,
}

/// Portus's `guess_email`: an LDAP attribute (`attr`), or with an empty `attr`
/// `<username>@<the dc= parts of base>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LdapGuessEmail {
    pub enabled: bool,
    pub attr: String,
}

/// Logging to standard error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// `text` (colours only on a terminal) or `json` (one object a line).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Prometheus metrics at `GET /metrics` on the main listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub enabled: bool,
    /// Peers that may read them (IP networks); others get a 404. Default: loopback
    /// and the private ranges, where scrapers live.
    #[serde(with = "ip_networks")]
    pub allowed_networks: Vec<IpNet>,
}

/// The background worker (Portus's `background.*`, plus `embedded` and `workers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Background {
    /// `serve` runs the worker in-process. Turn off when `portcullis worker` runs
    /// separately (several nodes).
    pub embedded: bool,
    /// Jobs one worker process runs at once.
    pub workers: i64,
    /// Seconds a claimed job is leased for (renewed at a third of that while it runs);
    /// a job of a worker that died is taken over once its lease has expired.
    pub lease_seconds: i64,
    /// Processing of registry notifications (Portus: disabling it only logs a warning;
    /// so does Portcullis, and events then wait, stored, until it is on again).
    pub registry: Enabled,
    pub sync: SyncSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSettings {
    pub enabled: bool,
    pub strategy: SyncStrategy,
    /// Seconds between runs of the repeating strategies (Portus: 20).
    pub period_seconds: i64,
}

/// Portus's `background.sync.strategy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncStrategy {
    /// Every period: add and update from the catalog, delete what the registry lacks.
    UpdateDelete,
    /// Every period: add and update only.
    Update,
    /// `update-delete` once after start.
    OnStart,
    /// `update-delete` once after start, only while the inventory is empty.
    Initial,
}

impl SyncStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStrategy::UpdateDelete => "update-delete",
            SyncStrategy::Update => "update",
            SyncStrategy::OnStart => "on-start",
            SyncStrategy::Initial => "initial",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::UpdateDelete,
            Self::Update,
            Self::OnStart,
            Self::Initial,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
    /// Whether this strategy deletes what the registry no longer has.
    pub fn deletes(self) -> bool {
        !matches!(self, SyncStrategy::Update)
    }
    /// Whether it runs every period (otherwise once at start).
    pub fn repeats(self) -> bool {
        matches!(self, SyncStrategy::UpdateDelete | SyncStrategy::Update)
    }
}

/// Outbound webhook deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhooks {
    /// Deliver to loopback, link-local and private addresses too (off: SSRF guard).
    pub allow_private_networks: bool,
    /// Seconds one delivery attempt may take.
    pub timeout_seconds: i64,
    /// Attempts before a delivery is parked as failed.
    pub max_attempts: i64,
    /// Deliveries kept per webhook; older ones are pruned.
    pub history: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// `host:port` to listen on.
    pub listen: String,
    /// The URL clients and the registry use to reach Portcullis (realm, notification
    /// URL). Empty: derived from `listen`.
    pub external_url: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed: IP networks; a bare address
    /// in the configuration is a /32 or /128. Written as a YAML list or, in the
    /// environment, comma-separated.
    #[serde(with = "ip_networks")]
    pub trusted_proxies: Vec<IpNet>,
    pub tls: ServerTls,
    /// A second, plain-HTTP `host:port` that redirects to `external_url` (HTTPS),
    /// except the registry's notifications (`/v2/webhooks/events`), which it serves so
    /// the registry needs no extra CA. Empty: none. Only with `tls`.
    pub http_redirect_listen: String,
}

/// HTTPS on `server.listen` (rustls). Both empty: plain HTTP. The files are read again
/// when they change, without dropping connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTls {
    /// PEM certificate chain (Portus: `PORTUS_PUMA_TLS_CERT`).
    pub cert_path: String,
    /// PEM private key (Portus: `PORTUS_PUMA_TLS_KEY`).
    pub key_path: String,
}

impl ServerTls {
    pub fn enabled(&self) -> bool {
        !self.cert_path.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    /// `sqlite:PATH` or `postgres://…`. Empty: `sqlite:<data_dir>/portcullis.db`.
    pub url: String,
    /// Seconds `serve`, `worker` and `migrate` keep trying to reach the database at
    /// start (a try every 5 s), as Portus's image waited for its database.
    pub wait_seconds: i64,
    /// PostgreSQL connections each process keeps at most (Portus: `PORTUS_DB_POOL`).
    pub pool: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// PEM private key. Empty: `<data_dir>/token.key`, generated when absent.
    pub key_path: String,
    /// PEM certificate (chain) for the key. Empty: `<data_dir>/token.crt`.
    pub cert_path: String,
    /// `ES256` or `RS256`. `None` (written as an empty value): follow the key (ES256
    /// for a generated one).
    #[serde(with = "empty_is_none")]
    pub algorithm: Option<Algorithm>,
    /// `libtrust` (registry 2.x) or `rfc7638` (registry 3.x kid-only setups).
    pub kid: KidFormat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrySettings {
    /// Token lifetime in minutes.
    pub jwt_expiration_time: Value<i64>,
    /// Seconds to wait when opening a connection to a registry.
    pub timeout: Value<i64>,
    /// Seconds to wait for a registry's answer.
    pub read_timeout: Value<i64>,
    pub catalog_page: Value<i64>,
    /// Every `*.crt` (PEM) in this folder is trusted for TLS to registries, besides the
    /// system roots (the image sets `/certificates`, as Portus's did). Empty: none.
    pub certificates_dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notifications {
    /// Shared secret the registry sends as `Authorization: Bearer <secret>`. Empty in
    /// the loaded configuration: the binary generates one into
    /// [`Config::notification_secret_path`] on first start and puts it here.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delete {
    pub enabled: bool,
    pub contributors: bool,
    pub garbage_collector: GarbageCollector,
}

/// Portus's `delete.garbage_collector.*`; `keep_latest` counts per repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GarbageCollector {
    pub enabled: bool,
    pub older_than: i64,
    pub keep_latest: i64,
    pub tag: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserPermission {
    pub change_visibility: Enabled,
    pub create_team: Enabled,
    pub manage_team: Enabled,
    pub create_namespace: Enabled,
    pub manage_namespace: Enabled,
    pub create_webhook: Enabled,
    pub manage_webhook: Enabled,
    pub push_images: PushImages,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushImages {
    /// `allow-teams`, `allow-personal` or `admin-only`.
    pub policy: PushPolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    pub per_page: i64,
    pub before_after: i64,
}

/// Portcullis's own security knobs (Portus hard-coded most of these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityPolicy {
    /// Failed password attempts before an account is locked (Portus: 10).
    pub lockout_attempts: i64,
    /// Minutes an account stays locked (Portus: 10).
    pub lockout_minutes: i64,
    /// Seconds a verified password stays cached for the token endpoint.
    pub credential_cache_seconds: i64,
    /// Password verifications (argon2/bcrypt) running at once; the rest queue.
    pub max_concurrent_password_checks: i64,
    /// Per client IP: password checks that miss the cache, per minute. 0 disables.
    pub password_checks_per_minute: i64,
    /// Application tokens a user may hold (Portus: 5).
    pub max_application_tokens: i64,
    /// Seconds the token endpoint may reuse registry and namespace facts read from the
    /// database (writes on this node clear them at once). 0 disables.
    pub authorization_cache_seconds: i64,
    /// Days a refresh (identity) token handed to `docker login` works at most.
    pub refresh_token_lifetime_days: i64,
    /// Days without use after which a refresh token stops working (at most the lifetime).
    pub refresh_token_idle_days: i64,
    /// Minutes without a request after which a web UI session ends.
    pub session_idle_minutes: i64,
    /// Hours a web UI session lasts at most, however busy.
    pub session_lifetime_hours: i64,
}

impl Default for Config {
    /// Portus's defaults where Portus had the key.
    fn default() -> Self {
        Self {
            server: Server {
                listen: "127.0.0.1:3000".into(),
                external_url: String::new(),
                trusted_proxies: Vec::new(),
                tls: ServerTls {
                    cert_path: String::new(),
                    key_path: String::new(),
                },
                http_redirect_listen: String::new(),
            },
            database: Database {
                url: String::new(),
                wait_seconds: 90,
                pool: 16,
            },
            data_dir: PathBuf::from("data"),
            machine_fqdn: Value {
                value: "portcullis.test.lan".into(),
            },
            token: Token {
                key_path: String::new(),
                cert_path: String::new(),
                algorithm: None,
                kid: KidFormat::Libtrust,
            },
            registry: RegistrySettings {
                jwt_expiration_time: Value { value: 15 },
                timeout: Value { value: 2 },
                read_timeout: Value { value: 120 },
                catalog_page: Value { value: 100 },
                certificates_dir: String::new(),
            },
            notifications: Notifications {
                secret: String::new(),
            },
            delete: Delete {
                enabled: true,
                contributors: false,
                garbage_collector: GarbageCollector {
                    enabled: false,
                    older_than: 30,
                    keep_latest: 5,
                    tag: String::new(),
                },
            },
            user_permission: UserPermission {
                change_visibility: on(),
                create_team: on(),
                manage_team: on(),
                create_namespace: on(),
                manage_namespace: on(),
                create_webhook: on(),
                manage_webhook: on(),
                push_images: PushImages {
                    policy: PushPolicy::AllowTeams,
                },
            },
            first_user_admin: on(),
            signup: on(),
            anonymous_browsing: on(),
            display_name: off(),
            pagination: Pagination {
                per_page: 10,
                before_after: 2,
            },
            security_policy: SecurityPolicy {
                lockout_attempts: 10,
                lockout_minutes: 10,
                credential_cache_seconds: 60,
                max_concurrent_password_checks: 2,
                password_checks_per_minute: 120,
                max_application_tokens: 5,
                authorization_cache_seconds: 2,
                refresh_token_lifetime_days: 30,
                refresh_token_idle_days: 7,
                session_idle_minutes: 120,
                session_lifetime_hours: 24,
            },
            background: Background {
                embedded: true,
                workers: 2,
                lease_seconds: 30,
                registry: on(),
                sync: SyncSettings {
                    enabled: true,
                    strategy: SyncStrategy::Initial,
                    period_seconds: 20,
                },
            },
            webhooks: Webhooks {
                allow_private_networks: false,
                timeout_seconds: 10,
                max_attempts: 8,
                history: 100,
            },
            log: Log {
                format: LogFormat::Text,
            },
            oauth: OAuth {
                local_login: on(),
                openid_connect: OpenIdConnect {
                    enabled: false,
                    issuer: String::new(),
                    identifier: String::new(),
                    secret: String::new(),
                    name: "OpenID Connect".into(),
                    domain: String::new(),
                },
                google_oauth2: GoogleOAuth2 {
                    enabled: false,
                    id: String::new(),
                    secret: String::new(),
                    domain: String::new(),
                    options: GoogleOptions { hd: String::new() },
                    issuer: "https://accounts.google.com".into(),
                },
                github: GitHub {
                    enabled: false,
                    client_id: String::new(),
                    client_secret: String::new(),
                    organization: String::new(),
                    team: String::new(),
                    domain: String::new(),
                    server: "https://github.com".into(),
                },
                gitlab: GitLab {
                    enabled: false,
                    application_id: String::new(),
                    secret: String::new(),
                    group: String::new(),
                    domain: String::new(),
                    server: "https://gitlab.com".into(),
                },
                bitbucket: Bitbucket {
                    enabled: false,
                    key: String::new(),
                    secret: String::new(),
                    domain: String::new(),
                    options: BitbucketOptions {
                        team: String::new(),
                    },
                    server: "https://bitbucket.org".into(),
                },
            },
            email: Email {
                from: "portus@example.com".into(),
                name: "Portus".into(),
                reply_to: String::new(),
                smtp: Smtp {
                    enabled: false,
                    address: "smtp.example.com".into(),
                    port: 587,
                    domain: "example.com".into(),
                    ssl_tls: SmtpImplicitTls::None,
                    enable_starttls_auto: false,
                    openssl_verify_mode: SmtpVerifyMode::Peer,
                    ca_path: String::new(),
                    ca_file: String::new(),
                    user_name: String::new(),
                    password: String::new(),
                    authentication: SmtpAuthentication::Login,
                },
                sendmail: Sendmail {
                    location: "/usr/sbin/sendmail".into(),
                },
            },
            ldap: Ldap {
                enabled: false,
                hostname: "ldap_hostname".into(),
                port: 389,
                timeout: 5,
                encryption: LdapEncryption {
                    method: LdapEncryptionMethod::None,
                    options: LdapEncryptionOptions {
                        ca_file: String::new(),
                        ssl_version: "TLSv1_2".into(),
                    },
                },
                base: String::new(),
                admin_base: String::new(),
                group_base: String::new(),
                filter: String::new(),
                uid: "uid".into(),
                authentication: LdapAuthentication {
                    enabled: false,
                    bind_dn: String::new(),
                    password: String::new(),
                },
                group_sync: LdapGroupSync {
                    enabled: true,
                    default_role: portcullis_domain::model::Role::Viewer,
                    remove_members: false,
                },
                guess_email: LdapGuessEmail {
                    enabled: false,
                    attr: String::new(),
                },
            },
            metrics: Metrics {
                enabled: true,
                allowed_networks: [
                    "127.0.0.0/8",
                    "::1/128",
                    "10.0.0.0/8",
                    "172.16.0.0/12",
                    "192.168.0.0/16",
                    "fc00::/7",
                ]
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect(),
            },
            token_exchange: TokenExchange::default(),
        }
    }
}

impl Config {
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite:{}", self.data_dir.join("portcullis.db").display())
        } else {
            self.database.url.clone()
        }
    }
    pub fn key_path(&self) -> PathBuf {
        self.path_or_default(&self.token.key_path, "token.key")
    }
    pub fn cert_path(&self) -> PathBuf {
        self.path_or_default(&self.token.cert_path, "token.crt")
    }
    /// Where the binary keeps the notification secret it generated because
    /// `notifications.secret` was not configured.
    pub fn notification_secret_path(&self) -> PathBuf {
        self.data_dir.join("notifications.secret")
    }
    fn path_or_default(&self, configured: &str, file: &str) -> PathBuf {
        if configured.is_empty() {
            self.data_dir.join(file)
        } else {
            PathBuf::from(configured)
        }
    }
    /// Base URL of this service as the registry and clients see it.
    pub fn external_url(&self) -> String {
        if self.server.external_url.is_empty() {
            let scheme = if self.server.tls.enabled() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", self.server.listen)
        } else {
            self.server.external_url.trim_end_matches('/').to_owned()
        }
    }
    pub fn policy_options(&self) -> portcullis_domain::policy::PolicyOptions {
        let up = &self.user_permission;
        portcullis_domain::policy::PolicyOptions {
            push_policy: up.push_images.policy,
            delete_enabled: self.delete.enabled,
            delete_contributors: self.delete.contributors,
            create_namespace: up.create_namespace.enabled,
            manage_namespace: up.manage_namespace.enabled,
            change_visibility: up.change_visibility.enabled,
            create_team: up.create_team.enabled,
            manage_team: up.manage_team.enabled,
            create_webhook: up.create_webhook.enabled,
            manage_webhook: up.manage_webhook.enabled,
        }
    }
}

impl Metrics {
    /// Whether `peer` may read `/metrics` (IPv4-mapped IPv6 counts as IPv4).
    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.enabled && self.allowed_networks.iter().any(|net| net.contains(&peer))
    }
}

impl Server {
    /// Whether a connection from `peer` comes from one of `trusted_proxies`. An
    /// IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, as seen by a socket bound to `[::]`)
    /// counts as its IPv4 address.
    pub fn trusts_proxy(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// Parses one `server.trusted_proxies` entry: a CIDR network (`10.0.0.0/8`,
/// `fd00::/8`) or a bare address (`::1`, meaning `::1/128`).
pub fn parse_ip_network(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

/// `Option<T>` written as an empty string when `None`, so the key keeps a string leaf in
/// the default tree (and its environment variable works like any other).
mod empty_is_none {
    use serde::de::IntoDeserializer;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => v.serialize(s),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        T::deserialize(IntoDeserializer::<D::Error>::into_deserializer(text)).map(Some)
    }
}

/// A list of IP networks, each entry parsed by [`parse_ip_network`].
mod ip_networks {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// What a bad entry is told it should have been.
    pub const EXPECTED: &str = "expected an IP address or CIDR network (e.g. 10.0.0.0/8, ::1)";

    pub fn serialize<S: Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
        nets.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        Ok(entries.into_iter().map(|e| e.0).collect())
    }

    struct Entry(IpNet);

    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = String::deserialize(d)?;
            super::parse_ip_network(&text)
                .map(Entry)
                .ok_or_else(|| serde::de::Error::custom(EXPECTED))
        }
    }
}
