//! The LDAP directory (Portus's `ldap.*`): does a username and password belong to a
//! directory user, and who is that user.
//!
//! The bind flow is Portus's: bind for searching (the service account of
//! `ldap.authentication`, else anonymously), search for `(<uid>=<username>)` and
//! `ldap.filter` in `ldap.admin_base` first (found there: an admin), then `ldap.base`,
//! then bind as the entry found with the password. An empty password is refused before
//! any bind: to an LDAP server a simple bind with an empty password is an anonymous
//! bind, which "succeeds".
//!
//! Connections are pooled: opening one (TCP, and TLS for `start_tls` and `simple_tls`)
//! costs more than the binds, and a login is a burst of round trips. Every use starts
//! with the search bind, so a connection left bound as the previous user is never
//! searched with that user's rights. The pool is a handful of idle handles behind a
//! mutex; a pool crate would bring a manager trait and background tasks for what is a
//! `Vec` here.
//!
//! Failures are kept apart: [`Verdict::Refused`] (no such user, wrong password) is an
//! answer; [`DirectoryError`] (the server unreachable, the service bind refused, TLS
//! failing) means the directory could not answer, which the caller reports as an
//! outage (503), never as a wrong password and never towards a lockout.

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use portcullis_config::{Ldap as LdapConfig, LdapEncryptionMethod};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Idle connections kept at most.
const POOL_MAX: usize = 8;

/// LDAP result codes (RFC 4511, appendix A) the flow tells apart.
const INVALID_CREDENTIALS: u32 = 49;
const UNWILLING_TO_PERFORM: u32 = 53;
const NO_SUCH_OBJECT: u32 = 32;

/// What the directory says about a username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified(DirectoryUser),
    /// No such user (under the bases, matching the filter), or the wrong password.
    Refused,
}

/// A directory entry that proved its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// Found under `ldap.admin_base`.
    pub admin: bool,
    /// From `ldap.guess_email`, when enabled and known.
    pub email: Option<String>,
}

/// The directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("LDAP server {server} did not answer: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("LDAP service bind as {dn} refused (result {rc}: {text})")]
    ServiceBind { dn: String, rc: u32, text: String },
    #[error("LDAP {operation} failed (result {rc}: {text})")]
    Operation {
        operation: &'static str,
        rc: u32,
        text: String,
    },
}

/// What [`Directory::run`] does on a connection.
enum Op<'a> {
    Verify(&'a str, &'a str),
    HasUser(&'a str),
    Groups,
    Check,
}

enum Answer {
    Verdict(Verdict),
    HasUser(bool),
    Groups(Vec<DirectoryGroup>),
    Checked,
}

/// A group under `ldap.group_base` and the usernames of its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    /// Its `cn`: the name of the team it fills.
    pub name: String,
    /// Sorted, without repeats.
    pub members: Vec<String>,
}

/// The object classes of groups: `groupOfNames` (`member`), `groupOfUniqueNames`
/// (`uniqueMember`), Active Directory's `group` (`member`) and `posixGroup`
/// (`memberUid`, which holds usernames rather than DNs).
const GROUPS_FILTER: &str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)\
     (objectClass=group)(objectClass=posixGroup))";
/// Entries a page of a group or user listing holds (RFC 2696 paged results), below
/// the usual server size limits (OpenLDAP 500, Active Directory 1000).
const PAGE_SIZE: i32 = 400;

pub struct Directory {
    config: LdapConfig,
    url: String,
    settings: LdapConnSettings,
    timeout: Duration,
    /// `(&(<uid>=%s)<filter>)` with `%s` to be replaced by the escaped username.
    filter: (String, String),
    idle: Mutex<Vec<Ldap>>,
}

