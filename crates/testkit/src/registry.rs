//! A real CNCF distribution registry (Debian's `docker-registry`, 2.8) wired to a
//! test [`Server`] with the configuration `portcullis registry-config` prints, plus
//! helpers for talking to the token endpoint directly ([`form_encode`],
//! [`jwt_header`], [`jwt_claims`]).

use crate::server::{Server, StartError, print_log_if_panicking, read_log, require_tool};
use anyhow::{Context, Result, bail};
use base64::Engine;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long the registry may take to answer its first `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts when the chosen port was taken between choosing and binding it.
const PORT_ATTEMPTS: usize = 5;

/// A port that was free a moment ago. The Go registry cannot inherit a listening
/// socket, so we bind `127.0.0.1:0`, note the port and release it for the registry to
/// bind. Another process may grab it in between; [`Registry::start`] retries then.
pub fn free_port() -> Result<u16> {
    let [port] = free_ports()?;
    Ok(port)
}

/// `N` different ports of 127.0.0.1 that were free a moment ago, like [`free_port`]:
/// all `N` are bound at once, so they differ, then released for the caller's child.
pub fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to find a free port")
        })
        .collect::<Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// A running `docker-registry serve`.
pub struct Registry {
    child: Child,
    dir: PathBuf,
    log_path: PathBuf,
    /// `127.0.0.1:PORT`: the address it listens on and clients use; also the token
    /// `service` and the `hostname` to register in Portcullis, unless started with
    /// [`Registry::start_as`].
    pub addr: String,
    /// The token `service`: [`Registry::addr`], or what [`Registry::start_as`] was given.
    pub service: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Registry {
    /// Writes `dir/config.yml` from `server`'s `registry-config` (storage in
    /// `dir/data`), starts the registry with its log in `dir/registry.log` and waits
    /// until `GET /v2/` answers.
    pub async fn start(server: &Server, dir: &Path) -> Result<Self> {
        let binary = require_tool("docker-registry")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Self::start_retrying(&binary, Auth::Token(server), dir).await
    }

    /// Like [`Registry::start`], but Portcullis knows the registry as `service` (its
    /// token `service`, so the `hostname` to register), e.g. the address of a proxy in
    /// front of it, while clients may still reach it directly at [`Registry::addr`].
    /// Its notifications then carry that address as `request.host`: register it as the
    /// registry's `external_hostname`.
    pub async fn start_as(server: &Server, dir: &Path, service: &str) -> Result<Self> {
        let binary = require_tool("docker-registry")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Self::start_retrying(&binary, Auth::TokenAs(server, service), dir).await
    }

    /// Starts a registry **without authentication** (and with deletes enabled) on the
    /// storage in `dir/data`, which may already hold content, e.g. a layout written by
    /// [`crate::registry_layout::write_layout`]. For tests of the v2 API client, where a
    /// token server would only add noise; any `Authorization` header is ignored.
    pub async fn start_plain(dir: &Path) -> Result<Self> {
        let binary = require_tool("docker-registry")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        Self::start_retrying(&binary, Auth::None, dir).await
    }

    async fn start_retrying(binary: &Path, auth: Auth<'_>, dir: &Path) -> Result<Self> {
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            match Self::start_once(binary, auth, dir).await {
                Ok(r) => return Ok(r),
                Err(StartError::PortTaken(e)) => last_error = Some(e),
                Err(StartError::Other(e)) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("registry did not start")))
    }

    async fn start_once(binary: &Path, auth: Auth<'_>, dir: &Path) -> Result<Self, StartError> {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let (config, service) = match auth {
            Auth::Token(server) => (
                server.registry_config(&addr, &dir.join("data")).await?,
                addr.clone(),
            ),
            Auth::TokenAs(server, service) => (
                server
                    .registry_config_as(service, &addr, &dir.join("data"))
                    .await?,
                service.to_owned(),
            ),
            Auth::None => (plain_config(&addr, &dir.join("data"))?, addr.clone()),
        };
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log_path = dir.join("registry.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .context("duplicating the registry log handle")?;
        let mut cmd = Command::new(binary);
        // REGISTRY_* variables override the config file; keep the machine's out.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(&k);
            }
        }
        let mut child = cmd
            .arg("serve")
            .arg(&config_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let url = format!("http://{addr}");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .context("building an HTTP client")?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().context("checking the registry process")? {
                let log = read_log(&log_path);
                let e = anyhow::anyhow!(
                    "docker-registry exited during start-up ({status})\n--- registry log ---\n{log}"
                );
                return Err(if log.contains("address already in use") {
                    StartError::PortTaken(e)
                } else {
                    StartError::Other(e)
                });
            }
            // Any HTTP answer (401 with a Bearer challenge, normally) means it is up.
            if client.get(format!("{url}/v2/")).send().await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(StartError::Other(anyhow::anyhow!(
                    "docker-registry did not answer GET /v2/ within {READY_TIMEOUT:?}\n--- registry log ---\n{}",
                    read_log(&log_path)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            child,
            dir: dir.to_owned(),
            log_path,
            addr,
            service,
            url,
        })
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// The folder holding `config.yml`, `registry.log` and `data/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the registry and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        print_log_if_panicking("registry", &self.log_path);
    }
}

/// How the started registry authenticates clients.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// Bearer tokens from this Portcullis (its `registry-config`).
    Token(&'a Server),
    /// The same, with this token `service` instead of the listen address.
    TokenAs(&'a Server, &'a str),
    /// Not at all.
    None,
}

/// A minimal distribution 2.8 configuration: filesystem storage in `storage_dir`,
/// deletes enabled, no auth, no notifications.
fn plain_config(addr: &str, storage_dir: &Path) -> Result<String> {
    let storage = storage_dir
        .to_str()
        .with_context(|| format!("{} is not UTF-8", storage_dir.display()))?;
    // JSON strings are valid YAML scalars, which quotes the path safely.
    let storage = serde_json::to_string(storage)?;
    Ok(format!(
        r#"version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: portcullis-testkit-plain
"#
    ))
}

/// `application/x-www-form-urlencoded` encoding of `pairs`, for query strings and the
/// token endpoint's POST form.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The decoded JOSE header (first part) of a JWT.
pub fn jwt_header(token: &str) -> Result<serde_json::Value> {
    jwt_part(token, 0).context("JWT header")
}

/// The decoded claims (second part) of a JWT; the signature is not checked.
pub fn jwt_claims(token: &str) -> Result<serde_json::Value> {
    jwt_part(token, 1).context("JWT claims")
}

fn jwt_part(token: &str, index: usize) -> Result<serde_json::Value> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        bail!("a JWT has 3 dot-separated parts, this has {}", parts.len());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[index].trim_end_matches('='))
        .context("not base64url")?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).context("not JSON")?;
    if !value.is_object() {
        bail!("not a JSON object: {value}");
    }
    Ok(value)
}
