//! Admin pages: only admins reach them; users, bots, registries, activities, events
//! and jobs through forms; password reset links.

use crate::browser::{Browser, admin_browser, signed_in, web_app};
use crate::common::{Backend, pw, team_fixture};
use axum::http::{StatusCode, header};

const ADMIN_PAGES: [&str; 6] = [
    "/admin/users",
    "/admin/registries",
    "/admin/activities",
    "/admin/activities.csv",
    "/admin/events",
    "/admin/jobs",
];

#[tokio::test]
async fn admin_pages_are_for_admins_only() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    team_fixture(&app).await;
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    let p = alice.get("/dashboard").await;
    assert!(
        !p.body.contains("href=\"/admin/users\""),
        "no admin link for users"
    );
    for path in ADMIN_PAGES {
        assert_eq!(
            alice.get(path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    alice.get("/dashboard").await;
    let p = alice
        .post("/admin/users/2/admin", &[("value", "true")])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let mut anonymous = Browser::new(&app);
    for path in ADMIN_PAGES {
        assert_eq!(
            anonymous.get(path).await.location(),
            "/users/sign_in",
            "{path}"
        );
    }
    let mut admin = signed_in(&app, "admin", "adminpass1").await;
    for path in ADMIN_PAGES {
        assert_eq!(admin.get(path).await.status, StatusCode::OK, "{path}");
    }
    let csv = admin.get("/admin/activities.csv").await;
    assert_eq!(csv.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert!(csv.body.starts_with("created_at,key,owner"), "{}", csv.body);
    assert!(csv.body.contains("team.create"));
    assert!(
        admin
            .get("/admin/activities")
            .await
            .body
            .contains("alice created a team")
    );
}

#[tokio::test]
async fn admins_create_users_and_bots_and_toggle_them() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let (_, mut admin) = admin_browser(&app).await;
    admin.get("/admin/users").await;
    let p = admin
        .post(
            "/admin/users",
            &[
                ("username", "eve"),
                ("email", "eve@example.com"),
                ("password", "eve-password"),
                ("password_confirmation", "other"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("Confirmation doesn&#39;t match") && p.body.contains("value=\"eve\""),
        "{}",
        p.body
    );
    let p = admin
        .post(
            "/admin/users",
            &[
                ("username", "eve"),
                ("email", "eve@example.com"),
                ("password", "eve-password"),
                ("password_confirmation", "eve-password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    assert!(p.body.contains("The user eve was created."));
    let p = admin
        .post(
            "/admin/users",
            &[
                ("username", "ci-bot"),
                ("email", "ci@example.com"),
                ("bot", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let token = p.secret();
    assert!(token.starts_with("pcat_"));
    let r = app
        .get(
            "/api/v1/teams",
            crate::common::Auth::Portus("ci-bot", &token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "the bot's token works");
    assert!(
        !admin.get("/admin/users").await.body.contains(&token),
        "shown once"
    );
    // eve: make admin, disable (her sign-in stops), enable again.
    let mut eve = signed_in(&app, "eve", "eve-password").await;
    let eve_id = user_id(&admin.get("/admin/users").await.body, "eve");
    admin
        .post(
            &format!("/admin/users/{eve_id}/admin"),
            &[("value", "true")],
        )
        .await;
    assert_eq!(
        eve.get("/admin/users").await.status,
        StatusCode::OK,
        "eve is an admin now"
    );
    admin.get("/admin/users").await;
    admin
        .post(
            &format!("/admin/users/{eve_id}/enabled"),
            &[("value", "false")],
        )
        .await;
    assert_eq!(eve.get("/dashboard").await.location(), "/users/sign_in");
    let mut again = Browser::new(&app);
    assert_eq!(
        again.sign_in("eve", "eve-password").await.status,
        StatusCode::UNAUTHORIZED
    );
    admin.get("/admin/users").await;
    admin
        .post(
            &format!("/admin/users/{eve_id}/enabled"),
            &[("value", "true")],
        )
        .await;
    assert_eq!(
        again.sign_in("eve", "eve-password").await.status,
        StatusCode::SEE_OTHER
    );
    // The last admin cannot be demoted: the page says so.
    admin.get("/admin/users").await;
    admin
        .post(
            &format!("/admin/users/{eve_id}/admin"),
            &[("value", "false")],
        )
        .await;
    let own = user_id(&admin.get("/admin/users").await.body, "admin");
    let p = admin
        .post(&format!("/admin/users/{own}/admin"), &[("value", "false")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert!(p.body.contains("last admin"), "{}", p.body);
    // Edit and delete.
    let p = admin.get(&format!("/admin/users/{eve_id}/edit")).await;
    assert!(p.body.contains("value=\"eve@example.com\""));
    let p = admin
        .post(
            &format!("/admin/users/{eve_id}"),
            &[("username", "eve"), ("email", "bad")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("Email is invalid"));
    let p = admin
        .post(
            &format!("/admin/users/{eve_id}"),
            &[("username", "eve2"), ("email", "eve2@example.com")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    admin.get("/admin/users").await;
    admin
        .post(&format!("/admin/users/{eve_id}/delete"), &[])
        .await;
    assert!(!admin.get("/admin/users").await.body.contains("eve2"));
}

/// The id of `username` from the users table's forms.
fn user_id(body: &str, username: &str) -> String {
    let row = body.find(&format!("<td>{username}")).unwrap();
    let rest = &body[row..];
    let start = rest.find("/admin/users/").unwrap() + 13;
    rest[start..start + rest[start..].find('/').unwrap()].to_owned()
}

#[tokio::test]
async fn password_reset_links_work_once() {
    let app = web_app(Backend::Sqlite, |c| {
        c.server.external_url = "https://portcullis.test".into()
    })
    .await;
    let (token, mut admin) = admin_browser(&app).await;
    app.create_user(&token, "bob").await;
    let mut bob = signed_in(&app, "bob", &pw("bob")).await;
    let p = Browser::new(&app).get("/users/password/new").await;
    assert!(p.body.contains("Send me a reset link"));
    admin.get("/admin/users").await;
    let bob_id = user_id(&admin.get("/admin/users").await.body, "bob");
    let p = admin
        .post(&format!("/admin/users/{bob_id}/reset_link"), &[])
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let link = p.secret();
    let path = link
        .strip_prefix("https://portcullis.test")
        .expect("the link starts with server.external_url");
    assert!(
        path.starts_with("/users/password/edit?token=pcpr_"),
        "{path}"
    );
    let mut visitor = Browser::new(&app);
    let page = visitor.get(path).await;
    assert_eq!(page.status, StatusCode::OK);
    let token_value = path.split("token=").nth(1).unwrap();
    let p = visitor
        .post(
            "/users/password/reset",
            &[
                ("token", token_value),
                ("password", "short"),
                ("password_confirmation", "short"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("id=\"password-error\""), "{}", p.body);
    let p = visitor
        .post(
            "/users/password/reset",
            &[
                ("token", token_value),
                ("password", "fresh-password"),
                ("password_confirmation", "fresh-password"),
            ],
        )
        .await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/users/sign_in?reset=done")
    );
    assert!(
        visitor
            .get("/users/sign_in?reset=done")
            .await
            .body
            .contains("Your password was changed")
    );
    // Bob's old session ended; the new password works; the link does not work twice.
    assert_eq!(bob.get("/dashboard").await.location(), "/users/sign_in");
    assert_eq!(
        Browser::new(&app)
            .sign_in("bob", "fresh-password")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let p = visitor
        .post(
            "/users/password/reset",
            &[
                ("token", token_value),
                ("password", "third-password"),
                ("password_confirmation", "third-password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("This reset link is invalid or has expired"),
        "{}",
        p.body
    );
    let p = visitor
        .post(
            "/users/password/reset",
            &[
                ("token", "pcpr_made-up"),
                ("password", "third-password"),
                ("password_confirmation", "third-password"),
            ],
        )
        .await;
    assert!(p.body.contains("invalid or has expired"));
}

#[tokio::test]
async fn registries_are_checked_before_they_are_saved() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let (_, mut admin) = admin_browser(&app).await;
    let p = admin.get("/admin/registries").await;
    assert!(p.body.contains("No registry yet"));
    // Nothing listens on this port: the check fails and offers to skip it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = closed.local_addr().unwrap().to_string();
    drop(closed);
    let p = admin
        .post(
            "/admin/registries",
            &[("name", "main"), ("hostname", &host)],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("Skip remote checks") && p.body.contains(&format!("value=\"{host}\"")),
        "{}",
        p.body
    );
    let p = admin
        .post(
            "/admin/registries",
            &[("name", "main"), ("hostname", "https://bad/x")],
        )
        .await;
    assert!(p.body.contains("must be a host name"), "{}", p.body);
    let p = admin
        .post(
            "/admin/registries",
            &[("name", "main"), ("hostname", &host), ("force", "on")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = admin.get("/admin/registries").await;
    assert!(p.body.contains(&format!("<td>{host}</td>")));
    let edit = p.target("/admin/registries/");
    let p = admin.get(&edit).await;
    assert!(p.body.contains("Edit the registry") && p.body.contains("value=\"main\""));
    let form_action = edit.trim_end_matches("/edit").to_owned();
    let p = admin
        .post(
            &form_action,
            &[
                ("name", "renamed"),
                ("hostname", &host),
                ("external_hostname", "registry.example.com"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert!(
        admin
            .get("/admin/registries")
            .await
            .body
            .contains("<td>registry.example.com</td>")
    );
}

#[tokio::test]
async fn admins_manage_a_bots_tokens_and_are_told_to_add_a_registry() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let (_, mut admin) = admin_browser(&app).await;
    let p = admin.get("/dashboard").await;
    assert!(
        p.body.contains("No registry is configured yet"),
        "{}",
        p.body
    );
    admin.get("/admin/users").await;
    admin
        .post(
            "/admin/users",
            &[
                ("username", "ci-bot"),
                ("email", "ci@example.com"),
                ("bot", "on"),
            ],
        )
        .await;
    let bot = user_id(&admin.get("/admin/users").await.body, "ci-bot");
    let edit = format!("/admin/users/{bot}/edit");
    let p = admin.get(&edit).await;
    assert!(
        p.body.contains("Application tokens of this bot") && p.body.contains("<td>default</td>"),
        "{}",
        p.body
    );
    let p = admin
        .post(
            &format!("/admin/users/{bot}/tokens"),
            &[("application", "deploy"), ("pull_only", "on")],
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let token = p.secret();
    let r = app
        .get(
            "/api/v1/teams",
            crate::common::Auth::Portus("ci-bot", &token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let p = admin.get(&edit).await;
    assert!(
        !p.body.contains(&token) && p.body.contains("<td>deploy</td><td>pull only</td>"),
        "{}",
        p.body
    );
    // Revoke the new one: it stops working; the default one stays.
    let start = p
        .body
        .rfind(&format!("/admin/users/{bot}/tokens/"))
        .unwrap();
    let revoke = p.body[start..start + p.body[start..].find('"').unwrap()].to_owned();
    admin.post(&revoke, &[]).await;
    let r = app
        .get(
            "/api/v1/teams",
            crate::common::Auth::Portus("ci-bot", &token),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(admin.get(&edit).await.body.contains("<td>default</td>"));
    // A user's edit page has no token section: users manage their own.
    let own = user_id(&admin.get("/admin/users").await.body, "admin");
    let p = admin.get(&format!("/admin/users/{own}/edit")).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("Application tokens of this bot"));
}