impl Directory {
    /// A directory for `config` (checked by the configuration loader), trusting the
    /// system roots and `ldap.encryption.options.ca_file`. An unreadable CA file or a
    /// filter that does not parse is an error naming it.
    pub fn new(config: &LdapConfig) -> Result<Self, String> {
        let method = config.encryption.method;
        let scheme = if method == LdapEncryptionMethod::SimpleTls {
            "ldaps"
        } else {
            "ldap"
        };
        let host = if config.hostname.contains(':') {
            format!("[{}]", config.hostname) // an IPv6 address
        } else {
            config.hostname.clone()
        };
        let url = format!("{scheme}://{host}:{}", config.port);
        let timeout = Duration::from_secs(config.timeout.max(1).unsigned_abs());
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(method == LdapEncryptionMethod::StartTls);
        if method != LdapEncryptionMethod::None {
            settings = settings.set_config(Arc::new(tls_config(config)?));
        }
        let filter = (
            format!("(&({}=", config.uid),
            format!("){})", config.filter.trim()),
        );
        let probe = format!("{}probe{}", filter.0, filter.1);
        ldap3::parse_filter(&probe)
            .map_err(|()| format!("ldap.filter {:?}: not an LDAP filter", config.filter))?;
        Ok(Self {
            config: config.clone(),
            url,
            settings,
            timeout,
            filter,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The directory `config` asks for: `None` unless `ldap.enabled` (see [`Self::new`]).
    pub fn for_config(config: &LdapConfig) -> Result<Option<Arc<Self>>, String> {
        if !config.enabled {
            return Ok(None);
        }
        Ok(Some(Arc::new(Self::new(config)?)))
    }

    /// The server, as logs and errors name it.
    pub fn server(&self) -> &str {
        &self.url
    }

    /// Checks `password` for `username` with Portus's bind flow.
    pub async fn verify(&self, username: &str, password: &str) -> Result<Verdict, DirectoryError> {
        if username.is_empty() || password.is_empty() {
            return Ok(Verdict::Refused);
        }
        match self.run(Op::Verify(username, password)).await? {
            Answer::Verdict(v) => Ok(v),
            _ => unreachable!("verify answers with a verdict"),
        }
    }

    /// Whether the directory has a user `username` (under the bases, matching the
    /// filter): an admin may not create a local user of that name.
    pub async fn has_user(&self, username: &str) -> Result<bool, DirectoryError> {
        match self.run(Op::HasUser(username)).await? {
            Answer::HasUser(found) => Ok(found),
            _ => unreachable!("has_user answers with a bool"),
        }
    }

    /// Every group under `ldap.group_base` (else `ldap.base`) with its members'
    /// usernames. A member DN whose first RDN is the `ldap.uid` attribute gives the
    /// username directly (Portus's rule); any other (Active Directory's
    /// `CN=Full Name,…`) is looked up, all of them in one listing of the users.
    pub async fn groups(&self) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        match self.run(Op::Groups).await? {
            Answer::Groups(groups) => Ok(groups),
            _ => unreachable!("groups answers with groups"),
        }
    }

    /// A connection and the search bind: what the health check reports.
    pub async fn check(&self) -> Result<(), DirectoryError> {
        self.run(Op::Check).await.map(|_| ())
    }

    /// Runs `op` on a pooled connection, or a new one; when a pooled connection turns
    /// out closed by the server meanwhile (a restart, an idle timeout), once more on a
    /// new one. A connection that answered goes back to the pool.
    async fn run(&self, op: Op<'_>) -> Result<Answer, DirectoryError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (mut ldap, was_pooled) = match pooled {
            Some(ldap) => (ldap, true),
            None => (self.connect().await?, false),
        };
        let mut answer = self.run_on(&mut ldap, &op).await;
        if was_pooled && matches!(answer, Err(DirectoryError::Unreachable { .. })) {
            ldap = self.connect().await?;
            answer = self.run_on(&mut ldap, &op).await;
        }
        if answer.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < POOL_MAX {
                idle.push(ldap);
            }
        }
        answer
    }

