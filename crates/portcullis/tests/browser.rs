//! The web UI in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver), against the `portcullis` binary beside a real `docker-registry`
//! with images pushed by `skopeo`. The main journeys run with JavaScript on and again
//! with it off (every page must work without it); screenshots of the main pages in
//! light and dark, desktop and phone width, are written to `docs/screenshots/`.
//!
//! Missing `chromium`/`chromedriver` fail the test (scripts/test.sh installs them).

#![allow(clippy::unwrap_used)] // a failing step panics with its message

mod common;
use common::serve;
use fantoccini::{Client, ClientBuilder, Locator};
use portcullis_testkit::images::build_image;
use portcullis_testkit::registry::{Registry, free_port};
use portcullis_testkit::server::{Server, require_tool};
use portcullis_testkit::skopeo::{Creds, Skopeo};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::process::{Child, Command};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const ALICE: (&str, &str) = ("alice", "alice-password-1");
/// How long one page element may take to appear (a push to be processed included).
const WAIT: Duration = Duration::from_secs(30);

/// A chromedriver process on a free port; killed on drop.
struct Driver {
    url: String,
    _child: Child,
}

impl Driver {
    async fn start() -> Driver {
        let chromedriver = require_tool("chromedriver").unwrap_or_else(|e| {
            panic!("step `chromedriver`: {e:#} (scripts/test.sh installs chromium-driver)")
        });
        require_tool("chromium").unwrap_or_else(|e| panic!("step `chromium`: {e:#}"));
        let port = free_port().unwrap();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        // Ready when its status endpoint answers.
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { url, _child: child }
    }

    /// A fresh browser (its own profile: no cookies). `dark` asks pages for the dark
    /// colour scheme; `javascript: false` turns scripts off.
    async fn browser(&self, javascript: bool, dark: bool) -> Client {
        let mut blink = vec![format!("scriptEnabled={javascript}")];
        // Blink's PreferredColorScheme: 0 dark, 1 light.
        blink.push(format!("preferredColorScheme={}", if dark { 0 } else { 1 }));
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--blink-settings={}", blink.join(",")),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        // Confirmation prompts (`data-confirm`) are accepted, as a user clicking OK.
        caps.insert("unhandledPromptBehavior".into(), json!("accept"));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session")
    }
}

