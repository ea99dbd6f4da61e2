//! Several nodes on one PostgreSQL: three `portcullis serve` processes and two
//! `portcullis worker`s on one database, on this machine, with traffic spread across
//! them and one of each SIGKILLed mid-way.
//!
//! What it proves (docs/OPERATIONS.md, "several nodes"):
//!
//! - **No lost event**: registry notification envelopes are POSTed round-robin to the
//!   three serve nodes while one of them is killed; a sender whose node is dead (or
//!   whose request died with it) retries on the next node, as the registry retries, and
//!   some envelopes are delivered twice on purpose. Every event is stored exactly once
//!   and processed.
//! - **No job done twice**: the worker killed holds the event-processing job (its
//!   manifest fetch is held by a paused proxy, so the kill lands mid-job, not by luck).
//!   The surviving worker takes the job over once its lease has lapsed. Every event's
//!   effects exist exactly once: one tag per pushed tag, one `repository.push`
//!   activity per tag, each event applied once (`attempts` 1); only the taken-over job
//!   ran twice, and no job failed.
//! - **No session lost**: a web session opened on the serve node that is then killed
//!   works on the other two, its CSRF token included (signing out on one node ends it
//!   on the others).
//! - **Membership changes apply everywhere within a second**: with the authorization
//!   cache at 60 s (so only the cross-node `NOTIFY` can explain a fresh answer), a user
//!   added to a team through one node is granted `pull` of the team's private
//!   namespace by every other node's `/v2/token` within 1 s of the write, before and
//!   after the kills. A control shows the caches really hold: a membership written into
//!   the database behind the nodes' backs is not seen until an announcement clears them.
//!
//! A second test freezes (SIGSTOP) instead of killing the worker that holds the job,
//! until the other worker has taken it over and applied the event, then wakes it: the
//! event must still be applied once. (It was not: see `mark_event` in
//! crates/storage/src/inventory.rs.)
//!
//! Nothing waits a fixed time: each step polls with a deadline. All children (nodes,
//! workers, registry) are killed when the test ends, panics included: `Server`,
//! `Process` and `Registry` kill their process on drop, and [`Cluster`] owns them all
//! (the database is dropped after them).

#![allow(clippy::unwrap_used)]

use portcullis_testkit::images::build_image;
use portcullis_testkit::postgres::TestDatabase;
use portcullis_testkit::proxy::TcpProxy;
use portcullis_testkit::registry::{Registry, form_encode, jwt_claims};
use portcullis_testkit::server::{Process, Server};
use portcullis_testkit::skopeo::{Creds, Skopeo};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

mod common;
use common::{
    Auth, Http, Manifest, browser, csrf_of, env_vars, id_of, poll, push_event, serve, sign_in,
    str_of,
};

const ADMIN: (&str, &str) = ("admin", "admin-password-1");
/// Owner of the team `vault` and its private namespace.
const ALICE: (&str, &str) = ("alice", "alice-password-1");
/// Added to `vault` through the API before the kills.
const BOB: (&str, &str) = ("bob", "bob-password-1");
/// Added to `vault` directly in the database (the control).
const CAROL: (&str, &str) = ("carol", "carol-password-1");
/// Added to `vault` through the API after the kills.
const DAVE: (&str, &str) = ("dave", "dave-password-1");
const TEAM: &str = "vault";
/// A repository of the private namespace: pulling it needs membership.
const PRIVATE_REPO: &str = "vault/app";
/// Where the notifications' tags go (the admin's personal namespace).
const REPO: &str = "admin/app";

const NOTIFY_SECRET: &str = "multinode-e2e-secret";
const EVENTS_V1: &str = "application/vnd.docker.distribution.events.v1+json";
/// Short, so the takeover of the killed worker's job needs no 30 s wait.
const LEASE_SECS: &str = "3";
/// Far longer than the test's membership bound: a node that answers a fresh grant
/// within a second can only have been told by the other node's announcement.
const AUTHZ_CACHE_SECS: &str = "60";
/// The correctness bound of the issue: a membership change on one node applies on
/// the others within a second.
const MEMBERSHIP_BOUND: Duration = Duration::from_secs(1);
/// How long an asynchronous outcome may take before the test fails.
const WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// The sender named in the push events (user agent, source).
const AGENT: &str = "multinode-e2e";

/// Serve nodes. Index [`KILLED_NODE`] is the one killed (and where the web session is
/// opened); node 0 gets the registry's own notifications and stays up.
const NODES: usize = 3;
const KILLED_NODE: usize = 1;
/// Envelopes sent, in three groups of a third: before the kills, while they happen,
/// after them.
const ENVELOPES: usize = 60;
const EVENTS_PER_ENVELOPE: usize = 5;
/// Concurrent senders (the registry posts from several goroutines too).
const SENDERS: usize = 6;
/// Every `DUPLICATE_EVERY`th envelope is delivered a second time, to another node: a
/// registry that lost the first answer sends it again.
const DUPLICATE_EVERY: usize = 7;

// ---------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------

