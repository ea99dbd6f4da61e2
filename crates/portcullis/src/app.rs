//! Start-up wiring: configuration, logging, database, keys, services, listener.

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use portcullis_config::{Config, Loaded, LogFormat};
use portcullis_domain::time::Clock;
use portcullis_registry::jwt::TokenSigner;
use portcullis_registry::keys::SigningKey;
use portcullis_registry::tls::TrustedRoots;
use portcullis_service::clock::SystemClock;
use portcullis_service::ldap::Directory;
use portcullis_service::passwords::PasswordHasher;
use portcullis_service::secrets::{OsRandom, RandomSource};
use portcullis_service::{Outbound, Sealer, Services};
use portcullis_storage::Store;
use portcullis_worker::Worker;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub fn load_config(path: Option<&Path>) -> Result<Loaded> {
    let env: HashMap<String, String> = std::env::vars().collect();
    Ok(portcullis_config::load(path, &env)?)
}

/// Logs to standard error: `log.format` text (colours only on a terminal) or JSON,
/// one object a line; levels from `PORTCULLIS_LOG` (default `info,sqlx=warn`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
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
            let pool = u32::try_from(config.database.pool).unwrap_or(u32::MAX);
            let store = Store::connect_with_pool(&url, pool).await?;
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
/// with a new one. Processes starting at once on one data folder take turns (the
/// folder's lock) and the file appears complete, so all of them use one secret.
fn load_or_generate_secret(path: &Path, random: &dyn RandomSource) -> Result<(String, bool)> {
    use portcullis_registry::keys::{create_complete_file, lock_folder};
    let context = || format!("notification secret file {}", path.display());
    if let Some(secret) = read_secret(path)? {
        return Ok((secret, false));
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(context)?;
    let _lock = lock_folder(dir).with_context(context)?;
    if let Some(secret) = read_secret(path)? {
        return Ok((secret, false)); // another process generated it meanwhile
    }
    let secret = portcullis_service::secrets::new_token(random, "");
    create_complete_file(path, format!("{secret}\n").as_bytes(), true).with_context(context)?;
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
        let registry_roots = match config.registry.certificates_dir.as_str() {
            "" => TrustedRoots::default(),
            dir => TrustedRoots::load_dir(Path::new(dir))
                .map_err(|e| anyhow!("registry.certificates_dir: {e}"))?,
        };
        if !registry_roots.is_empty() {
            tracing::info!(files = ?registry_roots.files, "trusting extra certificate authorities for registries");
        }
        let directory = Directory::for_config(&config.ldap).map_err(|e| anyhow!(e))?;
        if let Some(d) = &directory {
            tracing::info!(server = d.server(), "signing in through the LDAP directory");
        }
        let mailer =
            portcullis_service::mail::Mailer::new(&config.email).map_err(|e| anyhow!(e))?;
        tracing::info!(via = mailer.target(), "mail leaves through");
        let smtp = &config.email.smtp;
        if smtp.enabled
            && (smtp.ssl_tls != portcullis_config::SmtpImplicitTls::None
                || smtp.enable_starttls_auto)
            && smtp.openssl_verify_mode == portcullis_config::SmtpVerifyMode::None
        {
            tracing::warn!(
                "email.smtp.openssl_verify_mode is none: the mail server's certificate is not checked"
            );
        }
        let exchange = &config.token_exchange;
        if exchange.enabled {
            let rules: Vec<&str> = exchange.rules.iter().map(|r| r.name.as_str()).collect();
            tracing::info!(?rules, "token exchange of CI ID tokens enabled");
        }
        let services = Services::new(
            store,
            config,
            Arc::new(SystemClock),
            random,
            signer,
            hasher,
            webhook_key,
            Outbound {
                registry_roots,
                directory,
                mailer: Some(std::sync::Arc::new(mailer)),
                token_exchange_http: Some(
                    portcullis_service::exchange::http_client()
                        .context("the HTTP client for token exchange issuers")?,
                ),
            },
        );
        Ok(Self { services })
    }
}

/// The background worker of this process, per `background.workers`.
fn worker(services: &Services) -> Worker {
    let concurrency = usize::try_from(services.config().background.workers).unwrap_or(1);
    Worker::new(services.clone(), Worker::default_id(), concurrency)
}

/// How often the TLS certificate and key files are compared with what is served.
const CERTIFICATE_CHECK: Duration = Duration::from_secs(5);
/// How soon a dropped grant-change listener connects again.
const GRANT_LISTENER_RETRY: Duration = Duration::from_secs(1);

