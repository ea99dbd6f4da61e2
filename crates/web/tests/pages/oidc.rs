//! Signing in to the web UI through an OpenID Connect provider: the real code flow
//! against the test provider (`portcullis_testkit::oidc`, a real server with PKCE,
//! state and nonce), with the in-process browser on our side. A new person picks a
//! username; the next sign-in goes straight in; a verified email links an existing
//! account, an unverified one does not; tampering, a foreign domain, a provider outage
//! and a disabled local form are refused with a page.

use crate::browser::{Browser, Page, web_app_in_real_time};
use crate::common::{Auth, TestApp};
use axum::http::StatusCode;
use portcullis_config::Config;
use portcullis_testkit::oidc::{OidcProvider, ProviderOptions, TestOidcUser};

const CALLBACK: &str = "https://portcullis.test/users/auth/openid_connect/callback";

async fn provider() -> OidcProvider {
    let op = OidcProvider::start(ProviderOptions {
        client_id: "portcullis".into(),
        client_secret: "client-secret".into(),
        redirect_uris: vec![CALLBACK.into()],
    })
    .await
    .unwrap();
    for (name, verified) in [("olga", true), ("alice", true), ("mallory", false)] {
        op.add_user(TestOidcUser {
            subject: format!("sub-{name}"),
            username: name.into(),
            password: format!("{name}-at-the-provider"),
            email: format!("{name}@example.com"),
            email_verified: verified,
            name: format!("{name} Example"),
        });
    }
    op
}

fn use_provider(c: &mut Config, op: &OidcProvider) {
    c.server.external_url = "https://portcullis.test".into();
    let o = &mut c.oauth.openid_connect;
    o.enabled = true;
    o.issuer = op.issuer().into();
    o.identifier = "portcullis".into();
    o.secret = "client-secret".into();
    o.name = "Example SSO".into();
}

/// Clicks the button, signs in at the provider, and follows the provider back:
/// the page our callback answers with.
async fn sign_in_with_provider(browser: &mut Browser<'_>, op: &OidcProvider, user: &str) -> Page {
    let sign_in = browser.get("/users/sign_in").await;
    assert!(
        sign_in.body.contains("Sign in with Example SSO"),
        "{}",
        sign_in.body
    );
    let started = browser.get("/users/auth/openid_connect").await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let authorize = started.location().to_owned();
    assert!(authorize.starts_with(op.issuer()), "{authorize}");
    let back = op
        .sign_in_like_a_browser(&authorize, user, &format!("{user}-at-the-provider"))
        .await
        .unwrap();
    let path = back
        .strip_prefix("https://portcullis.test")
        .unwrap_or_else(|| panic!("not back to us: {back}"));
    browser.get(path).await
}

async fn app_with(op: &OidcProvider, configure: impl FnOnce(&mut Config)) -> TestApp {
    web_app_in_real_time(|c| {
        use_provider(c, op);
        configure(c);
    })
    .await
}

