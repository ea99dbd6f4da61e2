//! A real SMTP server for the mail tests: Debian's `python3-aiosmtpd` driven by
//! `crates/testkit/smtp_listener.py`, started as a child process.
//!
//! It covers what Portus's `email.smtp.*` settings can ask of a server: plain SMTP,
//! STARTTLS (optional or required), implicit TLS ("SMTPS", port 465 style), AUTH
//! PLAIN, LOGIN and CRAM-MD5, and scripted transient failures (`451`) for retry
//! tests. The certificate is issued by a throw-away test CA ([`SmtpServer::ca_cert_path`],
//! made with [`crate::tls`]) for `localhost` and `127.0.0.1`, or the names of
//! [`SmtpOptions::cert_names`].
//!
//! The listener binds `127.0.0.1:0` itself and prints `listening on 127.0.0.1:PORT`
//! once it accepts connections, so there is no port race and no fixed sleep. Its log
//! (the whole SMTP dialogue, AUTH secrets included) goes to `DIR/smtp.log`, which is
//! printed when a test panics. Every accepted message is stored as
//! `DIR/messages/NNNNNN.json` (envelope, TLS, AUTH user, decoded headers and bodies,
//! raw message); [`SmtpServer::messages`] reads them back. The process is killed when
//! the [`SmtpServer`] is dropped, and [`SmtpServer::stop`]/[`SmtpServer::restart`]
//! take it down and bring it back on the same port.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::server::{StartError, find_program, print_log_if_panicking};
use crate::tls::TlsFiles;

/// The listener script, written into the server's folder at start.
const LISTENER_SCRIPT: &str = include_str!("../smtp_listener.py");
/// Debian's interpreter, the one `python3-aiosmtpd` installs for. A `python3` earlier
/// on `PATH` (pyenv, a venv) usually cannot import it.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";
/// How long the listener may take from spawn to `listening on …` (about 0.2 s).
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`SmtpServer::restart`] keeps trying when its old port is taken.
const REBIND_TIMEOUT: Duration = Duration::from_secs(3);
/// How often [`SmtpServer::wait_for_messages`] looks at the folder.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Exit code of the script when `import aiosmtpd` fails.
const EXIT_NO_AIOSMTPD: i32 = 3;
/// Exit code of the script when its port is in use.
const EXIT_ADDR_IN_USE: i32 = 4;

/// How the server offers TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// No TLS at all (`STARTTLS` is not offered).
    #[default]
    Plain,
    /// `STARTTLS` is offered. When `required`, every command but
    /// EHLO/HELO/NOOP/RSET/QUIT/STARTTLS is refused with `530` until the client has
    /// switched to TLS. With [`SmtpOptions::auth`] set, AUTH is only offered (and
    /// accepted) after STARTTLS, as real servers do; before it, `AUTH` gets `538`.
    StartTls { required: bool },
    /// TLS from the first byte (SMTPS, Portus's `ssl_tls: ssl`/`tls`).
    ImplicitTls,
}

/// What [`SmtpServer::start`] starts.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    pub mode: Mode,
    /// `(user, password)`: AUTH PLAIN, LOGIN and CRAM-MD5 are offered, and MAIL
    /// without a successful AUTH is refused with `530 5.7.0 Authentication required`.
    /// A wrong password gets `535 5.7.8`. `None`: no AUTH is offered.
    pub auth: Option<(String, String)>,
    /// The first this many transactions (counted over restarts) are answered with
    /// `451 4.3.0` at the end of DATA, so the client has sent the whole message and
    /// must send it again. They are kept apart, see [`SmtpServer::rejected`].
    pub fail_first: usize,
    /// Subject alternative names of the server certificate (IP addresses become IP
    /// SANs). Default: `localhost` and `127.0.0.1`.
    pub cert_names: Vec<String>,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Plain,
            auth: None,
            fail_first: 0,
            cert_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        }
    }
}

impl SmtpOptions {
    /// Plain SMTP, no AUTH, no failures.
    pub fn plain() -> Self {
        Self::default()
    }

    /// STARTTLS offered; `required` refuses MAIL before it.
    pub fn starttls(required: bool) -> Self {
        Self {
            mode: Mode::StartTls { required },
            ..Self::default()
        }
    }

    /// Implicit TLS (SMTPS).
    pub fn implicit_tls() -> Self {
        Self {
            mode: Mode::ImplicitTls,
            ..Self::default()
        }
    }

    /// Requires AUTH with this user and password.
    pub fn with_auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Answers the first `n` transactions with `451`.
    pub fn with_fail_first(mut self, n: usize) -> Self {
        self.fail_first = n;
        self
    }

    /// The server certificate is for these names instead of `localhost`/`127.0.0.1`.
    pub fn with_cert_names(mut self, names: &[&str]) -> Self {
        self.cert_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }
}

