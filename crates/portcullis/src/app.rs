//! Start-up wiring: configuration, logging, database, keys, services, listener.

use anyhow::{Context, Result, anyhow};
use portcullis_config::{Config, Loaded};
use portcullis_domain::time::Clock;
use portcullis_registry::jwt::TokenSigner;
use portcullis_registry::keys::SigningKey;
use portcullis_service::Services;
use portcullis_service::clock::SystemClock;
use portcullis_service::passwords::PasswordHasher;
use portcullis_service::secrets::OsRandom;
use portcullis_storage::Store;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

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
    Store::connect(&url).await.with_context(|| {
        format!(
            "connecting to database {}",
            portcullis_config::mask_url_password(&url)
        )
    })
}

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

pub struct App {
    pub services: Services,
}

impl App {
    /// Connects and migrates the database, loads keys and builds the services.
    pub async fn start(config: Config) -> Result<Self> {
        let store = connect(&config).await?;
        store.migrate().await.context("migrating the database")?;
        let (key, generated) = load_signing_key(&config)?;
        if generated {
            tracing::info!(key = %config.key_path().display(), cert = %config.cert_path().display(), "generated a token signing key");
        }
        let signer = TokenSigner::new(&key, config.token.kid)?;
        if config.notifications.secret.is_empty() {
            tracing::warn!("notifications.secret is empty: anyone can post registry notifications");
        }
        let hasher = PasswordHasher::new(
            usize::try_from(config.security_policy.max_concurrent_password_checks).unwrap_or(1),
        );
        let services = Services::new(
            store,
            config,
            Arc::new(SystemClock),
            Arc::new(OsRandom),
            signer,
            hasher,
        );
        Ok(Self { services })
    }
}

pub async fn serve(app: App) -> Result<()> {
    let listen = app.services.config.server.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("server.listen {listen}: cannot bind"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "portcullis listening");
    // A machine-readable line for scripts and tests that bind port 0.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    drop(stdout);
    let router = portcullis_http::router(app.services);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
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
