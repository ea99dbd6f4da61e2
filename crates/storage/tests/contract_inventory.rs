//! The storage contract of the inventory (jobs, events, repositories, tags, stars,
//! comments, activities): as in `tests/contract.rs`, every `contract_*` function runs on
//! a fresh SQLite file and on a fresh PostgreSQL database, and every `race_*` function
//! fires operations from several tasks at once on a multi-threaded runtime, for several
//! rounds, on both.

#![allow(clippy::unwrap_used)]

use portcullis_domain::inventory::{
    Activity, EventStatus, Job, JobState, ManifestFacts, NewJob, NewRegistryEvent, Platform,
    RepositoryListing, Tag,
};
use portcullis_domain::model::{
    Id, Namespace, NamespaceKind, Registry, Role, Team, User, Visibility,
};
use portcullis_domain::time::Timestamp;
use portcullis_domain::webhooks::{BodyType, RequestMethod, Webhook, WebhookAction};
use portcullis_storage::{
    ActivityScope, Actor, DeliveryAttempt, EventFilter, JobFilter, NewDelivery, NewNamespace,
    NewRegistry, NewUser, NewWebhook, PageRequest, PushRecord, RepositoryFilter, RepositoryScope,
    Store, StoreError, WebhookUpdate,
};
use portcullis_testkit::postgres::{TestDatabase, sqlite_url, test_database};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::Barrier;

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// How often each race is repeated.
const ROUNDS: usize = 4;

fn at(secs: i64) -> Timestamp {
    T0.plus_secs(secs)
}

/// Keeps the database of one test alive.
#[allow(dead_code)]
enum Keep {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

async fn sqlite_store() -> (Keep, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url(dir.path())).await.unwrap();
    store.migrate().await.unwrap();
    (Keep::Sqlite(dir), store)
}

async fn postgres_store() -> (Keep, Store) {
    let db = test_database()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL test database: {e:#}"));
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    (Keep::Postgres(db), store)
}

/// One `mod <name> { sqlite, postgres }` per contract function.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let (_keep, store) = super::sqlite_store().await;
                assert_eq!(store.backend(), "sqlite");
                super::$name(&store).await;
            }

            #[tokio::test]
            async fn postgres() {
                let (_keep, store) = super::postgres_store().await;
                assert_eq!(store.backend(), "postgres");
                super::$name(&store).await;
            }
        }
    )*};
}

/// Like [`contract!`] on a multi-threaded runtime, so the tasks of a race really run
/// at the same time.
macro_rules! race {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let (_keep, store) = super::sqlite_store().await;
                super::$name(&store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let (_keep, store) = super::postgres_store().await;
                super::$name(&store).await;
            }
        }
    )*};
}

contract! {
    contract_job_claim_order,
    contract_job_attempt_guards,
    contract_job_retry_and_park,
    contract_job_singletons,
    contract_job_prune_and_list,
    contract_schedules,
    contract_leadership,
    contract_store_events,
    contract_event_processing,
    contract_record_push,
    contract_delete_tags,
    contract_record_pull,
    contract_repository_listing,
    contract_stars_and_comments,
    contract_dashboard_activities,
    contract_deleted_author,
    contract_webhooks,
    contract_webhook_deliveries,
}

race! {
    race_claim_jobs,
    race_claim_schedule,
    race_leadership,
    race_enqueue_deliveries,
    race_store_events,
}

// ---------------------------------------------------------------- helpers

async fn user(store: &Store, username: &str, admin: bool) -> User {
    let base = portcullis_domain::names::namespace_name_for_username(username);
    let u = NewUser {
        username: username.to_owned(),
        email: format!("{username}@example.com"),
        display_name: None,
        password_hash: Some("$argon2id$fake".to_owned()),
        admin,
        bot: false,
    };
    store.create_user(&u, base.as_deref(), T0).await.unwrap()
}

async fn registry(store: &Store, name: &str) -> Registry {
    let r = NewRegistry {
        name: name.to_owned(),
        hostname: format!("{name}.test:5000"),
        use_ssl: true,
        external_hostname: None,
    };
    store.create_registry(&r, T0).await.unwrap()
}

async fn team(store: &Store, name: &str, owner: &User) -> Team {
    store.create_team(name, "", owner.id, T0).await.unwrap()
}

async fn namespace(
    store: &Store,
    registry: &Registry,
    team: &Team,
    name: &str,
    visibility: Visibility,
) -> Namespace {
    let n = NewNamespace {
        registry_id: registry.id,
        team_id: team.id,
        name: name.to_owned(),
        description: String::new(),
        kind: NamespaceKind::Team,
        visibility,
        user_id: None,
    };
    store.create_namespace(&n, T0).await.unwrap()
}

fn job(kind: &str, singleton: Option<&str>, max_attempts: i64, run_at: Timestamp) -> NewJob {
    NewJob {
        kind: kind.to_owned(),
        payload: format!("{{\"kind\":\"{kind}\"}}"),
        singleton: singleton.map(str::to_owned),
        max_attempts,
        run_at,
    }
}

async fn enqueue(store: &Store, j: &NewJob) -> Id {
    store.enqueue_job(j, T0).await.unwrap().unwrap()
}

async fn fetch_job(store: &Store, id: Id) -> Job {
    store.job_by_id(id).await.unwrap().unwrap()
}

/// Claims at `now` with a lease of 30 s; the job must exist.
async fn claim(store: &Store, worker: &str, now: Timestamp) -> Job {
    store
        .claim_job(worker, now, now.plus_secs(30))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{worker} found nothing to claim at {now:?}"))
}