    async fn run_on(&self, ldap: &mut Ldap, op: &Op<'_>) -> Result<Answer, DirectoryError> {
        self.bind_for_search(ldap).await?;
        Ok(match *op {
            Op::Verify(username, password) => {
                Answer::Verdict(self.verify_on(ldap, username, password).await?)
            }
            Op::HasUser(username) => Answer::HasUser(self.find(ldap, username).await?.is_some()),
            Op::Groups => Answer::Groups(self.groups_on(ldap).await?),
            Op::Check => Answer::Checked,
        })
    }

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let opened = tokio::time::timeout(
            self.timeout,
            LdapConnAsync::with_settings(self.settings.clone(), &self.url),
        )
        .await;
        let (conn, ldap) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(self.unreachable(e.to_string())),
            Err(_) => {
                return Err(self.unreachable(format!("no connection within {:?}", self.timeout)));
            }
        };
        // The connection's driver: it ends when the last handle is dropped.
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        Ok(ldap)
    }

    fn unreachable(&self, reason: String) -> DirectoryError {
        DirectoryError::Unreachable {
            server: self.url.clone(),
            reason,
        }
    }

    /// After the search bind: the entry, then a bind as it.
    async fn verify_on(
        &self,
        ldap: &mut Ldap,
        username: &str,
        password: &str,
    ) -> Result<Verdict, DirectoryError> {
        let Some(user) = self.find(ldap, username).await? else {
            return Ok(Verdict::Refused);
        };
        let bound = ldap
            .with_timeout(self.timeout)
            .simple_bind(&user.dn, password)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        match bound.rc {
            0 => Ok(Verdict::Verified(user)),
            INVALID_CREDENTIALS | UNWILLING_TO_PERFORM => Ok(Verdict::Refused),
            rc => Err(DirectoryError::Operation {
                operation: "bind",
                rc,
                text: bound.text,
            }),
        }
    }

    /// The service account's bind, else an anonymous one (which also drops the
    /// identity of whoever the connection was bound as before).
    async fn bind_for_search(&self, ldap: &mut Ldap) -> Result<(), DirectoryError> {
        let auth = &self.config.authentication;
        let (dn, password) = if auth.enabled {
            (auth.bind_dn.as_str(), auth.password.as_str())
        } else {
            ("", "")
        };
        let bound = ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?;
        if bound.rc == 0 {
            Ok(())
        } else {
            Err(DirectoryError::ServiceBind {
                dn: if dn.is_empty() {
                    "(anonymous)".into()
                } else {
                    dn.into()
                },
                rc: bound.rc,
                text: bound.text,
            })
        }
    }

    /// The one entry for `username`: `admin_base` first, then `base`. Several entries
    /// in one base are ambiguous and sign nobody in.
    async fn find(
        &self,
        ldap: &mut Ldap,
        username: &str,
    ) -> Result<Option<DirectoryUser>, DirectoryError> {
        let filter = format!(
            "{}{}{}",
            self.filter.0,
            ldap_escape(username),
            self.filter.1
        );
        let email_attr = self.email_attribute();
        // "1.1": no attributes, only the DN.
        let attrs: Vec<&str> = email_attr.into_iter().chain(["1.1"]).take(1).collect();
        let bases = [
            (self.config.admin_base.as_str(), true),
            (self.config.base.as_str(), false),
        ];
        for (base, admin) in bases.into_iter().filter(|(b, _)| !b.is_empty()) {
            let searched = ldap
                .with_timeout(self.timeout)
                .search(base, Scope::Subtree, &filter, attrs.clone())
                .await
                .map_err(|e| self.unreachable(e.to_string()))?;
            let (entries, result) = (searched.0, searched.1);
            match result.rc {
                0 => {}
                // A base that does not exist holds nobody.
                NO_SUCH_OBJECT => continue,
                rc => {
                    return Err(DirectoryError::Operation {
                        operation: "search",
                        rc,
                        text: result.text,
                    });
                }
            }
            match entries.len() {
                0 => continue,
                1 => {
                    let entry = SearchEntry::construct(entries.into_iter().next().expect("one"));
                    let email = self.email_of(username, &entry);
                    return Ok(Some(DirectoryUser {
                        dn: entry.dn,
                        admin,
                        email,
                    }));
                }
                n => {
                    tracing::warn!(
                        base,
                        username,
                        entries = n,
                        "LDAP: several entries match; nobody signed in"
                    );
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    async fn groups_on(&self, ldap: &mut Ldap) -> Result<Vec<DirectoryGroup>, DirectoryError> {
        let base = if self.config.group_base.is_empty() {
            &self.config.base
        } else {
            &self.config.group_base
        };
        let entries = self
            .search_all(
                ldap,
                base,
                GROUPS_FILTER,
                vec!["cn", "member", "uniqueMember", "memberUid"],
            )
            .await?;
        let uid = self.config.uid.as_str();
        // Per group: the usernames read off member DNs, and the DNs left to look up.
        let mut groups = Vec::new();
        for entry in entries {
            let Some(name) = first_value(&entry, "cn") else {
                continue;
            };
            let mut members: Vec<String> = values(&entry, "memberUid").cloned().collect();
            let mut unresolved = Vec::new();
            for dn in values(&entry, "uniqueMember").chain(values(&entry, "member")) {
                let dn = strip_unique_id(dn);
                match username_in_dn(dn, uid) {
                    Some(username) => members.push(username),
                    None => unresolved.push(normalize_dn(dn)),
                }
            }
            groups.push((name, members, unresolved));
        }
        let names = if groups
            .iter()
            .any(|(_, _, unresolved)| !unresolved.is_empty())
        {
            self.usernames_by_dn(ldap).await?
        } else {
            Default::default()
        };
        Ok(groups
            .into_iter()
            .map(|(name, mut members, unresolved)| {
                members.extend(unresolved.iter().filter_map(|dn| names.get(dn).cloned()));
                members.sort();
                members.dedup();
                DirectoryGroup { name, members }
            })
            .collect())
    }

    /// Every user's DN (normalised) and username under the bases.
    async fn usernames_by_dn(
        &self,
        ldap: &mut Ldap,
    ) -> Result<std::collections::HashMap<String, String>, DirectoryError> {
        let uid = self.config.uid.as_str();
        let filter = format!("({uid}=*)");
        let mut names = std::collections::HashMap::new();
        let bases = [&self.config.admin_base, &self.config.base];
        for base in bases.into_iter().filter(|b| !b.is_empty()) {
            for entry in self.search_all(ldap, base, &filter, vec![uid]).await? {
                if let Some(username) = first_value(&entry, uid) {
                    names.insert(normalize_dn(&entry.dn), username);
                }
            }
        }
        Ok(names)
    }

    /// A subtree search read page by page; a base that does not exist holds nothing.
    async fn search_all(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attrs: Vec<&str>,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE_SIZE)),
        ];
        let failed = |e: ldap3::LdapError| self.unreachable(e.to_string());
        let mut search = ldap
            .with_timeout(self.timeout)
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .map_err(failed)?;
        let mut entries = Vec::new();
        while let Some(entry) = search.next().await.map_err(failed)? {
            entries.push(SearchEntry::construct(entry));
        }
        let result = search.finish().await;
        match result.rc {
            0 => Ok(entries),
            NO_SUCH_OBJECT => Ok(Vec::new()),
            rc => Err(DirectoryError::Operation {
                operation: "search",
                rc,
                text: result.text,
            }),
        }
    }

    fn email_attribute(&self) -> Option<&str> {
        let guess = &self.config.guess_email;
        (guess.enabled && !guess.attr.is_empty()).then_some(guess.attr.as_str())
    }

    fn email_of(&self, username: &str, entry: &SearchEntry) -> Option<String> {
        let guess = &self.config.guess_email;
        if !guess.enabled {
            return None;
        }
        match self.email_attribute() {
            Some(attr) => entry
                .attrs
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(attr))
                .and_then(|(_, values)| values.first().cloned()),
            None => email_from_base(username, &self.config.base),
        }
    }
}

