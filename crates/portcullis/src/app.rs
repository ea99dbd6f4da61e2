//! Start-up wiring: configuration, logging, database, keys, services, listener.

use anyhow::{Context, Result, anyhow};
use portcullis_config::{Config, Loaded};
use portcullis_domain::time::Clock;
use portcullis_registry::jwt::TokenSigner;
use portcullis_registry::keys::SigningKey;
use portcullis_service::clock::SystemClock;
use portcullis_service::passwords::PasswordHasher;
use portcullis_service::secrets::{OsRandom, RandomSource};
use portcullis_service::{Sealer, Services};
use portcullis_storage::Store;
use portcullis_worker::Worker;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub fn load_config(path: Option<&Path>) -> Result<Loaded> {
    let env: HashMap<String, String> = std::env::vars().collect();
    Ok(portcullis_config::load(path, &env)?)
}

pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn now_unix() -> i64 {
    SystemClock.now().as_secs()
}

/// Domain errors carry their own one-line message.
pub fn domain_error(e: portcullis_domain::Error) -> anyhow::Error {
    anyhow!("{e}")
}

pub async fn connect(config: &Config) -> Result<Store> {
    let url = config.database_url();
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches("//");
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let masked = portcullis_config::mask_url_password(&url);
    let wait = Duration::from_secs(config.database.wait_seconds.unsigned_abs());
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let tried = async {
            let store = Store::connect(&url).await?;
            store.ping().await?;
            Ok::<_, portcullis_storage::StoreError>(store)
        };
        match tried.await {
            Ok(store) => return Ok(store),
            Err(e) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(anyhow!(
                        "database {masked} is not reachable (waited {}s, database.wait_seconds): {e}",
                        wait.as_secs()
                    ));
                }
                tracing::warn!(database = %masked, error = %e, "waiting for the database");
                tokio::time::sleep(left.min(DATABASE_RETRY)).await;
            }
        }
    }
}

/// How often a start-up retries an unreachable database (Portus's image: every 5 s).
const DATABASE_RETRY: Duration = Duration::from_secs(5);

/// Loads the signing key, generating key and certificate on first start.
pub fn load_signing_key(config: &Config) -> Result<(SigningKey, bool)> {
    let (key, generated) = SigningKey::load_or_generate(
        &config.key_path(),
        &config.cert_path(),
        config.token.algorithm,
        &config.machine_fqdn.value,
        now_unix(),
    )?;
    let days_left = (key.cert_not_after_unix() - now_unix()) / 86_400;
    if days_left < 30 {
        tracing::warn!(
            days_left,
            "the token signing certificate expires soon; registries will reject tokens after that"
        );
    }
    Ok((key, generated))
}

/// Makes `config.notifications.secret` the effective secret: the configured one when
/// set (config file, environment or `_FILE`; nothing is written then), else the one in
/// [`Config::notification_secret_path`], which is generated from `random` (256 bits,
/// base64url) when that file does not exist yet. [`App::start`] (`serve`, `admin …`)
/// and `registry-config` call this, so the printed registry configuration carries the
/// secret the server checks. Returns whether the file was generated now. The secret is
/// never logged.
pub fn resolve_notification_secret(config: &mut Config, random: &dyn RandomSource) -> Result<bool> {
    if !config.notifications.secret.is_empty() {
        return Ok(false);
    }
    let path = config.notification_secret_path();
    let (secret, generated) = load_or_generate_secret(&path, random)?;
    if generated {
        tracing::info!(path = %path.display(), "generated a notification secret (`portcullis registry-config` prints it for the registry)");
    }
    config.notifications.secret = secret;
    Ok(generated)
}

/// Reads the secret in `path`, or creates that file (mode 0600, never overwriting)
/// with a new one.
fn load_or_generate_secret(path: &Path, random: &dyn RandomSource) -> Result<(String, bool)> {
    let context = || format!("notification secret file {}", path.display());
    if let Some(secret) = read_secret(path)? {
        return Ok((secret, false));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(context)?;
    }
    let secret = portcullis_service::secrets::new_token(random, "");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another process created it first: use its secret.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = read_secret(path)?.with_context(context)?;
            return Ok((secret, false));
        }
        Err(e) => return Err(e).with_context(context),
    };
    file.write_all(format!("{secret}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(context)?;
    Ok((secret, true))
}

/// The secret in `path`, `None` when the file does not exist.
fn read_secret(path: &Path) -> Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("notification secret file {}", path.display()));
        }
    };
    let secret = text.trim();
    if secret.is_empty() {
        anyhow::bail!(
            "notification secret file {} is empty; delete it to have a new one generated, or set notifications.secret",
            path.display()
        );
    }
    Ok(Some(secret.to_owned()))
}

