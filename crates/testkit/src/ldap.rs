//! A real OpenLDAP `slapd` (Debian's `slapd` package, 2.5) for the LDAP integration
//! tests, with the directory Portus's `ldap.*` settings are tested against.
//!
//! Each [`Slapd`] lives in its own temporary directory:
//! - `ca.pem`, `server.pem`, `server.key`: a test CA and a server certificate for
//!   `127.0.0.1` and `localhost` ([`crate::tls::write_server_files`]);
//! - `slapd.d/`: the `cn=config` tree, built offline with `slapadd -n0` from
//!   `config.ldif` (schemas core, cosine, inetorgperson, nis, plus a tiny test schema
//!   with the Active Directory attribute `sAMAccountName` on the auxiliary class
//!   `adUser`), an MDB database for [`BASE_DN`] with root DN [`ADMIN_DN`];
//! - `data/`: that database, loaded offline with `slapadd` from `seed.ldif` (the
//!   organizational units below plus the [`Seed`]);
//! - `slapd.log`: slapd's `-d stats` output (every connection and operation), printed
//!   when a test panics while the [`Slapd`] is alive.
//!
//! slapd listens on `ldap://127.0.0.1:PORT/` (plain, StartTLS offered) and
//! `ldaps://127.0.0.1:PORT/`. The units always present are [`PEOPLE_BASE`],
//! [`GROUPS_BASE`], [`AD_BASE`], [`SERVICES_BASE`] and [`ADMINS_BASE`]. Passwords
//! are stored as given (plain `userPassword`, which slapd compares as is), except
//! those set with [`Slapd::set_password`], which slapd hashes (`{SSHA}`).
//!
//! Runtime changes go through the `ldap-utils` CLI tools bound as the admin.

use crate::registry::free_ports;
use crate::server::{StartError, find_program, print_log_if_panicking, read_log, run};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The suffix of the one database.
pub const BASE_DN: &str = "dc=example,dc=org";
/// The database's root DN (bypasses all access rules).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// Users with a `uid` (`ldap.base` in the ordinary case).
pub const PEOPLE_BASE: &str = "ou=people,dc=example,dc=org";
pub const GROUPS_BASE: &str = "ou=groups,dc=example,dc=org";
/// Active Directory style users: named by `cn`, logging in with `sAMAccountName`.
pub const AD_BASE: &str = "ou=ad,dc=example,dc=org";
pub const SERVICES_BASE: &str = "ou=services,dc=example,dc=org";
/// For `ldap.admin_base` tests.
pub const ADMINS_BASE: &str = "ou=admins,dc=example,dc=org";

/// The service account of [`Seed::default_directory`], for `authentication.bind_dn`.
pub const SERVICE_DN: &str = "cn=portcullis,ou=services,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "portcullis-secret";
/// Passwords of the users of [`Seed::default_directory`].
pub const ALICE_PASSWORD: &str = "alice-secret";
pub const BOB_PASSWORD: &str = "bob-secret";
pub const CAROL_PASSWORD: &str = "carol-secret";
pub const DAVE_PASSWORD: &str = "dave-secret";
/// The AD-style user `cn=Erin Example,ou=ad,…` with `sAMAccountName: erin`.
pub const ERIN_PASSWORD: &str = "erin-secret";
pub const ERIN_DN: &str = "cn=Erin Example,ou=ad,dc=example,dc=org";
/// The one user under [`ADMINS_BASE`]: `uid=frank,ou=admins,…`.
pub const FRANK_PASSWORD: &str = "frank-secret";

/// How long slapd may take from spawn to answering a search.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Time limit of each CLI tool run (slapadd, ldapmodify, …).
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts when a chosen port was taken between choosing and binding it.
const PORT_ATTEMPTS: usize = 5;

/// `uid=<uid>,ou=people,dc=example,dc=org`.
pub fn person_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE_BASE}")
}

