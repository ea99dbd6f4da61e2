//! `portcullis_service::oidc` against a real OpenID Provider
//! (`portcullis_testkit::oidc`): the code flow driven like a browser (the sign-in form
//! posted, redirects not followed), each ID token check shown to refuse, key rotation
//! with the rate-limited JWKS refetch, outages told apart from refusals, and ID token
//! verification for RFC 8693 token exchange.

#![allow(clippy::unwrap_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_domain::time::Clock;
use portcullis_service::clock::SystemClock;
use portcullis_service::oidc::{
    JWKS_MAX_AGE_SECS, JWKS_REFETCH_INTERVAL_SECS, OidcClient, OidcError, OidcVerifier,
    PendingLogin,
};
use portcullis_testkit::oidc::{OidcProvider, ProviderOptions, Sabotage, TestOidcUser};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use std::collections::HashMap;

const CLIENT_ID: &str = "portcullis";
const CLIENT_SECRET: &str = "client-secret";
const REDIRECT_URI: &str = "https://portcullis.example/oidc/callback";
const ALICE_PASSWORD: &str = "alice-password";
/// The audience CI jobs ask their tokens for.
const EXCHANGE_AUDIENCE: &str = "https://portcullis.example";

struct Fixture {
    op: OidcProvider,
    client: OidcClient,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Real time, as the provider issues its tokens in it.
fn now() -> i64 {
    SystemClock.now().0 / 1000
}

async fn provider() -> OidcProvider {
    let op = OidcProvider::start(ProviderOptions {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![REDIRECT_URI.into()],
    })
    .await
    .unwrap();
    op.add_user(TestOidcUser {
        subject: "248289761001".into(),
        username: "alice".into(),
        password: ALICE_PASSWORD.into(),
        email: "alice@example.org".into(),
        email_verified: true,
        name: "Alice Example".into(),
    });
    op
}

async fn fixture() -> Fixture {
    let op = provider().await;
    let client = OidcClient::discover(http(), op.issuer(), CLIENT_ID, Some(CLIENT_SECRET.into()))
        .await
        .unwrap();
    Fixture { op, client }
}

/// What a browser does between `begin` and the callback: opens the authorization URL,
/// fills in the form, posts it, and lands on the redirect URI. Returns the query of the
/// redirect.
async fn sign_in_at(
    op: &OidcProvider,
    authorization_url: &str,
    username: &str,
    password: &str,
) -> HashMap<String, String> {
    let location = op
        .sign_in_like_a_browser(authorization_url, username, password)
        .await
        .unwrap();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// `begin`, then the browser part: the pending login and the callback's code and state.
async fn sign_in(fx: &Fixture, seed: u64) -> (PendingLogin, String, String) {
    let (url, pending) = fx
        .client
        .begin(REDIRECT_URI, &mut StdRng::seed_from_u64(seed));
    let query = sign_in_at(&fx.op, &url, "alice", ALICE_PASSWORD).await;
    let code = query["code"].clone();
    let state = query["state"].clone();
    (pending, code, state)
}

#[track_caller]
fn assert_invalid(result: Result<impl std::fmt::Debug, OidcError>, mentions: &str) {
    match result {
        Err(OidcError::Invalid(message)) => {
            assert!(
                message.contains(mentions),
                "{message:?} should mention {mentions:?}"
            )
        }
        other => panic!("expected Invalid mentioning {mentions:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_provider(result: Result<impl std::fmt::Debug, OidcError>, code: &str) {
    match result {
        Err(OidcError::Provider(c)) => assert_eq!(c, code),
        other => panic!("expected Provider({code:?}), got {other:?}"),
    }
}

#[track_caller]
fn assert_unreachable(result: Result<impl std::fmt::Debug, OidcError>) {
    assert!(
        matches!(result, Err(OidcError::Unreachable(_))),
        "expected Unreachable, got {result:?}"
    );
}

#[tokio::test]
async fn the_code_flow_signs_alice_in() {
    let fx = fixture().await;
    let (url, pending) = fx.client.begin(REDIRECT_URI, &mut StdRng::seed_from_u64(1));
    let params: HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(
        url.starts_with(&format!("{}/authorize?", fx.op.issuer())),
        "{url}"
    );
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], REDIRECT_URI);
    assert_eq!(params["scope"], "openid email profile");
    assert_eq!(params["state"], pending.state);
    assert_eq!(params["nonce"], pending.nonce);
    assert_eq!(params["code_challenge_method"], "S256");
    let challenge = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(
        pending.code_verifier.as_bytes(),
    ));
    assert_eq!(params["code_challenge"], challenge);
    assert_eq!(pending.code_verifier.len(), 43);
    assert_ne!(pending.state, pending.nonce);
    // The randomness is the caller's: the same seed, the same values.
    let (_, again) = fx.client.begin(REDIRECT_URI, &mut StdRng::seed_from_u64(1));
    assert_eq!(again, pending);

    // The pending login survives a round trip through the caller's storage.
    let stored = serde_json::to_string(&pending).unwrap();
    let pending: PendingLogin = serde_json::from_str(&stored).unwrap();
    let query = sign_in_at(&fx.op, &url, "alice", ALICE_PASSWORD).await;
    let identity = fx
        .client
        .finish(&pending, &query["state"], &query["code"], now())
        .await
        .unwrap();
    assert_eq!(identity.issuer, fx.op.issuer());
    assert_eq!(identity.subject, "248289761001");
    assert_eq!(identity.email.as_deref(), Some("alice@example.org"));
    assert!(identity.email_verified);
    assert_eq!(identity.preferred_username.as_deref(), Some("alice"));
    assert_eq!(identity.name.as_deref(), Some("Alice Example"));
    assert_eq!(identity.claims["nonce"], pending.nonce.as_str());
    assert_eq!(identity.claims["aud"], CLIENT_ID);
    assert!(
        !format!("{pending:?}").contains(&pending.code_verifier),
        "Debug hides the verifier"
    );
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_alone() {
    let op = provider().await;
    op.add_client(ProviderOptions {
        client_id: "cli".into(),
        client_secret: String::new(),
        redirect_uris: vec![REDIRECT_URI.into()],
    });
    let client = OidcClient::discover(http(), op.issuer(), "cli", None)
        .await
        .unwrap();
    let fx = Fixture { op, client };
    let (pending, code, state) = sign_in(&fx, 2).await;
    let identity = fx
        .client
        .finish(&pending, &state, &code, now())
        .await
        .unwrap();
    assert_eq!(identity.claims["aud"], "cli");
}

#[tokio::test]
async fn a_wrong_state_is_refused_before_the_code_is_redeemed() {
    let fx = fixture().await;
    let (pending, code, state) = sign_in(&fx, 3).await;
    for wrong in ["", "x", &state[..state.len() - 1], &format!("{state}x")] {
        assert_invalid(
            fx.client.finish(&pending, wrong, &code, now()).await,
            "state",
        );
    }
    assert!(
        !fx.op.requests().iter().any(|r| r == "POST /token"),
        "{:?}",
        fx.op.requests()
    );
    // The code is still good for the right state.
    fx.client
        .finish(&pending, &state, &code, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_code_is_redeemed_once() {
    let fx = fixture().await;
    let (pending, code, state) = sign_in(&fx, 4).await;
    fx.client
        .finish(&pending, &state, &code, now())
        .await
        .unwrap();
    assert_provider(
        fx.client.finish(&pending, &state, &code, now()).await,
        "invalid_grant",
    );
}

#[tokio::test]
async fn the_code_needs_the_pkce_verifier_of_its_challenge() {
    let fx = fixture().await;
    let (pending, code, state) = sign_in(&fx, 5).await;
    // Someone holding the code but not the verifier (the pending login is the
    // caller's secret) cannot redeem it.
    let (_, other) = fx
        .client
        .begin(REDIRECT_URI, &mut StdRng::seed_from_u64(55));
    let tampered = PendingLogin {
        code_verifier: other.code_verifier,
        ..pending.clone()
    };
    assert_provider(
        fx.client.finish(&tampered, &state, &code, now()).await,
        "invalid_grant",
    );
}

#[tokio::test]
async fn each_id_token_check_refuses() {
    let fx = fixture().await;
    let cases = [
        (Sabotage::WrongNonce, "nonce"),
        (Sabotage::WrongAudience, "aud"),
        (Sabotage::Expired, "exp"),
        (Sabotage::WrongIssuer, "iss"),
        (Sabotage::ForeignSignature, "signature"),
    ];
    for (seed, (sabotage, mentions)) in (10..).zip(cases) {
        let (pending, code, state) = sign_in(&fx, seed).await;
        fx.op.sabotage_next_token(sabotage);
        let result = fx.client.finish(&pending, &state, &code, now()).await;
        assert_invalid(result, mentions);
    }
    // The knob was for one response only: the next sign-in goes through.
    let (pending, code, state) = sign_in(&fx, 20).await;
    fx.client
        .finish(&pending, &state, &code, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_client_clock_decides_expiry() {
    let fx = fixture().await;
    let (pending, code, state) = sign_in(&fx, 21).await;
    // The provider's tokens live five minutes; an hour later they are expired.
    assert_invalid(
        fx.client
            .finish(&pending, &state, &code, now() + 3600)
            .await,
        "exp",
    );
    let (pending, code, state) = sign_in(&fx, 22).await;
    assert_invalid(
        fx.client
            .finish(&pending, &state, &code, now() - 3600)
            .await,
        "iat",
    );
}

#[tokio::test]
async fn the_discovery_document_must_name_the_configured_issuer() {
    let op = provider().await;
    op.set_discovery_issuer(Some("https://accounts.example"));
    assert_invalid(
        OidcClient::discover(http(), op.issuer(), CLIENT_ID, None).await,
        "issuer",
    );
    assert_invalid(OidcVerifier::discover(http(), op.issuer()).await, "issuer");
    op.set_discovery_issuer(None);
    // Exact comparison: a trailing slash is another issuer (the document is found,
    // Discovery §4.1, but names the issuer without it).
    let with_slash = format!("{}/", op.issuer());
    assert_invalid(
        OidcClient::discover(http(), &with_slash, CLIENT_ID, None).await,
        "issuer",
    );
    // An http issuer is refused unless it is on a loopback host.
    assert_invalid(
        OidcClient::discover(http(), "http://op.example", CLIENT_ID, None).await,
        "https",
    );
    OidcClient::discover(http(), op.issuer(), CLIENT_ID, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn after_a_key_rotation_the_jwks_is_fetched_again_but_not_for_every_token() {
    let fx = fixture().await;
    let t0 = now();
    let (pending, code, state) = sign_in(&fx, 30).await;
    fx.client.finish(&pending, &state, &code, t0).await.unwrap();
    assert_eq!(fx.op.jwks_fetches(), 1);
    // Cached: another sign-in does not fetch.
    let (pending, code, state) = sign_in(&fx, 31).await;
    fx.client
        .finish(&pending, &state, &code, t0 + 1)
        .await
        .unwrap();
    assert_eq!(fx.op.jwks_fetches(), 1);

    // A rotation: the unknown kid makes one refetch, and the new key verifies.
    fx.op.rotate_key();
    let t1 = t0 + JWKS_REFETCH_INTERVAL_SECS;
    let (pending, code, state) = sign_in(&fx, 32).await;
    fx.client.finish(&pending, &state, &code, t1).await.unwrap();
    assert_eq!(fx.op.jwks_fetches(), 2);

    // Another rotation within the interval: no refetch yet, so the token is refused.
    fx.op.rotate_key();
    let (pending, code, state) = sign_in(&fx, 33).await;
    assert_invalid(
        fx.client.finish(&pending, &state, &code, t1 + 10).await,
        "does not publish",
    );
    assert_eq!(fx.op.jwks_fetches(), 2);
    // Tokens with made-up kids do not make it fetch either.
    for n in 0..5 {
        let forged = fx.op.mint_id_token_with_kid(
            &format!("made-up-{n}"),
            json!({"sub": "x", "aud": CLIENT_ID}),
        );
        assert_invalid(
            fx.client.verify_id_token(&forged, CLIENT_ID, t1 + 11).await,
            "does not publish",
        );
    }
    assert_eq!(fx.op.jwks_fetches(), 2);
    // Once the interval has passed, it refetches.
    let (pending, code, state) = sign_in(&fx, 34).await;
    fx.client
        .finish(&pending, &state, &code, t1 + JWKS_REFETCH_INTERVAL_SECS)
        .await
        .unwrap();
    assert_eq!(fx.op.jwks_fetches(), 3);
}

#[tokio::test]
async fn an_unreachable_provider_is_an_outage_not_a_refusal() {
    // A port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let issuer = format!("http://{closed}");
    assert_unreachable(OidcClient::discover(http(), &issuer, CLIENT_ID, None).await);
    assert_unreachable(OidcVerifier::discover(http(), &issuer).await);

    let fx = fixture().await;
    fx.op.set_outage(Some(503));
    assert_unreachable(OidcClient::discover(http(), fx.op.issuer(), CLIENT_ID, None).await);
    // Down between the redirect and the token request.
    fx.op.set_outage(None);
    let (pending, code, state) = sign_in(&fx, 40).await;
    fx.op.set_outage(Some(502));
    assert_unreachable(fx.client.finish(&pending, &state, &code, now()).await);
    // The JWKS unreachable on first use.
    fx.op.set_outage(None);
    let (pending, code, state) = sign_in(&fx, 41).await;
    let token = fx.op.mint_id_token(json!({"sub": "x", "aud": CLIENT_ID}));
    fx.op.set_outage(Some(500));
    assert_unreachable(fx.client.verify_id_token(&token, CLIENT_ID, now()).await);
    // Back up: the same sign-in completes (the code was never redeemed).
    fx.op.set_outage(None);
    fx.client
        .finish(&pending, &state, &code, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_declined_sign_in_is_the_providers_answer() {
    let fx = fixture().await;
    fx.op.deny_consent("alice");
    let (url, pending) = fx
        .client
        .begin(REDIRECT_URI, &mut StdRng::seed_from_u64(50));
    let query = sign_in_at(&fx.op, &url, "alice", ALICE_PASSWORD).await;
    assert_eq!(query["error"], "access_denied");
    assert!(!query.contains_key("code"));
    let error = fx
        .client
        .callback_error(&pending, &query["state"], &query["error"]);
    assert!(
        matches!(&error, OidcError::Provider(code) if code == "access_denied"),
        "{error:?}"
    );
    // A forged error redirect (someone else's state) is refused, not believed.
    let forged = fx
        .client
        .callback_error(&pending, "forged", "access_denied");
    assert!(
        matches!(&forged, OidcError::Invalid(m) if m.contains("state")),
        "{forged:?}"
    );
}

/// A CI job's ID token, as GitHub Actions or GitLab issue them.
fn ci_claims() -> Value {
    json!({
        "sub": "repo:acme/app:ref:refs/heads/main",
        "aud": EXCHANGE_AUDIENCE,
        "repository": "acme/app",
        "ref": "refs/heads/main",
        "job_workflow_ref": "acme/app/.github/workflows/push.yml@refs/heads/main",
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

#[tokio::test]
async fn token_exchange_verifies_a_ci_token_without_a_client() {
    let op = provider().await;
    let verifier = OidcVerifier::discover(http(), op.issuer()).await.unwrap();
    assert_eq!(verifier.issuer(), op.issuer());
    let token = op.mint_id_token(ci_claims());
    let claims = verifier
        .verify_id_token(&token, EXCHANGE_AUDIENCE, now())
        .await
        .unwrap();
    assert_eq!(claims["repository"], "acme/app");
    assert_eq!(claims["ref"], "refs/heads/main");
    assert_eq!(claims["iss"], op.issuer());
    // One of several audiences is enough (no azp check without a client).
    let several = op.mint_id_token(with(
        ci_claims(),
        "aud",
        json!(["sigstore", EXCHANGE_AUDIENCE]),
    ));
    verifier
        .verify_id_token(&several, EXCHANGE_AUDIENCE, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn token_exchange_refuses_each_bad_token() {
    let op = provider().await;
    let verifier = OidcVerifier::discover(http(), op.issuer()).await.unwrap();
    let t = now();
    let good = op.mint_id_token(ci_claims());
    let (head, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());

    // An unsigned token ("alg": "none").
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&ci_claims())
    );
    // HS256 with the provider's public key as the secret (algorithm confusion).
    let jwks: Value = http()
        .get(format!("{}/jwks", op.issuer()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().unwrap())
        .unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(op.current_kid());
    let now_claims = with(with(ci_claims(), "iat", json!(t)), "exp", json!(t + 300));
    let now_claims = with(now_claims, "iss", json!(op.issuer()));
    let confused = jsonwebtoken::encode(
        &hs_header,
        &now_claims,
        &jsonwebtoken::EncodingKey::from_secret(&n),
    )
    .unwrap();
    // A good signature over other claims.
    let altered = format!(
        "{head}.{}.{signature}",
        b64(&with(now_claims.clone(), "repository", json!("evil/app")))
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "another audience",
            op.mint_id_token(with(ci_claims(), "aud", json!("https://other.example"))),
            "aud",
        ),
        (
            "no audience",
            op.mint_id_token(without(ci_claims(), "aud")),
            "aud",
        ),
        (
            "another issuer",
            op.mint_id_token(with(
                ci_claims(),
                "iss",
                json!("https://token.actions.example"),
            )),
            "iss",
        ),
        (
            "expired",
            op.mint_id_token(with(
                with(ci_claims(), "iat", json!(t - 600)),
                "exp",
                json!(t - 300),
            )),
            "exp",
        ),
        (
            "no expiry",
            op.mint_id_token(with(ci_claims(), "exp", Value::Null)),
            "exp",
        ),
        (
            "issued in the future",
            op.mint_id_token(with(ci_claims(), "iat", json!(t + 600))),
            "iat",
        ),
        (
            "not valid yet",
            op.mint_id_token(with(ci_claims(), "nbf", json!(t + 600))),
            "nbf",
        ),
        (
            "no subject",
            op.mint_id_token(without(ci_claims(), "sub")),
            "sub",
        ),
        ("alg none", unsigned, "algorithm"),
        ("HS256 with the public key", confused, "HS256"),
        ("altered claims", altered, "signature"),
        (
            "unknown kid",
            op.mint_id_token_with_kid("not-published", ci_claims()),
            "does not publish",
        ),
        ("not a JWT", "not.a.jwt".to_owned(), "JWS"),
    ];
    for (what, token, mentions) in cases {
        match verifier.verify_id_token(&token, EXCHANGE_AUDIENCE, t).await {
            Err(OidcError::Invalid(message)) => {
                assert!(
                    message.contains(mentions),
                    "{what}: {message:?} should mention {mentions:?}"
                )
            }
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    // The good token still verifies: nothing above poisoned the cache.
    verifier
        .verify_id_token(&good, EXCHANGE_AUDIENCE, t)
        .await
        .unwrap();
    // After a rotation, cached keys are trusted until the cache is refreshed, which a
    // token of the new key causes (once the refetch interval has passed); from then on
    // tokens signed by the old key no longer verify.
    op.rotate_key();
    verifier
        .verify_id_token(&good, EXCHANGE_AUDIENCE, t + 1)
        .await
        .unwrap();
    let later = t + JWKS_REFETCH_INTERVAL_SECS;
    let fresh = op.mint_id_token(ci_claims());
    verifier
        .verify_id_token(&fresh, EXCHANGE_AUDIENCE, later)
        .await
        .unwrap();
    assert_invalid(
        verifier
            .verify_id_token(&good, EXCHANGE_AUDIENCE, later)
            .await,
        "does not publish",
    );
}

#[tokio::test]
async fn the_key_cache_is_refreshed_when_old_and_kept_through_an_outage() {
    let op = provider().await;
    let verifier = OidcVerifier::discover(http(), op.issuer()).await.unwrap();
    let t = now();
    let token = op.mint_id_token(ci_claims());
    verifier
        .verify_id_token(&token, EXCHANGE_AUDIENCE, t)
        .await
        .unwrap();
    assert_eq!(op.jwks_fetches(), 1);
    // Old: refreshed though the kid is known.
    let old = t + JWKS_MAX_AGE_SECS;
    // (The token's own exp is real time; the checks run at `old` with fresh tokens.)
    let token = op.mint_id_token(with(
        with(ci_claims(), "iat", json!(old)),
        "exp",
        json!(old + 300),
    ));
    verifier
        .verify_id_token(&token, EXCHANGE_AUDIENCE, old)
        .await
        .unwrap();
    assert_eq!(op.jwks_fetches(), 2);
    // Old again and the provider down: the cached key still verifies.
    op.set_outage(Some(503));
    let older = old + JWKS_MAX_AGE_SECS;
    let token = op.mint_id_token(with(
        with(ci_claims(), "iat", json!(older)),
        "exp",
        json!(older + 300),
    ));
    verifier
        .verify_id_token(&token, EXCHANGE_AUDIENCE, older)
        .await
        .unwrap();
    assert_eq!(op.jwks_fetches(), 3, "the refresh was tried");
    // A withdrawn key: after the refresh, the old key's tokens are refused.
    op.set_outage(None);
    op.rotate_key();
    let oldest = older + JWKS_MAX_AGE_SECS;
    assert_invalid(
        verifier
            .verify_id_token(&token, EXCHANGE_AUDIENCE, oldest)
            .await,
        "does not publish",
    );
}