/// One message as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// `MAIL FROM` (without angle brackets; empty for the null sender `<>`).
    pub envelope_from: String,
    /// Every `RCPT TO`, in order.
    pub envelope_to: Vec<String>,
    /// Whether the session was encrypted (STARTTLS or implicit TLS) when DATA ended.
    pub tls: bool,
    /// `TLSv1.3` and the like, when [`ReceivedMail::tls`].
    pub tls_version: Option<String>,
    /// The user of a successful AUTH in this session.
    pub auth_user: Option<String>,
    /// `PLAIN`, `LOGIN` or `CRAM-MD5`, with [`ReceivedMail::auth_user`].
    pub auth_mechanism: Option<String>,
    /// The EHLO/HELO name the client gave.
    pub helo: Option<String>,
    /// Header fields in order, RFC 2047 encoded words decoded.
    pub headers: Vec<(String, String)>,
    /// The decoded (quoted-printable/base64, charset) `text/plain` body, if any.
    /// Line ends are `\n`.
    pub text_body: Option<String>,
    /// The decoded `text/html` body, if any; line ends are `\n`.
    pub html_body: Option<String>,
    /// The message as sent after DATA (RFC 5322, CRLF line ends, dot-unstuffed;
    /// invalid UTF-8 replaced).
    pub raw: String,
}

impl ReceivedMail {
    /// The first header field called `name` (case-insensitive), decoded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header field called `name` (case-insensitive), decoded.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The decoded `text/plain` body, else the `text/html` one, else `""`.
    pub fn body(&self) -> &str {
        self.text_body
            .as_deref()
            .or(self.html_body.as_deref())
            .unwrap_or("")
    }

    fn from_json(value: &Value) -> Result<Self> {
        let string = |key: &str| -> Result<Option<String>> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => bail!("`{key}` is not a string: {other}"),
            }
        };
        let envelope_to = value
            .get("envelope_to")
            .and_then(Value::as_array)
            .context("`envelope_to` is not an array")?
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .context("a recipient is not a string")
            })
            .collect::<Result<_>>()?;
        let headers = value
            .get("headers")
            .and_then(Value::as_array)
            .context("`headers` is not an array")?
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(n), Value::String(v)]) => Ok((n.clone(), v.clone())),
                _ => bail!("a header is not a [name, value] pair: {pair}"),
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            envelope_from: string("envelope_from")?.unwrap_or_default(),
            envelope_to,
            tls: value.get("tls").and_then(Value::as_bool).unwrap_or(false),
            tls_version: string("tls_version")?,
            auth_user: string("auth_user")?,
            auth_mechanism: string("auth_mechanism")?,
            helo: string("helo")?,
            headers,
            text_body: string("text_body")?,
            html_body: string("html_body")?,
            raw: string("raw")?.unwrap_or_default(),
        })
    }
}

/// A running (or [stopped](SmtpServer::stop)) SMTP server.
pub struct SmtpServer {
    child: Option<Child>,
    /// Keeps the stdout pipe open: the listener must never get EPIPE.
    _stdout: Option<BufReader<ChildStdout>>,
    dir: tempfile::TempDir,
    python: PathBuf,
    script: PathBuf,
    options: SmtpOptions,
    log_path: PathBuf,
    tls: TlsFiles,
    port: u16,
}

impl SmtpServer {
    /// Creates a temporary folder with a fresh test CA and server certificate, starts
    /// the listener on a free port of 127.0.0.1 and waits until it accepts
    /// connections (about 0.2 s).
    pub async fn start(options: SmtpOptions) -> Result<Self> {
        let python = find_python()?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-smtp-")
            .tempdir()
            .context("creating the SMTP server's temporary folder")?;
        let script = dir.path().join("smtp_listener.py");
        std::fs::write(&script, LISTENER_SCRIPT)
            .with_context(|| format!("writing {}", script.display()))?;
        let names: Vec<&str> = options.cert_names.iter().map(String::as_str).collect();
        let tls = crate::tls::write_server_files(dir.path(), "Portcullis testkit SMTP CA", &names)?;
        let log_path = dir.path().join("smtp.log");
        let mut server = Self {
            child: None,
            _stdout: None,
            python,
            script,
            options,
            log_path,
            tls,
            port: 0,
            dir,
        };
        server.spawn(0).await.map_err(StartError::into_inner)?;
        Ok(server)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1`, the host to configure (the certificate is also valid for
    /// `localhost`).
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The port; it stays the same over [`SmtpServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The options it was started with.
    pub fn options(&self) -> &SmtpOptions {
        &self.options
    }

    /// The test CA's certificate file (PEM), for `ca_file`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.tls.ca_path.clone()
    }

    /// The test CA's certificate (PEM).
    pub fn ca_cert_pem(&self) -> &str {
        &self.tls.ca_pem
    }

    /// The server certificate file (PEM, the leaf only), issued by the test CA.
    pub fn server_cert_path(&self) -> PathBuf {
        self.tls.cert_path.clone()
    }

    /// The Python interpreter the listener runs on (Debian's, which has aiosmtpd), for
    /// tests that drive a Python client such as `smtplib`.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The server's folder: `smtp.log`, `messages/`, `rejected/`, `ca.pem`,
    /// `server.pem`, `server.key`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The log so far, over all starts (the SMTP dialogue, AUTH data included).
    pub fn log(&self) -> String {
        crate::server::read_log(&self.log_path)
    }