/// `uid=<uid>,ou=admins,dc=example,dc=org`.
pub fn admin_user_dn(uid: &str) -> String {
    format!("uid={uid},{ADMINS_BASE}")
}

/// `cn=<cn>,ou=ad,dc=example,dc=org`.
pub fn ad_dn(cn: &str) -> String {
    format!("cn={cn},{AD_BASE}")
}

/// `cn=<name>,ou=groups,dc=example,dc=org`.
pub fn group_dn(name: &str) -> String {
    format!("cn={name},{GROUPS_BASE}")
}

/// An account: always an `inetOrgPerson` (so `cn` and `sn` are required), plus the
/// auxiliary `adUser` when it has a `sAMAccountName`. Names are used in DNs as they
/// are, so they must not need DN escaping (no `,`, `+`, `=`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub dn: String,
    pub cn: String,
    pub sn: String,
    pub uid: Option<String>,
    pub sam_account_name: Option<String>,
    pub mail: Option<String>,
    pub password: String,
}

impl User {
    /// `uid=<uid>,ou=people,…`, `cn` the capitalized uid, no mail.
    pub fn person(uid: &str, password: &str) -> Self {
        Self::with_uid(person_dn(uid), uid, password)
    }

    /// `uid=<uid>,ou=admins,…`, for `ldap.admin_base`.
    pub fn admin(uid: &str, password: &str) -> Self {
        Self::with_uid(admin_user_dn(uid), uid, password)
    }

    /// `cn=<cn>,ou=ad,…` with `sAMAccountName: <sam>` and no `uid`, like an Active
    /// Directory account; `sn` is the last word of `cn`.
    pub fn ad(cn: &str, sam_account_name: &str, password: &str) -> Self {
        Self {
            dn: ad_dn(cn),
            cn: cn.to_owned(),
            sn: cn.split_whitespace().last().unwrap_or(cn).to_owned(),
            uid: None,
            sam_account_name: Some(sam_account_name.to_owned()),
            mail: None,
            password: password.to_owned(),
        }
    }

    /// `cn=<cn>,ou=services,…`: an account for service binds.
    pub fn service(cn: &str, password: &str) -> Self {
        Self {
            dn: format!("cn={cn},{SERVICES_BASE}"),
            cn: cn.to_owned(),
            sn: cn.to_owned(),
            uid: None,
            sam_account_name: None,
            mail: None,
            password: password.to_owned(),
        }
    }

    pub fn with_mail(mut self, mail: &str) -> Self {
        self.mail = Some(mail.to_owned());
        self
    }

    fn with_uid(dn: String, uid: &str, password: &str) -> Self {
        let mut chars = uid.chars();
        let cn = chars
            .next()
            .map(|first| first.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        Self {
            dn,
            cn,
            sn: "Example".to_owned(),
            uid: Some(uid.to_owned()),
            sam_account_name: None,
            mail: None,
            password: password.to_owned(),
        }
    }

    fn ldif(&self) -> String {
        let mut out = String::new();
        ldif_line(&mut out, "dn", &self.dn);
        ldif_line(&mut out, "objectClass", "inetOrgPerson");
        if self.sam_account_name.is_some() {
            ldif_line(&mut out, "objectClass", "adUser");
        }
        ldif_line(&mut out, "cn", &self.cn);
        ldif_line(&mut out, "sn", &self.sn);
        let optional = [
            ("uid", &self.uid),
            ("sAMAccountName", &self.sam_account_name),
            ("mail", &self.mail),
        ];
        for (attr, value) in optional {
            if let Some(value) = value {
                ldif_line(&mut out, attr, value);
            }
        }
        ldif_line(&mut out, "userPassword", &self.password);
        out
    }
}

/// The two static group classes Portus's group sync understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// `objectClass: groupOfNames`, members in `member`.
    GroupOfNames,
    /// `objectClass: groupOfUniqueNames`, members in `uniqueMember`.
    GroupOfUniqueNames,
}

