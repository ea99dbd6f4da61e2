//! Signing in through an LDAP directory (Portus's `ldap.*`), against a real OpenLDAP
//! slapd (`portcullis_testkit::ldap`): `docker login` creates the user with a personal
//! namespace; the lockout, the credential cache and the rate limit hold for directory
//! users too; an outage is a 503 that counts against nobody; bots and local accounts
//! keep their own passwords; an admin cannot create a local account of a directory
//! user's name.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{Auth, Backend, TestApp, access, pw};
use portcullis_config::Config;
use portcullis_testkit::ldap::{
    self as dir, ALICE_PASSWORD, BOB_PASSWORD, FRANK_PASSWORD, Seed, Slapd,
};
use serde_json::json;

const REGISTRY: &str = "registry.test:5000";

async fn slapd() -> Slapd {
    Slapd::start(&Seed::default_directory())
        .await
        .unwrap_or_else(|e| panic!("start slapd: {e:#} (see scripts/test.sh)"))
}

fn use_directory(config: &mut Config, server: &Slapd) {
    let l = &mut config.ldap;
    l.enabled = true;
    l.hostname = server.host().to_owned();
    l.port = i64::from(server.plain_port());
    l.base = dir::BASE_DN.to_owned();
    l.admin_base = dir::ADMINS_BASE.to_owned();
    l.guess_email.enabled = true;
    l.guess_email.attr = "mail".into();
    config.security_policy.lockout_attempts = 2;
}

async fn app_with(server: &Slapd, backend: Backend) -> (TestApp, String) {
    let app = TestApp::on(backend, |c| use_directory(c, server)).await;
    let admin = app.bootstrap().await;
    app.create_registry(&admin, REGISTRY).await;
    (app, admin)
}

/// `GET /v2/token` for a push to `<user>/app`.
async fn login(app: &TestApp, user: &str, password: &str) -> common::Resp {
    app.token(
        &format!("service={REGISTRY}&scope=repository:{user}/app:pull,push"),
        Auth::Basic(user, password),
    )
    .await
}

/// The users called `name` in the admin's listing.
async fn users_named(app: &TestApp, admin: &str, name: &str) -> Vec<serde_json::Value> {
    let r = app
        .get("/api/v1/users?all=true", Auth::Portus("admin", admin))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let all = r.body.as_array().unwrap().iter();
    all.filter(|u| u["username"] == name).cloned().collect()
}

/// The status [`login`] gets.
async fn status(app: &TestApp, user: &str, password: &str) -> StatusCode {
    login(app, user, password).await.status
}

async fn user_json(app: &TestApp, admin: &str, name: &str) -> serde_json::Value {
    let mut found = users_named(app, admin, name).await;
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    found.remove(0)
}

#[tokio::test]
async fn docker_login_creates_the_directory_user_with_a_personal_namespace() {
    let server = slapd().await;
    let (app, admin) = app_with(&server, Backend::Sqlite).await;
    let r = login(&app, "alice", ALICE_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        access(&r),
        json!([{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}])
    );
    let alice = user_json(&app, &admin, "alice").await;
    assert_eq!(
        alice["email"], "alice@example.org",
        "from the mail attribute"
    );
    assert_eq!(alice["admin"], false);
    // Found under ldap.admin_base: an admin from the first sign-in.
    assert_eq!(status(&app, "frank", FRANK_PASSWORD).await, StatusCode::OK);
    assert_eq!(user_json(&app, &admin, "frank").await["admin"], true);
    // Accounts come from the directory: no sign-up.
    let eve = portcullis_service::users::UserInput {
        username: "eve".into(),
        email: "eve@example.com".into(),
        password: Some("evepassword".into()),
        display_name: None,
        bot: false,
        admin: false,
    };
    let refused = app.services.users.sign_up(&eve).await.unwrap_err();
    assert!(refused.to_string().contains("LDAP"), "{refused}");
}