/// The page's text, for assertions. While a navigation replaces the page, the body
/// found a moment ago goes stale: then it is read again.
async fn text(c: &Client) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let read = async { c.find(Locator::Css("body")).await?.text().await };
        match read.await {
            Ok(t) => return t,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "reading the page: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The element `css`, once it is on the page.
async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(WAIT)
        .every(Duration::from_millis(50))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("element {css}: {e}"))
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = find(c, css).await;
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    find(c, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Waits until the current page has `needle` in its text (a click's navigation may
/// still be under way when the click returns); fails with the page's text.
async fn expect_text(c: &Client, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = text(c).await;
        if page.contains(needle) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{needle:?} not on the page: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `needle` is no longer in the current page's text.
async fn expect_gone(c: &Client, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = text(c).await;
        if !page.contains(needle) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{needle:?} still on the page: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the page has `needle` in its text, reloading `url` (for what the
/// worker records in the background, such as a push).
async fn wait_for_text(c: &Client, url: &str, needle: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        c.goto(url).await.unwrap();
        if text(c).await.contains(needle) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{needle:?} never appeared on {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(c: &Client, base: &str, (user, password): (&str, &str)) {
    c.goto(&format!("{base}/users/sign_in")).await.unwrap();
    fill(c, "#username", user).await;
    fill(c, "#password", password).await;
    click(c, "form[action='/users/sign_in'] button[type=submit]").await;
    expect_text(c, "Recent activities").await;
}

async fn sign_out(c: &Client) {
    click(c, "form[action='/users/sign_out'] button").await;
    expect_text(c, "Forgot your password?").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/users/sign_in")
    );
}

struct World {
    _work: tempfile::TempDir,
    server: Server,
    registry: Registry,
    skopeo: Skopeo,
}

async fn world() -> World {
    let work = tempfile::Builder::new()
        .prefix("portcullis-browser-")
        .tempdir()
        .unwrap();
    let env: BTreeMap<String, String> = [
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "PORTCULLIS_DATA_DIR",
            work.path().join("data").display().to_string(),
        ),
        (
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite:{}", work.path().join("p.db").display()),
        ),
        (
            "PORTCULLIS_MACHINE_FQDN_VALUE",
            "portcullis.test".to_owned(),
        ),
        (
            "PORTCULLIS_NOTIFICATIONS_SECRET",
            "browser-secret".to_owned(),
        ),
        (
            "PORTCULLIS_SECURITY_POLICY_PASSWORD_CHECKS_PER_MINUTE",
            "0".to_owned(),
        ),
        ("PORTCULLIS_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let server = serve(env, work.path()).await;
    let registry = Registry::start(&server, &work.path().join("registry"))
        .await
        .unwrap_or_else(|e| panic!("step `start docker-registry`: {e:#}"));
    let skopeo = Skopeo::new().unwrap();
    World {
        _work: work,
        server,
        registry,
        skopeo,
    }
}

fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

/// Screenshots of `path` at desktop and phone width in the browser's colour scheme,
/// as `docs/screenshots/<name>-<scheme>-<desktop|phone>.png`.
async fn screenshots(c: &Client, base: &str, path: &str, name: &str, scheme: &str) {
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (width, height, form) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        c.set_window_size(width, height).await.unwrap();
        c.goto(&format!("{base}{path}")).await.unwrap();
        let png = c.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(dir.join(format!("{name}-{scheme}-{form}.png")), png).unwrap();
    }
    c.set_window_size(1280, 900).await.unwrap();
}

#[tokio::test]
async fn journeys_with_javascript() {
    journeys(true).await;
}

#[tokio::test]
async fn journeys_without_javascript() {
    journeys(false).await;
}

/// The main journeys, in one browser with `javascript` on or off: the first admin's
/// sign-up, a registry and a user, a team with a member and a namespace, a repository
/// pushed with skopeo browsed, starred, commented and a tag deleted; an application
/// token created, used and revoked; anonymous explore; sign-out. With JavaScript, also
/// the screenshots.
async fn journeys(javascript: bool) {
    let w = world().await;
    let base = w.server.url.trim_end_matches('/').to_owned();
    let reg = w.registry.addr.clone();
    let driver = Driver::start().await;
    let c = driver.browser(javascript, false).await;

    // The first visit to an empty instance leads to sign-up; the first user is admin.
    c.goto(&format!("{base}/")).await.unwrap();
    expect_text(&c, "first administrator").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/users/sign_up")
    );
    fill(&c, "#username", ADMIN.0).await;
    fill(&c, "#email", "admin@example.test").await;
    fill(&c, "#password", ADMIN.1).await;
    fill(&c, "#password_confirmation", ADMIN.1).await;
    click(&c, "form[action='/users/sign_up'] button[type=submit]").await;
    expect_text(&c, "Registries").await; // the admin's totals
    // The registry (checked for reachability) and a user.
    c.goto(&format!("{base}/admin/registries")).await.unwrap();
    fill(&c, "#name", "main").await;
    fill(&c, "#hostname", &reg).await;
    click(&c, "form[action='/admin/registries'] button[type=submit]").await;
    expect_text(&c, "External hostname").await;
    expect_text(&c, &reg).await;
    c.goto(&format!("{base}/admin/users")).await.unwrap();
    fill(&c, "#username", ALICE.0).await;
    fill(&c, "#email", "alice@example.test").await;
    fill(&c, "#password", ALICE.1).await;
    fill(&c, "#password_confirmation", ALICE.1).await;
    click(&c, "form[action='/admin/users'] button[type=submit]").await;
    expect_text(&c, "The user alice was created.").await;
    // A team with alice as contributor, and a public namespace of it.
    c.goto(&format!("{base}/teams")).await.unwrap();
    fill(&c, "#team-name", "devs").await;
    click(&c, "form[action='/teams'] button[type=submit]").await;
    expect_text(&c, "You are owner of this team.").await;
    let team_url = c.current_url().await.unwrap().to_string();
    fill(&c, "#member-username", ALICE.0).await;
    find(&c, "#member-role")
        .await
        .select_by_value("contributor")
        .await
        .unwrap();
    click(&c, "form[action$='/members'] button[type=submit]").await;
    expect_text(&c, "alice").await;
    c.goto(&format!("{base}/namespaces")).await.unwrap();
    fill(&c, "#ns-name", "devs").await;
    fill(&c, "#ns-team", "devs").await;
    fill(&c, "#ns-description", "Images of the *devs* team").await;
    click(&c, "form[action='/namespaces'] button[type=submit]").await;
    expect_text(&c, "Images of the devs team").await;
    let ns_url = c.current_url().await.unwrap().to_string();
    find(&c, "#visibility")
        .await
        .select_by_value("public")
        .await
        .unwrap();
    click(&c, "form.inline button[type=submit]").await;
    expect_text(&c, "· public ·").await;

    // Images pushed with skopeo show up: v1 and latest one image, v2 another.
    let v1 = build_image("browser v1", "v1").await.unwrap();
    let v2 = build_image("browser v2", "v2").await.unwrap();
    for (image, tag) in [(&v1, "v1"), (&v1, "latest"), (&v2, "v2")] {
        w.skopeo
            .push(
                &image.reference,
                &format!("docker://{reg}/devs/app:{tag}"),
                Creds::User(ADMIN.0, ADMIN.1),
            )
            .await
            .unwrap_or_else(|e| panic!("step `push devs/app:{tag}`: {e:#}"));
    }
    wait_for_text(&c, &ns_url, "devs/app").await;
    c.find(Locator::LinkText("devs/app"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    expect_text(&c, "Comments").await;
    let repo_url = c.current_url().await.unwrap().to_string();
    wait_for_text(&c, &repo_url, "v2").await;
    let page = text(&c).await;
    for tag in ["v1", "latest", "v2"] {
        assert!(page.contains(tag), "tag {tag}: {page}");
    }
    // Copy buttons need the script: shown with it, hidden without.
    let copy = find(&c, "button[data-copy]").await;
    assert_eq!(copy.is_displayed().await.unwrap(), javascript);
    // Star and comment (Markdown). With JavaScript both update the page in place: a
    // marker set on the page survives them.
    if javascript {
        c.execute("window.stayed = true", vec![]).await.unwrap();
    }
    click(&c, "form[action$='/star'] button").await;
    expect_text(&c, "★ Starred · 1").await;
    fill(&c, "#comment-body", "Looks **good**").await;
    click(&c, "form[action$='/comments'] button").await;
    assert_eq!(
        find(&c, "#comments strong").await.text().await.unwrap(),
        "good"
    );
    if javascript {
        let stayed = c
            .execute("return window.stayed === true", vec![])
            .await
            .unwrap();
        assert_eq!(
            stayed,
            Value::Bool(true),
            "starring and commenting reloaded the page"
        );
    }
    // Delete v2 (its own digest): tick its row, delete (the confirmation prompt, with
    // JavaScript, is accepted). The registry no longer has it.
    let href = c
        .find(Locator::LinkText("v2"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    click(&c, &format!("#tag_{}", href.trim_start_matches("/tags/"))).await;
    click(&c, "form[action$='/tags/delete'] button[type=submit]").await;
    let page = expect_gone(&c, "v2").await;
    assert!(page.contains("latest"), "{page}");
    let gone = w
        .skopeo
        .inspect(
            &format!("docker://{reg}/devs/app:v2"),
            Creds::User(ADMIN.0, ADMIN.1),
        )
        .await;
    assert!(gone.is_err(), "the manifest is deleted in the registry");
    if javascript {
        // Search as you type on the repositories page.
        c.goto(&format!("{base}/repositories")).await.unwrap();
        expect_text(&c, "devs/app").await;
        c.execute("window.stayed = true", vec![]).await.unwrap();
        fill(&c, "#repo-search", "no-such-repository").await;
        expect_text(&c, "No repositories here yet.").await;
        let stayed = c
            .execute("return window.stayed === true", vec![])
            .await
            .unwrap();
        assert_eq!(stayed, Value::Bool(true), "the search reloaded the page");
        assert!(
            c.current_url()
                .await
                .unwrap()
                .query()
                .unwrap_or_default()
                .contains("search=no-such-repository")
        );
        let repo_path = repo_url.trim_start_matches(&base).to_owned();
        let pages = [
            ("/dashboard".to_owned(), "dashboard"),
            (repo_path, "repository"),
            ("/namespaces".to_owned(), "namespaces"),
        ];
        for (path, name) in &pages {
            screenshots(&c, &base, path, name, "light").await;
        }
        // Dark: a browser asking for the dark scheme (the media query really is dark).
        let dark = driver.browser(true, true).await;
        sign_in(&dark, &base, ADMIN).await;
        let is_dark = dark
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(is_dark, Value::Bool(true));
        for (path, name) in &pages {
            screenshots(&dark, &base, path, name, "dark").await;
        }
        dark.close().await.unwrap();
    }
    sign_out(&c).await;

    // Alice: an application token, created and used, then revoked.
    sign_in(&c, &base, ALICE).await;
    c.goto(&format!("{base}/users/edit")).await.unwrap();
    fill(&c, "#application", "laptop").await;
    click(&c, "form[action='/users/tokens'] button[type=submit]").await;
    let token = find(&c, "code.secret").await.text().await.unwrap();
    assert!(token.starts_with("pcat_"), "{token}");
    // A contributor's token pushes to the team's namespace.
    w.skopeo
        .push(
            &v2.reference,
            &format!("docker://{reg}/devs/app:by-token"),
            Creds::User(ALICE.0, &token),
        )
        .await
        .unwrap_or_else(|e| panic!("push with the token: {e:#}"));
    c.goto(&format!("{base}/users/edit")).await.unwrap();
    assert!(!text(&c).await.contains(&token), "the token is shown once");
    click(&c, "form[action^='/users/tokens/'] button").await;
    expect_text(&c, "No application tokens.").await;
    let push = w
        .skopeo
        .push(
            &v2.reference,
            &format!("docker://{reg}/devs/app:revoked"),
            Creds::User(ALICE.0, &token),
        )
        .await;
    assert!(push.is_err(), "a revoked token cannot push");
    sign_out(&c).await;
    // Anonymous explore shows the public repository.
    c.goto(&format!("{base}/explore")).await.unwrap();
    expect_text(&c, "devs/app").await;

    // The admin deletes the remaining images: the repository goes with its last tag,
    // and the browser lands on the namespace.
    sign_in(&c, &base, ADMIN).await;
    wait_for_text(&c, &repo_url, "by-token").await;
    for _ in 0..2 {
        click(&c, "input[type=checkbox][name^='tag_']").await;
        let before = text(&c).await;
        click(&c, "form[action$='/tags/delete'] button[type=submit]").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while text(&c).await == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the delete did not finish"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let page = expect_text(&c, "No repositories here yet.").await;
    assert!(page.contains("Images of the devs team"), "{page}");
    // The team page and sign-out work too.
    c.goto(&team_url).await.unwrap();
    expect_text(&c, "alice").await;
    sign_out(&c).await;
    c.close().await.unwrap();
}

/// Signing in through an OpenID Connect provider in the real browser, without
/// JavaScript: the button on the sign-in page, the provider's own form (the test
/// provider of `portcullis_testkit::oidc`, a real server in this process), back to
/// the username page, then the dashboard; the second time straight to the dashboard.
#[tokio::test]
async fn an_openid_connect_sign_in_in_the_browser() {
    use portcullis_testkit::oidc::{OidcProvider, ProviderOptions, TestOidcUser};
    let port = free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let op = OidcProvider::start(ProviderOptions {
        client_id: "portcullis".into(),
        client_secret: "sso-secret".into(),
        redirect_uris: vec![format!("{base}/users/auth/openid_connect/callback")],
    })
    .await
    .unwrap();
    op.add_user(TestOidcUser {
        subject: "sub-nina".into(),
        username: "nina".into(),
        password: "nina-at-the-provider".into(),
        email: "nina@example.com".into(),
        email_verified: true,
        name: "Nina Example".into(),
    });
    let work = tempfile::Builder::new()
        .prefix("portcullis-browser-oidc-")
        .tempdir()
        .unwrap();
    let env = common::env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", &format!("127.0.0.1:{port}")),
        (
            "PORTCULLIS_DATA_DIR",
            &work.path().join("data").display().to_string(),
        ),
        ("PORTCULLIS_MACHINE_FQDN_VALUE", "portcullis.test"),
        ("PORTCULLIS_LOG", "warn"),
        // Portus's variable names.
        ("PORTUS_OAUTH_OPENID_CONNECT_ENABLED", "true"),
        ("PORTUS_OAUTH_OPENID_CONNECT_ISSUER", op.issuer()),
        ("PORTUS_OAUTH_OPENID_CONNECT_IDENTIFIER", "portcullis"),
        ("PORTUS_OAUTH_OPENID_CONNECT_SECRET", "sso-secret"),
        ("PORTCULLIS_OAUTH_OPENID_CONNECT_NAME", "Example SSO"),
    ]);
    let server = serve(env, work.path()).await;
    assert_eq!(server.url.trim_end_matches('/'), base);
    let driver = Driver::start().await;
    let c = driver.browser(false, false).await;
    c.goto(&format!("{base}/users/sign_in")).await.unwrap();
    click(&c, "#sign-in-openid_connect").await;
    at_provider(&c, &op).await;
    fill(&c, "input[name=username]", "nina").await;
    fill(&c, "input[name=password]", "nina-at-the-provider").await;
    click(&c, "#sign-in").await;
    // Back with us: nobody here is nina yet.
    expect_text(&c, "Choose your username").await;
    let username = find(&c, "#username").await;
    assert_eq!(
        username.prop("value").await.unwrap().as_deref(),
        Some("nina")
    );
    click(&c, "#create-account").await;
    expect_text(&c, "Recent activities").await;
    c.goto(&format!("{base}/users/edit")).await.unwrap();
    let profile = expect_text(
        &c,
        "signs in through the LDAP directory or an identity provider",
    )
    .await;
    assert!(!profile.contains("Change your password"), "{profile}");
    // Signed out and in again: no username page this time.
    click(&c, "form[action='/users/sign_out'] button").await;
    expect_text(&c, "Sign in with Example SSO").await;
    click(&c, "#sign-in-openid_connect").await;
    at_provider(&c, &op).await;
    fill(&c, "input[name=username]", "nina").await;
    fill(&c, "input[name=password]", "nina-at-the-provider").await;
    click(&c, "#sign-in").await;
    expect_text(&c, "Recent activities").await;
    c.close().await.unwrap();
}

/// Waits until the browser shows the provider's sign-in form.
async fn at_provider(c: &Client, op: &portcullis_testkit::oidc::OidcProvider) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(op.issuer())
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sent to the provider"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    find(c, "#sign-in").await;
}
