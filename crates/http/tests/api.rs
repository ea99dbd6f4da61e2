//! The HTTP contract, in process: Portus API v1 paths, bodies, status codes and headers,
//! the token endpoint's grants and errors, lockout, the credential cache, rate limits,
//! the notification sink and the generated OpenAPI document. Real SQLite, real keys;
//! time is a `FixedClock` the tests move.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;

#[tokio::test]
async fn meta_endpoints() {
    let app = TestApp::new().await;
    let r = app.get("/api/v1/_ping", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.get("/api/v1/health", Auth::None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["database"]["success"], true);
    assert_eq!(r.body["registry"]["msg"], "no registry configured");
    let r = app.get("/api/version", Auth::None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, json!({"message": "Authentication fails"}));
    let token = app.bootstrap().await;
    let r = app.get("/api/version", Auth::Portus("admin", &token)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["api-versions"], json!(["v1"]));
    let r = app.get("/api/lala", Auth::None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["message"].is_string());
    let r = app.delete("/api/v1/_ping", Auth::None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.body, json!({"message": "Method not allowed"}));
}

#[tokio::test]
async fn bootstrap_rules() {
    let app = TestApp::new().await;
    let r = app
        .post(
            "/api/v1/users/bootstrap",
            Auth::None,
            json!({"user": {"username": "-bad", "email": "nope", "password": "short"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["username", "email", "password"] {
        assert!(r.body["message"][field].is_array(), "{field}: {:?}", r.body);
    }
    let token = app.bootstrap().await;
    assert!(token.starts_with("pcat_"));
    let r = app.post("/api/v1/users/bootstrap", Auth::None, json!({"user": {"username": "second", "email": "s@example.com", "password": "password2"}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // The bootstrap user is an admin and its token authenticates in all three ways.
    for auth in [
        Auth::Portus("admin", &token),
        Auth::Bearer(&token),
        Auth::Basic("admin", &token),
        Auth::Basic("admin", "adminpass1"),
    ] {
        let r = app.get("/api/v1/users", auth).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body[0]["admin"], true);
    }
    let r = app
        .get("/api/v1/users", Auth::Portus("admin", "pcat_wrong"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .get("/api/v1/users", Auth::Portus("someoneelse", &token))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a token only works for its owner"
    );

    let disabled = TestApp::with(|c| c.first_user_admin.enabled = false).await;
    let r = disabled
        .post(
            "/api/v1/users/bootstrap",
            Auth::None,
            json!({"user": {"username": "a", "email": "a@b", "password": "password1"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn users_crud_and_pagination() {
    let app = TestApp::new().await;
    let t = app.bootstrap().await;
    let admin = Auth::Portus("admin", &t);
    let alice = app.create_user(&t, "alice").await;
    app.create_user(&t, "bob").await;
    let r = app.post("/api/v1/users", admin, json!({"user": {"username": "ALICE", "email": "other@example.com", "password": "password1"}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body,
        json!({"message": {"username": ["has already been taken"]}})
    );
    let r = app.post("/api/v1/users", admin, json!({"nope": 1})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .send(
            Request::post("/api/v1/users")
                .header("portus-auth", format!("admin:{t}"))
                .header("content-type", "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["message"].as_str().unwrap().contains("valid JSON"));

    // Non-admins cannot manage users.
    let r = app
        .get("/api/v1/users", Auth::Basic("alice", &pw("alice")))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body, json!({"message": "Authorization fails"}));

    let r = app
        .get(
            "/api/v1/users?per_page=1&page=2&sort_attr=username&sort_order=asc",
            admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["username"], "alice");
    assert_eq!(r.headers["x-total"], "3");
    assert_eq!(r.headers["x-total-pages"], "3");
    assert_eq!(r.headers["x-per-page"], "1");
    assert_eq!(r.headers["x-page"], "2");
    assert_eq!(r.headers["x-next-page"], "3");
    assert_eq!(r.headers["x-prev-page"], "1");
    assert!(r.headers["link"].to_str().unwrap().contains("rel=\"next\""));
    let r = app.get("/api/v1/users?all=true", admin).await;
    assert_eq!(r.body.as_array().unwrap().len(), 3);
    let r = app.get("/api/v1/users?page=x", admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = app.get(&format!("/api/v1/users/{alice}"), admin).await;
    assert_eq!(
        (r.status, r.body["username"].as_str()),
        (StatusCode::OK, Some("alice"))
    );
    assert!(
        r.body["namespace_id"].is_null(),
        "no registry yet, so no personal namespace"
    );
    let r = app.get("/api/v1/users/bob@example.com", admin).await;
    assert_eq!(r.body["username"], "bob");
    let r = app.get("/api/v1/users/999", admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = app
        .put(
            &format!("/api/v1/users/{alice}"),
            admin,
            json!({"user": {"email": "new@example.com"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["email"].as_str()),
        (StatusCode::OK, Some("new@example.com"))
    );
    let r = app
        .put(
            &format!("/api/v1/users/{alice}"),
            admin,
            json!({"user": {"email": "bad"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .put("/api/v1/users/1", admin, json!({"user": {"admin": false}}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the last admin stays: {:?}",
        r.body
    );
    let r = app.delete("/api/v1/users/1", admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.delete(&format!("/api/v1/users/{alice}"), admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.get(&format!("/api/v1/users/{alice}"), admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn application_tokens_have_owners() {
    let app = TestApp::new().await;
    let t = app.bootstrap().await;
    let admin = Auth::Portus("admin", &t);
    let alice = app.create_user(&t, "alice").await;
    let bob = app.create_user(&t, "bob").await;
    let alice_pw = pw("alice");
    let as_alice = Auth::Basic("alice", &alice_pw);

    let r = app
        .post(
            &format!("/api/v1/users/{alice}/application_tokens"),
            as_alice,
            json!({"application": "ci"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let plain = r.body["plain_token"].as_str().unwrap().to_owned();
    let token_id = r.body["id"].as_i64().unwrap();
    // Portus let anyone mint tokens for anyone; we do not.
    let r = app
        .post(
            &format!("/api/v1/users/{bob}/application_tokens"),
            as_alice,
            json!({"application": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/api/v1/users/{bob}/application_tokens"),
            admin,
            json!({"application": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admins act only for bots");
    let r = app
        .get(&format!("/api/v1/users/{bob}/application_tokens"), as_alice)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .get(
            &format!("/api/v1/users/{alice}/application_tokens"),
            Auth::Bearer(&plain),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!([{"id": token_id, "application": "ci", "pull_only": false, "expires_at": null, "last_used_at": r.body[0]["last_used_at"], "created_at": r.body[0]["created_at"]}])
    );

    let r = app
        .post(
            &format!("/api/v1/users/{alice}/application_tokens"),
            as_alice,
            json!({"application": "ci"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "duplicate name");
    for i in 0..4 {
        let r = app
            .post(
                &format!("/api/v1/users/{alice}/application_tokens"),
                as_alice,
                json!({"application": format!("t{i}")}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = app
        .post(
            &format!("/api/v1/users/{alice}/application_tokens"),
            as_alice,
            json!({"application": "sixth"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "five at most");

    let r = app
        .delete(
            &format!("/api/v1/users/application_tokens/{token_id}"),
            Auth::Basic("bob", &pw("bob")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .delete(
            &format!("/api/v1/users/application_tokens/{token_id}"),
            as_alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .get(
            &format!("/api/v1/users/{alice}/application_tokens"),
            Auth::Bearer(&plain),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a revoked token stops working at once"
    );

    // Bots: created by admins with a `default` token; admins manage their tokens; no password login.
    let r = app
        .post(
            "/api/v1/users",
            admin,
            json!({"user": {"username": "ci-bot", "email": "bot@example.com", "bot": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let bot_id = r.body["id"].as_i64().unwrap();
    let bot_token = r.body["plain_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/version", Auth::Basic("ci-bot", &bot_token))
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .post(
            &format!("/api/v1/users/{bot_id}/application_tokens"),
            admin,
            json!({"application": "extra"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Expiring tokens stop working when the clock passes their expiry.
    let r = app
        .post(
            &format!("/api/v1/users/{bob}/application_tokens"),
            Auth::Basic("bob", &pw("bob")),
            json!({"application": "short", "expires_at": T0 + 60}),
        )
        .await;
    let short = r.body["plain_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/version", Auth::Bearer(&short)).await.status,
        StatusCode::OK
    );
    app.clock.advance_secs(61);
    assert_eq!(
        app.get("/api/version", Auth::Bearer(&short)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .post(
            &format!("/api/v1/users/{bob}/application_tokens"),
            Auth::Basic("bob", &pw("bob")),
            json!({"application": "past", "expires_at": T0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn registries_and_validation() {
    let app = TestApp::new().await;
    let t = app.bootstrap().await;
    let admin = Auth::Portus("admin", &t);
    // Nothing listens on this port: bind, note the port, close.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let r = app
        .post(
            "/api/v1/registries",
            admin,
            json!({"registry": {"name": "r", "hostname": closed, "use_ssl": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["message"]["hostname"][0].is_string(), "{:?}", r.body);
    let r = app
        .get(
            &format!("/api/v1/registries/validate?name=r&hostname={closed}&use_ssl=false"),
            admin,
        )
        .await;
    assert_eq!(r.body["valid"], false);
    assert!(r.body["messages"]["hostname"].is_array());
    let r = app
        .get(
            "/api/v1/registries/validate?name=r&hostname=x&use_ssl=maybe",
            admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .get(
            "/api/v1/registries/validate?name=&hostname=http://x&use_ssl=false",
            admin,
        )
        .await;
    assert_eq!(r.body["valid"], false);
    assert!(r.body["messages"]["name"].is_array() && r.body["messages"]["hostname"].is_array());

    let id = app.create_registry(&t, "registry.test:5000").await;
    let second = app.create_registry(&t, "mirror.test:5000").await;
    assert_ne!(id, second, "several registries are allowed");
    let r = app.post("/api/v1/registries", admin, json!({"registry": {"name": "dup", "hostname": "registry.test:5000", "use_ssl": false}, "force": true})).await;
    assert_eq!(
        r.body,
        json!({"message": {"hostname": ["has already been taken"]}})
    );
    let r = app.put(&format!("/api/v1/registries/{id}"), admin, json!({"registry": {"name": "main", "hostname": "registry.test:5000", "use_ssl": false, "external_hostname": "registry.example.com"}})).await;
    assert_eq!(
        (r.status, r.body["external_hostname"].as_str()),
        (StatusCode::OK, Some("registry.example.com"))
    );
    let r = app.get("/api/v1/registries", admin).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let alice = app.create_user(&t, "alice").await;
    assert_eq!(
        app.get("/api/v1/registries", Auth::Basic("alice", &pw("alice")))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Existing and new users get a personal namespace in every registry.
    let r = app.get(&format!("/api/v1/users/{alice}"), admin).await;
    assert!(r.body["namespace_id"].is_i64());
}

#[tokio::test]
async fn teams_and_members() {
    let app = TestApp::new().await;
    let (t, team) = team_fixture(&app).await;
    let admin = Auth::Portus("admin", &t);
    let alice_pw = pw("alice");
    let alice = Auth::Basic("alice", &alice_pw);
    let bob_pw = pw("bob");
    let bob = Auth::Basic("bob", &bob_pw);
    let dave_pw = pw("dave");
    let dave = Auth::Basic("dave", &dave_pw);

    let r = app.get(&format!("/api/v1/teams/{team}"), dave).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.get("/api/v1/teams", dave).await;
    assert_eq!(r.body, json!([]), "hidden personal teams are never listed");
    let r = app.get("/api/v1/teams", admin).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = app.get(&format!("/api/v1/teams/{team}"), bob).await;
    assert_eq!(
        (
            r.body["users_count"].as_i64(),
            r.body["namespaces_count"].as_i64()
        ),
        (Some(3), Some(1))
    );

    let r = app.get(&format!("/api/v1/teams/{team}/members"), bob).await;
    let members = r.body.as_array().unwrap().clone();
    assert_eq!(members.len(), 3);
    let member_id = |name: &str| {
        members.iter().find(|m| m["display_name"] == name).unwrap()["id"]
            .as_i64()
            .unwrap()
    };

    // Only owners manage members.
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            bob,
            json!({"user": "dave", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            alice,
            json!({"user": "bob", "role": "viewer"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "already a member"
    );
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            alice,
            json!({"user": "nobody", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            alice,
            json!({"user": "dave", "role": "boss"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Admins always join as owners and cannot be demoted.
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            alice,
            json!({"user": "admin", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.body["role"], "owner");
    let admin_member = r.body["id"].as_i64().unwrap();
    let r = app
        .put(
            &format!("/api/v1/teams/{team}/members/{admin_member}"),
            alice,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .delete(
            &format!("/api/v1/teams/{team}/members/{admin_member}"),
            alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // The only owner can be neither demoted nor removed.
    let alice_member = member_id("alice");
    let r = app
        .put(
            &format!("/api/v1/teams/{team}/members/{alice_member}"),
            alice,
            json!({"role": "contributor"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .delete(
            &format!("/api/v1/teams/{team}/members/{alice_member}"),
            alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .put(
            &format!("/api/v1/teams/{team}/members/{}", member_id("bob")),
            alice,
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["role"].as_str()),
        (StatusCode::OK, Some("owner"))
    );
    let r = app
        .put(
            &format!("/api/v1/teams/{team}/members/{alice_member}"),
            alice,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "two owners: one may step down");

    // Rename; reserved and duplicate names are refused.
    let r = app
        .put(
            &format!("/api/v1/teams/{team}"),
            bob,
            json!({"team": {"name": "developers"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["name"].as_str()),
        (StatusCode::OK, Some("developers"))
    );
    let r = app
        .post(
            "/api/v1/teams",
            dave,
            json!({"name": "portus_global_team_1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post("/api/v1/teams", dave, json!({"name": "DEVELOPERS"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post("/api/v1/teams", dave, json!({"name": "qa", "owner_id": 2}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "only admins pick another owner"
    );
    let r = app.post("/api/v1/teams", dave, json!({"name": "qa"})).await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Delete, moving namespaces to another team.
    let r = app
        .delete(&format!("/api/v1/teams/{team}?new_team=nosuchteam"), bob)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .delete(&format!("/api/v1/teams/{team}?new_team=qa"), dave)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post("/api/v1/teams", bob, json!({"name": "archive"}))
        .await;
    let archive = r.body["id"].as_i64().unwrap();
    let r = app
        .delete(&format!("/api/v1/teams/{team}?new_team=archive"), bob)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = app
        .get(&format!("/api/v1/teams/{archive}/namespaces"), bob)
        .await;
    assert_eq!(r.body[0]["name"], "devs");
}

#[tokio::test]
async fn namespaces_follow_the_policy() {
    let app = TestApp::new().await;
    let (t, _team) = team_fixture(&app).await;
    let admin = Auth::Portus("admin", &t);
    let (alice_pw, bob_pw, carol_pw, dave_pw) = (pw("alice"), pw("bob"), pw("carol"), pw("dave"));
    let (alice, bob, carol, dave) = (
        Auth::Basic("alice", &alice_pw),
        Auth::Basic("bob", &bob_pw),
        Auth::Basic("carol", &carol_pw),
        Auth::Basic("dave", &dave_pw),
    );

    let r = app
        .post(
            "/api/v1/namespaces",
            bob,
            json!({"name": "bobs", "team": "devs"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "contributors create namespaces under allow-teams"
    );
    let bobs = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            "/api/v1/namespaces",
            carol,
            json!({"name": "carols", "team": "devs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            "/api/v1/namespaces",
            alice,
            json!({"name": "Bad Name", "team": "devs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post(
            "/api/v1/namespaces",
            alice,
            json!({"name": "x", "team": "nope"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get("/api/v1/namespaces/validate?name=devs", dave).await;
    assert_eq!(
        r.body,
        json!({"valid": false, "messages": {"name": ["has already been taken"]}})
    );
    let r = app
        .get("/api/v1/namespaces/validate?name=fresh", dave)
        .await;
    assert_eq!(r.body, json!({"valid": true, "messages": {}}));

    // dave sees public/protected namespaces and his own, not the private team one.
    let r = app.get("/api/v1/namespaces?all=true", dave).await;
    let names: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"dave") && names.contains(&"registry.test:5000"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"bobs") && !names.contains(&"alice"),
        "{names:?}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/namespaces/{bobs}"), dave)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Visibility: owners only; the global namespace can't be private.
    let r = app
        .put(
            &format!("/api/v1/namespaces/{bobs}"),
            bob,
            json!({"namespace": {"visibility": "public"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .put(
            &format!("/api/v1/namespaces/{bobs}"),
            alice,
            json!({"namespace": {"visibility": "protected"}}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["visibility"].as_str()),
        (StatusCode::OK, Some("protected"))
    );
    assert_eq!(r.body["permissions"]["role"], "owner");
    let r = app
        .put(
            &format!("/api/v1/namespaces/{bobs}"),
            alice,
            json!({"namespace": {"visibility": "secret"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.get(&format!("/api/v1/namespaces/{bobs}"), dave).await;
    assert_eq!(
        (r.status, r.body["permissions"]["pull"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(r.body["permissions"]["push"], false);
    let global = app
        .get("/api/v1/namespaces?all=true", admin)
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["global"] == true)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = app
        .put(
            &format!("/api/v1/namespaces/{global}"),
            admin,
            json!({"namespace": {"visibility": "private"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Rename and description by the owner; deletion rules.
    let r = app
        .put(
            &format!("/api/v1/namespaces/{bobs}"),
            alice,
            json!({"namespace": {"name": "team-b", "description": "B"}}),
        )
        .await;
    assert_eq!(
        (
            r.status,
            r.body["name"].as_str(),
            r.body["description"].as_str()
        ),
        (StatusCode::OK, Some("team-b"), Some("B"))
    );
    let dave_ns = app.get("/api/v1/users/5", admin).await.body["namespace_id"]
        .as_i64()
        .unwrap();
    let r = app
        .delete(&format!("/api/v1/namespaces/{dave_ns}"), dave)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body,
        json!({"message": "Cannot remove personal namespace"})
    );
    assert_eq!(
        app.delete(&format!("/api/v1/namespaces/{bobs}"), bob)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/api/v1/namespaces/{bobs}"), alice)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/api/v1/namespaces/{global}"), admin)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn token_endpoint_contract() {
    let app = TestApp::new().await;
    let (t, _) = team_fixture(&app).await;
    let svc = "service=registry.test:5000";
    let (alice_pw, carol_pw) = (pw("alice"), pw("carol"));

    // Grants: intersection of requested and allowed, in request order, merged by name.
    let r = app.token(&format!("{svc}&scope=repository:devs/app:push,pull&scope=repository:devs/app:delete,fork&scope=repository:alice/x:pull"), Auth::Basic("carol", &carol_pw)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        access(&r),
        json!([{"type": "repository", "name": "devs/app", "actions": ["pull"]}])
    );
    let claims = jwt_part(r.body["token"].as_str().unwrap(), 1);
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["iss"], "portcullis.test");
    assert_eq!(claims["aud"], "registry.test:5000", "aud is a string");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert!(claims["nbf"].as_i64().unwrap() < claims["iat"].as_i64().unwrap());
    assert_eq!(r.body["expires_in"], 900);
    assert_eq!(r.body["token"], r.body["access_token"]);
    assert!(
        r.body["issued_at"]
            .as_str()
            .unwrap()
            .starts_with("2027-01-15T")
    );
    let header = jwt_part(r.body["token"].as_str().unwrap(), 0);
    assert_eq!(header["alg"], "ES256");
    assert!(header["x5c"].is_array() && header["kid"].as_str().unwrap().len() == 59);

    let r = app
        .token(
            &format!("{svc}&scope=repository:devs/app:pull,push%20repository:devs/other:*"),
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert_eq!(
        access(&r),
        json!([
            {"type": "repository", "name": "devs/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "devs/other", "actions": ["*"]},
        ])
    );
    // `sub` is who authenticated, not the `account` the client claims.
    let r = app
        .token(
            &format!("{svc}&account=admin&scope=repository:devs/app:pull"),
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert_eq!(
        jwt_part(r.body["token"].as_str().unwrap(), 1)["sub"],
        "alice"
    );

    // Anonymous: public pulls only (the global namespace is public), empty sub.
    let r = app
        .token(
            &format!("{svc}&scope=repository:busybox:pull,push&scope=repository:devs/app:pull"),
            Auth::None,
        )
        .await;
    assert_eq!(
        access(&r),
        json!([{"type": "repository", "name": "busybox", "actions": ["pull"]}])
    );
    assert_eq!(jwt_part(r.body["token"].as_str().unwrap(), 1)["sub"], "");

    // docker login: no scope → no access claim. Unknown service → empty access.
    let r = app.token(svc, Auth::Basic("alice", &alice_pw)).await;
    assert!(
        jwt_part(r.body["token"].as_str().unwrap(), 1)
            .get("access")
            .is_none()
    );
    let r = app
        .token(
            "service=unknown:1&scope=repository:devs/app:pull",
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert_eq!(access(&r), json!([]));

    // Catalog: admins only, literal `*`.
    let r = app
        .token(
            &format!("{svc}&scope=registry:catalog:*"),
            Auth::Portus("admin", &t),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "Portus-Auth is not a registry credential, but it is accepted"
    );
    let r = app
        .token(
            &format!("{svc}&scope=registry:catalog:*"),
            Auth::Basic("admin", &t),
        )
        .await;
    assert_eq!(
        access(&r),
        json!([{"type": "registry", "name": "catalog", "actions": ["*"]}])
    );
    let r = app
        .token(
            &format!("{svc}&scope=registry:catalog:*"),
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert_eq!(access(&r), json!([]));

    // An admin may push into a namespace that does not exist yet (Portus granted it and
    // then ignored the image); the worker creates it when the push is processed.
    let r = app
        .token(
            &format!("{svc}&scope=repository:newns/app:push,pull"),
            Auth::Basic("admin", "adminpass1"),
        )
        .await;
    assert_eq!(access(&r)[0]["actions"], json!(["push", "pull"]));
    let r = app
        .get(
            "/api/v1/namespaces/validate?name=newns",
            Auth::Basic("admin", "adminpass1"),
        )
        .await;
    // A GET must not write: the namespace is created when the push is processed.
    assert_eq!(r.body["valid"], true);

    // Errors: bad credentials and malformed or unknown scopes are 401; nothing else is.
    let r = app
        .token(
            &format!("{svc}&scope=repository:devs/app:pull"),
            Auth::Basic("alice", "wrong"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["errors"][0]["code"], "UNAUTHORIZED");
    for scope in ["whale:foo,bar", "lala:x:y", "repository"] {
        let r = app
            .token(
                &format!("{svc}&scope={scope}"),
                Auth::Basic("alice", &alice_pw),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{scope}");
    }
    let r = app
        .token(
            &format!("{svc}&scope=repository(plugin):devs/p:pull"),
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert_eq!(
        access(&r)[0]["actions"],
        json!(["pull"]),
        "the class is ignored"
    );

    // Portus's ping.
    assert_eq!(
        app.get("/v2/", Auth::Basic("alice", &alice_pw))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/v2/", Auth::None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/v2/", Auth::Basic("alice", "nope")).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn oauth2_post_and_refresh_tokens() {
    let app = TestApp::new().await;
    let (t, _) = team_fixture(&app).await;
    let svc = "service=registry.test%3A5000";
    let r = post_form(&app, &format!("grant_type=password&username=alice&password=alice-password&{svc}&client_id=docker&access_type=offline&scope=repository%3Adevs%2Fapp%3Apull%2Cpush")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["scope"], "repository:devs/app:pull,push");
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("pcrt_"));

    let r = post_form(&app, &format!("grant_type=refresh_token&refresh_token={refresh}&{svc}&client_id=docker&scope=repository%3Adevs%2Fapp%3Apull")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["refresh_token"], refresh,
        "the refresh grant returns the same token"
    );
    assert_eq!(
        access(&r),
        json!([{"type": "repository", "name": "devs/app", "actions": ["pull"]}])
    );
    assert_eq!(
        jwt_part(r.body["access_token"].as_str().unwrap(), 1)["sub"],
        "alice"
    );

    // Bound to its service.
    let r = post_form(
        &app,
        &format!("grant_type=refresh_token&refresh_token={refresh}&service=other%3A1"),
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // GET with offline_token (docker login) also hands one out.
    let alice_pw = pw("alice");
    let r = app
        .token(
            "service=registry.test:5000&offline_token=true&client_id=docker",
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert!(
        r.body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("pcrt_")
    );

    // Listed and revocable per device; a password change revokes them all.
    let r = app
        .get(
            "/api/v1/users/2/refresh_tokens",
            Auth::Basic("alice", &alice_pw),
        )
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let first = r.body[0]["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(
            &format!("/api/v1/users/refresh_tokens/{first}"),
            Auth::Basic("bob", "bob-password")
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(
            &format!("/api/v1/users/refresh_tokens/{first}"),
            Auth::Basic("alice", &alice_pw)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let r = post_form(
        &app,
        &format!("grant_type=refresh_token&refresh_token={refresh}&{svc}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "revoked");

    for body in [
        "grant_type=magic",
        "",
        "grant_type=password&username=alice",
        "grant_type=password&username=alice&password=wrong&service=x",
    ] {
        let r = post_form(&app, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(r.body["error"].is_string(), "{body}");
    }
    let r = post_form(
        &app,
        "grant_type=password&username=alice&password=alice-password&service=x&scope=bogus",
    )
    .await;
    assert_eq!(r.body["error"], "invalid_scope");
    let _ = t;
}

#[tokio::test]
async fn lockout_cache_invalidation_and_rate_limit() {
    let app = TestApp::new().await;
    let (t, _) = team_fixture(&app).await;
    let admin = Auth::Portus("admin", &t);
    let q = "service=registry.test:5000&scope=repository:devs/app:pull";
    // Warm the cache with the right password, then lock the account with wrong ones.
    assert_eq!(
        app.token(q, Auth::Basic("carol", "carol-password"))
            .await
            .status,
        StatusCode::OK
    );
    for _ in 0..10 {
        assert_eq!(
            app.token(q, Auth::Basic("carol", "wrong-password"))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = app.token(q, Auth::Basic("carol", "carol-password")).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "locked, even with a cached password"
    );
    let r = app.get("/api/v1/users/4", admin).await;
    assert!(r.body["locked_at"].is_string());
    app.clock.advance_secs(10 * 60);
    assert_eq!(
        app.token(q, Auth::Basic("carol", "carol-password"))
            .await
            .status,
        StatusCode::OK,
        "unlocked after 10 minutes"
    );
    // After the lock ran out the count starts again: nine failures are tolerated...
    for _ in 0..9 {
        assert_eq!(
            app.token(q, Auth::Basic("carol", "wrong")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.token(q, Auth::Basic("carol", "carol-password"))
            .await
            .status,
        StatusCode::OK
    );
    // ...and ten in a row lock the account again.
    for _ in 0..10 {
        assert_eq!(
            app.token(q, Auth::Basic("carol", "wrong")).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.token(q, Auth::Basic("carol", "carol-password"))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "locked again"
    );
    app.clock.advance_secs(10 * 60);

    // A password change drops the cached old password at once.
    let r = app
        .put(
            "/api/v1/users/4",
            admin,
            json!({"user": {"password": "carol-new-password"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.token(q, Auth::Basic("carol", "carol-password"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.token(q, Auth::Basic("carol", "carol-new-password"))
            .await
            .status,
        StatusCode::OK
    );
    // Disabled users get nothing.
    app.put(
        "/api/v1/users/4",
        admin,
        json!({"user": {"enabled": false}}),
    )
    .await;
    assert_eq!(
        app.token(q, Auth::Basic("carol", "carol-new-password"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Password checks that miss the cache are rate limited per client.
    let limited = TestApp::with(|c| c.security_policy.password_checks_per_minute = 2).await;
    limited.bootstrap().await;
    assert_eq!(
        limited
            .get("/v2/", Auth::Basic("admin", "wrong1"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        limited
            .get("/v2/", Auth::Basic("admin", "adminpass1"))
            .await
            .status,
        StatusCode::OK
    );
    let r = limited.get("/v2/", Auth::Basic("admin", "wrong2")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers["retry-after"], "60");
    assert_eq!(
        limited
            .get("/v2/", Auth::Basic("admin", "adminpass1"))
            .await
            .status,
        StatusCode::OK,
        "cached proofs are not limited"
    );
}

#[tokio::test]
async fn pull_only_tokens() {
    let app = TestApp::new().await;
    team_fixture(&app).await;
    let alice_pw = pw("alice");
    let r = app
        .post(
            "/api/v1/users/2/application_tokens",
            Auth::Basic("alice", &alice_pw),
            json!({"application": "ro", "pull_only": true}),
        )
        .await;
    let ro = r.body["plain_token"].as_str().unwrap().to_owned();
    let r = app.token("service=registry.test:5000&scope=repository:devs/app:pull,push,delete&offline_token=true", Auth::Basic("alice", &ro)).await;
    assert_eq!(
        access(&r),
        json!([{"type": "repository", "name": "devs/app", "actions": ["pull"]}])
    );
    assert!(
        r.body.get("refresh_token").is_none(),
        "a pull-only token cannot become a full refresh token"
    );
}

#[tokio::test]
async fn notification_sink() {
    let app = TestApp::new().await;
    let envelope = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/push-manifest.json"
    ))
    .unwrap();
    let post = |auth: Option<&'static str>, body: String| {
        let mut r = Request::post("/v2/webhooks/events").header(
            "content-type",
            "application/vnd.docker.distribution.events.v1+json",
        );
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.body(Body::from(body)).unwrap()
    };
    assert_eq!(
        app.send(post(None, envelope.clone())).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(post(Some("Bearer wrong"), envelope.clone()))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(post(Some("Bearer notify-secret"), envelope))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.send(post(Some("Bearer notify-secret"), "{".into()))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.send(post(Some("Bearer notify-secret"), "{}".into()))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn openapi_document_comes_from_the_router() {
    let app = TestApp::new().await;
    let r = app.get("/api/openapi-spec", Auth::None).await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/_ping", "get"),
        ("/api/v1/health", "get"),
        ("/api/version", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/bootstrap", "post"),
        ("/api/v1/users/{id}", "put"),
        ("/api/v1/users/{id}/application_tokens", "post"),
        ("/api/v1/users/application_tokens/{id}", "delete"),
        ("/api/v1/teams/{id}/members/{member_id}", "put"),
        ("/api/v1/namespaces/validate", "get"),
        ("/api/v1/namespaces/{id}", "delete"),
        ("/api/v1/registries/validate", "get"),
        ("/api/v1/registries/{id}", "put"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert_eq!(paths.len(), portcullis_http::openapi().paths.paths.len());
    assert!(r.body["components"]["securitySchemes"]["portus_auth"].is_object());
    assert_eq!(r.headers["access-control-allow-origin"], "*");
}

/// The committed `docs/openapi.json` is the generated document; any API change shows up
/// in review. Regenerate with `PORTCULLIS_UPDATE_OPENAPI=1 cargo test -p portcullis-http`.
#[test]
fn committed_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let generated = serde_json::to_string_pretty(&portcullis_http::openapi()).unwrap() + "\n";
    if std::env::var_os("PORTCULLIS_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run PORTCULLIS_UPDATE_OPENAPI=1 cargo test -p portcullis-http"
    );
}

/// Authorization facts are cached for `security_policy.authorization_cache_seconds`:
/// writes through this node apply at once, another node's writes after the TTL.
#[tokio::test]
async fn authorization_cache_is_bounded() {
    let app = TestApp::new().await;
    let (t, team) = team_fixture(&app).await;
    let q = "service=registry.test:5000&scope=repository:devs/app:pull";
    let carol_pw = pw("carol");
    let carol = Auth::Basic("carol", &carol_pw);
    assert_eq!(
        access(&app.token(q, carol).await)[0]["actions"],
        json!(["pull"])
    );
    // Another node removes carol (a write that bypasses this node's services).
    let store = app.other_node().await;
    let member = store
        .list_members(team)
        .await
        .unwrap()
        .into_iter()
        .find(|(_, u)| u.username == "carol")
        .unwrap()
        .0;
    store.remove_member(team, member.id).await.unwrap();
    assert_eq!(
        access(&app.token(q, carol).await)[0]["actions"],
        json!(["pull"]),
        "cached for up to the TTL"
    );
    app.clock.advance_secs(2);
    assert_eq!(
        access(&app.token(q, carol).await),
        json!([]),
        "seen after the TTL"
    );
    // A write through this node applies at once.
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            Auth::Basic("alice", "alice-password"),
            json!({"user": "carol", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        access(&app.token(q, carol).await)[0]["actions"],
        json!(["pull"])
    );
    let _ = t;
}

/// With several nodes on PostgreSQL, a grant change on one node is announced
/// (`NOTIFY portcullis_grants`) and clears the others' caches: the clock never moves,
/// so only the announcement can make node B see what node A wrote.
#[tokio::test]
async fn a_grant_change_on_one_node_clears_the_cache_of_the_others() {
    let a = TestApp::on(Backend::Postgres, |_| {}).await;
    let (_, team) = team_fixture(&a).await;
    let b = a.second_node(|_| {}).await;
    let listening = tokio::spawn({
        let services = b.services.clone();
        async move {
            services
                .listen_for_grant_changes(std::time::Duration::from_millis(50))
                .await
        }
    });
    // Readiness: B's LISTEN is registered with the server.
    let pool = sqlx::PgPool::connect(&a.db_url).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%portcullis_grants%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if n > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node B never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let q = "service=registry.test:5000&scope=repository:devs/app:pull";
    let dave_pw = pw("dave");
    let dave = Auth::Basic("dave", &dave_pw);
    assert_eq!(
        access(&b.token(q, dave).await),
        json!([]),
        "not a member yet"
    );
    let r = a
        .post(
            &format!("/api/v1/teams/{team}/members"),
            Auth::Basic("alice", "alice-password"),
            json!({"user": "dave", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while access(&b.token(q, dave).await) == json!([]) {
        assert!(
            std::time::Instant::now() < deadline,
            "node B still serves its cached denial"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        access(&b.token(q, dave).await)[0]["actions"],
        json!(["pull"])
    );
    listening.abort();
}

/// Management changes leave Portus's activities (reference §10.4), shown on the
/// dashboards of those concerned and in the admin's CSV export.
#[tokio::test]
async fn management_changes_leave_activities() {
    let app = TestApp::new().await;
    let (admin, team) = team_fixture(&app).await;
    let alice_pw = pw("alice");
    let alice = Auth::Basic("alice", &alice_pw);
    let admin = Auth::Portus("admin", &admin);
    let ns = namespace_id(&app, alice, "devs").await;
    let ok = |r: &Resp| assert!(r.status.is_success(), "{:?}", r.body);
    ok(&app
        .put(
            &format!("/api/v1/namespaces/{ns}"),
            alice,
            json!({"namespace": {"description": "new words", "visibility": "protected"}}),
        )
        .await);
    ok(&app
        .put(
            &format!("/api/v1/teams/{team}"),
            alice,
            json!({"team": {"name": "devteam"}}),
        )
        .await);
    let members = app
        .get(&format!("/api/v1/teams/{team}/members"), alice)
        .await
        .body;
    let bob = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["display_name"] == "bob")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    ok(&app
        .put(
            &format!("/api/v1/teams/{team}/members/{bob}"),
            alice,
            json!({"role": "viewer"}),
        )
        .await);
    ok(&app
        .delete(&format!("/api/v1/teams/{team}/members/{bob}"), alice)
        .await);
    let r = app
        .post(
            "/api/v1/users/2/application_tokens",
            alice,
            json!({"application": "laptop"}),
        )
        .await;
    ok(&r);
    ok(&app
        .delete(
            &format!("/api/v1/users/application_tokens/{}", r.body["id"]),
            alice,
        )
        .await);
    let dave = app.get("/api/v1/users/dave@example.com", admin).await.body["id"]
        .as_i64()
        .unwrap();
    ok(&app.delete(&format!("/api/v1/users/{dave}"), admin).await);

    let dashboard = app.get("/api/v1/activities?all=true", alice).await.body;
    let keys: Vec<&str> = dashboard
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    for key in [
        "team.create",
        "team.add_member",
        "team.change_member_role",
        "team.remove_member",
        "team.change_team_name",
        "namespace.create",
        "namespace.change_namespace_description",
        "namespace.change_visibility",
        "application_token.create",
        "application_token.destroy",
    ] {
        assert!(keys.contains(&key), "{key} on alice's dashboard: {keys:?}");
    }
    assert!(
        !keys.contains(&"user.delete"),
        "not alice's business: {keys:?}"
    );
    let change = dashboard
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "team.change_member_role")
        .unwrap();
    assert_eq!(change["parameters"]["old_role"], "contributor");
    assert_eq!(change["parameters"]["new_role"], "viewer");
    assert_eq!(change["recipient_type"], "user");
    assert_eq!(change["owner"]["name"], "alice");

    let r = app.get("/api/v1/activities?format=csv", admin).await;
    let csv = r.body.as_str().unwrap();
    assert!(csv.contains("\"user.delete\",\"admin\",\"user\""), "{csv}");
    assert!(
        csv.contains("\\\"username\\\":\\\"dave\\\"")
            || csv.contains("\"\"username\"\":\"\"dave\"\""),
        "{csv}"
    );
}

#[tokio::test]
async fn liveness_and_readiness_probes() {
    let app = TestApp::new().await;
    for (path, status, body) in [
        ("/livez", StatusCode::OK, "ok"),
        ("/readyz", StatusCode::OK, "ready"),
    ] {
        let r = app.get(path, Auth::None).await;
        assert_eq!(r.status, status, "{path}");
        assert_eq!(r.body.as_str().map(str::trim), Some(body), "{path}");
    }
    // A migration this binary knows but the database lacks: not ready, still live.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&app.db_url).await.unwrap();
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let r = app.get("/readyz", Auth::None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.body.as_str().map(str::trim),
        Some("database migrations pending")
    );
    assert_eq!(app.get("/livez", Auth::None).await.status, StatusCode::OK);
}

/// `GET /metrics` from `peer`, optionally as a reverse proxy forwards it.
async fn scrape(app: &TestApp, peer: &str, forwarded: bool) -> Resp {
    let mut req = request(axum::http::Method::GET, "/metrics", Auth::None, None);
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    if forwarded {
        req.headers_mut()
            .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    }
    app.send(req).await
}

/// The value of the sample `name{labels}` in a Prometheus text body (0 when absent).
fn sample(body: &Resp, series: &str) -> f64 {
    body.body
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_token_requests_for_direct_private_peers_only() {
    let app = TestApp::new().await;
    let admin = app.bootstrap().await;
    app.create_registry(&admin, "registry.test:5000").await;
    let issued = "portcullis_token_requests_total{credential=\"password\",result=\"issued\"}";
    let refused = "portcullis_token_requests_total{credential=\"unknown\",result=\"refused\"}";
    let before = scrape(&app, "127.0.0.1", false).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(
        before.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let ok = app
        .get(
            "/v2/token?service=registry.test:5000&account=admin",
            Auth::Basic("admin", "adminpass1"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let bad = app
        .get(
            "/v2/token?service=registry.test:5000",
            Auth::Basic("admin", "wrong-password"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let after = scrape(&app, "10.1.2.3", false).await;
    assert_eq!(after.status, StatusCode::OK);
    // Other tests of this process count too: compare before and after.
    assert!(sample(&after, issued) >= sample(&before, issued) + 1.0);
    assert!(sample(&after, refused) >= sample(&before, refused) + 1.0);
    let body = after.body.as_str().unwrap();
    for series in [
        "portcullis_jobs_queued{kind=\"process_events\"}",
        "portcullis_db_pool_connections{state=\"idle\"}",
        "portcullis_credential_cache_lookups_total{result=\"miss\"}",
    ] {
        assert!(body.contains(series), "{series} missing:\n{body}");
    }
    // A public peer, or anybody through a proxy, sees no such page.
    for (peer, forwarded) in [
        ("203.0.113.7", false),
        ("127.0.0.1", true),
        ("10.0.0.5", true),
    ] {
        let r = scrape(&app, peer, forwarded).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{peer} forwarded={forwarded}"
        );
        assert!(!r.body.to_string().contains("portcullis_"), "{peer}");
    }
    let off = TestApp::with(|c| c.metrics.enabled = false).await;
    assert_eq!(
        scrape(&off, "127.0.0.1", false).await.status,
        StatusCode::NOT_FOUND
    );
}
