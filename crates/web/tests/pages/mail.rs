//! "Forgot your password?" with a real SMTP listener (`portcullis_testkit::smtp`):
//! the form queues a job and answers alike for every address; the worker mails the
//! link (plain SMTP, STARTTLS with authentication), retries a temporary failure with
//! the same link, and the link works once. Bots, disabled accounts and unknown
//! addresses get no mail; requests are rate limited per client.

use crate::browser::{Browser, web_app};
use crate::common::{Backend, TestApp};
use axum::http::StatusCode;
use portcullis_config::{Config, SmtpAuthentication};
use portcullis_service::JobOutcome;
use portcullis_service::background::kinds;
use portcullis_testkit::smtp::{ReceivedMail, SmtpOptions, SmtpServer};
use portcullis_worker::Worker;
use serde_json::json;

async fn smtp(options: SmtpOptions) -> SmtpServer {
    SmtpServer::start(options)
        .await
        .unwrap_or_else(|e| panic!("start the SMTP listener: {e:#} (see scripts/test.sh)"))
}

fn use_smtp(c: &mut Config, server: &SmtpServer) {
    c.server.external_url = "https://portcullis.test".into();
    c.email.from = "registry@example.com".into();
    c.email.name = "Registry".into();
    let s = &mut c.email.smtp;
    s.enabled = true;
    s.address = server.host().into();
    s.port = i64::from(server.port());
    s.domain = "portcullis.test".into();
}

/// [`use_smtp`] with STARTTLS (trusting the listener's CA) and the user `mailer`.
fn use_starttls(c: &mut Config, server: &SmtpServer, password: &str) {
    use_smtp(c, server);
    let s = &mut c.email.smtp;
    s.enable_starttls_auto = true;
    s.ca_file = server.ca_cert_path().display().to_string();
    s.user_name = "mailer".into();
    s.password = password.into();
}

/// Runs the due jobs; the outcomes by kind.
async fn work(app: &TestApp) -> Vec<(String, JobOutcome)> {
    let worker = Worker::new(app.services.clone(), "test", 1);
    let ran = worker.drain().await.unwrap();
    ran.into_iter()
        .map(|(job, outcome)| (job.kind, outcome))
        .collect()
}

async fn request_reset(app: &TestApp, email: &str) -> crate::browser::Page {
    let mut visitor = Browser::new(app);
    let form = visitor.get("/users/password/new").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    visitor
        .post("/users/password/new", &[("email", email)])
        .await
}

/// The reset link in a mail, as a path of this app.
fn link_in(mail: &ReceivedMail) -> String {
    let body = mail.body();
    let start = body
        .find("https://portcullis.test/users/password/edit?token=")
        .unwrap_or_else(|| panic!("no reset link in {body}"));
    let link = body[start..].split_whitespace().next().unwrap();
    link.trim_start_matches("https://portcullis.test")
        .to_owned()
}

/// How long a mail may take to show up after the worker sent it.
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

const SENT: &str = "If an account has this address";

