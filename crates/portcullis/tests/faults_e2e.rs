//! Process-level fault proofs for the inventory: the real `portcullis` binary beside a
//! real registry 2.8 (notifications on), `skopeo` pushes of `umoci` images, and
//! fault-injecting proxies from `portcullis_testkit::proxy` between the processes.
//!
//! - A worker killed (SIGKILL) while its job hangs on a manifest fetch: the job is
//!   taken over by a new worker once the lease lapses, and the event is processed once.
//! - The database unreachable for a while: intake and the token endpoint answer 503
//!   (never 2xx, never 401), and once it is back the re-sent envelopes, and the event
//!   the registry itself kept retrying, are each processed exactly once.
//! - 5,000 notifications in a burst, some envelopes twice: 5,000 tags and activities.
//! - A sync whose registry fails half-way (second catalog page, one tag list, one
//!   manifest lookup) deletes nothing and says so.
//!
//! Along the way: Portcullis's own manifest reads (processing a push, a sync's lookups)
//! come back from the registry as pull events; they are kept as `ignored` and never
//! mark a tag as pulled.
//!
//! Nothing waits a fixed time: each step polls the API (or the proxy's state) until the
//! expected state appears, with a deadline.

#![allow(clippy::unwrap_used)]

use portcullis_testkit::images::build_image;
use portcullis_testkit::postgres::TestDatabase;
use portcullis_testkit::proxy::{HttpProxy, TcpProxy, through_proxy};
use portcullis_testkit::registry::{Registry, form_encode};
use portcullis_testkit::server::Server;
use portcullis_testkit::skopeo::{Creds, Skopeo};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{Auth, Http, Manifest, id_of, poll, serve, str_of};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
const NOTIFY_SECRET: &str = "faults-e2e-secret";
/// How long an asynchronous outcome may take before the test fails.
const WITHIN: Duration = Duration::from_secs(60);
/// Lease of the worker tests: short, so a takeover needs no 30 s wait.
const LEASE_SECS: &str = "3";
const EVENTS_V1: &str = "application/vnd.docker.distribution.events.v1+json";

// ---------------------------------------------------------------------------------------
// Shared set-up
// ---------------------------------------------------------------------------------------

/// The database of one test: a throwaway PostgreSQL database or a SQLite file.
struct Database {
    url: String,
    _pg: Option<TestDatabase>,
}

async fn database(postgres: bool, work: &Path) -> Database {
    if postgres {
        let db = portcullis_testkit::postgres::test_database()
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL test database: {e:#} (see scripts/test.sh)"));
        Database {
            url: db.url.clone(),
            _pg: Some(db),
        }
    } else {
        Database {
            url: format!("sqlite:{}", work.join("p.db").display()),
            _pg: None,
        }
    }
}

fn work_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("portcullis-faults-{name}-"))
        .tempdir()
        .expect("creating the work folder")
}

