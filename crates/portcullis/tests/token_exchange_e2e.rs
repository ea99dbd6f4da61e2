//! Token exchange end to end: the built binary with `token_exchange.rules` in its
//! `config.yml` trusting an OpenID Provider run by this test (`testkit::oidc`), Debian's
//! `docker-registry` and `skopeo`. A bot pushes an image with its application token; a
//! CI job's ID token is exchanged at `POST /v2/token` and skopeo pulls with the
//! registry token it yields; a `pull_only` rule's token cannot push.

#![allow(clippy::unwrap_used)]

mod common;
use common::{Auth, Http, env_vars, serve, str_of};
use portcullis_testkit::images::build_image;
use portcullis_testkit::oidc::{OidcProvider, ProviderOptions};
use portcullis_testkit::registry::Registry;
use portcullis_testkit::server::read_log;
use portcullis_testkit::skopeo::{Creds, Skopeo};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const AUDIENCE: &str = "https://portcullis.e2e";

#[tokio::test]
async fn a_ci_id_token_is_exchanged_and_skopeo_pulls_with_the_registry_token() {
    let idp = OidcProvider::start(ProviderOptions {
        client_id: "unused".into(),
        client_secret: String::new(),
        redirect_uris: Vec::new(),
    })
    .await
    .unwrap_or_else(|e| panic!("step `start the OpenID Provider`: {e:#}"));
    let work = tempfile::Builder::new()
        .prefix("portcullis-exchange-e2e-")
        .tempdir()
        .unwrap();
    let issuer = idp.issuer();
    std::fs::write(
        work.path().join("config.yml"),
        format!(
            "token_exchange:\n  rules:\n\
             \x20   - {{ name: release, issuer: '{issuer}', audience: '{AUDIENCE}', claims: {{ project_path: 'group/*', ref_protected: true }}, bot: ci-bot }}\n\
             \x20   - {{ name: review, issuer: '{issuer}', audience: '{AUDIENCE}', claims: {{ project_path: 'group/*' }}, bot: ci-bot, pull_only: true }}\n"
        ),
    )
    .unwrap();
    let data = work.path().join("data").display().to_string();
    let env = env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0"),
        ("PORTCULLIS_DATA_DIR", &data),
        ("PORTCULLIS_MACHINE_FQDN_VALUE", "portcullis.test"),
        ("PORTCULLIS_LOG", "warn,portcullis_service::exchange=info"),
        // The switch from the environment, the rules from the file.
        ("PORTCULLIS_TOKEN_EXCHANGE_ENABLED", "true"),
    ]);
    let server = serve(env, work.path()).await;
    let registry = Registry::start(&server, &work.path().join("registry"))
        .await
        .unwrap_or_else(|e| panic!("step `start docker-registry`: {e:#}"));
    let http = Http::new();
    let api = |path: &str| format!("{}/api/v1{path}", server.url);
    let admin = http.bootstrap(&server.url, ADMIN).await;
    let as_admin = Auth::Bearer(&admin);
    http.create_registry(&server.url, as_admin, "test", &registry.addr)
        .await;
    let bot = http
        .post_json(
            "create the bot",
            &api("/users"),
            as_admin,
            json!({"user": {"username": "ci-bot", "email": "ci-bot@example.com", "bot": true}}),
            StatusCode::CREATED,
        )
        .await;
    let bot_token = str_of("the bot's token", &bot, "plain_token").to_owned();
    let team = http
        .post_json(
            "create the team",
            &api("/teams"),
            as_admin,
            json!({"name": "releases", "description": "CI"}),
            StatusCode::CREATED,
        )
        .await;
    let team_id = team["id"].as_i64().unwrap();
    http.post_json(
        "the bot joins as a contributor",
        &api(&format!("/teams/{team_id}/members")),
        as_admin,
        json!({"user": "ci-bot", "role": "contributor"}),
        StatusCode::CREATED,
    )
    .await;
    http.post_json(
        "create the namespace",
        &api("/namespaces"),
        as_admin,
        json!({"name": "releases", "team": "releases"}),
        StatusCode::CREATED,
    )
    .await;

    let image = build_image("exchange", "v1")
        .await
        .unwrap_or_else(|e| panic!("step `build image with umoci`: {e:#}"));
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("step `skopeo`: {e:#}"));
    let app = format!("docker://{}/releases/app:v1", registry.addr);
    skopeo
        .push(&image.reference, &app, Creds::User("ci-bot", &bot_token))
        .await
        .unwrap_or_else(|e| panic!("step `the bot pushes with its application token`: {e:#}"));

    let exchange = |claims: Value, scope: &'static str| {
        let token = idp.mint_id_token(claims);
        let client = reqwest::Client::new();
        let url = format!("{}/v2/token", server.url);
        let service = registry.service.clone();
        async move {
            let r = client
                .post(url)
                // Every value here is URL-safe as it is (base64url, `:`, `/`, `,`).
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!(
                    "grant_type=urn:ietf:params:oauth:grant-type:token-exchange\
                     &subject_token={token}\
                     &subject_token_type=urn:ietf:params:oauth:token-type:id_token\
                     &service={service}&scope={scope}"
                ))
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let release = json!({"sub": "project_path:group/app:ref_type:branch:ref:main", "aud": AUDIENCE, "project_path": "group/app", "ref_protected": true});
    let (status, body) = exchange(release, "repository:releases/app:pull,push").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "step `exchange the release job's token`: {body}"
    );
    assert_eq!(body["scope"], "repository:releases/app:pull,push", "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let pulled = skopeo
        .pull(&app, Creds::RegistryToken(&token))
        .await
        .unwrap_or_else(|e| panic!("step `skopeo pulls with the exchanged token`: {e:#}"));
    assert!(pulled.starts_with("oci:"), "{pulled}");

    // A review job (unprotected ref) matches the pull-only rule: pulls work, a push
    // with its token is refused by the registry.
    let review = json!({"sub": "project_path:group/app:ref_type:branch:ref:feature", "aud": AUDIENCE, "project_path": "group/app", "ref_protected": false});
    let (status, body) = exchange(review, "repository:releases/app:pull,push").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "step `exchange the review job's token`: {body}"
    );
    assert_eq!(body["scope"], "repository:releases/app:pull", "{body}");
    let review_token = body["token"].as_str().unwrap().to_owned();
    skopeo
        .pull(&app, Creds::RegistryToken(&review_token))
        .await
        .unwrap_or_else(|e| panic!("step `the review token pulls`: {e:#}"));
    let pushed = skopeo
        .push(
            &image.reference,
            &format!("docker://{}/releases/app:review", registry.addr),
            Creds::RegistryToken(&review_token),
        )
        .await;
    assert!(pushed.is_err(), "a pull-only exchanged token pushed");

    // A token of another audience is refused without saying why.
    let (status, body) = exchange(
        json!({"sub": "x", "aud": "elsewhere", "project_path": "group/app"}),
        "repository:releases/app:pull",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");

    // One log line per exchange with the rule, the CI identity, the bot and the grant;
    // never the ID token.
    let log = read_log(&work.path().join("portcullis.log"));
    let line = log
        .lines()
        .find(|l| l.contains("token exchanged") && l.contains("rule=release"))
        .unwrap_or_else(|| panic!("no exchange log line in:\n{log}"));
    for part in [
        "project_path:group/app:ref_type:branch:ref:main",
        "bot=ci-bot",
        "repository:releases/app:pull,push",
        "group/app",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    assert!(log.contains("rule=review"), "{log}");
    assert!(log.contains("token exchange refused"), "{log}");
    assert!(!log.contains(&token[..40]), "no registry token in the log");
}
