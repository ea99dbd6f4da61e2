//! Command-line interface.

use crate::app::{self, App};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use portcullis_registry::keys::{Algorithm, SigningKey};
use portcullis_registry::registry_config::{RegistryConfigParams, render};
use portcullis_service::registries::RegistryInput;
use portcullis_service::secrets::{OsRandom, RandomSource};
use portcullis_service::users::UserInput;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Authorization service and inventory for Docker/OCI registries"
)]
pub struct Cli {
    /// Configuration file (default: ./config.yml when present).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (migrates the database and generates keys first when needed).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Run only the background worker (for `background.embedded: false` setups).
    Worker,
    /// Exit 0 when the server answers ready (`GET /readyz`: the database reachable and
    /// migrated); for container health checks and probes, no curl needed.
    Health {
        /// The server's base URL; default: this node's `server.listen` (a wildcard
        /// address as loopback; HTTPS with `server.tls`, certificate not checked).
        #[arg(long)]
        url: Option<String>,
    },
    /// Sync the inventory with every registry's catalog now and print what changed.
    Sync {
        /// `update-delete` (add, update and delete) or `update` (never delete);
        /// default: whether background.sync.strategy deletes.
        #[arg(long)]
        strategy: Option<String>,
        /// Report what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the garbage collector now (delete.garbage_collector.* unless overridden).
    Gc {
        /// Report what would be deleted without deleting anything.
        #[arg(long)]
        dry_run: bool,
        /// Tags pushed and pulled less than this many days ago stay.
        #[arg(long)]
        older_than: Option<i64>,
        /// The newest N tags of each repository stay.
        #[arg(long)]
        keep_latest: Option<usize>,
        /// Only tags whose name matches this regular expression.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print a registry config.yml that uses this Portcullis for auth and notifications.
    RegistryConfig {
        /// The registry's `host:port` as clients reach it; also the token `service`.
        #[arg(long)]
        registry: String,
        /// Address the registry listens on (default: the port of --registry on all interfaces).
        #[arg(long)]
        listen: Option<String>,
        /// Where the registry stores blobs.
        #[arg(long, default_value = "/var/lib/docker-registry")]
        storage_dir: String,
        /// Portcullis's URL as the registry reaches it (default: server.external_url).
        #[arg(long)]
        portcullis_url: Option<String>,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a signing key and self-signed certificate at token.key_path / token.cert_path.
    Generate {
        /// ES256 (default) or RS256.
        #[arg(long)]
        algorithm: Option<String>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a user.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// The password (prefer --password-file: command lines are visible to other users).
        #[arg(long, conflicts_with = "password_file")]
        password: Option<String>,
        /// A file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Create a bot (application tokens only); prints its token.
        #[arg(long, conflicts_with = "admin")]
        bot: bool,
    },
    /// Make an existing user an admin.
    MakeAdmin { username: String },
    /// Register a registry (as the API's POST /api/v1/registries).
    CreateRegistry {
        #[arg(long)]
        name: String,
        /// `host:port` Portcullis uses to reach it; also the token `service`.
        #[arg(long)]
        hostname: String,
        #[arg(long)]
        use_ssl: bool,
        #[arg(long)]
        external_hostname: Option<String>,
        /// Skip the reachability check.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration, secrets masked, and where each value came from.
    Show,
}

fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()?;
    Ok(())
}

/// `PORTUS_BACKGROUND`: `true` or `false` (unset: false).
fn portus_background() -> Result<bool> {
    match std::env::var("PORTUS_BACKGROUND")
        .ok()
        .as_deref()
        .map(str::trim)
    {
        None | Some("" | "false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => bail!("PORTUS_BACKGROUND={other}: expected true or false"),
    }
}

/// `server.listen` as a URL a local client reaches (a wildcard address is loopback).
fn own_listener_url(config: &portcullis_config::Config) -> String {
    let listen = &config.server.listen;
    let (host, port) = listen.rsplit_once(':').unwrap_or((listen, ""));
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        other => other,
    };
    let scheme = if config.server.tls.enabled() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}:{port}")
}

pub async fn run(cli: Cli) -> Result<()> {
    let loaded = app::load_config(cli.config.as_deref())?;
    app::init_logging(loaded.config.log.format);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let config = loaded.config;
    match cli.command {
        // Portus's image ran its background process instead of the server when
        // PORTUS_BACKGROUND was true; a Portus compose file keeps working.
        Command::Serve if portus_background()? => {
            tracing::info!("PORTUS_BACKGROUND=true: running the background worker only");
            app::run_worker(App::start(config).await?).await
        }
        Command::Serve => app::serve(App::start(config).await?).await,
        Command::Worker => app::run_worker(App::start(config).await?).await,
        Command::Health { url } => {
            // This node's own listener unless told otherwise: behind a load balancer
            // `external_url` may answer from another node. Its certificate is not
            // checked then (it may name only the public host); nothing secret is sent.
            let (base, own) = match url {
                Some(url) => (url, false),
                None => (own_listener_url(&config), true),
            };
            let probe = format!("{}/readyz", base.trim_end_matches('/'));
            let answer = reqwest::Client::builder()
                .tls_danger_accept_invalid_certs(own)
                .build()?
                .get(&probe)
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{probe} did not answer: {e}"))?;
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            if status.is_success() {
                out(text.trim())
            } else {
                Err(anyhow::anyhow!("{probe}: {status}: {}", text.trim()))
            }
        }
        Command::Sync { strategy, dry_run } => {
            let delete = match strategy.as_deref() {
                None => config.background.sync.strategy.deletes(),
                Some("update-delete") => true,
                Some("update") => false,
                Some(other) => {
                    bail!("--strategy {other:?}: expected update-delete or update")
                }
            };
            let app = App::start(config).await?;
            sync(&app, delete, dry_run).await
        }
        Command::Gc {
            dry_run,
            older_than,
            keep_latest,
            tag,
        } => {
            let app = App::start(config).await?;
            let mut options = app.services.gc.configured().map_err(app::domain_error)?;
            options.dry_run = dry_run;
            if let Some(days) = older_than {
                if days < 0 {
                    bail!("--older-than {days}: expected 0 or more days");
                }
                options.older_than_days = days;
            }
            if let Some(n) = keep_latest {
                options.keep_latest = n;
            }
            if let Some(re) = tag {
                options.tag =
                    Some(regex::Regex::new(&re).map_err(|e| {
                        anyhow::anyhow!("--tag {re:?}: not a regular expression: {e}")
                    })?);
            }
            gc(&app, &options).await
        }
        Command::Migrate => {
            let store = app::connect(&config).await?;
            store.migrate().await.context("migrating the database")?;
            out(&format!("database {} is up to date", store.backend()))
        }
        Command::Keys {
            command: KeysCommand::Generate { algorithm, force },
        } => {
            let alg = match algorithm.as_deref() {
                Some(a) => Algorithm::parse(a)
                    .with_context(|| format!("--algorithm {a:?}: {}", Algorithm::EXPECTED))?,
                None => config.token.algorithm.unwrap_or(Algorithm::Es256),
            };
            let (key_path, cert_path) = (config.key_path(), config.cert_path());
            if !force && (key_path.exists() || cert_path.exists()) {
                bail!(
                    "{} or {} exists; pass --force to replace it",
                    key_path.display(),
                    cert_path.display()
                );
            }
            for p in [&key_path, &cert_path] {
                if p.exists() {
                    std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
                }
            }
            let (key, _) = SigningKey::load_or_generate(
                &key_path,
                &cert_path,
                Some(alg),
                &config.machine_fqdn.value,
                app::now_unix(),
            )?;
            out(&format!(
                "generated {} key {} and certificate {} (kid {})",
                key.algorithm().as_str(),
                key_path.display(),
                cert_path.display(),
                key.kid(config.token.kid)
            ))
        }
        Command::RegistryConfig {
            registry,
            listen,
            storage_dir,
            portcullis_url,
        } => {
            let port = registry
                .rsplit_once(':')
                .map(|(_, p)| p)
                .filter(|p| p.parse::<u16>().is_ok());
            let Some(port) = port else {
                bail!("--registry {registry:?}: expected host:port");
            };
            // The registry needs the certificate file to exist, so make the keys now;
            // likewise the notification secret, which the server then reads.
            let (_, generated) = app::load_signing_key(&config)?;
            if generated {
                tracing::info!(
                    "generated token signing key {}",
                    config.key_path().display()
                );
            }
            let cert =
                std::fs::canonicalize(config.cert_path()).context("locating token.cert_path")?;
            let mut config = config;
            app::resolve_notification_secret(&mut config, &OsRandom)?;
            let base = portcullis_url.unwrap_or_else(|| config.external_url());
            let base = base.trim_end_matches('/');
            let mut http_secret = [0u8; 24];
            OsRandom.fill(&mut http_secret);
            out(&render(&RegistryConfigParams {
                listen: listen.unwrap_or_else(|| format!("0.0.0.0:{port}")),
                storage_dir,
                realm: format!("{base}/v2/token"),
                service: registry.clone(),
                issuer: config.machine_fqdn.value.clone(),
                rootcertbundle: cert.display().to_string(),
                notification_url: format!("{base}/v2/webhooks/events"),
                notification_secret: Some(config.notifications.secret.clone()),
                http_secret: http_secret.iter().map(|b| format!("{b:02x}")).collect(),
            }))
        }
        Command::Admin { command } => {
            let app = App::start(config).await?;
            admin(&app, command).await
        }
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            let mut text = config.to_masked_yaml();
            text.push_str("# sources:\n");
            for (key, source) in &loaded.sources {
                if source != "default" {
                    text.push_str(&format!("#   {key}: {source}\n"));
                }
            }
            out(&text)
        }
    }
}

/// Progress on stderr when it is a terminal: `\r`-rewritten, one line.
fn progress(what: &'static str) -> impl Fn(usize, usize) + Send + Sync {
    let tty = std::io::stderr().is_terminal();
    move |done, total| {
        if tty && (done == total || done % 50 == 0) {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r{what}: {done}/{total} repositories");
            if done == total {
                let _ = writeln!(e);
            }
        }
    }
}

async fn sync(app: &App, delete: bool, dry_run: bool) -> Result<()> {
    let reports = app
        .services
        .sync
        .sync_all(None, delete, dry_run, &progress("reading the catalog"))
        .await
        .map_err(app::domain_error)?;
    let verb = if dry_run { "would " } else { "" };
    let mut text = String::new();
    for r in &reports {
        for (label, list) in [
            ("add", &r.added),
            ("update", &r.updated),
            ("delete", &r.deleted),
        ] {
            for item in list.iter() {
                text.push_str(&format!("{verb}{label} {}: {item}\n", r.registry));
            }
        }
        for item in &r.skipped {
            text.push_str(&format!(
                "skipped {}: {item} (tags unreadable or changed during the sync)\n",
                r.registry
            ));
        }
        text.push_str(&format!(
            "{}: {} repositories in the catalog; {verb}added {}, {verb}updated {}, {verb}deleted {}, skipped {}\n",
            r.registry,
            r.repositories,
            r.added.len(),
            r.updated.len(),
            r.deleted.len(),
            r.skipped.len()
        ));
    }
    if reports.is_empty() {
        text.push_str("no registry is configured: nothing to sync\n");
    }
    out(text.trim_end())
}

async fn gc(app: &App, options: &portcullis_service::gc::GcOptions) -> Result<()> {
    let deletions = app
        .services
        .gc
        .collect(None, options)
        .await
        .map_err(app::domain_error)?;
    let verb = if options.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut text = String::new();
    let mut failed = 0;
    for d in &deletions {
        match &d.error {
            None => text.push_str(&format!(
                "{verb} {}@{} (tags {})\n",
                d.repository,
                d.digest,
                d.tags.join(", ")
            )),
            Some(e) => {
                failed += 1;
                text.push_str(&format!("failed {}@{}: {e}\n", d.repository, d.digest));
            }
        }
    }
    let tags: usize = deletions
        .iter()
        .filter(|d| d.error.is_none())
        .map(|d| d.tags.len())
        .sum();
    text.push_str(&format!(
        "garbage collector: {verb} {} manifests ({tags} tags), {failed} failed (older than {} days, keeping the newest {} per repository); blob space is reclaimed by the registry's own garbage-collect",
        deletions.len() - failed,
        options.older_than_days,
        options.keep_latest
    ));
    out(&text)?;
    if failed > 0 {
        bail!("{failed} manifests could not be deleted");
    }
    Ok(())
}

async fn admin(app: &App, command: AdminCommand) -> Result<()> {
    let s = &app.services;
    match command {
        AdminCommand::CreateUser {
            username,
            email,
            password,
            password_file,
            admin,
            bot,
        } => {
            let password = match (password, password_file) {
                (Some(p), _) => Some(p),
                (None, Some(f)) => {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("--password-file {}", f.display()))?;
                    Some(text.lines().next().unwrap_or_default().to_owned())
                }
                (None, None) if bot => None,
                (None, None) => {
                    bail!("--password or --password-file is required (except for --bot)")
                }
            };
            let input = UserInput {
                username,
                email,
                password,
                display_name: None,
                bot,
                admin,
            };
            let (user, token) = s
                .users
                .create_user_unchecked(&input)
                .await
                .map_err(app::domain_error)?;
            if let Some(token) = token {
                out(&format!(
                    "created bot {} (id {}); application token: {}",
                    user.username, user.id, token.plain
                ))
            } else {
                out(&format!(
                    "created {} {} (id {})",
                    if user.admin { "admin" } else { "user" },
                    user.username,
                    user.id
                ))
            }
        }
        AdminCommand::MakeAdmin { username } => {
            let user = s
                .users
                .make_admin(&username)
                .await
                .map_err(app::domain_error)?;
            out(&format!("{} is now an admin", user.username))
        }
        AdminCommand::CreateRegistry {
            name,
            hostname,
            use_ssl,
            external_hostname,
            force,
        } => {
            let r = s
                .registries
                .create_registry_unchecked(
                    RegistryInput {
                        name,
                        hostname,
                        use_ssl,
                        external_hostname,
                    },
                    force,
                )
                .await
                .map_err(app::domain_error)?;
            out(&format!(
                "created registry {} ({}) with id {}",
                r.name, r.hostname, r.id
            ))
        }
    }
}
