//! Signing in with Google, GitHub, GitLab and Bitbucket, as Portus offered: the whole
//! browser flow against fakes of the providers' documented endpoints
//! (`portcullis_testkit::oauth_fakes` for the plain OAuth ones; Google, an OpenID
//! Provider, is the test OpenID Provider with Google's `hd` claim). The real services
//! cannot run here, so these show our side of the documented protocol.
//!
//! For each: a new person picks a username and comes straight back the next time
//! (also after renaming themselves at the provider: the id is what is linked); a
//! verified email links the existing account, an unverified one does not; the
//! provider's restriction refuses a non-member and `domain` a foreign address (403
//! with a page); the provider down is a 503 page.

use crate::browser::{Browser, Page, web_app_in_real_time};
use crate::common::TestApp;
use axum::http::StatusCode;
use portcullis_config::Config;
use portcullis_testkit::oauth_fakes::{FakeClient, FakeUser, Kind, OAuthFake};
use portcullis_testkit::oidc::{OidcProvider, ProviderOptions, TestOidcUser};

const BASE: &str = "https://portcullis.test";

fn callback(provider: &str) -> String {
    format!("{BASE}/users/auth/{provider}/callback")
}

/// The provider as the tests drive it: a plain OAuth fake or the OpenID one.
enum Fake {
    OAuth(OAuthFake),
    Google(OidcProvider),
}

impl Fake {
    async fn sign_in(&self, authorize: &str, user: &str) -> String {
        let password = format!("{user}-pw");
        match self {
            Fake::OAuth(f) => f.sign_in_like_a_browser(authorize, user, &password).await,
            Fake::Google(op) => op.sign_in_like_a_browser(authorize, user, &password).await,
        }
        .unwrap()
    }

    fn base(&self) -> &str {
        match self {
            Fake::OAuth(f) => f.server(),
            Fake::Google(op) => op.issuer(),
        }
    }

    fn set_outage(&self, status: Option<u16>) {
        match self {
            Fake::OAuth(f) => f.set_outage(status),
            Fake::Google(op) => op.set_outage(status),
        }
    }
}

/// One provider under test.
#[derive(Clone, Copy)]
struct Spec {
    id: &'static str,
    button: &'static str,
    kind: Option<Kind>,
}

const GITHUB: Spec = Spec {
    id: "github",
    button: "GitHub",
    kind: Some(Kind::GitHub),
};
const GITLAB: Spec = Spec {
    id: "gitlab",
    button: "GitLab",
    kind: Some(Kind::GitLab),
};
const BITBUCKET: Spec = Spec {
    id: "bitbucket",
    button: "Bitbucket",
    kind: Some(Kind::Bitbucket),
};
const GOOGLE: Spec = Spec {
    id: "google_oauth2",
    button: "Google",
    kind: None,
};

/// What the restriction names, and the membership members have.
const MEMBERSHIP: &str = "acme";
const GITLAB_GROUP: &str = "acme/registry";

/// At the provider: olga (new here), alice and mallory (local accounts of their
/// addresses; mallory's unverified at the provider), nina (not a member), eve
/// (a member at another domain).
async fn start_fake(spec: Spec) -> Fake {
    let people = [
        (101, "olga", true, true, "olga@example.com"),
        (102, "alice", true, true, "alice@example.com"),
        (103, "mallory", false, true, "mallory@example.com"),
        (104, "nina", true, false, "nina@example.com"),
        (105, "eve", true, true, "eve@foreign.example"),
    ];
    match spec.kind {
        Some(kind) => {
            let fake = OAuthFake::start(
                kind,
                FakeClient {
                    client_id: "portcullis-client".into(),
                    client_secret: "portcullis-secret".into(),
                    redirect_uri: callback(spec.id),
                },
            )
            .await
            .unwrap();
            let group = if kind == Kind::GitLab {
                GITLAB_GROUP
            } else {
                MEMBERSHIP
            };
            for (id, name, verified, member, email) in people {
                let mut user = FakeUser::new(id, name);
                user.email_verified = verified;
                user.email = email.into();
                if member {
                    user.memberships = vec![group.into(), "unrelated".into()];
                    user.teams = vec![(MEMBERSHIP.into(), "Registry Admins".into())];
                }
                fake.add_user(user);
            }
            Fake::OAuth(fake)
        }
        None => {
            let op = OidcProvider::start(ProviderOptions {
                client_id: "portcullis-client".into(),
                client_secret: "portcullis-secret".into(),
                redirect_uris: vec![callback(spec.id)],
            })
            .await
            .unwrap();
            for (id, name, verified, member, email) in people {
                op.add_user(TestOidcUser {
                    subject: format!("1{id}000000000"),
                    username: name.into(),
                    password: format!("{name}-pw"),
                    email: email.into(),
                    email_verified: verified,
                    name: format!("{name} Example"),
                });
                // A non-member is of another Workspace: `hd` mismatches.
                let hd = if member {
                    "example.com"
                } else {
                    "other.example"
                };
                op.set_extra_claims(name, serde_json::json!({ "hd": hd }));
            }
            Fake::Google(op)
        }
    }
}

