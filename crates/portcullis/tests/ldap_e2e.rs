//! LDAP end to end: the built binary with `ldap.*` pointing at a real OpenLDAP slapd
//! (StartTLS, trusting the test CA), Debian's `docker-registry` and `skopeo`. A
//! directory user's first `skopeo copy` creates the account and its personal namespace
//! and pushes there; another directory user may not pull it; a wrong password is
//! refused; the group sync puts the first into the team of her LDAP group, whose
//! namespace she then pushes to; a third signs in to the web UI with the directory
//! password.

#![allow(clippy::unwrap_used)]

mod common;
use common::{Auth, Http, browser, env_vars, poll, serve, sign_in};
use portcullis_testkit::images::build_image;
use portcullis_testkit::ldap::{self as dir, Seed, Slapd};
use portcullis_testkit::registry::Registry;
use portcullis_testkit::skopeo::{Creds, Skopeo};
use reqwest::StatusCode;
use serde_json::json;

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const ALICE: (&str, &str) = ("alice", dir::ALICE_PASSWORD);
const BOB: (&str, &str) = ("bob", dir::BOB_PASSWORD);
const CAROL: (&str, &str) = ("carol", dir::CAROL_PASSWORD);

#[tokio::test]
async fn a_directory_user_pushes_with_skopeo_and_signs_in_to_the_web_ui() {
    let slapd = Slapd::start(&Seed::default_directory())
        .await
        .unwrap_or_else(|e| panic!("step `start slapd`: {e:#} (see scripts/test.sh)"));
    let work = tempfile::Builder::new()
        .prefix("portcullis-ldap-e2e-")
        .tempdir()
        .unwrap();
    let data = work.path().join("data").display().to_string();
    let port = slapd.plain_port().to_string();
    let ca = slapd.ca_cert_path().display().to_string();
    let env = env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0"),
        ("PORTCULLIS_DATA_DIR", &data),
        ("PORTCULLIS_MACHINE_FQDN_VALUE", "portcullis.test"),
        ("PORTCULLIS_SECURITY_POLICY_PASSWORD_CHECKS_PER_MINUTE", "0"),
        ("PORTCULLIS_LOG", "warn"),
        // Portus's variable names, as a Portus deployment has them.
        ("PORTUS_LDAP_ENABLED", "true"),
        ("PORTUS_LDAP_HOSTNAME", slapd.host()),
        ("PORTUS_LDAP_PORT", &port),
        ("PORTUS_LDAP_BASE", dir::PEOPLE_BASE),
        ("PORTUS_LDAP_ENCRYPTION_METHOD", "starttls"),
        ("PORTUS_LDAP_ENCRYPTION_OPTIONS_CA_FILE", &ca),
        ("PORTUS_LDAP_AUTHENTICATION_ENABLED", "true"),
        ("PORTUS_LDAP_AUTHENTICATION_BIND_DN", dir::SERVICE_DN),
        ("PORTUS_LDAP_AUTHENTICATION_PASSWORD", dir::SERVICE_PASSWORD),
        ("PORTUS_LDAP_GUESS_EMAIL_ENABLED", "true"),
        ("PORTUS_LDAP_GUESS_EMAIL_ATTR", "mail"),
        ("PORTUS_LDAP_GROUP_BASE", dir::GROUPS_BASE),
        ("PORTUS_LDAP_GROUP_SYNC_DEFAULT_ROLE", "contributor"),
    ]);
    let server = serve(env, work.path()).await;
    let registry = Registry::start(&server, &work.path().join("registry"))
        .await
        .unwrap_or_else(|e| panic!("step `start docker-registry`: {e:#}"));
    let http = Http::new();
    let api = |path: &str| format!("{}/api/v1{path}", server.url);

    let admin_token = http.bootstrap(&server.url, ADMIN).await; // a local account
    http.create_registry(
        &server.url,
        Auth::Bearer(&admin_token),
        "test",
        &registry.addr,
    )
    .await;

    let image = build_image("ldap", "v1")
        .await
        .unwrap_or_else(|e| panic!("step `build image with umoci`: {e:#}"));
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("step `skopeo`: {e:#}"));
    let alice_app = format!("docker://{}/alice/app:v1", registry.addr);

    // alice has never signed in: her first push creates the account and namespace.
    skopeo
        .push(&image.reference, &alice_app, Creds::User(ALICE.0, ALICE.1))
        .await
        .unwrap_or_else(|e| panic!("step `alice pushes with her directory password`: {e:#}"));
    let pulled = skopeo
        .pull(&alice_app, Creds::User(ALICE.0, ALICE.1))
        .await
        .unwrap_or_else(|e| panic!("step `alice pulls it back`: {e:#}"));
    assert!(pulled.starts_with("oci:"), "{pulled}");
    let users = http
        .get(
            "list users",
            &api("/users?all=true"),
            Auth::Bearer(&admin_token),
            StatusCode::OK,
        )
        .await;
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == ALICE.0)
        .unwrap_or_else(|| panic!("no account for alice: {users}"))
        .clone();
    assert_eq!(alice["email"], "alice@example.org", "{alice}");
    let namespaces = http
        .get(
            "alice's namespaces",
            &api("/namespaces?all=true"),
            Auth::Basic(ALICE.0, ALICE.1),
            StatusCode::OK,
        )
        .await;
    assert!(
        namespaces
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "alice"),
        "{namespaces}"
    );

    // Another directory user may not pull a private personal namespace; a wrong
    // password gets nothing.
    let refused = skopeo.pull(&alice_app, Creds::User(BOB.0, BOB.1)).await;
    assert!(refused.is_err(), "bob pulled alice's private image");
    let refused = skopeo
        .push(
            &image.reference,
            &alice_app,
            Creds::User(ALICE.0, "not-her-password"),
        )
        .await;
    assert!(refused.is_err(), "a wrong directory password pushed");

    // The group sync: the team `developers` (an LDAP group of alice and bob) gets
    // alice as a contributor from the worker's periodic task, so she pushes into the
    // team's namespace.
    let team = http
        .post_json(
            "create the team developers",
            &api("/teams"),
            Auth::Bearer(&admin_token),
            json!({"name": "developers"}),
            StatusCode::CREATED,
        )
        .await;
    let team_id = team["id"].as_i64().unwrap();
    http.post_json(
        "create the namespace devteam",
        &api("/namespaces"),
        Auth::Bearer(&admin_token),
        json!({"name": "devteam", "team": "developers"}),
        StatusCode::CREATED,
    )
    .await;
    let members_uri = api(&format!("/teams/{team_id}/members"));
    poll!(
        "the group sync adds alice to developers",
        std::time::Duration::from_secs(30),
        {
            let members = http
                .get(
                    "team members",
                    &members_uri,
                    Auth::Bearer(&admin_token),
                    StatusCode::OK,
                )
                .await;
            let alice = members
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["display_name"] == ALICE.0 && m["role"] == "contributor")
                .cloned();
            (alice, members)
        }
    );
    skopeo
        .push(
            &image.reference,
            &format!("docker://{}/devteam/app:v1", registry.addr),
            Creds::User(ALICE.0, ALICE.1),
        )
        .await
        .unwrap_or_else(|e| panic!("step `alice pushes into the team's namespace`: {e:#}"));

    // The web UI: carol's first sign-in is through the form.
    let cookie = sign_in(&server.url, CAROL).await;
    let page = browser()
        .get(format!("{}/users/edit", server.url))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text().await.unwrap().contains("carol"),
        "carol's profile"
    );
}