/// Every process of the test. Fields drop in order: the processes are killed before
/// the database is dropped and the work folder removed.
struct Cluster {
    /// `None` once killed.
    nodes: Vec<Option<Server>>,
    /// `None` once killed.
    workers: Vec<Option<Process>>,
    registry: Registry,
    /// Between Portcullis (workers' manifest fetches) and the registry.
    proxy: TcpProxy,
    /// Node URLs, kept after a node is killed (senders still try the dead one).
    urls: Vec<String>,
    db: TestDatabase,
    _work: tempfile::TempDir,
}

/// The environment every node and worker shares: one database, one data folder (so
/// one token signing key and certificate, one `webhooks.key`), one notification
/// secret; no embedded worker in `serve` (the two `worker`s do all jobs).
fn shared_env(data_dir: &Path, database_url: &str) -> BTreeMap<String, String> {
    env_vars(&[
        ("PORTCULLIS_SERVER_LISTEN", "127.0.0.1:0"),
        ("PORTCULLIS_DATA_DIR", &data_dir.display().to_string()),
        ("PORTCULLIS_DATABASE_URL", database_url),
        ("PORTCULLIS_MACHINE_FQDN_VALUE", "portcullis.test"),
        ("PORTCULLIS_NOTIFICATIONS_SECRET", NOTIFY_SECRET),
        ("PORTCULLIS_BACKGROUND_EMBEDDED", "false"),
        ("PORTCULLIS_BACKGROUND_LEASE_SECONDS", LEASE_SECS),
        // One job at a time per worker process: the worker killed mid-job holds exactly
        // that job, so exactly one job is taken over (the accounting below is exact).
        ("PORTCULLIS_BACKGROUND_WORKERS", "1"),
        // No catalog sync behind the test's back.
        ("PORTCULLIS_BACKGROUND_SYNC_ENABLED", "false"),
        (
            "PORTCULLIS_SECURITY_POLICY_AUTHORIZATION_CACHE_SECONDS",
            AUTHZ_CACHE_SECS,
        ),
        ("PORTCULLIS_SECURITY_POLICY_PASSWORD_CHECKS_PER_MINUTE", "0"),
        ("PORTCULLIS_LOG", "warn"),
    ])
}

async fn start_node(env: &BTreeMap<String, String>, work: &Path) -> Server {
    std::fs::create_dir_all(work).unwrap();
    serve(env.clone(), work).await
}

/// One cluster at a time: two at once (the tests of this file run in parallel) would
/// share 2 cores among 12 processes, and a worker starved past its 3 s lease is taken
/// over, which the accounting here counts as a fault.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the database, the nodes, the workers, the proxy and the registry.
async fn start_cluster() -> Cluster {
    let db = portcullis_testkit::postgres::test_database()
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL test database: {e:#} (see scripts/test.sh)"));
    let work = tempfile::Builder::new()
        .prefix("portcullis-multinode-")
        .tempdir()
        .expect("creating the work folder");
    let env = shared_env(&work.path().join("data"), &db.url);
    // All three at once on the empty database and the empty shared data folder: sqlx
    // serialises the migrations with an advisory lock, and the signing key, the
    // notification secret and webhooks.key are generated by one of them under the
    // folder's lock (or linked into place) and read by the others, so the whole cluster
    // signs with one key.
    let dirs: Vec<_> = (0..NODES)
        .map(|n| work.path().join(format!("node-{n}")))
        .collect();
    let (first, second, third) = tokio::join!(
        start_node(&env, &dirs[0]),
        start_node(&env, &dirs[1]),
        start_node(&env, &dirs[2])
    );
    let nodes = vec![Some(first), Some(second), Some(third)];
    let urls: Vec<String> = nodes.iter().flatten().map(|n| n.url.clone()).collect();
    let http = Http::new();
    for url in &urls {
        let ready = http
            .client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}/readyz: {e}"));
        assert_eq!(ready.status(), StatusCode::OK, "{url} is ready");
    }
    // Workers started through node 0's handle: the same environment and data folder.
    let node0 = nodes[0].as_ref().unwrap();
    let workers = (1..=2)
        .map(|n| {
            Some(
                node0
                    .spawn(["worker"], &format!("worker-{n}"))
                    .unwrap_or_else(|e| panic!("worker {n}: {e:#}")),
            )
        })
        .collect();
    // Portcullis knows the registry by the proxy's address (its `hostname`, what the
    // workers fetch manifests from); clients and notifications use the registry's own
    // address (`external_hostname`). Its token realm and notification endpoint are
    // node 0, which stays up.
    let proxy = TcpProxy::bind().await.expect("the registry proxy");
    let registry = Registry::start_as(node0, &work.path().join("registry"), &proxy.addr)
        .await
        .unwrap_or_else(|e| panic!("start docker-registry: {e:#}"));
    proxy.set_upstream(&registry.addr);
    Cluster {
        nodes,
        workers,
        registry,
        proxy,
        urls,
        db,
        _work: work,
    }
}

