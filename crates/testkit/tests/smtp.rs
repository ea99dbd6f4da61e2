//! The SMTP test server against a real client: Python's `smtplib`, run as
//! `python3 -c` (a Rust SMTP client is not among the workspace's dependencies).

use portcullis_testkit::smtp::{Mode, SmtpOptions, SmtpServer};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(10);

/// Helpers every client script starts with. `reply(f, ...)` runs an smtplib call
/// and returns `[code, text]` whether it succeeded or raised; `out(value)` prints
/// the script's JSON result.
const PRELUDE: &str = r#"
import base64, email.policy, json, os, smtplib, socket, ssl, sys
from email.message import EmailMessage
HOST = "127.0.0.1"
PORT = int(os.environ["SMTP_PORT"])
CA = os.environ["SMTP_CA"]
def tls(cafile=CA):
    return ssl.create_default_context(cafile=cafile)
def connect(host=HOST, timeout=10):
    return smtplib.SMTP(host, PORT, timeout=timeout)
def connect_tls(context=None):
    return smtplib.SMTP_SSL(HOST, PORT, timeout=10, context=context or tls())
def reply(fn, *args, **kwargs):
    try:
        r = fn(*args, **kwargs)
    except smtplib.SMTPResponseException as e:
        return [e.smtp_code, e.smtp_error.decode(errors="replace")]
    if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], int):
        return [r[0], r[1].decode(errors="replace") if isinstance(r[1], bytes) else str(r[1])]
    return [250, json.dumps(r)]
def message(subject="Grüße aus Portcullis", body="Hallö Welt, das ist ein längerer Text.\n", to="Dev <dev@example.org>"):
    m = EmailMessage()
    m["From"] = "Portcullis <portus@example.org>"
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body, cte="quoted-printable")
    return m
def send(s, sender="portus@example.org", rcpts=("dev@example.org",), msg=None):
    return reply(s.sendmail, sender, list(rcpts), (msg or message()).as_bytes(policy=email.policy.SMTP))
def login(s, mechanism, user, password):
    s.ehlo_or_helo_if_needed()
    s.user, s.password = user, password
    method = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mechanism]
    return reply(s.auth, mechanism, method)
def features(s):
    s.ehlo()
    return sorted(s.esmtp_features)
def raw_auth_plain(s, user, password):
    # AUTH PLAIN by hand: smtplib's login() would not send it before STARTTLS.
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    return reply(s.docmd, "AUTH", "PLAIN " + token)
def out(value):
    print(json.dumps(value))
"#;

