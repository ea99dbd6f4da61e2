//! End to end for the inventory: the `portcullis` binary (worker embedded) beside a
//! real registry 2.8 that sends real notifications, fed by `skopeo` with images built
//! by `umoci`. Pushes of a Docker schema 2 image, an OCI image and a multi-arch OCI
//! index show up with digest, size and platforms; a re-push moves the tag; a registry
//! delete removes the tags; an API delete removes the manifest from the registry;
//! pushes the notifications never reported are repaired by `portcullis sync`; and
//! `portcullis gc` keeps the newest tags of each repository. A webhook receiver started
//! by the test gets a signed delivery of the push, answers 500 once, and gets the retry.
//!
//! Waiting for the asynchronous notification path polls the API until the expected
//! state appears (a readiness check with a deadline), never a fixed sleep.

use portcullis_testkit::images::{PlatformSpec, build_image, build_index};
use portcullis_testkit::registry::Registry;
use portcullis_testkit::skopeo::{Creds, Skopeo};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;
use common::{Auth, Http, serve, str_of};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const NOTIFY_SECRET: &str = "inventory-e2e-secret";
/// How long a pushed image may take to show up before the test fails.
const VISIBLE_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test]
async fn inventory_sqlite() {
    scenario(false).await;
}

#[tokio::test]
async fn inventory_postgres() {
    scenario(true).await;
}

struct Env {
    http: Http,
    base: String,
    token: String,
}