#[tokio::test]
async fn a_reset_mail_arrives_and_its_link_works_once() {
    let server = smtp(SmtpOptions::plain()).await;
    let app = web_app(Backend::Sqlite, |c| use_smtp(c, &server)).await;
    let admin = app.bootstrap().await;
    app.create_user(&admin, "bob").await;

    let page = request_reset(&app, "BOB@example.com").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(SENT), "{}", page.body);
    // Nothing was sent on the request path.
    assert!(server.messages().unwrap().is_empty());
    let ran = work(&app).await;
    let kinds_ran: Vec<&str> = ran.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds_ran, [kinds::PASSWORD_RESET_REQUEST, kinds::SEND_MAIL]);
    assert!(ran.iter().all(|(_, o)| *o == JobOutcome::Done), "{ran:?}");

    let mails = server.wait_for_messages(1, WAIT).await.unwrap();
    let mail = &mails[0];
    assert_eq!(mail.envelope_to, ["bob@example.com"]);
    assert_eq!(mail.envelope_from, "registry@example.com");
    assert_eq!(mail.header("From"), Some("Registry <registry@example.com>"));
    assert_eq!(mail.header("Subject"), Some("Reset password instructions"));
    assert_eq!(mail.helo.as_deref(), Some("portcullis.test"));
    assert!(mail.body().contains("Hello bob"), "{}", mail.body());

    // The job table holds the mail sealed: the token is not readable there.
    let path = link_in(mail);
    let token = path.split("token=").nth(1).unwrap();
    let jobs = app
        .get(
            "/api/v1/jobs?per_page=100",
            crate::common::Auth::Portus("admin", &admin),
        )
        .await;
    assert!(!jobs.body.to_string().contains(token), "{:?}", jobs.body);
    assert!(
        !jobs.body.to_string().contains("bob@example.com"),
        "{:?}",
        jobs.body
    );

    let mut visitor = Browser::new(&app);
    assert_eq!(visitor.get(&path).await.status, StatusCode::OK);
    let fields = [
        ("token", token),
        ("password", "mailed-password"),
        ("password_confirmation", "mailed-password"),
    ];
    let done = visitor.post("/users/password/reset", &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let mut bob = Browser::new(&app);
    assert_eq!(
        bob.sign_in("bob", "mailed-password").await.status,
        StatusCode::SEE_OTHER
    );
    // Once.
    let mut again = Browser::new(&app);
    again.get(&path).await;
    let refused = again.post("/users/password/reset", &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn unknown_addresses_bots_and_disabled_accounts_get_no_mail() {
    let server = smtp(SmtpOptions::plain()).await;
    let app = web_app(Backend::Sqlite, |c| use_smtp(c, &server)).await;
    let admin = app.bootstrap().await;
    let auth = crate::common::Auth::Portus("admin", &admin);
    let r = app
        .post(
            "/api/v1/users",
            auth,
            json!({"user": {"username": "ci-bot", "email": "bot@example.com", "bot": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let carol = app.create_user(&admin, "carol").await;
    let r = app
        .put(
            &format!("/api/v1/users/{carol}"),
            auth,
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let mut answers = Vec::new();
    for email in ["nobody@example.com", "bot@example.com", "carol@example.com"] {
        let page = request_reset(&app, email).await;
        answers.push((page.status, page.body.contains(SENT)));
    }
    assert!(
        answers.iter().all(|a| *a == (StatusCode::OK, true)),
        "the same answer for every address: {answers:?}"
    );
    let ran = work(&app).await;
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert!(
        ran.iter()
            .all(|(k, o)| k == kinds::PASSWORD_RESET_REQUEST && *o == JobOutcome::Done),
        "{ran:?}"
    );
    assert!(server.messages().unwrap().is_empty());

    // A bad address is the form again, kept.
    let page = request_reset(&app, "not-an-address").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("value=\"not-an-address\""),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn requests_are_rate_limited_and_an_account_gets_one_mail_at_a_time() {
    let server = smtp(SmtpOptions::plain()).await;
    let app = web_app(Backend::Sqlite, |c| use_smtp(c, &server)).await;
    let admin = app.bootstrap().await;
    app.create_user(&admin, "bob").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(request_reset(&app, "bob@example.com").await.status);
    }
    assert_eq!(&statuses[..5], &[StatusCode::OK; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    work(&app).await;
    assert_eq!(server.wait_for_messages(1, WAIT).await.unwrap().len(), 1);
    // Two minutes later (and a minute for the rate limit), another one goes out.
    app.clock.advance_secs(121);
    request_reset(&app, "bob@example.com").await;
    work(&app).await;
    assert_eq!(server.wait_for_messages(2, WAIT).await.unwrap().len(), 2);
}

#[tokio::test]
async fn starttls_with_authentication_and_a_temporary_failure_retried_with_the_same_link() {
    let server = smtp(
        SmtpOptions::starttls(true)
            .with_auth("mailer", "mail-secret")
            .with_fail_first(1),
    )
    .await;
    let app = web_app(Backend::Sqlite, |c| {
        use_starttls(c, &server, "mail-secret");
        c.email.smtp.authentication = SmtpAuthentication::Plain;
    })
    .await;
    let admin = app.bootstrap().await;
    app.create_user(&admin, "bob").await;
    request_reset(&app, "bob@example.com").await;
    let ran = work(&app).await;
    assert!(
        matches!(&ran[..], [(_, JobOutcome::Done), (k, JobOutcome::Retry(e))] if k == kinds::SEND_MAIL && e.contains("451")),
        "{ran:?}"
    );
    // The queue's backoff, then the same mail again.
    app.clock.advance_secs(600);
    let ran = work(&app).await;
    assert_eq!(ran, [(kinds::SEND_MAIL.to_owned(), JobOutcome::Done)]);
    let mails = server.wait_for_messages(1, WAIT).await.unwrap();
    let mail = &mails[0];
    assert!(mail.tls, "sent after STARTTLS");
    assert_eq!(mail.auth_user.as_deref(), Some("mailer"));
    assert_eq!(mail.auth_mechanism.as_deref(), Some("PLAIN"));
    let mut visitor = Browser::new(&app);
    assert_eq!(visitor.get(&link_in(mail)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_smtp_password_fails_the_mail_for_good() {
    let server = smtp(SmtpOptions::starttls(true).with_auth("mailer", "mail-secret")).await;
    let app = web_app(Backend::Sqlite, |c| use_starttls(c, &server, "wrong")).await;
    let admin = app.bootstrap().await;
    app.create_user(&admin, "bob").await;
    request_reset(&app, "bob@example.com").await;
    let ran = work(&app).await;
    assert!(
        matches!(&ran[1], (k, JobOutcome::Fail(e)) if k == kinds::SEND_MAIL && e.contains("535")),
        "{ran:?}"
    );
    assert!(server.messages().unwrap().is_empty());
}

#[tokio::test]
async fn with_ldap_there_is_no_password_to_reset() {
    // Any directory will do: the pages never reach it.
    let app = web_app(Backend::Sqlite, |c| {
        c.ldap.enabled = true;
        c.ldap.hostname = "127.0.0.1".into();
        c.ldap.port = 1;
        c.ldap.base = "dc=example,dc=org".into();
    })
    .await;
    let mut visitor = Browser::new(&app);
    let sign_in = visitor.get("/users/sign_in").await;
    assert!(
        !sign_in.body.contains("/users/password/new"),
        "{}",
        sign_in.body
    );
    let page = visitor.get("/users/password/new").await;
    assert_eq!(page.status, StatusCode::METHOD_NOT_ALLOWED, "{}", page.body);
    assert!(page.body.contains("LDAP"), "{}", page.body);
}

#[tokio::test]
async fn without_smtp_the_mail_goes_to_the_sendmail_program() {
    // A stand-in for /usr/sbin/sendmail: records its arguments and the message.
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("sendmail");
    let out = dir.path().join("message.txt");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\necho \"$@\" > '{args}'\ncat > '{out}'\n",
            args = dir.path().join("args.txt").display(),
            out = out.display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&program).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&program, permissions).unwrap();
    let location = program.display().to_string();
    let app = web_app(Backend::Sqlite, |c| {
        c.server.external_url = "https://portcullis.test".into();
        c.email.sendmail.location = location;
    })
    .await;
    let admin = app.bootstrap().await;
    app.create_user(&admin, "bob").await;
    request_reset(&app, "bob@example.com").await;
    let ran = work(&app).await;
    assert!(ran.iter().all(|(_, o)| *o == JobOutcome::Done), "{ran:?}");
    let message = std::fs::read_to_string(&out).unwrap();
    assert!(message.contains("To: bob@example.com"), "{message}");
    // The body is quoted-printable: soft line breaks and `=3D` for `=`.
    let message = message
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        message.contains("https://portcullis.test/users/password/edit?token=pcpr_"),
        "{message}"
    );
    let args = std::fs::read_to_string(dir.path().join("args.txt")).unwrap();
    assert!(args.contains("-i"), "{args}");
}