/// `portcullis serve` on `database_url` with `extra` variables on top of the defaults.
async fn start_server(work: &Path, database_url: &str, extra: &[(&str, &str)]) -> Server {
    let mut env: BTreeMap<String, String> = [
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "PORTCULLIS_DATA_DIR",
            work.join("data").display().to_string(),
        ),
        ("PORTCULLIS_DATABASE_URL", database_url.to_owned()),
        (
            "PORTCULLIS_MACHINE_FQDN_VALUE",
            "portcullis.test".to_owned(),
        ),
        ("PORTCULLIS_NOTIFICATIONS_SECRET", NOTIFY_SECRET.to_owned()),
        // No catalog sync behind the tests' backs.
        ("PORTCULLIS_BACKGROUND_SYNC_ENABLED", "false".to_owned()),
        (
            "PORTCULLIS_SECURITY_POLICY_PASSWORD_CHECKS_PER_MINUTE",
            "0".to_owned(),
        ),
        ("PORTCULLIS_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    serve(env, work).await
}

/// Repository full name → tag name → (tag id, digest).
type Inventory = BTreeMap<String, BTreeMap<String, (i64, String)>>;

/// The admin's view of one Portcullis.
struct Api {
    http: Http,
    base: String,
    token: String,
}

impl Api {
    async fn bootstrap(server: &Server) -> Self {
        let http = Http::new();
        Self {
            token: http.bootstrap(&server.url, ADMIN).await,
            http,
            base: server.url.clone(),
        }
    }

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

    /// The `X-Total` of a listing.
    async fn total(&self, step: &str, path: &str) -> i64 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let response = Http::with_auth(
            self.http
                .client
                .get(self.api(&format!("{path}{sep}per_page=1"))),
            self.auth(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("step `{step}`: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "step `{step}`");
        response
            .headers()
            .get("x-total")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("step `{step}`: no X-Total"))
    }

    /// Registers the registry as `hostname` (what Portcullis calls), reached by clients
    /// as `external` (what its notifications carry as `request.host`).
    async fn create_registry(&self, hostname: &str, external: Option<&str>) {
        self.http
            .post_json(
                "create the registry",
                &self.api("/registries"),
                self.auth(),
                json!({"registry": {"name": "e2e", "hostname": hostname, "use_ssl": false,
                    "external_hostname": external}}),
                StatusCode::CREATED,
            )
            .await;
    }

    async fn inventory(&self, step: &str) -> Inventory {
        let repos = self.get(step, "/repositories?all=true").await;
        let mut out = Inventory::new();
        for repo in repos.as_array().into_iter().flatten() {
            let id = id_of(step, repo);
            let tags = self.get(step, &format!("/repositories/{id}/tags")).await;
            let tags = tags
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    (
                        str_of(step, t, "name").to_owned(),
                        (id_of(step, t), str_of(step, t, "digest").to_owned()),
                    )
                })
                .collect();
            out.insert(str_of(step, repo, "full_name").to_owned(), tags);
        }
        out
    }

    async fn pending(&self, step: &str) -> i64 {
        self.total(step, "/events?status=pending").await
    }

    /// Polls until `ready` holds for the inventory and no event is pending.
    async fn wait_for(&self, step: &str, ready: impl Fn(&Inventory) -> bool) -> Inventory {
        let deadline = Instant::now() + WITHIN;
        loop {
            let inventory = self.inventory(step).await;
            if ready(&inventory) && self.pending(step).await == 0 {
                return inventory;
            }
            if Instant::now() > deadline {
                let events = self.get(step, "/events?per_page=20").await;
                let jobs = self.get(step, "/jobs?per_page=20").await;
                panic!(
                    "step `{step}`: not there within {WITHIN:?}\ninventory: {inventory:#?}\nevents: {events:#}\njobs: {jobs:#}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every manifest push event of `repository` (blob events and pulls left out).
    async fn push_events(&self, step: &str, repository: &str) -> Vec<Value> {
        let events = self
            .get(
                step,
                &format!(
                    "/events?all=true&action=push&{}",
                    form_encode(&[("repository", repository)])
                ),
            )
            .await;
        events
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["tag"].is_string())
            .cloned()
            .collect()
    }

    /// Polls until at least `n` pull events of `repository` by Portcullis itself (its
    /// own manifest reads, which the registry reports like anyone's) have arrived and no
    /// event is pending; checks they were kept as `ignored`.
    async fn own_pulls(&self, step: &str, repository: &str, n: usize, within: Duration) {
        let path = format!(
            "/events?all=true&action=pull&{}",
            form_encode(&[("repository", repository)])
        );
        let own = poll!(step, within, {
            let events = self.get(step, &path).await;
            let own: Vec<Value> = events
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["actor"] == "portcullis")
                .cloned()
                .collect();
            let pending = self.pending(step).await;
            let count = own.len();
            (
                (count >= n && pending == 0).then_some(own),
                format!("{count} pulls by portcullis, {pending} events pending"),
            )
        });
        let counted: Vec<&Value> = own.iter().filter(|e| e["status"] != "ignored").collect();
        assert!(
            counted.is_empty(),
            "step `{step}`: Portcullis's own reads were taken for pulls: {counted:#?}"
        );
    }

    /// Fails when any tag has a `pulled_at`: nobody but Portcullis read them.
    async fn assert_never_pulled(&self, step: &str) {
        let tags = self.get(step, "/tags?all=true").await;
        let pulled: Vec<&Value> = tags
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| !t["pulled_at"].is_null())
            .collect();
        assert!(
            pulled.is_empty(),
            "step `{step}`: {} tags marked as pulled, e.g. {:#}",
            pulled.len(),
            pulled[0]
        );
    }

    /// Tag name → the `repository.push` activities of `namespace/repository` for it.
    async fn push_activities(
        &self,
        step: &str,
        namespace: &str,
        repository: &str,
    ) -> BTreeMap<String, usize> {
        let activities = self.get(step, "/activities?all=true").await;
        let mut out = BTreeMap::new();
        for a in activities.as_array().into_iter().flatten() {
            let p = &a["parameters"];
            if a["key"] == "repository.push"
                && p["namespace_name"] == namespace
                && p["repository_name"] == repository
            {
                let tag = p["tag_name"].as_str().unwrap_or_default().to_owned();
                *out.entry(tag).or_insert(0) += 1;
            }
        }
        out
    }

    /// `POST /v2/webhooks/events` as the registry sends it; the status.
    async fn notify(&self, envelope: &Value) -> StatusCode {
        self.http
            .client
            .post(format!("{}/v2/webhooks/events", self.base))
            .bearer_auth(NOTIFY_SECRET)
            .header("Content-Type", EVENTS_V1)
            .body(envelope.to_string())
            .send()
            .await
            .map(|r| r.status())
            .unwrap_or_else(|e| panic!("POST /v2/webhooks/events: {e}"))
    }
}

/// Builds an image, pushes it to `registry_addr/repository:tag` as the admin and waits
/// until Portcullis shows the tag; returns its manifest.
async fn seed(
    api: &Api,
    skopeo: &Skopeo,
    registry_addr: &str,
    repository: &str,
    tag: &str,
) -> Manifest {
    let image = build_image(&format!("faults {repository}"), tag)
        .await
        .expect("umoci image");
    let dest = format!("docker://{registry_addr}/{repository}:{tag}");
    skopeo
        .push(&image.reference, &dest, Creds::User(ADMIN.0, ADMIN.1))
        .await
        .unwrap_or_else(|e| panic!("push {dest}: {e:#}"));
    let step = format!("{repository}:{tag} shows up");
    let inv = api
        .wait_for(&step, |inv| {
            inv.get(repository).is_some_and(|t| t.contains_key(tag))
        })
        .await;
    let digest = inv[repository][tag].1.clone();
    let events = api.push_events(&step, repository).await;
    let event = events
        .iter()
        .find(|e| e["tag"] == tag)
        .unwrap_or_else(|| panic!("step `{step}`: no push event: {events:#?}"));
    Manifest {
        digest,
        media_type: str_of(&step, event, "media_type").to_owned(),
        size: event["data"]["target"]["size"].as_i64().unwrap_or_default(),
    }
}

/// A manifest push event as distribution 2.8 writes it, pushed by the admin.
fn push_event(id: &str, repository: &str, tag: &str, m: &Manifest, host: &str) -> Value {
    common::push_event(id, repository, tag, m, host, ADMIN.0, "faults-e2e")
}

fn envelope(events: Vec<Value>) -> Value {
    json!({ "events": events })
}

// ---------------------------------------------------------------------------------------
// 1. A worker killed mid-job
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn worker_killed_mid_job_sqlite() {
    worker_killed_mid_job(false).await;
}

#[tokio::test]
async fn worker_killed_mid_job_postgres() {
    worker_killed_mid_job(true).await;
}

/// `serve` without a worker, a separate `portcullis worker`, and a pausable proxy on
/// the only path from Portcullis to the registry (the registry's `hostname`; clients
/// and notifications use its own address, the `external_hostname`). The proxy holds
/// the worker's manifest fetch, so the job hangs deterministically in `running`; the
/// worker is SIGKILLed there. A second worker takes the job over after the lease.
async fn worker_killed_mid_job(postgres: bool) {
    let work = work_dir("worker");
    let db = database(postgres, work.path()).await;
    let proxy = TcpProxy::bind().await.expect("the registry proxy");
    let server = start_server(
        work.path(),
        &db.url,
        &[
            ("PORTCULLIS_BACKGROUND_EMBEDDED", "false"),
            ("PORTCULLIS_BACKGROUND_LEASE_SECONDS", LEASE_SECS),
        ],
    )
    .await;
    let registry = Registry::start_as(&server, &work.path().join("registry"), &proxy.addr)
        .await
        .unwrap_or_else(|e| panic!("start docker-registry: {e:#}"));
    proxy.set_upstream(&registry.addr);
    let api = Api::bootstrap(&server).await;
    api.create_registry(&proxy.addr, Some(&registry.addr)).await;
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("skopeo: {e:#}"));
    let image = build_image("faults worker", "v1")
        .await
        .expect("umoci image");

    let mut first = server.spawn(["worker"], "worker-1").expect("worker 1");
    let first_pid = first.pid().expect("worker 1 pid");

    // From here on nothing reaches the registry through Portcullis's own path.
    proxy.pause();
    let dest = format!("docker://{}/admin/app:v1", registry.addr);
    skopeo
        .push(&image.reference, &dest, Creds::User(ADMIN.0, ADMIN.1))
        .await
        .unwrap_or_else(|e| panic!("push {dest}: {e:#}"));

    let step = "the worker holds the job, its manifest fetch held by the proxy";
    let job = poll!(step, WITHIN, {
        let running = api
            .get(step, "/jobs?state=running&kind=process_events")
            .await;
        let job = running.as_array().and_then(|j| j.first()).cloned();
        (job.filter(|_| proxy.held() > 0), running.to_string())
    });
    let job_id = id_of(step, &job);
    assert_eq!(job["attempts"], 1, "{job:#}");
    let first_worker = str_of(step, &job, "worker").to_owned();
    assert!(
        first_worker.ends_with(&format!(":{first_pid}")),
        "the job is worker 1's (pid {first_pid}): {job:#}"
    );
    let events = api.push_events(step, "admin/app").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["status"], "pending", "{events:#?}");
    let event_id = id_of(step, &events[0]);

    // --- SIGKILL while the job hangs; then let traffic through again -----------------
    let status = first.kill().await.expect("killing worker 1");
    assert!(!status.success(), "{status}");
    proxy.resume();
    let step = "after the kill, before a new worker";
    let job = api.get(step, &format!("/jobs/{job_id}")).await;
    assert_eq!(job["state"], "running", "the dead worker's lease: {job:#}");
    assert_eq!(job["worker"], first_worker.as_str(), "{job:#}");
    let event = api.get(step, &format!("/events/{event_id}")).await;
    assert_eq!(event["status"], "pending", "{event:#}");
    assert!(
        !api.inventory(step).await.contains_key("admin/app"),
        "nothing was recorded by the killed worker"
    );

    // --- A new worker takes the job over once the lease has expired ------------------
    let second = server.spawn(["worker"], "worker-2").expect("worker 2");
    let second_pid = second.pid().expect("worker 2 pid");
    let step = "the second worker finishes the job";
    let job = poll!(step, WITHIN, {
        let job = api.get(step, &format!("/jobs/{job_id}")).await;
        (
            (job["state"] == "done").then(|| job.clone()),
            job.to_string(),
        )
    });
    assert_eq!(job["attempts"], 2, "one attempt per worker: {job:#}");
    let second_worker = str_of(step, &job, "worker");
    assert!(
        second_worker.ends_with(&format!(":{second_pid}")),
        "taken over by worker 2 (pid {second_pid}): {job:#}"
    );
    assert_ne!(second_worker, first_worker);

    let inv = api
        .wait_for(step, |inv| inv.contains_key("admin/app"))
        .await;
    let tags: Vec<&String> = inv["admin/app"].keys().collect();
    assert_eq!(tags, ["v1"], "{inv:#?}");
    // The workers' manifest fetches came back as pull events: not pulls by anyone.
    api.own_pulls(step, "admin/app", 1, WITHIN).await;
    api.assert_never_pulled(step).await;
    // (A real pull, from here on.)
    let inspected = skopeo
        .inspect(&dest, Creds::User(ADMIN.0, ADMIN.1))
        .await
        .expect("skopeo inspect");
    assert_eq!(
        inv["admin/app"]["v1"].1, inspected["Digest"],
        "the recorded digest"
    );
    let events = api.push_events(step, "admin/app").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["status"], "done", "{events:#?}");
    assert!(events[0]["error"].is_null(), "{events:#?}");
    let activities = api.push_activities(step, "admin", "app").await;
    assert_eq!(
        activities,
        BTreeMap::from([("v1".to_owned(), 1)]),
        "exactly one push activity"
    );
    let failed = api.total(step, "/jobs?state=failed").await;
    assert_eq!(failed, 0);
    drop(second);
    drop(registry);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// 2. The database unavailable for a while
