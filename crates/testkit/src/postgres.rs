//! Throwaway databases for tests: a fresh PostgreSQL database per call of
//! [`test_database`], dropped again when the [`TestDatabase`] is dropped, and
//! [`sqlite_url`] for the SQLite side of the same tests.
//!
//! The PostgreSQL server is found once per process, in this order:
//! 1. `PORTCULLIS_TEST_DATABASE_URL`: a `postgres://` URL of an existing database whose
//!    role may `CREATE DATABASE` (used as is; if it fails, the tests fail);
//! 2. a local server on `127.0.0.1:5432` with trust authentication, as role `postgres`,
//!    then `root` (what `scripts/test.sh` / `.ci/run` set up);
//! 3. a private cluster made with `initdb` and started with `pg_ctl` in a temporary
//!    directory on a free port (as user `postgres` when running as root, since `initdb`
//!    refuses root). A watchdog stops it and removes its directory when this process
//!    exits.
//!
//! When none works the error says what each attempt reported: tests that need
//! PostgreSQL fail, they never skip.

use anyhow::{Context, Result, anyhow, bail};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::OnceCell;

/// Set to a `postgres://` URL to run the tests against that server.
pub const DATABASE_URL_VAR: &str = "PORTCULLIS_TEST_DATABASE_URL";

const LOCAL_CANDIDATES: &[&str] = &[
    "postgres://postgres@127.0.0.1:5432/postgres",
    "postgres://root@127.0.0.1:5432/postgres",
];

/// Prefix of every database this module creates; the process id follows, so leftovers
/// of killed runs can be recognized and removed.
const NAME_PREFIX: &str = "portcullis_test_";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(90);

/// `url` of a SQLite database file inside `dir` (created on first connect).
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite:{}", dir.join("portcullis.db").display())
}

/// A database that exists until this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// `postgres://…/portcullis_test_…` — connect with this.
    pub url: String,
    name: String,
    admin_url: String,
}

/// Creates a fresh, empty database (no migrations run) on the test server.
pub async fn test_database() -> Result<TestDatabase> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let admin_url = SERVER
        .get_or_init(find_server)
        .await
        .as_ref()
        .map_err(|e| anyhow!("{e}"))?;
    let name = format!(
        "{NAME_PREFIX}{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    let mut conn = connect(admin_url).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name} on {}", redact(admin_url)))?;
    let _ = conn.close().await;
    Ok(TestDatabase {
        url: with_database(admin_url, &name),
        name,
        admin_url: admin_url.clone(),
    })
}

impl TestDatabase {
    /// Runs one SQL statement on this database behind the application's back (a fact
    /// written without the announcements a service write makes, say); returns the rows
    /// it affected.
    pub async fn execute(&self, sql: &str) -> Result<u64> {
        let mut conn = connect(&self.url).await?;
        let done = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .with_context(|| format!("running {sql:?}"))?;
        let _ = conn.close().await;
        Ok(done.rows_affected())
    }
}