// ---------------------------------------------------------------------------------------
// API helpers
// ---------------------------------------------------------------------------------------

/// The admin's API client; every call names the node it goes to.
struct Admin {
    http: Http,
    token: String,
}

impl Admin {
    fn auth(&self) -> Auth<'_> {
        Auth::Portus(ADMIN.0, &self.token)
    }

    async fn get(&self, base: &str, step: &str, path: &str) -> Value {
        self.http
            .get(
                step,
                &format!("{base}/api/v1{path}"),
                self.auth(),
                StatusCode::OK,
            )
            .await
    }

    async fn post(&self, base: &str, step: &str, path: &str, body: Value) -> Value {
        self.http
            .post_json(
                step,
                &format!("{base}/api/v1{path}"),
                self.auth(),
                body,
                StatusCode::CREATED,
            )
            .await
    }

    /// Every item of a listing (`all=true`).
    async fn all(&self, base: &str, step: &str, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let v = self.get(base, step, &format!("{path}{sep}all=true")).await;
        v.as_array()
            .cloned()
            .unwrap_or_else(|| panic!("step `{step}`: not a list: {v}"))
    }

    async fn pending(&self, base: &str, step: &str) -> usize {
        self.all(base, step, "/events?status=pending").await.len()
    }
}

/// The `process_events` job once a worker runs it with its manifest fetch held by the
/// proxy: the job, the index of the worker holding it, and both workers' pids.
async fn job_held_at_the_proxy(c: &Cluster, admin: &Admin, step: &str) -> (Value, usize, Vec<u32>) {
    let job = poll!(step, WITHIN, {
        let running = admin
            .all(&c.urls[0], step, "/jobs?state=running&kind=process_events")
            .await;
        let held = c.proxy.held();
        let state = format!("held {held}, running: {running:?}");
        (running.into_iter().next().filter(|_| held > 0), state)
    });
    let holder = str_of(step, &job, "worker");
    let pids: Vec<u32> = c
        .workers
        .iter()
        .map(|w| w.as_ref().unwrap().pid().unwrap())
        .collect();
    let index = pids
        .iter()
        .position(|pid| holder.ends_with(&format!(":{pid}")))
        .unwrap_or_else(|| panic!("job {job:#} is held by none of the workers {pids:?}"));
    (job, index, pids)
}

/// Whether `/v2/token` on `base` grants `user` a pull of [`PRIVATE_REPO`].
async fn may_pull(http: &Http, base: &str, service: &str, user: (&str, &str)) -> bool {
    let url = format!(
        "{base}/v2/token?{}",
        form_encode(&[
            ("service", service),
            ("scope", &format!("repository:{PRIVATE_REPO}:pull")),
        ])
    );
    let step = format!("token for {} on {base}", user.0);
    let t = http
        .get(&step, &url, Auth::Basic(user.0, user.1), StatusCode::OK)
        .await;
    let claims =
        jwt_claims(str_of(&step, &t, "token")).unwrap_or_else(|e| panic!("step `{step}`: {e:#}"));
    claims["access"].as_array().into_iter().flatten().any(|a| {
        a["name"] == PRIVATE_REPO
            && a["actions"]
                .as_array()
                .is_some_and(|acts| acts.iter().any(|x| x == "pull"))
    })
}