// ---------------------------------------------------------------------------------------

/// PostgreSQL behind a proxy the test cuts: every connection reset, new ones too.
#[tokio::test]
async fn database_outage_postgres() {
    let work = work_dir("outage");
    let db = database(true, work.path()).await;
    let pg_proxy = TcpProxy::bind().await.expect("the database proxy");
    let (upstream, url) = through_proxy(&db.url, &pg_proxy.addr);
    pg_proxy.set_upstream(&upstream);
    // A job caught by the cut cannot record its end: a short lease lets it be taken
    // over soon (the test keeps the worker idle at the cut, so this is a safety net).
    let server = start_server(
        work.path(),
        &url,
        &[("PORTCULLIS_BACKGROUND_LEASE_SECONDS", LEASE_SECS)],
    )
    .await;
    let registry = Registry::start(&server, &work.path().join("registry"))
        .await
        .unwrap_or_else(|e| panic!("start docker-registry: {e:#}"));
    let api = Api::bootstrap(&server).await;
    api.create_registry(&registry.addr, None).await;
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("skopeo: {e:#}"));
    let repo = "admin/outage";
    let manifest = seed(&api, &skopeo, &registry.addr, repo, "seed").await;

    // Envelopes of 4 events: set A is delivered before the outage, set B during it.
    let make = |set: &str| -> Vec<(Vec<String>, Value)> {
        (0..3)
            .map(|e| {
                let tags: Vec<String> = (0..4).map(|i| format!("{set}-{}", e * 4 + i)).collect();
                let events = tags
                    .iter()
                    .map(|t| push_event(&format!("outage-{t}"), repo, t, &manifest, &registry.addr))
                    .collect();
                (tags, envelope(events))
            })
            .collect()
    };
    let set_a = make("a");
    let set_b = make("b");
    for (_, env) in &set_a {
        assert_eq!(api.notify(env).await, StatusCode::ACCEPTED);
    }
    let step = "set A is processed before the outage";
    api.wait_for(step, |inv| {
        inv.get(repo).is_some_and(|t| {
            set_a
                .iter()
                .flat_map(|(tags, _)| tags)
                .all(|tag| t.contains_key(tag))
        })
    })
    .await;
    // Before the outage: a push token and the manifest, for a push during it (the
    // registry needs Portcullis only for tokens, so it keeps accepting this one).
    let step = "a push token for the outage";
    let token_url = format!(
        "{}/v2/token?{}",
        server.url,
        form_encode(&[
            ("service", &registry.addr),
            ("scope", &format!("repository:{repo}:pull,push")),
        ])
    );
    let t = api
        .http
        .get(
            step,
            &token_url,
            Auth::Basic(ADMIN.0, ADMIN.1),
            StatusCode::OK,
        )
        .await;
    let push_token = str_of(step, &t, "token").to_owned();
    let manifest_url =
        |reference: &str| format!("{}/v2/{repo}/manifests/{reference}", registry.url);
    let body = api
        .http
        .client
        .get(manifest_url("seed"))
        .bearer_auth(&push_token)
        .header("Accept", &manifest.media_type)
        .send()
        .await
        .expect("GET the seed manifest")
        .bytes()
        .await
        .expect("the seed manifest");
    // That GET was a pull, reported by the registry: once it is processed and no job
    // is in flight, the outage meets an idle worker.
    let step = "idle before the outage";
    poll!(step, WITHIN, {
        let pulls = api
            .total(
                step,
                "/events?action=pull&status=done&repository=admin/outage",
            )
            .await;
        let busy = api.pending(step).await + api.total(step, "/jobs?state=running").await;
        (
            (pulls >= 1 && busy == 0).then_some(()),
            format!("{pulls} pulls done, {busy} events pending or jobs running"),
        )
    });

    // --- The outage -----------------------------------------------------------------
    pg_proxy.cut();
    let step = "during the outage";
    for (_, env) in set_b.iter().chain(&set_a[..1]) {
        let status = api.notify(env).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "step `{step}`: intake must ask the registry to retry"
        );
    }
    let status = api
        .http
        .client
        .get(&token_url)
        .basic_auth(ADMIN.0, Some(ADMIN.1))
        .send()
        .await
        .expect("GET /v2/token")
        .status();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "step `{step}`: a password that cannot be checked is not a wrong one"
    );
    let status = Http::with_auth(api.http.client.get(api.api("/events")), api.auth())
        .send()
        .await
        .expect("GET /api/v1/events")
        .status();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "step `{step}`");
    // A push the registry accepts now: its notification is refused with 503 and the
    // registry keeps retrying it.
    let put = api
        .http
        .client
        .put(manifest_url("during"))
        .bearer_auth(&push_token)
        .header("Content-Type", &manifest.media_type)
        .body(body)
        .send()
        .await
        .expect("PUT a manifest during the outage");
    assert_eq!(put.status(), StatusCode::CREATED, "step `{step}`");
    poll!("the registry's notification is refused with 503", WITHIN, {
        let log = registry.log();
        (
            log.contains("503 Service Unavailable").then_some(()),
            "no 503 in the registry log".to_owned(),
        )
    });
    assert!(pg_proxy.accepted() > 0);

    // --- The database is back: the registry's retries and our re-posts go through ----
    pg_proxy.restore();
    let step = "after the outage";
    for (_, env) in set_b.iter().chain(&set_a) {
        assert_eq!(api.notify(env).await, StatusCode::ACCEPTED, "step `{step}`");
    }
    let mut expected: BTreeSet<String> = set_a
        .iter()
        .chain(&set_b)
        .flat_map(|(tags, _)| tags.iter().cloned())
        .collect();
    expected.insert("seed".into());
    expected.insert("during".into());
    let inv = api
        .wait_for(step, |inv| {
            inv.get(repo)
                .is_some_and(|t| expected.iter().all(|tag| t.contains_key(tag)))
        })
        .await;
    let tags: BTreeSet<String> = inv[repo].keys().cloned().collect();
    assert_eq!(tags, expected, "exactly these tags");
    assert!(
        inv[repo].values().all(|(_, d)| *d == manifest.digest),
        "{inv:#?}"
    );
    let events = api.push_events(step, repo).await;
    let mut per_tag: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        assert_eq!(e["status"], "done", "{e:#}");
        *per_tag
            .entry(e["tag"].as_str().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(
        per_tag,
        expected.iter().map(|t| (t.clone(), 1)).collect(),
        "one stored event per pushed tag"
    );
    let activities = api.push_activities(step, "admin", "outage").await;
    assert_eq!(
        activities,
        expected.iter().map(|t| (t.clone(), 1)).collect(),
        "one push activity per tag"
    );
    assert_eq!(api.total(step, "/events?status=failed").await, 0);
    assert_eq!(api.total(step, "/jobs?state=failed").await, 0);
    drop(registry);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3. 5,000 notifications in a burst
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn burst_of_5000_sqlite() {
    burst(false).await;
}

#[tokio::test]
async fn burst_of_5000_postgres() {
    burst(true).await;
}

const BURST_ENVELOPES: usize = 500;
const BURST_PER_ENVELOPE: usize = 10;
const BURST_IN_FLIGHT: usize = 32;
/// 5,000 events, each a manifest fetch, on a debug build sharing 2 cores.
const BURST_WITHIN: Duration = Duration::from_secs(600);

/// One burst at a time: two at once on a small machine measure the machine.
static BURST: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn burst(postgres: bool) {
    let _one_at_a_time = BURST.lock().await;
    let work = work_dir("burst");
    let db = database(postgres, work.path()).await;
    let server = start_server(work.path(), &db.url, &[]).await;
    let registry = Registry::start(&server, &work.path().join("registry"))
        .await
        .unwrap_or_else(|e| panic!("start docker-registry: {e:#}"));
    let api = Arc::new(Api::bootstrap(&server).await);
    api.create_registry(&registry.addr, None).await;
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("skopeo: {e:#}"));
    let repo = "admin/burst";
    let manifest = seed(&api, &skopeo, &registry.addr, repo, "seed").await;

    let envelopes: Vec<Arc<Value>> = (0..BURST_ENVELOPES)
        .map(|e| {
            let events = (0..BURST_PER_ENVELOPE)
                .map(|i| {
                    let n = e * BURST_PER_ENVELOPE + i;
                    let tag = format!("t-{n:04}");
                    push_event(&format!("burst-{n}"), repo, &tag, &manifest, &registry.addr)
                })
                .collect();
            Arc::new(envelope(events))
        })
        .collect();
    // Every 10th envelope twice: half right behind the first copy (both in flight at
    // once), half at the end (after processing started).
    let mut order: Vec<usize> = Vec::new();
    let mut late = Vec::new();
    for e in 0..BURST_ENVELOPES {
        order.push(e);
        if e % 10 == 3 {
            if e % 20 == 3 {
                order.push(e);
            } else {
                late.push(e);
            }
        }
    }
    order.extend(late);
    let posts = order.len();

    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(BURST_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for e in order {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let api = api.clone();
        let body = envelopes[e].clone();
        tasks.spawn(async move {
            let _permit = permit;
            (e, api.notify(&body).await)
        });
    }
    let mut refused = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (e, status) = done.expect("a POST task");
        if status != StatusCode::ACCEPTED {
            refused.push((e, status));
        }
    }
    let intake = started.elapsed();
    assert!(
        refused.is_empty(),
        "{} of {posts} envelopes refused: {refused:?}",
        refused.len()
    );

    let step = "the burst is processed";
    let total = (BURST_ENVELOPES * BURST_PER_ENVELOPE) as i64;
    let repo_id = poll!(step, BURST_WITHIN, {
        let pending = api.pending(step).await;
        let repos = api.get(step, "/repositories?all=true").await;
        let found = repos
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["full_name"] == repo)
            .cloned();
        let tags = found
            .as_ref()
            .and_then(|r| r["tags_count"].as_i64())
            .unwrap_or_default();
        (
            found
                .filter(|_| pending == 0 && tags == total + 1)
                .map(|r| id_of(step, &r)),
            format!("{pending} pending, {tags} tags"),
        )
    });
    let processed = started.elapsed();
    eprintln!(
        "burst ({}): {posts} POSTs of {BURST_PER_ENVELOPE} events in {intake:?}, all processed after {processed:?}",
        if postgres { "PostgreSQL" } else { "SQLite" }
    );

    let mut expected: BTreeSet<String> = (0..total).map(|n| format!("t-{n:04}")).collect();
    expected.insert("seed".into());
    let tags = api
        .get(step, &format!("/repositories/{repo_id}/tags"))
        .await;
    let tags = tags.as_array().expect("tags");
    let names: BTreeSet<String> = tags
        .iter()
        .map(|t| str_of(step, t, "name").to_owned())
        .collect();
    assert_eq!(tags.len(), names.len(), "no tag twice");
    assert_eq!(names, expected, "exactly the pushed tags");
    assert!(
        tags.iter().all(|t| t["digest"] == manifest.digest.as_str()),
        "every tag points at the pushed manifest"
    );
    let events = api.push_events(step, repo).await;
    assert_eq!(events.len() as i64, total + 1, "one event per tag");
    let ids: BTreeSet<&str> = events.iter().map(|e| str_of(step, e, "event_id")).collect();
    assert_eq!(ids.len(), events.len(), "no event stored twice");
    let not_done: Vec<&Value> = events.iter().filter(|e| e["status"] != "done").collect();
    assert!(not_done.is_empty(), "{not_done:#?}");
    assert_eq!(api.total(step, "/events?status=failed").await, 0);
    assert_eq!(api.total(step, "/jobs?state=failed").await, 0);
    let activities = api.push_activities(step, "admin", "burst").await;
    assert_eq!(activities.len(), expected.len(), "a push activity per tag");
    let twice: Vec<_> = activities.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "tags with more than one activity: {twice:?}"
    );
    // Each processed push was a manifest fetch, reported back as a pull: ignored, so
    // no tag counts as pulled (and no pull event rewrote 5,000 rows).
    api.own_pulls(step, repo, total as usize, BURST_WITHIN)
        .await;
    api.assert_never_pulled(step).await;
    drop(registry);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------
