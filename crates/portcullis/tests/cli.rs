//! The binary's command line: every subcommand's happy path and its one-line errors.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;
use common::{env_vars, poll, serve};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn portcullis(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(args)
        .current_dir(dir)
        .env("PORTCULLIS_LOG", "error");
    // The tests' own environment must not leak configuration in.
    for (k, _) in std::env::vars() {
        if k.starts_with("PORTCULLIS_") || k.starts_with("PORTUS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_configuration_stops_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = portcullis(
        dir.path(),
        &["migrate"],
        &[("PORTCULLIS_DELETE_ENABLED", "perhaps")],
    );
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim(),
        "error: config key delete.enabled = \"perhaps\" (from environment PORTCULLIS_DELETE_ENABLED): expected true or false"
    );
    std::fs::write(
        dir.path().join("config.yml"),
        "user_permission:\n  push_images:\n    policy: everyone\n",
    )
    .unwrap();
    let o = portcullis(dir.path(), &["migrate"], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("user_permission.push_images.policy = \"everyone\" (from file config.yml)"),
        "{err}"
    );
    let o = portcullis(dir.path(), &["--config", "missing.yml", "migrate"], &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).starts_with("error: cannot read config file missing.yml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn config_show_masks_secrets_and_names_sources() {
    let dir = tempfile::tempdir().unwrap();
    let o = portcullis(
        dir.path(),
        &["config", "show"],
        &[
            ("PORTUS_NOTIFICATIONS_SECRET", "hunter2"),
            ("PORTCULLIS_DATABASE_URL", "postgres://app:pw@db/x"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("hunter2") && !out.contains(":pw@"), "{out}");
    assert!(out.contains("postgres://app:********@db/x"));
    assert!(
        out.contains("notifications.secret: environment PORTUS_NOTIFICATIONS_SECRET"),
        "{out}"
    );
}

#[test]
fn migrate_keys_users_and_registry_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = [
        ("PORTCULLIS_MACHINE_FQDN_VALUE", "portcullis.example.com"),
        ("PORTCULLIS_NOTIFICATIONS_SECRET", "s3cret"),
    ];
    let o = portcullis(d, &["migrate"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        d.join("data/portcullis.db").exists(),
        "SQLite in the data folder by default"
    );

    let o = portcullis(d, &["keys", "generate", "--algorithm", "RS256"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("generated RS256 key"),
        "{}",
        stdout(&o)
    );
    let o = portcullis(d, &["keys", "generate"], &env);
    assert!(
        !o.status.success(),
        "existing keys are not overwritten without --force"
    );
    assert!(stderr(&o).contains("--force"));
    let o = portcullis(
        d,
        &["keys", "generate", "--force", "--algorithm", "HS256"],
        &env,
    );
    assert!(
        stderr(&o).contains("--algorithm \"HS256\""),
        "{}",
        stderr(&o)
    );
    let o = portcullis(d, &["keys", "generate", "--force"], &env);
    assert!(
        stdout(&o).starts_with("generated ES256 key"),
        "{}",
        stdout(&o)
    );

    let o = portcullis(
        d,
        &[
            "registry-config",
            "--registry",
            "registry.example.com:5000",
            "--portcullis-url",
            "https://auth.example.com/",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let yaml: serde_json::Value = serde_norway::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        yaml["auth"]["token"]["realm"],
        "https://auth.example.com/v2/token"
    );
    assert_eq!(
        yaml["auth"]["token"]["service"],
        "registry.example.com:5000"
    );
    assert_eq!(yaml["auth"]["token"]["issuer"], "portcullis.example.com");
    let bundle = yaml["auth"]["token"]["rootcertbundle"].as_str().unwrap();
    assert!(
        Path::new(bundle).is_absolute()
            && std::fs::read_to_string(bundle)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
    );
    let endpoint = &yaml["notifications"]["endpoints"][0];
    assert_eq!(
        endpoint["url"],
        "https://auth.example.com/v2/webhooks/events"
    );
    assert_eq!(endpoint["headers"]["Authorization"][0], "Bearer s3cret");
    assert!(
        !d.join("data/notifications.secret").exists(),
        "a configured notification secret wins; nothing is generated"
    );
    assert_eq!(yaml["http"]["addr"], "0.0.0.0:5000");
    let o = portcullis(d, &["registry-config", "--registry", "nohost"], &env);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim(),
        "error: --registry \"nohost\": expected host:port"
    );

    let pwfile = d.join("pw");
    std::fs::write(&pwfile, "a-good-password\n").unwrap();
    let pw = pwfile.to_str().unwrap();
    let o = portcullis(
        d,
        &[
            "admin",
            "create-user",
            "--username",
            "alice",
            "--email",
            "alice@example.com",
            "--password-file",
            pw,
        ],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("created user alice"));
    let o = portcullis(
        d,
        &[
            "admin",
            "create-user",
            "--username",
            "alice",
            "--email",
            "a2@example.com",
            "--password-file",
            pw,
        ],
        &env,
    );
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim(), "error: username has already been taken");
    let o = portcullis(
        d,
        &[
            "admin",
            "create-user",
            "--username",
            "bob",
            "--email",
            "bob@example.com",
        ],
        &env,
    );
    assert!(
        stderr(&o).contains("--password or --password-file is required"),
        "{}",
        stderr(&o)
    );
    let o = portcullis(
        d,
        &[
            "admin",
            "create-user",
            "--username",
            "ci",
            "--email",
            "ci@example.com",
            "--bot",
        ],
        &env,
    );
    assert!(
        stdout(&o).contains("application token: pcat_"),
        "{}",
        stdout(&o)
    );
    let o = portcullis(d, &["admin", "make-admin", "alice"], &env);
    assert_eq!(stdout(&o).trim(), "alice is now an admin");
    let o = portcullis(d, &["admin", "make-admin", "nobody"], &env);
    assert_eq!(stderr(&o).trim(), "error: User not found");
    let o = portcullis(
        d,
        &[
            "admin",
            "create-registry",
            "--name",
            "r",
            "--hostname",
            "registry.test:5000",
            "--force",
        ],
        &env,
    );
    assert!(
        stdout(&o).starts_with("created registry r (registry.test:5000)"),
        "{}",
        stderr(&o)
    );
}

/// The `Authorization` header of the notification endpoint `registry-config` prints.
fn printed_notification_header(dir: &Path, env: &[(&str, &str)]) -> String {
    let o = portcullis(
        dir,
        &["registry-config", "--registry", "registry.example.com:5000"],
        env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let yaml: serde_json::Value = serde_norway::from_str(&stdout(&o)).unwrap();
    yaml["notifications"]["endpoints"][0]["headers"]["Authorization"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The generated secret file's content (without its newline), checking it is private.
fn generated_secret(dir: &Path) -> String {
    let path = dir.join("data/notifications.secret");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{} is private", path.display());
    let text = std::fs::read_to_string(&path).unwrap();
    let secret = text.trim_end().to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url: {secret:?}");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{secret:?}"
    );
    secret
}

/// Starts `serve` in `dir` and returns the statuses of notification posts without a
/// secret, with a wrong one, and with `secret`; stops it again.
async fn notification_statuses(dir: &Path, env: &[(&str, &str)], secret: &str) -> [u16; 3] {
    let mut vars: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.insert("PORTCULLIS_SERVER_LISTEN".into(), "127.0.0.1:0".into());
    let server = serve(vars, dir).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v2/webhooks/events", server.url);
    let mut statuses = [0; 3];
    for (i, auth) in [
        None,
        Some("Bearer wrong"),
        Some(&*format!("Bearer {secret}")),
    ]
    .into_iter()
    .enumerate()
    {
        let mut request = client
            .post(&url)
            .header(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json",
            )
            .body(r#"{"events":[]}"#);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        statuses[i] = request.send().await.unwrap().status().as_u16();
    }
    let log = server.log();
    assert!(!log.contains(secret), "the secret is never logged: {log}");
    assert!(
        !log.contains("anyone can post"),
        "there is no open notification endpoint any more: {log}"
    );
    server.stop().await;
    statuses
}

#[tokio::test]
async fn notification_secret_is_generated_on_first_serve_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(!d.join("data").exists());
    // The first serve generates the secret (before any other command ran) ...
    let first = {
        let vars = BTreeMap::from([
            (
                "PORTCULLIS_SERVER_LISTEN".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
            ("PORTCULLIS_LOG".to_owned(), "info".to_owned()),
        ]);
        let server = serve(vars, d).await;
        let secret = generated_secret(d);
        let log = server.log();
        assert!(log.contains("notifications.secret"), "{log}");
        assert!(!log.contains(&secret), "the secret is never logged: {log}");
        server.stop().await;
        secret
    };
    // The webhook key is created beside it: 32 bytes, owner-only, kept across starts.
    let key_path = d.join("data/webhooks.key");
    let webhook_key = std::fs::read(&key_path).unwrap();
    assert_eq!(webhook_key.len(), 32);
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    // ... registry-config prints that one, and the next serve checks it.
    assert_eq!(
        printed_notification_header(d, &[]),
        format!("Bearer {first}")
    );
    assert_eq!(generated_secret(d), first, "the file is kept");
    assert_eq!(notification_statuses(d, &[], &first).await, [401, 401, 202]);
    assert_eq!(generated_secret(d), first);
    assert_eq!(
        std::fs::read(&key_path).unwrap(),
        webhook_key,
        "the key is kept"
    );
}

#[tokio::test]
async fn notification_secret_is_generated_by_registry_config_and_used_by_serve() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let header = printed_notification_header(d, &[]);
    let secret = generated_secret(d);
    assert_eq!(header, format!("Bearer {secret}"));
    assert_eq!(
        printed_notification_header(d, &[]),
        header,
        "a second run reuses the file"
    );
    assert_eq!(
        notification_statuses(d, &[], &secret).await,
        [401, 401, 202]
    );
    // `config show` does not reveal it either.
    let o = portcullis(d, &["config", "show"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains(&secret), "{}", stdout(&o));
}

#[tokio::test]
async fn configured_notification_secret_wins_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret_file = d.join("notify-secret");
    std::fs::write(&secret_file, "from-a-file\n").unwrap();
    let from_file = [(
        "PORTCULLIS_NOTIFICATIONS_SECRET_FILE",
        secret_file.to_str().unwrap(),
    )];
    assert_eq!(
        printed_notification_header(d, &from_file),
        "Bearer from-a-file"
    );
    assert_eq!(
        notification_statuses(d, &from_file, "from-a-file").await,
        [401, 401, 202]
    );
    std::fs::write(
        d.join("config.yml"),
        "notifications:\n  secret: from-the-config\n",
    )
    .unwrap();
    assert_eq!(
        printed_notification_header(d, &[]),
        "Bearer from-the-config"
    );
    assert_eq!(
        notification_statuses(d, &[], "from-the-config").await,
        [401, 401, 202]
    );
    assert!(d.join("data").exists(), "serve ran in this folder");
    assert!(!d.join("data/notifications.secret").exists());
}

#[tokio::test]
async fn health_exits_zero_only_when_the_server_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let vars = env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0"),
        ("PORTCULLIS_DATA_DIR", data.as_str()),
        ("PORTCULLIS_LOG", "error"),
    ]);
    let server = serve(vars, dir.path()).await;
    let o = portcullis(dir.path(), &["health", "--url", &server.url], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "ready");
    // Without --url it asks this node's server.listen, not the external URL.
    let listen = server
        .url
        .trim_start_matches("http://")
        .replace("127.0.0.1", "0.0.0.0");
    let o = portcullis(
        dir.path(),
        &["health"],
        &[
            ("PORTCULLIS_SERVER_LISTEN", listen.as_str()),
            ("PORTCULLIS_SERVER_EXTERNAL_URL", "http://192.0.2.1:9"),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    drop(server);
    // Nothing listens: one line naming the probe.
    let port = portcullis_testkit::registry::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let o = portcullis(dir.path(), &["health", "--url", &url], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{url}/readyz did not answer")),
        "{err}"
    );
}

#[test]
fn an_unreachable_database_is_one_line_naming_it_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = portcullis_testkit::registry::free_port().unwrap();
    let url = format!("postgres://portcullis:s3cret@127.0.0.1:{port}/portcullis");
    for command in ["migrate", "serve", "worker"] {
        let o = portcullis(
            dir.path(),
            &[command],
            &[
                ("PORTCULLIS_DATABASE_URL", &url),
                ("PORTCULLIS_DATABASE_WAIT_SECONDS", "0"),
            ],
        );
        assert!(!o.status.success(), "{command}");
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{command}: {err}");
        assert!(
            err.contains(&format!("database postgres://portcullis:********@127.0.0.1:{port}/portcullis is not reachable (waited 0s")),
            "{command}: {err}"
        );
        assert!(!err.contains("s3cret"), "{command}: {err}");
    }
}

/// `migrate` started while the database refuses connections keeps trying (every 5 s,
/// up to `database.wait_seconds`) and succeeds once it answers.
#[tokio::test]
async fn migrate_waits_for_the_database() {
    let db = portcullis_testkit::postgres::test_database().await.unwrap();
    let proxy = portcullis_testkit::proxy::TcpProxy::bind().await.unwrap();
    let (upstream, url) = portcullis_testkit::proxy::through_proxy(&db.url, &proxy.addr);
    proxy.set_upstream(&upstream);
    proxy.cut();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.arg("migrate")
        .current_dir(dir.path())
        .env("PORTCULLIS_LOG", "error")
        .env("PORTCULLIS_DATABASE_URL", &url)
        .env("PORTCULLIS_DATABASE_WAIT_SECONDS", "60")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    // Restored once the first attempt has been refused.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.accepted() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "migrate never tried the database"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    proxy.restore();
    let o = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("migrate finished")
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("is up to date"));
}

/// Of two workers on one PostgreSQL, one leads the periodic scheduler (an advisory
/// lock) and the other says it follows; killed, the leader's lock goes with its
/// connection and the other takes over.
#[tokio::test]
async fn one_worker_leads_the_scheduler_and_another_takes_over_when_it_is_killed() {
    const LEADS: &str = "leading the periodic scheduler";
    const FOLLOWS: &str = "another worker leads the periodic scheduler";
    let db = portcullis_testkit::postgres::test_database().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let vars = env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0"),
        ("PORTCULLIS_DATA_DIR", &data),
        ("PORTCULLIS_DATABASE_URL", &db.url),
        ("PORTCULLIS_BACKGROUND_EMBEDDED", "false"),
        ("PORTCULLIS_BACKGROUND_SYNC_ENABLED", "false"),
        ("PORTCULLIS_LOG", "warn,portcullis_worker=info"),
    ]);
    // The server migrates the database; the workers start on a ready schema.
    let server = serve(vars, dir.path()).await;
    let mut workers: Vec<_> = (1..=2)
        .map(|n| server.spawn(["worker"], &format!("worker-{n}")).unwrap())
        .collect();
    let leader = poll!(
        "one worker leads, the other follows",
        Duration::from_secs(30),
        {
            let logs: Vec<String> = workers.iter().map(|w| w.log()).collect();
            let leading: Vec<usize> = (0..2).filter(|&i| logs[i].contains(LEADS)).collect();
            let found = match leading[..] {
                [i] if logs[1 - i].contains(FOLLOWS) => Some(i),
                _ => None,
            };
            (found, format!("{logs:#?}"))
        }
    );
    assert!(
        !workers[leader].log().contains(FOLLOWS),
        "the leader led from its first tick"
    );
    let follower = 1 - leader;
    workers[leader].kill().await.unwrap();
    poll!("the other worker takes over", Duration::from_secs(30), {
        let log = workers[follower].log();
        (log.contains(LEADS).then_some(()), log)
    });
}

