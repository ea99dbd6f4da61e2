//! OAuth 2.0 Token Exchange (RFC 8693) at `POST /v2/token`: CI ID tokens from a real
//! OpenID Provider (`testkit::oidc`) exchanged for registry tokens of bots, through
//! the real router on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use portcullis_config::{Config, TrustRule};
use portcullis_testkit::oidc::{OidcProvider, ProviderOptions};
use serde_json::{Value, json};

const SERVICE: &str = "registry.test:5000";
const AUDIENCE: &str = "https://portcullis.test";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

fn rule(name: &str, issuer: &str, claims: &[(&str, &str)], bot: &str) -> TrustRule {
    TrustRule {
        name: name.into(),
        issuer: issuer.into(),
        audience: AUDIENCE.into(),
        claims: claims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        bot: bot.into(),
        pull_only: false,
        lifetime_seconds: 60,
    }
}

/// The rules every test has: `push` (protected refs of group/*), `pull` (readers/*,
/// pull-only), and rules pointing at a human, a missing and a disabled bot.
fn configure(c: &mut Config, issuer: &str) {
    let mut pull = rule("pull", issuer, &[("project_path", "readers/*")], "ci-bot");
    pull.pull_only = true;
    c.token_exchange.enabled = true;
    c.token_exchange.rules = vec![
        rule(
            "push",
            issuer,
            &[("project_path", "group/*"), ("ref_protected", "true")],
            "ci-bot",
        ),
        pull,
        rule("human", issuer, &[("project_path", "human/*")], "alice"),
        rule("ghost", issuer, &[("project_path", "ghost/*")], "ghost-bot"),
        rule(
            "sleepy",
            issuer,
            &[("project_path", "sleepy/*")],
            "sleepy-bot",
        ),
    ];
}

struct Setup {
    app: TestApp,
    idp: OidcProvider,
    admin: String,
}

async fn provider() -> OidcProvider {
    OidcProvider::start(ProviderOptions {
        client_id: "unused".into(),
        client_secret: String::new(),
        redirect_uris: Vec::new(),
    })
    .await
    .unwrap()
}