impl Drop for TestDatabase {
    /// Best effort, on a thread of its own so it works from inside any runtime (or none).
    /// `WITH (FORCE)` ends connections a pool may still hold.
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = connect(&admin_url).await {
                    let _ = drop_database(&mut conn, &name).await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

/// The admin URL of the server, or why none could be had.
static SERVER: OnceCell<Result<String, String>> = OnceCell::const_new();

async fn find_server() -> Result<String, String> {
    if let Ok(url) = std::env::var(DATABASE_URL_VAR) {
        return match check_server(&url).await {
            Ok(()) => Ok(url),
            Err(e) => Err(format!("{DATABASE_URL_VAR}={}: {e:#}", redact(&url))),
        };
    }
    let mut tried = vec![format!("{DATABASE_URL_VAR} is not set")];
    for url in LOCAL_CANDIDATES {
        match check_server(url).await {
            Ok(()) => {
                remove_leftovers(url).await;
                return Ok((*url).to_owned());
            }
            Err(e) => tried.push(format!("{url}: {e:#}")),
        }
    }
    match start_cluster().await {
        Ok(url) => Ok(url),
        Err(e) => {
            tried.push(format!("private cluster (initdb + pg_ctl): {e:#}"));
            Err(format!(
                "no PostgreSQL server for tests; tried:\n  - {}\nSet {DATABASE_URL_VAR} to a \
                 postgres:// URL whose role may CREATE DATABASE, or install PostgreSQL \
                 (scripts/test.sh does)",
                tried.join("\n  - ")
            ))
        }
    }
}

async fn connect(url: &str) -> Result<PgConnection> {
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .map_err(|_| anyhow!("no connection within {CONNECT_TIMEOUT:?}"))?
        .context("cannot connect")
}

/// Connects and checks the role may create databases.
async fn check_server(url: &str) -> Result<()> {
    let mut conn = connect(url).await?;
    let may_create: bool = sqlx::query(
        "SELECT rolcreatedb OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await?
    .try_get("ok")?;
    let _ = conn.close().await;
    if !may_create {
        bail!("the role may not CREATE DATABASE");
    }
    Ok(())
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// Drops databases of earlier test processes on this machine that died before their
/// `Drop` ran (killed by a timeout, say). Only for the local server: on a shared one
/// the process ids would mean nothing.
async fn remove_leftovers(admin_url: &str) {
    let Ok(mut conn) = connect(admin_url).await else {
        return;
    };
    let names: Vec<String> = sqlx::query("SELECT datname::text AS name FROM pg_database")
        .fetch_all(&mut conn)
        .await
        .map(|rows| rows.iter().filter_map(|r| r.try_get("name").ok()).collect())
        .unwrap_or_default();
    for name in names {
        let Some(pid) = name
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = drop_database(&mut conn, &name).await;
        }
    }
    let _ = conn.close().await;
}

/// `url` with its database (path) replaced by `database`; query parameters are kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// `url` with any password replaced, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_owned(),
    }
}

/// A PostgreSQL program: on `PATH`, else in Debian's versioned directories (newest first).
fn pg_program(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
    {
        return Ok(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let program = entry.path().join("bin").join(name);
            program.is_file().then_some((version, program))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, program)| program)
        .ok_or_else(|| anyhow!("`{name}` not found on PATH nor in /usr/lib/postgresql/*/bin"))
}

/// A command running `program` as the `postgres` user when we are root.
fn pg_command(program: &Path, as_root: bool) -> Command {
    let mut cmd = if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

async fn run(what: &str, cmd: &mut Command) -> Result<()> {
    let output = tokio::time::timeout(CLUSTER_START_TIMEOUT, cmd.output())
        .await
        .map_err(|_| anyhow!("{what}: no answer within {CLUSTER_START_TIMEOUT:?}"))?
        .with_context(|| format!("{what}: cannot start"))?;
    if !output.status.success() {
        bail!(
            "{what}: {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

async fn start_cluster() -> Result<String> {
    let initdb = pg_program("initdb")?;
    let pg_ctl = pg_program("pg_ctl")?;
    let as_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let dir = tempfile::Builder::new()
        .prefix("portcullis-pg-")
        .tempdir()
        .context("creating a temporary directory")?
        .keep();
    let data = dir.join("data");
    if as_root {
        run(
            "chown postgres",
            Command::new("chown").arg("postgres:").arg(&dir),
        )
        .await?;
    }
    // From here on the watchdog owns the directory: it stops the server (if one
    // started) and removes everything once this process is gone.
    spawn_watchdog(&dir, &pg_ctl, as_root)?;
    run(
        "initdb",
        pg_command(&initdb, as_root).arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ]),
    )
    .await?;
    // The port is free when picked but could be taken before the server binds it.
    let mut last_error = None;
    for _ in 0..3 {
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            dir.display()
        );
        let started = run(
            "pg_ctl start",
            pg_command(&pg_ctl, as_root)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
        )
        .await;
        match started {
            Ok(()) => {
                let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
                check_server(&url).await?;
                return Ok(url);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("pg_ctl start failed")))
}

/// A detached shell that waits for this process to end, then stops the cluster and
/// deletes its directory (statics are never dropped, so nothing in-process could).
fn spawn_watchdog(dir: &Path, pg_ctl: &Path, as_root: bool) -> Result<()> {
    let runuser = if as_root {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 1; done; \
         {runuser}'{pg_ctl}' -D '{dir}/data' -m immediate stop >/dev/null 2>&1; \
         rm -rf '{dir}'",
        pid = std::process::id(),
        pg_ctl = pg_ctl.display(),
        dir = dir.display(),
    );
    // `setsid` keeps it out of our process group, so a Ctrl-C of the tests does not
    // kill the watchdog before the server it must stop.
    std::process::Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the cluster watchdog (setsid sh)")?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn database_replaced_in_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "t1"),
            "postgres://u@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t1"), "postgres://h:1/t1");
    }

    #[test]
    fn passwords_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }

    /// The last resort works on this machine (it is never reached while a local server
    /// answers): a private cluster starts, and accepts databases.
    #[tokio::test]
    async fn private_cluster_starts() {
        let url = start_cluster().await.unwrap();
        let mut conn = connect(&url).await.unwrap();
        sqlx::query("CREATE DATABASE probe")
            .execute(&mut conn)
            .await
            .unwrap();
        drop_database(&mut conn, "probe").await.unwrap();
    }

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/x")),
            "sqlite:/tmp/x/portcullis.db"
        );
    }
}