/// Turns `spec` on against `fake`, with its restriction when `restricted`.
fn configure(c: &mut Config, spec: Spec, fake: &Fake, restricted: bool, domain: &str) {
    c.server.external_url = BASE.into();
    let o = &mut c.oauth;
    let (id, secret) = (
        "portcullis-client".to_owned(),
        "portcullis-secret".to_owned(),
    );
    match spec.id {
        "github" => {
            let g = &mut o.github;
            (g.enabled, g.client_id, g.client_secret) = (true, id, secret);
            g.server = fake.base().into();
            g.domain = domain.into();
            if restricted {
                g.organization = MEMBERSHIP.into();
            }
        }
        "gitlab" => {
            let g = &mut o.gitlab;
            (g.enabled, g.application_id, g.secret) = (true, id, secret);
            g.server = fake.base().into();
            g.domain = domain.into();
            if restricted {
                g.group = GITLAB_GROUP.into();
            }
        }
        "bitbucket" => {
            let b = &mut o.bitbucket;
            (b.enabled, b.key, b.secret) = (true, id, secret);
            b.server = fake.base().into();
            b.domain = domain.into();
            if restricted {
                b.options.team = MEMBERSHIP.into();
            }
        }
        _ => {
            let g = &mut o.google_oauth2;
            (g.enabled, g.id, g.secret) = (true, id, secret);
            g.issuer = fake.base().into();
            g.domain = domain.into();
            if restricted {
                g.options.hd = "example.com".into();
            }
        }
    }
}

async fn app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    web_app_in_real_time(configure).await
}

/// The button, the provider's form as `user`, and back: our callback's answer.
async fn sign_in(browser: &mut Browser<'_>, spec: Spec, fake: &Fake, user: &str) -> Page {
    let page = browser.get("/users/sign_in").await;
    assert!(
        page.body.contains(&format!("Sign in with {}", spec.button)),
        "{}",
        page.body
    );
    let started = browser.get(&format!("/users/auth/{}", spec.id)).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let authorize = started.location().to_owned();
    assert!(authorize.starts_with(fake.base()), "{authorize}");
    let back = fake.sign_in(&authorize, user).await;
    let path = back
        .strip_prefix(BASE)
        .unwrap_or_else(|| panic!("not back to us: {back}"))
        .to_owned();
    browser.get(&path).await
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    serde_urlencoded::from_str(url.split_once('?').unwrap().1).unwrap()
}

async fn whoami(browser: &mut Browser<'_>) -> String {
    let profile = browser.get("/users/edit").await;
    assert_eq!(profile.status, StatusCode::OK, "{}", profile.body);
    profile.body
}

