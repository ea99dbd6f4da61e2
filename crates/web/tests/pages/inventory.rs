//! Namespaces, repositories, tags and the profile: what each role sees and may do,
//! forms and their errors, and user content rendered safely. Repositories are written
//! through the store, as event processing would.

use crate::browser::{Browser, signed_in, web_app};
use crate::common::{Auth, Backend, T0, TestApp, namespace_id, pw, team_fixture};
use axum::http::StatusCode;
use portcullis_domain::inventory::{ManifestFacts, Platform};
use portcullis_domain::time::Timestamp;
use portcullis_storage::{Actor, PushRecord};

struct Fixture {
    admin_token: String,
    devs_ns: i64,
    repo: i64,
    /// `v1` and `latest` share a digest; `v2` has its own, with two platforms.
    v1: i64,
    v2: i64,
}

async fn push(
    app: &TestApp,
    ns: i64,
    tag: &str,
    digest_char: char,
    platforms: Vec<Platform>,
) -> portcullis_domain::inventory::Tag {
    let store = app.other_node().await;
    let record = PushRecord {
        namespace_id: ns,
        repository: "app".into(),
        tag: tag.into(),
        manifest: ManifestFacts {
            digest: format!("sha256:{}", digest_char.to_string().repeat(64)),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            image_id: format!("sha256:{}", "c".repeat(64)),
            size: 24_536_678,
            platforms,
        },
        actor: Actor {
            user_id: None,
            name: "alice".into(),
        },
    };
    store
        .record_push(&record, None, Timestamp::from_secs(T0))
        .await
        .unwrap()
}

/// [`team_fixture`] (alice owner, bob contributor, carol viewer, dave outsider, private
/// namespace `devs`) and `devs/app` with tags v1 = latest and v2.
async fn fixture(app: &TestApp) -> Fixture {
    let (admin_token, _) = team_fixture(app).await;
    let devs_ns = namespace_id(app, Auth::Portus("admin", &admin_token), "devs").await;
    let v1 = push(app, devs_ns, "v1", 'a', vec![]).await;
    push(app, devs_ns, "latest", 'a', vec![]).await;
    let arm = |arch: &str, variant: Option<&str>, c: char| Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: variant.map(str::to_owned),
        digest: format!("sha256:{}", c.to_string().repeat(64)),
        size: 1536,
    };
    let v2 = push(
        app,
        devs_ns,
        "v2",
        'b',
        vec![arm("amd64", None, 'd'), arm("arm64", Some("v8"), 'e')],
    )
    .await;
    Fixture {
        admin_token,
        devs_ns,
        repo: v1.repository_id,
        v1: v1.id,
        v2: v2.id,
    }
}

