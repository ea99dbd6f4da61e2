//! Sign-in, sign-up, sign-out, sessions, CSRF, headers, assets, error pages.

use crate::browser::{Browser, admin_browser, web_app};
use crate::common::{Auth, Backend};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let mut b = Browser::new(&app);
    for path in ["/users/sign_in", "/no/such/page", "/api/v1/health"] {
        let p = b.get(path).await;
        let csp = p.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            p.headers[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{path}"
        );
        assert_eq!(p.headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(p.headers[header::REFERRER_POLICY], "same-origin", "{path}");
    }
    // No inline script or style anywhere in a page.
    let p = b.get("/users/sign_in").await;
    assert!(
        !p.body.contains("<script>") && !p.body.contains("style="),
        "{}",
        p.body
    );
}

#[tokio::test]
async fn assets_are_cache_busted_and_cached_for_a_year() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let mut b = Browser::new(&app);
    let p = b.get("/users/sign_in").await;
    let style = portcullis_web::assets::style_url();
    let script = portcullis_web::assets::script_url();
    assert!(p.body.contains(&style) && p.body.contains(&script));
    assert!(style.len() > "/assets/style..css".len(), "{style}");
    for url in [&style, &script] {
        let a = b.get(url).await;
        assert_eq!(a.status, StatusCode::OK, "{url}");
        assert_eq!(
            a.headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
    }
    assert_eq!(
        b.get("/assets/style.css").await.status,
        StatusCode::NOT_FOUND
    );
    // Compressed for a client that takes gzip.
    let req = Request::builder()
        .uri(&style)
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let r = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
}

#[tokio::test]
async fn unknown_pages_are_html_and_unknown_api_paths_json() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let mut b = Browser::new(&app);
    let p = b.get("/no/such/page").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.contains("<h1>Not found</h1>"), "{}", p.body);
    let p = b.get("/api/v1/nothing-here").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.body.starts_with("{\"message\""), "{}", p.body);
}