/// Everything but the domain for one provider, restriction on.
async fn the_flow(spec: Spec) {
    let fake = start_fake(spec).await;
    let app = app_with(|c| configure(c, spec, &fake, true, "")).await;
    let admin = app.bootstrap().await;
    app.create_registry(&admin, "registry.test:5000").await;
    app.create_user(&admin, "alice").await;
    app.create_user(&admin, "mallory").await;

    // Someone new: the username page, then the account, then straight in.
    let mut browser = Browser::new(&app);
    let page = sign_in(&mut browser, spec, &fake, "olga").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Choose your username"), "{}", page.body);
    assert!(page.body.contains("value=\"olga\""), "{}", page.body);
    let created = browser
        .post(
            &format!("/users/auth/{}/account", spec.id),
            &[
                ("sealed", &page.field("sealed")),
                ("username", "olga"),
                ("email", "typed@example.com"),
                ("display_name", "Olga"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/dashboard");
    assert!(whoami(&mut browser).await.contains("olga@example.com"));
    let mut again = Browser::new(&app);
    let page = sign_in(&mut again, spec, &fake, "olga").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), "/dashboard");

    // The id is linked, not the username: renamed at the provider, still olga here.
    if let Fake::OAuth(f) = &fake {
        f.update_user("olga", |u| {
            u.username = "olga-renamed".into();
            u.password = "olga-renamed-pw".into();
        });
        let mut renamed = Browser::new(&app);
        let page = sign_in(&mut renamed, spec, &fake, "olga-renamed").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert!(whoami(&mut renamed).await.contains("olga@example.com"));
    }

    // A verified address links the local account of that address ...
    let mut alice = Browser::new(&app);
    let page = sign_in(&mut alice, spec, &fake, "alice").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(whoami(&mut alice).await.contains("alice@example.com"));
    // ... an unverified one does not.
    let mut mallory = Browser::new(&app);
    let page = sign_in(&mut mallory, spec, &fake, "mallory").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Choose your username"), "{}", page.body);
    assert_ne!(mallory.get("/users/edit").await.status, StatusCode::OK);

    // Not a member: refused with a page.
    let mut nina = Browser::new(&app);
    let page = sign_in(&mut nina, spec, &fake, "nina").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("may sign in here"), "{}", page.body);
    assert_ne!(nina.get("/users/edit").await.status, StatusCode::OK);

    // The provider down at the callback (the token request): 503 with a page.
    let olga = match &fake {
        Fake::OAuth(_) => "olga-renamed",
        Fake::Google(_) => "olga",
    };
    let mut browser = Browser::new(&app);
    browser.get("/users/sign_in").await;
    let started = browser.get(&format!("/users/auth/{}", spec.id)).await;
    let back = fake.sign_in(started.location(), olga).await;
    fake.set_outage(Some(503));
    let page = browser.get(back.strip_prefix(BASE).unwrap()).await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert!(page.body.contains("does not answer"), "{}", page.body);
    fake.set_outage(None);
}

/// `domain`: an address of another domain is refused, one of it admitted.
async fn the_domain(spec: Spec) {
    let fake = start_fake(spec).await;
    let app = app_with(|c| configure(c, spec, &fake, false, "foreign.example")).await;
    app.bootstrap().await;
    let mut olga = Browser::new(&app);
    let page = sign_in(&mut olga, spec, &fake, "olga").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("foreign.example"), "{}", page.body);
    let mut eve = Browser::new(&app);
    let page = sign_in(&mut eve, spec, &fake, "eve").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Choose your username"), "{}", page.body);
}

#[tokio::test]
async fn github_signs_in_members_of_the_organization() {
    the_flow(GITHUB).await;
}

#[tokio::test]
async fn github_domain() {
    the_domain(GITHUB).await;
}

#[tokio::test]
async fn gitlab_signs_in_members_of_the_group() {
    the_flow(GITLAB).await;
}

#[tokio::test]
async fn gitlab_domain() {
    the_domain(GITLAB).await;
}

#[tokio::test]
async fn bitbucket_signs_in_members_of_the_workspace() {
    the_flow(BITBUCKET).await;
}

#[tokio::test]
async fn bitbucket_domain() {
    the_domain(BITBUCKET).await;
}

#[tokio::test]
async fn google_signs_in_accounts_of_the_workspace_domain() {
    the_flow(GOOGLE).await;
}