/// The values of `attr` (attribute names are case-insensitive).
fn values<'e>(entry: &'e SearchEntry, attr: &str) -> impl Iterator<Item = &'e String> {
    entry
        .attrs
        .iter()
        .filter(move |(name, _)| name.eq_ignore_ascii_case(attr))
        .flat_map(|(_, values)| values.iter())
}

fn first_value(entry: &SearchEntry, attr: &str) -> Option<String> {
    values(entry, attr).next().cloned()
}

/// `uniqueMember` is a DN with an optional `#'0101'B` unique identifier (RFC 4517,
/// Name and Optional UID).
fn strip_unique_id(value: &str) -> &str {
    match value.rfind("#'") {
        Some(at) if value.ends_with("'B") => &value[..at],
        _ => value,
    }
}

/// The value of the first RDN when its attribute is `uid_attr`: `uid=alice,ou=people`
/// names `alice` (Portus's rule). Backslash escapes (RFC 4514) are undone.
fn username_in_dn(dn: &str, uid_attr: &str) -> Option<String> {
    let mut rdn = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        match c {
            _ if escaped => {
                rdn.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            ',' | '+' => break,
            _ => rdn.push(c),
        }
    }
    let (attr, value) = rdn.split_once('=')?;
    let value = value.trim();
    (attr.trim().eq_ignore_ascii_case(uid_attr) && !value.is_empty()).then(|| value.to_owned())
}

