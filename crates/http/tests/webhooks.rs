//! The webhook API and deliveries, in process: who may see and change webhooks (each
//! kind of credential), what is never returned (password, header values, the secret
//! after create), validation, and deliveries of real notifications to a real HTTP
//! receiver: signed, retried with backoff after a failure, re-sent on request, never
//! duplicated, refused for private addresses unless allowed. The worker is drained by
//! the test; time is the `FixedClock`.

#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use portcullis_testkit::receiver::Receiver;
use serde_json::{Value, json};
use std::time::Duration;

const HOOKS: &str = "/api/v1/namespaces/7/webhooks";

/// The id of namespace `devs` of [`team_fixture`], checked.
async fn devs_namespace(app: &TestApp, admin: &str) -> i64 {
    let ns = namespace_id(app, Auth::Portus("admin", admin), "devs").await;
    assert_eq!(format!("/api/v1/namespaces/{ns}/webhooks"), HOOKS);
    ns
}

async fn pull_only_token(app: &TestApp, user_id: i64, user: &str) -> String {
    let password = pw(user);
    let r = app
        .post(
            &format!("/api/v1/users/{user_id}/application_tokens"),
            Auth::Basic(user, &password),
            json!({"application": "ro", "pull_only": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["plain_token"].as_str().unwrap().to_owned()
}

fn hook_body(url: &str) -> Value {
    json!({"webhook": {"name": "ci", "url": url, "request_method": "POST",
        "content_type": "application/json", "username": "hook", "password": "hook-password",
        "enabled": true}})
}

#[tokio::test]
async fn who_may_see_and_change_webhooks() {
    let app = TestApp::new().await;
    let (admin, _) = team_fixture(&app).await;
    devs_namespace(&app, &admin).await;
    let (alice_pw, bob_pw, carol_pw, dave_pw) = (pw("alice"), pw("bob"), pw("carol"), pw("dave"));
    let alice = Auth::Basic("alice", &alice_pw);
    let bob = Auth::Basic("bob", &bob_pw);
    let carol = Auth::Basic("carol", &carol_pw);
    let dave = Auth::Basic("dave", &dave_pw);
    let admin = Auth::Portus("admin", &admin);

    // Anonymous: 401 on every route.
    assert_eq!(
        app.get(HOOKS, Auth::None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post(HOOKS, Auth::None, hook_body("https://hooks.example.com"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Only owners (and admins) create; contributors and viewers do not.
    for who in [bob, carol, dave] {
        let r = app
            .post(HOOKS, who, hook_body("https://hooks.example.com"))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    }
    let r = app
        .post(HOOKS, alice, hook_body("hooks.example.com/in"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pcwh_") && secret.len() > 40, "{secret}");
    // A missing scheme gets http:// (Portus); the password is never returned.
    assert_eq!(r.body["url"], "http://hooks.example.com/in");
    assert_eq!(r.body["password_set"], true);
    assert!(r.body.get("password").is_none(), "{:?}", r.body);
    assert_eq!(r.body["actions"], json!(["push", "delete"]));
    assert_eq!(r.body["repository_glob"], "*");
    assert_eq!(
        (r.body["updatable"].clone(), r.body["destroyable"].clone()),
        (json!(true), json!(true))
    );
    let text = serde_json::to_string(&r.body).unwrap();
    assert!(!text.contains("hook-password"), "{text}");

    // Members see it (never the secret); outsiders do not.
    let one = format!("{HOOKS}/{id}");
    for who in [alice, bob, carol, admin] {
        let r = app.get(&one, who).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert!(r.body.get("secret").is_none() && r.body.get("password").is_none());
        let r = app.get(HOOKS, who).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_array().unwrap().len(), 1);
        assert_eq!(r.headers["x-total"], "1");
    }
    let r = app.get(&one, carol).await;
    assert_eq!(
        (r.body["updatable"].clone(), r.body["destroyable"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(app.get(&one, dave).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(HOOKS, dave).await.status, StatusCode::FORBIDDEN);
    // The namespace entity says who sees webhooks.
    let ns = HOOKS.trim_end_matches("/webhooks");
    assert_eq!(
        app.get(ns, carol).await.body["permissions"]["webhooks"],
        true
    );

    // Changes: owners and admins; not contributors or viewers.
    let rename = json!({"webhook": {"name": "renamed"}});
    for who in [bob, carol] {
        assert_eq!(
            app.put(&one, who, rename.clone()).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.post(
                &format!("{one}/headers"),
                who,
                json!({"webhook_header": {"name": "X-A", "value": "1"}})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(app.delete(&one, who).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            app.post(&format!("{one}/secret"), who, json!({}))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
    let r = app.put(&one, alice, rename.clone()).await;
    assert_eq!(
        (r.status, r.body["name"].clone()),
        (StatusCode::OK, json!("renamed"))
    );
    assert_eq!(
        r.body["url"], "http://hooks.example.com/in",
        "other fields unchanged"
    );
    assert_eq!(r.body["password_set"], true);
    let r = app
        .put(&format!("{one}/toggle_enabled"), alice, json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["enabled"].clone()),
        (StatusCode::OK, json!(false))
    );

    // A pull-only token of the owner changes nothing, but still reads.
    let ro = pull_only_token(&app, 2, "alice").await;
    let ro = Auth::Basic("alice", &ro);
    assert_eq!(app.get(&one, ro).await.status, StatusCode::OK);
    for r in [
        app.post(HOOKS, ro, hook_body("https://hooks.example.com"))
            .await,
        app.put(&one, ro, rename.clone()).await,
        app.delete(&one, ro).await,
        app.post(&format!("{one}/secret"), ro, json!({})).await,
        app.post(
            &format!("{one}/headers"),
            ro,
            json!({"webhook_header": {"name": "X-A", "value": "1"}}),
        )
        .await,
    ] {
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
        assert!(
            r.body["message"].as_str().unwrap().contains("read-only"),
            "{:?}",
            r.body
        );
    }

    // Rotating the secret returns a new one, once.
    let r = app.post(&format!("{one}/secret"), alice, json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let rotated = r.body["secret"].as_str().unwrap();
    assert!(rotated.starts_with("pcwh_") && rotated != secret);

    // A webhook is only reachable through its own namespace.
    let personal = format!("/api/v1/namespaces/1/webhooks/{id}");
    assert_eq!(
        app.get(&personal, admin).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/namespaces/999/webhooks", admin)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Admins may do everything; deletion leaves an activity, like every change.
    assert_eq!(app.delete(&one, admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&one, alice).await.status, StatusCode::NOT_FOUND);
    // They show on the dashboards of the namespace's members.
    let r = app.get("/api/v1/activities?all=true", alice).await;
    let keys: Vec<&str> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["trackable_type"] == "webhook")
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    for key in [
        "webhook.create",
        "webhook.update",
        "webhook.disabled",
        "webhook.destroy",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
}

#[tokio::test]
async fn create_and_manage_switches() {
    let app = TestApp::with(|c| {
        c.user_permission.create_webhook.enabled = false;
        c.user_permission.manage_webhook.enabled = false;
    })
    .await;
    let (admin, _) = team_fixture(&app).await;
    devs_namespace(&app, &admin).await;
    let alice_pw = pw("alice");
    let alice = Auth::Basic("alice", &alice_pw);
    let admin = Auth::Portus("admin", &admin);
    let r = app
        .post(HOOKS, alice, hook_body("https://hooks.example.com"))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(HOOKS, admin, hook_body("https://hooks.example.com"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let one = format!("{HOOKS}/{}", r.body["id"]);
    let r = app.get(&one, alice).await;
    assert_eq!(
        (r.status, r.body["updatable"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert_eq!(
        app.put(&one, alice, json!({"webhook": {"enabled": false}}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.delete(&one, alice).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_webhooks_are_refused_with_the_field() {
    let app = TestApp::new().await;
    let (admin, _) = team_fixture(&app).await;
    devs_namespace(&app, &admin).await;
    let admin = Auth::Portus("admin", &admin);
    let cases = [
        (json!({"name": "", "url": "https://h.example.com"}), "name"),
        (json!({"name": "x", "url": ""}), "url"),
        (json!({"name": "x", "url": "ftp://h.example.com"}), "url"),
        (
            json!({"name": "x", "url": "https://user:pw@h.example.com"}),
            "url",
        ),
        (
            json!({"name": "x", "url": "http://169.254.169.254/latest"}),
            "url",
        ),
        (json!({"name": "x", "url": "http://[::1]:8080/"}), "url"),
        (json!({"name": "x", "url": "10.0.0.7/hook"}), "url"),
        (
            json!({"name": "x", "url": "https://h.example.com", "request_method": "PUT"}),
            "request_method",
        ),
        (
            json!({"name": "x", "url": "https://h.example.com", "content_type": "text/xml"}),
            "content_type",
        ),
        (
            json!({"name": "x", "url": "https://h.example.com", "actions": []}),
            "actions",
        ),
        (
            json!({"name": "x", "url": "https://h.example.com", "actions": ["pull"]}),
            "actions",
        ),
        (
            json!({"name": "x", "url": "https://h.example.com", "repository_glob": "a b"}),
            "repository_glob",
        ),
    ];
    for (fields, field) in cases {
        let r = app.post(HOOKS, admin, json!({"webhook": fields})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields}: {:?}",
            r.body
        );
        assert!(
            r.body["message"][field].is_array(),
            "{fields}: {:?}",
            r.body
        );
    }
    let r = app
        .post(
            HOOKS,
            admin,
            json!({"webhook": {"name": "x", "url": "https://h.example.com", "colour": "red"}}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {:?}",
        r.body
    );
    assert_eq!(
        app.get(HOOKS, admin).await.body,
        json!([]),
        "nothing was stored"
    );

    let r = app
        .post(HOOKS, admin, hook_body("https://h.example.com"))
        .await;
    let headers = format!("{HOOKS}/{}/headers", r.body["id"]);
    let add = |name: &str, value: &str| json!({"webhook_header": {"name": name, "value": value}});
    let r = app
        .post(&headers, admin, add("X-Token", "s3cr3t-value"))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let header_id = r.body["id"].as_i64().unwrap();
    assert!(r.body.get("value").is_none());
    for (name, value, field) in [
        ("x-token", "again", "name"),
        ("X-Portcullis-Signature", "forged", "name"),
        ("Content-Length", "1", "name"),
        ("Bad Name", "v", "name"),
        ("", "v", "name"),
    ] {
        let r = app.post(&headers, admin, add(name, value)).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {:?}",
            r.body
        );
        assert!(r.body["message"][field].is_array(), "{name}: {:?}", r.body);
    }
    let r = app.get(&headers, admin).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert!(
        !serde_json::to_string(&r.body)
            .unwrap()
            .contains("s3cr3t-value")
    );
    assert_eq!(
        app.delete(&format!("{headers}/{header_id}"), admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("{headers}/{header_id}"), admin)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// A registry notification envelope with one delete event of `devs/app`.
fn delete_envelope(event_id: &str) -> String {
    json!({"events": [{
        "id": event_id,
        "timestamp": "2026-11-23T08:13:24.636709599Z",
        "action": "delete",
        "target": {"digest": "sha256:a84d6d2480d1caca64913c3fcd46b0e60d4035081ffcfecd64fee836457765c2", "repository": "devs/app"},
        "request": {"id": "r1", "addr": "127.0.0.1:49666", "host": "registry.test:5000", "method": "DELETE", "useragent": "skopeo/1.9.3"},
        "actor": {"name": "alice"},
        "source": {"addr": "vm:5100", "instanceID": "i1"}
    }]})
    .to_string()
}

async fn notify(app: &TestApp, envelope: String) {
    let r = app
        .send(
            Request::post("/v2/webhooks/events")
                .header(
                    "content-type",
                    "application/vnd.docker.distribution.events.v1+json",
                )
                .header("authorization", "Bearer notify-secret")
                .body(Body::from(envelope))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

async fn drain(app: &TestApp) {
    portcullis_worker::Worker::new(app.services.clone(), "test-worker", 1)
        .drain()
        .await
        .unwrap();
}

async fn deliveries(app: &TestApp, auth: Auth<'_>, hook: i64) -> Vec<Value> {
    let r = app.get(&format!("{HOOKS}/{hook}/deliveries"), auth).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

async fn deliveries_are_signed_retried_and_never_duplicated(backend: Backend) {
    let app = TestApp::on(backend, |c| c.webhooks.allow_private_networks = true).await;
    let (admin, _) = team_fixture(&app).await;
    devs_namespace(&app, &admin).await;
    let carol_pw = pw("carol");
    let carol = Auth::Basic("carol", &carol_pw);
    let admin = Auth::Portus("admin", &admin);
    let receiver = Receiver::start(&[500]).await.unwrap();

    let r = app.post(HOOKS, admin, hook_body(&receiver.url)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let hook = r.body["id"].as_i64().unwrap();
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("{HOOKS}/{hook}/headers"),
            admin,
            json!({"webhook_header": {"name": "X-Token", "value": "header-secret"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Neither of these fires: another repository filter, and a disabled webhook.
    let mut filtered = hook_body(&receiver.url);
    filtered["webhook"]["repository_glob"] = json!("web*");
    assert_eq!(
        app.post(HOOKS, admin, filtered).await.status,
        StatusCode::CREATED
    );
    let mut disabled = hook_body(&receiver.url);
    disabled["webhook"]["enabled"] = json!(false);
    assert_eq!(
        app.post(HOOKS, admin, disabled).await.status,
        StatusCode::CREATED
    );

    notify(&app, delete_envelope("ev-1")).await;
    drain(&app).await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1, "one attempt so far");
    let first = &got[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("x-token"), Some("header-secret"));
    assert!(first.header("authorization").unwrap().starts_with("Basic "));
    // The body is the single registry event, as Portus sent it.
    let event: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(
        (event["id"].clone(), event["action"].clone()),
        (json!("ev-1"), json!("delete"))
    );
    let signature = first.header("x-portcullis-signature").unwrap();
    assert!(
        portcullis_webhooks::sign::verify(signature, secret.as_bytes(), &first.body, T0, 60),
        "{signature}"
    );
    assert!(!portcullis_webhooks::sign::verify(
        signature,
        b"wrong",
        &first.body,
        T0,
        60
    ));
    let uuid = first.header("x-portcullis-delivery").unwrap().to_owned();

    // The failure is recorded (custom header values redacted) and retried later.
    let d = deliveries(&app, carol, hook).await;
    assert_eq!(d.len(), 1);
    assert_eq!(
        (
            d[0]["status"].clone(),
            d[0]["attempts"].clone(),
            d[0]["success"].clone()
        ),
        (json!(500), json!(1), json!(false))
    );
    assert_eq!(d[0]["uuid"], uuid.as_str());
    let logged = d[0]["request_header"].as_str().unwrap();
    assert!(
        logged.contains("X-Token: [redacted]") && !logged.contains("header-secret"),
        "{logged}"
    );
    assert!(
        logged.contains("Authorization: Basic [redacted]"),
        "{logged}"
    );
    drain(&app).await;
    assert_eq!(receiver.received().len(), 1, "not before the backoff");
    app.clock.advance_secs(3);
    drain(&app).await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        got[1].header("x-portcullis-delivery"),
        Some(uuid.as_str()),
        "a retry keeps its delivery id"
    );
    assert!(portcullis_webhooks::sign::verify(
        got[1].header("x-portcullis-signature").unwrap(),
        secret.as_bytes(),
        &got[1].body,
        T0 + 3,
        60
    ));
    let d = deliveries(&app, carol, hook).await;
    assert_eq!(
        (
            d[0]["status"].clone(),
            d[0]["attempts"].clone(),
            d[0]["success"].clone()
        ),
        (json!(200), json!(2), json!(true))
    );

    // Every attempt is kept.
    let r = app
        .get(&format!("{HOOKS}/{hook}/deliveries/{}", d[0]["id"]), carol)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let statuses: Vec<Value> = r.body["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!([a["attempt"], a["status"]]))
        .collect();
    assert_eq!(statuses, [json!([1, 500]), json!([2, 200])]);

    // The same event again (the registry retrying): no second delivery.
    notify(&app, delete_envelope("ev-1")).await;
    drain(&app).await;
    assert_eq!(deliveries(&app, admin, hook).await.len(), 1);
    assert_eq!(receiver.received().len(), 2);

    // Re-send on request: viewers may not, owners and admins may.
    let resend = format!("{HOOKS}/{hook}/deliveries/{}", d[0]["id"]);
    assert_eq!(
        app.put(&resend, carol, json!({})).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.put(&resend, admin, json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    drain(&app).await;
    receiver.wait_for(3, Duration::from_secs(5)).await.unwrap();
    assert_eq!(deliveries(&app, admin, hook).await[0]["attempts"], 3);
    assert_eq!(
        app.put(&format!("{HOOKS}/{hook}/deliveries/999"), admin, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deliveries_sqlite() {
    deliveries_are_signed_retried_and_never_duplicated(Backend::Sqlite).await;
}

#[tokio::test]
async fn deliveries_postgres() {
    deliveries_are_signed_retried_and_never_duplicated(Backend::Postgres).await;
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let app = TestApp::new().await;
    let (admin, _) = team_fixture(&app).await;
    devs_namespace(&app, &admin).await;
    let admin = Auth::Portus("admin", &admin);
    let receiver = Receiver::start(&[]).await.unwrap();
    // An IP literal is refused when the webhook is saved ...
    let r = app.post(HOOKS, admin, hook_body(&receiver.url)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    // ... a name is checked after resolution, at delivery.
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let r = app.post(HOOKS, admin, hook_body(&by_name)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let hook = r.body["id"].as_i64().unwrap();
    notify(&app, delete_envelope("ev-private")).await;
    drain(&app).await;
    let d = deliveries(&app, admin, hook).await;
    assert_eq!(d[0]["status"], 0, "{:?}", d[0]);
    assert!(
        d[0]["error"].as_str().unwrap().contains("refused"),
        "{:?}",
        d[0]
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn delivery_history_is_bounded() {
    let app = TestApp::with(|c| {
        c.webhooks.allow_private_networks = true;
        c.webhooks.history = 2;
    })
    .await;
    let (admin, _) = team_fixture(&app).await;
    devs_namespace(&app, &admin).await;
    let admin = Auth::Portus("admin", &admin);
    let receiver = Receiver::start(&[]).await.unwrap();
    let r = app.post(HOOKS, admin, hook_body(&receiver.url)).await;
    let hook = r.body["id"].as_i64().unwrap();
    for i in 0..4 {
        notify(&app, delete_envelope(&format!("ev-{i}"))).await;
    }
    drain(&app).await;
    receiver.wait_for(4, Duration::from_secs(5)).await.unwrap();
    assert_eq!(deliveries(&app, admin, hook).await.len(), 4);
    // The hourly cleanup prunes to `webhooks.history`.
    app.services.background.schedule_due().await.unwrap();
    drain(&app).await;
    let kept: Vec<Value> = deliveries(&app, admin, hook)
        .await
        .iter()
        .map(|d| d["event_id"].clone())
        .collect();
    assert_eq!(kept, [json!("ev-2"), json!("ev-3")]);
}

/// A pending event whose `process_events` job was lost (on PostgreSQL a worker can
/// claim the queued job just before a new event's transaction commits; here the job is
/// cancelled to stand for that) gets a job from the next scheduler tick, and is
/// processed.
#[tokio::test]
async fn pending_events_without_a_job_get_one_within_a_tick() {
    let app = TestApp::new().await;
    let (admin_token, _) = team_fixture(&app).await;
    let admin = Auth::Portus("admin", &admin_token);
    notify(&app, delete_envelope("ev-lost")).await;
    let jobs = app.get("/api/v1/jobs?state=queued", admin).await;
    let queued = jobs.body.as_array().unwrap();
    assert_eq!(queued.len(), 1, "{:?}", jobs.body);
    let id = queued[0]["id"].as_i64().unwrap();
    let r = app
        .post(&format!("/api/v1/jobs/{id}/cancel"), admin, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let pending = || async { app.get("/api/v1/events?status=pending", admin).await.body };
    assert_eq!(pending().await.as_array().unwrap().len(), 1);

    let queued = app.services.background.schedule_due().await.unwrap();
    assert!(queued.contains(&"process_events"), "{queued:?}");
    // Queued once: the next tick adds nothing while it waits.
    let again = app.services.background.schedule_due().await.unwrap();
    assert!(!again.contains(&"process_events"), "{again:?}");
    drain(&app).await;
    assert_eq!(pending().await.as_array().unwrap().len(), 0);
    // Nothing pending: no job.
    let idle = app.services.background.schedule_due().await.unwrap();
    assert!(!idle.contains(&"process_events"), "{idle:?}");
}