#[tokio::test]
async fn the_repository_page_offers_what_each_role_may_do() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let f = fixture(&app).await;
    let url = format!("/repositories/{}", f.repo);
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    let p = alice.get(&url).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    for shown in [
        "<h1>devs/app</h1>",
        "Delete repository",
        "Delete selected",
        "Edit the description",
        &format!("name=\"tag_{}\"", f.v2),
        "docker pull registry.test:5000/devs/app:latest",
        "23.4 MiB",
        "linux/amd64, linux/arm64/v8",
        "c".repeat(12).as_str(),
    ] {
        assert!(
            p.body.contains(shown),
            "alice should see {shown:?}: {}",
            p.body
        );
    }
    // v1 and latest share a digest: one row, one checkbox.
    assert_eq!(p.body.matches("type=\"checkbox\" name=\"tag_").count(), 2);
    let mut carol = signed_in(&app, "carol", &pw("carol")).await;
    let p = carol.get(&url).await;
    assert_eq!(p.status, StatusCode::OK);
    for hidden in [
        "Delete repository",
        "Delete selected",
        "Edit the description",
        "type=\"checkbox\"",
    ] {
        assert!(
            !p.body.contains(hidden),
            "carol (viewer) must not see {hidden:?}"
        );
    }
    assert!(p.body.contains("☆ Star") && p.body.contains("Write a comment"));
    // The server refuses what the page does not offer.
    let p = carol.post(&format!("{url}/delete"), &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "{}", p.body);
    let tag_field = format!("tag_{}", f.v2);
    let p = carol
        .post(&format!("{url}/tags/delete"), &[(&tag_field, "on")])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = carol
        .post(
            &format!("{url}/description"),
            &[("description", "mine now")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // An outsider cannot even learn that it exists.
    let mut dave = signed_in(&app, "dave", &pw("dave")).await;
    assert_eq!(dave.get(&url).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        dave.get(&format!("/tags/{}", f.v1)).await.status,
        StatusCode::NOT_FOUND
    );
    // Nor can an anonymous visitor of a private namespace.
    let mut anonymous = Browser::new(&app);
    assert_eq!(anonymous.get(&url).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_tag_page_shows_its_platforms() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let f = fixture(&app).await;
    let mut bob = signed_in(&app, "bob", &pw("bob")).await;
    let p = bob.get(&format!("/tags/{}", f.v2)).await;
    assert_eq!(p.status, StatusCode::OK);
    for shown in [
        "devs/app:v2",
        "docker pull registry.test:5000/devs/app:v2",
        "application/vnd.oci.image.index.v1+json",
        "linux/arm64/v8",
        &format!("sha256:{}", "e".repeat(64)),
        "1.5 KiB",
    ] {
        assert!(p.body.contains(shown), "{shown:?}: {}", p.body);
    }
    assert_eq!(bob.get("/tags/999999").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stars_comments_and_descriptions_through_forms_rendered_safely() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let f = fixture(&app).await;
    let url = format!("/repositories/{}", f.repo);
    let mut carol = signed_in(&app, "carol", &pw("carol")).await;
    carol.get(&url).await;
    let p = carol
        .post(&format!("{url}/star"), &[("starred", "true")])
        .await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, url.as_str())
    );
    let p = carol.get(&url).await;
    assert!(
        p.body.contains("aria-pressed=\"true\"") && p.body.contains("★ Starred · 1"),
        "{}",
        p.body
    );
    let listed = format!("href=\"{url}\">devs/app</a>");
    assert!(
        carol
            .get("/dashboard?tab=starred")
            .await
            .body
            .contains(&listed)
    );
    carol
        .post(&format!("{url}/star"), &[("starred", "false")])
        .await;
    assert!(carol.get(&url).await.body.contains("☆ Star · 0"));
    assert!(
        !carol
            .get("/dashboard?tab=starred")
            .await
            .body
            .contains(&listed)
    );

    let evil = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(2))";
    carol
        .post(&format!("{url}/comments"), &[("body", evil)])
        .await;
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    alice.get(&url).await;
    alice
        .post(
            &format!("{url}/description"),
            &[("description", "<script>alert(3)</script>\n\n# App")],
        )
        .await;
    let p = alice.get(&url).await;
    assert!(p.body.contains("<h1>App</h1>"), "{}", p.body);
    assert!(p.body.contains("<strong>bold</strong>"));
    for raw in ["<script>alert(3)", "<img src=x", "javascript:alert"] {
        assert!(
            !p.body.contains(raw),
            "{raw:?} must not reach the page: {}",
            p.body
        );
    }
    assert!(p.body.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // Alice (not the author, not an admin) has no delete button for carol's comment.
    assert!(!p.body.contains("/comments/1/delete"));
    let p = alice.post(&format!("{url}/comments/1/delete"), &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = carol.get(&url).await;
    assert!(p.body.contains("/comments/1/delete"));
    carol.post(&format!("{url}/comments/1/delete"), &[]).await;
    assert!(carol.get(&url).await.body.contains("No comments yet."));
}

#[tokio::test]
async fn deleting_a_tag_with_the_registry_down_keeps_it_and_says_so() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let f = fixture(&app).await;
    let url = format!("/repositories/{}", f.repo);
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    alice.get(&url).await;
    let field = format!("tag_{}", f.v2);
    let p = alice
        .post(&format!("{url}/tags/delete"), &[(&field, "on")])
        .await;
    assert_eq!(p.status, StatusCode::SERVICE_UNAVAILABLE, "{}", p.body);
    assert!(p.body.contains("Temporarily unavailable"));
    assert!(alice.get(&url).await.body.contains(">v2</a>"));
}

#[tokio::test]
async fn namespaces_list_create_change_visibility() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let f = fixture(&app).await;
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    let p = alice.get("/namespaces").await;
    assert_eq!(p.status, StatusCode::OK);
    let special = &p.body[p.body.find("Special namespaces").unwrap()
        ..p.body.find("Namespaces of your teams").unwrap()];
    assert!(special.contains(">alice</a>"), "{special}");
    let member = &p.body[p.body.find("Namespaces of your teams").unwrap()
        ..p.body.find("Other namespaces").unwrap()];
    assert!(
        member.contains(&format!("/namespaces/{}\">devs</a>", f.devs_ns)),
        "{member}"
    );
    // A refused form keeps what was typed and names the problem.
    let p = alice
        .post(
            "/namespaces",
            &[
                ("name", "Bad Name!"),
                ("team", "devs"),
                ("description", "kept text"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("kept text") && p.body.contains("value=\"Bad Name!\""),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("class=\"field-error\" id=\"ns-name-error\""),
        "{}",
        p.body
    );
    let p = alice
        .post("/namespaces", &[("name", "web"), ("team", "nosuchteam")])
        .await;
    assert!(p.body.contains("Team does not exist"), "{}", p.body);
    let p = alice
        .post(
            "/namespaces",
            &[
                ("name", "web"),
                ("team", "devs"),
                ("description", "*public* site"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page_url = p.location().to_owned();
    let p = alice.get(&page_url).await;
    assert!(p.body.contains("<em>public</em>") && p.body.contains("Delete namespace"));
    alice.post(&page_url, &[("visibility", "public")]).await;
    assert!(
        alice
            .get(&page_url)
            .await
            .body
            .contains("<span class=\"badge\">public</span>")
    );
    // Carol (viewer) sees the namespace without the controls; the server refuses her anyway.
    let mut carol = signed_in(&app, "carol", &pw("carol")).await;
    let p = carol.get(&page_url).await;
    assert!(!p.body.contains("Delete namespace") && !p.body.contains("name=\"visibility\""));
    let p = carol.post(&page_url, &[("visibility", "private")]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = carol.post(&format!("{page_url}/delete"), &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Public now: anybody may look at its repositories' list.
    let _ = f.admin_token;
}

#[tokio::test]
async fn repositories_are_paged_and_searchable() {
    let app = web_app(Backend::Sqlite, |c| c.pagination.per_page = 2).await;
    let (admin, _) = team_fixture(&app).await;
    let devs = namespace_id(&app, Auth::Portus("admin", &admin), "devs").await;
    let store = app.other_node().await;
    for name in ["alpha", "beta", "gamma"] {
        let record = PushRecord {
            namespace_id: devs,
            repository: name.into(),
            tag: "v1".into(),
            manifest: ManifestFacts {
                digest: format!("sha256:{}", "a".repeat(64)),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                image_id: String::new(),
                size: 1,
                platforms: vec![],
            },
            actor: Actor {
                user_id: None,
                name: "alice".into(),
            },
        };
        store
            .record_push(&record, None, Timestamp::from_secs(T0))
            .await
            .unwrap();
    }
    let mut bob = signed_in(&app, "bob", &pw("bob")).await;
    let p = bob.get("/repositories").await;
    assert!(
        p.body.contains("devs/alpha")
            && p.body.contains("devs/beta")
            && !p.body.contains("devs/gamma"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("aria-current=\"page\">1</strong>")
            && p.body.contains("of 2")
            && p.body.contains("rel=\"next\""),
        "{}",
        p.body
    );
    let p = bob.get("/repositories?page=2").await;
    assert!(p.body.contains("devs/gamma") && p.body.contains("rel=\"prev\""));
    let p = bob.get("/repositories?sort=updated").await;
    assert!(
        p.body.contains("<strong>last update</strong>")
            && p.body.contains("sort=updated&#38;page=2"),
        "{}",
        p.body
    );
    let p = bob.get("/repositories?search=gam").await;
    assert!(p.body.contains("devs/gamma") && !p.body.contains("devs/alpha"));
    // Dave is in no team: the private namespace's repositories are not his to see.
    let mut dave = signed_in(&app, "dave", &pw("dave")).await;
    assert!(
        dave.get("/repositories")
            .await
            .body
            .contains("No repositories here yet.")
    );
}

#[tokio::test]
async fn application_tokens_are_shown_once_and_revocable() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    team_fixture(&app).await;
    let mut bob = signed_in(&app, "bob", &pw("bob")).await;
    bob.get("/users/edit").await;
    let p = bob
        .post(
            "/users/tokens",
            &[("application", "ci"), ("expires_in_days", "soon")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("Expiry must be a number of days") && p.body.contains("value=\"ci\""),
        "{}",
        p.body
    );
    let p = bob
        .post(
            "/users/tokens",
            &[
                ("application", "ci"),
                ("pull_only", "on"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let plain = p.secret();
    assert!(plain.starts_with("pcat_"), "{plain}");
    // It works, pull only, and is never shown again.
    let r = app
        .get("/api/v1/users/me", Auth::Portus("bob", &plain))
        .await;
    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{:?}", r.body);
    let r = app
        .post(
            "/api/v1/teams",
            Auth::Portus("bob", &plain),
            serde_json::json!({"name": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let p = bob.get("/users/edit").await;
    assert!(!p.body.contains(&plain));
    assert!(p.body.contains("pull only") && p.body.contains("<td>ci</td>"));
    let revoke = p.target("/users/tokens/");
    let p = bob.post(&revoke, &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(
        bob.get("/users/edit")
            .await
            .body
            .contains("No application tokens.")
    );
    let r = app.get("/api/v1/teams", Auth::Portus("bob", &plain)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Another user's token id is not bob's to revoke.
    let mut carol = signed_in(&app, "carol", &pw("carol")).await;
    carol.get("/users/edit").await;
    carol
        .post("/users/tokens", &[("application", "laptop")])
        .await;
    let carols = carol.get("/users/edit").await;
    let carols_revoke = carols.target("/users/tokens/");
    bob.get("/users/edit").await;
    let p = bob.post(&carols_revoke, &[]).await;
    assert!(
        p.status == StatusCode::NOT_FOUND || p.status == StatusCode::FORBIDDEN,
        "{}",
        p.status
    );
    assert!(
        carol
            .get("/users/edit")
            .await
            .body
            .contains("<td>laptop</td>")
    );
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_signs_out_other_browsers() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    team_fixture(&app).await;
    let mut laptop = signed_in(&app, "bob", &pw("bob")).await;
    let mut phone = signed_in(&app, "bob", &pw("bob")).await;
    let p = laptop.get("/users/edit").await;
    // Two browsers: this one, marked, and the other with a sign-out button.
    assert!(p.body.contains("this browser"), "{}", p.body);
    assert_eq!(p.body.matches("/users/sessions/").count(), 1, "{}", p.body);
    let p = laptop
        .post(
            "/users/password",
            &[
                ("current_password", "wrong"),
                ("password", "brand-new-pass"),
                ("password_confirmation", "brand-new-pass"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Current password is not right"));
    let p = laptop
        .post(
            "/users/password",
            &[
                ("current_password", &pw("bob")),
                ("password", "short"),
                ("password_confirmation", "short"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("id=\"new-error\""), "{}", p.body);
    let p = laptop
        .post(
            "/users/password",
            &[
                ("current_password", &pw("bob")),
                ("password", "brand-new-pass"),
                ("password_confirmation", "brand-new-pass"),
            ],
        )
        .await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/users/edit?password=changed")
    );
    let p = laptop.get("/users/edit?password=changed").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("Your password was changed"));
    assert_eq!(phone.get("/dashboard").await.location(), "/users/sign_in");
    let mut again = Browser::new(&app);
    assert_eq!(
        again.sign_in("bob", "brand-new-pass").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_profile_changes_email_and_display_name() {
    let app = web_app(Backend::Sqlite, |c| c.display_name.enabled = true).await;
    team_fixture(&app).await;
    let mut bob = signed_in(&app, "bob", &pw("bob")).await;
    bob.get("/users/edit").await;
    let p = bob
        .post(
            "/users/profile",
            &[("email", "nope"), ("display_name", "Bob B")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Email is invalid"), "{}", p.body);
    let p = bob
        .post(
            "/users/profile",
            &[("email", "bob@new.example"), ("display_name", "Bob B")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = bob.get("/users/edit").await;
    assert!(
        p.body.contains("value=\"bob@new.example\"") && p.body.contains(">Bob B</a>"),
        "{}",
        p.body
    );
}

#[tokio::test]
async fn docker_login_devices_are_listed_and_revocable_and_an_account_can_be_disabled() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    team_fixture(&app).await;
    let svc = "service=registry.test%3A5000";
    let r = crate::common::post_form(
        &app,
        &format!("grant_type=password&username=bob&password={}&{svc}&client_id=laptop-docker&access_type=offline&scope=repository%3Adevs%2Fapp%3Apull", pw("bob")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let refresh = r.body["refresh_token"].as_str().unwrap().to_owned();
    let mut bob = signed_in(&app, "bob", &pw("bob")).await;
    let p = bob.get("/users/edit").await;
    assert!(
        p.body.contains("<td>laptop-docker</td>") && p.body.contains("<td>registry.test:5000</td>"),
        "{}",
        p.body
    );
    let revoke = p.target("/users/devices/");
    bob.post(&revoke, &[]).await;
    assert!(!bob.get("/users/edit").await.body.contains("laptop-docker"));
    let r = crate::common::post_form(&app, &format!("grant_type=refresh_token&refresh_token={refresh}&{svc}&client_id=laptop-docker&scope=repository%3Adevs%2Fapp%3Apull")).await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "a revoked refresh token no longer works"
    );
    assert_eq!(r.body["error"], "invalid_grant", "{:?}", r.body);
    // Disabling one's own account signs out and stops sign-ins; the last admin cannot.
    let p = bob.post("/users/disable", &[]).await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/users/sign_in")
    );
    assert_eq!(bob.get("/dashboard").await.location(), "/users/sign_in");
    assert_eq!(
        Browser::new(&app).sign_in("bob", &pw("bob")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", "adminpass1").await;
    admin.get("/users/edit").await;
    let p = admin.post("/users/disable", &[]).await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(p.body.contains("last admin"), "{}", p.body);
    assert_eq!(admin.get("/dashboard").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_team_namespace_is_renamed_and_moved_to_another_team() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let f = fixture(&app).await;
    let url = format!("/namespaces/{}", f.devs_ns);
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    alice.get("/teams").await;
    alice.post("/teams", &[("name", "ops")]).await;
    let p = alice.get(&url).await;
    assert!(
        p.body.contains("id=\"ns-name\"") && p.body.contains("id=\"ns-team\""),
        "{}",
        p.body
    );
    let p = alice
        .post(
            &url,
            &[
                ("name", "devs"),
                ("team", "nosuch"),
                ("description", "typed text"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Team does not exist"), "{}", p.body);
    assert!(
        p.body.contains("value=\"nosuch\"")
            && p.body.contains(">typed text</textarea>")
            && p.body.contains("<details open>"),
        "what was typed is kept: {}",
        p.body
    );
    let p = alice
        .post(&url, &[("name", "Not Valid"), ("team", "devs")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("id=\"ns-name-error\"") && p.body.contains("value=\"Not Valid\""),
        "{}",
        p.body
    );
    let p = alice
        .post(&url, &[("name", "platform"), ("team", "ops")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = alice.get(&url).await;
    assert!(
        p.body.contains("<h1>platform</h1>") && p.body.contains(">ops</a>"),
        "{}",
        p.body
    );
    // Its repository moved with it; carol (a viewer of devs, not of ops) no longer sees it.
    assert!(p.body.contains("platform/app"), "{}", p.body);
    let mut carol = signed_in(&app, "carol", &pw("carol")).await;
    assert_eq!(
        carol.get(&format!("/repositories/{}", f.repo)).await.status,
        StatusCode::NOT_FOUND
    );
    // Personal namespaces keep their name and team.
    let p = alice.get("/namespaces").await;
    let special = &p.body[p.body.find("Special namespaces").unwrap()..];
    let start = special.find("\">alice</a>").unwrap();
    let personal = &special[special[..start].rfind("/namespaces/").unwrap()..start];
    let p = alice.get(personal).await;
    assert!(
        !p.body.contains("id=\"ns-name\"") && !p.body.contains("id=\"ns-team\""),
        "{}",
        p.body
    );
}