/// Adds `user` to [`TEAM`] through node `writer` (as the team's owner), then measures
/// how soon every node in `readers` grants the pull. Each node's cache is warmed with
/// the refusal first, so a reader that answers "pull" was told to forget it.
async fn membership_applies_everywhere(
    c: &Cluster,
    team_id: i64,
    user: (&str, &str),
    writer: usize,
    readers: &[usize],
) -> Vec<(usize, Duration)> {
    let http = Http::new();
    let service = &c.registry.service;
    for &n in readers.iter().chain([&writer]) {
        assert!(
            !may_pull(&http, &c.urls[n], service, user).await,
            "{} is not a member yet: node {n} must refuse",
            user.0
        );
    }
    let sent = Instant::now();
    http.post_json(
        &format!("add {} to the team on node {writer}", user.0),
        &format!("{}/api/v1/teams/{team_id}/members", c.urls[writer]),
        Auth::Basic(ALICE.0, ALICE.1),
        json!({"user": user.0, "role": "viewer"}),
        StatusCode::CREATED,
    )
    .await;
    let written = Instant::now();
    assert!(
        may_pull(&http, &c.urls[writer], service, user).await,
        "the writing node {writer} applies its own write at once"
    );
    // Poll every reader in turn; note when each first grants the pull. The deadline is
    // longer than the bound only so that a failure reports how long it really took.
    let mut seen: BTreeMap<usize, Duration> = BTreeMap::new();
    let deadline = written + Duration::from_secs(10);
    while seen.len() < readers.len() && Instant::now() < deadline {
        for &n in readers {
            if !seen.contains_key(&n) && may_pull(&http, &c.urls[n], service, user).await {
                seen.insert(n, written.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "membership of {} written on node {writer} (request took {:?}); granted by {seen:?}",
        user.0,
        written - sent
    );
    for &n in readers {
        let took = seen
            .get(&n)
            .unwrap_or_else(|| panic!("node {n} never granted {} the pull", user.0));
        assert!(
            *took <= MEMBERSHIP_BOUND,
            "node {n} granted {} the pull {took:?} after the write on node {writer}: more than {MEMBERSHIP_BOUND:?}",
            user.0
        );
    }
    seen.into_iter().collect()
}

// ---------------------------------------------------------------------------------------
// The web UI, as a browser without JavaScript uses it
// ---------------------------------------------------------------------------------------

/// The profile page on `base` with `cookie`: `Ok(body)` when signed in as `user`,
/// `Err(status and Location)` otherwise.
async fn profile(base: &str, cookie: &str, user: &str) -> Result<String, String> {
    let r = browser()
        .get(format!("{base}/users/edit"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}/users/edit: {e}"));
    let status = r.status();
    let location = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = r.text().await.unwrap();
    if status == StatusCode::OK && body.contains(&format!("title=\"Your profile\">{user}</a>")) {
        Ok(body)
    } else {
        Err(format!("{status} (Location: {location:?})"))
    }
}

// ---------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------

fn event_id(envelope: usize, i: usize) -> String {
    format!("multinode-{envelope}-{i}")
}

fn tag_name(envelope: usize, i: usize) -> String {
    format!("t-{envelope:03}-{i}")
}

/// Envelope `e`: its events push tags `tag_name(e, i)` of the seed's manifest.
fn envelope(e: usize, m: &Manifest, host: &str) -> String {
    let events: Vec<Value> = (0..EVENTS_PER_ENVELOPE)
        .map(|i| {
            push_event(
                &event_id(e, i),
                REPO,
                &tag_name(e, i),
                m,
                host,
                ADMIN.0,
                AGENT,
            )
        })
        .collect();
    json!({ "events": events }).to_string()
}

/// One delivery of one envelope: which node took it, and the refusals before.
#[derive(Debug)]
struct Delivery {
    envelope: usize,
    accepted_by: usize,
    /// (node, what went wrong): a connection error or a status other than 202.
    failures: Vec<(usize, String)>,
}

/// Posts `body` to node `first`, and on a connection error or any other status than
/// 202 to the next node, and so on (the registry retries; a load balancer would move
/// on to a live node).
async fn deliver(
    http: &Http,
    urls: &[String],
    envelope: usize,
    first: usize,
    body: &str,
) -> Delivery {
    let mut failures = Vec::new();
    let deadline = Instant::now() + WITHIN;
    for attempt in 0.. {
        let node = (first + attempt) % urls.len();
        let sent = http
            .client
            .post(format!("{}/v2/webhooks/events", urls[node]))
            .bearer_auth(NOTIFY_SECRET)
            .header("Content-Type", EVENTS_V1)
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == StatusCode::ACCEPTED => {
                return Delivery {
                    envelope,
                    accepted_by: node,
                    failures,
                };
            }
            Ok(r) => failures.push((node, format!("status {}", r.status()))),
            Err(e) => failures.push((node, format!("{e}"))),
        }
        assert!(
            Instant::now() < deadline,
            "envelope {envelope} not accepted by any node within {WITHIN:?}: {failures:?}"
        );
        if attempt % urls.len() == urls.len() - 1 {
            // Every node refused this round: wait a little before the next.
            tokio::time::sleep(POLL).await;
        }
    }
    unreachable!()
}

/// The senders' progress, shared with the test.
struct Traffic {
    /// The next envelope to send.
    next: AtomicUsize,
    /// Envelopes accepted (first deliveries).
    accepted: AtomicUsize,
    deliveries: Mutex<Vec<Delivery>>,
}

/// How far the test is: senders of the second third wait for `Paused`, of the last
/// third for `Killed`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Before,
    Paused,
    Killed,
}

fn phase_of(envelope: usize) -> Phase {
    match envelope * 3 / ENVELOPES {
        0 => Phase::Before,
        1 => Phase::Paused,
        _ => Phase::Killed,
    }
}

async fn sender(
    traffic: Arc<Traffic>,
    bodies: Arc<Vec<String>>,
    urls: Vec<String>,
    mut phase: watch::Receiver<Phase>,
) {
    let http = Http::new();
    loop {
        let e = traffic.next.fetch_add(1, Ordering::SeqCst);
        if e >= ENVELOPES {
            return;
        }
        let needed = phase_of(e);
        phase
            .wait_for(|p| *p >= needed)
            .await
            .expect("the test is gone");
        // Round-robin: envelope e goes to node e % 3 first.
        let first = e % NODES;
        let d = deliver(&http, &urls, e, first, &bodies[e]).await;
        let accepted_by = d.accepted_by;
        traffic.deliveries.lock().unwrap().push(d);
        traffic.accepted.fetch_add(1, Ordering::SeqCst);
        if e.is_multiple_of(DUPLICATE_EVERY) {
            // The same envelope again, to another node.
            let again = deliver(&http, &urls, e, accepted_by + 1, &bodies[e]).await;
            traffic.deliveries.lock().unwrap().push(again);
        }
    }
}

/// What the set-up made.
struct Setup {
    admin: Admin,
    manifest: Manifest,
    team_id: i64,
    user_ids: BTreeMap<&'static str, i64>,
}

/// Spread across the nodes: the admin bootstrapped on node 0, the registry created on
/// node 1, users on each, alice's team and its private namespace; then a real push
/// through the registry, processed by a worker, whose manifest the test's events
/// point at.
async fn set_up(c: &Cluster) -> Setup {
    let urls = &c.urls;
    let (a, b, cc) = (&urls[0], &urls[1], &urls[2]);
    let http = Http::new();
    let admin = Admin {
        token: http.bootstrap(a, ADMIN).await,
        http,
    };
    admin
        .post(
            b,
            "create the registry on node 1",
            "/registries",
            json!({"registry": {"name": "multinode", "hostname": c.proxy.addr,
                "use_ssl": false, "external_hostname": c.registry.addr}}),
        )
        .await;
    let mut user_ids = BTreeMap::new();
    for (i, user) in [ALICE, BOB, CAROL, DAVE].into_iter().enumerate() {
        let created = admin
            .post(
                &urls[i % NODES],
                &format!("create {}", user.0),
                "/users",
                json!({"user": {"username": user.0, "email": format!("{}@example.test", user.0),
                    "password": user.1}}),
            )
            .await;
        user_ids.insert(user.0, id_of("create user", &created));
    }
    let team = admin
        .http
        .post_json(
            "alice creates the team on node 2",
            &format!("{cc}/api/v1/teams"),
            Auth::Basic(ALICE.0, ALICE.1),
            json!({"name": TEAM, "description": "private things"}),
            StatusCode::CREATED,
        )
        .await;
    let team_id = id_of("team", &team);
    let ns = admin
        .http
        .post_json(
            "alice creates the namespace on node 0",
            &format!("{a}/api/v1/namespaces"),
            Auth::Basic(ALICE.0, ALICE.1),
            json!({"name": TEAM, "team": TEAM}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(ns["visibility"], "private", "{ns}");

    // A real push, so the registry holds a manifest the events can point at.
    let skopeo = Skopeo::new().unwrap_or_else(|e| panic!("skopeo: {e:#}"));
    let image = build_image("multinode", "seed").await.expect("umoci image");
    let dest = format!("docker://{}/{REPO}:seed", c.registry.addr);
    skopeo
        .push(&image.reference, &dest, Creds::User(ADMIN.0, ADMIN.1))
        .await
        .unwrap_or_else(|e| panic!("push {dest}: {e:#}"));
    let step = "the seed push is processed by a worker";
    let seed = poll!(step, WITHIN, {
        let events = admin
            .all(
                cc,
                step,
                &format!(
                    "/events?action=push&{}",
                    form_encode(&[("repository", REPO)])
                ),
            )
            .await;
        let seed = events
            .into_iter()
            .find(|e| e["tag"] == "seed" && e["status"] == "done");
        let pending = admin.pending(cc, step).await;
        let state = format!("seed event {seed:?}, {pending} pending");
        (seed.filter(|_| pending == 0), state)
    });
    let manifest = Manifest {
        digest: str_of(step, &seed, "digest").to_owned(),
        media_type: str_of(step, &seed, "media_type").to_owned(),
        size: seed["data"]["target"]["size"].as_i64().unwrap(),
    };

    Setup {
        admin,
        manifest,
        team_id,
        user_ids,
    }
}

// ---------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_two_workers_one_of_each_killed() {
    let _alone = ONE_CLUSTER.lock().await;
    let started = Instant::now();
    let mut c = start_cluster().await;
    let urls = c.urls.clone();
    let (a, b, cc) = (urls[0].clone(), urls[KILLED_NODE].clone(), urls[2].clone());

    let Setup {
        admin,
        manifest,
        team_id,
        user_ids,
    } = set_up(&c).await;

    // --- Membership, all three nodes up ---------------------------------------------
    // The control first: carol's refusal is cached on every node, then her membership
    // is written into the database directly (no service write, so no announcement).
    // Every node still refuses: the cache holds, and only an announcement explains a
    // node that changes its answer within the bound below.
    let service = c.registry.service.clone();
    for url in &urls {
        assert!(!may_pull(&admin.http, url, &service, CAROL).await);
    }
    let inserted =
        c.db.execute(&format!(
            "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at) \
             VALUES ({team_id}, {}, 0, 0, 0)",
            user_ids[CAROL.0]
        ))
        .await
        .expect("carol's membership, behind the nodes' backs");
    assert_eq!(inserted, 1);
    for (n, url) in urls.iter().enumerate() {
        assert!(
            !may_pull(&admin.http, url, &service, CAROL).await,
            "node {n} answers from its cache (60 s): it must not see a membership nobody announced"
        );
    }
    // Bob is added through node 2; nodes 0 and 1 must grant him the pull within 1 s.
    let round1 = membership_applies_everywhere(&c, team_id, BOB, 2, &[0, KILLED_NODE]).await;
    // That announcement cleared every node's cache: carol's membership shows too.
    for (n, url) in urls.iter().enumerate() {
        assert!(
            may_pull(&admin.http, url, &service, CAROL).await,
            "node {n}: the announcement cleared the whole cache"
        );
    }

    // --- A web session on the node that will be killed ------------------------------
    let session = sign_in(&b, ALICE).await;
    profile(&b, &session, ALICE.0)
        .await
        .unwrap_or_else(|e| panic!("signed in on node {KILLED_NODE}: {e}"));

    // --- Traffic, and the kills in the middle of it -----------------------------------
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..ENVELOPES)
            .map(|e| envelope(e, &manifest, &c.registry.addr))
            .collect(),
    );
    let traffic = Arc::new(Traffic {
        next: AtomicUsize::new(0),
        accepted: AtomicUsize::new(0),
        deliveries: Mutex::new(Vec::new()),
    });
    let (phase, phase_rx) = watch::channel(Phase::Before);
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..SENDERS {
        senders.spawn(sender(
            traffic.clone(),
            bodies.clone(),
            urls.clone(),
            phase_rx.clone(),
        ));
    }
    let first_third = ENVELOPES / 3;
    poll!("the first third is accepted", WITHIN, {
        let n = traffic.accepted.load(Ordering::SeqCst);
        ((n >= first_third).then_some(()), format!("{n} accepted"))
    });

    // From here on the workers' manifest fetches hang in the proxy; the second third
    // of the traffic flows (intake does not need the registry).
    c.proxy.pause();
    phase.send(Phase::Paused).unwrap();
    // Node 1 dies during (or right after: the POSTs take milliseconds) the second
    // third. Whether a request is in flight at the kill is chance; one committed whose
    // answer was lost is what the deliberate duplicates stand for. The last third
    // starts after the kill, so a third of it goes to the dead node first, for sure.
    poll!("the second third is under way", WITHIN, {
        let n = traffic.accepted.load(Ordering::SeqCst);
        (
            (n >= first_third + 3).then_some(()),
            format!("{n} accepted"),
        )
    });
    let killed_node = c.nodes[KILLED_NODE].take().unwrap();
    let killed_node_pid = killed_node.pid();
    killed_node.stop().await; // SIGKILL, and wait for it to be gone
    let node_killed_at = traffic.accepted.load(Ordering::SeqCst);

    // The event-processing job is running with its manifest fetch held: kill the
    // worker that holds it.
    let step = "a worker holds the job, its manifest fetch held by the proxy";
    let (job, killed_worker, pids) = job_held_at_the_proxy(&c, &admin, step).await;
    let job_id = id_of(step, &job);
    let survivor_pid = pids[1 - killed_worker];
    let status = c.workers[killed_worker]
        .take()
        .unwrap()
        .kill()
        .await
        .expect("SIGKILL the worker");
    assert!(!status.success(), "{status}");
    let attempts_before = job["attempts"].as_i64().unwrap();
    // Let the registry path through again; the dead worker's job keeps its lease
    // until it lapses, then the survivor takes it over.
    c.proxy.resume();
    phase.send(Phase::Killed).unwrap();
    while let Some(done) = senders.join_next().await {
        done.expect("a sender");
    }
    let deliveries = std::mem::take(&mut *traffic.deliveries.lock().unwrap());
    eprintln!(
        "node {KILLED_NODE} (pid {killed_node_pid:?}) killed after {node_killed_at} envelopes; \
         worker {} (pid {}) killed holding job {job_id}",
        killed_worker + 1,
        pids[killed_worker]
    );

    // --- The traffic's own bookkeeping --------------------------------------------------
    let firsts: BTreeSet<usize> = deliveries.iter().map(|d| d.envelope).collect();
    assert_eq!(firsts.len(), ENVELOPES, "every envelope was accepted");
    let duplicates = deliveries.len() - ENVELOPES;
    assert_eq!(duplicates, ENVELOPES.div_ceil(DUPLICATE_EVERY));
    let mut per_node = [0usize; NODES];
    for d in &deliveries {
        per_node[d.accepted_by] += 1;
    }
    assert!(
        per_node.iter().all(|n| *n > 0),
        "traffic went to every node: {per_node:?}"
    );
    let failures: Vec<&(usize, String)> = deliveries.iter().flat_map(|d| &d.failures).collect();
    assert!(
        failures.iter().all(|(node, _)| *node == KILLED_NODE),
        "only the killed node may fail a delivery: {failures:#?}"
    );
    assert!(
        !failures.is_empty(),
        "deliveries to the dead node were retried elsewhere: none was tried"
    );
    let after_kill: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| phase_of(d.envelope) == Phase::Killed)
        .collect();
    assert!(
        after_kill.iter().all(|d| d.accepted_by != KILLED_NODE),
        "nothing was accepted by a dead node"
    );
    eprintln!(
        "{} deliveries ({duplicates} duplicates) accepted per node {per_node:?}; {} refused by the dead node",
        deliveries.len(),
        failures.len()
    );

    // --- Everything is processed: exactly once --------------------------------------
    let step = "the killed worker's job is taken over and everything processed";
    let expected_tags: BTreeSet<String> = (0..ENVELOPES)
        .flat_map(|e| (0..EVENTS_PER_ENVELOPE).map(move |i| tag_name(e, i)))
        .chain(["seed".to_owned()])
        .collect();
    let repo_id = poll!(step, WITHIN, {
        let pending = admin.pending(&a, step).await;
        let job = admin.get(&cc, step, &format!("/jobs/{job_id}")).await;
        let repos = admin.all(&a, step, "/repositories").await;
        let repo = repos.iter().find(|r| r["full_name"] == REPO);
        let tags = repo.and_then(|r| r["tags_count"].as_i64()).unwrap_or(0);
        let ready = pending == 0 && job["state"] == "done" && tags as usize >= expected_tags.len();
        (
            repo.filter(|_| ready).map(|r| id_of(step, r)),
            format!("{pending} pending, {tags} tags, job {job}"),
        )
    });
    let took_over = admin.get(&cc, step, &format!("/jobs/{job_id}")).await;
    assert_eq!(
        took_over["attempts"].as_i64(),
        Some(attempts_before + 1),
        "one more attempt: the survivor's {took_over:#}"
    );
    assert!(
        str_of(step, &took_over, "worker").ends_with(&format!(":{survivor_pid}")),
        "done by the surviving worker (pid {survivor_pid}): {took_over:#}"
    );

    // No lost event, none stored twice, each applied once.
    let events = admin
        .all(
            &a,
            step,
            &format!(
                "/events?action=push&{}",
                form_encode(&[("repository", REPO)])
            ),
        )
        .await;
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["event_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("multinode-"))
        })
        .collect();
    let ids: BTreeSet<&str> = ours.iter().map(|e| str_of(step, e, "event_id")).collect();
    let expected_ids: BTreeSet<String> = (0..ENVELOPES)
        .flat_map(|e| (0..EVENTS_PER_ENVELOPE).map(move |i| event_id(e, i)))
        .collect();
    assert_eq!(ours.len(), ids.len(), "no event stored twice");
    assert_eq!(
        ids,
        expected_ids.iter().map(String::as_str).collect(),
        "every event sent is stored"
    );
    let not_once: Vec<&&Value> = ours
        .iter()
        .filter(|e| e["status"] != "done" || e["attempts"] != 1)
        .collect();
    assert!(
        not_once.is_empty(),
        "every event done, applied once (attempts 1): {not_once:#?}"
    );
    let tags = admin
        .get(&cc, step, &format!("/repositories/{repo_id}/tags"))
        .await;
    let tags = tags.as_array().unwrap();
    let names: BTreeSet<String> = tags
        .iter()
        .map(|t| str_of(step, t, "name").to_owned())
        .collect();
    assert_eq!(tags.len(), names.len(), "no tag twice");
    assert_eq!(names, expected_tags, "exactly the pushed tags");
    assert!(
        tags.iter().all(|t| t["digest"] == manifest.digest.as_str()),
        "every tag points at the pushed manifest"
    );
    let activities = admin.all(&a, step, "/activities").await;
    let mut pushes: BTreeMap<String, usize> = BTreeMap::new();
    for act in &activities {
        let p = &act["parameters"];
        if act["key"] == "repository.push"
            && p["namespace_name"] == "admin"
            && p["repository_name"] == "app"
        {
            *pushes
                .entry(p["tag_name"].as_str().unwrap_or_default().to_owned())
                .or_insert(0) += 1;
        }
    }
    assert_eq!(
        pushes,
        expected_tags.iter().map(|t| (t.clone(), 1)).collect(),
        "one push activity per tag"
    );
    // The queue: nothing failed or left behind; only the killed worker's job ran twice.
    let jobs = admin.all(&a, step, "/jobs").await;
    let unfinished: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["kind"] == "process_events" && j["state"] != "done")
        .collect();
    assert!(unfinished.is_empty(), "{unfinished:#?}");
    let failed: Vec<&Value> = jobs
        .iter()
        .filter(|j| j["state"] == "failed" || j["state"] == "running")
        .collect();
    assert!(failed.is_empty(), "no job failed or stuck: {failed:#?}");
    let rerun: Vec<i64> = jobs
        .iter()
        .filter(|j| j["attempts"].as_i64().unwrap_or_default() > 1)
        .map(|j| id_of(step, j))
        .collect();
    assert_eq!(
        rerun,
        [job_id],
        "only the killed worker's job ran again: {jobs:#?}"
    );

    // --- The session opened on the dead node ---------------------------------------
    for (n, url) in [(0, &a), (2, &cc)] {
        profile(url, &session, ALICE.0)
            .await
            .unwrap_or_else(|e| panic!("the session from node {KILLED_NODE} on node {n}: {e}"));
    }
    // Its CSRF token works on another node than the page's: sign out on node 2 with
    // the token of a page node 0 rendered; node 0 then sends the cookie to sign-in.
    let page = profile(&a, &session, ALICE.0).await.unwrap();
    let out = browser()
        .post(format!("{cc}/users/sign_out"))
        .header(reqwest::header::COOKIE, &session)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form_encode(&[("csrf", &csrf_of(&page))]))
        .send()
        .await
        .expect("POST /users/sign_out");
    assert_eq!(out.status(), StatusCode::SEE_OTHER, "signed out on node 2");
    let ended = profile(&a, &session, ALICE.0).await;
    assert!(
        ended.as_ref().is_err_and(|e| e.contains("/users/sign_in")),
        "the session ended on node 0 too: {ended:?}"
    );

    // --- Membership again, with one node and one worker gone -------------------------
    let round2 = membership_applies_everywhere(&c, team_id, DAVE, 0, &[2]).await;

    for url in [&a, &cc] {
        let ready = admin
            .http
            .client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "{url} still ready");
    }
    eprintln!(
        "multinode: membership applied after {round1:?} and {round2:?}; whole test {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// A worker that stalls past its lease
// ---------------------------------------------------------------------------------------

/// Sends `signal` (`STOP`, `CONT`) to `pid` with kill(1).
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid}: {status}");
}