impl Env {
    fn api(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }
    fn auth(&self) -> Auth<'_> {
        Auth::Portus(ADMIN.0, &self.token)
    }
    async fn get(&self, step: &str, path: &str) -> Value {
        self.http
            .get(step, &self.api(path), self.auth(), StatusCode::OK)
            .await
    }

    /// Every repository by full name, with its tags by name.
    async fn inventory(&self, step: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
        let repos = self.get(step, "/repositories?all=true").await;
        let mut out = BTreeMap::new();
        for repo in repos.as_array().into_iter().flatten() {
            let id = repo["id"].as_i64().unwrap_or_default();
            // The worker may delete the repository between the two requests.
            let response = Http::with_auth(
                self.http
                    .client
                    .get(self.api(&format!("/repositories/{id}/tags"))),
                self.auth(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("step `{step}`: {e}"));
            if response.status() == StatusCode::NOT_FOUND {
                continue;
            }
            let tags: Value = response
                .json()
                .await
                .unwrap_or_else(|e| panic!("step `{step}`: tags are not JSON: {e}"));
            let tags = tags
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| (t["name"].as_str().unwrap_or_default().to_owned(), t.clone()))
                .collect();
            out.insert(str_of(step, repo, "full_name").to_owned(), tags);
        }
        out
    }

    /// Polls until `ready` holds for the inventory (and no event is pending), or fails
    /// the step with the last state seen.
    async fn wait_for(
        &self,
        step: &str,
        ready: impl Fn(&BTreeMap<String, BTreeMap<String, Value>>) -> bool,
    ) -> BTreeMap<String, BTreeMap<String, Value>> {
        let deadline = Instant::now() + VISIBLE_WITHIN;
        loop {
            let inventory = self.inventory(step).await;
            let pending = self.get(step, "/events?status=pending").await;
            if ready(&inventory) && pending.as_array().is_some_and(Vec::is_empty) {
                return inventory;
            }
            if Instant::now() > deadline {
                let events = self.get(step, "/events?per_page=50").await;
                panic!(
                    "step `{step}`: not there within {VISIBLE_WITHIN:?}\ninventory: {inventory:#?}\nevents: {events:#}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn tag<'a>(
    inv: &'a BTreeMap<String, BTreeMap<String, Value>>,
    repo: &str,
    tag: &str,
) -> Option<&'a Value> {
    inv.get(repo).and_then(|t| t.get(tag))
}

async fn scenario(postgres: bool) {
    let pg = if postgres {
        Some(
            portcullis_testkit::postgres::test_database()
                .await
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL test database: {e:#} (see scripts/test.sh)")
                }),
        )
    } else {
        None
    };
    let work = tempfile::Builder::new()
        .prefix("portcullis-inventory-")
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
        // The catalog sync of the start-up strategy must not race the test's pushes.
        ("PORTCULLIS_BACKGROUND_SYNC_ENABLED", "false".to_owned()),
        (
            "PORTCULLIS_SECURITY_POLICY_PASSWORD_CHECKS_PER_MINUTE",
            "0".to_owned(),
        ),
        ("PORTCULLIS_LOG", "warn".to_owned()),
        // The test's webhook receiver listens on 127.0.0.1.
        (
            "PORTCULLIS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS",
            "true".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let server = serve(env, work.path()).await;
    let registry_dir = work.path().join("registry");
    let registry = Registry::start(&server, &registry_dir)
        .await
        .unwrap_or_else(|e| panic!("start docker-registry: {e:#}"));
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("skopeo: {e:#}"));
    let http = Http::new();
    let token = http.bootstrap(&server.url, ADMIN).await;
    let e = Env {
        http,
        base: server.url.clone(),
        token,
    };
    let reg = registry.addr.clone();
    e.http.create_registry(&e.base, e.auth(), "e2e", &reg).await;
    let admin = Creds::User(ADMIN.0, ADMIN.1);
    let dest = |repo: &str| format!("docker://{reg}/{repo}");

    // --- A webhook on the admin's namespace for pushes to `docker` -----------------------
    let receiver = portcullis_testkit::receiver::Receiver::start(&[500])
        .await
        .expect("webhook receiver");
    let namespaces = e.get("namespaces", "/namespaces?all=true").await;
    let personal = namespaces
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == ADMIN.0)
        .and_then(|n| n["id"].as_i64())
        .expect("the admin's personal namespace");
    let hook = e
        .http
        .post_json(
            "create a webhook",
            &e.api(&format!("/namespaces/{personal}/webhooks")),
            e.auth(),
            json!({"webhook": {"name": "e2e", "url": receiver.url, "request_method": "POST",
                "enabled": true, "actions": ["push"], "repository_glob": "docker"}}),
            StatusCode::CREATED,
        )
        .await;
    let hook_secret = str_of("create a webhook", &hook, "secret").to_owned();

    // --- Pushes of the three kinds -----------------------------------------------------
    let one = build_image("inventory one", "one")
        .await
        .expect("umoci image one");
    let two = build_image("inventory two", "two")
        .await
        .expect("umoci image two");
    let multi = build_index(
        "inventory multi",
        "multi",
        &[
            PlatformSpec {
                os: "linux",
                architecture: "amd64",
                variant: None,
            },
            PlatformSpec {
                os: "linux",
                architecture: "arm64",
                variant: Some("v8"),
            },
        ],
    )
    .await
    .expect("umoci index");
    skopeo
        .copy_with_flags(
            &["--format", "v2s2"],
            &one.reference,
            Creds::Anonymous,
            &dest("admin/docker:v1"),
            admin,
        )
        .await
        .expect("push docker schema 2");
    // `newns` does not exist: an admin's push creates it when the push is processed.
    skopeo
        .push(&two.reference, &dest("newns/oci:v1"), admin)
        .await
        .expect("push OCI");
    skopeo
        .copy_with_flags(
            &["--all"],
            &multi.reference,
            Creds::Anonymous,
            &dest("admin/multi:v1"),
            admin,
        )
        .await
        .expect("push the multi-arch index");
    let step = "pushed images show up";
    let inv = e
        .wait_for(step, |inv| {
            tag(inv, "admin/docker", "v1").is_some()
                && tag(inv, "newns/oci", "v1").is_some()
                && tag(inv, "admin/multi", "v1").is_some()
        })
        .await;
    let docker = tag(&inv, "admin/docker", "v1").expect("docker tag");

    // The webhook got the push of admin/docker (only that one: glob and action), signed,
    // failed once with 500 and was retried after the backoff.
    let got = receiver
        .wait_for(2, VISIBLE_WITHIN)
        .await
        .unwrap_or_else(|e| panic!("step `webhook`: {e:#}"));
    let now =
        portcullis_domain::time::Clock::now(&portcullis_service::clock::SystemClock).as_secs();
    for (i, delivery) in got.iter().enumerate() {
        let event: Value = serde_json::from_slice(&delivery.body).expect("the event is JSON");
        assert_eq!(event["action"], "push", "delivery {i}: {event}");
        assert_eq!(
            event["target"]["repository"], "admin/docker",
            "delivery {i}: {event}"
        );
        assert_eq!(event["target"]["tag"], "v1", "delivery {i}: {event}");
        assert_eq!(
            event["target"]["digest"], docker["digest"],
            "delivery {i}: {event}"
        );
        let signature = delivery
            .header("x-portcullis-signature")
            .expect("a signature");
        assert!(
            portcullis_webhooks::sign::verify(
                signature,
                hook_secret.as_bytes(),
                &delivery.body,
                now,
                120
            ),
            "delivery {i}: signature {signature}"
        );
    }
    assert_eq!(
        got[0].header("x-portcullis-delivery"),
        got[1].header("x-portcullis-delivery"),
        "the retry is the same delivery"
    );
    let hook_id = hook["id"].as_i64().unwrap_or_default();
    // The worker records the attempt after the receiver answered: poll for it.
    let deadline = Instant::now() + VISIBLE_WITHIN;
    let deliveries = loop {
        let d = e
            .get(
                "webhook deliveries",
                &format!("/namespaces/{personal}/webhooks/{hook_id}/deliveries"),
            )
            .await;
        if d[0]["status"] == 200 || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        deliveries.as_array().map(Vec::len),
        Some(1),
        "{deliveries:#}"
    );
    assert_eq!(deliveries[0]["status"], 200, "{deliveries:#}");
    assert_eq!(deliveries[0]["attempts"], 2, "{deliveries:#}");
    let inspected = skopeo
        .inspect(&dest("admin/docker:v1"), admin)
        .await
        .expect("skopeo inspect");
    assert_eq!(docker["digest"], inspected["Digest"], "{docker}");
    assert_eq!(
        docker["media_type"], "application/vnd.docker.distribution.manifest.v2+json",
        "{docker}"
    );
    assert_eq!(docker["author"]["name"], ADMIN.0, "{docker}");
    assert!(docker["size"].as_i64().unwrap_or_default() > 0, "{docker}");
    assert_eq!(
        docker["image_id"].as_str().map(str::len),
        Some(64),
        "{docker}"
    );
    let oci = tag(&inv, "newns/oci", "v1").expect("oci tag");
    assert_eq!(
        oci["media_type"], "application/vnd.oci.image.manifest.v1+json",
        "{oci}"
    );
    let index = tag(&inv, "admin/multi", "v1").expect("index tag");
    assert_eq!(
        index["media_type"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    let platforms: Vec<(String, String, Option<String>)> = index["platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["os"].as_str().unwrap_or_default().to_owned(),
                p["architecture"].as_str().unwrap_or_default().to_owned(),
                p["variant"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        vec![
            ("linux".into(), "amd64".into(), None),
            ("linux".into(), "arm64".into(), Some("v8".into()))
        ],
        "{index}"
    );
    let platform_sizes: i64 = index["platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["size"].as_i64().unwrap_or_default())
        .sum();
    assert_eq!(index["size"].as_i64(), Some(platform_sizes), "{index}");
    let namespaces = e.get("namespaces", "/namespaces?all=true").await;
    let newns = namespaces
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == "newns")
        .unwrap_or_else(|| panic!("newns was not created: {namespaces}"));
    assert_eq!(newns["visibility"], "private", "{newns}");

    // --- Re-push moves the tag ---------------------------------------------------------
    let first_id = docker["id"].clone();
    let first_digest = docker["digest"].clone();
    skopeo
        .copy_with_flags(
            &["--format", "v2s2"],
            &two.reference,
            Creds::Anonymous,
            &dest("admin/docker:v1"),
            admin,
        )
        .await
        .expect("re-push");
    let step = "a re-push moves the tag";
    let inv = e
        .wait_for(step, |inv| {
            tag(inv, "admin/docker", "v1").is_some_and(|t| t["digest"] != first_digest)
        })
        .await;
    assert_eq!(
        tag(&inv, "admin/docker", "v1").expect("moved")["id"],
        first_id
    );

    // --- A delete in the registry removes the tags -------------------------------------
    skopeo
        .delete(&dest("admin/docker:v1"), admin)
        .await
        .expect("skopeo delete");
    e.wait_for("a registry delete removes the repository", |inv| {
        !inv.contains_key("admin/docker")
    })
    .await;

    // --- An API delete removes the manifest from the registry --------------------------
    let oci_id = oci["id"].as_i64().expect("tag id");
    e.http
        .delete(
            "API delete",
            &e.api(&format!("/tags/{oci_id}")),
            e.auth(),
            StatusCode::NO_CONTENT,
        )
        .await;
    assert!(
        skopeo.inspect(&dest("newns/oci:v1"), admin).await.is_err(),
        "the manifest is still in the registry after the API delete"
    );
    e.wait_for("the API delete empties the repository", |inv| {
        !inv.contains_key("newns/oci")
    })
    .await;

    // --- Pushes nobody notified: repaired by a sync ------------------------------------
    // A second registry process without notifications (and without auth) on the same
    // storage: what it receives, Portcullis never hears of.
    let silent = Registry::start_plain(&registry_dir)
        .await
        .unwrap_or_else(|e| panic!("start the silent registry: {e:#}"));
    for t in ["a", "b", "c"] {
        let image = build_image(&format!("gc {t}"), t)
            .await
            .expect("umoci gc image");
        skopeo
            .push(
                &image.reference,
                &format!("docker://{}/admin/gc:{t}", silent.addr),
                Creds::Anonymous,
            )
            .await
            .expect("push to the silent registry");
    }
    let dry = server
        .subcommand(["sync", "--dry-run"])
        .await
        .expect("portcullis sync --dry-run");
    assert!(dry.contains("would add e2e: admin/gc:a"), "{dry}");
    assert!(
        !e.inventory("after the dry run")
            .await
            .contains_key("admin/gc")
    );
    let synced = server.subcommand(["sync"]).await.expect("portcullis sync");
    assert!(synced.contains("added 3"), "{synced}");
    let inv = e.inventory("after the sync").await;
    assert_eq!(inv.get("admin/gc").map(BTreeMap::len), Some(3), "{inv:#?}");
    assert!(
        inv.contains_key("admin/multi"),
        "the sync kept admin/multi: {inv:#?}"
    );

    // --- Garbage collection keeps the newest tags of each repository -------------------
    let dry = server
        .subcommand(["gc", "--dry-run", "--older-than", "0", "--keep-latest", "1"])
        .await
        .expect("portcullis gc --dry-run");
    assert!(dry.contains("would delete 2 manifests (2 tags)"), "{dry}");
    assert_eq!(
        e.inventory("after the gc dry run").await["admin/gc"].len(),
        3
    );
    let done = server
        .subcommand(["gc", "--older-than", "0", "--keep-latest", "1"])
        .await
        .expect("portcullis gc");
    assert!(done.contains("deleted 2 manifests (2 tags)"), "{done}");
    let inv = e.inventory("after gc").await;
    let left: Vec<&String> = inv["admin/gc"].keys().collect();
    assert_eq!(left, vec!["c"], "the newest tag stays: {inv:#?}");
    // keep_latest counts per repository: the single tag of admin/multi stays.
    assert!(tag(&inv, "admin/multi", "v1").is_some(), "{inv:#?}");
    assert!(
        skopeo.inspect(&dest("admin/gc:a"), admin).await.is_err(),
        "gc left the manifest of admin/gc:a in the registry"
    );

    // --- Deleting a namespace deletes its images in the registry first ---------------
    skopeo
        .copy_with_flags(
            &[],
            &one.reference,
            Creds::Anonymous,
            &dest("newns/app:v1"),
            admin,
        )
        .await
        .expect("push into newns");
    e.wait_for("newns/app shows up", |inv| {
        tag(inv, "newns/app", "v1").is_some()
    })
    .await;
    let namespaces = e.get("namespaces", "/namespaces?all=true").await;
    let newns_id = namespaces
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == "newns")
        .and_then(|n| n["id"].as_i64())
        .expect("newns");
    e.http
        .delete(
            "delete newns",
            &e.api(&format!("/namespaces/{newns_id}")),
            e.auth(),
            StatusCode::NO_CONTENT,
        )
        .await;
    assert!(
        skopeo.inspect(&dest("newns/app:v1"), admin).await.is_err(),
        "the namespace's manifest is still in the registry"
    );
    let namespaces = e
        .get("namespaces after delete", "/namespaces?all=true")
        .await;
    assert!(
        !namespaces
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["name"] == "newns"),
        "{namespaces}"
    );

    // --- The audit trail outlives what it describes -----------------------------------
    let activities = e.get("activities", "/activities?all=true").await;
    let keys: Vec<&str> = activities
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["key"].as_str())
        .collect();
    for key in ["repository.push", "repository.delete", "namespace.delete"] {
        assert!(keys.contains(&key), "no {key} activity in {keys:?}");
    }
    drop(silent);
    drop(registry);
    server.stop().await;
}