#[tokio::test]
async fn an_empty_instance_leads_to_sign_up_and_the_first_user_is_admin() {
    let app = web_app(Backend::Sqlite, |c| c.signup.enabled = false).await;
    let mut b = Browser::new(&app);
    let p = b.get("/").await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/users/sign_up")
    );
    let p = b.get("/users/sign_up").await;
    assert!(p.body.contains("first administrator"), "{}", p.body);
    // A mistake keeps what was typed (but never the password) and names the field.
    let p = b
        .post(
            "/users/sign_up",
            &[
                ("username", "first"),
                ("email", "not-an-email"),
                ("password", "password123"),
                ("password_confirmation", "password123"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("value=\"first\""), "{}", p.body);
    assert!(p.body.contains("Email is invalid"), "{}", p.body);
    assert!(!p.body.contains("password123"));
    let p = b
        .post(
            "/users/sign_up",
            &[
                ("username", "first"),
                ("email", "first@example.com"),
                ("password", "password123"),
                ("password_confirmation", "password124"),
            ],
        )
        .await;
    assert!(
        p.body
            .contains("Confirmation doesn&#39;t match the password"),
        "{}",
        p.body
    );
    let p = b
        .post(
            "/users/sign_up",
            &[
                ("username", "first"),
                ("email", "first@example.com"),
                ("password", "password123"),
                ("password_confirmation", "password123"),
            ],
        )
        .await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/dashboard"),
        "{}",
        p.body
    );
    let dashboard = b.get("/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(
        dashboard.body.contains("Registries"),
        "admins see the totals: {}",
        dashboard.body
    );
    // Sign-up is now closed: the instance has a user and `signup.enabled` is false.
    let mut other = Browser::new(&app);
    let p = other.get("/users/sign_up").await;
    assert_eq!(p.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(p.body.contains("Sign-up is disabled"), "{}", p.body);
    assert_eq!(other.get("/").await.location(), "/users/sign_in");
}

async fn concurrent_first_sign_ups_make_one_admin(backend: Backend) {
    let app = web_app(backend, |c| c.signup.enabled = true).await;
    let mut browsers = Vec::new();
    for _ in 0..8 {
        let mut b = Browser::new(&app);
        b.get("/users/sign_up").await;
        browsers.push(b);
    }
    let mut requests = Vec::new();
    for (i, b) in browsers.iter().enumerate() {
        let name = format!("user{i}");
        let email = format!("user{i}@example.com");
        let body = serde_urlencoded::to_string([
            ("csrf", b.last_csrf.as_str()),
            ("username", &name),
            ("email", &email),
            ("password", "password123"),
            ("password_confirmation", "password123"),
        ])
        .unwrap();
        requests.push(
            Request::builder()
                .method(Method::POST)
                .uri("/users/sign_up")
                .header(header::HOST, "portcullis.test")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, b.cookie_header())
                .body(Body::from(body))
                .unwrap(),
        );
    }
    let answers = app.concurrently(requests).await;
    assert!(
        answers.iter().all(|r| r.status == StatusCode::SEE_OTHER),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Admins see the totals row on their dashboard; exactly one does.
    let mut admins = 0;
    for i in 0..8 {
        let mut b = Browser::new(&app);
        b.sign_in(&format!("user{i}"), "password123").await;
        if b.get("/dashboard").await.body.contains("class=\"stats\"") {
            admins += 1;
        }
    }
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn concurrent_first_sign_ups_make_one_admin_sqlite() {
    concurrent_first_sign_ups_make_one_admin(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_first_sign_ups_make_one_admin_postgres() {
    concurrent_first_sign_ups_make_one_admin(Backend::Postgres).await;
}

#[tokio::test]
async fn sign_in_refuses_alike_and_keeps_the_username() {
    let app = web_app(Backend::Sqlite, |c| c.security_policy.lockout_attempts = 3).await;
    let token = app.bootstrap().await;
    app.create_user(&token, "alice").await;
    let mut b = Browser::new(&app);
    let wrong = b.sign_in("alice", "wrong-password").await;
    let unknown = b.sign_in("nobody", "wrong-password").await;
    for p in [&wrong, &unknown] {
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        assert!(
            p.body.contains("Invalid username or password."),
            "{}",
            p.body
        );
        assert!(
            p.body
                .contains("After 3 failed attempts an account is locked for 10 minutes.")
        );
    }
    assert!(wrong.body.contains("value=\"alice\""));
    assert!(unknown.body.contains("value=\"nobody\""));
    // Locked after three failures: the right password gets the same answer.
    b.sign_in("alice", "wrong-password").await;
    b.sign_in("alice", "wrong-password").await;
    let locked = b.sign_in("alice", "alice-password").await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        locked.body.replace("alice", "x"),
        wrong
            .body
            .replace("alice", "x")
            .replace(&wrong.csrf(), &locked.csrf())
    );
    // The lock runs out.
    app.clock.advance_secs(601);
    let p = b.sign_in("alice", "alice-password").await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/dashboard")
    );
}

#[tokio::test]
async fn sign_in_is_rate_limited_per_client() {
    let app = web_app(Backend::Sqlite, |c| {
        c.security_policy.password_checks_per_minute = 2
    })
    .await;
    let mut b = Browser::new(&app);
    b.sign_in("nobody", "x-password").await;
    b.sign_in("nobody", "x-password").await;
    let p = b.sign_in("nobody", "x-password").await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.body.contains("Too many sign-in attempts"), "{}", p.body);
}

#[tokio::test]
async fn sessions_use_safe_cookies_and_end_at_sign_out() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    app.bootstrap().await;
    let mut b = Browser::new(&app);
    let p = b.sign_in("admin", "adminpass1").await;
    let set = p.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("portcullis_session=pcs_"), "{set}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "not under plain HTTP: {set}");
    let session = b.cookies["portcullis_session"].clone();
    let dashboard = b.get("/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains(">admin</a>"), "{}", dashboard.body);
    assert_eq!(dashboard.headers[header::CACHE_CONTROL], "no-store");
    // The API never takes the session cookie.
    let req = Request::builder()
        .uri("/api/v1/users")
        .header(header::COOKIE, format!("portcullis_session={session}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);
    // Signing out ends the session on the server, not only in this browser.
    let p = b.post("/users/sign_out", &[]).await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/users/sign_in")
    );
    let mut thief = Browser::new(&app);
    thief.cookies.insert("portcullis_session".into(), session);
    let p = thief.get("/dashboard").await;
    assert_eq!(
        (p.status, p.location()),
        (StatusCode::SEE_OTHER, "/users/sign_in")
    );
    // …and the stale cookie is cleared.
    assert!(!thief.cookies.contains_key("portcullis_session"));
}

#[tokio::test]
async fn sessions_are_secure_cookies_under_https() {
    let app = web_app(Backend::Sqlite, |c| {
        c.server.external_url = "https://portcullis.test".into()
    })
    .await;
    app.bootstrap().await;
    let mut b = Browser::new(&app);
    let p = b.sign_in("admin", "adminpass1").await;
    assert!(
        p.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

#[tokio::test]
async fn sessions_time_out_when_idle_and_at_their_lifetime() {
    let app = web_app(Backend::Sqlite, |c| {
        c.security_policy.session_idle_minutes = 30;
        c.security_policy.session_lifetime_hours = 2;
    })
    .await;
    let (_, mut b) = admin_browser(&app).await;
    // Busy: a request every 20 minutes keeps it alive, up to the lifetime.
    for _ in 0..5 {
        app.clock.advance_secs(20 * 60);
        assert_eq!(b.get("/dashboard").await.status, StatusCode::OK);
    }
    app.clock.advance_secs(21 * 60); // 2 h 1 min after sign-in
    assert_eq!(b.get("/dashboard").await.location(), "/users/sign_in");
    // Idle: 31 minutes without a request.
    b.sign_in("admin", "adminpass1").await;
    assert_eq!(b.get("/dashboard").await.status, StatusCode::OK);
    app.clock.advance_secs(31 * 60);
    assert_eq!(b.get("/dashboard").await.location(), "/users/sign_in");
}

#[tokio::test]
async fn a_password_change_or_disable_ends_sessions() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let token = app.bootstrap().await;
    let alice = app.create_user(&token, "alice").await;
    let mut b = Browser::new(&app);
    b.sign_in("alice", "alice-password").await;
    assert_eq!(b.get("/dashboard").await.status, StatusCode::OK);
    let r = app
        .put(
            &format!("/api/v1/users/{alice}"),
            Auth::Portus("admin", &token),
            serde_json::json!({"user": {"password": "a-new-password"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(b.get("/dashboard").await.location(), "/users/sign_in");
    b.sign_in("alice", "a-new-password").await;
    assert_eq!(b.get("/dashboard").await.status, StatusCode::OK);
    let r = app
        .put(
            &format!("/api/v1/users/{alice}"),
            Auth::Portus("admin", &token),
            serde_json::json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(b.get("/dashboard").await.location(), "/users/sign_in");
}

#[tokio::test]
async fn forms_without_the_right_token_or_from_another_site_are_refused() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    app.bootstrap().await;
    let mut b = Browser::new(&app);
    b.get("/users/sign_in").await;
    let good = [("username", "admin"), ("password", "adminpass1")];
    // No token; a wrong token; another visitor's token.
    let mut other = Browser::new(&app);
    other.get("/users/sign_in").await;
    let others = other.last_csrf.clone();
    for csrf in ["", "0123456789abcdef0123456789abcdef", others.as_str()] {
        let mut fields = vec![("csrf", csrf)];
        fields.extend_from_slice(&good);
        let p = b.post_raw("/users/sign_in", &fields, &[]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(p.body.contains("This form has expired"), "{}", p.body);
    }
    // The right token from another site.
    let csrf = b.last_csrf.clone();
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(&good);
    for headers in [
        [("origin", "https://evil.example")],
        [("sec-fetch-site", "cross-site")],
    ] {
        let p = b.post_raw("/users/sign_in", &fields, &headers).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    // A first visit posting straight away has no cookie to match.
    let mut fresh = Browser::new(&app);
    let p = fresh.post_raw("/users/sign_in", &fields, &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // The same form from this site works, and signed in, the token changes with the session.
    let p = b
        .post_raw(
            "/users/sign_in",
            &fields,
            &[("origin", "http://portcullis.test")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    b.get("/dashboard").await;
    assert_ne!(b.last_csrf, csrf);
    let p = b.post_raw("/users/sign_out", &[("csrf", &csrf)], &[]).await;
    assert_eq!(
        p.status,
        StatusCode::FORBIDDEN,
        "the visitor token does not work for the session"
    );
}

#[tokio::test]
async fn user_content_is_escaped() {
    let app = web_app(Backend::Sqlite, |c| c.display_name.enabled = true).await;
    let token = app.bootstrap().await;
    let r = app
        .put(
            "/api/v1/users/1",
            Auth::Portus("admin", &token),
            serde_json::json!({"user": {"display_name": "<script>alert(1)</script>"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut b = Browser::new(&app);
    b.sign_in("admin", "adminpass1").await;
    let p = b.get("/dashboard").await;
    assert!(
        p.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("<script>alert"));
}

#[tokio::test]
async fn pages_need_a_session_and_explore_follows_anonymous_browsing() {
    let closed = web_app(Backend::Sqlite, |c| c.anonymous_browsing.enabled = false).await;
    closed.bootstrap().await;
    let mut b = Browser::new(&closed);
    for path in ["/dashboard", "/help", "/explore"] {
        let p = b.get(path).await;
        assert_eq!(
            (p.status, p.location()),
            (StatusCode::SEE_OTHER, "/users/sign_in"),
            "{path}"
        );
    }
    let open = web_app(Backend::Sqlite, |c| c.anonymous_browsing.enabled = true).await;
    open.bootstrap().await;
    let mut b = Browser::new(&open);
    let p = b.get("/explore").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("Explore public repositories"));
}

#[tokio::test]
async fn help_shows_this_instances_commands() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let (token, mut b) = admin_browser(&app).await;
    app.create_registry(&token, "registry.test:5000").await;
    let p = b.get("/help").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("docker login registry.test:5000 -u admin"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("docker push registry.test:5000/admin/my-image:latest")
    );
}

#[tokio::test]
async fn malformed_ids_and_queries_are_error_pages() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let (_, mut b) = admin_browser(&app).await;
    for path in [
        "/repositories/abc",
        "/teams/1x",
        "/tags/-",
        "/admin/users/zz/edit",
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(p.body.contains("<h1>Not found</h1>"), "{path}: {}", p.body);
    }
    let p = b.get("/repositories?page=x").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(
        p.body.starts_with("<!doctype html>") && p.body.contains("page"),
        "{}",
        p.body
    );
    // A page beyond the last is empty, not an error.
    let p = b.get("/repositories?page=999").await;
    assert_eq!(p.status, StatusCode::OK);
}