/// A worker that is not dead but frozen (SIGSTOP: a paused VM, a process starved of
/// CPU, a stop-the-world pause) while it holds the event-processing job: its lease
/// lapses, the other worker takes the job over and applies the event. Then the frozen
/// worker wakes up and finishes what it had started. Its result is refused (the
/// completion is guarded by worker and attempt), and its effects must be too: the
/// event stays applied once, with one activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_frozen_past_its_lease_applies_nothing_twice() {
    let _alone = ONE_CLUSTER.lock().await;
    let c = start_cluster().await;
    let Setup {
        admin, manifest, ..
    } = set_up(&c).await;
    let a = c.urls[0].clone();
    let step = "a worker holds the job, its manifest fetch held by the proxy";
    c.proxy.pause();
    let frozen_push = push_event(
        "frozen-0",
        REPO,
        "frozen",
        &manifest,
        &c.registry.addr,
        ADMIN.0,
        AGENT,
    );
    let body = json!({ "events": [frozen_push] }).to_string();
    let d = deliver(&admin.http, &c.urls, 0, 0, &body).await;
    assert!(d.failures.is_empty(), "{d:?}");
    let (job, frozen, pids) = job_held_at_the_proxy(&c, &admin, step).await;
    let job_id = id_of(step, &job);
    let (frozen_pid, survivor_pid) = (pids[frozen], pids[1 - frozen]);

    // Freeze the holder, then let its fetch through: the answer waits in its socket.
    signal(frozen_pid, "STOP");
    c.proxy.resume();
    let step = "the other worker takes the job over and applies the event";
    let event = poll!(step, WITHIN, {
        let job = admin.get(&a, step, &format!("/jobs/{job_id}")).await;
        let events = admin.all(&a, step, "/events?action=push").await;
        let event = events.into_iter().find(|e| e["event_id"] == "frozen-0");
        let done = job["state"] == "done"
            && job["worker"]
                .as_str()
                .is_some_and(|w| w.ends_with(&format!(":{survivor_pid}")));
        let state = format!("job {job}, event {event:?}");
        (event.filter(|e| done && e["status"] == "done"), state)
    });
    assert_eq!(event["attempts"], 1, "applied once so far: {event:#}");

    // Wake the frozen worker; wait until it has finished its stale run (its result is
    // refused, and it says so in its log).
    signal(frozen_pid, "CONT");
    let step = "the woken worker finishes its stale run";
    poll!(step, WITHIN, {
        let log = c.workers[frozen].as_ref().unwrap().log();
        (
            log.contains("job result not recorded").then_some(()),
            format!("worker log: {log}"),
        )
    });
    let events = admin.all(&a, step, "/events?action=push").await;
    let event = events
        .iter()
        .find(|e| e["event_id"] == "frozen-0")
        .expect("the event");
    let activities = admin.all(&a, step, "/activities").await;
    let pushes = activities
        .iter()
        .filter(|act| act["key"] == "repository.push" && act["parameters"]["tag_name"] == "frozen")
        .count();
    assert_eq!(
        (event["attempts"].as_i64(), pushes),
        (Some(1), 1),
        "the event is applied once, with one push activity, after the frozen worker woke up: {event:#}"
    );
    // Nothing else is left running or failed.
    let stuck: Vec<Value> = admin
        .all(&a, step, "/jobs")
        .await
        .into_iter()
        .filter(|j| j["state"] == "failed" || j["state"] == "running")
        .collect();
    assert!(stuck.is_empty(), "{stuck:#?}");
    // (Had a step above failed while the worker was stopped, the cluster's SIGKILL on
    // drop would still end it: SIGKILL works on a stopped process.)
}