#[tokio::test]
async fn first_sign_ins_at_once_make_one_account_on_both_databases() {
    let server = slapd().await;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (app, admin) = app_with(&server, backend).await;
        let query = format!("service={REGISTRY}&scope=repository:bob/app:pull,push");
        let requests = (0..8)
            .map(|_| {
                common::request(
                    axum::http::Method::GET,
                    &format!("/v2/token?{query}"),
                    Auth::Basic("bob", BOB_PASSWORD),
                    None,
                )
            })
            .collect();
        let answers = app.concurrently(requests).await;
        assert!(
            answers.iter().all(|r| r.status == StatusCode::OK),
            "{backend:?}"
        );
        assert_eq!(
            users_named(&app, &admin, "bob").await.len(),
            1,
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn an_outage_is_503_for_uncached_users_and_never_a_lockout() {
    let mut server = slapd().await;
    let (app, _admin) = app_with(&server, Backend::Sqlite).await;
    assert_eq!(status(&app, "alice", ALICE_PASSWORD).await, StatusCode::OK);
    assert_eq!(status(&app, "bob", BOB_PASSWORD).await, StatusCode::OK);
    // A wrong password counts: lockout_attempts is 2.
    assert_eq!(status(&app, "bob", "wrong").await, StatusCode::UNAUTHORIZED);
    server.stop().await;
    // alice's verified password is cached: she keeps pulling while the directory is down.
    assert_eq!(status(&app, "alice", ALICE_PASSWORD).await, StatusCode::OK);
    // bob tries other passwords (not cached): the directory cannot say, so 503, three
    // times, none of them counted.
    for _ in 0..3 {
        let r = login(&app, "bob", "another").await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
        assert!(
            !r.body.to_string().contains("127.0.0.1"),
            "no internals: {:?}",
            r.body
        );
    }
    // A user nobody knows yet is the directory's to decide: 503 too.
    assert_eq!(
        status(&app, "carol", dir::CAROL_PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The health check says so (anonymously: no address).
    let health = app.get("/api/v1/health", Auth::None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        health.body["ldap"],
        json!({"msg": "LDAP server is not reachable", "success": false})
    );
    server.restart().await.unwrap();
    app.clock
        .advance_secs(portcullis_service::health::PROBE_CACHE_SECS);
    let health = app.get("/api/v1/health", Auth::None).await;
    assert_eq!(
        health.body["ldap"],
        json!({"msg": "LDAP server is reachable", "success": true})
    );
    // Not locked: one failure before the outage, none during it.
    assert_eq!(status(&app, "bob", BOB_PASSWORD).await, StatusCode::OK);
    // The count still works: two wrong passwords lock bob.
    assert_eq!(status(&app, "bob", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&app, "bob", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(&app, "bob", BOB_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "locked"
    );
}

#[tokio::test]
async fn local_accounts_and_bots_keep_their_own_passwords() {
    let server = slapd().await;
    let (app, admin) = app_with(&server, Backend::Sqlite).await;
    // A local user made before the directory was turned on (an admin cannot make one
    // now under a directory name, see below): the local password still works.
    app.create_user(&admin, "zoe").await;
    assert_eq!(status(&app, "zoe", &pw("zoe")).await, StatusCode::OK);
    assert_eq!(status(&app, "zoe", "wrong").await, StatusCode::UNAUTHORIZED);
    // The bootstrap admin is local too.
    assert_eq!(status(&app, "admin", "adminpass1").await, StatusCode::OK);
    // A directory name is refused for a new local account.
    let r = app
        .post(
            "/api/v1/users",
            Auth::Portus("admin", &admin),
            json!({"user": {"username": "carol", "email": "c@example.com", "password": "carolpassword"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(r.body.to_string().contains("LDAP"), "{:?}", r.body);
    // A bot never signs in with a password, directory or not.
    let r = app
        .post(
            "/api/v1/users",
            Auth::Portus("admin", &admin),
            json!({"user": {"username": "ci-bot", "email": "ci-bot@example.com", "bot": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        status(&app, "ci-bot", "anything").await,
        StatusCode::UNAUTHORIZED
    );
}