/// Runs `script` (after [`PRELUDE`]) with the server's Python against `server`;
/// returns what it `out()`ed.
async fn client(server: &SmtpServer, script: &str) -> Value {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(server.python())
            .arg("-c")
            .arg(format!("{PRELUDE}\n{script}"))
            .env("SMTP_PORT", server.port().to_string())
            .env("SMTP_CA", server.ca_cert_path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the smtplib client did not finish within 30 s")
    .expect("running python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client failed ({}):\n{}\n{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("client output {stdout:?}: {e}"))
}

/// Starts a server with `options` and runs one [`client`] `script` against it.
async fn start_and_run(options: SmtpOptions, script: &str) -> (SmtpServer, Value) {
    let server = SmtpServer::start(options)
        .await
        .expect("starting the SMTP server");
    let result = client(&server, script).await;
    (server, result)
}

/// Whether the JSON array `list` (EHLO features, say) holds the string `item`.
fn has(list: &Value, item: &str) -> bool {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .contains(&json!(item))
}

fn code(reply: &Value) -> i64 {
    reply[0]
        .as_i64()
        .unwrap_or_else(|| panic!("no reply code in {reply}"))
}

#[tokio::test]
async fn plain_delivery_records_envelope_headers_and_decoded_body() {
    let started = Instant::now();
    let server = SmtpServer::start(SmtpOptions::plain()).await.unwrap();
    eprintln!("plain SMTP server ready in {:?}", started.elapsed());
    assert_eq!(server.addr(), format!("127.0.0.1:{}", server.port()));
    assert!(server.messages().unwrap().is_empty());

    let result = client(
        &server,
        r#"
s = connect()
f = features(s)
r = send(s, rcpts=("dev@example.org", "ops@example.org"))
s.quit()
out({"features": f, "send": r})
"#,
    )
    .await;
    assert!(
        !has(&result["features"], "starttls") && !has(&result["features"], "auth"),
        "{result}"
    );
    assert_eq!(code(&result["send"]), 250, "{result}");

    let mails = server.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.envelope_from, "portus@example.org");
    assert_eq!(mail.envelope_to, ["dev@example.org", "ops@example.org"]);
    assert!(!mail.tls);
    assert_eq!(mail.tls_version, None);
    assert_eq!(mail.auth_user, None);
    assert_eq!(mail.header("subject"), Some("Grüße aus Portcullis"));
    assert_eq!(mail.header("To"), Some("Dev <dev@example.org>"));
    assert_eq!(
        mail.header("Content-Transfer-Encoding"),
        Some("quoted-printable")
    );
    assert_eq!(mail.body(), "Hallö Welt, das ist ein längerer Text.\n");
    // The raw message is what went over the wire: encoded.
    assert!(mail.raw.contains("Hall=C3=B6 Welt"), "{}", mail.raw);
    assert!(mail.raw.contains("Subject: =?utf-8?"), "{}", mail.raw);
    assert!(server.rejected().unwrap().is_empty());
}

#[tokio::test]
async fn starttls_verified_with_the_test_ca_is_recorded_as_tls() {
    let (server, result) = start_and_run(
        SmtpOptions::starttls(false),
        r#"
res = {}
# The certificate is valid for 127.0.0.1 and localhost, issued by the test CA.
s = connect()
res["before"] = features(s)
res["starttls"] = reply(s.starttls, context=tls())
res["after"] = features(s)
res["send"] = send(s)
s.quit()
s = connect("localhost")
s.starttls(context=tls())
res["send_localhost"] = send(s)
s.quit()
# Without the test CA, the system roots do not trust it.
s = connect()
try:
    s.starttls(context=ssl.create_default_context())
    res["untrusted"] = "accepted"
except ssl.SSLCertVerificationError as e:
    res["untrusted"] = "refused: " + e.verify_message
# Not required: plain delivery still works.
s = connect()
res["send_plain"] = send(s)
s.quit()
out(res)
"#,
    )
    .await;
    assert_eq!(server.options().mode, Mode::StartTls { required: false });
    assert!(
        server
            .ca_cert_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(
        std::fs::read_to_string(server.ca_cert_path()).unwrap(),
        server.ca_cert_pem()
    );
    assert!(has(&result["before"], "starttls"), "{result}");
    assert_eq!(code(&result["starttls"]), 220, "{result}");
    assert!(!has(&result["after"], "starttls"), "{result}");
    assert_eq!(code(&result["send"]), 250, "{result}");
    assert_eq!(code(&result["send_localhost"]), 250, "{result}");
    assert_eq!(code(&result["send_plain"]), 250, "{result}");
    assert!(
        result["untrusted"]
            .as_str()
            .unwrap()
            .starts_with("refused: unable to get local issuer certificate"),
        "{result}"
    );

    let mails = server.wait_for_messages(3, WAIT).await.unwrap();
    let tls: Vec<bool> = mails.iter().map(|m| m.tls).collect();
    assert_eq!(tls, [true, true, false]);
    assert!(
        mails[0]
            .tls_version
            .as_deref()
            .unwrap()
            .starts_with("TLSv1."),
        "{mails:?}"
    );
}

#[tokio::test]
async fn required_starttls_refuses_mail_before_starttls() {
    let (server, result) = start_and_run(
        SmtpOptions::starttls(true).with_auth("portus", "s3cret"),
        r#"
res = {}
s = connect()
res["before"] = features(s)
res["mail"] = reply(s.mail, "portus@example.org")
res["auth_before_tls"] = raw_auth_plain(s, "portus", "s3cret")
s.starttls(context=tls())
res["after"] = features(s)
res["mail_unauthenticated"] = reply(s.mail, "portus@example.org")
res["login"] = login(s, "LOGIN", "portus", "s3cret")
res["send"] = send(s)
s.quit()
out(res)
"#,
    )
    .await;
    assert!(has(&result["before"], "starttls"), "{result}");
    assert!(!has(&result["before"], "auth"), "{result}");
    assert_eq!(code(&result["mail"]), 530, "{result}");
    assert!(
        result["mail"][1].as_str().unwrap().contains("STARTTLS"),
        "{result}"
    );
    assert_eq!(code(&result["auth_before_tls"]), 530, "{result}");
    assert!(has(&result["after"], "auth"), "{result}");
    assert_eq!(code(&result["mail_unauthenticated"]), 530, "{result}");
    assert_eq!(code(&result["login"]), 235, "{result}");
    assert_eq!(code(&result["send"]), 250, "{result}");

    let mails = server.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth_user.as_deref(), Some("portus"));
    assert_eq!(mails[0].auth_mechanism.as_deref(), Some("LOGIN"));
}

#[tokio::test]
async fn optional_starttls_offers_auth_only_after_starttls() {
    let (_server, result) = start_and_run(
        SmtpOptions::starttls(false).with_auth("portus", "s3cret"),
        r#"
res = {}
s = connect()
res["before"] = features(s)
res["auth_before_tls"] = raw_auth_plain(s, "portus", "s3cret")
res["mail"] = reply(s.mail, "portus@example.org")
out(res)
"#,
    )
    .await;
    assert!(!has(&result["before"], "auth"), "{result}");
    assert_eq!(code(&result["auth_before_tls"]), 538, "{result}");
    assert_eq!(code(&result["mail"]), 530, "{result}");
}

#[tokio::test]
async fn implicit_tls_from_the_first_byte() {
    let (server, result) = start_and_run(
        SmtpOptions::implicit_tls().with_auth("portus", "s3cret"),
        r#"
res = {}
s = connect_tls()
res["features"] = features(s)
res["login"] = login(s, "PLAIN", "portus", "s3cret")
res["send"] = send(s)
s.quit()
# A plain-text client gets no greeting it can read.
try:
    connect(timeout=1)
    res["plain"] = "connected"
except (smtplib.SMTPServerDisconnected, socket.timeout, ConnectionError) as e:
    res["plain"] = type(e).__name__
out(res)
"#,
    )
    .await;
    assert!(!has(&result["features"], "starttls"), "{result}");
    assert!(has(&result["features"], "auth"), "{result}");
    assert_eq!(code(&result["login"]), 235, "{result}");
    assert_eq!(code(&result["send"]), 250, "{result}");
    assert_ne!(result["plain"], "connected", "{result}");

    let mails = server.wait_for_messages(1, WAIT).await.unwrap();
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth_user.as_deref(), Some("portus"));
    assert_eq!(mails[0].auth_mechanism.as_deref(), Some("PLAIN"));
}