#[tokio::test]
async fn tls_listener_with_hsts_request_ids_json_logs_and_the_redirecting_http_port() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, cert) = portcullis_registry::keys::SigningKey::generate_pem(
        portcullis_registry::keys::Algorithm::Es256,
        "localhost",
        1_700_000_000,
    )
    .unwrap();
    std::fs::write(d.join("tls.key"), key).unwrap();
    std::fs::write(d.join("tls.crt"), cert).unwrap();
    let redirect_port = portcullis_testkit::registry::free_port().unwrap();
    let data = d.join("data").display().to_string();
    let (cert_path, key_path) = (
        d.join("tls.crt").display().to_string(),
        d.join("tls.key").display().to_string(),
    );
    let redirect = format!("127.0.0.1:{redirect_port}");
    let vars = env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0"),
        (
            "PORTCULLIS_SERVER_EXTERNAL_URL",
            "https://portcullis.example.com",
        ),
        ("PORTCULLIS_SERVER_TLS_CERT_PATH", cert_path.as_str()),
        ("PORTCULLIS_SERVER_TLS_KEY_PATH", key_path.as_str()),
        ("PORTCULLIS_SERVER_HTTP_REDIRECT_LISTEN", redirect.as_str()),
        ("PORTCULLIS_DATA_DIR", data.as_str()),
        ("PORTCULLIS_LOG_FORMAT", "json"),
        ("PORTCULLIS_LOG", "info"),
    ]);
    let server = serve(vars, d).await;
    // The certificate is self-signed: this test checks the listener, not the chain.
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let https = format!("https://{}", server.addr);
    let r = client
        .get(format!("{https}/livez"))
        .header("x-request-id", "probe-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    assert_eq!(
        r.headers()["x-request-id"],
        "probe-42",
        "the client's id is kept"
    );
    let r = client.get(format!("{https}/explore")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // Plain HTTP on the TLS port is refused, not served.
    assert!(
        client
            .get(format!("{}/livez", server.url))
            .send()
            .await
            .is_err()
    );

    // The plain-HTTP port: a redirect for everything but the registry's notifications.
    let http = format!("http://{redirect}");
    let r = client
        .get(format!("{http}/namespaces?page=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        "https://portcullis.example.com/namespaces?page=2"
    );
    let r = client
        .post(format!("{http}/v2/webhooks/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "served (the secret is missing), not redirected"
    );
    // `portcullis health` asks this node's own HTTPS listener.
    let listen = server.addr.to_string();
    let o = health_of_own_listener(d, &listen);
    assert!(o.status.success(), "{}", stderr(&o));

    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("portcullis listening"))
        .unwrap_or_else(|| panic!("no start line in\n{log}"));
    let entry: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["fields"]["tls"], true);
}