async fn claim_none(store: &Store, worker: &str, now: Timestamp) {
    let got = store
        .claim_job(worker, now, now.plus_secs(30))
        .await
        .unwrap();
    assert_eq!(got, None, "nothing claimable at {now:?}");
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

fn all_jobs(kind: Option<&str>, state: Option<JobState>) -> JobFilter {
    JobFilter {
        state,
        kind: kind.map(str::to_owned),
    }
}

fn event(event_id: &str, status: EventStatus, action: &str, repository: &str) -> NewRegistryEvent {
    NewRegistryEvent {
        event_id: event_id.to_owned(),
        registry_id: None,
        status,
        action: action.to_owned(),
        repository: repository.to_owned(),
        tag: Some("latest".to_owned()),
        digest: Some("sha256:0123".to_owned()),
        media_type: Some("application/vnd.oci.image.manifest.v1+json".to_owned()),
        actor: Some("alice".to_owned()),
        request_host: Some("registry.test:5000".to_owned()),
        data: format!("{{\"id\":\"{event_id}\"}}"),
        occurred_at: T0,
    }
}

fn wake() -> NewJob {
    job("process_events", Some("process_events"), 5, T0)
}

fn platform(architecture: &str, variant: Option<&str>, digest: &str) -> Platform {
    Platform {
        os: "linux".to_owned(),
        architecture: architecture.to_owned(),
        variant: variant.map(str::to_owned),
        digest: digest.to_owned(),
        size: 1234,
    }
}

fn manifest(digest: &str) -> ManifestFacts {
    ManifestFacts {
        digest: digest.to_owned(),
        media_type: "application/vnd.oci.image.index.v1+json".to_owned(),
        image_id: String::new(),
        size: 2468,
        platforms: vec![
            platform("amd64", None, "sha256:amd64"),
            platform("arm", Some("v7"), "sha256:armv7"),
        ],
    }
}

fn actor(user: Option<&User>, name: &str) -> Actor {
    Actor {
        user_id: user.map(|u| u.id),
        name: name.to_owned(),
    }
}

fn push(ns: &Namespace, repository: &str, tag: &str, digest: &str, by: &User) -> PushRecord {
    PushRecord {
        namespace_id: ns.id,
        repository: repository.to_owned(),
        tag: tag.to_owned(),
        manifest: manifest(digest),
        actor: actor(Some(by), &by.username),
    }
}

async fn activities(store: &Store, scope: ActivityScope) -> Vec<Activity> {
    store
        .list_activities(scope, PageRequest::default())
        .await
        .unwrap()
        .items
}

async fn listing(
    store: &Store,
    viewer: Option<&User>,
    scope: RepositoryScope,
    filter: &RepositoryFilter,
) -> Vec<RepositoryListing> {
    let page = store
        .list_repositories(viewer.map(|u| u.id), scope, filter, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, page.items.len() as i64);
    page.items
}

fn names(listings: &[RepositoryListing]) -> Vec<String> {
    listings
        .iter()
        .map(|l| format!("{}/{}", l.namespace_name, l.repository.name))
        .collect()
}

/// A registry, a team `devs` (owner `owner`, contributor `member`) with a private
/// namespace `secret` and a public one `open`, and an `outsider`.
struct World {
    registry: Registry,
    devs: Team,
    owner: User,
    member: User,
    outsider: User,
    secret: Namespace,
    open: Namespace,
}

async fn world(store: &Store) -> World {
    let registry = registry(store, "reg").await;
    let owner = user(store, "owner", true).await;
    let member = user(store, "member", false).await;
    let outsider = user(store, "outsider", false).await;
    let devs = team(store, "devs", &owner).await;
    store
        .add_member(devs.id, member.id, Role::Contributor, T0)
        .await
        .unwrap();
    let secret = namespace(store, &registry, &devs, "secret", Visibility::Private).await;
    let open = namespace(store, &registry, &devs, "open", Visibility::Public).await;
    World {
        registry,
        devs,
        owner,
        member,
        outsider,
        secret,
        open,
    }
}

/// Runs `op(i, store clone)` for `i` in `0..n` as spawned tasks released together by
/// a barrier; the results in the order of `i`.
async fn concurrently<T, F, Fut>(store: &Store, n: usize, op: F) -> Vec<T>
where
    F: Fn(usize, Store) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let task = op(i, store.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                task.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

// ---------------------------------------------------------------- contract: jobs

async fn contract_job_claim_order(store: &Store) {
    let late = enqueue(store, &job("a", None, 3, at(10))).await;
    let first = enqueue(store, &job("b", None, 3, at(5))).await;
    let second = enqueue(store, &job("c", None, 3, at(5))).await;
    let future = enqueue(store, &job("d", None, 3, at(100))).await;
    let queued = fetch_job(store, late).await;
    assert_eq!(queued.state, JobState::Queued);
    assert_eq!(queued.attempts, 0);
    assert_eq!(queued.worker, None);
    assert_eq!(queued.created_at, T0);
    assert_eq!(store.queued_jobs().await.unwrap(), 4);

    claim_none(store, "w1", at(4)).await;
    let now = at(20);
    let j = claim(store, "w1", now).await;
    assert_eq!(j.id, first, "earliest run_at first");
    assert_eq!(j.state, JobState::Running);
    assert_eq!(j.attempts, 1);
    assert_eq!(j.worker.as_deref(), Some("w1"));
    assert_eq!(j.lease_until, Some(now.plus_secs(30)));
    assert_eq!(j.updated_at, now);
    assert_eq!(j.kind, "b");
    assert_eq!(j.payload, "{\"kind\":\"b\"}");
    assert_eq!(fetch_job(store, first).await, j);
    let then = claim(store, "w2", now).await;
    assert_eq!(then.id, second, "then by id");
    let last = claim(store, "w1", now).await;
    assert_eq!(last.id, late);
    claim_none(store, "w1", now).await;
    assert_eq!(fetch_job(store, future).await.state, JobState::Queued);
    assert_eq!(store.queued_jobs().await.unwrap(), 1);
    for (j, worker) in [(&j, "w1"), (&then, "w2"), (&last, "w1")] {
        assert!(store.complete_job(j, worker, now).await.unwrap());
    }
    assert_eq!(claim(store, "w1", at(100)).await.id, future);
}

async fn contract_job_attempt_guards(store: &Store) {
    let id = enqueue(store, &job("k", None, 5, T0)).await;
    let mine = claim(store, "w1", at(1)).await;
    assert_eq!(mine.lease_until, Some(at(31)));

    // Another worker, or an older attempt of this worker, cannot finish it.
    assert!(!store.complete_job(&mine, "w2", at(2)).await.unwrap());
    let stale = Job {
        attempts: mine.attempts - 1,
        ..mine.clone()
    };
    assert!(!store.complete_job(&stale, "w1", at(2)).await.unwrap());
    assert!(
        !store
            .fail_job(&stale, "w1", "x", None, at(2))
            .await
            .unwrap()
    );
    assert!(!store.extend_job_lease(&mine, "w2", at(90)).await.unwrap());
    assert_eq!(fetch_job(store, id).await, mine, "unchanged");

    // The lease can be extended; the job is not taken over before it ends.
    assert!(store.extend_job_lease(&mine, "w1", at(60)).await.unwrap());
    assert_eq!(fetch_job(store, id).await.lease_until, Some(at(60)));
    claim_none(store, "w2", at(59)).await;

    // After it ends, another worker takes the job over.
    let theirs = claim(store, "w2", at(61)).await;
    assert_eq!(theirs.id, id);
    assert_eq!(theirs.attempts, 2);
    assert_eq!(theirs.worker.as_deref(), Some("w2"));
    assert!(!store.complete_job(&mine, "w1", at(62)).await.unwrap());
    assert!(!store.extend_job_lease(&mine, "w1", at(200)).await.unwrap());
    assert!(
        !store
            .fail_job(&mine, "w1", "late", Some(at(300)), at(62))
            .await
            .unwrap()
    );
    assert_eq!(
        fetch_job(store, id).await,
        theirs,
        "the first worker changed nothing"
    );

    assert!(store.complete_job(&theirs, "w2", at(63)).await.unwrap());
    let done = fetch_job(store, id).await;
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.finished_at, Some(at(63)));
    assert_eq!(done.updated_at, at(63));
    assert_eq!(done.lease_until, None);
    assert_eq!(done.last_error, None);
    assert!(!store.complete_job(&theirs, "w2", at(64)).await.unwrap());
    assert!(
        !store
            .extend_job_lease(&theirs, "w2", at(200))
            .await
            .unwrap()
    );
    claim_none(store, "w3", at(1000)).await;
}

async fn contract_job_retry_and_park(store: &Store) {
    let id = enqueue(store, &job("k", None, 2, T0)).await;
    let first = claim(store, "w1", at(1)).await;
    assert!(
        store
            .fail_job(&first, "w1", "boom 1", Some(at(10)), at(2))
            .await
            .unwrap()
    );
    let requeued = fetch_job(store, id).await;
    assert_eq!(requeued.state, JobState::Queued);
    assert_eq!(requeued.run_at, at(10));
    assert_eq!(requeued.attempts, 1);
    assert_eq!(requeued.last_error.as_deref(), Some("boom 1"));
    assert_eq!(requeued.lease_until, None);
    assert_eq!(requeued.finished_at, None);
    assert_eq!(requeued.updated_at, at(2));
    claim_none(store, "w1", at(9)).await;

    // The last attempt fails: parked, even though a retry was asked for.
    let second = claim(store, "w2", at(10)).await;
    assert_eq!(second.attempts, 2);
    assert!(
        store
            .fail_job(&second, "w2", "boom 2", Some(at(20)), at(11))
            .await
            .unwrap()
    );
    let parked = fetch_job(store, id).await;
    assert_eq!(parked.state, JobState::Failed);
    assert_eq!(parked.last_error.as_deref(), Some("boom 2"));
    assert_eq!(parked.finished_at, Some(at(11)));
    assert_eq!(parked.lease_until, None);
    claim_none(store, "w1", at(1000)).await;

    // An admin retries it: fresh attempts, due now.
    let retried = store.retry_job(id, at(50)).await.unwrap();
    assert_eq!(retried.state, JobState::Queued);
    assert_eq!(retried.attempts, 0);
    assert_eq!(retried.run_at, at(50));
    assert_eq!(retried.worker, None);
    assert_eq!(retried.finished_at, None);
    assert_eq!(fetch_job(store, id).await, retried);
    assert_not_found(store.retry_job(id, at(51)).await);
    assert_not_found(store.retry_job(id + 1000, at(51)).await);

    // Without retry_at a failure parks the job at once.
    let third = claim(store, "w1", at(50)).await;
    assert_eq!(third.attempts, 1);
    assert_not_found(store.retry_job(id, at(51)).await);
    assert_not_found(store.cancel_job(id, at(51)).await);
    assert!(
        store
            .fail_job(&third, "w1", "permanent", None, at(51))
            .await
            .unwrap()
    );
    assert_eq!(fetch_job(store, id).await.state, JobState::Failed);

    // Cancelling: parked and queued jobs only.
    let cancelled = store.cancel_job(id, at(52)).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(cancelled.finished_at, Some(at(52)));
    assert_not_found(store.cancel_job(id, at(53)).await);
    let queued = enqueue(store, &job("q", None, 1, at(100))).await;
    assert_eq!(
        store.cancel_job(queued, at(53)).await.unwrap().state,
        JobState::Cancelled
    );
    claim_none(store, "w1", at(1000)).await;
    let done = enqueue(store, &job("d", None, 1, at(0))).await;
    let d = claim(store, "w1", at(60)).await;
    assert_eq!(d.id, done);
    assert!(store.complete_job(&d, "w1", at(61)).await.unwrap());
    assert_not_found(store.cancel_job(done, at(62)).await);
    assert_not_found(store.retry_job(done, at(62)).await);

    // A cancelled job can be retried too.
    assert_eq!(
        store.retry_job(id, at(70)).await.unwrap().state,
        JobState::Queued
    );
}

async fn contract_job_singletons(store: &Store) {
    let s = job("sync", Some("sync:1"), 5, T0);
    let first = store.enqueue_job(&s, T0).await.unwrap().unwrap();
    assert_eq!(
        store.enqueue_job(&s, T0).await.unwrap(),
        None,
        "already queued"
    );
    let other_key = enqueue(store, &job("sync", Some("sync:2"), 5, T0)).await;
    assert_ne!(other_key, first);

    let running = claim(store, "w1", at(1)).await;
    assert_eq!(running.id, first);
    assert_eq!(running.singleton.as_deref(), Some("sync:1"));
    // Queued again while it runs; the sibling waits for the running one.
    let sibling = enqueue(store, &s).await;
    let plain = enqueue(store, &job("plain", None, 5, T0)).await;
    for expected in [other_key, plain] {
        let j = claim(store, "w2", at(2)).await;
        assert_eq!(j.id, expected);
        assert!(store.complete_job(&j, "w2", at(2)).await.unwrap());
    }
    claim_none(store, "w2", at(2)).await;
    assert!(store.complete_job(&running, "w1", at(3)).await.unwrap());
    let next = claim(store, "w2", at(4)).await;
    assert_eq!(next.id, sibling);

    // It fails with a retry while a sibling is queued: the sibling does the work, no
    // sooner than the retry would have.
    let soon = enqueue(store, &s).await;
    assert_eq!(fetch_job(store, soon).await.run_at, T0);
    assert!(
        store
            .fail_job(&next, "w2", "flaky", Some(at(100)), at(5))
            .await
            .unwrap()
    );
    let parked = fetch_job(store, sibling).await;
    assert_eq!(parked.state, JobState::Cancelled);
    assert_eq!(parked.last_error.as_deref(), Some("flaky"));
    assert_eq!(parked.finished_at, Some(at(5)));
    assert_eq!(fetch_job(store, soon).await.run_at, at(100));
    claim_none(store, "w1", at(99)).await;

    // Retrying the cancelled one while its key is queued conflicts.
    match store.retry_job(sibling, at(6)).await {
        Err(StoreError::Conflict("job")) => {}
        other => panic!("expected Conflict(job), got {other:?}"),
    }

    // A sibling due later than the retry keeps its time.
    let again = claim(store, "w1", at(100)).await;
    assert_eq!(again.id, soon);
    let later = enqueue(store, &job("sync", Some("sync:1"), 5, at(500))).await;
    assert!(
        store
            .fail_job(&again, "w1", "flaky", Some(at(200)), at(101))
            .await
            .unwrap()
    );
    assert_eq!(fetch_job(store, soon).await.state, JobState::Cancelled);
    assert_eq!(fetch_job(store, later).await.run_at, at(500));

    // No sibling: the singleton itself is queued again.
    let last = claim(store, "w1", at(500)).await;
    assert_eq!(last.id, later);
    assert!(
        store
            .fail_job(&last, "w1", "flaky", Some(at(600)), at(501))
            .await
            .unwrap()
    );
    let requeued = fetch_job(store, later).await;
    assert_eq!(requeued.state, JobState::Queued);
    assert_eq!(requeued.run_at, at(600));
    assert_eq!(store.enqueue_job(&s, at(502)).await.unwrap(), None);

    // A worker whose lease ran out and whose job was taken over cannot cancel it or
    // delay the queued sibling.
    let lost = claim(store, "w1", at(600)).await;
    let took_over = claim(store, "w2", at(631)).await;
    assert_eq!(took_over.id, lost.id);
    let waiting = enqueue(store, &job("sync", Some("sync:1"), 5, at(640))).await;
    assert!(
        !store
            .fail_job(&lost, "w1", "late", Some(at(5000)), at(632))
            .await
            .unwrap()
    );
    assert_eq!(fetch_job(store, lost.id).await, took_over);
    assert_eq!(fetch_job(store, waiting).await.run_at, at(640));
}

async fn contract_job_prune_and_list(store: &Store) {
    let done_early = enqueue(store, &job("a", None, 1, T0)).await;
    let cancelled = enqueue(store, &job("a", None, 1, at(1000))).await;
    let failed = enqueue(store, &job("b", None, 1, T0)).await;
    let done_late = enqueue(store, &job("b", None, 1, T0)).await;
    let running = enqueue(store, &job("a", None, 1, T0)).await;
    let queued = enqueue(store, &job("b", None, 1, at(1000))).await;

    let j = claim(store, "w", at(1)).await;
    assert_eq!(j.id, done_early);
    assert!(store.complete_job(&j, "w", at(10)).await.unwrap());
    store.cancel_job(cancelled, at(20)).await.unwrap();
    let j = claim(store, "w", at(1)).await;
    assert_eq!(j.id, failed);
    assert!(store.fail_job(&j, "w", "no", None, at(5)).await.unwrap());
    let j = claim(store, "w", at(1)).await;
    assert_eq!(j.id, done_late);
    assert!(store.complete_job(&j, "w", at(40)).await.unwrap());
    assert_eq!(claim(store, "w", at(1)).await.id, running);

    let ids = |filter: JobFilter| async move {
        let page = store
            .list_jobs(&filter, PageRequest::default())
            .await
            .unwrap();
        (
            page.items.iter().map(|j| j.id).collect::<Vec<_>>(),
            page.total,
        )
    };
    assert_eq!(
        ids(all_jobs(None, None)).await,
        (
            vec![done_early, cancelled, failed, done_late, running, queued],
            6
        )
    );
    assert_eq!(
        ids(all_jobs(None, Some(JobState::Done))).await,
        (vec![done_early, done_late], 2)
    );
    assert_eq!(ids(all_jobs(Some("a"), None)).await.1, 3);
    assert_eq!(
        ids(all_jobs(Some("b"), Some(JobState::Queued))).await,
        (vec![queued], 1)
    );
    assert_eq!(ids(all_jobs(Some("nope"), None)).await, (Vec::new(), 0));
    let page = store
        .list_jobs(
            &all_jobs(Some("b"), None),
            PageRequest {
                offset: 1,
                limit: Some(1),
                order_by: "id",
                descending: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        page.items.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![done_late]
    );

    // Only done and cancelled jobs that finished before the cutoff go.
    assert_eq!(store.prune_jobs(at(15)).await.unwrap(), 1);
    assert!(store.job_by_id(done_early).await.unwrap().is_none());
    assert_eq!(store.prune_jobs(at(15)).await.unwrap(), 0);
    assert_eq!(store.prune_jobs(at(1_000_000)).await.unwrap(), 2);
    assert_eq!(
        ids(all_jobs(None, None)).await,
        (vec![failed, running, queued], 3)
    );
}

async fn contract_schedules(store: &Store) {
    let j = job("cleanup", Some("cleanup"), 3, T0);
    let period = 60_000;
    assert!(
        store
            .claim_schedule("cleanup", period, &j, T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_schedule("cleanup", period, &j, at(59))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_schedule("other", period, &j, at(59))
            .await
            .unwrap()
    );
    // Due again, but its job is still queued: the schedule moves, one job stays.
    assert!(
        store
            .claim_schedule("cleanup", period, &j, at(60))
            .await
            .unwrap()
    );
    let page = store
        .list_jobs(&all_jobs(Some("cleanup"), None), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert!(
        !store
            .claim_schedule("cleanup", period, &j, at(119))
            .await
            .unwrap()
    );
}

async fn contract_leadership(store: &Store) {
    let mut first = store.candidacy("scheduler");
    let mut second = store.candidacy("scheduler");
    assert!(first.lead().await.unwrap());
    assert!(!second.lead().await.unwrap());
    assert!(first.lead().await.unwrap(), "a leader keeps leading");
    assert!(!second.lead().await.unwrap());
    first.resign().await;
    assert!(second.lead().await.unwrap(), "resigned");
}

/// Another node (a second store on the same database) follows while one leads, on one
/// connection however often it asks, and takes over once the leader's connection
/// ends, as when its process dies.
#[tokio::test]
async fn leadership_passes_to_another_node_when_the_leaders_connection_ends() {
    let (keep, store) = postgres_store().await;
    let Keep::Postgres(db) = &keep else {
        unreachable!()
    };
    let other_node = Store::connect(&db.url).await.unwrap();
    let mut leader = store.candidacy("scheduler");
    let mut follower = other_node.candidacy("scheduler");
    let mut other_role = other_node.candidacy("another role");
    assert!(leader.lead().await.unwrap());
    assert!(!follower.lead().await.unwrap());
    assert!(other_role.lead().await.unwrap(), "roles are independent");
    let connections = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()";
    let before = db.execute(connections).await.unwrap();
    for _ in 0..5 {
        assert!(!follower.lead().await.unwrap());
    }
    assert_eq!(
        db.execute(connections).await.unwrap(),
        before,
        "no new connections"
    );
    // End the lock holders' connections (the scheduler's leader and the other role's).
    let ended = db
        .execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
             JOIN pg_database d ON d.oid = l.database \
             WHERE l.locktype = 'advisory' AND d.datname = current_database() AND l.granted \
             AND l.pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    assert_eq!(ended, 2, "the two leaders' connections");
    // The server ends a terminated backend asynchronously: ask until the lock is free.
    let mut tries = 0;
    while !follower.lead().await.unwrap() {
        tries += 1;
        assert!(tries < 500, "the follower never took over");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        !leader.lead().await.unwrap(),
        "the old leader notices and follows"
    );
}

// ---------------------------------------------------------------- contract: events

async fn wake_jobs(store: &Store, state: JobState) -> Vec<Job> {
    store
        .list_jobs(
            &all_jobs(Some("process_events"), Some(state)),
            PageRequest::default(),
        )
        .await
        .unwrap()
        .items
}

async fn contract_store_events(store: &Store) {
    assert_eq!(store.last_event_row_id().await.unwrap(), 0);
    let batch = [
        event("e1", EventStatus::Pending, "push", "ns/app"),
        event("e2", EventStatus::Pending, "pull", "ns/app"),
    ];
    assert_eq!(store.store_events(&batch, &wake(), at(1)).await.unwrap(), 2);
    assert_eq!(store.store_events(&batch, &wake(), at(2)).await.unwrap(), 0);
    assert_eq!(wake_jobs(store, JobState::Queued).await.len(), 1);
    let pending = store.pending_events(10).await.unwrap();
    assert_eq!(pending.len(), 2);
    let e1 = &pending[0];
    assert_eq!(e1.event_id, "e1");
    assert_eq!(e1.status, EventStatus::Pending);
    assert_eq!(e1.received_at, at(1), "the retry did not touch it");
    assert_eq!(e1.processed_at, None);
    assert_eq!(e1.attempts, 0);
    assert_eq!(e1.tag.as_deref(), Some("latest"));
    assert_eq!(e1.digest.as_deref(), Some("sha256:0123"));
    assert_eq!(e1.actor.as_deref(), Some("alice"));
    assert_eq!(e1.data, "{\"id\":\"e1\"}");
    assert_eq!(e1.occurred_at, T0);
    assert_eq!(store.event_by_id(e1.id).await.unwrap().as_ref(), Some(e1));
    assert_eq!(store.last_event_row_id().await.unwrap(), pending[1].id);

    // A new pending event while the wake job is queued: still one job.
    let e3 = [event("e3", EventStatus::Pending, "push", "ns/app")];
    assert_eq!(store.store_events(&e3, &wake(), at(3)).await.unwrap(), 1);
    assert_eq!(wake_jobs(store, JobState::Queued).await.len(), 1);

    // With the wake job running, only new pending events queue another.
    let w = claim(store, "w", at(4)).await;
    assert_eq!(w.kind, "process_events");
    let skipped = [
        event("e4", EventStatus::Ignored, "mount", "ns/app"),
        event("e5", EventStatus::UnknownRegistry, "push", "other/app"),
    ];
    assert_eq!(
        store.store_events(&skipped, &wake(), at(5)).await.unwrap(),
        2
    );
    assert_eq!(store.store_events(&e3, &wake(), at(5)).await.unwrap(), 0);
    assert!(wake_jobs(store, JobState::Queued).await.is_empty());
    let all = store
        .list_events(&EventFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.total, 5);
    for e in &all.items[3..] {
        assert_ne!(e.status, EventStatus::Pending);
        assert_eq!(e.processed_at, Some(at(5)), "{}", e.event_id);
    }
    assert_eq!(all.items[3].status, EventStatus::Ignored);
    assert_eq!(all.items[4].status, EventStatus::UnknownRegistry);
    let e6 = [event("e6", EventStatus::Pending, "delete", "ns/app")];
    assert_eq!(store.store_events(&e6, &wake(), at(6)).await.unwrap(), 1);
    let queued = wake_jobs(store, JobState::Queued).await;
    assert_eq!(queued.len(), 1);
    assert_ne!(queued[0].id, w.id);
    assert_eq!(
        store
            .pending_events(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["e1", "e2", "e3", "e6"]
    );
    assert_eq!(store.pending_events(2).await.unwrap().len(), 2);
}

async fn contract_event_processing(store: &Store) {
    let registry = registry(store, "reg").await;
    let other = registry_id_event("o1", Some(registry.id + 1000), "push", "ns/b");
    let batch = [
        registry_id_event("a1", Some(registry.id), "push", "ns/b"),
        registry_id_event("a2", Some(registry.id), "pull", "ns/c"),
        registry_id_event("a3", Some(registry.id), "delete", "ns/a"),
        other,
        registry_id_event("a4", Some(registry.id), "push", "ns/b"),
    ];
    assert_eq!(store.store_events(&batch, &wake(), at(1)).await.unwrap(), 5);
    let ids: Vec<Id> = store
        .pending_events(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids.len(), 5);

    // Failed attempts are counted, the event stays pending.
    assert_eq!(store.event_attempt_failed(ids[0], "nope").await.unwrap(), 1);
    assert_eq!(
        store.event_attempt_failed(ids[0], "again").await.unwrap(),
        2
    );
    let e = store.event_by_id(ids[0]).await.unwrap().unwrap();
    assert_eq!(e.status, EventStatus::Pending);
    assert_eq!(e.error.as_deref(), Some("again"));
    assert_eq!(e.processed_at, None);

    store
        .finish_event(ids[0], EventStatus::Done, None, at(10))
        .await
        .unwrap();
    let e = store.event_by_id(ids[0]).await.unwrap().unwrap();
    assert_eq!(e.status, EventStatus::Done);
    assert_eq!(e.attempts, 3);
    assert_eq!(e.error, None);
    assert_eq!(e.processed_at, Some(at(10)));
    // Finishing is for pending events only.
    store
        .finish_event(ids[0], EventStatus::Failed, Some("late"), at(11))
        .await
        .unwrap();
    assert_eq!(store.event_by_id(ids[0]).await.unwrap().unwrap(), e);
    store
        .finish_event(ids[1], EventStatus::Failed, Some("bad"), at(12))
        .await
        .unwrap();
    let f = store.event_by_id(ids[1]).await.unwrap().unwrap();
    assert_eq!(f.status, EventStatus::Failed);
    assert_eq!(f.error.as_deref(), Some("bad"));
    assert_eq!(
        store
            .pending_events(10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        ids[2..].to_vec()
    );

    // Listing filters, with totals.
    let list = |filter: EventFilter| async move {
        let page = store
            .list_events(&filter, PageRequest::default())
            .await
            .unwrap();
        let names: Vec<String> = page.items.iter().map(|e| e.event_id.clone()).collect();
        assert_eq!(page.total, names.len() as i64);
        names
    };
    assert_eq!(
        list(EventFilter {
            status: Some(EventStatus::Pending),
            ..EventFilter::default()
        })
        .await,
        ["a3", "o1", "a4"]
    );
    assert_eq!(
        list(EventFilter {
            action: Some("push".to_owned()),
            ..EventFilter::default()
        })
        .await,
        ["a1", "o1", "a4"]
    );
    assert_eq!(
        list(EventFilter {
            repository: Some("ns/b".to_owned()),
            registry_id: Some(registry.id),
            ..EventFilter::default()
        })
        .await,
        ["a1", "a4"]
    );
    assert_eq!(
        list(EventFilter {
            status: Some(EventStatus::Done),
            action: Some("push".to_owned()),
            repository: Some("ns/b".to_owned()),
            registry_id: Some(registry.id),
        })
        .await,
        ["a1"]
    );
    assert!(
        list(EventFilter {
            registry_id: Some(registry.id + 2000),
            ..EventFilter::default()
        })
        .await
        .is_empty()
    );
    let page = store
        .list_events(
            &EventFilter::default(),
            PageRequest {
                offset: 0,
                limit: Some(2),
                order_by: "repository",
                descending: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.items[0].event_id, "a3");

    // Repositories that pushes and deletes after a row concern, per registry.
    assert_eq!(
        store
            .repositories_with_events_after(registry.id, 0)
            .await
            .unwrap(),
        ["ns/a", "ns/b"]
    );
    assert_eq!(
        store
            .repositories_with_events_after(registry.id, ids[2])
            .await
            .unwrap(),
        ["ns/b"]
    );
    assert!(
        store
            .repositories_with_events_after(registry.id, ids[4])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.last_event_row_id().await.unwrap(), ids[4]);

    // Pruning: processed events received before the cutoff; pending ones stay.
    assert_eq!(store.prune_events(at(1)).await.unwrap(), 0);
    assert_eq!(store.prune_events(at(2)).await.unwrap(), 2);
    assert_eq!(store.prune_events(at(1_000_000)).await.unwrap(), 0);
    assert_eq!(store.pending_events(10).await.unwrap().len(), 3);
    assert!(store.event_by_id(ids[0]).await.unwrap().is_none());
}

fn registry_id_event(
    event_id: &str,
    registry_id: Option<Id>,
    action: &str,
    repository: &str,
) -> NewRegistryEvent {
    NewRegistryEvent {
        registry_id,
        ..event(event_id, EventStatus::Pending, action, repository)
    }
}

// ---------------------------------------------------------------- contract: inventory

/// Stores one pending event and returns its row id.
async fn pending_event(store: &Store, event_id: &str) -> Id {
    let e = [event(event_id, EventStatus::Pending, "push", "x")];
    assert_eq!(store.store_events(&e, &wake(), T0).await.unwrap(), 1);
    store.last_event_row_id().await.unwrap()
}

async fn assert_event_done(store: &Store, id: Id, now: Timestamp) {
    let e = store.event_by_id(id).await.unwrap().unwrap();
    assert_eq!(e.status, EventStatus::Done);
    assert_eq!(e.processed_at, Some(now));
    assert_eq!(e.attempts, 1);
}

async fn contract_record_push(store: &Store) {
    let w = world(store).await;
    let ev = pending_event(store, "push-1").await;
    let tag = store
        .record_push(
            &push(&w.secret, "app", "v1", "sha256:aaa", &w.member),
            Some(ev),
            at(10),
        )
        .await
        .unwrap();
    assert_eq!(tag.name, "v1");
    assert_eq!(tag.digest, "sha256:aaa");
    assert_eq!(tag.media_type, "application/vnd.oci.image.index.v1+json");
    assert_eq!(tag.size, 2468);
    assert_eq!(tag.platforms, manifest("sha256:aaa").platforms);
    assert_eq!(tag.author_id, Some(w.member.id));
    assert_eq!(tag.author_name, "member");
    assert_eq!(tag.pushed_at, at(10));
    assert_eq!(tag.created_at, at(10));
    assert_eq!(tag.pulled_at, None);
    assert_eq!(store.tag_by_id(tag.id).await.unwrap().as_ref(), Some(&tag));
    let repository = store
        .repository_by_id(tag.repository_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repository.name, "app");
    assert_eq!(repository.namespace_id, w.secret.id);
    assert_eq!(repository.created_at, at(10));
    assert_event_done(store, ev, at(10)).await;

    let pushed = activities(store, ActivityScope::All).await;
    assert_eq!(pushed.len(), 1);
    let a = &pushed[0];
    assert_eq!(a.key, "repository.push");
    assert_eq!(a.owner_id, Some(w.member.id));
    assert_eq!(a.owner_name, "member");
    assert_eq!(a.trackable_type, "repository");
    assert_eq!(a.trackable_id, Some(repository.id));
    assert_eq!(a.recipient_type.as_deref(), Some("tag"));
    assert_eq!(a.recipient_id, Some(tag.id));
    assert_eq!(a.namespace_id, Some(w.secret.id));
    assert_eq!(a.team_id, Some(w.devs.id));
    assert_eq!(a.created_at, at(10));
    assert_eq!(a.parameters["repository_name"], "app");
    assert_eq!(a.parameters["namespace_name"], "secret");
    assert_eq!(a.parameters["tag_name"], "v1");
    assert_eq!(a.parameters["digest"], "sha256:aaa");

    // The same tag with another digest moves: same row, new digest.
    let mut again = push(&w.secret, "app", "v1", "sha256:bbb", &w.owner);
    again.manifest.platforms.truncate(1);
    let moved = store.record_push(&again, None, at(20)).await.unwrap();
    assert_eq!(moved.id, tag.id);
    assert_eq!(moved.repository_id, tag.repository_id);
    assert_eq!(moved.digest, "sha256:bbb");
    assert_eq!(moved.platforms.len(), 1);
    assert_eq!(moved.author_id, Some(w.owner.id));
    assert_eq!(moved.pushed_at, at(20));
    assert_eq!(moved.updated_at, at(20));
    assert_eq!(moved.created_at, at(10));
    let v2 = store
        .record_push(
            &push(&w.secret, "app", "v2", "sha256:ccc", &w.owner),
            None,
            at(30),
        )
        .await
        .unwrap();
    assert_eq!(v2.repository_id, tag.repository_id);
    let tags = store.tags_of_repository(tag.repository_id).await.unwrap();
    assert_eq!(tags, vec![v2.clone(), moved.clone()], "newest push first");
    let repository = store
        .repository_by_id(tag.repository_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(repository.updated_at, at(30));
    assert_eq!(activities(store, ActivityScope::All).await.len(), 3);

    // The global namespace's repositories have bare names in the inventory.
    let global = store
        .global_namespace(w.registry.id)
        .await
        .unwrap()
        .unwrap();
    let base = store
        .record_push(
            &push(&global, "base", "latest", "sha256:ddd", &w.owner),
            None,
            at(40),
        )
        .await
        .unwrap();
    let inventory: Vec<(String, Option<(String, String)>)> = store
        .inventory_of_registry(w.registry.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.full_name, r.tag))
        .collect();
    let t = |n: &str, d: &str| Some((n.to_owned(), d.to_owned()));
    assert_eq!(
        inventory,
        vec![
            ("secret/app".to_owned(), t("v1", "sha256:bbb")),
            ("secret/app".to_owned(), t("v2", "sha256:ccc")),
            ("base".to_owned(), t("latest", "sha256:ddd")),
        ]
    );
    let of_registry = store.tags_of_registry(w.registry.id).await.unwrap();
    assert_eq!(of_registry, vec![moved, v2, base]);
    let other = registry(store, "other").await;
    assert!(
        store
            .inventory_of_registry(other.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.tags_of_registry(other.id).await.unwrap().is_empty());
}

async fn contract_delete_tags(store: &Store) {
    let w = world(store).await;
    let by = actor(Some(&w.owner), "owner");
    let v1 = store
        .record_push(
            &push(&w.secret, "app", "v1", "sha256:aaa", &w.member),
            None,
            at(1),
        )
        .await
        .unwrap();
    let repository_id = v1.repository_id;
    for (tag, digest) in [("v2", "sha256:aaa"), ("v3", "sha256:bbb")] {
        store
            .record_push(&push(&w.secret, "app", tag, digest, &w.member), None, at(2))
            .await
            .unwrap();
    }
    let before = activities(store, ActivityScope::All).await;
    assert_eq!(before.len(), 3);

    // By digest: every tag with it goes; the repository stays while a tag is left.
    let ev = pending_event(store, "delete-1").await;
    let mut deleted = store
        .delete_tags_by_digest(w.secret.id, "app", "sha256:aaa", &by, Some(ev), at(10))
        .await
        .unwrap();
    deleted.sort();
    assert_eq!(deleted, ["v1", "v2"]);
    assert_event_done(store, ev, at(10)).await;
    assert!(store.tag_by_id(v1.id).await.unwrap().is_none());
    let left = store.tags_of_repository(repository_id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "v3");
    assert!(
        store
            .repository_by_id(repository_id)
            .await
            .unwrap()
            .is_some()
    );
    let after = activities(store, ActivityScope::All).await;
    assert_eq!(after[..3], before[..], "history survives");
    let removed: Vec<&Activity> = after[3..].iter().collect();
    assert_eq!(removed.len(), 2);
    let mut removed_tags = Vec::new();
    for a in &removed {
        assert_eq!(a.key, "repository.delete");
        assert_eq!(a.owner_id, Some(w.owner.id));
        assert_eq!(a.owner_name, "owner");
        assert_eq!(a.trackable_type, "repository");
        assert_eq!(a.trackable_id, Some(repository_id));
        assert_eq!(a.recipient_type.as_deref(), Some("tag"));
        assert_eq!(a.namespace_id, Some(w.secret.id));
        assert_eq!(a.team_id, Some(w.devs.id));
        assert_eq!(a.parameters["repository_name"], "app");
        assert_eq!(a.parameters["namespace_name"], "secret");
        removed_tags.push(a.parameters["tag_name"].as_str().unwrap().to_owned());
    }
    removed_tags.sort();
    assert_eq!(removed_tags, ["v1", "v2"]);

    // A digest nobody has, a repository that does not exist: nothing, event done.
    assert!(
        store
            .delete_tags_by_digest(w.secret.id, "app", "sha256:zzz", &by, None, at(11))
            .await
            .unwrap()
            .is_empty()
    );
    let ev = pending_event(store, "delete-2").await;
    assert!(
        store
            .delete_tag_by_name(w.secret.id, "nope", "v3", &by, Some(ev), at(12))
            .await
            .unwrap()
            .is_empty()
    );
    assert_event_done(store, ev, at(12)).await;
    assert_eq!(activities(store, ActivityScope::All).await.len(), 5);

    // The last tag by name: the repository goes too.
    let deleted = store
        .delete_tag_by_name(w.secret.id, "app", "v3", &by, None, at(13))
        .await
        .unwrap();
    assert_eq!(deleted, ["v3"]);
    assert!(
        store
            .repository_by_id(repository_id)
            .await
            .unwrap()
            .is_none()
    );
    let after = activities(store, ActivityScope::All).await;
    assert_eq!(after.len(), 7);
    assert_eq!(after[..3], before[..], "history survives");
    assert_eq!(after[5].key, "repository.delete");
    assert_eq!(after[5].parameters["tag_name"], "v3");
    assert_eq!(after[6].key, "namespace.delete");
    assert_eq!(after[6].trackable_id, Some(repository_id));
    assert_eq!(after[6].recipient_type, None);
    assert!(!after[6].parameters.contains_key("tag_name"));
    assert_eq!(after[6].parameters["repository_name"], "app");
    assert!(
        store
            .inventory_of_registry(w.registry.id)
            .await
            .unwrap()
            .is_empty()
    );

    // A whole repository.
    for tag in ["a", "b"] {
        store
            .record_push(
                &push(&w.open, "web", tag, "sha256:ccc", &w.member),
                None,
                at(20),
            )
            .await
            .unwrap();
    }
    let web = store.tags_of_registry(w.registry.id).await.unwrap()[0].repository_id;
    store
        .delete_repository(web, &actor(None, "gc"), at(21))
        .await
        .unwrap();
    assert!(store.repository_by_id(web).await.unwrap().is_none());
    assert!(
        store
            .tags_of_registry(w.registry.id)
            .await
            .unwrap()
            .is_empty()
    );
    let after = activities(store, ActivityScope::All).await;
    let keys: Vec<&str> = after[9..].iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        keys,
        ["repository.delete", "repository.delete", "namespace.delete"]
    );
    assert!(
        after[9..]
            .iter()
            .all(|a| a.owner_id.is_none() && a.owner_name == "gc")
    );
    assert_not_found(store.delete_repository(web, &by, at(22)).await);
}

async fn contract_record_pull(store: &Store) {
    let w = world(store).await;
    for (tag, digest) in [
        ("v1", "sha256:aaa"),
        ("v2", "sha256:aaa"),
        ("v3", "sha256:bbb"),
    ] {
        store
            .record_push(&push(&w.open, "web", tag, digest, &w.member), None, at(1))
            .await
            .unwrap();
    }
    let other = store
        .record_push(
            &push(&w.secret, "web", "v1", "sha256:aaa", &w.member),
            None,
            at(1),
        )
        .await
        .unwrap();
    let pulled = |store: &Store| {
        let store = store.clone();
        async move {
            let mut tags: Vec<(String, Option<Timestamp>)> = store
                .tags_of_registry(w.registry.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|t| t.id != other.id)
                .map(|t| (t.name, t.pulled_at))
                .collect();
            tags.sort();
            tags
        }
    };
    let ev = pending_event(store, "pull-1").await;
    assert_eq!(
        store
            .record_pull(w.open.id, "web", Some("v3"), None, Some(ev), at(10))
            .await
            .unwrap(),
        1
    );
    assert_event_done(store, ev, at(10)).await;
    assert_eq!(
        pulled(store).await,
        [
            ("v1".to_owned(), None),
            ("v2".to_owned(), None),
            ("v3".to_owned(), Some(at(10)))
        ]
    );
    assert_eq!(
        store
            .record_pull(w.open.id, "web", None, Some("sha256:aaa"), None, at(20))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        pulled(store).await,
        [
            ("v1".to_owned(), Some(at(20))),
            ("v2".to_owned(), Some(at(20))),
            ("v3".to_owned(), Some(at(10)))
        ]
    );
    // Neither tag nor digest, an unknown tag, an unknown repository: nothing.
    let no_pull = [
        ("web", None, None),
        ("web", Some("v9"), None),
        ("web", Some("v3"), Some("sha256:aaa")),
        ("nope", Some("v1"), None),
    ];
    for (repository, tag, digest) in no_pull {
        assert_eq!(
            store
                .record_pull(w.open.id, repository, tag, digest, None, at(30))
                .await
                .unwrap(),
            0
        );
    }
    assert_eq!(
        store.tag_by_id(other.id).await.unwrap().unwrap().pulled_at,
        None
    );
}

async fn contract_repository_listing(store: &Store) {
    let w = world(store).await;
    let devs2 = team(store, "ops", &w.owner).await;
    let protected = namespace(store, &w.registry, &devs2, "shared", Visibility::Protected).await;
    let app = store
        .record_push(
            &push(&w.secret, "App", "v1", "sha256:a", &w.member),
            None,
            at(1),
        )
        .await
        .unwrap()
        .repository_id;
    store
        .record_push(
            &push(&w.secret, "App", "v2", "sha256:b", &w.member),
            None,
            at(2),
        )
        .await
        .unwrap();
    store
        .record_push(
            &push(&w.open, "web", "v1", "sha256:c", &w.member),
            None,
            at(3),
        )
        .await
        .unwrap();
    let lib = store
        .record_push(
            &push(&protected, "lib", "v1", "sha256:d", &w.owner),
            None,
            at(4),
        )
        .await
        .unwrap()
        .repository_id;
    let all = RepositoryFilter::default();

    let everything = ["secret/App", "open/web", "shared/lib"];
    assert_eq!(
        names(&listing(store, Some(&w.owner), RepositoryScope::All, &all).await),
        everything
    );
    assert_eq!(
        names(&listing(store, None, RepositoryScope::All, &all).await),
        everything
    );
    assert_eq!(
        names(&listing(store, Some(&w.member), RepositoryScope::PullableBy, &all).await),
        everything
    );
    assert_eq!(
        names(&listing(store, Some(&w.outsider), RepositoryScope::PullableBy, &all).await),
        ["open/web", "shared/lib"]
    );
    assert_eq!(
        names(&listing(store, None, RepositoryScope::Public, &all).await),
        ["open/web"]
    );
    assert_eq!(
        names(&listing(store, Some(&w.member), RepositoryScope::Public, &all).await),
        ["open/web"]
    );

    let l = &listing(store, Some(&w.member), RepositoryScope::PullableBy, &all).await[0];
    assert_eq!(l.repository.id, app);
    assert_eq!(l.namespace_kind, NamespaceKind::Team);
    assert_eq!(l.registry_id, w.registry.id);
    assert_eq!(l.tags, 2);
    assert_eq!(l.stars, 0);
    assert!(!l.starred);
    assert_eq!(
        store
            .repository_listing(app, Some(w.member.id))
            .await
            .unwrap()
            .as_ref(),
        Some(l)
    );
    assert_eq!(
        store.repository_listing(app + 1000, None).await.unwrap(),
        None
    );

    // Filters: the namespace, a case-insensitive substring of either name.
    let filter = |namespace_id: Option<Id>, query: Option<&str>| RepositoryFilter {
        namespace_id,
        query: query.map(str::to_owned),
        starred_only: false,
    };
    let outsider = &w.outsider;
    let pullable = |f: RepositoryFilter| async move {
        names(&listing(store, Some(outsider), RepositoryScope::PullableBy, &f).await)
    };
    assert_eq!(pullable(filter(Some(w.open.id), None)).await, ["open/web"]);
    assert!(pullable(filter(Some(w.secret.id), None)).await.is_empty());
    assert_eq!(pullable(filter(None, Some("WE"))).await, ["open/web"]);
    assert_eq!(pullable(filter(None, Some("shar"))).await, ["shared/lib"]);
    assert!(pullable(filter(None, Some("app"))).await.is_empty());
    assert!(
        pullable(filter(None, Some("%"))).await.len() == 2,
        "wildcards are text"
    );
    assert!(pullable(filter(None, Some("w_b"))).await.is_empty());
    assert_eq!(
        names(
            &listing(
                store,
                Some(&w.member),
                RepositoryScope::PullableBy,
                &filter(None, Some("aPp"))
            )
            .await
        ),
        ["secret/App"]
    );

    // Paging and sorting by name.
    let page = store
        .list_repositories(
            None,
            RepositoryScope::All,
            &all,
            PageRequest {
                offset: 0,
                limit: Some(2),
                order_by: "name",
                descending: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        page.items
            .iter()
            .map(|l| l.repository.id)
            .collect::<Vec<_>>(),
        [app, lib]
    );
}

async fn contract_stars_and_comments(store: &Store) {
    let w = world(store).await;
    let web = store
        .record_push(
            &push(&w.open, "web", "v1", "sha256:c", &w.member),
            None,
            at(1),
        )
        .await
        .unwrap()
        .repository_id;
    let lib = store
        .record_push(
            &push(&w.open, "lib", "v1", "sha256:d", &w.member),
            None,
            at(1),
        )
        .await
        .unwrap()
        .repository_id;
    for _ in 0..2 {
        assert!(
            store
                .set_star(w.outsider.id, web, true, at(2))
                .await
                .unwrap()
        );
    }
    assert!(store.set_star(w.member.id, web, true, at(2)).await.unwrap());
    let seen = |viewer: &User| {
        let store = store.clone();
        let viewer = viewer.id;
        async move {
            store
                .repository_listing(web, Some(viewer))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let l = seen(&w.outsider).await;
    assert_eq!((l.stars, l.starred), (2, true));
    let l = seen(&w.owner).await;
    assert_eq!((l.stars, l.starred), (2, false));
    let anonymous = store.repository_listing(web, None).await.unwrap().unwrap();
    assert_eq!((anonymous.stars, anonymous.starred), (2, false));

    let starred = RepositoryFilter {
        starred_only: true,
        ..RepositoryFilter::default()
    };
    let listed = listing(
        store,
        Some(&w.outsider),
        RepositoryScope::PullableBy,
        &starred,
    )
    .await;
    assert_eq!(names(&listed), ["open/web"]);
    assert_eq!((listed[0].stars, listed[0].starred), (2, true));
    assert!(
        listing(store, Some(&w.owner), RepositoryScope::All, &starred)
            .await
            .is_empty()
    );
    assert!(
        listing(store, None, RepositoryScope::Public, &starred)
            .await
            .is_empty()
    );
    let both = listing(
        store,
        Some(&w.owner),
        RepositoryScope::All,
        &RepositoryFilter::default(),
    )
    .await;
    assert_eq!(
        both.iter()
            .map(|l| (l.repository.id, l.stars))
            .collect::<Vec<_>>(),
        [(web, 2), (lib, 0)]
    );

    for _ in 0..2 {
        assert!(
            !store
                .set_star(w.outsider.id, web, false, at(3))
                .await
                .unwrap()
        );
    }
    let l = seen(&w.outsider).await;
    assert_eq!((l.stars, l.starred), (1, false));
    assert!(
        listing(
            store,
            Some(&w.outsider),
            RepositoryScope::PullableBy,
            &starred
        )
        .await
        .is_empty()
    );

    // Comments.
    let first = store
        .create_comment(web, w.outsider.id, "outsider", "nice", at(5))
        .await
        .unwrap();
    assert_eq!(first.repository_id, web);
    assert_eq!(first.user_id, Some(w.outsider.id));
    assert_eq!(first.author_name, "outsider");
    assert_eq!(first.body, "nice");
    assert_eq!(first.created_at, at(5));
    assert_eq!(first.updated_at, at(5));
    let second = store
        .create_comment(web, w.member.id, "member", "thanks", at(6))
        .await
        .unwrap();
    store
        .create_comment(lib, w.member.id, "member", "elsewhere", at(4))
        .await
        .unwrap();
    assert_eq!(
        store.comments_of_repository(web).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        store.comment_by_id(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert!(store.delete_comment(first.id).await.unwrap());
    assert!(!store.delete_comment(first.id).await.unwrap());
    assert_eq!(store.comment_by_id(first.id).await.unwrap(), None);
    assert_eq!(
        store.comments_of_repository(web).await.unwrap(),
        vec![second]
    );

    // Stars and comments go with the repository.
    store
        .delete_repository(web, &actor(Some(&w.owner), "owner"), at(7))
        .await
        .unwrap();
    assert!(store.comments_of_repository(web).await.unwrap().is_empty());
    assert_eq!(store.comments_of_repository(lib).await.unwrap().len(), 1);
}

async fn contract_dashboard_activities(store: &Store) {
    let w = world(store).await;
    store
        .record_push(
            &push(&w.secret, "app", "v1", "sha256:a", &w.member),
            None,
            at(1),
        )
        .await
        .unwrap();
    store
        .record_push(
            &push(&w.open, "web", "v1", "sha256:b", &w.member),
            None,
            at(2),
        )
        .await
        .unwrap();
    let keys = |activities: Vec<Activity>| {
        activities
            .into_iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a.key,
                    a.parameters["namespace_name"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(activities(store, ActivityScope::DashboardOf(w.outsider.id)).await),
        ["repository.push open"]
    );
    assert_eq!(
        keys(activities(store, ActivityScope::DashboardOf(w.member.id)).await),
        ["repository.push secret", "repository.push open"]
    );
    assert_eq!(
        keys(activities(store, ActivityScope::All).await),
        ["repository.push secret", "repository.push open"]
    );

    // A management activity written directly, for a team the viewer is in.
    let mut parameters = std::collections::BTreeMap::new();
    parameters.insert("namespace_name".to_owned(), serde_json::json!("secret"));
    store
        .record_activity(
            &portcullis_domain::inventory::NewActivity {
                key: "team.add_member".to_owned(),
                owner_id: Some(w.owner.id),
                owner_name: "owner".to_owned(),
                trackable_type: "team".to_owned(),
                trackable_id: Some(w.devs.id),
                team_id: Some(w.devs.id),
                parameters,
                ..Default::default()
            },
            at(3),
        )
        .await
        .unwrap();
    let member_view = activities(store, ActivityScope::DashboardOf(w.member.id)).await;
    assert_eq!(member_view.len(), 3);
    assert_eq!(member_view[2].key, "team.add_member");
    assert_eq!(member_view[2].created_at, at(3));
    assert_eq!(
        activities(store, ActivityScope::DashboardOf(w.outsider.id))
            .await
            .len(),
        1
    );
    let page = store
        .list_activities(
            ActivityScope::All,
            PageRequest {
                offset: 0,
                limit: Some(1),
                order_by: "key",
                descending: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items[0].key, "team.add_member", "newest first, by id");
}

async fn contract_deleted_author(store: &Store) {
    let w = world(store).await;
    let tag = store
        .record_push(
            &push(&w.secret, "app", "v1", "sha256:a", &w.member),
            None,
            at(1),
        )
        .await
        .unwrap();
    let comment = store
        .create_comment(tag.repository_id, w.member.id, "member", "hi", at(2))
        .await
        .unwrap();
    store
        .set_star(w.member.id, tag.repository_id, true, at(2))
        .await
        .unwrap();
    assert!(store.delete_user(w.member.id).await.unwrap());

    let kept = store.tag_by_id(tag.id).await.unwrap().unwrap();
    assert_eq!(kept.author_id, None);
    assert_eq!(kept.author_name, "member");
    assert_eq!(
        Tag {
            author_id: Some(w.member.id),
            ..kept
        },
        tag
    );
    let comment_kept = store.comment_by_id(comment.id).await.unwrap().unwrap();
    assert_eq!(comment_kept.user_id, None);
    assert_eq!(comment_kept.author_name, "member");
    let l = store
        .repository_listing(tag.repository_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(l.stars, 0, "the star went with the user");
    let a = &activities(store, ActivityScope::All).await[0];
    assert_eq!(
        a.owner_id,
        Some(w.member.id),
        "activities keep what they recorded"
    );
    assert_eq!(a.owner_name, "member");
}

// ---------------------------------------------------------------- races

async fn race_claim_jobs(store: &Store) {
    const JOBS: usize = 20;
    const WORKERS: usize = 8;
    for round in 0..ROUNDS {
        let kind = format!("round{round}");
        let mut queued = BTreeSet::new();
        for _ in 0..JOBS {
            queued.insert(enqueue(store, &job(&kind, None, 3, T0)).await);
        }
        let now = at(round as i64);
        let claimed = concurrently(store, WORKERS, |i, store| async move {
            let worker = format!("w{i}");
            let mut got = Vec::new();
            // The leases outlast every round: nothing is taken over.
            while let Some(j) = store.claim_job(&worker, now, at(1_000_000)).await.unwrap() {
                assert_eq!(j.worker.as_deref(), Some(worker.as_str()));
                assert_eq!(j.attempts, 1);
                got.push(j.id);
            }
            got
        })
        .await;
        let all: Vec<Id> = claimed.into_iter().flatten().collect();
        let unique: BTreeSet<Id> = all.iter().copied().collect();
        assert_eq!(
            all.len(),
            JOBS,
            "round {round}: each job claimed once: {all:?}"
        );
        assert_eq!(unique, queued, "round {round}");
        for id in queued {
            let j = fetch_job(store, id).await;
            assert_eq!(
                (j.state, j.attempts),
                (JobState::Running, 1),
                "round {round}"
            );
        }
        assert_eq!(store.queued_jobs().await.unwrap(), 0);
    }
}

async fn race_claim_schedule(store: &Store) {
    const NODES: usize = 8;
    for round in 0..ROUNDS {
        let name = format!("task{round}");
        let j = job(&name, Some(&name), 3, T0);
        let now = at(round as i64);
        let results = concurrently(store, NODES, |_, store| {
            let (name, j) = (name.clone(), j.clone());
            async move { store.claim_schedule(&name, 60_000, &j, now).await.unwrap() }
        })
        .await;
        assert_eq!(
            results.iter().filter(|c| **c).count(),
            1,
            "round {round}: {results:?}"
        );
        let page = store
            .list_jobs(&all_jobs(Some(&name), None), PageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.total, 1, "round {round}");
        assert_eq!(page.items[0].state, JobState::Queued);
    }
}

async fn race_leadership(store: &Store) {
    const NODES: usize = 8;
    for round in 0..ROUNDS {
        let role = format!("role{round}");
        let candidates = concurrently(store, NODES, |_, store| {
            let role = role.clone();
            async move {
                let mut candidacy = store.candidacy(&role);
                let leading = candidacy.lead().await.unwrap();
                (candidacy, leading)
            }
        })
        .await;
        let held = candidates.iter().filter(|(_, leading)| *leading).count();
        assert_eq!(held, 1, "round {round}");
    }
}

// ---------------------------------------------------------------- contract: webhooks

fn new_webhook(ns: &Namespace, name: &str) -> NewWebhook {
    NewWebhook {
        namespace_id: ns.id,
        name: name.into(),
        url: "https://hooks.example.com/in".into(),
        request_method: RequestMethod::Post,
        content_type: BodyType::Json,
        username: "u".into(),
        password_sealed: Some("sealed-password".into()),
        secret_sealed: "sealed-secret".into(),
        enabled: true,
        actions: vec![WebhookAction::Push, WebhookAction::Delete],
        repository_glob: "*".into(),
    }
}

async fn webhook_fixture(store: &Store) -> (World, Webhook) {
    let w = world(store).await;
    let hook = store
        .create_webhook(&new_webhook(&w.secret, "ci"), T0)
        .await
        .unwrap();
    (w, hook)
}

async fn contract_webhooks(store: &Store) {
    let (w, hook) = webhook_fixture(store).await;
    assert_eq!(
        (
            hook.name.as_str(),
            hook.request_method,
            hook.content_type,
            hook.password_set,
            hook.enabled,
            hook.actions.clone(),
            hook.created_at,
        ),
        (
            "ci",
            RequestMethod::Post,
            BodyType::Json,
            true,
            true,
            vec![WebhookAction::Push, WebhookAction::Delete],
            T0
        )
    );
    let other = store
        .create_webhook(
            &NewWebhook {
                password_sealed: None,
                enabled: false,
                ..new_webhook(&w.secret, "Another")
            },
            T0,
        )
        .await
        .unwrap();
    assert!(!other.password_set);
    store
        .create_webhook(&new_webhook(&w.open, "elsewhere"), T0)
        .await
        .unwrap();

    // Listing is per namespace, sorted case-insensitively by name when asked.
    let page = store
        .webhooks_of_namespace(
            w.secret.id,
            PageRequest {
                order_by: "name",
                ..PageRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    let names: Vec<&str> = page.items.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Another", "ci"]);
    let enabled: Vec<Id> = store
        .enabled_webhooks(w.secret.id)
        .await
        .unwrap()
        .iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(enabled, [hook.id]);

    // Updates write only the named fields; Some(None) removes the password.
    let updated = store
        .update_webhook(
            hook.id,
            &WebhookUpdate {
                enabled: Some(false),
                actions: Some(vec![WebhookAction::Delete]),
                password_sealed: Some(None),
                ..WebhookUpdate::default()
            },
            at(5),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            updated.enabled,
            updated.actions.clone(),
            updated.password_set,
            updated.url.as_str(),
            updated.username.as_str(),
            updated.updated_at
        ),
        (
            false,
            vec![WebhookAction::Delete],
            false,
            "https://hooks.example.com/in",
            "u",
            at(5)
        )
    );
    let updated = store
        .update_webhook(
            hook.id,
            &WebhookUpdate {
                password_sealed: Some(Some("sealed-2".into())),
                request_method: Some(RequestMethod::Get),
                ..WebhookUpdate::default()
            },
            at(6),
        )
        .await
        .unwrap();
    assert!(updated.password_set && !updated.enabled);
    assert_eq!(updated.request_method, RequestMethod::Get);
    assert_not_found(
        store
            .update_webhook(9999, &WebhookUpdate::default(), at(6))
            .await,
    );

    // Headers: unique per webhook whatever the case; values only via webhook_secrets.
    let h1 = store
        .create_webhook_header(hook.id, "X-Token", "sealed-v1", at(7))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_webhook_header(hook.id, "x-token", "sealed-v2", at(7))
            .await,
        Err(StoreError::Conflict("name"))
    ));
    store
        .create_webhook_header(other.id, "X-Token", "sealed-v3", at(7))
        .await
        .unwrap();
    store
        .create_webhook_header(hook.id, "X-Env", "sealed-v4", at(8))
        .await
        .unwrap();
    let names: Vec<String> = store
        .webhook_headers(hook.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["X-Token", "X-Env"]);
    store
        .set_webhook_secret(hook.id, "sealed-secret-2", at(9))
        .await
        .unwrap();
    let secrets = store.webhook_secrets(hook.id).await.unwrap().unwrap();
    assert_eq!(secrets.password_sealed.as_deref(), Some("sealed-2"));
    assert_eq!(secrets.secret_sealed, "sealed-secret-2");
    assert_eq!(
        secrets.headers,
        [
            ("X-Token".to_owned(), "sealed-v1".to_owned()),
            ("X-Env".to_owned(), "sealed-v4".to_owned())
        ]
    );
    // A header is removed only through its own webhook.
    assert!(!store.delete_webhook_header(other.id, h1.id).await.unwrap());
    assert!(store.delete_webhook_header(hook.id, h1.id).await.unwrap());
    assert_eq!(store.webhook_headers(hook.id).await.unwrap().len(), 1);

    // Deleting takes headers along; deleting the namespace takes its webhooks.
    assert!(store.delete_webhook(hook.id).await.unwrap());
    assert!(!store.delete_webhook(hook.id).await.unwrap());
    assert!(store.webhook_by_id(hook.id).await.unwrap().is_none());
    assert!(store.webhook_secrets(hook.id).await.unwrap().is_none());
    store.delete_namespace(w.secret.id).await.unwrap();
    assert!(store.webhook_by_id(other.id).await.unwrap().is_none());
}

fn delivery(hook: &Webhook, uuid: &str, event_id: &str) -> NewDelivery {
    NewDelivery {
        webhook_id: hook.id,
        uuid: uuid.into(),
        event_id: event_id.into(),
        payload: format!("{{\"id\":\"{event_id}\"}}"),
    }
}

fn delivery_job(id: Id) -> NewJob {
    NewJob {
        kind: "deliver_webhook".into(),
        payload: format!("{{\"delivery_id\":{id}}}"),
        singleton: None,
        max_attempts: 5,
        run_at: T0,
    }
}

async fn contract_webhook_deliveries(store: &Store) {
    let (w, hook) = webhook_fixture(store).await;
    let second = store
        .create_webhook(&new_webhook(&w.secret, "second"), T0)
        .await
        .unwrap();
    let created = store
        .enqueue_deliveries(
            &[delivery(&hook, "u1", "ev1"), delivery(&second, "u2", "ev1")],
            delivery_job,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    // The same event again (an event processed twice): nothing new, no new jobs.
    let again = store
        .enqueue_deliveries(&[delivery(&hook, "u3", "ev1")], delivery_job, at(1))
        .await
        .unwrap();
    assert!(again.is_empty());
    let jobs = store
        .list_jobs(
            &all_jobs(Some("deliver_webhook"), None),
            PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(jobs.total, 2);
    assert_eq!(
        jobs.items[0].payload,
        format!("{{\"delivery_id\":{}}}", created[0])
    );

    let d = store.delivery_by_id(created[0]).await.unwrap().unwrap();
    assert_eq!(
        (d.uuid.as_str(), d.event_id.as_str(), d.status, d.attempts),
        ("u1", "ev1", None, 0)
    );
    assert!(!d.succeeded());
    let attempt = DeliveryAttempt {
        status: Some(500),
        error: None,
        request_header: "A: 1".into(),
        request_body: "{}".into(),
        response_header: "B: 2".into(),
        response_body: "oops".into(),
        duration_ms: 12,
    };
    assert!(
        store
            .record_delivery_attempt(d.id, &attempt, at(2))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_delivery_attempt(
                d.id,
                &DeliveryAttempt {
                    status: Some(204),
                    ..attempt.clone()
                },
                at(3)
            )
            .await
            .unwrap()
    );
    let d = store.delivery_by_id(d.id).await.unwrap().unwrap();
    assert_eq!(
        (
            d.status,
            d.attempts,
            d.response_body.as_str(),
            d.duration_ms,
            d.updated_at
        ),
        (Some(204), 2, "oops", Some(12), at(3))
    );
    assert!(d.succeeded());
    let attempts = store.delivery_attempts(d.id).await.unwrap();
    let seen: Vec<(i64, Option<i64>, i64)> = attempts
        .iter()
        .map(|a| (a.attempt, a.status, a.created_at.0))
        .collect();
    assert_eq!(seen, [(1, Some(500), at(2).0), (2, Some(204), at(3).0)]);
    assert_eq!(attempts[0].request_header, "A: 1");

    // Re-sending queues another job for the same delivery.
    store
        .requeue_delivery(d.id, &delivery_job(d.id), at(4))
        .await
        .unwrap();
    assert_not_found(
        store
            .requeue_delivery(9999, &delivery_job(9999), at(4))
            .await,
    );
    assert_eq!(store.queued_jobs().await.unwrap(), 3);

    // History: the newest `keep` per webhook survive.
    for i in 2..=6 {
        store
            .enqueue_deliveries(
                &[delivery(&hook, &format!("u{i}0"), &format!("ev{i}"))],
                delivery_job,
                at(i),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .deliveries_of_webhook(hook.id, PageRequest::default())
            .await
            .unwrap()
            .total,
        6
    );
    assert_eq!(store.prune_deliveries(2).await.unwrap(), 4);
    let kept: Vec<String> = store
        .deliveries_of_webhook(hook.id, PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    assert_eq!(kept, ["ev5", "ev6"]);
    assert_eq!(
        store
            .deliveries_of_webhook(second.id, PageRequest::default())
            .await
            .unwrap()
            .total,
        1,
        "the other webhook keeps its own"
    );
    // An attempt on a pruned delivery is not recorded; its attempts went with it.
    assert!(
        store
            .delivery_attempts(created[0])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .record_delivery_attempt(created[0], &attempt, at(9))
            .await
            .unwrap()
    );
}

async fn race_enqueue_deliveries(store: &Store) {
    let (_w, hook) = webhook_fixture(store).await;
    for round in 0..ROUNDS {
        let event_id = format!("race-{round}");
        let hook = hook.clone();
        let created = concurrently(store, 8, |i, store| {
            let d = delivery(&hook, &format!("{round}-{i}"), &event_id);
            async move {
                store
                    .enqueue_deliveries(&[d], delivery_job, T0)
                    .await
                    .unwrap()
            }
        })
        .await;
        let all: Vec<Id> = created.into_iter().flatten().collect();
        assert_eq!(
            all.len(),
            1,
            "round {round}: one delivery per event: {all:?}"
        );
    }
    assert_eq!(store.queued_jobs().await.unwrap(), ROUNDS as i64);
}

/// Concurrent envelopes share transactions (group commit), yet each caller learns how
/// many of its own events were new, a retried id is stored once, and exactly one wake
/// job is queued.
async fn race_store_events(store: &Store) {
    const CALLERS: usize = 40;
    let counts = concurrently(store, CALLERS, |i, store| async move {
        let envelope = [
            event(&format!("own{i}"), EventStatus::Pending, "push", "ns/app"),
            event("shared", EventStatus::Pending, "push", "ns/app"),
        ];
        store.store_events(&envelope, &wake(), at(1)).await.unwrap()
    })
    .await;
    assert!(counts.iter().all(|n| *n == 1 || *n == 2), "{counts:?}");
    assert_eq!(
        counts.iter().sum::<u64>(),
        CALLERS as u64 + 1,
        "every own event once, the shared one once: {counts:?}"
    );
    assert_eq!(counts.iter().filter(|n| **n == 2).count(), 1);
    let stored = store
        .list_events(&EventFilter::default(), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(stored.total, CALLERS as i64 + 1);
    assert_eq!(wake_jobs(store, JobState::Queued).await.len(), 1);
}