/// `team_fixture` (namespace `devs` of team `devs`, private) plus `ci-bot`, a
/// contributor of `devs`, and `sleepy-bot`, disabled.
async fn setup_on(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Setup {
    let idp = provider().await;
    let issuer = idp.issuer().to_owned();
    let app = TestApp::on(backend, |c| {
        configure(c, &issuer);
        tweak(c);
    })
    .await;
    let (admin, team) = team_fixture(&app).await;
    let admin_auth = Auth::Portus("admin", &admin);
    for bot in ["ci-bot", "sleepy-bot"] {
        let r = app
            .post(
                "/api/v1/users",
                admin_auth,
                json!({"user": {"username": bot, "email": format!("{bot}@example.com"), "bot": true}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        if bot == "sleepy-bot" {
            let id = r.body["id"].as_i64().unwrap();
            let r = app
                .put(
                    &format!("/api/v1/users/{id}"),
                    admin_auth,
                    json!({"user": {"enabled": false}}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
    }
    let alice_pw = pw("alice");
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            Auth::Basic("alice", &alice_pw),
            json!({"user": "ci-bot", "role": "contributor"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    Setup { app, idp, admin }
}

async fn setup(tweak: impl FnOnce(&mut Config)) -> Setup {
    setup_on(Backend::Sqlite, tweak).await
}

impl Setup {
    /// An ID token as GitLab CI makes them, at the app's clock, with `extra` claims
    /// written over the defaults.
    fn id_token(&self, extra: Value) -> String {
        let mut claims = json!({
            "sub": "project_path:group/app:ref_type:branch:ref:main",
            "aud": AUDIENCE,
            "iat": T0,
            "exp": T0 + 300,
            "project_path": "group/app",
            "ref": "main",
            "ref_protected": true,
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        self.idp.mint_id_token(claims)
    }

    async fn exchange(&self, subject_token: &str, scope: &str) -> Resp {
        self.form(&[
            ("grant_type", GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", ID_TOKEN),
            ("service", SERVICE),
            ("scope", scope),
        ])
        .await
    }

    async fn form(&self, pairs: &[(&str, &str)]) -> Resp {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        post_form(&self.app, &body).await
    }
}

fn granted(resp: &Resp) -> Value {
    jwt_part(resp.body["access_token"].as_str().unwrap(), 1)["access"].clone()
}

fn assert_refused(resp: &Resp, what: &str) {
    assert_eq!(
        resp.status,
        StatusCode::BAD_REQUEST,
        "{what}: {:?}",
        resp.body
    );
    // Every refusal reads the same: the reason is only in the log.
    assert_eq!(
        resp.body,
        json!({"error": "invalid_grant", "error_description": "the subject token was not accepted"}),
        "{what}"
    );
}

const PUSH: &str = "repository:devs/app:pull,push";

#[tokio::test]
async fn a_ci_token_is_exchanged_for_the_bots_pull_and_push_on_both_databases() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let s = setup_on(backend, |_| {}).await;
        let r = s.exchange(&s.id_token(json!({})), PUSH).await;
        assert_eq!(r.status, StatusCode::OK, "{backend:?}: {:?}", r.body);
        assert_eq!(
            granted(&r),
            json!([{"type": "repository", "name": "devs/app", "actions": ["pull", "push"]}]),
            "{backend:?}: a contributor's grants"
        );
        let b = &r.body;
        assert_eq!(
            b["issued_token_type"],
            "urn:ietf:params:oauth:token-type:access_token"
        );
        assert_eq!(b["token_type"], "Bearer");
        assert_eq!(b["token"], b["access_token"], "docker reads token");
        assert_eq!(b["expires_in"], 60, "the rule's lifetime");
        assert_eq!(b["scope"], "repository:devs/app:pull,push");
        assert!(b["issued_at"].is_string());
        assert!(
            b.get("refresh_token").is_none(),
            "never a refresh token: {b}"
        );
        assert_eq!(r.headers["cache-control"], "no-store");
        let claims = jwt_part(b["token"].as_str().unwrap(), 1);
        assert_eq!(
            claims["sub"], "ci-bot",
            "the registry attributes pushes to the bot"
        );
        assert_eq!(claims["aud"], SERVICE);
        assert_eq!(claims["iss"], "portcullis.test");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            60
        );

        // A refresh token is not issued even when asked for in docker's way.
        let token = s.id_token(json!({}));
        let r = s
            .form(&[
                ("grant_type", GRANT),
                ("subject_token", &token),
                ("subject_token_type", ID_TOKEN),
                ("service", SERVICE),
                ("scope", PUSH),
                ("access_type", "offline"),
            ])
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.get("refresh_token").is_none(), "{:?}", r.body);

        // Namespaces the bot has no role in: nothing beyond what anyone may.
        let r = s
            .exchange(&s.id_token(json!({})), "repository:alice/x:pull,push")
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(granted(&r), json!([]), "{backend:?}");
        drop(s.admin);
    }
}

#[tokio::test]
async fn the_lifetime_is_capped_by_the_registry_token_lifetime() {
    let s = setup(|c| {
        c.registry.jwt_expiration_time.value = 1;
        c.token_exchange.rules[0].lifetime_seconds = 3600;
    })
    .await;
    let r = s.exchange(&s.id_token(json!({})), PUSH).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["expires_in"], 60);
}

#[tokio::test]
async fn claim_rules_match_exactly_by_glob_and_as_json_text() {
    let s = setup(|_| {}).await;
    // (claims written over the defaults, granted actions or None for a refusal)
    let table: &[(Value, Option<Value>)] = &[
        (json!({}), Some(json!(["pull", "push"]))),
        (
            json!({"project_path": "group/sub/app"}),
            Some(json!(["pull", "push"])),
        ),
        // The glob needs its prefix.
        (json!({"project_path": "groupie/app"}), None),
        (json!({"project_path": "other/group/app"}), None),
        // Exact value wrong, or missing.
        (json!({"ref_protected": false}), None),
        (json!({"ref_protected": null}), None),
        (json!({"project_path": ["group/app"]}), None),
        // A string "true" is the boolean's JSON text.
        (
            json!({"ref_protected": "true"}),
            Some(json!(["pull", "push"])),
        ),
        // The pull-only rule, further down the list: the first match wins.
        (
            json!({"project_path": "readers/app"}),
            Some(json!(["pull"])),
        ),
    ];
    for (extra, want) in table {
        let r = s.exchange(&s.id_token(extra.clone()), PUSH).await;
        match want {
            Some(actions) => {
                assert_eq!(r.status, StatusCode::OK, "{extra}: {:?}", r.body);
                assert_eq!(granted(&r)[0]["actions"], *actions, "{extra}");
            }
            None => assert_refused(&r, &extra.to_string()),
        }
    }
    // A claim the rule names, missing from the token.
    let mut claims = json!({"sub": "x", "aud": AUDIENCE, "iat": T0, "exp": T0 + 300, "project_path": "group/app"});
    assert_refused(
        &s.exchange(&s.idp.mint_id_token(claims.clone()), PUSH).await,
        "no ref_protected",
    );
    claims["ref_protected"] = json!(true);
    assert_eq!(
        s.exchange(&s.idp.mint_id_token(claims), PUSH).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_tokens_are_refused_alike() {
    let s = setup(|_| {}).await;
    let other = provider().await;
    let good = s.id_token(json!({}));
    // The payload changed under the original signature.
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut payload = jwt_part(&good, 1);
        payload["project_path"] = json!("group/evil");
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&payload).unwrap());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let cases = [
        ("wrong audience", s.id_token(json!({"aud": "someone-else"}))),
        ("audience list without ours", s.id_token(json!({"aud": ["a", "b"]}))),
        ("expired", s.id_token(json!({"iat": T0 - 900, "exp": T0 - 600}))),
        ("issued in the future", s.id_token(json!({"iat": T0 + 600, "exp": T0 + 900}))),
        ("no subject", s.id_token(json!({"sub": ""}))),
        // Another provider's key under our issuer's name: a kid the JWKS lacks.
        ("foreign signature", other.mint_id_token(json!({"iss": s.idp.issuer(), "sub": "x", "aud": AUDIENCE, "iat": T0, "exp": T0 + 300, "project_path": "group/app", "ref_protected": true}))),
        ("tampered payload", tampered),
        ("unknown kid", s.idp.mint_id_token_with_kid("nope", json!({"sub": "x", "aud": AUDIENCE, "iat": T0, "exp": T0 + 300, "project_path": "group/app", "ref_protected": true}))),
        // A well-signed token of an issuer no rule trusts.
        ("unknown issuer", other.mint_id_token(json!({"sub": "x", "aud": AUDIENCE, "iat": T0, "exp": T0 + 300}))),
        ("not a JWT", "not-a-token".to_owned()),
        // The rules' targets: a human account, a bot that does not exist, a disabled bot.
        ("rule maps to a human", s.id_token(json!({"project_path": "human/app"}))),
        ("rule maps to a missing bot", s.id_token(json!({"project_path": "ghost/app"}))),
        ("disabled bot", s.id_token(json!({"project_path": "sleepy/app"}))),
    ];
    for (what, token) in cases {
        assert_refused(&s.exchange(&token, PUSH).await, what);
    }
    // And the good one still works.
    assert_eq!(s.exchange(&good, PUSH).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_pull_only_rule_never_grants_push_or_delete() {
    let s = setup(|c| c.delete.contributors = true).await;
    let token = s.id_token(json!({"project_path": "readers/app"}));
    let r = s
        .exchange(&token, "repository:devs/app:pull,push,delete")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(granted(&r)[0]["actions"], json!(["pull"]));
    let r = s.exchange(&token, "repository:devs/app:*").await;
    assert_eq!(granted(&r)[0]["actions"], json!(["pull"]));
    // The push rule with the same bot gets delete as well here (contributors may).
    let r = s
        .exchange(
            &s.id_token(json!({})),
            "repository:devs/app:pull,push,delete",
        )
        .await;
    assert_eq!(granted(&r)[0]["actions"], json!(["pull", "push", "delete"]));
}

#[tokio::test]
async fn switched_off_the_grant_type_is_unsupported() {
    let s = setup(|c| c.token_exchange.enabled = false).await;
    let r = s.exchange(&s.id_token(json!({})), PUSH).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "unsupported_grant_type");
    assert!(s.idp.requests().is_empty(), "the issuer is not asked");
}

#[tokio::test]
async fn an_issuer_that_is_down_is_a_503_and_later_exchanges_work() {
    let s = setup(|_| {}).await;
    let token = s.id_token(json!({}));
    s.idp.set_outage(Some(503));
    let r = s.exchange(&token, PUSH).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert!(r.body.get("access_token").is_none());
    s.idp.set_outage(None);
    let r = s.exchange(&token, PUSH).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "discovery is tried again: {:?}",
        r.body
    );
    // Down again with the keys cached: exchanges go on.
    s.idp.set_outage(Some(503));
    assert_eq!(s.exchange(&token, PUSH).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_exchanged_token_is_no_credential_anywhere_else() {
    let s = setup(|_| {}).await;
    let r = s.exchange(&s.id_token(json!({})), PUSH).await;
    let jwt = r.body["access_token"].as_str().unwrap().to_owned();
    let app = &s.app;
    for uri in ["/api/v1/namespaces", "/api/v1/users", "/api/v1/teams"] {
        assert_eq!(
            app.get(uri, Auth::Bearer(&jwt)).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
        assert_eq!(
            app.get(uri, Auth::Portus("ci-bot", &jwt)).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri} (Portus-Auth)"
        );
    }
    let r = app
        .post(
            "/api/v1/users/1/application_tokens",
            Auth::Bearer(&jwt),
            json!({"application": "escalate"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "no application tokens minted"
    );
    // As a password at the token endpoint: GET with Basic, and the POST form.
    let q = format!("service={SERVICE}&scope={PUSH}");
    assert_eq!(
        app.token(&q, Auth::Basic("ci-bot", &jwt)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = s
        .form(&[
            ("grant_type", "password"),
            ("username", "ci-bot"),
            ("password", &jwt),
            ("service", SERVICE),
            ("scope", PUSH),
        ])
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
    let r = s
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &jwt),
            ("service", SERVICE),
        ])
        .await;
    assert_eq!(r.body["error"], "invalid_grant");
    // Nor is it a subject token: Portcullis is no trusted issuer.
    assert_refused(&s.exchange(&jwt, PUSH).await, "the registry token itself");
    assert_eq!(
        app.get("/v2/", Auth::Bearer(&jwt)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn exchanges_are_rate_limited_per_client() {
    let s = setup(|c| c.token_exchange.requests_per_minute = 3).await;
    let token = s.id_token(json!({}));
    for _ in 0..2 {
        assert_eq!(s.exchange(&token, PUSH).await.status, StatusCode::OK);
    }
    // Refused attempts count too.
    assert_refused(&s.exchange("garbage", PUSH).await, "garbage");
    let r = s.exchange(&token, PUSH).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", r.body);
    s.app.clock.advance_secs(60);
    assert_eq!(s.exchange(&token, PUSH).await.status, StatusCode::OK);
}

#[tokio::test]
async fn request_parameters_follow_rfc_8693() {
    let s = setup(|_| {}).await;
    let token = s.id_token(json!({}));
    let base = [
        ("grant_type", GRANT),
        ("subject_token", token.as_str()),
        ("subject_token_type", ID_TOKEN),
        ("scope", PUSH),
    ];
    // (extra form fields, status, OAuth error)
    type Case<'a> = (&'a [(&'a str, &'a str)], StatusCode, &'a str);
    let table: &[Case] = &[
        (&[("service", SERVICE)], StatusCode::OK, ""),
        // RFC 8693's audience names the registry too.
        (&[("audience", SERVICE)], StatusCode::OK, ""),
        (
            &[("service", SERVICE), ("audience", SERVICE)],
            StatusCode::OK,
            "",
        ),
        (
            &[
                ("service", SERVICE),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
            ],
            StatusCode::OK,
            "",
        ),
        (&[], StatusCode::BAD_REQUEST, "invalid_request"),
        (
            &[("service", SERVICE), ("audience", "elsewhere")],
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            &[("service", SERVICE), ("resource", "https://elsewhere/")],
            StatusCode::BAD_REQUEST,
            "invalid_target",
        ),
        (
            &[
                ("service", SERVICE),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            &[("service", SERVICE), ("actor_token", "x")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        // A parameter given twice (RFC 6749 §3.2) is malformed.
        (
            &[("service", SERVICE), ("scope", "repository:x:pull")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (extra, status, error) in table {
        let mut pairs: Vec<(&str, &str)> = base.to_vec();
        pairs.extend_from_slice(extra);
        let r = s.form(&pairs).await;
        assert_eq!(r.status, *status, "{extra:?}: {:?}", r.body);
        if !error.is_empty() {
            assert_eq!(r.body["error"], *error, "{extra:?}");
            assert!(r.body["error_description"].is_string());
        }
    }
    // The JWT token type is accepted too; others, or none, are not.
    for (kind, status) in [
        (Some("urn:ietf:params:oauth:token-type:jwt"), StatusCode::OK),
        (
            Some("urn:ietf:params:oauth:token-type:access_token"),
            StatusCode::BAD_REQUEST,
        ),
        (None, StatusCode::BAD_REQUEST),
    ] {
        let mut pairs = vec![
            ("grant_type", GRANT),
            ("subject_token", token.as_str()),
            ("service", SERVICE),
        ];
        if let Some(kind) = kind {
            pairs.push(("subject_token_type", kind));
        }
        let r = s.form(&pairs).await;
        assert_eq!(r.status, status, "{kind:?}: {:?}", r.body);
    }
    let r = s
        .form(&[
            ("grant_type", GRANT),
            ("subject_token_type", ID_TOKEN),
            ("service", SERVICE),
        ])
        .await;
    assert_eq!(r.body["error"], "invalid_request", "no subject_token");
    let r = s
        .form(&[
            ("grant_type", GRANT),
            ("subject_token", &token),
            ("subject_token_type", ID_TOKEN),
            ("service", SERVICE),
            ("scope", "bogus"),
        ])
        .await;
    assert_eq!(r.body["error"], "invalid_scope", "{:?}", r.body);
}
