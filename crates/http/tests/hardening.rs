//! The hardening issue, bug by bug: what an attacker or a race could do with the
//! foundation, each proven impossible here. Concurrency tests fire real concurrent
//! requests at the in-process router on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use portcullis_storage::{NewUser, PageRequest, UserUpdate};
use serde_json::{Value, json};

/// `mod <name> { sqlite, postgres }` for a test taking the backend.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    )*};
}

/// Mints an application token for `user_id` as `auth`; returns (id, plain token).
async fn mint(app: &TestApp, auth: Auth<'_>, user_id: i64, body: Value) -> (i64, String) {
    let r = app
        .post(
            &format!("/api/v1/users/{user_id}/application_tokens"),
            auth,
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["id"].as_i64().unwrap(),
        r.body["plain_token"].as_str().unwrap().to_owned(),
    )
}

fn message(r: &Resp) -> String {
    r.body["message"].to_string()
}

fn assert_read_only_refusal(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {:?}", r.body);
    assert!(message(r).contains("read-only"), "{what}: {:?}", r.body);
}

// ---- 1. A pull-only application token is read-only everywhere ----

#[tokio::test]
async fn pull_only_tokens_cannot_write_anything() {
    let app = TestApp::new().await;
    let (admin_token, team) = team_fixture(&app).await;
    let alice_pw = pw("alice");
    let (_, alice_ro) = mint(
        &app,
        Auth::Basic("alice", &alice_pw),
        2,
        json!({"application": "ro", "pull_only": true}),
    )
    .await;
    let (_, admin_ro) = mint(
        &app,
        Auth::Portus("admin", &admin_token),
        1,
        json!({"application": "ro", "pull_only": true}),
    )
    .await;
    let ns = namespace_id(&app, Auth::Basic("alice", &alice_pw), "devs").await;

    // The three reported exploits, with both ways of presenting the token.
    for auth in [Auth::Bearer(&alice_ro), Auth::Portus("alice", &alice_ro)] {
        let r = app
            .post(
                "/api/v1/users/2/application_tokens",
                auth,
                json!({"application": "full"}),
            )
            .await;
        assert_read_only_refusal(&r, "mint a full token");
        let r = app
            .post("/api/v1/teams", auth, json!({"name": "mine"}))
            .await;
        assert_read_only_refusal(&r, "create a team");
        let r = app
            .put(
                &format!("/api/v1/namespaces/{ns}"),
                auth,
                json!({"namespace": {"visibility": "public"}}),
            )
            .await;
        assert_read_only_refusal(&r, "publish a private namespace");
    }

    // Every write the API has, found in the OpenAPI document generated from the router,
    // is refused for a user's and for an admin's pull-only token.
    let doc = serde_json::to_value(portcullis_http::openapi()).unwrap();
    let mut writes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_none() || path == "/api/v1/users/bootstrap" {
                continue;
            }
            let uri = path
                .replace("{member_id}", "2")
                .replace("{id}", &team.to_string());
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for (who, token) in [("alice", alice_ro.as_str()), ("admin", admin_ro.as_str())] {
                let r = app
                    .call(
                        method.clone(),
                        &uri,
                        Auth::Portus(who, token),
                        Some(json!({})),
                    )
                    .await;
                assert_read_only_refusal(&r, &format!("{who}: {method} {uri}"));
            }
            writes += 1;
        }
    }
    assert!(writes >= 15, "found only {writes} write routes");

    // Nothing was written: alice still has exactly her one token, the namespace is private.
    let r = app
        .get(
            "/api/v1/users/2/application_tokens",
            Auth::Bearer(&alice_ro),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "reads stay allowed");
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app
        .get(&format!("/api/v1/namespaces/{ns}"), Auth::Bearer(&alice_ro))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["visibility"], "private");
    let r = app.get("/api/v1/teams", Auth::Bearer(&alice_ro)).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    // An admin's pull-only token still reads admin lists.
    let r = app
        .get("/api/v1/users", Auth::Portus("admin", &admin_ro))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

// ---- 2. Refresh tokens never outlive what minted them ----