// 4. A sync against a registry that fails half-way
// ---------------------------------------------------------------------------------------

/// The registry behind an HTTP proxy that fails chosen requests of Portcullis's own
/// calls; the catalog is read 2 repositories a page, so 5 repositories take 3 pages.
#[tokio::test]
async fn sync_failing_half_way_deletes_nothing_sqlite() {
    let work = work_dir("sync");
    let db = database(false, work.path()).await;
    let proxy = HttpProxy::bind().await.expect("the registry proxy");
    let server = start_server(
        work.path(),
        &db.url,
        &[("PORTCULLIS_REGISTRY_CATALOG_PAGE_VALUE", "2")],
    )
    .await;
    let registry = Registry::start_as(&server, &work.path().join("registry"), &proxy.addr)
        .await
        .unwrap_or_else(|e| panic!("start docker-registry: {e:#}"));
    proxy.set_upstream(&registry.addr);
    let api = Api::bootstrap(&server).await;
    api.create_registry(&proxy.addr, Some(&registry.addr)).await;
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("skopeo: {e:#}"));
    let image = build_image("faults sync", "v1").await.expect("umoci image");
    let pushes = [
        "r1:v1", "r2:v1", "r3:v1", "r3:v2", "r4:v1", "r4:v2", "r5:v1",
    ];
    for p in pushes {
        let dest = format!("docker://{}/admin/{p}", registry.addr);
        skopeo
            .push(&image.reference, &dest, Creds::User(ADMIN.0, ADMIN.1))
            .await
            .unwrap_or_else(|e| panic!("push {dest}: {e:#}"));
    }
    let before = api
        .wait_for("the pushes show up", |inv| {
            pushes.iter().all(|p| {
                let (repo, tag) = p.split_once(':').unwrap();
                inv.get(&format!("admin/{repo}"))
                    .is_some_and(|t| t.contains_key(tag))
            })
        })
        .await;
    assert_eq!(before.len(), 5, "{before:#?}");

    let sync = || server.subcommand_output(["sync", "--strategy", "update-delete"]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let catalog_requests = |proxy: &HttpProxy| {
        proxy
            .seen()
            .into_iter()
            .filter(|s| s.target.starts_with("/v2/_catalog"))
            .count()
    };

    // Baseline: with nothing failing, the sync reads 3 catalog pages and changes nothing.
    proxy.clear_log();
    let out = sync().await.expect("portcullis sync");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "e2e: 5 repositories in the catalog; added 0, updated 0, deleted 0, skipped 0"
        ),
        "{stdout}"
    );
    assert_eq!(catalog_requests(&proxy), 3, "{:#?}", proxy.seen());
    assert_eq!(api.inventory("after a clean sync").await, before);

    // --- The catalog's second page fails: the whole sync fails, nothing changes ------
    proxy.clear_log();
    proxy.fail_when(|m, t| {
        (m == Method::GET && t.starts_with("/v2/_catalog") && t.contains("last=")).then_some(500)
    });
    let out = sync().await.expect("portcullis sync");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "a sync with a partial catalog must fail\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains("catalog of e2e could not be read"),
        "the failure is named: {stderr}"
    );
    assert!(!stdout.contains("delete"), "{stdout}");
    let injected = proxy.injected();
    assert_eq!(injected.len(), 1, "{injected:#?}");
    assert_eq!(catalog_requests(&proxy), 2, "page 1 read, page 2 failed");
    assert_eq!(
        api.inventory("after the failed catalog").await,
        before,
        "nothing deleted"
    );

    // --- One repository's tag list fails: that repository is left alone --------------
    proxy.clear_log();
    proxy.fail_when(|m, t| {
        (m == Method::GET && t.starts_with("/v2/admin/r3/tags/list")).then_some(500)
    });
    let out = sync().await.expect("portcullis sync");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("skipped e2e: admin/r3"),
        "the skipped repository is named: {stdout}"
    );
    assert!(
        stdout.contains("deleted 0, skipped 1"),
        "nothing deleted: {stdout}"
    );
    assert!(!proxy.injected().is_empty());
    assert_eq!(api.inventory("after the failed tag list").await, before);

    // --- One tag's manifest lookup fails: its repository is left alone ----------------
    proxy.clear_log();
    proxy.fail_when(|m, t| {
        (m == Method::HEAD && t.starts_with("/v2/admin/r4/manifests/v2")).then_some(503)
    });
    let out = sync().await.expect("portcullis sync");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("skipped e2e: admin/r4"),
        "the skipped repository is named: {stdout}"
    );
    assert!(stdout.contains("deleted 0, skipped 1"), "{stdout}");
    assert!(!proxy.injected().is_empty(), "{:#?}", proxy.seen());
    assert_eq!(api.inventory("after the failed lookup").await, before);

    // The syncs' manifest lookups came back as pulls (7 from the first sync alone):
    // none of them counts as a pull of the tag.
    api.own_pulls("after the syncs", "admin/r1", 1, WITHIN)
        .await;
    api.own_pulls("after the syncs", "admin/r4", 2, WITHIN)
        .await;
    api.assert_never_pulled("after the syncs").await;

    proxy.heal();
    drop(registry);
    server.stop().await;
}
