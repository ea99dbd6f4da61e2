//! End to end: the `portcullis` binary beside a real CNCF registry (Debian's
//! `docker-registry` 2.8), driven by a real OCI client (`skopeo`) with images built by
//! `umoci`. One scenario — users, a team, namespaces of every visibility, pushes, pulls,
//! deletes, application tokens, an OAuth2 refresh token and the catalog — runs for
//! each signing algorithm (ES256, RS256) and database (SQLite, PostgreSQL).
//!
//! Missing tools fail the tests (run `scripts/test.sh`, which installs them); so does a
//! missing PostgreSQL.

use portcullis_testkit::images::build_image;
use portcullis_testkit::registry::{Registry, form_encode, jwt_claims, jwt_header};
use portcullis_testkit::skopeo::{Creds, Skopeo};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Debug;

mod common;
use common::{Auth, Http, id_of, serve, str_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Database {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy)]
struct Combo {
    algorithm: &'static str,
    database: Database,
    /// `delete.contributors`: whether bob (a contributor) may delete.
    delete_contributors: bool,
}

#[tokio::test]
async fn es256_sqlite() {
    scenario(Combo {
        algorithm: "ES256",
        database: Database::Sqlite,
        delete_contributors: false,
    })
    .await;
}

#[tokio::test]
async fn rs256_sqlite() {
    scenario(Combo {
        algorithm: "RS256",
        database: Database::Sqlite,
        delete_contributors: true,
    })
    .await;
}

#[tokio::test]
async fn es256_postgres() {
    scenario(Combo {
        algorithm: "ES256",
        database: Database::Postgres,
        delete_contributors: false,
    })
    .await;
}

#[tokio::test]
async fn rs256_postgres() {
    scenario(Combo {
        algorithm: "RS256",
        database: Database::Postgres,
        delete_contributors: true,
    })
    .await;
}

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const ALICE: (&str, &str) = ("alice", "alice-password-1");
const BOB: (&str, &str) = ("bob", "bob-password-1");
const CAROL: (&str, &str) = ("carol", "carol-password-1");
const DAVE: (&str, &str) = ("dave", "dave-password-1");
const TEAM: &str = "acme";
const NOTIFY_SECRET: &str = "e2e-notification-secret";

fn creds((user, password): (&'static str, &'static str)) -> Creds<'static> {
    Creds::User(user, password)
}

/// Unwraps an operation that must succeed, naming the step.
#[track_caller]
fn allowed<T>(step: &str, result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("step `{step}`: expected success, got: {e:#}"))
}

/// Asserts an operation was refused for lack of authorization (not for another
/// reason such as an unreachable registry), naming the step.
#[track_caller]
fn refused<T: Debug>(step: &str, result: anyhow::Result<T>) {
    match result {
        Ok(v) => panic!("step `{step}`: expected a refusal, but it succeeded: {v:?}"),
        Err(e) => {
            let text = format!("{e:#}").to_lowercase();
            let auth_words = [
                "unauthorized",
                "denied",
                "authentication required",
                "insufficient_scope",
                "401",
                "403",
            ];
            assert!(
                auth_words.iter().any(|w| text.contains(w)),
                "step `{step}`: refused, but not for an authorization reason: {e:#}"
            );
        }
    }
}