impl GroupKind {
    pub fn object_class(self) -> &'static str {
        match self {
            GroupKind::GroupOfNames => "groupOfNames",
            GroupKind::GroupOfUniqueNames => "groupOfUniqueNames",
        }
    }

    pub fn member_attribute(self) -> &'static str {
        match self {
            GroupKind::GroupOfNames => "member",
            GroupKind::GroupOfUniqueNames => "uniqueMember",
        }
    }
}

/// `cn=<name>,ou=groups,…`. Both classes require at least one member (the schema
/// says MUST), so a group can be neither created empty nor emptied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
    /// Member DNs.
    pub members: Vec<String>,
}

impl Group {
    pub fn of_names(name: &str, members: &[&str]) -> Self {
        Self::new(name, GroupKind::GroupOfNames, members)
    }

    pub fn of_unique_names(name: &str, members: &[&str]) -> Self {
        Self::new(name, GroupKind::GroupOfUniqueNames, members)
    }

    fn new(name: &str, kind: GroupKind, members: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    pub fn dn(&self) -> String {
        group_dn(&self.name)
    }

    fn ldif(&self) -> String {
        let mut out = String::new();
        ldif_line(&mut out, "dn", &self.dn());
        ldif_line(&mut out, "objectClass", self.kind.object_class());
        ldif_line(&mut out, "cn", &self.name);
        for member in &self.members {
            ldif_line(&mut out, self.kind.member_attribute(), member);
        }
        out
    }
}

/// What the directory holds at start, besides the base entry and the organizational
/// units. `Seed::default()` is empty.
#[derive(Clone, Debug, Default)]
pub struct Seed {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

impl Seed {
    /// - `ou=people`: alice, bob, carol (each with `mail: <uid>@example.org`) and dave
    ///   (no mail);
    /// - `ou=ad`: `cn=Erin Example` with `sAMAccountName: erin` and a mail;
    /// - `ou=services`: [`SERVICE_DN`];
    /// - `ou=admins`: frank (with mail);
    /// - `ou=groups`: `developers` (groupOfNames: alice, bob) and `qa`
    ///   (groupOfUniqueNames: carol).
    ///
    /// Passwords: the `*_PASSWORD` constants.
    pub fn default_directory() -> Self {
        let (alice, bob, carol) = (person_dn("alice"), person_dn("bob"), person_dn("carol"));
        Self {
            users: vec![
                User::person("alice", ALICE_PASSWORD).with_mail("alice@example.org"),
                User::person("bob", BOB_PASSWORD).with_mail("bob@example.org"),
                User::person("carol", CAROL_PASSWORD).with_mail("carol@example.org"),
                User::person("dave", DAVE_PASSWORD),
                User::ad("Erin Example", "erin", ERIN_PASSWORD).with_mail("erin@example.org"),
                User::service("portcullis", SERVICE_PASSWORD),
                User::admin("frank", FRANK_PASSWORD).with_mail("frank@example.org"),
            ],
            groups: vec![
                Group::of_names("developers", &[&alice, &bob]),
                Group::of_unique_names("qa", &[&carol]),
            ],
        }
    }

