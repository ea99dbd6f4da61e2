//! The inventory API in process: every list shows exactly what the caller may pull,
//! a repository the caller may not pull is a 404 (its existence is not shown), each
//! kind of credential keeps its limits on stars, comments, descriptions and deletes,
//! the admin views refuse everyone else, and an unreachable registry is a 503.
//! Repositories are written through the store, as event processing would.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use portcullis_domain::inventory::ManifestFacts;
use portcullis_domain::time::Timestamp;
use portcullis_storage::{Actor, PushRecord};
use serde_json::{Value, json};

struct Ids {
    private_repo: i64,
    public_repo: i64,
    private_tag: i64,
}

/// [`team_fixture`] plus a public namespace `site` of team devs, and one pushed tag in
/// each of `devs/app` (private) and `site/web` (public).
async fn inventory(app: &TestApp, admin: &str) -> Ids {
    let alice_pw = pw("alice");
    let r = app
        .post(
            "/api/v1/namespaces",
            Auth::Basic("alice", &alice_pw),
            json!({"name": "site", "team": "devs"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let site = r.body["id"].as_i64().unwrap();
    let r = app
        .put(
            &format!("/api/v1/namespaces/{site}"),
            Auth::Portus("admin", admin),
            json!({"namespace": {"visibility": "public"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let devs = namespace_id(app, Auth::Portus("admin", admin), "devs").await;
    let store = app.other_node().await;
    let push = |ns: i64, repo: &str, digest: &str| PushRecord {
        namespace_id: ns,
        repository: repo.into(),
        tag: "v1".into(),
        manifest: ManifestFacts {
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            image_id: "c".repeat(64),
            size: 1234,
            platforms: vec![],
        },
        actor: Actor {
            user_id: None,
            name: "alice".into(),
        },
    };
    let now = Timestamp::from_secs(T0);
    let private_tag = store
        .record_push(
            &push(devs, "app", &format!("sha256:{}", "a".repeat(64))),
            None,
            now,
        )
        .await
        .unwrap();
    let public_tag = store
        .record_push(
            &push(site, "web", &format!("sha256:{}", "b".repeat(64))),
            None,
            now,
        )
        .await
        .unwrap();
    Ids {
        private_repo: private_tag.repository_id,
        public_repo: public_tag.repository_id,
        private_tag: private_tag.id,
    }
}

fn names(body: &Value) -> Vec<String> {
    let mut n: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["full_name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn lists_show_what_the_caller_may_pull() {
    let app = TestApp::new().await;
    let (admin, _) = team_fixture(&app).await;
    let ids = inventory(&app, &admin).await;
    let (carol_pw, dave_pw) = (pw("carol"), pw("dave"));
    let carol = Auth::Basic("carol", &carol_pw);
    let dave = Auth::Basic("dave", &dave_pw);
    let admin = Auth::Portus("admin", &admin);

    for (who, expected) in [
        (admin, vec!["devs/app", "site/web"]),
        (carol, vec!["devs/app", "site/web"]),
        (dave, vec!["site/web"]),
        (Auth::None, vec!["site/web"]),
    ] {
        let r = app.get("/api/v1/repositories", who).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(names(&r.body), expected);
        assert_eq!(r.headers["x-total"], expected.len().to_string().as_str());
    }
    // Not even the existence of a private repository is shown.
    let private = format!("/api/v1/repositories/{}", ids.private_repo);
    for uri in [
        private.clone(),
        format!("{private}/tags"),
        format!("{private}/tags/grouped"),
        format!("{private}/comments"),
    ] {
        assert_eq!(
            app.get(&uri, dave).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
        assert_eq!(
            app.get(&uri, Auth::None).await.status,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
        assert_eq!(app.get(&uri, carol).await.status, StatusCode::OK, "{uri}");
    }
    let r = app.get(&format!("{private}/tags"), carol).await;
    assert_eq!(r.body[0]["name"], "v1");
    assert_eq!(r.body[0]["size"], 1234);
    assert_eq!(
        app.get(
            &format!(
                "/api/v1/repositories/{}/tags/{}",
                ids.public_repo, ids.private_tag
            ),
            dave
        )
        .await
        .status,
        StatusCode::NOT_FOUND,
        "a tag is found only under its own repository"
    );
    let r = app
        .get(
            &format!("/api/v1/repositories/{}", ids.public_repo),
            Auth::None,
        )
        .await;
    assert_eq!(
        (r.status, r.body["destroyable"].clone()),
        (StatusCode::OK, json!(false))
    );

    // The admin views.
    for uri in [
        "/api/v1/tags",
        "/api/v1/events",
        "/api/v1/jobs",
        "/api/v1/activities?format=csv",
    ] {
        assert_eq!(
            app.get(uri, carol).await.status,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
        assert_eq!(
            app.get(uri, Auth::None).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        assert_eq!(app.get(uri, admin).await.status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn anonymous_browsing_can_be_switched_off() {
    let app = TestApp::with(|c| c.anonymous_browsing.enabled = false).await;
    let (admin, _) = team_fixture(&app).await;
    let ids = inventory(&app, &admin).await;
    assert_eq!(
        app.get("/api/v1/repositories", Auth::None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(
            &format!("/api/v1/repositories/{}", ids.public_repo),
            Auth::None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn each_credential_keeps_its_limits() {
    let app = TestApp::new().await;
    let (admin, _) = team_fixture(&app).await;
    let ids = inventory(&app, &admin).await;
    let (alice_pw, bob_pw, carol_pw, dave_pw) = (pw("alice"), pw("bob"), pw("carol"), pw("dave"));
    let alice = Auth::Basic("alice", &alice_pw);
    let bob = Auth::Basic("bob", &bob_pw);
    let carol = Auth::Basic("carol", &carol_pw);
    let dave = Auth::Basic("dave", &dave_pw);
    let private = format!("/api/v1/repositories/{}", ids.private_repo);
    let public = format!("/api/v1/repositories/{}", ids.public_repo);

    // Stars: whoever may pull; the list shows the caller's own star.
    assert_eq!(
        app.post(&format!("{private}/star"), dave, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = app.post(&format!("{public}/star"), dave, json!({})).await;
    assert_eq!(
        (r.status, r.body["starred"].clone(), r.body["stars"].clone()),
        (StatusCode::OK, json!(true), json!(1))
    );
    let r = app.get(&public, carol).await;
    assert_eq!(
        (r.body["starred"].clone(), r.body["stars"].clone()),
        (json!(false), json!(1))
    );
    assert_eq!(
        names(
            &app.get("/api/v1/repositories?starred=true", dave)
                .await
                .body
        ),
        ["site/web"]
    );
    assert!(
        names(
            &app.get("/api/v1/repositories?starred=true", carol)
                .await
                .body
        )
        .is_empty()
    );

    // Comments: whoever may pull comments; only the author or an admin deletes.
    let r = app
        .post(
            &format!("{public}/comments"),
            dave,
            json!({"comment": {"body": "nice"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let comment = r.body["id"].as_i64().unwrap();
    assert_eq!(
        app.post(
            &format!("{private}/comments"),
            dave,
            json!({"comment": {"body": "x"}})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(
            &format!("{public}/comments"),
            dave,
            json!({"comment": {"body": "  "}})
        )
        .await
        .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.delete(&format!("{public}/comments/{comment}"), alice)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("{public}/comments/{comment}"), dave)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // Descriptions: namespace owners (and admins).
    let describe = json!({"repository": {"description": "the app"}});
    for who in [bob, carol] {
        assert_eq!(
            app.put(&private, who, describe.clone()).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        app.put(&public, dave, describe.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    let r = app.put(&private, alice, describe).await;
    assert_eq!(
        (r.status, r.body["description"].clone()),
        (StatusCode::OK, json!("the app"))
    );

    // Deletes: owners (delete.contributors is off); the registry is down here, which
    // is a 503 (try again), never a 401 or a silent success.
    let tag = format!("/api/v1/tags/{}", ids.private_tag);
    for who in [bob, carol] {
        assert_eq!(app.delete(&tag, who).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            app.delete(&private, who).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(app.delete(&tag, dave).await.status, StatusCode::NOT_FOUND);
    let r = app.delete(&tag, alice).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert!(
        !r.body["message"].as_str().unwrap().contains("127.0.0.1"),
        "no internals: {:?}",
        r.body
    );
    assert_eq!(
        app.get(&format!("{private}/tags"), alice)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing lost"
    );
    // Deleting the namespace deletes its images in the registry first: with the
    // registry down, nothing is deleted.
    let devs = namespace_id(&app, alice, "devs").await;
    let r = app
        .delete(&format!("/api/v1/namespaces/{devs}"), alice)
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(app.get(&private, alice).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/api/v1/namespaces/{devs}"), alice)
            .await
            .status,
        StatusCode::OK
    );
}