#[tokio::test]
async fn google_domain() {
    the_domain(GOOGLE).await;
}

#[tokio::test]
async fn github_team_restriction_and_what_is_sent() {
    let fake = start_fake(GITHUB).await;
    let app = app_with(|c| {
        configure(c, GITHUB, &fake, true, "");
        c.oauth.github.team = "registry-admins".into();
    })
    .await;
    app.bootstrap().await;
    let Fake::OAuth(f) = &fake else {
        unreachable!()
    };
    // In the organization but in another team: refused, naming the team.
    f.update_user("olga", |u| {
        u.teams = vec![(MEMBERSHIP.into(), "Other".into())];
    });
    let mut olga = Browser::new(&app);
    let page = sign_in(&mut olga, GITHUB, &fake, "olga").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("registry-admins"), "{}", page.body);
    // In the team (by its slug): in.
    let mut alice = Browser::new(&app);
    let page = sign_in(&mut alice, GITHUB, &fake, "alice").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    // Portus's scopes, PKCE, and the documented API paths.
    let requests = f.requests();
    let authorize = requests
        .iter()
        .find(|r| r.starts_with("GET /login/oauth/authorize?"))
        .unwrap();
    let query = query_of(authorize);
    assert_eq!(query["scope"], "read:user user:email read:org");
    assert_eq!(query["code_challenge_method"], "S256");
    for path in [
        "GET /api/v3/user",
        "GET /api/v3/user/emails?per_page=100",
        "GET /api/v3/user/orgs?per_page=100",
        "GET /api/v3/user/teams?per_page=100",
    ] {
        assert!(requests.iter().any(|r| r == path), "{path}: {requests:?}");
    }
}

#[tokio::test]
async fn bitbucket_gets_state_but_no_pkce_and_gitlab_asks_read_api_only_for_a_group() {
    for (spec, restricted) in [(BITBUCKET, true), (GITLAB, false), (GITLAB, true)] {
        let fake = start_fake(spec).await;
        let app = app_with(|c| configure(c, spec, &fake, restricted, "")).await;
        app.bootstrap().await;
        let mut browser = Browser::new(&app);
        browser.get("/users/sign_in").await;
        let started = browser.get(&format!("/users/auth/{}", spec.id)).await;
        let query = query_of(started.location());
        assert!(query["state"].len() >= 43, "{query:?}");
        match spec.kind {
            Some(Kind::Bitbucket) => {
                assert!(!query.contains_key("code_challenge"), "{query:?}");
                assert!(!query.contains_key("scope"), "{query:?}");
            }
            _ => {
                let want = if restricted {
                    "read_user read_api"
                } else {
                    "read_user"
                };
                assert_eq!(query["scope"], want);
            }
        }
    }
}

#[tokio::test]
async fn a_pending_sign_in_or_username_page_of_one_provider_is_refused_by_another() {
    let github = start_fake(GITHUB).await;
    let gitlab = start_fake(GITLAB).await;
    let app = app_with(|c| {
        configure(c, GITHUB, &github, false, "");
        configure(c, GITLAB, &gitlab, false, "");
    })
    .await;
    app.bootstrap().await;
    // GitHub's username page, posted to GitLab's form: the ids are different people.
    let mut browser = Browser::new(&app);
    let page = sign_in(&mut browser, GITHUB, &github, "olga").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let sealed = page.field("sealed");
    let crossed = browser
        .post(
            "/users/auth/gitlab/account",
            &[
                ("sealed", &sealed),
                ("username", "olga"),
                ("email", "olga@example.com"),
                ("display_name", ""),
            ],
        )
        .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN, "{}", crossed.body);
    // A sign-in started with GitHub, returned to GitLab's callback.
    browser.get("/users/sign_in").await;
    let started = browser.get("/users/auth/github").await;
    let back = github.sign_in(started.location(), "olga").await;
    let query = back.split_once('?').unwrap().1;
    let page = browser
        .get(&format!("/users/auth/gitlab/callback?{query}"))
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    // A disabled provider is not there.
    let page = browser.get("/users/auth/bitbucket").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND, "{}", page.body);
}