    fn ldif(&self) -> String {
        let mut out = format!(
            "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n\
             o: Example\n\n"
        );
        for ou in [
            PEOPLE_BASE,
            GROUPS_BASE,
            AD_BASE,
            SERVICES_BASE,
            ADMINS_BASE,
        ] {
            let name = ou
                .strip_prefix("ou=")
                .and_then(|rest| rest.split(',').next())
                .unwrap_or(ou);
            out.push_str(&format!(
                "dn: {ou}\nobjectClass: organizationalUnit\nou: {name}\n\n"
            ));
        }
        for user in &self.users {
            out.push_str(&user.ldif());
            out.push('\n');
        }
        for group in &self.groups {
            out.push_str(&group.ldif());
            out.push('\n');
        }
        out
    }
}

/// A running (or, after [`Slapd::stop`], stopped) slapd and its directory.
pub struct Slapd {
    /// `None` while stopped.
    child: Option<Child>,
    tools: Tools,
    dir: tempfile::TempDir,
    log_path: PathBuf,
    ca_cert_pem: String,
    plain_port: u16,
    ldaps_port: u16,
    /// Names the LDIF files of runtime changes.
    changes: AtomicU64,
}

impl Slapd {
    /// Builds the configuration and loads `seed` (both offline, with `slapadd`), then
    /// starts slapd on two free ports and waits until it answers a search.
    pub async fn start(seed: &Seed) -> Result<Self> {
        let tools = Tools::find()?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-slapd-")
            .tempdir()
            .context("creating a temporary directory")?;
        // The file names are those of `olcTLS*` in `config_ldif_text`.
        let ca_cert_pem = crate::tls::write_server_files(
            dir.path(),
            "Portcullis test LDAP CA",
            &["localhost", "127.0.0.1"],
        )?
        .ca_pem;
        let config_dir = dir.path().join("slapd.d");
        std::fs::create_dir_all(&config_dir)?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        let config_ldif = dir.path().join("config.ldif");
        std::fs::write(&config_ldif, config_ldif_text(dir.path())?)?;
        run(
            "slapadd -n0 (cn=config)",
            Command::new(&tools.slapadd)
                .arg("-n0")
                .arg("-F")
                .arg(&config_dir)
                .arg("-l")
                .arg(&config_ldif),
            TOOL_TIMEOUT,
        )
        .await?;
        let seed_ldif = dir.path().join("seed.ldif");
        std::fs::write(&seed_ldif, seed.ldif())?;
        run(
            "slapadd (seed)",
            Command::new(&tools.slapadd)
                .arg("-F")
                .arg(&config_dir)
                .args(["-b", BASE_DN, "-l"])
                .arg(&seed_ldif),
            TOOL_TIMEOUT,
        )
        .await?;

        let log_path = dir.path().join("slapd.log");
        let mut slapd = Self {
            child: None,
            tools,
            dir,
            log_path,
            ca_cert_pem,
            plain_port: 0,
            ldaps_port: 0,
            changes: AtomicU64::new(0),
        };
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            // slapd cannot inherit sockets and has no port 0: two ports free a moment
            // ago, retried when another process binds one before slapd does.
            [slapd.plain_port, slapd.ldaps_port] = free_ports()?;
            match slapd.spawn().await {
                Ok(()) => return Ok(slapd),
                Err(StartError::PortTaken(e)) => last_error = Some(e),
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("slapd did not start")))
    }