#[tokio::test]
async fn auth_plain_login_and_cram_md5_check_the_password() {
    let (server, result) = start_and_run(
        SmtpOptions::plain().with_auth("portus", "s3cret"),
        r#"
res = {}
s = connect()
res["features"] = s.ehlo() and s.esmtp_features.get("auth", "").split()
res["unauthenticated"] = send(s)
for mechanism in ["PLAIN", "LOGIN", "CRAM-MD5"]:
    s = connect()
    res["wrong " + mechanism] = login(s, mechanism, "portus", "wrong")
    res["wrong user " + mechanism] = login(s, mechanism, "nobody", "s3cret")
    res["right " + mechanism] = login(s, mechanism, "portus", "s3cret")
    res["send " + mechanism] = send(s)
    s.quit()
out(res)
"#,
    )
    .await;
    assert_eq!(result["features"], json!(["CRAM-MD5", "LOGIN", "PLAIN"]));
    assert_eq!(code(&result["unauthenticated"]), 530, "{result}");
    for mechanism in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        for (attempt, expected) in [("wrong", 535), ("wrong user", 535), ("right", 235)] {
            let key = format!("{attempt} {mechanism}");
            assert_eq!(code(&result[&key]), expected, "{key}: {result}");
        }
        assert_eq!(code(&result[format!("send {mechanism}")]), 250, "{result}");
    }
    let mails = server.wait_for_messages(3, WAIT).await.unwrap();
    let auth: Vec<(Option<&str>, Option<&str>, bool)> = mails
        .iter()
        .map(|m| (m.auth_user.as_deref(), m.auth_mechanism.as_deref(), m.tls))
        .collect();
    assert_eq!(
        auth,
        [
            (Some("portus"), Some("PLAIN"), false),
            (Some("portus"), Some("LOGIN"), false),
            (Some("portus"), Some("CRAM-MD5"), false),
        ]
    );
}