/// A DN compared loosely: case and the spaces around separators do not count
/// (Active Directory's member values and entry DNs differ in both).
fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// Portus's guess without an attribute: `<username>@<the dc= parts of base, joined
/// by dots>`; nothing when the base has no `dc=` part.
pub fn email_from_base(username: &str, base: &str) -> Option<String> {
    let domain: Vec<&str> = base
        .split(',')
        .filter_map(|rdn| {
            let (attr, value) = rdn.trim().split_once('=')?;
            attr.trim().eq_ignore_ascii_case("dc").then(|| value.trim())
        })
        .filter(|v| !v.is_empty())
        .collect();
    (!domain.is_empty()).then(|| format!("{username}@{}", domain.join(".")))
}

/// TLS for `start_tls` and `simple_tls`: the system roots and the CA file, at least
/// the configured version.
fn tls_config(config: &LdapConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert); // a system root rustls cannot use is skipped, not fatal
    }
    let ca_file = &config.encryption.options.ca_file;
    if !ca_file.is_empty() {
        use rustls::pki_types::pem::PemObject;
        let context =
            |e: &dyn std::fmt::Display| format!("ldap.encryption.options.ca_file {ca_file}: {e}");
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| context(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| context(&e))?;
        if certs.is_empty() {
            return Err(context(&"no PEM certificate in it"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| context(&e))?;
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] =
        if config.encryption.options.ssl_version == "TLSv1_3" {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .map_err(|e| format!("ldap.encryption.options.ssl_version: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_read_from_member_dns() {
        let cases = [
            (
                "uid=alice,ou=people,dc=example,dc=org",
                "uid",
                Some("alice"),
            ),
            ("UID = Bob ,ou=people", "uid", Some("Bob")),
            ("uid=o\\,brien,ou=people", "uid", Some("o,brien")),
            ("uid=carol+cn=Carol,ou=people", "uid", Some("carol")),
            ("cn=Erin Smith,ou=people", "uid", None),
            (
                "sAMAccountName=erin,ou=people",
                "samaccountname",
                Some("erin"),
            ),
            ("uid=,ou=people", "uid", None),
            ("not a dn", "uid", None),
        ];
        for (dn, uid, want) in cases {
            assert_eq!(username_in_dn(dn, uid).as_deref(), want, "{dn}");
        }
    }

    #[test]
    fn member_values_and_dns_compared_loosely() {
        assert_eq!(
            strip_unique_id("uid=alice,ou=people#'0101'B"),
            "uid=alice,ou=people"
        );
        assert_eq!(strip_unique_id("uid=a#b,ou=people"), "uid=a#b,ou=people");
        assert_eq!(
            normalize_dn("CN=Erin Smith, OU=People ,DC=Example"),
            normalize_dn("cn=erin smith,ou=people,dc=example")
        );
        assert_ne!(normalize_dn("cn=erin,ou=a"), normalize_dn("cn=erin,ou=b"));
    }

    #[test]
    fn the_email_guessed_from_the_base() {
        let cases = [
            (
                "alice",
                "ou=people,dc=example,dc=org",
                Some("alice@example.org"),
            ),
            (
                "bob",
                "DC=corp, DC=example ,dc=com",
                Some("bob@corp.example.com"),
            ),
            ("carol", "ou=people,o=acme", None),
            ("dave", "", None),
        ];
        for (user, base, want) in cases {
            assert_eq!(email_from_base(user, base).as_deref(), want, "{base}");
        }
    }
}