#[tokio::test]
async fn a_new_person_picks_a_username_then_comes_straight_back() {
    let op = provider().await;
    let app = app_with(&op, |_| {}).await;
    let admin = app.bootstrap().await;
    app.create_registry(&admin, "registry.test:5000").await;
    // The name `olga` is taken locally by someone else (another address): the
    // suggestion moves on.
    let r = app
        .post(
            "/api/v1/users",
            Auth::Portus("admin", &admin),
            serde_json::json!({"user": {"username": "olga", "email": "olga@elsewhere.example", "password": "local-olga-password"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let mut browser = Browser::new(&app);
    let page = sign_in_with_provider(&mut browser, &op, "olga").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Choose your username"), "{}", page.body);
    assert!(page.body.contains("value=\"olga_01\""), "{}", page.body);
    assert!(
        page.body.contains("value=\"olga@example.com\""),
        "{}",
        page.body
    );
    // The username rules hold here too.
    let sealed = page.field("sealed");
    let refused = browser
        .post(
            "/users/auth/openid_connect/account",
            &[
                ("sealed", &sealed),
                ("username", "-bad"),
                ("email", "x@example.com"),
                ("display_name", ""),
            ],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("username-error"), "{}", refused.body);
    let created = browser
        .post(
            "/users/auth/openid_connect/account",
            &[
                ("sealed", &sealed),
                ("username", "olga-sso"),
                ("email", "ignored@example.com"),
                ("display_name", "Olga"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/dashboard");
    let profile = browser.get("/users/edit").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("olga-sso"), "{}", profile.body);

    // The account: the provider's verified address (not the one typed), no password,
    // a personal namespace, the identity linked.
    let r = app
        .get("/api/v1/users?all=true", Auth::Portus("admin", &admin))
        .await;
    let user = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "olga-sso")
        .cloned()
        .unwrap_or_else(|| panic!("{:?}", r.body));
    assert_eq!(user["email"], "olga@example.com");
    let ns = app
        .get("/api/v1/namespaces?all=true", Auth::Portus("admin", &admin))
        .await;
    assert!(
        ns.body.to_string().contains("\"olga-sso\""),
        "{:?}",
        ns.body
    );

    // The sealed identity works once only in effect: the account exists now, so a
    // second form post with it is a conflict on the identity, which signs in the
    // same account.
    let mut other = Browser::new(&app);
    other.get("/users/sign_in").await;
    let replay = other
        .post(
            "/users/auth/openid_connect/account",
            &[
                ("sealed", &sealed),
                ("username", "olga-again"),
                ("email", "x@example.com"),
                ("display_name", ""),
            ],
        )
        .await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER, "{}", replay.body);
    assert!(
        !app.get("/api/v1/users?all=true", Auth::Portus("admin", &admin))
            .await
            .body
            .to_string()
            .contains("olga-again")
    );

    // Next time: straight in.
    let mut again = Browser::new(&app);
    let page = sign_in_with_provider(&mut again, &op, "olga").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/dashboard");
    assert!(again.get("/users/edit").await.body.contains("olga-sso"));
}

#[tokio::test]
async fn a_verified_email_links_the_existing_account_and_an_unverified_one_does_not() {
    let op = provider().await;
    let app = app_with(&op, |_| {}).await;
    let admin = app.bootstrap().await;
    app.create_user(&admin, "alice").await; // alice@example.com
    app.create_user(&admin, "mallory").await; // mallory@example.com
    let mut alice = Browser::new(&app);
    let page = sign_in_with_provider(&mut alice, &op, "alice").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(alice.get("/users/edit").await.body.contains("alice"));

    // The provider does not vouch for mallory's address: no takeover of the local
    // account of that address.
    let mut mallory = Browser::new(&app);
    let page = sign_in_with_provider(&mut mallory, &op, "mallory").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Choose your username"), "{}", page.body);
    assert!(mallory.get("/users/edit").await.status != StatusCode::OK);
}

#[tokio::test]
async fn tampering_a_foreign_domain_and_an_outage_are_refused_with_a_page() {
    let op = provider().await;
    let app = app_with(&op, |c| {
        c.oauth.openid_connect.domain = "corp.example".into()
    })
    .await;
    app.bootstrap().await;
    // Outside the domain.
    let mut browser = Browser::new(&app);
    let page = sign_in_with_provider(&mut browser, &op, "olga").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("corp.example"), "{}", page.body);

    // A callback without the pending cookie (another browser), or with a wrong state.
    let mut browser = Browser::new(&app);
    browser.get("/users/sign_in").await;
    browser.get("/users/auth/openid_connect").await;
    let page = browser
        .get("/users/auth/openid_connect/callback?state=forged&code=stolen")
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let mut stranger = Browser::new(&app);
    let page = stranger
        .get("/users/auth/openid_connect/callback?state=x&code=y")
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("another browser"), "{}", page.body);
    // A forged sealed identity.
    stranger.get("/users/sign_in").await;
    let page = stranger
        .post(
            "/users/auth/openid_connect/account",
            &[
                ("sealed", "pcs1.forged"),
                ("username", "evil"),
                ("email", "e@example.com"),
                ("display_name", ""),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    // An unknown provider.
    let page = stranger.get("/users/auth/github").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);

    // The provider down: 503 with a page, not a 500, and the next try works.
    let op2 = provider().await;
    let app2 = app_with(&op2, |_| {}).await;
    app2.bootstrap().await;
    op2.set_outage(Some(503));
    let mut browser = Browser::new(&app2);
    browser.get("/users/sign_in").await;
    let page = browser.get("/users/auth/openid_connect").await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(page.body.contains("does not answer"), "{}", page.body);
    op2.set_outage(None);
    let page = sign_in_with_provider(&mut browser, &op2, "olga").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}

#[tokio::test]
async fn without_local_login_only_the_provider_signs_in() {
    let op = provider().await;
    let app = app_with(&op, |c| c.oauth.local_login.enabled = false).await;
    let admin = app.bootstrap().await;
    app.create_registry(&admin, "registry.test:5000").await;
    app.create_user(&admin, "bob").await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/users/sign_in").await;
    assert!(!page.body.contains("name=\"password\""), "{}", page.body);
    assert!(
        page.body.contains("Sign in with Example SSO"),
        "{}",
        page.body
    );
    // A hand-made form post (with a valid CSRF token, from another page) is refused.
    browser.get("/users/password/new").await;
    let refused = browser
        .post(
            "/users/sign_in",
            &[("username", "bob"), ("password", &crate::common::pw("bob"))],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{}",
        refused.body
    );
    // docker login is not the web form: bob's password still gets registry tokens.
    let r = app
        .token(
            "service=registry.test:5000",
            Auth::Basic("bob", &crate::common::pw("bob")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// Several identity sources at once (what Harbor and Quay refuse): a local account, an
/// LDAP directory user and an OpenID Connect identity all sign in to the same instance.
#[tokio::test]
async fn local_ldap_and_openid_connect_sign_in_side_by_side() {
    use portcullis_testkit::ldap::{self as dir, Seed, Slapd};
    let slapd = Slapd::start(&Seed::default_directory())
        .await
        .unwrap_or_else(|e| panic!("start slapd: {e:#} (see scripts/test.sh)"));
    let op = provider().await;
    let app = app_with(&op, |c| {
        c.ldap.enabled = true;
        c.ldap.hostname = slapd.host().to_owned();
        c.ldap.port = i64::from(slapd.plain_port());
        c.ldap.base = dir::PEOPLE_BASE.to_owned();
    })
    .await;
    app.bootstrap().await;
    // The local admin, with the local password.
    let mut local = Browser::new(&app);
    let page = local.sign_in("admin", "adminpass1").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    // A directory user, with the directory password: the account is made on the way.
    let mut directory = Browser::new(&app);
    let page = directory.sign_in("carol", dir::CAROL_PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(directory.get("/users/edit").await.body.contains("carol"));
    // Someone from the provider, who is in neither.
    let mut sso = Browser::new(&app);
    let page = sign_in_with_provider(&mut sso, &op, "olga").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Choose your username"), "{}", page.body);
    // A wrong directory password is refused like any other.
    let mut wrong = Browser::new(&app);
    let page = wrong.sign_in("carol", "not-carols").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
}