fn bind(key: &str, address: &str) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("{key} {address}: cannot bind"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Clears this node's grant cache when other nodes announce changes (PostgreSQL).
fn listen_for_grant_changes(services: &Services) {
    let services = services.clone();
    tokio::spawn(async move {
        services
            .listen_for_grant_changes(GRANT_LISTENER_RETRY)
            .await;
    });
}

/// The HTTP server (HTTPS with `server.tls`, plus the redirecting plain-HTTP listener
/// of `server.http_redirect_listen`), and the background worker unless
/// `background.embedded: false`. On SIGTERM or Ctrl-C: stop accepting, finish
/// requests, let running jobs finish, then exit.
pub async fn serve(app: App) -> Result<()> {
    let config = app.services.config().clone();
    let listener = bind("server.listen", &config.server.listen)?;
    let addr = listener.local_addr()?;
    let tls = if config.server.tls.enabled() {
        Some(load_tls(&config).await?)
    } else {
        None
    };
    let redirect = match config.server.http_redirect_listen.as_str() {
        "" => None,
        address => Some(bind("server.http_redirect_listen", address)?),
    };
    listen_for_grant_changes(&app.services);
    tracing::info!(%addr, tls = tls.is_some(), "portcullis listening");
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
    // Machine-readable lines for scripts and tests that bind port 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    if let Some(redirect) = &redirect {
        writeln!(stdout, "redirecting on {}", redirect.local_addr()?)?;
    }
    stdout.flush()?;
    drop(stdout);
    let router = portcullis_web::app(app.services);
    let handle = axum_server::Handle::new();
    let mut servers = tokio::task::JoinSet::new();
    if let Some(redirect) = redirect {
        let target = https_base(&config);
        let app = Router::new()
            .fallback_service(router.clone())
            .layer(axum::middleware::from_fn(move |req, next| {
                redirect_to_https(target.clone(), req, next)
            }));
        let server = axum_server::from_tcp(redirect)?.handle(handle.clone());
        servers.spawn(server.serve(app.into_make_service_with_connect_info::<SocketAddr>()));
    }
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(tls) => {
            let server =
                axum_server::from_tcp_rustls(listener, tls.clone())?.handle(handle.clone());
            servers.spawn(server.serve(service));
            let (cert, key) = tls_paths(&config);
            tokio::spawn(reload_certificate_on_change(
                tls,
                cert,
                key,
                CERTIFICATE_CHECK,
            ));
        }
        None => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            servers.spawn(server.serve(service));
        }
    }
    tokio::select! {
        () = shutdown_signal() => {}
        // A listener that fails ends the process (and says why below).
        Some(ended) = servers.join_next() => {
            let _ = stop.send(true);
            ended??;
        }
    }
    let _ = stop.send(true);
    // Stop accepting; connections finish their requests (idle ones close now).
    handle.graceful_shutdown(None);
    while let Some(ended) = servers.join_next().await {
        ended??;
    }
    if let Some(background) = background {
        let _ = background.await;
    }
    Ok(())
}

fn tls_paths(config: &Config) -> (PathBuf, PathBuf) {
    let tls = &config.server.tls;
    (PathBuf::from(&tls.cert_path), PathBuf::from(&tls.key_path))
}

async fn load_tls(config: &Config) -> Result<RustlsConfig> {
    let (cert, key) = tls_paths(config);
    RustlsConfig::from_pem_file(&cert, &key)
        .await
        .with_context(|| {
            format!(
                "server.tls: cannot use certificate {} with key {}",
                cert.display(),
                key.display()
            )
        })
}

/// Serves a changed certificate or key (a renewal, a Kubernetes secret update) from
/// the next handshake on; open connections keep theirs. A pair that does not load
/// (half written, key and certificate not matching yet) is logged once and the old
/// one stays until the files change again.
async fn reload_certificate_on_change(
    tls: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
) {
    let read = || (std::fs::read(&cert).ok(), std::fs::read(&key).ok());
    let mut served = read();
    loop {
        tokio::time::sleep(every).await;
        let now = read();
        if now == served {
            continue;
        }
        match tls.reload_from_pem_file(&cert, &key).await {
            Ok(()) => tracing::info!(cert = %cert.display(), "TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(cert = %cert.display(), error = %e, "TLS certificate changed but does not load; still serving the previous one");
            }
        }
        served = now;
    }
}

/// `server.external_url` as HTTPS, without a trailing slash: where the plain-HTTP
/// listener sends browsers.
fn https_base(config: &Config) -> String {
    let external = config.external_url();
    let rest = external
        .strip_prefix("http://")
        .or_else(|| external.strip_prefix("https://"))
        .unwrap_or(&external);
    format!("https://{rest}")
}

/// The plain-HTTP listener: the registry's notifications are served (so a registry
/// that posts to `http://` needs no CA for Portcullis); everything else is a
/// permanent redirect to the same path and query over HTTPS (308 keeps the method).
async fn redirect_to_https(
    base: String,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if req.uri().path() == "/v2/webhooks/events" {
        return next.run(req).await;
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    (
        axum::http::StatusCode::PERMANENT_REDIRECT,
        [(axum::http::header::LOCATION, format!("{base}{path}"))],
    )
        .into_response()
}

/// `portcullis worker`: only the background worker, until SIGTERM (then drain).
pub async fn run_worker(app: App) -> Result<()> {
    listen_for_grant_changes(&app.services);
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
    fn nodes_starting_at_once_share_one_generated_notification_secret() {
        const STARTS: usize = 8;
        let dir = tempfile::tempdir().unwrap();
        // One source for all: every generation would pick a different secret.
        let random = SeededRandom::default();
        let barrier = std::sync::Barrier::new(STARTS);
        let results: Vec<(String, bool)> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..STARTS)
                .map(|_| {
                    scope.spawn(|| {
                        let mut config = config_in(dir.path());
                        barrier.wait();
                        let generated = resolve_notification_secret(&mut config, &random).unwrap();
                        (config.notifications.secret, generated)
                    })
                })
                .collect();
            starts.into_iter().map(|s| s.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|(_, g)| *g).count(), 1, "{results:?}");
        assert!(results.iter().all(|(secret, _)| *secret == results[0].0));
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