    /// Starts slapd on the chosen ports and waits until it answers.
    async fn spawn(&mut self) -> Result<(), StartError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let log_err = log
            .try_clone()
            .context("duplicating the slapd log handle")?;
        // The log accumulates over attempts and restarts: judge this run by its part.
        let log_start = log.metadata().map_or(0, |m| m.len() as usize);
        let urls = format!("{} {}", self.plain_url(), self.ldaps_url());
        // `-d` keeps slapd in the foreground, so it stays our child and dies on drop;
        // `stats` logs connections, binds and results. slapd sizes its connection
        // table by the open-files limit, which containers often set to 2^30 (then
        // slapd needs gigabytes or fails): lower it first.
        let mut child = Command::new("sh")
            .args(["-c", r#"ulimit -n 1024 2>/dev/null; exec "$@""#, "sh"])
            .arg(&self.tools.slapd)
            .args(["-d", "stats", "-h", &urls, "-F"])
            .arg(self.dir.path().join("slapd.d"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", self.tools.slapd.display()))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("checking the slapd process")? {
                let log = self.log();
                let log = log.get(log_start..).unwrap_or(&log);
                let e =
                    anyhow!("slapd exited during start-up ({status})\n--- slapd log ---\n{log}");
                return Err(if log.contains("Address already in use") {
                    StartError::PortTaken(e)
                } else {
                    StartError::Other(e)
                });
            }
            // slapd listens only once its database is open; a search of the root DSE
            // then proves the LDAP side works, not just the socket.
            if tokio::net::TcpStream::connect(("127.0.0.1", self.plain_port))
                .await
                .is_ok()
                && tokio::net::TcpStream::connect(("127.0.0.1", self.ldaps_port))
                    .await
                    .is_ok()
                && self.root_dse_answers().await
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(StartError::Other(anyhow!(
                    "slapd did not answer on {urls} within {READY_TIMEOUT:?}\n--- slapd log ---\n{}",
                    self.log()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
        Ok(())
    }

    async fn root_dse_answers(&self) -> bool {
        let mut cmd = self.tool(&self.tools.ldapsearch);
        cmd.args(["-x", "-LLL", "-o", "nettimeout=2", "-H"])
            .arg(self.plain_url())
            .args(["-b", "", "-s", "base", "namingContexts"]);
        run("ldapsearch (root DSE)", &mut cmd, TOOL_TIMEOUT)
            .await
            .is_ok()
    }

    /// Kills slapd (like a crash: MDB needs no clean shutdown) and waits for it to
    /// exit. Clients then get "connection refused". A no-op when already stopped.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops slapd if it runs and starts it again on the same ports with the same
    /// configuration and data. Fails if another process took a port meanwhile.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        self.spawn()
            .await
            .map_err(|e| e.into_inner().context("restarting slapd on its ports"))
    }

    /// Adds `user` (as the admin, with `ldapadd`).
    pub async fn add_user(&self, user: &User) -> Result<()> {
        self.modify("ldapadd", &user.ldif(), true).await
    }

    /// Adds `group` (it needs at least one member).
    pub async fn add_group(&self, group: &Group) -> Result<()> {
        self.modify("ldapadd", &group.ldif(), true).await
    }

    /// Adds `member_dn` to the group named `group` (`cn=<group>,ou=groups,…`), as a
    /// `member` or `uniqueMember` depending on the group's class.
    pub async fn add_member(&self, group: &str, member_dn: &str) -> Result<()> {
        self.change_member("add", group, member_dn).await
    }

    /// Removes `member_dn` from the group named `group`; removing the last member
    /// fails (the schema requires one).
    pub async fn remove_member(&self, group: &str, member_dn: &str) -> Result<()> {
        self.change_member("delete", group, member_dn).await
    }

    async fn change_member(&self, change: &str, group: &str, member_dn: &str) -> Result<()> {
        let dn = group_dn(group);
        let attribute = self.group_kind(&dn).await?.member_attribute();
        let mut ldif = String::new();
        ldif_line(&mut ldif, "dn", &dn);
        ldif.push_str(&format!("changetype: modify\n{change}: {attribute}\n"));
        ldif_line(&mut ldif, attribute, member_dn);
        ldif.push_str("-\n");
        self.modify(&format!("ldapmodify ({change} {attribute})"), &ldif, false)
            .await
    }

    /// Which class the group at `dn` has, asked of the server (so groups added by a
    /// test behind the harness's back work too).
    async fn group_kind(&self, dn: &str) -> Result<GroupKind> {
        let found = self.search(dn, "(objectClass=*)", &["objectClass"]).await?;
        let classes: Vec<String> = found
            .lines()
            .filter_map(|l| l.strip_prefix("objectClass: "))
            .map(str::to_ascii_lowercase)
            .collect();
        if classes.iter().any(|c| c == "groupofuniquenames") {
            Ok(GroupKind::GroupOfUniqueNames)
        } else if classes.iter().any(|c| c == "groupofnames") {
            Ok(GroupKind::GroupOfNames)
        } else {
            bail!("{dn} is not a groupOfNames nor a groupOfUniqueNames: {found}")
        }
    }

    /// Sets the password of `dn` with the password modify operation (`ldappasswd`,
    /// as the admin); slapd stores it hashed (`{SSHA}`).
    pub async fn set_password(&self, dn: &str, password: &str) -> Result<()> {
        let mut cmd = self.admin_tool(&self.tools.ldappasswd);
        cmd.arg("-s").arg(password).arg(dn);
        run("ldappasswd", &mut cmd, TOOL_TIMEOUT).await?;
        Ok(())
    }

    /// `ldapsearch -LLL` as the admin below `base` (subtree): the entries as LDIF
    /// (long lines unwrapped), empty when none match.
    pub async fn search(&self, base: &str, filter: &str, attributes: &[&str]) -> Result<String> {
        let mut cmd = self.admin_tool(&self.tools.ldapsearch);
        cmd.args(["-LLL", "-o", "ldif_wrap=no", "-b", base, filter])
            .args(attributes);
        let output = run("ldapsearch", &mut cmd, TOOL_TIMEOUT).await?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `ldif` through `ldapmodify` (`-a`: records without a `changetype` add).
    async fn modify(&self, what: &str, ldif: &str, add: bool) -> Result<()> {
        let n = self.changes.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("change-{n}.ldif"));
        std::fs::write(&path, ldif).with_context(|| format!("writing {}", path.display()))?;
        let mut cmd = self.admin_tool(&self.tools.ldapmodify);
        if add {
            cmd.arg("-a");
        }
        cmd.arg("-f").arg(&path);
        run(what, &mut cmd, TOOL_TIMEOUT)
            .await
            .with_context(|| format!("applying\n{ldif}"))?;
        Ok(())
    }

    /// An ldap-utils tool bound as the admin to the plain listener.
    fn admin_tool(&self, program: &Path) -> Command {
        let mut cmd = self.tool(program);
        cmd.args(["-x", "-o", "nettimeout=5", "-H"])
            .arg(self.plain_url())
            .args(["-D", ADMIN_DN, "-w", ADMIN_PASSWORD]);
        cmd
    }

    fn tool(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        clear_ldap_env(&mut cmd);
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// `127.0.0.1`: what both listeners bind (and the certificate names).
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Port of `ldap://` (plain, and StartTLS).
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// Port of `ldaps://` (TLS from the first byte).
    pub fn ldaps_port(&self) -> u16 {
        self.ldaps_port
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn plain_url(&self) -> String {
        format!("ldap://{}:{}", self.host(), self.plain_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://{}:{}", self.host(), self.ldaps_port)
    }

    /// The CA that signed the server certificate (for `ldap.encryption.ca_file`).
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    pub fn admin_dn(&self) -> &'static str {
        ADMIN_DN
    }

    pub fn admin_password(&self) -> &'static str {
        ADMIN_PASSWORD
    }

    pub fn base_dn(&self) -> &'static str {
        BASE_DN
    }

    /// The folder holding certificates, `slapd.d/`, `data/` and `slapd.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// slapd's log so far (all runs, when restarted).
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// Process id, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        print_log_if_panicking("slapd", &self.log_path);
    }
}

/// A command for an `ldap-utils` client (`ldapsearch`, `ldapwhoami`, …) with no
/// inherited `LDAP*` variables, so a developer's settings (`LDAPTLS_CACERT`,
/// `LDAPBINDDN`, …) cannot change a test's outcome. `/etc/ldap/ldap.conf` is still
/// read (Debian sets `TLS_CACERT` to the system bundle there, which does not hold the
/// test CA).
pub fn client(tool: &str) -> Result<Command> {
    let mut cmd = Command::new(find_tool(tool)?);
    clear_ldap_env(&mut cmd);
    Ok(cmd)
}

fn clear_ldap_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LDAP") {
            cmd.env_remove(&k);
        }
    }
}

/// The programs used, found before anything starts so a missing one is reported
/// first and clearly.
struct Tools {
    slapd: PathBuf,
    slapadd: PathBuf,
    ldapmodify: PathBuf,
    ldappasswd: PathBuf,
    ldapsearch: PathBuf,
}

impl Tools {
    fn find() -> Result<Self> {
        Ok(Self {
            slapd: find_tool("slapd")?,
            slapadd: find_tool("slapadd")?,
            ldapmodify: find_tool("ldapmodify")?,
            ldappasswd: find_tool("ldappasswd")?,
            ldapsearch: find_tool("ldapsearch")?,
        })
    }
}

/// Finds a program on `PATH` or in `/usr/sbin` (where Debian puts slapd and slapadd,
/// often not on a non-root `PATH`).
fn find_tool(name: &str) -> Result<PathBuf> {
    find_program(name, &["/usr/sbin", "/usr/bin"]).with_context(|| {
        format!(
            "`{name}` is not installed (not on PATH nor in /usr/sbin); the LDAP tests need \
             the Debian packages slapd ldap-utils (`DEBIAN_FRONTEND=noninteractive apt-get \
             install -y slapd ldap-utils`), which scripts/test.sh installs"
        )
    })
}

/// Attribute and object class of the Active Directory logon name; OIDs under an
/// example enterprise arc (AD's own, 1.2.840.113556.1.4.221, would need Debian's whole
/// msuser schema).
const AD_SCHEMA: &str = "\
dn: cn=adstyle,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: adstyle
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName' DESC 'Active Directory logon name (test schema)' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{256} SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.55555.2.1 NAME 'adUser' DESC 'Active Directory style account (test schema)' SUP top AUXILIARY MAY sAMAccountName )
";

/// The `cn=config` tree for `slapadd -n0`, after Debian's own
/// `/usr/share/slapd/slapd.init.ldif`: back_mdb is a module there.
fn config_ldif_text(dir: &Path) -> Result<String> {
    let d = dir
        .to_str()
        .with_context(|| format!("{} is not UTF-8", dir.display()))?;
    let schemas: String = ["core", "cosine", "inetorgperson", "nis"]
        .iter()
        .map(|s| format!("include: file:///etc/ldap/schema/{s}.ldif\n\n"))
        .collect();
    Ok(format!(
        "\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcArgsFile: {d}/slapd.args
olcTLSCACertificateFile: {d}/ca.pem
olcTLSCertificateFile: {d}/server.pem
olcTLSCertificateKeyFile: {d}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}{AD_SCHEMA}
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {BASE_DN}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PASSWORD}
olcDbDirectory: {d}/data
olcDbMaxSize: 67108864
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: cn,uid,mail,sAMAccountName eq
olcDbIndex: member,uniqueMember eq
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by * read
"
    ))
}

/// Appends `attr: value`, or `attr:: base64` when the value is not a plain LDIF
/// SAFE-STRING (RFC 2849: non-ASCII, control characters, or a leading space, colon or
/// `<`, or a trailing space).
fn ldif_line(out: &mut String, attr: &str, value: &str) {
    let safe = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        out.push_str(&format!("{attr}: {value}\n"));
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        out.push_str(&format!("{attr}:: {encoded}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_ldif_values_are_base64() {
        let mut out = String::new();
        ldif_line(&mut out, "cn", "Erin Example");
        ldif_line(&mut out, "cn", " leading space");
        ldif_line(&mut out, "cn", "Jürgen");
        assert_eq!(
            out,
            "cn: Erin Example\ncn:: IGxlYWRpbmcgc3BhY2U=\ncn:: SsO8cmdlbg==\n"
        );
    }

    #[test]
    fn missing_tools_name_the_packages() {
        let e = find_tool("slapd-that-does-not-exist")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("slapd ldap-utils") && e.contains("scripts/test.sh"),
            "{e}"
        );
    }
}