async fn refresh_with(app: &TestApp, username: &str, password: &str) -> String {
    let r = post_form(
        app,
        &format!("grant_type=password&username={username}&password={password}&service=registry.test%3A5000&client_id=docker&access_type=offline"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body["refresh_token"].as_str().unwrap().to_owned()
}

async fn use_refresh(app: &TestApp, refresh: &str) -> StatusCode {
    post_form(
        app,
        &format!("grant_type=refresh_token&refresh_token={refresh}&service=registry.test%3A5000&scope=repository%3Adevs%2Fapp%3Apull"),
    )
    .await
    .status
}

#[tokio::test]
async fn refresh_tokens_die_with_their_application_token() {
    let app = TestApp::new().await;
    team_fixture(&app).await;
    let alice_pw = pw("alice");
    let alice = Auth::Basic("alice", &alice_pw);
    let (token_id, token) = mint(&app, alice, 2, json!({"application": "ci"})).await;
    let refresh = refresh_with(&app, "alice", &token).await;
    assert_eq!(use_refresh(&app, &refresh).await, StatusCode::OK);
    let r = app
        .delete(
            &format!("/api/v1/users/application_tokens/{token_id}"),
            alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        use_refresh(&app, &refresh).await,
        StatusCode::BAD_REQUEST,
        "revoking the application token ends its refresh tokens"
    );
    let r = app.get("/api/v1/users/2/refresh_tokens", alice).await;
    assert_eq!(r.body, json!([]), "and deletes them");

    // An expiring application token bounds its refresh tokens' lifetime.
    let expires = T0 + 3600;
    let (_, token) = mint(
        &app,
        alice,
        2,
        json!({"application": "short", "expires_at": expires}),
    )
    .await;
    let refresh = refresh_with(&app, "alice", &token).await;
    app.clock.advance_secs(3599);
    assert_eq!(use_refresh(&app, &refresh).await, StatusCode::OK);
    app.clock.advance_secs(1);
    assert_eq!(use_refresh(&app, &refresh).await, StatusCode::BAD_REQUEST);
    // A password-minted refresh token is not tied to any application token.
    let refresh = refresh_with(&app, "alice", &alice_pw).await;
    assert_eq!(use_refresh(&app, &refresh).await, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_have_a_lifetime_and_an_idle_timeout() {
    let app = TestApp::with(|c| {
        c.security_policy.refresh_token_lifetime_days = 30;
        c.security_policy.refresh_token_idle_days = 7;
    })
    .await;
    team_fixture(&app).await;
    let alice_pw = pw("alice");
    let busy = refresh_with(&app, "alice", &alice_pw).await;
    let idle = refresh_with(&app, "alice", &alice_pw).await;
    const DAY: i64 = 86_400;
    // Used every six days, the busy one keeps working until its 30 days are up.
    for _ in 0..4 {
        app.clock.advance_secs(6 * DAY);
        assert_eq!(use_refresh(&app, &busy).await, StatusCode::OK);
    }
    app.clock.advance_secs(6 * DAY - 1); // day 30 minus a second
    assert_eq!(use_refresh(&app, &busy).await, StatusCode::OK);
    app.clock.advance_secs(1);
    assert_eq!(
        use_refresh(&app, &busy).await,
        StatusCode::BAD_REQUEST,
        "lifetime"
    );
    // The other one was never used after its creation: idle for more than 7 days.
    assert_eq!(
        use_refresh(&app, &idle).await,
        StatusCode::BAD_REQUEST,
        "idle"
    );
    let fresh = refresh_with(&app, "alice", &alice_pw).await;
    app.clock.advance_secs(7 * DAY - 1);
    assert_eq!(use_refresh(&app, &fresh).await, StatusCode::OK);
    app.clock.advance_secs(7 * DAY - 1);
    assert_eq!(
        use_refresh(&app, &fresh).await,
        StatusCode::OK,
        "use restarts the idle clock"
    );
    app.clock.advance_secs(7 * DAY);
    assert_eq!(use_refresh(&app, &fresh).await, StatusCode::BAD_REQUEST);
}

// ---- 3. Check-then-write invariants hold under concurrent requests ----

fn statuses(responses: &[Resp]) -> Vec<u16> {
    let mut s: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    s.sort_unstable();
    s
}

async fn concurrent_bootstraps_create_one_admin(backend: Backend) {
    for round in 0..3 {
        let app = TestApp::on(backend, |_| {}).await;
        let requests = (0..8)
            .map(|i| {
                request(
                    Method::POST,
                    "/api/v1/users/bootstrap",
                    Auth::None,
                    Some(json!({"user": {"username": format!("admin{i}"), "email": format!("a{i}@example.com"), "password": "adminpass1"}})),
                )
            })
            .collect();
        let responses = app.concurrently(requests).await;
        assert_eq!(
            statuses(&responses),
            [201, 400, 400, 400, 400, 400, 400, 400],
            "round {round}"
        );
        let users = app
            .other_node()
            .await
            .list_users(&PageRequest::default())
            .await
            .unwrap();
        assert_eq!(users.total, 1, "round {round}");
        assert!(users.items[0].user.admin);
    }
}

/// The team's members as the admin sees them through the API.
async fn members(app: &TestApp, admin_token: &str, team: i64) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/teams/{team}/members"),
            Auth::Portus("admin", admin_token),
        )
        .await;
    r.body.as_array().unwrap().clone()
}

async fn owners(app: &TestApp, admin_token: &str, team: i64) -> usize {
    let all = members(app, admin_token, team).await;
    all.iter().filter(|m| m["role"] == "owner").count()
}

async fn member_id(app: &TestApp, admin_token: &str, team: i64, username: &str) -> i64 {
    let all = members(app, admin_token, team).await;
    all.iter()
        .find(|m| m["display_name"] == username)
        .unwrap_or_else(|| panic!("{username} in {all:?}"))["id"]
        .as_i64()
        .unwrap()
}

async fn a_team_always_keeps_an_owner(backend: Backend) {
    let app = TestApp::on(backend, |_| {}).await;
    let (t, team) = team_fixture(&app).await;
    let (alice_pw, bob_pw) = (pw("alice"), pw("bob"));
    for round in 0..5 {
        // alice and bob both own the team; each demotes (then removes) the other at once.
        let bob_id = member_id(&app, &t, team, "bob").await;
        let r = app
            .put(
                &format!("/api/v1/teams/{team}/members/{bob_id}"),
                Auth::Basic("alice", &alice_pw),
                json!({"role": "owner"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let alice_id = member_id(&app, &t, team, "alice").await;
        let (op, body) = if round % 2 == 0 {
            (Method::PUT, Some(json!({"role": "viewer"})))
        } else {
            (Method::DELETE, None)
        };
        let responses = app
            .concurrently(vec![
                request(
                    op.clone(),
                    &format!("/api/v1/teams/{team}/members/{bob_id}"),
                    Auth::Basic("alice", &alice_pw),
                    body.clone(),
                ),
                request(
                    op.clone(),
                    &format!("/api/v1/teams/{team}/members/{alice_id}"),
                    Auth::Basic("bob", &bob_pw),
                    body,
                ),
            ])
            .await;
        assert_eq!(
            owners(&app, &t, team).await,
            1,
            "round {round}: {:?}",
            statuses(&responses)
        );
        // Whoever lost ownership (or membership) rejoins for the next round.
        for (user, responses) in [("bob", &responses[0]), ("alice", &responses[1])] {
            let succeeded = responses.status.is_success();
            if succeeded && op == Method::DELETE {
                let r = app
                    .post(
                        &format!("/api/v1/teams/{team}/members"),
                        Auth::Portus("admin", &t),
                        json!({"user": user, "role": "owner"}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            } else if succeeded {
                let id = member_id(&app, &t, team, user).await;
                let r = app
                    .put(
                        &format!("/api/v1/teams/{team}/members/{id}"),
                        Auth::Portus("admin", &t),
                        json!({"role": "owner"}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            }
        }
    }
}

async fn enabled_admins(app: &TestApp) -> usize {
    let users = app
        .other_node()
        .await
        .list_users(&PageRequest::default())
        .await
        .unwrap();
    users
        .items
        .iter()
        .filter(|u| u.user.admin && u.user.enabled)
        .count()
}

async fn there_is_always_an_enabled_admin(backend: Backend) {
    let app = TestApp::on(backend, |_| {}).await;
    let t = app.bootstrap().await;
    app.create_user(&t, "alice").await;
    let alice_pw = pw("alice");
    let r = app
        .put(
            "/api/v1/users/2",
            Auth::Portus("admin", &t),
            json!({"user": {"admin": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let store = app.other_node().await;
    let both_admins_again = UserUpdate {
        admin: Some(true),
        enabled: Some(true),
        ..UserUpdate::default()
    };
    for round in 0..6 {
        // Both are enabled admins; each removes the other at once.
        let change = match round % 3 {
            0 => json!({"user": {"enabled": false}}),
            1 => json!({"user": {"admin": false}}),
            _ => json!({"user": {"admin": false, "enabled": false}}),
        };
        let responses = app
            .concurrently(vec![
                request(
                    Method::PUT,
                    "/api/v1/users/2",
                    Auth::Portus("admin", &t),
                    Some(change.clone()),
                ),
                request(
                    Method::PUT,
                    "/api/v1/users/1",
                    Auth::Basic("alice", &alice_pw),
                    Some(change),
                ),
            ])
            .await;
        assert_eq!(
            enabled_admins(&app).await,
            1,
            "round {round}: {:?}",
            statuses(&responses)
        );
        for id in [1, 2] {
            store
                .update_user(
                    id,
                    &both_admins_again,
                    portcullis_domain::time::Timestamp(0),
                )
                .await
                .unwrap();
        }
    }
    // Deleting each other at once leaves one admin too.
    let responses = app
        .concurrently(vec![
            request(
                Method::DELETE,
                "/api/v1/users/2",
                Auth::Portus("admin", &t),
                None,
            ),
            request(
                Method::DELETE,
                "/api/v1/users/1",
                Auth::Basic("alice", &alice_pw),
                None,
            ),
        ])
        .await;
    assert_eq!(enabled_admins(&app).await, 1, "{:?}", statuses(&responses));
}

async fn the_token_quota_holds(backend: Backend) {
    let app = TestApp::on(backend, |c| c.security_policy.max_application_tokens = 5).await;
    let t = app.bootstrap().await;
    app.create_user(&t, "alice").await;
    let alice_pw = pw("alice");
    let requests = (0..12)
        .map(|i| {
            request(
                Method::POST,
                "/api/v1/users/2/application_tokens",
                Auth::Basic("alice", &alice_pw),
                Some(json!({"application": format!("ci-{i}")})),
            )
        })
        .collect();
    let responses = app.concurrently(requests).await;
    let created = responses
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 5, "{:?}", statuses(&responses));
    assert!(
        responses
            .iter()
            .filter(|r| r.status != StatusCode::CREATED)
            .all(|r| r.status == StatusCode::UNPROCESSABLE_ENTITY
                && message(r).contains("more than 5"))
    );
    let r = app
        .get(
            "/api/v1/users/2/application_tokens",
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 5);
}

async fn deleting_a_user_never_orphans_a_team(backend: Backend) {
    let app = TestApp::on(backend, |_| {}).await;
    let (t, team) = team_fixture(&app).await;
    let alice_pw = pw("alice");
    // The only owner cannot be deleted.
    let r = app
        .delete("/api/v1/users/2", Auth::Portus("admin", &t))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert!(message(&r).contains("devs"), "{:?}", r.body);
    // Two owners: deleting alice races alice demoting bob; the team keeps an owner.
    let bob_id = member_id(&app, &t, team, "bob").await;
    let r = app
        .put(
            &format!("/api/v1/teams/{team}/members/{bob_id}"),
            Auth::Portus("admin", &t),
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let responses = app
        .concurrently(vec![
            request(
                Method::DELETE,
                "/api/v1/users/2",
                Auth::Portus("admin", &t),
                None,
            ),
            request(
                Method::PUT,
                &format!("/api/v1/teams/{team}/members/{bob_id}"),
                Auth::Basic("alice", &alice_pw),
                Some(json!({"role": "viewer"})),
            ),
        ])
        .await;
    assert_eq!(
        owners(&app, &t, team).await,
        1,
        "{:?}",
        statuses(&responses)
    );
}

on_both_databases!(
    concurrent_bootstraps_create_one_admin,
    a_team_always_keeps_an_owner,
    there_is_always_an_enabled_admin,
    the_token_quota_holds,
    deleting_a_user_never_orphans_a_team,
);

// ---- 4. No whole-row write undoes a concurrent change ----

async fn a_login_never_re_enables_a_disabled_user(backend: Backend) {
    let app = TestApp::on(backend, |_| {}).await;
    let t = app.bootstrap().await;
    app.create_user(&t, "alice").await;
    let store = app.other_node().await;
    let now = portcullis_domain::time::Timestamp(0);
    for round in 0..5 {
        // A Portus bcrypt hash, upgraded to argon2 by the next successful login.
        let bcrypt = bcrypt::hash("portus-password", 4).unwrap();
        let reset = UserUpdate {
            password_hash: Some(bcrypt),
            enabled: Some(true),
            ..UserUpdate::default()
        };
        store.update_user(2, &reset, now).await.unwrap();
        let mut requests: Vec<_> = (0..4)
            .map(|_| {
                request(
                    Method::GET,
                    "/v2/token?service=registry.test:5000",
                    Auth::Basic("alice", "portus-password"),
                    None,
                )
            })
            .collect();
        requests.insert(
            2,
            request(
                Method::PUT,
                "/api/v1/users/2",
                Auth::Portus("admin", &t),
                Some(json!({"user": {"enabled": false}})),
            ),
        );
        let responses = app.concurrently(requests).await;
        assert_eq!(responses[2].status, StatusCode::OK);
        let alice = store.user_by_id(2).await.unwrap().unwrap();
        assert!(!alice.enabled, "round {round}: a login undid the disable");
        let r = app
            .token(
                "service=registry.test:5000",
                Auth::Basic("alice", "portus-password"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "round {round}");
    }
}

on_both_databases!(a_login_never_re_enables_a_disabled_user);

// ---- 5. The lockout guards passwords only ----

#[tokio::test]
async fn a_locked_account_keeps_its_tokens() {
    let app = TestApp::new().await;
    team_fixture(&app).await;
    let alice_pw = pw("alice");
    let (_, ci) = mint(
        &app,
        Auth::Basic("alice", &alice_pw),
        2,
        json!({"application": "ci"}),
    )
    .await;
    let refresh = refresh_with(&app, "alice", &alice_pw).await;
    let q = "service=registry.test:5000&scope=repository:devs/app:pull";
    for _ in 0..10 {
        let r = app.token(q, Auth::Basic("alice", "wrong-password")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.token(q, Auth::Basic("alice", &alice_pw)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the password is locked");
    // Tokens are 256 random bits: nobody can guess them, so nobody may lock them.
    let r = app.token(q, Auth::Basic("alice", &ci)).await;
    assert_eq!(r.status, StatusCode::OK, "docker login with the CI token");
    assert_eq!(access(&r)[0]["actions"], json!(["pull"]));
    let r = app.get("/api/v1/teams", Auth::Bearer(&ci)).await;
    assert_eq!(r.status, StatusCode::OK, "the API with the CI token");
    assert_eq!(
        use_refresh(&app, &refresh).await,
        StatusCode::OK,
        "docker's refresh token"
    );
}

// ---- 6. Every refused password costs the same ----

#[tokio::test]
async fn every_refused_password_costs_the_same() {
    let app = TestApp::with(|c| c.security_policy.password_checks_per_minute = 6).await;
    let t = app.bootstrap().await;
    for u in ["locked", "disabled", "wrong"] {
        app.create_user(&t, u).await;
    }
    let r = app
        .post(
            "/api/v1/users",
            Auth::Portus("admin", &t),
            json!({"user": {"username": "robot", "email": "r@example.com", "bot": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let store = app.other_node().await;
    let now = portcullis_domain::time::Timestamp::from_secs(T0);
    // An account without a password (as LDAP creates them).
    store
        .create_user(
            &NewUser {
                username: "ldapuser".into(),
                email: "l@example.com".into(),
                display_name: None,
                password_hash: None,
                admin: false,
                bot: false,
            },
            None,
            now,
        )
        .await
        .unwrap();
    let r = app
        .put(
            "/api/v1/users/3",
            Auth::Portus("admin", &t),
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for _ in 0..10 {
        store.record_failed_login(2, now, 10).await.unwrap();
    }
    let hasher = app.services.auth.hasher().clone();
    // From one client: unknown, locked, disabled, bot, password-less, wrong password.
    for name in ["nobody", "locked", "disabled", "robot", "ldapuser", "wrong"] {
        let before = hasher.verifications();
        let r = app
            .token(
                "service=registry.test:5000",
                Auth::Basic(name, "some-password"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            hasher.verifications(),
            before + 1,
            "{name}: one hash verification"
        );
    }
    // Each took one of the six rate-limit tokens of this client.
    let r = app
        .token("service=registry.test:5000", Auth::Basic("nobody", "x"))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
}

// ---- 7. An outage is 503, never a wrong password ----

#[tokio::test]
async fn a_database_outage_is_503_and_counts_no_failure() {
    let app = TestApp::new().await;
    let (t, _) = team_fixture(&app).await;
    let store = app.other_node().await;
    app.services.close().await;
    let alice_pw = pw("alice");
    for (what, r) in [
        (
            "token endpoint, password",
            app.token(
                "service=registry.test:5000&scope=repository:devs/app:pull",
                Auth::Basic("alice", &alice_pw),
            )
            .await,
        ),
        (
            "token endpoint, anonymous",
            app.token(
                "service=registry.test:5000&scope=repository:devs/app:pull",
                Auth::None,
            )
            .await,
        ),
        (
            "OAuth2 POST",
            post_form(
                &app,
                "grant_type=password&username=alice&password=x&service=registry.test%3A5000",
            )
            .await,
        ),
        (
            "API, application token",
            app.get("/api/v1/teams", Auth::Portus("admin", &t)).await,
        ),
        (
            "API, password",
            app.get("/api/v1/teams", Auth::Basic("alice", "wrong"))
                .await,
        ),
    ] {
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {:?}",
            r.body
        );
        assert_eq!(r.headers["retry-after"], "5", "{what}");
        assert!(
            !message(&r).contains("sqlite") && !message(&r).contains("pool"),
            "{what}: {:?}",
            r.body
        );
    }
    let alice = store.user_by_id(2).await.unwrap().unwrap();
    assert_eq!(alice.failed_attempts, 0, "an outage is not a failed login");
}

// ---- 9. The smaller ones ----

#[tokio::test]
async fn health_tells_anonymous_callers_only_a_summary() {
    let app = TestApp::new().await;
    let t = app.bootstrap().await;
    // A registry nobody listens on.
    let port = portcullis_testkit::registry::free_port().unwrap();
    let host = format!("127.0.0.1:{port}");
    let id = app.create_registry(&t, &host).await;
    let r = app.get("/api/v1/health", Auth::None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.body["registry"],
        json!({"msg": "registry is not reachable", "success": false})
    );
    assert_eq!(r.body["database"]["success"], true);
    let text = r.body.to_string();
    assert!(
        !text.contains(&host) && r.body.get("registries").is_none(),
        "{text}"
    );
    let r = app.get("/api/v1/health", Auth::Portus("admin", &t)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let detail = &r.body["registries"][&host];
    assert_eq!(detail["success"], false, "{:?}", r.body);
    assert!(
        detail["msg"].as_str().unwrap().len() > 3,
        "admins see the error"
    );
    // Probes are cached: a moved registry shows only once the cache has expired.
    let moved = format!(
        "127.0.0.1:{}",
        portcullis_testkit::registry::free_port().unwrap()
    );
    let r = app
        .put(
            &format!("/api/v1/registries/{id}"),
            Auth::Portus("admin", &t),
            json!({"registry": {"name": "r", "hostname": moved, "use_ssl": false}, "force": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = app.get("/api/v1/health", Auth::Portus("admin", &t)).await;
    assert!(
        r.body["registries"].get(&host).is_some(),
        "still the cached probe"
    );
    app.clock
        .advance_secs(portcullis_service::health::PROBE_CACHE_SECS);
    let r = app.get("/api/v1/health", Auth::Portus("admin", &t)).await;
    assert!(
        r.body["registries"].get(&moved).is_some(),
        "probed again: {:?}",
        r.body
    );
}

#[tokio::test]
async fn numbers_from_users_never_overflow() {
    let app = TestApp::new().await;
    let t = app.bootstrap().await;
    let admin = Auth::Portus("admin", &t);
    for uri in [
        format!("/api/v1/users?page={}&per_page=1000", i64::MAX),
        format!("/api/v1/teams?page={}&per_page=3", i64::MAX / 2),
        format!("/api/v1/namespaces?page={}", i64::MAX),
    ] {
        let r = app.get(&uri, admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {:?}", r.body);
        assert!(message(&r).contains("out of range"), "{uri}: {:?}", r.body);
    }
    for expires_at in [i64::MAX, i64::MIN] {
        let r = app
            .post(
                "/api/v1/users/1/application_tokens",
                admin,
                json!({"application": "x", "expires_at": expires_at}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{expires_at}: {:?}",
            r.body
        );
        assert!(message(&r).contains("expires_at"), "{:?}", r.body);
    }
    // Paging still works at sane values, and negative ones are clamped.
    let r = app.get("/api/v1/users?page=-5&per_page=-1", admin).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_star_scope_answers_the_granted_set_once() {
    let app = TestApp::new().await;
    team_fixture(&app).await;
    let q = |repo: &str| format!("service=registry.test:5000&scope=repository:{repo}:*");
    let alice_pw = pw("alice");
    let bob_pw = pw("bob");
    let r = app
        .token(&q("devs/app"), Auth::Basic("alice", &alice_pw))
        .await;
    assert_eq!(
        access(&r)[0]["actions"],
        json!(["*"]),
        "the owner may do everything"
    );
    let r = app.token(&q("devs/app"), Auth::Basic("bob", &bob_pw)).await;
    assert_eq!(
        access(&r)[0]["actions"],
        json!(["pull", "push"]),
        "a contributor"
    );
}

/// The password rate limit keys a client by its address (an IPv6 client by its /64) and
/// believes `X-Forwarded-For` only from a configured proxy.
#[tokio::test]
async fn rate_limits_key_clients_by_address_and_trusted_proxies_only() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    async fn attempt(app: &TestApp, peer: &str, forwarded: Option<&str>) -> StatusCode {
        let mut req = request(
            Method::GET,
            "/v2/token?service=registry.test:5000",
            Auth::Basic("nobody", "wrong-password"),
            None,
        );
        let peer: SocketAddr = peer.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(f) = forwarded {
            req.headers_mut()
                .insert("x-forwarded-for", f.parse().unwrap());
        }
        app.send(req).await.status
    }
    let proxy = "10.0.0.1:4000";
    let app = TestApp::with(|c| {
        c.security_policy.password_checks_per_minute = 2;
        c.server.trusted_proxies = vec!["10.0.0.0/24".parse().unwrap()];
    })
    .await;
    // One IPv6 client owns its /64: two addresses in it share one bucket.
    assert_eq!(
        attempt(&app, "[2001:db8:1:2::1]:1", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt(&app, "[2001:db8:1:2::ff]:1", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt(&app, "[2001:db8:1:2::7]:1", None).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        attempt(&app, "[2001:db8:1:3::1]:1", None).await,
        StatusCode::UNAUTHORIZED,
        "another /64"
    );
    // An untrusted peer cannot pick a fresh bucket by forging the header.
    for forged in ["1.1.1.1", "2.2.2.2"] {
        assert_eq!(
            attempt(&app, "192.0.2.9:1", Some(forged)).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(&app, "192.0.2.9:1", Some("3.3.3.3")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Behind the trusted proxy, each forwarded client has its own bucket.
    for client in [
        "198.51.100.1",
        "198.51.100.1",
        "198.51.100.2",
        "198.51.100.2",
    ] {
        assert_eq!(
            attempt(&app, proxy, Some(client)).await,
            StatusCode::UNAUTHORIZED,
            "{client}"
        );
    }
    assert_eq!(
        attempt(&app, proxy, Some("198.51.100.1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client cannot prepend a fake hop: the proxy appends the real one.
    assert_eq!(
        attempt(&app, proxy, Some("203.0.113.5, 198.51.100.2")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