#[tokio::test]
async fn fail_first_answers_451_then_accepts() {
    let (server, result) = start_and_run(
        SmtpOptions::plain().with_fail_first(1),
        r#"
s = connect()
first = send(s, msg=message(subject="try 1"))
second = send(s, msg=message(subject="try 2"))
s.quit()
out([first, second])
"#,
    )
    .await;
    assert_eq!(code(&result[0]), 451, "{result}");
    assert_eq!(code(&result[1]), 250, "{result}");
    let mails = server.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].header("Subject"), Some("try 2"));
    let rejected = server.rejected().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].header("Subject"), Some("try 1"));
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_comes_back_on_the_same_port() {
    /// One message over a fresh connection; its reply.
    const SEND_ONE: &str = "out(send(connect()))";
    let (mut server, first) =
        start_and_run(SmtpOptions::starttls(false).with_fail_first(1), SEND_ONE).await;
    let port = server.port();
    assert_eq!(code(&first), 451, "{first}");
    assert!(server.is_running());

    server.stop().await;
    assert!(!server.is_running());
    let down = client(
        &server,
        r#"
try:
    connect(timeout=5)
    out("connected")
except ConnectionRefusedError:
    out("refused")
"#,
    )
    .await;
    assert_eq!(down, "refused");

    let started = Instant::now();
    server.restart().await.unwrap();
    eprintln!("SMTP server restarted in {:?}", started.elapsed());
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    // Same certificate, and fail_first counts over restarts: no second 451.
    let again = client(
        &server,
        "s = connect(); s.starttls(context=tls()); out(send(s))",
    )
    .await;
    assert_eq!(code(&again), 250, "{again}");
    let mails = server.wait_for_messages(1, WAIT).await.unwrap();
    assert!(mails[0].tls);
    assert_eq!(server.rejected().unwrap().len(), 1);

    // Restarting a running server works as well, and the messages stay.
    server.restart().await.unwrap();
    let third = client(&server, SEND_ONE).await;
    assert_eq!(code(&third), 250, "{third}");
    assert_eq!(server.wait_for_messages(2, WAIT).await.unwrap().len(), 2);
    assert!(server.log().matches("starting the SMTP listener").count() >= 3);
}

#[tokio::test]
async fn wait_for_messages_times_out_with_the_log() {
    let server = SmtpServer::start(SmtpOptions::plain()).await.unwrap();
    let started = Instant::now();
    let err = server
        .wait_for_messages(1, Duration::from_millis(200))
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(err.contains("received 0 of 1 messages"), "{err}");
    assert!(
        err.contains("listening on") || err.contains("mode=plain"),
        "{err}"
    );
}

#[tokio::test]
async fn certificate_names_can_be_chosen() {
    let (_server, result) = start_and_run(
        SmtpOptions::implicit_tls().with_cert_names(&["mail.example.org"]),
        r#"
try:
    connect_tls()
    out("accepted")
except ssl.SSLCertVerificationError as e:
    out(e.verify_message)
"#,
    )
    .await;
    assert!(
        result.as_str().unwrap().contains("IP address mismatch"),
        "{result}"
    );
}