    /// Whether the listener process is running (not [stopped](SmtpServer::stop)).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Every accepted message so far, in arrival order.
    pub fn messages(&self) -> Result<Vec<ReceivedMail>> {
        read_mails(&self.dir.path().join("messages"))
    }

    /// The transactions answered with the scripted `451` ([`SmtpOptions::fail_first`]),
    /// in order; recorded like accepted ones.
    pub fn rejected(&self) -> Result<Vec<ReceivedMail>> {
        read_mails(&self.dir.path().join("rejected"))
    }

    /// Waits until at least `n` messages were accepted and returns all of them; an
    /// error with the log when `timeout` passes first.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMail>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages()?;
            if messages.len() >= n {
                return Ok(messages);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the SMTP server received {} of {n} messages within {timeout:?}\n\
                     --- SMTP log ---\n{}",
                    messages.len(),
                    self.log()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Kills the listener and waits for it to exit: connections are refused until
    /// [`SmtpServer::restart`]. Messages, certificates and the log stay.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self._stdout = None;
    }

    /// Starts the listener again (after [`SmtpServer::stop`], or stops it first) with
    /// the same options, certificate and folder, on the same port. The port is
    /// released while stopped: if another process binds it meanwhile, this retries
    /// for a few seconds and then fails.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await;
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            match self.spawn(self.port).await {
                Ok(()) => return Ok(()),
                Err(StartError::PortTaken(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into_inner()),
            }
        }
    }

    async fn spawn(&mut self, port: u16) -> Result<(), StartError> {
        let dir = self.dir.path();
        let (user, password) = match &self.options.auth {
            Some((u, p)) => (Value::from(u.as_str()), Value::from(p.as_str())),
            None => (Value::Null, Value::Null),
        };
        let (mode, required) = match self.options.mode {
            Mode::Plain => ("plain", false),
            Mode::StartTls { required } => ("starttls", required),
            Mode::ImplicitTls => ("implicit", false),
        };
        let config = serde_json::json!({
            "state_dir": path_str(dir)?,
            "port": port,
            "mode": mode,
            "starttls_required": required,
            "cert_file": path_str(&self.tls.cert_path)?,
            "key_file": path_str(&self.tls.key_path)?,
            "auth_user": user,
            "auth_password": password,
            "fail_first": self.options.fail_first,
        });
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        writeln!(
            log,
            "--- testkit: starting the SMTP listener on port {port} ---"
        )
        .context("writing the SMTP log")?;
        let mut child = Command::new(&self.python)
            .arg(&self.script)
            .arg(config.to_string())
            .current_dir(dir)
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", self.python.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the listener's stdout is not piped")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await;
        let listening = match read {
            Ok(Ok(n)) if n > 0 => line.trim().strip_prefix("listening on ").map(str::to_owned),
            Ok(_) => None,
            Err(_) => {
                let _ = child.kill().await;
                return Err(anyhow!(
                    "the SMTP listener did not report `listening on` within {START_TIMEOUT:?}\n\
                     --- SMTP log ---\n{}",
                    self.log()
                )
                .into());
            }
        };
        let Some(addr) = listening else {
            let status = child
                .wait()
                .await
                .context("waiting for the SMTP listener")?;
            let log = self.log();
            let e = anyhow!(
                "the SMTP listener exited during start-up ({status}; stdout: {:?})\n\
                 --- SMTP log ---\n{log}",
                line.trim()
            );
            return Err(match status.code() {
                Some(EXIT_NO_AIOSMTPD) => StartError::Other(missing_aiosmtpd(&self.python)),
                Some(EXIT_ADDR_IN_USE) => StartError::PortTaken(e),
                _ => StartError::Other(e),
            });
        };
        let bound: u16 = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("the SMTP listener reported a strange address {addr:?}"))?;
        self.port = bound;
        self.child = Some(child);
        self._stdout = Some(stdout);
        Ok(())
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        print_log_if_panicking("SMTP", &self.log_path);
    }
}

fn missing_aiosmtpd(python: &Path) -> anyhow::Error {
    anyhow!(
        "aiosmtpd is not installed for {} (the SMTP test server needs it); run \
         scripts/test.sh, which installs the Debian package python3-aiosmtpd \
         (`apt-get install python3-aiosmtpd`)",
        python.display()
    )
}

/// Debian's `/usr/bin/python3`, else the first `python3` on `PATH` (which then
/// must be able to import aiosmtpd).
fn find_python() -> Result<PathBuf> {
    let debian = Path::new(DEBIAN_PYTHON);
    if debian.is_file() {
        return Ok(debian.to_owned());
    }
    find_program("python3", &[]).context(
        "python3 is not installed; run scripts/test.sh, which installs the Debian package \
         python3-aiosmtpd (and with it python3)",
    )
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The `*.json` files of `folder` (written by renaming, so never partial), parsed,
/// in name order (the listener numbers them).
fn read_mails(folder: &Path) -> Result<Vec<ReceivedMail>> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", folder.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", folder.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".json") && !name.starts_with('.') {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            ReceivedMail::from_json(&value).with_context(|| format!("reading {}", path.display()))
        })
        .collect()
}