/// The key that encrypts webhook passwords, secrets and header values, in the data
/// folder (created on first start, mode 0600). Back it up with the database: without
/// it the stored webhook secrets cannot be opened.
pub const WEBHOOK_KEY_FILE: &str = "webhooks.key";

pub struct App {
    pub services: Services,
}

impl App {
    /// Connects and migrates the database, loads keys and the notification secret
    /// (generating them on first start) and builds the services.
    pub async fn start(mut config: Config) -> Result<Self> {
        let store = connect(&config).await?;
        store.migrate().await.context("migrating the database")?;
        let (key, generated) = load_signing_key(&config)?;
        if generated {
            tracing::info!(key = %config.key_path().display(), cert = %config.cert_path().display(), "generated a token signing key");
        }
        let signer = TokenSigner::new(&key, config.token.kid)?;
        let random = Arc::new(OsRandom);
        resolve_notification_secret(&mut config, random.as_ref())?;
        let hasher = PasswordHasher::new(
            usize::try_from(config.security_policy.max_concurrent_password_checks).unwrap_or(1),
        );
        let webhook_key_path = config.data_dir.join(WEBHOOK_KEY_FILE);
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("data_dir {}: cannot create", config.data_dir.display()))?;
        let webhook_key = Sealer::from_key_file(&webhook_key_path)
            .with_context(|| format!("webhook key {}", webhook_key_path.display()))?;
        let services = Services::new(
            store,
            config,
            Arc::new(SystemClock),
            random,
            signer,
            hasher,
            webhook_key,
        );
        Ok(Self { services })
    }
}

/// The background worker of this process, per `background.workers`.
fn worker(services: &Services) -> Worker {
    let concurrency = usize::try_from(services.config().background.workers).unwrap_or(1);
    Worker::new(services.clone(), Worker::default_id(), concurrency)
}

/// The HTTP server, plus the background worker unless `background.embedded: false`.
/// On SIGTERM or Ctrl-C: stop accepting, finish requests, let running jobs finish,
/// then exit.
pub async fn serve(app: App) -> Result<()> {
    let listen = app.services.config().server.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("server.listen {listen}: cannot bind"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "portcullis listening");
    let (stop, stopped) = watch::channel(false);
    let background = app
        .services
        .config()
        .background
        .embedded
        .then(|| tokio::spawn(worker(&app.services).run(stopped.clone())));
    if background.is_none() {
        tracing::info!("background.embedded is false: run `portcullis worker` to process events");
    }
    // A machine-readable line for scripts and tests that bind port 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    drop(stdout);
    let router = portcullis_web::app(app.services);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    })
    .await?;
    if let Some(background) = background {
        let _ = background.await;
    }
    Ok(())
}

/// `portcullis worker`: only the background worker, until SIGTERM (then drain).
pub async fn run_worker(app: App) -> Result<()> {
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(worker(&app.services).run(stopped));
    shutdown_signal().await;
    let _ = stop.send(true);
    let _ = running.await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use portcullis_service::secrets::SeededRandom;
    use std::os::unix::fs::PermissionsExt;

    fn config_in(dir: &Path) -> Config {
        Config {
            data_dir: dir.join("data"),
            ..Config::default()
        }
    }

    #[test]
    fn notification_secret_is_generated_once_into_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let random = SeededRandom::default();
        let mut config = config_in(dir.path());
        assert!(resolve_notification_secret(&mut config, &random).unwrap());
        let secret = config.notifications.secret.clone();
        // The first 32 bytes of the seeded source, base64url.
        assert_eq!(
            secret,
            portcullis_service::secrets::new_token(&SeededRandom::default(), "")
        );
        assert_eq!(secret.len(), 43);
        let path = config.notification_secret_path();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{secret}\n")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Later starts read it; the random source is not asked again.
        let mut again = config_in(dir.path());
        assert!(!resolve_notification_secret(&mut again, &random).unwrap());
        assert_eq!(again.notifications.secret, secret);
    }

    #[test]
    fn a_configured_notification_secret_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        config.notifications.secret = "configured".into();
        assert!(!resolve_notification_secret(&mut config, &SeededRandom::default()).unwrap());
        assert_eq!(config.notifications.secret, "configured");
        assert!(!config.notification_secret_path().exists());
        assert!(!dir.path().join("data").exists());
    }

    #[test]
    fn an_empty_notification_secret_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config_in(dir.path());
        std::fs::create_dir_all(&config.data_dir).unwrap();
        std::fs::write(config.notification_secret_path(), "\n").unwrap();
        let err = resolve_notification_secret(&mut config, &SeededRandom::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("is empty; delete it"), "{err}");
        assert!(config.notifications.secret.is_empty());
    }
}
