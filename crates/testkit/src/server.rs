//! A `portcullis serve` child process for end-to-end tests, plus the small process
//! helpers the other modules share ([`find_program`], [`require_tool`], [`run`],
//! [`read_log`], [`print_log_if_panicking`], `StartError`).
//!
//! The server binds `127.0.0.1:0` (set `PORTCULLIS_SERVER_LISTEN` accordingly) and
//! prints `listening on ADDR` once bound; [`Server::start`] waits for that line. Its
//! stderr (the log) goes to a file, which is printed when a test panics while the
//! server is alive. The process is killed when the [`Server`] is dropped.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// How long a server may take from spawn to `listening on …` (migrations on a
/// PostgreSQL database and an RSA key generation included).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The first `name` that is a file in a folder of `PATH`, else in one of `extra_dirs`
/// (e.g. `/usr/sbin`, often not on a non-root `PATH`).
pub fn find_program(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Finds an external program the end-to-end tests need on `PATH`. Missing tools are
/// an error, never a reason to skip: `scripts/test.sh` installs them.
pub fn require_tool(name: &str) -> Result<PathBuf> {
    find_program(name, &[]).with_context(|| {
        format!(
            "`{name}` is not installed (not found on PATH); run scripts/test.sh, which \
             installs docker-registry, skopeo, umoci, chromium and chromium-driver (Debian \
             packages)"
        )
    })
}

/// Runs a command to completion within `timeout`; `Err` when it cannot start, times
/// out or exits unsuccessfully (with its stderr). `what` names the step in messages.
pub async fn run(what: &str, cmd: &mut Command, timeout: Duration) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| anyhow!("{what}: no answer within {timeout:?}"))?
        .with_context(|| format!("{what}: cannot start"))?;
    if !output.status.success() {
        bail!(
            "{what}: {}\nstderr: {}\nstdout: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(output)
}

/// A log file's content, or a note saying why it could not be read.
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// For a harness's `Drop`: when the thread is panicking (a failing test), prints the
/// log of the child process `what` ("slapd", "registry", …) to stderr, so the test's
/// output shows what the process said.
pub fn print_log_if_panicking(what: &str, log_path: &Path) {
    if std::thread::panicking() {
        eprintln!(
            "--- {what} log ({}) ---\n{}\n--- end of {what} log ---",
            log_path.display(),
            read_log(log_path)
        );
    }
}

/// Why a harness's child process did not start on the port it was given.
pub(crate) enum StartError {
    /// Somebody bound the port before the child did: try another (or again).
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl StartError {
    pub(crate) fn into_inner(self) -> anyhow::Error {
        match self {
            StartError::PortTaken(e) | StartError::Other(e) => e,
        }
    }
}

impl From<anyhow::Error> for StartError {
    fn from(e: anyhow::Error) -> Self {
        StartError::Other(e)
    }
}

/// Removes inherited `PORTCULLIS_*`/`PORTUS_*` variables so the developer's own
/// configuration cannot leak into a test, then sets `env`.
fn portcullis_command(binary: &Path, env: &BTreeMap<String, String>, work_dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("PORTCULLIS_") || name.starts_with("PORTUS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.envs(env).current_dir(work_dir);
    cmd
}

/// A running `portcullis serve`.
pub struct Server {
    child: Child,
    /// Keeps the stdout pipe open: the server must never get EPIPE.
    _stdout: BufReader<ChildStdout>,
    binary: PathBuf,
    env: BTreeMap<String, String>,
    work_dir: PathBuf,
    log_path: PathBuf,
    /// The bound address, from the `listening on` line.
    pub addr: SocketAddr,
    /// `http://ADDR`, no trailing slash.
    pub url: String,
}

impl Server {
    /// Spawns `binary serve` with exactly the `PORTCULLIS_*` variables of `env`, in
    /// `work_dir` (so no stray `./config.yml` is read), its log in
    /// `work_dir/portcullis.log`, and waits for the `listening on` line.
    pub async fn start(
        binary: &Path,
        env: BTreeMap<String, String>,
        work_dir: &Path,
    ) -> Result<Self> {
        let log_path = work_dir.join("portcullis.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut child = portcullis_command(binary, &env, work_dir)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {} serve", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("portcullis stdout was not captured")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, stdout.read_line(&mut line)).await;
        let failure = match read {
            Err(_) => Some(format!("no `listening on` line within {START_TIMEOUT:?}")),
            Ok(Err(e)) => Some(format!("reading its stdout: {e}")),
            Ok(Ok(0)) => Some("it exited before listening".to_owned()),
            Ok(Ok(_)) => None,
        };
        if let Some(why) = failure {
            let _ = child.start_kill();
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_default();
            bail!(
                "portcullis serve did not start: {why} ({status})\n--- its log ---\n{}",
                read_log(&log_path)
            );
        }
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .with_context(|| {
                format!("unexpected first stdout line of portcullis serve: {line:?}")
            })?;
        Ok(Self {
            child,
            _stdout: stdout,
            binary: binary.to_owned(),
            env,
            work_dir: work_dir.to_owned(),
            log_path,
            url: format!("http://{addr}"),
            addr,
        })
    }

    /// Runs another subcommand with the same environment and working directory (same
    /// data folder and database), returning its stdout.
    pub async fn subcommand<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = portcullis_command(&self.binary, &self.env, &self.work_dir);
        cmd.args(args);
        let out = run("portcullis subcommand", &mut cmd, Duration::from_secs(60)).await?;
        String::from_utf8(out.stdout).context("portcullis printed non-UTF-8")
    }

    /// Runs another subcommand like [`Server::subcommand`], whatever its exit status:
    /// the caller checks status, stdout and stderr.
    pub async fn subcommand_output<I, S>(&self, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = portcullis_command(&self.binary, &self.env, &self.work_dir);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let timeout = Duration::from_secs(60);
        tokio::time::timeout(timeout, cmd.output())
            .await
            .map_err(|_| anyhow!("portcullis subcommand: no answer within {timeout:?}"))?
            .context("portcullis subcommand: cannot start")
    }

    /// Starts a long-running subcommand (`worker`, say) with the same environment and
    /// working directory, its stderr in `work_dir/<log_name>.log`. It is killed when
    /// the [`Process`] is dropped.
    pub fn spawn<I, S>(&self, args: I, log_name: &str) -> Result<Process>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let log_path = self.work_dir.join(format!("{log_name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = portcullis_command(&self.binary, &self.env, &self.work_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        Ok(Process {
            child,
            log_path,
            name: log_name.to_owned(),
        })
    }

    /// `portcullis registry-config` for a registry reachable at `registry`
    /// (`host:port`, also its listen address) storing blobs in `storage_dir`.
    pub async fn registry_config(&self, registry: &str, storage_dir: &Path) -> Result<String> {
        self.registry_config_as(registry, registry, storage_dir)
            .await
    }

    /// `portcullis registry-config` for a registry whose token `service` (the
    /// hostname Portcullis knows it by) is `service`, listening on `listen`.
    pub async fn registry_config_as(
        &self,
        service: &str,
        listen: &str,
        storage_dir: &Path,
    ) -> Result<String> {
        let storage = storage_dir.to_str().context("storage dir is not UTF-8")?;
        self.subcommand([
            "registry-config",
            "--registry",
            service,
            "--listen",
            listen,
            "--storage-dir",
            storage,
            "--portcullis-url",
            &self.url,
        ])
        .await
        .context("portcullis registry-config")
    }

    /// Kills the server and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Process id (for `/proc/PID/status`).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// Where the log is written.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        print_log_if_panicking("portcullis", &self.log_path);
    }
}

/// A long-running `portcullis` subcommand started by [`Server::spawn`].
pub struct Process {
    child: Child,
    log_path: PathBuf,
    name: String,
}

impl Process {
    /// Process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `SIGKILL`: the process gets no chance to clean up. Waits for it to be gone.
    pub async fn kill(&mut self) -> Result<ExitStatus> {
        self.child.start_kill().context("sending SIGKILL")?;
        self.child
            .wait()
            .await
            .context("waiting for the killed process")
    }

    /// `Some` once it exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Its log (stderr) so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        print_log_if_panicking(&format!("portcullis {}", self.name), &self.log_path);
    }
}