async fn scenario(combo: Combo) {
    // Declared first, dropped last: the database outlives the processes using it.
    let pg = match combo.database {
        Database::Sqlite => None,
        Database::Postgres => Some(
            portcullis_testkit::postgres::test_database()
                .await
                .unwrap_or_else(|e| {
                    panic!("step `PostgreSQL test database`: {e:#} (see scripts/test.sh)")
                }),
        ),
    };
    let work = tempfile::Builder::new()
        .prefix("portcullis-e2e-")
        .tempdir()
        .expect("creating the work folder");
    let database_url = match &pg {
        Some(db) => db.url.clone(),
        None => format!("sqlite:{}", work.path().join("p.db").display()),
    };
    let env: BTreeMap<String, String> = [
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "PORTCULLIS_DATA_DIR",
            work.path().join("data").display().to_string(),
        ),
        ("PORTCULLIS_DATABASE_URL", database_url),
        (
            "PORTCULLIS_MACHINE_FQDN_VALUE",
            "portcullis.test".to_owned(),
        ),
        ("PORTCULLIS_NOTIFICATIONS_SECRET", NOTIFY_SECRET.to_owned()),
        ("PORTCULLIS_TOKEN_ALGORITHM", combo.algorithm.to_owned()),
        ("PORTCULLIS_DELETE_ENABLED", "true".to_owned()),
        (
            "PORTCULLIS_DELETE_CONTRIBUTORS",
            combo.delete_contributors.to_string(),
        ),
        // Dozens of password checks from 127.0.0.1 in a few seconds: no per-IP limit.
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
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("step `skopeo`: {e:#}"));
    let http = Http::new();
    let api = |path: &str| format!("{}/api/v1{path}", server.url);
    let reg = registry.addr.clone();
    let image_ref = |repo: &str| format!("docker://{reg}/{repo}:v1");

    // --- Setup through the API -----------------------------------------------------
    let admin_token = http.bootstrap(&server.url, ADMIN).await;

    let step = "create the registry via the API (Bearer app token)";
    http.post_json(
        step,
        &api("/registries"),
        Auth::Bearer(&admin_token),
        json!({"registry": {"name": "e2e", "hostname": reg, "use_ssl": false}}),
        StatusCode::CREATED,
    )
    .await;

    let mut user_ids = BTreeMap::new();
    for (user, password) in [ALICE, BOB, CAROL, DAVE] {
        let step = format!("create user {user} (Portus-Auth)");
        let v = http
            .post_json(
                &step,
                &api("/users"),
                Auth::Portus(ADMIN.0, &admin_token),
                json!({"user": {"username": user, "email": format!("{user}@example.test"), "password": password}}),
                StatusCode::CREATED,
            )
            .await;
        assert_eq!(v["username"], user, "step `{step}`: {v}");
        user_ids.insert(user, id_of(&step, &v));
    }

    let step = "alice creates the team";
    let team = http
        .post_json(
            step,
            &api("/teams"),
            Auth::Basic(ALICE.0, ALICE.1),
            json!({"name": TEAM, "description": "end-to-end team"}),
            StatusCode::CREATED,
        )
        .await;
    let team_id = id_of(step, &team);
    for (user, role) in [(BOB.0, "contributor"), (CAROL.0, "viewer")] {
        let step = format!("alice adds {user} as {role}");
        http.post_json(
            &step,
            &api(&format!("/teams/{team_id}/members")),
            Auth::Basic(ALICE.0, ALICE.1),
            json!({"user": user, "role": role}),
            StatusCode::CREATED,
        )
        .await;
    }

    for visibility in ["private", "protected", "public"] {
        let name = format!("{TEAM}-{visibility}");
        let step = format!("alice creates namespace {name}");
        let ns = http
            .post_json(
                &step,
                &api("/namespaces"),
                Auth::Basic(ALICE.0, ALICE.1),
                json!({"name": name, "team": TEAM}),
                StatusCode::CREATED,
            )
            .await;
        assert_eq!(
            ns["visibility"], "private",
            "step `{step}`: new namespaces are private: {ns}"
        );
        if visibility != "private" {
            let step = format!("alice makes {name} {visibility}");
            let id = id_of(&step, &ns);
            let ns = http
                .put_json(
                    &step,
                    &api(&format!("/namespaces/{id}")),
                    Auth::Basic(ALICE.0, ALICE.1),
                    json!({"namespace": {"visibility": visibility}}),
                    StatusCode::OK,
                )
                .await;
            assert_eq!(ns["visibility"], visibility, "step `{step}`: {ns}");
        }
    }

    let image = build_image(&format!("{combo:?}"), "v1")
        .await
        .unwrap_or_else(|e| panic!("step `build image with umoci`: {e:#}"));
    let local = image.reference.as_str();
    let private = |repo: &str| image_ref(&format!("{TEAM}-private/{repo}"));

    // --- Private namespace: team roles ----------------------------------------------
    allowed(
        "alice (owner) pushes to the private namespace",
        skopeo.push(local, &private("app"), creds(ALICE)).await,
    );
    allowed(
        "bob (contributor) pushes to the private namespace",
        skopeo.push(local, &private("bob"), creds(BOB)).await,
    );
    let pulled = allowed(
        "carol (viewer) pulls from the private namespace",
        skopeo.pull(&private("app"), creds(CAROL)).await,
    );
    assert!(pulled.starts_with("oci:"), "{pulled}");
    refused(
        "carol (viewer) pushes to the private namespace",
        skopeo.push(local, &private("carol"), creds(CAROL)).await,
    );
    refused(
        "dave (outsider) pulls from the private namespace",
        skopeo.pull(&private("app"), creds(DAVE)).await,
    );
    refused(
        "anonymous pulls from the private namespace",
        skopeo.pull(&private("app"), Creds::Anonymous).await,
    );

    // --- Protected and public namespaces --------------------------------------------
    let protected = image_ref(&format!("{TEAM}-protected/app"));
    let public = image_ref(&format!("{TEAM}-public/app"));
    allowed(
        "alice pushes to the protected namespace",
        skopeo.push(local, &protected, creds(ALICE)).await,
    );
    allowed(
        "alice pushes to the public namespace",
        skopeo.push(local, &public, creds(ALICE)).await,
    );
    allowed(
        "dave (logged in) pulls from the protected namespace",
        skopeo.pull(&protected, creds(DAVE)).await,
    );
    refused(
        "anonymous pulls from the protected namespace",
        skopeo.pull(&protected, Creds::Anonymous).await,
    );
    allowed(
        "anonymous pulls from the public namespace",
        skopeo.pull(&public, Creds::Anonymous).await,
    );
    refused(
        "dave (outsider) pushes to the public namespace",
        skopeo
            .push(
                local,
                &image_ref(&format!("{TEAM}-public/dave")),
                creds(DAVE),
            )
            .await,
    );

    // --- Personal namespace ---------------------------------------------------------
    allowed(
        "alice pushes to her personal namespace",
        skopeo
            .push(local, &image_ref("alice/app"), creds(ALICE))
            .await,
    );
    refused(
        "bob pushes to alice's personal namespace",
        skopeo
            .push(local, &image_ref("alice/bob"), creds(BOB))
            .await,
    );

    // --- Delete (skopeo asks for scope `repository:NAME:*`) ---------------------------
    allowed(
        "alice pushes the image the owner deletes",
        skopeo
            .push(local, &private("del-owner"), creds(ALICE))
            .await,
    );
    allowed(
        "bob pushes the image the contributor deletes",
        skopeo
            .push(local, &private("del-contrib"), creds(BOB))
            .await,
    );
    refused(
        "carol (viewer) deletes",
        skopeo.delete(&private("del-contrib"), creds(CAROL)).await,
    );
    if combo.delete_contributors {
        allowed(
            "bob (contributor) deletes with delete.contributors=true",
            skopeo.delete(&private("del-contrib"), creds(BOB)).await,
        );
        let gone = skopeo.inspect(&private("del-contrib"), creds(ALICE)).await;
        assert!(
            gone.is_err(),
            "step `contributor's delete took effect`: the image is still there: {gone:?}"
        );
    } else {
        refused(
            "bob (contributor) deletes with delete.contributors=false",
            skopeo.delete(&private("del-contrib"), creds(BOB)).await,
        );
        allowed(
            "the image bob could not delete is still there",
            skopeo.inspect(&private("del-contrib"), creds(ALICE)).await,
        );
    }
    allowed(
        "alice (owner) deletes",
        skopeo.delete(&private("del-owner"), creds(ALICE)).await,
    );
    let gone = skopeo.inspect(&private("del-owner"), creds(ALICE)).await;
    assert!(
        gone.is_err(),
        "step `owner's delete took effect`: the image is still there: {gone:?}"
    );

    // --- Application tokens as skopeo passwords -------------------------------------
    let alice_id = user_ids[ALICE.0];
    let step = "alice creates an application token";
    let t = http
        .post_json(
            step,
            &api(&format!("/users/{alice_id}/application_tokens")),
            Auth::Basic(ALICE.0, ALICE.1),
            json!({"application": "ci", "pull_only": false}),
            StatusCode::CREATED,
        )
        .await;
    let app_token = str_of(step, &t, "plain_token").to_owned();
    assert!(
        app_token.starts_with("pcat_"),
        "step `{step}`: token format: {app_token}"
    );
    allowed(
        "push with alice's application token",
        skopeo
            .push(local, &private("ci"), Creds::User(ALICE.0, &app_token))
            .await,
    );
    allowed(
        "pull with alice's application token",
        skopeo
            .pull(&private("ci"), Creds::User(ALICE.0, &app_token))
            .await,
    );

    let step = "alice creates a pull-only application token";
    let t = http
        .post_json(
            step,
            &api(&format!("/users/{alice_id}/application_tokens")),
            Auth::Basic(ALICE.0, ALICE.1),
            json!({"application": "ci-readonly", "pull_only": true}),
            StatusCode::CREATED,
        )
        .await;
    let ro_token = str_of(step, &t, "plain_token").to_owned();
    allowed(
        "pull with a pull-only token",
        skopeo
            .pull(&private("app"), Creds::User(ALICE.0, &ro_token))
            .await,
    );
    refused(
        "push with a pull-only token",
        skopeo
            .push(local, &private("readonly"), Creds::User(ALICE.0, &ro_token))
            .await,
    );

    // --- OAuth2 refresh token: password grant, then skopeo's refresh grant -----------
    let step = "POST /v2/token grant_type=password access_type=offline";
    let form = form_encode(&[
        ("grant_type", "password"),
        ("username", ALICE.0),
        ("password", ALICE.1),
        ("access_type", "offline"),
        ("service", &reg),
        ("client_id", "e2e"),
        ("scope", &format!("repository:{TEAM}-private/app:pull")),
    ]);
    let rb = http
        .client
        .post(format!("{}/v2/token", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form);
    let grant = http.call(step, rb, Auth::None, StatusCode::OK).await;
    let refresh_token = str_of(step, &grant, "refresh_token").to_owned();
    str_of(step, &grant, "access_token");
    let authfile = skopeo
        .write_identity_token_authfile(&reg, ALICE.0, &refresh_token)
        .unwrap_or_else(|e| panic!("step `write the auth file`: {e:#}"));
    allowed(
        "skopeo inspect --authfile with the refresh token (POST grant_type=refresh_token, chunked)",
        skopeo
            .inspect_with_authfile(&private("app"), &authfile)
            .await,
    );

    // --- Catalog: admins only -------------------------------------------------------
    let token_url = |scope: &str| {
        format!(
            "{}/v2/token?{}",
            server.url,
            form_encode(&[("service", &reg), ("scope", scope)])
        )
    };
    let step = "admin gets a registry:catalog:* token";
    let t = http
        .get(
            step,
            &token_url("registry:catalog:*"),
            Auth::Basic(ADMIN.0, ADMIN.1),
            StatusCode::OK,
        )
        .await;
    let catalog_token = str_of(step, &t, "token").to_owned();
    let step = "GET /v2/_catalog on the registry with the admin's token";
    let catalog = http
        .get(
            step,
            &format!("{}/v2/_catalog", registry.url),
            Auth::Bearer(&catalog_token),
            StatusCode::OK,
        )
        .await;
    let repos: Vec<&str> = catalog["repositories"]
        .as_array()
        .unwrap_or_else(|| panic!("step `{step}`: {catalog}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        format!("{TEAM}-private/app"),
        format!("{TEAM}-private/bob"),
        format!("{TEAM}-private/ci"),
        format!("{TEAM}-protected/app"),
        format!("{TEAM}-public/app"),
        "alice/app".to_owned(),
    ] {
        assert!(
            repos.contains(&expected.as_str()),
            "step `{step}`: {expected} missing from {repos:?}"
        );
    }
    for never in [
        format!("{TEAM}-private/carol"),
        format!("{TEAM}-public/dave"),
        "alice/bob".to_owned(),
        format!("{TEAM}-private/readonly"),
    ] {
        assert!(
            !repos.contains(&never.as_str()),
            "step `{step}`: a refused push created {never}: {repos:?}"
        );
    }

    let step = "alice (not an admin) asks for registry:catalog:*";
    let t = http
        .get(
            step,
            &token_url("registry:catalog:*"),
            Auth::Basic(ALICE.0, ALICE.1),
            StatusCode::OK,
        )
        .await;
    let alice_catalog_token = str_of(step, &t, "token").to_owned();
    let claims =
        jwt_claims(&alice_catalog_token).unwrap_or_else(|e| panic!("step `{step}`: {e:#}"));
    let granted: Vec<&Value> = claims["access"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    assert!(
        granted
            .iter()
            .all(|a| a["actions"].as_array().is_none_or(Vec::is_empty)),
        "step `{step}`: the token grants something: {claims}"
    );
    let step = "GET /v2/_catalog with alice's token";
    let resp = http
        .client
        .get(format!("{}/v2/_catalog", registry.url))
        .bearer_auth(&alice_catalog_token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("step `{step}`: {e}"));
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "step `{step}`: the registry must refuse"
    );

    // --- The JOSE header the registry relies on -------------------------------------
    let step = "JWT header";
    let header = jwt_header(&catalog_token).unwrap_or_else(|e| panic!("step `{step}`: {e:#}"));
    assert_eq!(header["alg"], combo.algorithm, "step `{step}`: {header}");
    let x5c = header["x5c"]
        .as_array()
        .unwrap_or_else(|| panic!("step `{step}`: no x5c: {header}"));
    assert!(
        !x5c.is_empty() && x5c.iter().all(Value::is_string),
        "step `{step}`: x5c: {header}"
    );
    let kid = str_of(step, &header, "kid");
    let groups: Vec<&str> = kid.split(':').collect();
    assert!(
        groups.len() == 12
            && groups.iter().all(|g| g.len() == 4
                && g.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())),
        "step `{step}`: kid is not a libtrust key ID: {kid}"
    );
    let claims = jwt_claims(&catalog_token).unwrap_or_else(|e| panic!("step `{step}`: {e:#}"));
    assert_eq!(claims["iss"], "portcullis.test", "step `{step}`: {claims}");
    assert_eq!(
        claims["aud"],
        reg.as_str(),
        "step `{step}`: aud must be a string: {claims}"
    );
    assert_eq!(claims["sub"], ADMIN.0, "step `{step}`: {claims}");

    // --- What the registry saw ------------------------------------------------------
    let log = registry.log();
    for bad in [
        "token signature",
        "invalid token",
        "error writing events",
        "unaccepted",
    ] {
        assert!(
            !log.contains(bad),
            "step `registry log`: contains {bad:?}:\n{log}"
        );
    }

    // --- Registry 2.8's other key lookup: the kid alone (after the log check above,
    // which would otherwise see the deliberately wrong kid below) --------------------
    // The registry checks x5c first, so the tokens above never exercised the kid. Re-sign
    // the same claims with our key and only our kid in the header: the registry must find
    // the key by that kid in its rootcertbundle. A wrong kid must be refused, or the check
    // would prove nothing.
    let step = "a token whose header carries only the kid";
    let key_pem = std::fs::read(work.path().join("data").join("token.key"))
        .unwrap_or_else(|e| panic!("step `{step}`: reading token.key: {e}"));
    let (alg, key) = match combo.algorithm {
        "ES256" => (
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::EncodingKey::from_ec_pem(&key_pem),
        ),
        _ => (
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::EncodingKey::from_rsa_pem(&key_pem),
        ),
    };
    let key = key.unwrap_or_else(|e| panic!("step `{step}`: parsing token.key: {e}"));
    let kid_only = |kid: &str| {
        let mut h = jsonwebtoken::Header::new(alg);
        h.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&h, &claims, &key)
            .unwrap_or_else(|e| panic!("step `{step}`: signing: {e}"))
    };
    let catalog_url = format!("{}/v2/_catalog", registry.url);
    http.get(
        step,
        &catalog_url,
        Auth::Bearer(&kid_only(kid)),
        StatusCode::OK,
    )
    .await;
    let step = "a token whose only key id is wrong";
    http.get(
        step,
        &catalog_url,
        Auth::Bearer(&kid_only(&kid.to_lowercase())),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    registry.stop().await;
    server.stop().await;
    drop(work);
    drop(pg);
}