/// A renewed certificate is served from the next handshake on, without a restart and
/// without dropping an open connection; a pair that does not load is logged and the
/// previous certificate stays.
#[tokio::test]
async fn the_tls_certificate_is_reloaded_when_its_files_change() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pair = |name: &str| {
        portcullis_registry::keys::SigningKey::generate_pem(
            portcullis_registry::keys::Algorithm::Es256,
            name,
            1_700_000_000,
        )
        .unwrap()
    };
    let der = |pem: &str| {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    };
    let (first_key, first_cert) = pair("localhost");
    let (renewed_key, renewed_cert) = pair("renewed.localhost");
    let (key_path, cert_path) = (d.join("tls.key"), d.join("tls.crt"));
    std::fs::write(&key_path, &first_key).unwrap();
    std::fs::write(&cert_path, &first_cert).unwrap();
    let data = d.join("data").display().to_string();
    let (cert, key) = (
        cert_path.display().to_string(),
        key_path.display().to_string(),
    );
    let vars = env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0"),
        ("PORTCULLIS_SERVER_TLS_CERT_PATH", cert.as_str()),
        ("PORTCULLIS_SERVER_TLS_KEY_PATH", key.as_str()),
        ("PORTCULLIS_DATA_DIR", data.as_str()),
        ("PORTCULLIS_LOG", "info"),
    ]);
    let server = serve(vars, d).await;
    let livez = format!("https://{}/livez", server.addr);
    // The certificate a request's connection was set up with.
    let served_by = |client: reqwest::Client| {
        let livez = livez.clone();
        async move {
            let r = client.get(&livez).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|t| t.peer_certificate())
                .map(<[u8]>::to_vec)
                .unwrap()
        }
    };
    let client = |fresh_connections: bool| {
        let b = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .tls_info(true);
        let b = if fresh_connections {
            b.pool_max_idle_per_host(0)
        } else {
            b
        };
        b.build().unwrap()
    };
    let kept_open = client(false);
    assert_eq!(served_by(kept_open.clone()).await, der(&first_cert));

    // A key that does not match the certificate (a renewal half written).
    std::fs::write(&key_path, &renewed_key).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server.log().contains("does not load") {
        assert!(
            std::time::Instant::now() < deadline,
            "the mismatched pair was not noticed:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        served_by(client(true)).await,
        der(&first_cert),
        "the previous pair stays"
    );

    // The renewal completes: new handshakes get the new certificate.
    std::fs::write(&cert_path, &renewed_cert).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while served_by(client(true)).await != der(&renewed_cert) {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate is not served:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(server.log().contains("TLS certificate reloaded"));
    // The connection opened before the change was not dropped: it still answers, on
    // the certificate it was set up with.
    assert_eq!(served_by(kept_open).await, der(&first_cert));
}

/// `portcullis health` without `--url`, configured like the TLS server.
fn health_of_own_listener(dir: &Path, listen: &str) -> Output {
    let key = dir.join("tls.key").display().to_string();
    let cert = dir.join("tls.crt").display().to_string();
    portcullis(
        dir,
        &["health"],
        &[
            ("PORTCULLIS_SERVER_LISTEN", listen),
            ("PORTCULLIS_SERVER_TLS_CERT_PATH", cert.as_str()),
            ("PORTCULLIS_SERVER_TLS_KEY_PATH", key.as_str()),
        ],
    )
}

#[test]
fn portus_background_runs_the_worker_and_a_bad_value_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = portcullis(dir.path(), &["serve"], &[("PORTUS_BACKGROUND", "yes")]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(
        err.trim(),
        "error: PORTUS_BACKGROUND=yes: expected true or false"
    );
    let o = portcullis(dir.path(), &["serve"], &[("PORTUS_DB_HOST", "mariadb")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("PORTUS_DB_ADAPTER=mysql2: Portcullis runs on PostgreSQL or SQLite"),
        "{}",
        stderr(&o)
    );
}
