//! The storage contract: every `contract_*` function below is written once and run on
//! a fresh SQLite file and on a fresh PostgreSQL database (`<name>::sqlite` and
//! `<name>::postgres`). Not getting a PostgreSQL database is a failure, never a skip.
//! That the two migrated schemas agree is checked by `tests/schema.rs`.
//!
//! The `race_*` functions fire the same store operations from several tasks at once on
//! a multi-threaded runtime (a `Store` clone per task, released together by a barrier)
//! and check the invariants the store guards: one bootstrap admin, an owner per team,
//! an enabled admin, the per-user token quota. Each race is repeated for several rounds
//! so that one lucky interleaving does not hide a missing guard.

#![allow(clippy::unwrap_used)]

use portcullis_domain::model::{
    ApplicationToken, Id, Namespace, NamespaceKind, NamespaceListing, Registry, Role, Team,
    TeamListing, User, UserListing, Visibility,
};
use portcullis_domain::names::{global_namespace_name, global_team_name};
use portcullis_domain::time::Timestamp;
use portcullis_storage::{
    GroupSyncChange, MigrationState, NamespaceAccess, NamespaceScope, NamespaceUpdate,
    NewApplicationToken, NewNamespace, NewRegistry, NewUser, Page, PageRequest, RefreshCredential,
    Refusal, Store, StoreError, TeamScope, UserUpdate,
};
use portcullis_testkit::postgres::{TestDatabase, sqlite_url, test_database};
use std::sync::Arc;
use tokio::sync::Barrier;

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// A token quota no contract test reaches (the quota has tests of its own).
const QUOTA: i64 = 100;

/// How often each race is repeated.
const ROUNDS: usize = 5;

fn at(secs: i64) -> Timestamp {
    T0.plus_secs(secs)
}

/// Keeps the database of one test alive.
enum Keep {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Keep {
    /// Deletes every row, behind the store's back, for races that need an empty
    /// database each round (cheaper than a new PostgreSQL database per round).
    async fn wipe(&self) {
        const TABLES: [&str; 9] = [
            "sessions",
            "password_resets",
            "refresh_tokens",
            "application_tokens",
            "team_users",
            "namespaces",
            "teams",
            "users",
            "registries",
        ];
        match self {
            Keep::Sqlite(dir) => {
                let mut conn = raw_sqlite(dir.path()).await;
                for table in TABLES {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                        .execute(&mut conn)
                        .await
                        .unwrap();
                }
            }
            Keep::Postgres(db) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "TRUNCATE {} CASCADE",
                    TABLES.join(", ")
                )))
                .execute(&mut conn)
                .await
                .unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

async fn sqlite_store() -> (Keep, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url(dir.path())).await.unwrap();
    store.migrate().await.unwrap();
    (Keep::Sqlite(dir), store)
}

async fn postgres_database() -> TestDatabase {
    test_database()
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL test database: {e:#}"))
}

async fn postgres_store() -> (Keep, Store) {
    let db = postgres_database().await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    (Keep::Postgres(db), store)
}

/// Which database a race runs on; races that need an empty database per round make
/// fresh stores with [`Backend::store`].
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    async fn store(self) -> (Keep, Store) {
        let (keep, store) = match self {
            Backend::Sqlite => sqlite_store().await,
            Backend::Postgres => postgres_store().await,
        };
        let expected = match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        assert_eq!(store.backend(), expected);
        (keep, store)
    }
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

/// Like [`contract!`], for the races: a multi-threaded runtime, so the tasks of a race
/// really run at the same time, and the backend instead of a store.
macro_rules! race {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(super::Backend::Postgres).await;
            }
        }
    )*};
}

contract! {
    contract_migrations_and_ping,
    contract_user_lookups,
    contract_user_conflicts,
    contract_update_user,
    contract_targeted_user_updates,
    contract_upgrade_password_hash,
    contract_list_users,
    contract_user_listing,
    contract_personal_namespaces,
    contract_bots_get_no_personal_namespace,
    contract_registries,
    contract_registry_adds_personal_namespaces,
    contract_set_admin,
    contract_last_admin,
    contract_bootstrap_admin,
    contract_failed_logins,
    contract_delete_user,
    contract_delete_user_refusals,
    contract_teams,
    contract_list_teams,
    contract_delete_team,
    contract_members,
    contract_last_owner,
    contract_namespaces,
    contract_update_namespace,
    contract_list_namespaces,
    contract_namespace_access,
    contract_application_tokens,
    contract_token_quota,
    contract_refresh_tokens,
    contract_refresh_tokens_die_with_application_token,
    contract_touch_writes_at_most_once_a_minute,
    contract_sessions,
    contract_password_resets,
    contract_group_sync,
    contract_identities,
    contract_sign_up_user,
    contract_close,
}

race! {
    race_bootstrap_admin,
    race_demote_both_owners,
    race_remove_both_owners,
    race_admins_disable_each_other,
    race_admins_demote_each_other,
    race_admins_disable_demote_delete,
    race_token_quota,
    race_delete_owner_vs_other_owner,
    race_failed_logins_lock_once,
    race_sign_up_first_admin,
    race_password_reset_used_once,
    race_identity_sign_up,
}

// ---------------------------------------------------------------- helpers

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        email: format!("{username}@example.com"),
        display_name: None,
        password_hash: Some("$argon2id$fake".to_owned()),
        admin: false,
        bot: false,
    }
}

/// A regular user with personal namespaces, created at `T0`.
async fn user(store: &Store, username: &str) -> User {
    let base = portcullis_domain::names::namespace_name_for_username(username);
    store
        .create_user(&new_user(username), base.as_deref(), T0)
        .await
        .unwrap()
}

async fn admin(store: &Store, username: &str) -> User {
    let base = portcullis_domain::names::namespace_name_for_username(username);
    let u = NewUser {
        admin: true,
        ..new_user(username)
    };
    store.create_user(&u, base.as_deref(), T0).await.unwrap()
}

async fn registry(store: &Store, name: &str) -> Registry {
    store
        .create_registry(
            &NewRegistry {
                name: name.to_owned(),
                hostname: format!("{name}.test:5000"),
                use_ssl: true,
                external_hostname: None,
            },
            T0,
        )
        .await
        .unwrap()
}

async fn team(store: &Store, name: &str, owner: &User) -> Team {
    store.create_team(name, "", owner.id, T0).await.unwrap()
}

fn new_namespace(
    registry: &Registry,
    team: &Team,
    name: &str,
    visibility: Visibility,
) -> NewNamespace {
    NewNamespace {
        registry_id: registry.id,
        team_id: team.id,
        name: name.to_owned(),
        description: format!("about {name}"),
        kind: NamespaceKind::Team,
        visibility,
        user_id: None,
    }
}

async fn namespace(
    store: &Store,
    registry: &Registry,
    team: &Team,
    name: &str,
    visibility: Visibility,
) -> Namespace {
    store
        .create_namespace(&new_namespace(registry, team, name, visibility), T0)
        .await
        .unwrap()
}

/// A push-and-pull token that never expires.
fn new_token<'a>(application: &'a str, token_hash: &'a str) -> NewApplicationToken<'a> {
    NewApplicationToken {
        application,
        token_hash,
        pull_only: false,
        expires_at: None,
    }
}

async fn app_token(
    store: &Store,
    user: &User,
    application: &str,
    token_hash: &str,
    now: Timestamp,
) -> ApplicationToken {
    store
        .create_application_token(user.id, &new_token(application, token_hash), QUOTA, now)
        .await
        .unwrap()
}

fn page(offset: i64, limit: Option<i64>, order_by: &'static str, descending: bool) -> PageRequest {
    PageRequest {
        offset,
        limit,
        order_by,
        descending,
    }
}

fn conflict(e: StoreError) -> &'static str {
    match e {
        StoreError::Conflict(field) => field,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// The refusal `r` must be.
fn refusal<T: std::fmt::Debug>(r: Result<T, StoreError>) -> Refusal {
    match r {
        Err(StoreError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

async fn personal_team(store: &Store, user: &User) -> Team {
    store
        .team_by_name(&format!("portus_personal_{}", user.id))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} has no personal team", user.username))
}

async fn role_in(store: &Store, team_id: Id, user: &User) -> Option<Role> {
    store
        .membership(team_id, user.id)
        .await
        .unwrap()
        .map(|m| m.role)
}

async fn user_count(store: &Store) -> i64 {
    store
        .list_users(&PageRequest::default())
        .await
        .unwrap()
        .total
}

/// Ids of the enabled admins, ascending.
async fn enabled_admins(store: &Store) -> Vec<Id> {
    store
        .list_users(&PageRequest::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|l| l.user.admin && l.user.enabled)
        .map(|l| l.user.id)
        .collect()
}

/// User ids of the team's owners, oldest membership first.
async fn owners(store: &Store, team_id: Id) -> Vec<Id> {
    store
        .list_members(team_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|(m, _)| m.role == Role::Owner)
        .map(|(m, _)| m.user_id)
        .collect()
}

/// (members, namespaces) of a team, hidden or not.
async fn team_counts(store: &Store, team_id: Id) -> (i64, i64) {
    let l = store
        .team_listing(team_id, 0)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no team {team_id}"));
    (l.members, l.namespaces)
}

async fn fetch_user(store: &Store, id: Id) -> User {
    store.user_by_id(id).await.unwrap().unwrap()
}

async fn global_team_id(store: &Store, registry: &Registry) -> Id {
    store
        .global_namespace(registry.id)
        .await
        .unwrap()
        .unwrap()
        .team_id
}

/// Runs `op(i, store clone)` for `i` in `0..n` as `n` spawned tasks that all start at
/// once (a barrier releases them together); the results in the order of `i`.
async fn concurrently<T, F, Fut>(store: &Store, n: usize, op: F) -> Vec<Result<T, StoreError>>
where
    F: Fn(usize, Store) -> Fut,
    Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
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

/// Splits race results into what succeeded and what was refused; any other error
/// fails the test.
fn outcomes<T: std::fmt::Debug>(results: Vec<Result<T, StoreError>>) -> (Vec<T>, Vec<Refusal>) {
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(StoreError::Refused(x)) => refused.push(x),
            Err(other) => panic!("expected success or a refusal, got {other:?}"),
        }
    }
    (ok, refused)
}

// ---------------------------------------------------------------- contract: users

async fn contract_migrations_and_ping(store: &Store) {
    assert_eq!(
        store.migration_state().await.unwrap(),
        MigrationState::UpToDate
    );
    store.migrate().await.unwrap(); // idempotent
    assert_eq!(
        store.migration_state().await.unwrap(),
        MigrationState::UpToDate
    );
    store.ping().await.unwrap();
    let clone = store.clone();
    clone.ping().await.unwrap();
}

async fn contract_user_lookups(store: &Store) {
    assert_eq!(user_count(store).await, 0);
    let alice = user(store, "Alice").await;
    assert!(alice.id > 0);
    assert_eq!(alice.username, "Alice");
    assert_eq!(alice.email, "Alice@example.com");
    assert_eq!(alice.password_hash.as_deref(), Some("$argon2id$fake"));
    assert!(alice.enabled && !alice.admin && !alice.bot);
    assert_eq!((alice.failed_attempts, alice.locked_at), (0, None));
    assert_eq!(alice.credential_version, 0);
    assert_eq!((alice.created_at, alice.updated_at), (T0, T0));

    let by_id = store.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(by_id, alice);
    for name in ["alice", "ALICE", "Alice"] {
        let found = store.user_by_username(name).await.unwrap().unwrap();
        assert_eq!(found.id, alice.id, "{name}");
    }
    for email in ["alice@example.com", "ALICE@EXAMPLE.COM"] {
        let found = store.user_by_email(email).await.unwrap().unwrap();
        assert_eq!(found.id, alice.id, "{email}");
    }
    assert_eq!(store.user_by_id(alice.id + 1000).await.unwrap(), None);
    assert_eq!(store.user_by_username("alic").await.unwrap(), None);
    assert_eq!(
        store.user_by_email("nobody@example.com").await.unwrap(),
        None
    );

    // Users without an email never match the empty email.
    let mut no_email = new_user("ldap");
    no_email.email = String::new();
    store.create_user(&no_email, None, T0).await.unwrap();
    assert_eq!(store.user_by_email("").await.unwrap(), None);

    assert_eq!(user_count(store).await, 2);
    assert!(enabled_admins(store).await.is_empty());
}

async fn contract_user_conflicts(store: &Store) {
    let mut first = new_user("carol");
    first.display_name = Some("Carol C.".to_owned());
    let carol = store.create_user(&first, Some("carol"), T0).await.unwrap();

    let mut same_name = new_user("CAROL");
    same_name.email = "other@example.com".to_owned();
    let e = store
        .create_user(&same_name, Some("carol"), T0)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "username has already been taken");
    assert_eq!(conflict(e), "username");

    let mut same_email = new_user("dave");
    same_email.email = "CAROL@example.com".to_owned();
    let e = store.create_user(&same_email, None, T0).await.unwrap_err();
    assert_eq!(conflict(e), "email");

    let mut same_display = new_user("erin");
    same_display.display_name = Some("Carol C.".to_owned());
    let e = store
        .create_user(&same_display, None, T0)
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "display_name");

    // Several users may lack an email or a display name.
    for name in ["frank", "grace"] {
        let mut u = new_user(name);
        u.email = String::new();
        store.create_user(&u, Some(name), T0).await.unwrap();
    }
    assert_eq!(user_count(store).await, 3);

    // Updates hit the same constraints, and write nothing when they do.
    let frank = store.user_by_username("frank").await.unwrap().unwrap();
    let update = |changes: UserUpdate| async move {
        store
            .update_user(frank.id, &changes, at(1))
            .await
            .unwrap_err()
    };
    let e = update(UserUpdate {
        username: Some("Carol".to_owned()),
        ..UserUpdate::default()
    })
    .await;
    assert_eq!(conflict(e), "username");
    let e = update(UserUpdate {
        email: Some("carol@EXAMPLE.com".to_owned()),
        ..UserUpdate::default()
    })
    .await;
    assert_eq!(conflict(e), "email");
    let e = update(UserUpdate {
        display_name: Some(carol.display_name.clone()),
        // A conflict rolls back the password change and its credential bump.
        password_hash: Some("$argon2id$other".to_owned()),
        ..UserUpdate::default()
    })
    .await;
    assert_eq!(conflict(e), "display_name");
    assert_eq!(fetch_user(store, frank.id).await, frank);

    // The domain error is the 422 Portus answers with.
    let e: portcullis_domain::Error = StoreError::Conflict("username").into();
    assert_eq!(e.to_string(), "username has already been taken");
    assert!(matches!(
        portcullis_domain::Error::from(StoreError::NotFound),
        portcullis_domain::Error::NotFound(_)
    ));
}

async fn contract_update_user(store: &Store) {
    let u = user(store, "heidi").await;
    // Fields `update_user` never changes get values other than their defaults.
    let failed = store.record_failed_login(u.id, at(1), 10).await.unwrap();
    assert_eq!(failed.failed_attempts, 1);

    let changes = UserUpdate {
        username: Some("heidi2".to_owned()),
        email: Some("h@example.org".to_owned()),
        display_name: Some(Some("Heidi".to_owned())),
        password_hash: Some("$argon2id$new".to_owned()),
        enabled: Some(false),
        admin: None,
    };
    let (updated, credentials_changed) = store.update_user(u.id, &changes, at(10)).await.unwrap();
    assert!(credentials_changed);
    let expected = User {
        username: "heidi2".to_owned(),
        email: "h@example.org".to_owned(),
        display_name: Some("Heidi".to_owned()),
        password_hash: Some("$argon2id$new".to_owned()),
        enabled: false,
        // A new password and a disable in one update: one bump.
        credential_version: 1,
        updated_at: at(10),
        // Untouched: admin, bot, failed_attempts, locked_at, created_at.
        ..failed.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(fetch_user(store, u.id).await, expected);

    // Naming nothing changes nothing but updated_at.
    let (same, changed) = store
        .update_user(u.id, &UserUpdate::default(), at(11))
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(
        same,
        User {
            updated_at: at(11),
            ..expected.clone()
        }
    );

    // `Some(None)` clears the display name.
    let (cleared, changed) = store
        .update_user(
            u.id,
            &UserUpdate {
                display_name: Some(None),
                ..UserUpdate::default()
            },
            at(12),
        )
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(
        (cleared.display_name, cleared.credential_version),
        (None, 1)
    );

    // Setting `enabled` to what it is does not bump the version; changing it either way
    // does. "Credentials changed" is what the request asked for: a disable ends every
    // session (again, harmlessly), a re-enable has none left to end.
    let enabled = |value: bool| UserUpdate {
        enabled: Some(value),
        ..UserUpdate::default()
    };
    let (still, changed) = store
        .update_user(u.id, &enabled(false), at(13))
        .await
        .unwrap();
    assert_eq!(
        (still.enabled, still.credential_version, changed),
        (false, 1, true)
    );
    let (back, changed) = store
        .update_user(u.id, &enabled(true), at(14))
        .await
        .unwrap();
    assert_eq!(
        (back.enabled, back.credential_version, changed),
        (true, 2, false)
    );
    // Setting a password always bumps, even to the same hash.
    let same_password = UserUpdate {
        password_hash: back.password_hash.clone(),
        ..UserUpdate::default()
    };
    let (again, changed) = store
        .update_user(u.id, &same_password, at(15))
        .await
        .unwrap();
    assert_eq!((again.credential_version, changed), (3, true));
    // `admin` goes through the admin rules (see contract_set_admin).
    let (promoted, changed) = store
        .update_user(
            u.id,
            &UserUpdate {
                admin: Some(true),
                ..UserUpdate::default()
            },
            at(16),
        )
        .await
        .unwrap();
    assert_eq!(
        (promoted.admin, promoted.credential_version, changed),
        (true, 3, false)
    );

    let missing = u.id + 1000;
    assert_not_found(store.update_user(missing, &changes, at(20)).await);
    assert_not_found(
        store
            .update_user(missing, &UserUpdate::default(), at(20))
            .await,
    );
    assert_not_found(
        store
            .update_user(
                missing,
                &UserUpdate {
                    admin: Some(false),
                    ..UserUpdate::default()
                },
                at(20),
            )
            .await,
    );
}

/// `update_user` writes only the fields it names, so changes made since the caller read
/// the user (a disable, a lockout) survive, and ends refresh tokens only when the
/// credentials change.
async fn contract_targeted_user_updates(store: &Store) {
    let u = user(store, "judy").await;
    let other = user(store, "other").await;
    let session = |user: &User, hash: &str| {
        let (id, hash) = (user.id, hash.to_owned());
        async move {
            store
                .create_refresh_token(id, None, "svc", "docker", &hash, T0)
                .await
                .unwrap()
        }
    };
    let r1 = session(&u, "judy-1").await;
    let r2 = session(&u, "judy-2").await;
    let theirs = session(&other, "other-1").await;

    // An admin disables the user...
    let (disabled, changed) = store
        .update_user(
            u.id,
            &UserUpdate {
                enabled: Some(false),
                ..UserUpdate::default()
            },
            at(1),
        )
        .await
        .unwrap();
    assert!(changed);
    assert_eq!((disabled.enabled, disabled.credential_version), (false, 1));
    // ...which ends the user's sessions, nobody else's.
    assert!(store.list_refresh_tokens(u.id).await.unwrap().is_empty());
    assert_eq!(store.refresh_token_by_id(r1.id).await.unwrap(), None);
    assert_eq!(store.refresh_token_by_id(r2.id).await.unwrap(), None);
    assert_eq!(
        store.list_refresh_tokens(other.id).await.unwrap(),
        vec![theirs.clone()]
    );

    // ...and an email change based on an earlier read leaves the user disabled, with
    // the credential version as the disable left it.
    let (updated, changed) = store
        .update_user(
            u.id,
            &UserUpdate {
                email: Some("judy@example.org".to_owned()),
                ..UserUpdate::default()
            },
            at(2),
        )
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(
        (
            updated.email.as_str(),
            updated.enabled,
            updated.credential_version
        ),
        ("judy@example.org", false, 1)
    );
    assert_eq!(fetch_user(store, u.id).await, updated);

    // A lockout between read and write survives a display-name change too.
    store
        .update_user(
            u.id,
            &UserUpdate {
                enabled: Some(true),
                ..UserUpdate::default()
            },
            at(3),
        )
        .await
        .unwrap();
    let r3 = session(&u, "judy-3").await;
    for i in 0..2 {
        store.record_failed_login(u.id, at(4 + i), 2).await.unwrap();
    }
    let locked = fetch_user(store, u.id).await;
    assert_eq!(
        (
            locked.failed_attempts,
            locked.locked_at,
            locked.credential_version
        ),
        (2, Some(at(5)), 3)
    );
    let (renamed, changed) = store
        .update_user(
            u.id,
            &UserUpdate {
                display_name: Some(Some("Judy".to_owned())),
                username: Some("judy2".to_owned()),
                ..UserUpdate::default()
            },
            at(6),
        )
        .await
        .unwrap();
    assert!(!changed);
    assert_eq!(
        renamed,
        User {
            username: "judy2".to_owned(),
            display_name: Some("Judy".to_owned()),
            updated_at: at(6),
            ..locked.clone()
        }
    );
    // Non-credential updates keep sessions.
    assert_eq!(
        store.list_refresh_tokens(u.id).await.unwrap(),
        vec![r3.clone()]
    );

    // A password change ends them.
    let (_, changed) = store
        .update_user(
            u.id,
            &UserUpdate {
                password_hash: Some("$argon2id$changed".to_owned()),
                ..UserUpdate::default()
            },
            at(7),
        )
        .await
        .unwrap();
    assert!(changed);
    assert!(store.list_refresh_tokens(u.id).await.unwrap().is_empty());
    assert_eq!(store.refresh_token_by_hash("judy-3").await.unwrap(), None);
    assert_eq!(
        store.list_refresh_tokens(other.id).await.unwrap(),
        vec![theirs]
    );
    let after = fetch_user(store, u.id).await;
    assert_eq!(after.credential_version, 4);
    assert_eq!((after.failed_attempts, after.locked_at), (2, Some(at(5))));
}

async fn contract_upgrade_password_hash(store: &Store) {
    let mut bcrypt = new_user("kim");
    bcrypt.password_hash = Some("$2y$10$old".to_owned());
    let u = store.create_user(&bcrypt, Some("kim"), T0).await.unwrap();

    // Nothing changed since the read: the hash is replaced, nothing else moves.
    assert!(
        store
            .upgrade_password_hash(u.id, "$2y$10$old", 0, "$argon2id$upgraded")
            .await
            .unwrap()
    );
    let upgraded = fetch_user(store, u.id).await;
    assert_eq!(
        upgraded,
        User {
            password_hash: Some("$argon2id$upgraded".to_owned()),
            updated_at: upgraded.updated_at,
            ..u.clone()
        }
    );
    // The hash read is no longer there: nothing written.
    assert!(
        !store
            .upgrade_password_hash(u.id, "$2y$10$old", 0, "$argon2id$again")
            .await
            .unwrap()
    );
    assert_eq!(fetch_user(store, u.id).await, upgraded);

    // A password change between the read and the upgrade wins.
    let read = fetch_user(store, u.id).await;
    store
        .update_user(
            u.id,
            &UserUpdate {
                password_hash: Some("$argon2id$chosen".to_owned()),
                ..UserUpdate::default()
            },
            at(1),
        )
        .await
        .unwrap();
    assert!(
        !store
            .upgrade_password_hash(
                u.id,
                read.password_hash.as_deref().unwrap(),
                read.credential_version,
                "$argon2id$stale"
            )
            .await
            .unwrap()
    );
    let after = fetch_user(store, u.id).await;
    assert_eq!(after.password_hash.as_deref(), Some("$argon2id$chosen"));
    assert_eq!(after.credential_version, 1);

    // So does a change of the credential version alone (disabled and enabled again,
    // same hash): the version is part of the guard.
    let read = after;
    for enabled in [false, true] {
        store
            .update_user(
                u.id,
                &UserUpdate {
                    enabled: Some(enabled),
                    ..UserUpdate::default()
                },
                at(2),
            )
            .await
            .unwrap();
    }
    assert!(
        !store
            .upgrade_password_hash(u.id, "$argon2id$chosen", read.credential_version, "$x")
            .await
            .unwrap()
    );
    let now = fetch_user(store, u.id).await;
    assert_eq!(now.password_hash.as_deref(), Some("$argon2id$chosen"));
    assert_eq!(now.credential_version, 3);
    assert!(
        store
            .upgrade_password_hash(u.id, "$argon2id$chosen", 3, "$argon2id$fresh")
            .await
            .unwrap()
    );
    assert_eq!(fetch_user(store, u.id).await.credential_version, 3);

    assert!(
        !store
            .upgrade_password_hash(u.id + 1000, "$argon2id$fresh", 3, "$y")
            .await
            .unwrap()
    );
}

async fn contract_list_users(store: &Store) {
    for (name, display) in [
        ("mallory", Some("M")),
        ("Bob", None),
        ("alice", Some("A")),
        ("dave", None),
        ("Carol", Some("C")),
    ] {
        let mut u = new_user(name);
        u.display_name = display.map(str::to_owned);
        store.create_user(&u, None, T0).await.unwrap();
    }
    let names = |p: &Page<UserListing>| -> Vec<String> {
        p.items.iter().map(|l| l.user.username.clone()).collect()
    };

    let all = store.list_users(&PageRequest::default()).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(names(&all), ["mallory", "Bob", "alice", "dave", "Carol"]);
    // No registry, no personal namespace.
    assert!(all.items.iter().all(|l| l.personal_namespace_id.is_none()));

    // Case-insensitive by name, both directions, with paging.
    let p = store
        .list_users(&page(0, Some(2), "username", false))
        .await
        .unwrap();
    assert_eq!(
        (names(&p), p.total),
        (vec!["alice".into(), "Bob".into()], 5)
    );
    let p = store
        .list_users(&page(2, Some(2), "username", false))
        .await
        .unwrap();
    assert_eq!(names(&p), ["Carol", "dave"]);
    let p = store
        .list_users(&page(4, Some(2), "username", false))
        .await
        .unwrap();
    assert_eq!((names(&p), p.total), (vec!["mallory".into()], 5));
    let p = store
        .list_users(&page(10, Some(2), "username", false))
        .await
        .unwrap();
    assert_eq!((p.items.len(), p.total), (0, 5));
    let p = store
        .list_users(&page(0, None, "username", true))
        .await
        .unwrap();
    assert_eq!(names(&p), ["mallory", "dave", "Carol", "Bob", "alice"]);
    let p = store
        .list_users(&page(1, None, "username", true))
        .await
        .unwrap();
    assert_eq!(names(&p), ["dave", "Carol", "Bob", "alice"]);

    // Unknown or unsortable columns fall back to id.
    for bogus in ["nope", "password_hash", "id; DROP TABLE users"] {
        let p = store.list_users(&page(0, None, bogus, true)).await.unwrap();
        assert_eq!(
            names(&p),
            ["Carol", "dave", "alice", "Bob", "mallory"],
            "{bogus}"
        );
    }

    // NULLs sort last ascending, first descending, on both backends.
    let p = store
        .list_users(&page(0, None, "display_name", false))
        .await
        .unwrap();
    assert_eq!(names(&p), ["alice", "Carol", "mallory", "Bob", "dave"]);
    let p = store
        .list_users(&page(0, None, "display_name", true))
        .await
        .unwrap();
    assert_eq!(names(&p), ["dave", "Bob", "mallory", "Carol", "alice"]);
}

/// `list_users` and `user_listing` carry each user's personal namespace in the first
/// registry.
async fn contract_user_listing(store: &Store) {
    let early = user(store, "early").await;
    assert_eq!(
        store.user_listing(early.id).await.unwrap(),
        Some(UserListing {
            user: early.clone(),
            personal_namespace_id: None,
        })
    );

    let r1 = registry(store, "one").await;
    let r2 = registry(store, "two").await;
    let alice = user(store, "alice").await;
    let mut bot = new_user("robot");
    bot.bot = true;
    let bot = store.create_user(&bot, None, T0).await.unwrap();
    let root = admin(store, "root").await;

    let personal_in = |r: &Registry, u: &User| {
        let (rid, uid) = (r.id, u.id);
        async move {
            store
                .personal_namespace(rid, uid)
                .await
                .unwrap()
                .map(|n| n.id)
        }
    };
    // The first registry's, not the second's.
    let expected: Vec<(Id, Option<Id>)> = vec![
        (early.id, personal_in(&r1, &early).await),
        (alice.id, personal_in(&r1, &alice).await),
        (bot.id, None),
        (root.id, personal_in(&r1, &root).await),
    ];
    assert!(expected[0].1.is_some() && expected[1].1.is_some() && expected[3].1.is_some());
    assert_ne!(expected[1].1, personal_in(&r2, &alice).await);

    let listed = store.list_users(&PageRequest::default()).await.unwrap();
    assert_eq!(listed.total, 4);
    let got: Vec<(Id, Option<Id>)> = listed
        .items
        .iter()
        .map(|l| (l.user.id, l.personal_namespace_id))
        .collect();
    assert_eq!(got, expected);
    for l in &listed.items {
        assert_eq!(l.user, fetch_user(store, l.user.id).await);
        assert_eq!(
            store.user_listing(l.user.id).await.unwrap().as_ref(),
            Some(l)
        );
    }
    // Paging and sorting keep the namespace with its user.
    let p = store
        .list_users(&page(0, Some(1), "username", true))
        .await
        .unwrap();
    assert_eq!(
        (
            p.items[0].user.id,
            p.items[0].personal_namespace_id,
            p.total
        ),
        (root.id, expected[3].1, 4)
    );
    assert_eq!(store.user_listing(root.id + 1000).await.unwrap(), None);
}

async fn contract_personal_namespaces(store: &Store) {
    let r1 = registry(store, "one").await;
    let r2 = registry(store, "two").await;
    let founder = user(store, "founder").await;
    let devs = team(store, "devs", &founder).await;
    // "alice" and "bob", "bob1" are taken in r1 by team namespaces.
    for name in ["alice", "bob", "bob1"] {
        namespace(store, &r1, &devs, name, Visibility::Public).await;
    }

    let alice = user(store, "Alice").await;
    let bob = user(store, "bob").await;
    let expectations = [
        (&alice, &r1, "alice1"),
        (&alice, &r2, "alice"),
        (&bob, &r1, "bob2"),
        (&bob, &r2, "bob"),
    ];
    for (u, r, expected) in expectations {
        let ns = store.personal_namespace(r.id, u.id).await.unwrap().unwrap();
        assert_eq!(ns.name, expected);
        assert_eq!(ns.kind, NamespaceKind::Personal);
        assert_eq!(ns.visibility, Visibility::Private);
        assert_eq!(ns.user_id, Some(u.id));
        assert_eq!((ns.created_at, ns.updated_at), (T0, T0));
        let team = personal_team(store, u).await;
        assert!(team.hidden);
        assert_eq!(ns.team_id, team.id);
        assert_eq!(role_in(store, team.id, u).await, Some(Role::Owner));
        assert_eq!(team_counts(store, team.id).await, (1, 2));
    }
    // The founder's namespaces predate the team namespaces.
    assert_eq!(
        store
            .personal_namespace(r1.id, founder.id)
            .await
            .unwrap()
            .unwrap()
            .name,
        "founder"
    );
    // A personal namespace is unique per registry and user.
    let alice_team = personal_team(store, &alice).await;
    let mut second = new_namespace(&r1, &alice_team, "alice-again", Visibility::Private);
    second.kind = NamespaceKind::Personal;
    second.user_id = Some(alice.id);
    assert_eq!(
        conflict(store.create_namespace(&second, T0).await.unwrap_err()),
        "user"
    );
}

async fn contract_bots_get_no_personal_namespace(store: &Store) {
    let r = registry(store, "one").await;
    let mut bot = new_user("ci-bot");
    bot.bot = true;
    bot.password_hash = None;
    let bot = store.create_user(&bot, None, T0).await.unwrap();
    assert!(bot.bot);
    assert_eq!(store.personal_namespace(r.id, bot.id).await.unwrap(), None);
    assert_eq!(
        store
            .team_by_name(&format!("portus_personal_{}", bot.id))
            .await
            .unwrap(),
        None
    );
    // Nor in registries created later.
    let r2 = registry(store, "two").await;
    assert_eq!(store.personal_namespace(r2.id, bot.id).await.unwrap(), None);
}

// ---------------------------------------------------------------- contract: registries and admins

async fn contract_registries(store: &Store) {
    let root = admin(store, "root").await;
    let other_admin = admin(store, "ops").await;
    let plain = user(store, "plain").await;
    assert_eq!(enabled_admins(store).await, [root.id, other_admin.id]);

    let r = store
        .create_registry(
            &NewRegistry {
                name: "main".to_owned(),
                hostname: "registry.test:5000".to_owned(),
                use_ssl: false,
                external_hostname: Some("registry.example.com".to_owned()),
            },
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(r.name, "main");
    assert_eq!(r.hostname, "registry.test:5000");
    assert!(!r.use_ssl);
    assert_eq!(r.external_hostname.as_deref(), Some("registry.example.com"));
    assert_eq!((r.created_at, r.updated_at), (at(1), at(1)));

    // The global team and namespace.
    let global = store.global_namespace(r.id).await.unwrap().unwrap();
    assert_eq!(global.name, global_namespace_name(r.id));
    assert_eq!(global.kind, NamespaceKind::Global);
    assert_eq!(global.visibility, Visibility::Public);
    assert_eq!(global.user_id, None);
    let global_team = store.team_by_id(global.team_id).await.unwrap().unwrap();
    assert_eq!(global_team.name, global_team_name(r.id));
    assert!(global_team.hidden);
    assert_eq!(
        role_in(store, global_team.id, &root).await,
        Some(Role::Owner)
    );
    assert_eq!(
        role_in(store, global_team.id, &other_admin).await,
        Some(Role::Owner)
    );
    assert_eq!(role_in(store, global_team.id, &plain).await, None);
    assert_eq!(
        owners(store, global_team.id).await,
        [root.id, other_admin.id]
    );

    // Look-ups.
    assert_eq!(store.registry_by_id(r.id).await.unwrap().unwrap(), r);
    assert_eq!(store.registry_by_id(r.id + 100).await.unwrap(), None);
    assert_eq!(
        store
            .registry_by_service("registry.test:5000")
            .await
            .unwrap()
            .unwrap()
            .id,
        r.id
    );
    assert_eq!(
        store
            .registry_by_service("registry.example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        r.id
    );
    assert_eq!(
        store.registry_by_service("registry.test").await.unwrap(),
        None
    );

    // Unique name and hostname.
    let dup = |name: &str, hostname: &str| NewRegistry {
        name: name.to_owned(),
        hostname: hostname.to_owned(),
        use_ssl: true,
        external_hostname: None,
    };
    let e = store
        .create_registry(&dup("main", "other:5000"), T0)
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "name");
    let e = store
        .create_registry(&dup("other", "registry.test:5000"), T0)
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "hostname");
    // Nothing of the failed attempts remains.
    assert_eq!(store.list_registries().await.unwrap(), vec![r.clone()]);

    // A second registry whose hostname is the first one's external name: the hostname
    // match wins.
    let second = store
        .create_registry(&dup("second", "registry.example.com"), at(2))
        .await
        .unwrap();
    assert_eq!(
        store
            .registry_by_service("registry.example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        second.id
    );
    let listed: Vec<Id> = store
        .list_registries()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [r.id, second.id]);

    // Updates.
    let mut changed = second.clone();
    changed.name = "renamed".to_owned();
    changed.hostname = "renamed:443".to_owned();
    changed.use_ssl = false;
    changed.external_hostname = None;
    let updated = store.update_registry(&changed, at(3)).await.unwrap();
    assert_eq!(
        updated,
        Registry {
            updated_at: at(3),
            ..changed.clone()
        }
    );
    let mut clash = updated.clone();
    clash.hostname = r.hostname.clone();
    assert_eq!(
        conflict(store.update_registry(&clash, at(4)).await.unwrap_err()),
        "hostname"
    );
    let mut clash = updated.clone();
    clash.name = r.name.clone();
    assert_eq!(
        conflict(store.update_registry(&clash, at(4)).await.unwrap_err()),
        "name"
    );
    let mut missing = updated;
    missing.id += 100;
    assert_not_found(store.update_registry(&missing, at(4)).await);
}

async fn contract_registry_adds_personal_namespaces(store: &Store) {
    // Users exist before any registry; "bob-" and "bob" derive the same base name.
    let bob = user(store, "bob").await;
    let bob_dash = user(store, "bob-").await;
    let mut bot = new_user("robot");
    bot.bot = true;
    let bot = store.create_user(&bot, None, T0).await.unwrap();
    // A non-bot created without a personal team gets no namespace either.
    let teamless = store
        .create_user(&new_user("teamless"), None, T0)
        .await
        .unwrap();

    let r = registry(store, "one").await;
    let ns = store
        .personal_namespace(r.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ns.name, "bob");
    assert_eq!(ns.team_id, personal_team(store, &bob).await.id);
    assert_eq!(ns.kind, NamespaceKind::Personal);
    assert_eq!(ns.visibility, Visibility::Private);
    let ns = store
        .personal_namespace(r.id, bob_dash.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ns.name, "bob1");
    assert_eq!(store.personal_namespace(r.id, bot.id).await.unwrap(), None);
    assert_eq!(
        store.personal_namespace(r.id, teamless.id).await.unwrap(),
        None
    );
}

async fn contract_set_admin(store: &Store) {
    let r1 = registry(store, "one").await;
    let boss = admin(store, "boss").await;
    let u = user(store, "worker").await;
    let t = team(store, "builders", &boss).await;
    store
        .add_member(t.id, u.id, Role::Viewer, T0)
        .await
        .unwrap();
    let g1 = global_team_id(store, &r1).await;
    assert_eq!(role_in(store, g1, &u).await, None);

    let promoted = store.set_admin(u.id, true, at(5)).await.unwrap();
    assert!(promoted.admin);
    assert_eq!(promoted.updated_at, at(5));
    assert_eq!(role_in(store, g1, &u).await, Some(Role::Owner));
    assert_eq!(role_in(store, t.id, &u).await, Some(Role::Owner)); // admins own their teams
    assert_eq!(enabled_admins(store).await, [boss.id, u.id]);
    // Idempotent.
    store.set_admin(u.id, true, at(6)).await.unwrap();
    assert_eq!(owners(store, g1).await, [boss.id, u.id]);
    // Not a credential change.
    assert_eq!(fetch_user(store, u.id).await.credential_version, 0);

    // Registries created later include the new admin.
    let r2 = registry(store, "two").await;
    let g2 = global_team_id(store, &r2).await;
    assert_eq!(role_in(store, g2, &u).await, Some(Role::Owner));

    let demoted = store.set_admin(u.id, false, at(7)).await.unwrap();
    assert!(!demoted.admin);
    assert_eq!(role_in(store, g1, &u).await, None);
    assert_eq!(role_in(store, g2, &u).await, None);
    assert_eq!(role_in(store, g1, &boss).await, Some(Role::Owner));
    // Other memberships stay as they are.
    assert_eq!(role_in(store, t.id, &u).await, Some(Role::Owner));
    let personal = personal_team(store, &u).await;
    assert_eq!(role_in(store, personal.id, &u).await, Some(Role::Owner));
    assert_eq!(enabled_admins(store).await, [boss.id]);

    // The last enabled admin cannot be demoted, and nothing about them changes.
    assert_eq!(
        refusal(store.set_admin(boss.id, false, at(8)).await),
        Refusal::LastAdmin
    );
    let still = fetch_user(store, boss.id).await;
    assert_eq!((still.admin, still.updated_at), (true, T0));
    assert_eq!(role_in(store, g1, &boss).await, Some(Role::Owner));
    assert_eq!(role_in(store, g2, &boss).await, Some(Role::Owner));
    // Demoting someone who is no admin is no change, and allowed.
    store.set_admin(u.id, false, at(8)).await.unwrap();

    // Disabled admins don't count: with boss disabled, the other admin is the last.
    store.set_admin(u.id, true, at(9)).await.unwrap();
    store
        .update_user(
            boss.id,
            &UserUpdate {
                enabled: Some(false),
                ..UserUpdate::default()
            },
            at(9),
        )
        .await
        .unwrap();
    assert_eq!(enabled_admins(store).await, [u.id]);
    assert_eq!(
        refusal(store.set_admin(u.id, false, at(10)).await),
        Refusal::LastAdmin
    );
    // A disabled admin may be demoted.
    let boss_demoted = store.set_admin(boss.id, false, at(10)).await.unwrap();
    assert!(!boss_demoted.admin && !boss_demoted.enabled);
    assert_eq!(role_in(store, g1, &boss).await, None);
    assert_eq!(owners(store, g1).await, [u.id]);

    assert_not_found(store.set_admin(u.id + 1000, true, at(11)).await);
    assert_not_found(store.set_admin(u.id + 1000, false, at(11)).await);
}

/// Disabling or demoting the last enabled admin is refused, with nothing written.
async fn contract_last_admin(store: &Store) {
    let r = registry(store, "one").await;
    let root = admin(store, "root").await;
    let plain = user(store, "plain").await;
    let g = global_team_id(store, &r).await;
    let session = store
        .create_refresh_token(root.id, None, "svc", "", "root-session", T0)
        .await
        .unwrap();
    let enabled = |value: bool| UserUpdate {
        enabled: Some(value),
        ..UserUpdate::default()
    };

    for changes in [
        enabled(false),
        UserUpdate {
            admin: Some(false),
            ..UserUpdate::default()
        },
        // The whole update is refused, not just the part that breaks the rule.
        UserUpdate {
            email: Some("root@example.org".to_owned()),
            password_hash: Some("$argon2id$new".to_owned()),
            enabled: Some(false),
            ..UserUpdate::default()
        },
        UserUpdate {
            username: Some("groot".to_owned()),
            enabled: Some(true),
            admin: Some(false),
            ..UserUpdate::default()
        },
    ] {
        let e = store.update_user(root.id, &changes, at(1)).await;
        assert_eq!(refusal(e), Refusal::LastAdmin, "{changes:?}");
        assert_eq!(fetch_user(store, root.id).await, root, "{changes:?}");
        assert_eq!(role_in(store, g, &root).await, Some(Role::Owner));
        assert_eq!(
            store.list_refresh_tokens(root.id).await.unwrap(),
            vec![session.clone()]
        );
    }
    // Anything else about the last admin may change.
    let (renamed, _) = store
        .update_user(
            root.id,
            &UserUpdate {
                email: Some("root@example.org".to_owned()),
                enabled: Some(true),
                admin: Some(true),
                ..UserUpdate::default()
            },
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.email.as_str(), renamed.enabled, renamed.admin),
        ("root@example.org", true, true)
    );
    // Users who are no admins are disabled whatever the admins are.
    let (off, _) = store
        .update_user(plain.id, &enabled(false), at(2))
        .await
        .unwrap();
    assert!(!off.enabled);

    // With a second enabled admin, one of the two may go; then the other is the last.
    let ops = admin(store, "ops").await;
    let (root_off, _) = store
        .update_user(root.id, &enabled(false), at(3))
        .await
        .unwrap();
    assert!(!root_off.enabled && root_off.admin);
    assert_eq!(
        refusal(store.update_user(ops.id, &enabled(false), at(4)).await),
        Refusal::LastAdmin
    );
    assert_eq!(
        refusal(store.set_admin(ops.id, false, at(4)).await),
        Refusal::LastAdmin
    );
    assert!(fetch_user(store, ops.id).await.enabled);
    // Enabling again needs no other admin.
    store
        .update_user(root.id, &enabled(true), at(5))
        .await
        .unwrap();
    assert_eq!(enabled_admins(store).await, [root.id, ops.id]);

    // As the domain sees it: a 422 with Portus' message.
    assert_eq!(
        Refusal::LastAdmin.to_string(),
        "cannot remove the last admin"
    );
    let e: portcullis_domain::Error = StoreError::Refused(Refusal::LastAdmin).into();
    assert!(
        matches!(&e, portcullis_domain::Error::Unprocessable(m) if m == "cannot remove the last admin"),
        "{e:?}"
    );
}

async fn contract_bootstrap_admin(store: &Store) {
    let r = registry(store, "one").await;
    let token = NewApplicationToken {
        expires_at: Some(at(3600)),
        ..new_token("bootstrap", "boot-hash")
    };
    // The user is made an admin whatever `admin` says.
    let (root, tok) = store
        .bootstrap_admin(&new_user("root"), Some("root"), &token, at(1))
        .await
        .unwrap();
    assert!(root.admin && root.enabled && !root.bot);
    assert_eq!(
        (
            root.username.as_str(),
            root.created_at,
            root.credential_version
        ),
        ("root", at(1), 0)
    );
    assert_eq!(fetch_user(store, root.id).await, root);
    assert_eq!(
        (
            tok.user_id,
            tok.application.as_str(),
            tok.pull_only,
            tok.expires_at,
            tok.created_at
        ),
        (root.id, "bootstrap", false, Some(at(3600)), at(1))
    );
    assert_eq!(
        store.application_token_by_hash("boot-hash").await.unwrap(),
        Some((tok.clone(), root.clone()))
    );
    // A complete admin: personal namespace, owner of the global team.
    let personal = store.personal_namespace(r.id, root.id).await.unwrap();
    assert_eq!(personal.map(|n| n.name).as_deref(), Some("root"));
    let g = global_team_id(store, &r).await;
    assert_eq!(role_in(store, g, &root).await, Some(Role::Owner));
    assert_eq!(enabled_admins(store).await, [root.id]);

    // Once there is a user there is nothing to bootstrap, and nothing is written.
    let second = NewUser {
        admin: true,
        ..new_user("second")
    };
    let e = store
        .bootstrap_admin(
            &second,
            Some("second"),
            &new_token("bootstrap", "boot-2"),
            at(2),
        )
        .await;
    assert_eq!(refusal(e), Refusal::AlreadyBootstrapped);
    assert_eq!(user_count(store).await, 1);
    assert_eq!(store.user_by_username("second").await.unwrap(), None);
    assert_eq!(
        store.application_token_by_hash("boot-2").await.unwrap(),
        None
    );
    assert_eq!(
        store.list_application_tokens(root.id).await.unwrap(),
        vec![tok]
    );
    // Users who are no admins count as users too.
    user(store, "plain").await;
    let e = store
        .bootstrap_admin(&second, None, &new_token("bootstrap", "boot-3"), at(3))
        .await;
    assert_eq!(refusal(e), Refusal::AlreadyBootstrapped);
    assert_eq!(user_count(store).await, 2);
    assert_eq!(
        Refusal::AlreadyBootstrapped.to_string(),
        "you can only use this when there are no users on the system"
    );
}

async fn contract_failed_logins(store: &Store) {
    let u = user(store, "ivan").await;
    let after1 = store.record_failed_login(u.id, at(1), 3).await.unwrap();
    assert_eq!((after1.failed_attempts, after1.locked_at), (1, None));
    let after2 = store.record_failed_login(u.id, at(2), 3).await.unwrap();
    assert_eq!((after2.failed_attempts, after2.locked_at), (2, None));
    assert_eq!(after2.credential_version, 0);
    let locked = store.record_failed_login(u.id, at(3), 3).await.unwrap();
    assert_eq!((locked.failed_attempts, locked.locked_at), (3, Some(at(3))));
    assert_eq!(locked.credential_version, 1);
    // Further failures count but neither move the lock nor bump again.
    let more = store.record_failed_login(u.id, at(4), 3).await.unwrap();
    assert_eq!((more.failed_attempts, more.locked_at), (4, Some(at(3))));
    assert_eq!(more.credential_version, 1);
    assert_eq!(fetch_user(store, u.id).await, more);

    // A successful login does not lift a lock (nor reset its count)...
    store.clear_failed_logins(u.id).await.unwrap();
    assert_eq!(fetch_user(store, u.id).await, more);
    // ...and only the lock that was set is lifted by clear_expired_lock.
    store.clear_expired_lock(u.id, at(2)).await.unwrap();
    store.clear_expired_lock(u.id, at(4)).await.unwrap();
    assert_eq!(fetch_user(store, u.id).await, more);
    store.clear_expired_lock(u.id, at(3)).await.unwrap();
    let unlocked = fetch_user(store, u.id).await;
    assert_eq!(
        (
            unlocked.failed_attempts,
            unlocked.locked_at,
            unlocked.credential_version
        ),
        (0, None, 1)
    );

    // Without a lock, a successful login clears the count.
    for i in 0..2 {
        store.record_failed_login(u.id, at(5 + i), 3).await.unwrap();
    }
    assert_eq!(fetch_user(store, u.id).await.failed_attempts, 2);
    store.clear_failed_logins(u.id).await.unwrap();
    let cleared = fetch_user(store, u.id).await;
    assert_eq!((cleared.failed_attempts, cleared.locked_at), (0, None));
    assert_eq!(cleared.credential_version, 1);
    store.clear_failed_logins(u.id).await.unwrap(); // nothing to do
    store.clear_failed_logins(u.id + 1000).await.unwrap();
    store.clear_expired_lock(u.id + 1000, at(3)).await.unwrap();

    // A lift based on an old lock leaves a newer one alone.
    for i in 0..3 {
        store
            .record_failed_login(u.id, at(30 + i), 3)
            .await
            .unwrap();
    }
    store.clear_expired_lock(u.id, at(3)).await.unwrap();
    let relocked = fetch_user(store, u.id).await;
    assert_eq!(
        (
            relocked.failed_attempts,
            relocked.locked_at,
            relocked.credential_version
        ),
        (3, Some(at(32)), 2)
    );
    store.clear_expired_lock(u.id, at(32)).await.unwrap();
    assert_eq!(fetch_user(store, u.id).await.locked_at, None);

    // Locking disabled.
    for i in 0..3 {
        let u = store
            .record_failed_login(u.id, at(40 + i), 0)
            .await
            .unwrap();
        assert_eq!(u.locked_at, None);
    }
    assert_not_found(store.record_failed_login(u.id + 1000, at(50), 3).await);
}

async fn contract_delete_user(store: &Store) {
    let r1 = registry(store, "one").await;
    let r2 = registry(store, "two").await;
    let owner = user(store, "owner").await;
    let victim = user(store, "victim").await;
    let t = team(store, "shared", &owner).await;
    store
        .add_member(t.id, victim.id, Role::Contributor, T0)
        .await
        .unwrap();
    let personal = personal_team(store, &victim).await;
    let app = app_token(store, &victim, "ci", "hash-app", T0).await;
    let refresh = store
        .create_refresh_token(
            victim.id,
            None,
            "one.test:5000",
            "docker",
            "hash-refresh",
            T0,
        )
        .await
        .unwrap();
    let bound = store
        .create_refresh_token(
            victim.id,
            Some(app.id),
            "one.test:5000",
            "docker",
            "hash-bound",
            T0,
        )
        .await
        .unwrap();
    let victims_ns = [
        store
            .personal_namespace(r1.id, victim.id)
            .await
            .unwrap()
            .unwrap(),
        store
            .personal_namespace(r2.id, victim.id)
            .await
            .unwrap()
            .unwrap(),
    ];

    assert!(store.delete_user(victim.id).await.unwrap());
    assert_eq!(store.user_by_id(victim.id).await.unwrap(), None);
    assert_eq!(store.user_listing(victim.id).await.unwrap(), None);
    for ns in victims_ns {
        assert_eq!(store.namespace_by_id(ns.id).await.unwrap(), None);
    }
    assert_eq!(store.team_by_id(personal.id).await.unwrap(), None);
    assert_eq!(store.membership(t.id, victim.id).await.unwrap(), None);
    assert_eq!(team_counts(store, t.id).await, (1, 0));
    assert_eq!(store.application_token_by_id(app.id).await.unwrap(), None);
    assert_eq!(
        store.application_token_by_hash("hash-app").await.unwrap(),
        None
    );
    for (id, hash) in [(refresh.id, "hash-refresh"), (bound.id, "hash-bound")] {
        assert_eq!(store.refresh_token_by_id(id).await.unwrap(), None);
        assert_eq!(store.refresh_token_by_hash(hash).await.unwrap(), None);
    }

    // Others are untouched.
    assert!(
        store
            .personal_namespace(r1.id, owner.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.team_by_id(t.id).await.unwrap().is_some());
    assert_eq!(user_count(store).await, 1);
    assert!(!store.delete_user(victim.id).await.unwrap());
}

/// `delete_user` refuses to remove the last enabled admin or the only owner of a
/// visible team, and then deletes nothing.
async fn contract_delete_user_refusals(store: &Store) {
    let r = registry(store, "one").await;
    let boss = admin(store, "boss").await;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let zeta = team(store, "zeta", &alice).await;
    let alpha = team(store, "alpha", &alice).await;
    let shared = team(store, "shared", &alice).await;
    store
        .add_member(shared.id, bob.id, Role::Owner, T0)
        .await
        .unwrap();
    let bob_in_alpha = store
        .add_member(alpha.id, bob.id, Role::Contributor, T0)
        .await
        .unwrap();
    let ns = namespace(store, &r, &alpha, "apps", Visibility::Public).await;

    // Only the visible teams alice alone owns, by name; not her personal team, not the
    // team bob co-owns.
    let e = store.delete_user(alice.id).await;
    assert_eq!(
        refusal(e),
        Refusal::OnlyOwnerOf(vec!["alpha".to_owned(), "zeta".to_owned()])
    );
    assert_eq!(fetch_user(store, alice.id).await, alice);
    assert!(
        store
            .personal_namespace(r.id, alice.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(owners(store, alpha.id).await, [alice.id]);
    assert_eq!(owners(store, shared.id).await, [alice.id, bob.id]);
    assert!(store.namespace_by_id(ns.id).await.unwrap().is_some());
    let message = StoreError::Refused(Refusal::OnlyOwnerOf(vec![
        "alpha".to_owned(),
        "zeta".to_owned(),
    ]))
    .to_string();
    assert_eq!(
        message,
        "the user is the only owner of alpha, zeta: give the team another owner first"
    );

    // With another owner everywhere, she may go; the teams keep theirs.
    store
        .set_member_role(alpha.id, bob_in_alpha.id, Role::Owner, at(1))
        .await
        .unwrap();
    assert_eq!(
        refusal(store.delete_user(alice.id).await),
        Refusal::OnlyOwnerOf(vec!["zeta".to_owned()])
    );
    store
        .add_member(zeta.id, bob.id, Role::Owner, at(1))
        .await
        .unwrap();
    assert!(store.delete_user(alice.id).await.unwrap());
    for t in [&alpha, &zeta, &shared] {
        assert_eq!(owners(store, t.id).await, [bob.id], "{}", t.name);
    }
    assert!(store.namespace_by_id(ns.id).await.unwrap().is_some());

    // The last enabled admin stays.
    assert_eq!(
        refusal(store.delete_user(boss.id).await),
        Refusal::LastAdmin
    );
    assert_eq!(fetch_user(store, boss.id).await, boss);
    // Disabled admins don't count, and may be deleted.
    let old = admin(store, "old").await;
    store
        .update_user(
            old.id,
            &UserUpdate {
                enabled: Some(false),
                ..UserUpdate::default()
            },
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(
        refusal(store.delete_user(boss.id).await),
        Refusal::LastAdmin
    );
    assert!(store.delete_user(old.id).await.unwrap());
    // With a second enabled admin, one may go; the global team keeps the other.
    let ops = admin(store, "ops").await;
    assert!(store.delete_user(boss.id).await.unwrap());
    assert_eq!(
        owners(store, global_team_id(store, &r).await).await,
        [ops.id]
    );
    assert_eq!(refusal(store.delete_user(ops.id).await), Refusal::LastAdmin);
    assert_eq!(enabled_admins(store).await, [ops.id]);
}

// ---------------------------------------------------------------- contract: teams

async fn contract_teams(store: &Store) {
    let owner = user(store, "olivia").await;
    let t = store
        .create_team("Developers", "the devs", owner.id, at(1))
        .await
        .unwrap();
    assert_eq!(t.name, "Developers");
    assert_eq!(t.description, "the devs");
    assert!(!t.hidden);
    assert_eq!((t.created_at, t.updated_at), (at(1), at(1)));
    assert_eq!(role_in(store, t.id, &owner).await, Some(Role::Owner));
    assert_eq!(owners(store, t.id).await, [owner.id]);
    assert_eq!(team_counts(store, t.id).await, (1, 0));

    assert_eq!(store.team_by_id(t.id).await.unwrap().unwrap(), t);
    assert_eq!(store.team_by_id(t.id + 100).await.unwrap(), None);
    for name in ["developers", "DEVELOPERS"] {
        assert_eq!(store.team_by_name(name).await.unwrap().unwrap().id, t.id);
    }
    assert_eq!(store.team_by_name("dev").await.unwrap(), None);

    let e = store
        .create_team("DEVELOPERS", "", owner.id, T0)
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "name");
    // Hidden team names are taken too.
    let personal = personal_team(store, &owner).await;
    let e = store
        .create_team(&personal.name.to_uppercase(), "", owner.id, T0)
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "name");
    // A missing owner fails without leaving a team behind.
    assert_not_found(store.create_team("orphans", "", owner.id + 1000, T0).await);
    assert_eq!(store.team_by_name("orphans").await.unwrap(), None);

    let other = store.create_team("qa", "", owner.id, T0).await.unwrap();
    let updated = store
        .update_team(t.id, Some("Devs"), Some("renamed"), at(2))
        .await
        .unwrap();
    let expected = Team {
        name: "Devs".to_owned(),
        description: "renamed".to_owned(),
        updated_at: at(2),
        ..t.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.team_by_id(t.id).await.unwrap().unwrap(), expected);
    // Only what is given changes.
    let named = store
        .update_team(t.id, Some("Developers"), None, at(3))
        .await
        .unwrap();
    assert_eq!(
        (
            named.name.as_str(),
            named.description.as_str(),
            named.updated_at
        ),
        ("Developers", "renamed", at(3))
    );
    let described = store
        .update_team(t.id, None, Some(""), at(4))
        .await
        .unwrap();
    assert_eq!(
        (described.name.as_str(), described.description.as_str()),
        ("Developers", "")
    );
    let untouched = store.update_team(t.id, None, None, at(5)).await.unwrap();
    assert_eq!(
        untouched,
        Team {
            updated_at: at(5),
            ..described.clone()
        }
    );
    // Hidden-ness never changes.
    let hidden = store
        .update_team(personal.id, None, Some("mine"), at(5))
        .await
        .unwrap();
    assert!(hidden.hidden);
    assert_eq!(
        conflict(
            store
                .update_team(t.id, Some("QA"), None, at(6))
                .await
                .unwrap_err()
        ),
        "name"
    );
    assert_eq!(store.team_by_id(t.id).await.unwrap().unwrap(), untouched);
    assert_not_found(
        store
            .update_team(other.id + 1000, Some("x"), None, at(6))
            .await,
    );
    assert_not_found(store.update_team(other.id + 1000, None, None, at(6)).await);
}

async fn contract_list_teams(store: &Store) {
    let a = user(store, "ann").await; // ann and ben bring hidden personal teams
    let b = user(store, "ben").await;
    let r = registry(store, "one").await; // and a hidden global team
    for name in ["charlie", "alpha", "Bravo"] {
        team(store, name, &a).await;
    }
    let delta = team(store, "delta", &b).await;
    let bravo = store.team_by_name("bravo").await.unwrap().unwrap();
    let alpha = store.team_by_name("alpha").await.unwrap().unwrap();
    store
        .add_member(bravo.id, b.id, Role::Viewer, T0)
        .await
        .unwrap();
    assert!(store.global_namespace(r.id).await.unwrap().is_some());
    for name in ["a1", "a2"] {
        namespace(store, &r, &alpha, name, Visibility::Public).await;
    }
    namespace(store, &r, &delta, "d1", Visibility::Private).await;

    let names = |p: &Page<TeamListing>| -> Vec<String> {
        p.items.iter().map(|l| l.team.name.clone()).collect()
    };
    // (name, the viewer's role, members, namespaces)
    let rows = |p: &Page<TeamListing>| -> Vec<(String, Option<Role>, i64, i64)> {
        p.items
            .iter()
            .map(|l| (l.team.name.clone(), l.role, l.members, l.namespaces))
            .collect()
    };
    let row = |name: &str, role, members, namespaces| (name.to_owned(), role, members, namespaces);

    let all = store
        .list_teams(TeamScope::AllVisible, b.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.total, 4);
    assert_eq!(names(&all), ["charlie", "alpha", "Bravo", "delta"]);
    assert_eq!(
        rows(&all),
        [
            row("charlie", None, 1, 0),
            row("alpha", None, 1, 2),
            row("Bravo", Some(Role::Viewer), 2, 0),
            row("delta", Some(Role::Owner), 1, 1),
        ]
    );
    for l in &all.items {
        assert_eq!(l.team, store.team_by_id(l.team.id).await.unwrap().unwrap());
        assert_eq!(
            store.team_listing(l.team.id, b.id).await.unwrap().as_ref(),
            Some(l)
        );
    }
    // The role is the viewer's.
    let as_ann = store
        .list_teams(TeamScope::AllVisible, a.id, &page(0, None, "name", false))
        .await
        .unwrap();
    assert_eq!(
        rows(&as_ann),
        [
            row("alpha", Some(Role::Owner), 1, 2),
            row("Bravo", Some(Role::Owner), 2, 0),
            row("charlie", Some(Role::Owner), 1, 0),
            row("delta", None, 1, 1),
        ]
    );
    let as_nobody = store
        .list_teams(TeamScope::AllVisible, b.id + 1000, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(as_nobody.total, 4);
    assert!(as_nobody.items.iter().all(|l| l.role.is_none()));

    let p = store
        .list_teams(
            TeamScope::AllVisible,
            b.id,
            &page(1, Some(2), "name", false),
        )
        .await
        .unwrap();
    assert_eq!(
        (names(&p), p.total),
        (vec!["Bravo".into(), "charlie".into()], 4)
    );
    let p = store
        .list_teams(TeamScope::AllVisible, b.id, &page(0, Some(3), "name", true))
        .await
        .unwrap();
    assert_eq!(names(&p), ["delta", "charlie", "Bravo"]);
    let p = store
        .list_teams(TeamScope::AllVisible, b.id, &page(0, None, "bogus", true))
        .await
        .unwrap();
    assert_eq!(names(&p), ["delta", "Bravo", "alpha", "charlie"]);

    let mine = store
        .list_teams(TeamScope::MemberOf, b.id, &page(0, None, "name", false))
        .await
        .unwrap();
    assert_eq!(mine.total, 2);
    assert_eq!(
        rows(&mine),
        [
            row("Bravo", Some(Role::Viewer), 2, 0),
            row("delta", Some(Role::Owner), 1, 1),
        ]
    );
    let p = store
        .list_teams(TeamScope::MemberOf, b.id, &page(1, Some(5), "name", false))
        .await
        .unwrap();
    assert_eq!((names(&p), p.total), (vec!["delta".into()], 2));
    let none = store
        .list_teams(TeamScope::MemberOf, b.id + 1000, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!((none.items.len(), none.total), (0, 0));

    // `team_listing` shows hidden teams too (list_teams never does).
    let personal = personal_team(store, &a).await;
    assert_eq!(
        store.team_listing(personal.id, a.id).await.unwrap(),
        Some(TeamListing {
            team: personal.clone(),
            role: Some(Role::Owner),
            members: 1,
            namespaces: 1,
        })
    );
    assert_eq!(
        store
            .team_listing(personal.id, b.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        None
    );
    assert_eq!(
        store.team_listing(delta.id + 1000, b.id).await.unwrap(),
        None
    );
}

async fn contract_delete_team(store: &Store) {
    let r = registry(store, "one").await;
    let owner = user(store, "owner").await;
    let member = user(store, "member").await;
    let from = team(store, "from", &owner).await;
    let to = team(store, "to", &owner).await;
    store
        .add_member(from.id, member.id, Role::Viewer, T0)
        .await
        .unwrap();
    let n1 = namespace(store, &r, &from, "n1", Visibility::Private).await;
    let n2 = namespace(store, &r, &from, "n2", Visibility::Public).await;
    let n3 = namespace(store, &r, &to, "n3", Visibility::Public).await;

    // A missing target changes nothing.
    assert_not_found(store.delete_team(from.id, Some(to.id + 1000)).await);
    assert_eq!(team_counts(store, from.id).await, (2, 2));
    assert!(store.delete_team(from.id, Some(from.id)).await.is_err());
    assert_eq!(team_counts(store, from.id).await, (2, 2));

    store.delete_team(from.id, Some(to.id)).await.unwrap();
    assert_eq!(store.team_by_id(from.id).await.unwrap(), None);
    assert_eq!(store.membership(from.id, member.id).await.unwrap(), None);
    let moved: Vec<Id> = store
        .namespaces_of_team(to.id, None)
        .await
        .unwrap()
        .iter()
        .map(|n| n.namespace.id)
        .collect();
    assert_eq!(moved, [n1.id, n2.id, n3.id]);
    assert_eq!(team_counts(store, to.id).await, (1, 3));

    store.delete_team(to.id, None).await.unwrap();
    for n in [n1, n2, n3] {
        assert_eq!(store.namespace_by_id(n.id).await.unwrap(), None);
    }
    assert_eq!(store.team_by_id(to.id).await.unwrap(), None);
    assert_not_found(store.delete_team(to.id, None).await);
    // Users survive their teams.
    assert!(store.user_by_id(member.id).await.unwrap().is_some());
}

async fn contract_members(store: &Store) {
    let owner = user(store, "owner").await;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let t = team(store, "team", &owner).await;

    let m = store
        .add_member(t.id, alice.id, Role::Contributor, at(1))
        .await
        .unwrap();
    assert_eq!(
        (m.team_id, m.user_id, m.role),
        (t.id, alice.id, Role::Contributor)
    );
    assert_eq!((m.created_at, m.updated_at), (at(1), at(1)));
    let e = store
        .add_member(t.id, alice.id, Role::Viewer, at(2))
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "member");
    assert_not_found(
        store
            .add_member(t.id, alice.id + 1000, Role::Viewer, at(2))
            .await,
    );
    assert_not_found(
        store
            .add_member(t.id + 1000, alice.id, Role::Viewer, at(2))
            .await,
    );

    assert_eq!(store.member_by_id(m.id).await.unwrap().unwrap(), m);
    assert_eq!(store.member_by_id(m.id + 1000).await.unwrap(), None);
    assert_eq!(store.membership(t.id, alice.id).await.unwrap().unwrap(), m);
    assert_eq!(store.membership(t.id, bob.id).await.unwrap(), None);

    let b = store
        .add_member(t.id, bob.id, Role::Viewer, at(3))
        .await
        .unwrap();
    let promoted = store
        .set_member_role(t.id, m.id, Role::Owner, at(4))
        .await
        .unwrap();
    assert_eq!(
        (promoted.role, promoted.updated_at, promoted.created_at),
        (Role::Owner, at(4), at(1))
    );
    assert_eq!(owners(store, t.id).await, [owner.id, alice.id]);
    assert_not_found(
        store
            .set_member_role(t.id, m.id + 1000, Role::Owner, at(4))
            .await,
    );
    assert_not_found(
        store
            .set_member_role(t.id, m.id + 1000, Role::Viewer, at(4))
            .await,
    );

    let members = store.list_members(t.id).await.unwrap();
    let listed: Vec<(Id, String, Role)> = members
        .iter()
        .map(|(m, u)| {
            assert_eq!(m.user_id, u.id);
            (m.id, u.username.clone(), m.role)
        })
        .collect();
    let owner_member = store.membership(t.id, owner.id).await.unwrap().unwrap();
    assert_eq!(
        listed,
        [
            (owner_member.id, "owner".to_owned(), Role::Owner),
            (m.id, "alice".to_owned(), Role::Owner),
            (b.id, "bob".to_owned(), Role::Viewer),
        ]
    );
    assert_eq!(members[1].1, fetch_user(store, alice.id).await);

    store.remove_member(t.id, b.id).await.unwrap();
    assert_eq!(store.membership(t.id, bob.id).await.unwrap(), None);
    assert_not_found(store.remove_member(t.id, b.id).await);
    assert_eq!(team_counts(store, t.id).await, (2, 0));
    assert!(store.list_members(t.id + 1000).await.unwrap().is_empty());
}

/// `set_member_role` and `remove_member` keep an owner in every team and only touch
/// memberships of the team they are given.
async fn contract_group_sync(store: &Store) {
    let owner = user(store, "owner").await;
    let alice = user(store, "Alice").await;
    let boss = user(store, "boss").await;
    let dave = user(store, "dave").await;
    let t = team(store, "developers", &owner).await;
    let other = team(store, "other", &owner).await;

    // Names are matched case-insensitively, unknown names find nobody.
    let found = store
        .users_named(&["alice".into(), "BOSS".into(), "nobody".into()])
        .await
        .unwrap();
    let ids: Vec<Id> = found.iter().map(|u| u.id).collect();
    assert_eq!(ids, vec![alice.id, boss.id]);
    assert!(store.users_named(&[]).await.unwrap().is_empty());

    // Teams synced: visible ones that did not opt out.
    let synced = |teams: Vec<Team>| teams.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(
        synced(store.group_sync_teams().await.unwrap()),
        ["developers", "other"]
    );
    store
        .set_team_group_sync(other.id, false, at(1))
        .await
        .unwrap();
    assert_eq!(store.team_group_sync(other.id).await.unwrap(), Some(false));
    assert_eq!(
        synced(store.group_sync_teams().await.unwrap()),
        ["developers"]
    );
    assert_eq!(store.team_group_sync(9999).await.unwrap(), None);
    assert_not_found(store.set_team_group_sync(9999, true, at(1)).await);

    // Adding: only who is missing; an existing membership keeps its role.
    store
        .add_member(t.id, dave.id, Role::Contributor, at(1))
        .await
        .unwrap();
    let wanted = [
        (alice.id, Role::Viewer),
        (boss.id, Role::Owner),
        (dave.id, Role::Viewer),
    ];
    let change = store
        .apply_group_sync(t.id, &wanted, false, at(2))
        .await
        .unwrap();
    assert_eq!(
        change.added,
        vec![(alice.id, Role::Viewer), (boss.id, Role::Owner)]
    );
    let again = store
        .apply_group_sync(t.id, &wanted, true, at(3))
        .await
        .unwrap();
    assert_eq!(again, GroupSyncChange::default());
    let dave_m = store.membership(t.id, dave.id).await.unwrap().unwrap();
    assert_eq!(dave_m.role, Role::Contributor);

    // Removing: only what the sync added, and never the only owner.
    let owner_m = store.membership(t.id, owner.id).await.unwrap().unwrap();
    store.remove_member(t.id, owner_m.id).await.unwrap();
    let change = store
        .apply_group_sync(t.id, &[], false, at(4))
        .await
        .unwrap();
    assert_eq!(change, GroupSyncChange::default(), "without remove_leavers");
    let change = store
        .apply_group_sync(t.id, &[], true, at(5))
        .await
        .unwrap();
    assert_eq!(change.removed, vec![alice.id]);
    assert_eq!(change.kept_last_owner, vec![boss.id]);
    let left: Vec<Id> = store
        .list_members(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, u)| u.id)
        .collect();
    assert_eq!(left, vec![dave.id, boss.id]);
}

async fn contract_identities(store: &Store) {
    let alice = user(store, "alice").await;
    assert_eq!(store.identity_user("oidc", "sub-a").await.unwrap(), None);
    store
        .link_identity(alice.id, "oidc", "sub-a", at(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .identity_user("oidc", "sub-a")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(alice.id)
    );
    // The same subject at another provider is another account.
    assert_eq!(store.identity_user("other", "sub-a").await.unwrap(), None);
    // One account at a provider names one user.
    let bob = user(store, "bob").await;
    assert!(matches!(
        store.link_identity(bob.id, "oidc", "sub-a", at(2)).await,
        Err(StoreError::Conflict("identity"))
    ));
    store.identity_used("oidc", "sub-a", at(3)).await.unwrap();
    assert_eq!(store.identities_of(alice.id).await.unwrap(), ["oidc"]);
    assert!(store.identities_of(bob.id).await.unwrap().is_empty());

    // Sign-up with an identity: the user and the link together, or neither.
    let carol = store
        .sign_up_with_identity(
            &new_user("carol"),
            Some("carol"),
            true,
            ("oidc", "sub-c"),
            at(4),
        )
        .await
        .unwrap();
    assert!(!carol.admin, "not the first user");
    assert_eq!(
        store
            .identity_user("oidc", "sub-c")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(carol.id)
    );
    let taken = store
        .sign_up_with_identity(
            &new_user("dave"),
            Some("dave"),
            true,
            ("oidc", "sub-c"),
            at(5),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict("identity"))),
        "{taken:?}"
    );
    assert_eq!(store.user_by_username("dave").await.unwrap(), None);
    // Deleting the user deletes the link.
    assert!(store.delete_user(carol.id).await.unwrap());
    assert_eq!(store.identity_user("oidc", "sub-c").await.unwrap(), None);
}

async fn contract_last_owner(store: &Store) {
    let owner = user(store, "owner").await;
    let alice = user(store, "alice").await;
    let t = team(store, "team", &owner).await;
    let elsewhere = team(store, "elsewhere", &alice).await;
    let owner_m = store.membership(t.id, owner.id).await.unwrap().unwrap();
    let alice_m = store
        .add_member(t.id, alice.id, Role::Contributor, T0)
        .await
        .unwrap();

    // The only owner can be neither demoted nor removed.
    for role in [Role::Contributor, Role::Viewer] {
        assert_eq!(
            refusal(store.set_member_role(t.id, owner_m.id, role, at(1)).await),
            Refusal::LastOwner
        );
    }
    assert_eq!(
        refusal(store.remove_member(t.id, owner_m.id).await),
        Refusal::LastOwner
    );
    assert_eq!(
        store.member_by_id(owner_m.id).await.unwrap().unwrap(),
        owner_m
    );
    // "Promoting" them is no change and allowed.
    store
        .set_member_role(t.id, owner_m.id, Role::Owner, at(1))
        .await
        .unwrap();

    // A membership of another team is not found, and stays as it is.
    assert_not_found(
        store
            .set_member_role(elsewhere.id, alice_m.id, Role::Owner, at(2))
            .await,
    );
    assert_not_found(
        store
            .set_member_role(elsewhere.id, owner_m.id, Role::Viewer, at(2))
            .await,
    );
    assert_not_found(store.remove_member(elsewhere.id, alice_m.id).await);
    assert_not_found(store.remove_member(elsewhere.id, owner_m.id).await);
    assert_eq!(
        store.member_by_id(alice_m.id).await.unwrap().unwrap(),
        alice_m
    );
    assert_eq!(owners(store, t.id).await, [owner.id]);
    assert_eq!(owners(store, elsewhere.id).await, [alice.id]);

    // With a second owner, either may step down; then the other is the last.
    store
        .set_member_role(t.id, alice_m.id, Role::Owner, at(3))
        .await
        .unwrap();
    let demoted = store
        .set_member_role(t.id, owner_m.id, Role::Viewer, at(4))
        .await
        .unwrap();
    assert_eq!(demoted.role, Role::Viewer);
    assert_eq!(owners(store, t.id).await, [alice.id]);
    assert_eq!(
        refusal(store.remove_member(t.id, alice_m.id).await),
        Refusal::LastOwner
    );
    assert_eq!(
        refusal(
            store
                .set_member_role(t.id, alice_m.id, Role::Viewer, at(5))
                .await
        ),
        Refusal::LastOwner
    );
    // Members who are no owners are removed freely.
    store.remove_member(t.id, owner_m.id).await.unwrap();
    assert_eq!(team_counts(store, t.id).await, (1, 0));
    assert_eq!(owners(store, t.id).await, [alice.id]);

    // Personal teams keep their owner too.
    let personal = personal_team(store, &owner).await;
    let pm = store
        .membership(personal.id, owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refusal(store.remove_member(personal.id, pm.id).await),
        Refusal::LastOwner
    );

    assert_eq!(
        Refusal::LastOwner.to_string(),
        "cannot remove or demote the only owner of the team"
    );
}

// ---------------------------------------------------------------- contract: namespaces

async fn contract_namespaces(store: &Store) {
    let r1 = registry(store, "one").await;
    let r2 = registry(store, "two").await;
    let owner = user(store, "owner").await;
    let t = team(store, "team", &owner).await;
    let t2 = team(store, "team2", &owner).await;

    let ns = store
        .create_namespace(
            &new_namespace(&r1, &t, "apps", Visibility::Protected),
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            ns.registry_id,
            ns.team_id,
            ns.name.as_str(),
            ns.description.as_str()
        ),
        (r1.id, t.id, "apps", "about apps")
    );
    assert_eq!(
        (ns.kind, ns.visibility, ns.user_id),
        (NamespaceKind::Team, Visibility::Protected, None)
    );
    assert_eq!((ns.created_at, ns.updated_at), (at(1), at(1)));

    let e = store
        .create_namespace(&new_namespace(&r1, &t2, "apps", Visibility::Public), at(2))
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "name");
    let other = namespace(store, &r2, &t, "apps", Visibility::Public).await;
    assert_ne!(other.id, ns.id);
    assert_not_found(
        store
            .create_namespace(
                &NewNamespace {
                    team_id: t.id + 1000,
                    ..new_namespace(&r1, &t, "x", Visibility::Public)
                },
                T0,
            )
            .await,
    );

    assert_eq!(store.namespace_by_id(ns.id).await.unwrap().unwrap(), ns);
    assert_eq!(
        store
            .namespace_by_name(r1.id, "apps")
            .await
            .unwrap()
            .unwrap(),
        ns
    );
    assert_eq!(
        store
            .namespace_by_name(r2.id, "apps")
            .await
            .unwrap()
            .unwrap(),
        other
    );
    assert_eq!(store.namespace_by_name(r1.id, "nope").await.unwrap(), None);
    assert_eq!(store.namespace_by_id(ns.id + 1000).await.unwrap(), None);
    let global = store.global_namespace(r1.id).await.unwrap().unwrap();
    assert_eq!(global.kind, NamespaceKind::Global);
    assert_eq!(store.global_namespace(r1.id + 1000).await.unwrap(), None);

    let tools = namespace(store, &r1, &t, "tools", Visibility::Private).await;
    let of_team = store
        .namespaces_of_team(t.id, Some(owner.id))
        .await
        .unwrap();
    let names: Vec<&str> = of_team.iter().map(|l| l.namespace.name.as_str()).collect();
    assert_eq!(names, ["apps", "apps", "tools"]);
    assert_eq!(of_team[0].namespace, ns);
    assert_eq!(of_team[1].namespace, other);
    for l in &of_team {
        assert_eq!(l.team, t);
        assert_eq!(l.role, Some(Role::Owner));
        let r = if l.namespace.registry_id == r1.id {
            &r1
        } else {
            &r2
        };
        assert_eq!(&l.registry, r);
    }
    let anonymous = store.namespaces_of_team(t.id, None).await.unwrap();
    assert_eq!(anonymous.len(), 3);
    assert!(anonymous.iter().all(|l| l.role.is_none()));
    assert!(
        store
            .namespaces_of_team(t.id + 1000, None)
            .await
            .unwrap()
            .is_empty()
    );

    let changes = NamespaceUpdate {
        name: Some("applications".to_owned()),
        description: Some("new".to_owned()),
        team_id: Some(t2.id),
        visibility: Some(Visibility::Public),
    };
    let updated = store
        .update_namespace(ns.id, &changes, at(5))
        .await
        .unwrap();
    let expected = Namespace {
        name: "applications".to_owned(),
        description: "new".to_owned(),
        team_id: t2.id,
        visibility: Visibility::Public,
        updated_at: at(5),
        ..ns.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(
        store.namespace_by_id(ns.id).await.unwrap().unwrap(),
        expected
    );
    let clash = NamespaceUpdate {
        name: Some("tools".to_owned()),
        ..NamespaceUpdate::default()
    };
    assert_eq!(
        conflict(
            store
                .update_namespace(ns.id, &clash, at(6))
                .await
                .unwrap_err()
        ),
        "name"
    );
    assert_not_found(store.update_namespace(ns.id + 1000, &changes, at(6)).await);
    assert_eq!(
        store.namespace_by_id(ns.id).await.unwrap().unwrap(),
        expected
    );

    store.delete_namespace(tools.id).await.unwrap();
    assert_eq!(store.namespace_by_id(tools.id).await.unwrap(), None);
    assert_not_found(store.delete_namespace(tools.id).await);
}

/// `update_namespace` writes only the fields it names.
async fn contract_update_namespace(store: &Store) {
    let r = registry(store, "one").await;
    let owner = user(store, "owner").await;
    let t = team(store, "team", &owner).await;
    let t2 = team(store, "team2", &owner).await;
    let ns = namespace(store, &r, &t, "apps", Visibility::Protected).await;

    let update = |changes: NamespaceUpdate, secs: i64| async move {
        store
            .update_namespace(ns.id, &changes, at(secs))
            .await
            .unwrap()
    };
    let mut expected = ns.clone();

    let got = update(
        NamespaceUpdate {
            description: Some("described".to_owned()),
            ..NamespaceUpdate::default()
        },
        1,
    )
    .await;
    expected.description = "described".to_owned();
    expected.updated_at = at(1);
    assert_eq!(got, expected);

    let got = update(
        NamespaceUpdate {
            visibility: Some(Visibility::Private),
            ..NamespaceUpdate::default()
        },
        2,
    )
    .await;
    expected.visibility = Visibility::Private;
    expected.updated_at = at(2);
    assert_eq!(got, expected);

    let got = update(
        NamespaceUpdate {
            team_id: Some(t2.id),
            ..NamespaceUpdate::default()
        },
        3,
    )
    .await;
    expected.team_id = t2.id;
    expected.updated_at = at(3);
    assert_eq!(got, expected);

    let got = update(
        NamespaceUpdate {
            name: Some("renamed".to_owned()),
            ..NamespaceUpdate::default()
        },
        4,
    )
    .await;
    expected.name = "renamed".to_owned();
    expected.updated_at = at(4);
    assert_eq!(got, expected);

    let got = update(NamespaceUpdate::default(), 5).await;
    expected.updated_at = at(5);
    assert_eq!(got, expected);
    assert_eq!(
        store.namespace_by_id(ns.id).await.unwrap().unwrap(),
        expected
    );
    // Kind and owner never change.
    assert_eq!((got.kind, got.user_id), (NamespaceKind::Team, None));

    // Moving to a team that does not exist is NotFound and writes nothing.
    assert_not_found(
        store
            .update_namespace(
                ns.id,
                &NamespaceUpdate {
                    team_id: Some(t2.id + 1000),
                    description: Some("lost".to_owned()),
                    ..NamespaceUpdate::default()
                },
                at(6),
            )
            .await,
    );
    assert_eq!(
        store.namespace_by_id(ns.id).await.unwrap().unwrap(),
        expected
    );
    // Counts follow the move.
    assert_eq!(team_counts(store, t.id).await, (1, 0));
    assert_eq!(team_counts(store, t2.id).await, (1, 1));
}

async fn contract_list_namespaces(store: &Store) {
    let r = registry(store, "one").await;
    let owner = user(store, "owner").await; // personal namespace "owner", private
    let viewer = user(store, "viewer").await; // personal namespace "viewer", private
    let theirs = team(store, "theirs", &owner).await;
    let ours = team(store, "ours", &owner).await;
    store
        .add_member(ours.id, viewer.id, Role::Viewer, T0)
        .await
        .unwrap();
    namespace(store, &r, &theirs, "public", Visibility::Public).await;
    namespace(store, &r, &theirs, "protected", Visibility::Protected).await;
    namespace(store, &r, &theirs, "secret", Visibility::Private).await;
    namespace(store, &r, &ours, "shared", Visibility::Private).await;
    let global = global_namespace_name(r.id);

    let names = |p: &Page<NamespaceListing>| -> Vec<String> {
        p.items.iter().map(|l| l.namespace.name.clone()).collect()
    };
    let roles = |p: &Page<NamespaceListing>| -> Vec<(String, Option<Role>)> {
        p.items
            .iter()
            .map(|l| (l.namespace.name.clone(), l.role))
            .collect()
    };
    let all = store
        .list_namespaces(NamespaceScope::All, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.total, 7);
    assert_eq!(
        names(&all),
        [
            global.as_str(),
            "owner",
            "viewer",
            "public",
            "protected",
            "secret",
            "shared"
        ]
    );
    assert!(all.items.iter().all(|l| l.role.is_none()));
    // Each entry carries its namespace, team and registry as they are.
    for l in &all.items {
        let id = l.namespace.id;
        assert_eq!(
            l.namespace,
            store.namespace_by_id(id).await.unwrap().unwrap()
        );
        assert_eq!(
            l.team,
            store
                .team_by_id(l.namespace.team_id)
                .await
                .unwrap()
                .unwrap()
        );
        assert_eq!(l.registry, r);
        assert_eq!(
            store.namespace_listing(id, None).await.unwrap().as_ref(),
            Some(l)
        );
    }
    // With a viewer, All shows the viewer's role in each owning team.
    let all_for_owner = store
        .list_namespaces(NamespaceScope::All, Some(owner.id), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        roles(&all_for_owner),
        [
            (global.clone(), None),
            ("owner".to_owned(), Some(Role::Owner)),
            ("viewer".to_owned(), None),
            ("public".to_owned(), Some(Role::Owner)),
            ("protected".to_owned(), Some(Role::Owner)),
            ("secret".to_owned(), Some(Role::Owner)),
            ("shared".to_owned(), Some(Role::Owner)),
        ]
    );

    let visible = store
        .list_namespaces(
            NamespaceScope::VisibleTo,
            Some(viewer.id),
            &page(0, None, "name", false),
        )
        .await
        .unwrap();
    let mut expected = vec![
        (global.clone(), None),
        ("protected".to_owned(), None),
        ("public".to_owned(), None),
        ("shared".to_owned(), Some(Role::Viewer)),
        ("viewer".to_owned(), Some(Role::Owner)),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(roles(&visible), expected);
    assert_eq!(visible.total, 5);
    for l in &visible.items {
        assert_eq!(
            store
                .namespace_listing(l.namespace.id, Some(viewer.id))
                .await
                .unwrap()
                .as_ref(),
            Some(l)
        );
    }

    let p = store
        .list_namespaces(
            NamespaceScope::VisibleTo,
            Some(viewer.id),
            &page(1, Some(2), "name", true),
        )
        .await
        .unwrap();
    assert_eq!(names(&p), ["shared", "public"]);
    assert_eq!(p.total, 5);

    // Anyone else sees only public and protected ones.
    let stranger = user(store, "stranger").await;
    let p = store
        .list_namespaces(
            NamespaceScope::VisibleTo,
            Some(stranger.id),
            &page(0, None, "visibility", true),
        )
        .await
        .unwrap();
    assert_eq!(p.total, 4); // global, public, protected, and their own
    // Ties are broken by id in the same direction.
    assert_eq!(
        roles(&p),
        [
            ("public".to_owned(), None),
            (global.clone(), None),
            ("protected".to_owned(), None),
            ("stranger".to_owned(), Some(Role::Owner)),
        ]
    );
    // Anonymous viewers too, without any namespace of their own.
    let p = store
        .list_namespaces(NamespaceScope::VisibleTo, None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(
        roles(&p),
        [
            (global.clone(), None),
            ("public".to_owned(), None),
            ("protected".to_owned(), None),
        ]
    );
    assert_eq!(p.total, 3);

    let p = store
        .list_namespaces(
            NamespaceScope::All,
            None,
            &page(0, Some(3), "no_such_column", true),
        )
        .await
        .unwrap();
    assert_eq!(names(&p), ["stranger", "shared", "secret"]);
    assert_eq!(p.total, 8);
    let last = p.items.last().unwrap().namespace.id;
    assert_eq!(
        store.namespace_listing(last + 1000, None).await.unwrap(),
        None
    );
}

async fn contract_namespace_access(store: &Store) {
    let r = registry(store, "one").await;
    let boss = admin(store, "boss").await;
    let owner = user(store, "owner").await;
    let dev = user(store, "dev").await;
    let outsider = user(store, "outsider").await;
    let t = team(store, "team", &owner).await;
    store
        .add_member(t.id, dev.id, Role::Contributor, T0)
        .await
        .unwrap();
    let ns = namespace(store, &r, &t, "apps", Visibility::Protected).await;

    let access = |user: Option<&User>, name: Option<&'static str>| {
        let user_id = user.map(|u| u.id);
        async move { store.namespace_access(r.id, name, user_id).await.unwrap() }
    };
    let team_ns = |role| NamespaceAccess {
        namespace_id: ns.id,
        kind: NamespaceKind::Team,
        visibility: Visibility::Protected,
        role,
    };
    assert_eq!(
        access(Some(&dev), Some("apps")).await,
        Some(team_ns(Some(Role::Contributor)))
    );
    assert_eq!(
        access(Some(&owner), Some("apps")).await,
        Some(team_ns(Some(Role::Owner)))
    );
    assert_eq!(
        access(Some(&outsider), Some("apps")).await,
        Some(team_ns(None))
    );
    assert_eq!(access(None, Some("apps")).await, Some(team_ns(None)));
    assert_eq!(access(Some(&dev), Some("missing")).await, None);
    assert_eq!(
        store
            .namespace_access(r.id + 1000, Some("apps"), Some(dev.id))
            .await
            .unwrap(),
        None
    );

    let global = store.global_namespace(r.id).await.unwrap().unwrap();
    let global_access = |role| NamespaceAccess {
        namespace_id: global.id,
        kind: NamespaceKind::Global,
        visibility: Visibility::Public,
        role,
    };
    assert_eq!(
        access(Some(&boss), None).await,
        Some(global_access(Some(Role::Owner)))
    );
    assert_eq!(access(Some(&dev), None).await, Some(global_access(None)));
    assert_eq!(access(None, None).await, Some(global_access(None)));
    assert_eq!(
        store
            .namespace_access(r.id + 1000, None, None)
            .await
            .unwrap(),
        None
    );

    let personal = store
        .personal_namespace(r.id, dev.id)
        .await
        .unwrap()
        .unwrap();
    let got = store
        .namespace_access(r.id, Some(&personal.name), Some(dev.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        NamespaceAccess {
            namespace_id: personal.id,
            kind: NamespaceKind::Personal,
            visibility: Visibility::Private,
            role: Some(Role::Owner),
        }
    );
}

// ---------------------------------------------------------------- contract: tokens

async fn contract_application_tokens(store: &Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let ci = store
        .create_application_token(
            alice.id,
            &NewApplicationToken {
                pull_only: true,
                expires_at: Some(at(3600)),
                ..new_token("ci", "aa11")
            },
            QUOTA,
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        (ci.user_id, ci.application.as_str(), ci.pull_only),
        (alice.id, "ci", true)
    );
    assert_eq!(
        (ci.expires_at, ci.last_used_at, ci.created_at),
        (Some(at(3600)), None, at(1))
    );
    let laptop = app_token(store, &alice, "laptop", "bb22", at(2)).await;
    assert_eq!((laptop.pull_only, laptop.expires_at), (false, None));

    let e = store
        .create_application_token(alice.id, &new_token("ci", "cc33"), QUOTA, at(3))
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "application");
    // Same name, other user: fine.
    let bobs = app_token(store, &bob, "ci", "dd44", at(3)).await;
    // The same secret twice is a caller bug, not a user-facing conflict.
    assert!(matches!(
        store
            .create_application_token(bob.id, &new_token("other", "aa11"), QUOTA, at(3))
            .await,
        Err(StoreError::Database(_))
    ));
    assert_not_found(
        store
            .create_application_token(bob.id + 1000, &new_token("x", "ee55"), QUOTA, at(3))
            .await,
    );

    assert_eq!(
        store.application_token_by_id(ci.id).await.unwrap().unwrap(),
        ci
    );
    assert_eq!(
        store.application_token_by_id(ci.id + 1000).await.unwrap(),
        None
    );
    assert_eq!(
        store.list_application_tokens(alice.id).await.unwrap(),
        vec![ci.clone(), laptop.clone()]
    );
    assert_eq!(
        store.list_application_tokens(bob.id).await.unwrap(),
        vec![bobs]
    );
    assert!(
        store
            .list_application_tokens(bob.id + 1000)
            .await
            .unwrap()
            .is_empty()
    );

    let (token, owner) = store
        .application_token_by_hash("aa11")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token, ci);
    assert_eq!(owner, fetch_user(store, alice.id).await);
    assert_eq!(store.application_token_by_hash("AA11").await.unwrap(), None);
    assert_eq!(store.application_token_by_hash("").await.unwrap(), None);

    store.delete_application_token(ci.id).await.unwrap();
    assert_eq!(store.application_token_by_hash("aa11").await.unwrap(), None);
    assert_not_found(store.delete_application_token(ci.id).await);
    assert_eq!(
        store.list_application_tokens(alice.id).await.unwrap(),
        vec![laptop]
    );
}

async fn contract_token_quota(store: &Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let create = |u: &User, application: &str, hash: &str, max: i64| {
        let (id, application, hash) = (u.id, application.to_owned(), hash.to_owned());
        async move {
            store
                .create_application_token(id, &new_token(&application, &hash), max, at(1))
                .await
        }
    };

    let first = create(&alice, "one", "q1", 2).await.unwrap();
    let second = create(&alice, "two", "q2", 2).await.unwrap();
    let e = create(&alice, "three", "q3", 2).await;
    assert_eq!(refusal(e), Refusal::TokenQuota(2));
    assert_eq!(
        store.list_application_tokens(alice.id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(store.application_token_by_hash("q3").await.unwrap(), None);
    // At the quota, even a name that is taken is refused for the quota.
    assert_eq!(
        refusal(create(&alice, "one", "q4", 2).await),
        Refusal::TokenQuota(2)
    );
    // Below it, a taken name is a conflict.
    assert_eq!(
        conflict(create(&alice, "one", "q4", 3).await.unwrap_err()),
        "application"
    );
    // The quota is per user.
    create(&bob, "one", "b1", 2).await.unwrap();
    create(&bob, "two", "b2", 2).await.unwrap();
    // A revoked token frees its place.
    store.delete_application_token(first.id).await.unwrap();
    let third = create(&alice, "three", "q3", 2).await.unwrap();
    assert_eq!(
        store.list_application_tokens(alice.id).await.unwrap(),
        vec![second, third]
    );
    // A quota of 0 allows none.
    let carol = user(store, "carol").await;
    assert_eq!(
        refusal(create(&carol, "one", "c1", 0).await),
        Refusal::TokenQuota(0)
    );
    assert!(
        store
            .list_application_tokens(carol.id)
            .await
            .unwrap()
            .is_empty()
    );

    let message = StoreError::Refused(Refusal::TokenQuota(5)).to_string();
    assert_eq!(message, "Users cannot have more than 5 application tokens");
}

async fn contract_refresh_tokens(store: &Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let a1 = store
        .create_refresh_token(alice.id, None, "registry.test:5000", "docker", "r1", at(1))
        .await
        .unwrap();
    assert_eq!(
        (a1.user_id, a1.service.as_str(), a1.client_id.as_str()),
        (alice.id, "registry.test:5000", "docker")
    );
    assert_eq!(
        (a1.last_used_at, a1.created_at, a1.application_token_id),
        (None, at(1), None)
    );
    let a2 = store
        .create_refresh_token(alice.id, None, "registry.test:5000", "", "r2", at(2))
        .await
        .unwrap();
    let b1 = store
        .create_refresh_token(bob.id, None, "other:5000", "skopeo", "r3", at(3))
        .await
        .unwrap();
    assert!(
        store
            .create_refresh_token(bob.id, None, "x", "", "r1", at(3))
            .await
            .is_err()
    );
    assert_not_found(
        store
            .create_refresh_token(bob.id + 1000, None, "x", "", "r9", at(3))
            .await,
    );

    let found = store.refresh_token_by_hash("r2").await.unwrap().unwrap();
    assert_eq!(
        found,
        RefreshCredential {
            token: a2.clone(),
            user: fetch_user(store, alice.id).await,
            application_token_expires_at: None,
        }
    );
    assert_eq!(store.refresh_token_by_hash("r4").await.unwrap(), None);
    assert_eq!(store.refresh_token_by_id(b1.id).await.unwrap().unwrap(), b1);
    assert_eq!(store.refresh_token_by_id(b1.id + 1000).await.unwrap(), None);
    assert_eq!(
        store.list_refresh_tokens(alice.id).await.unwrap(),
        vec![a1.clone(), a2]
    );

    store.delete_refresh_token(a1.id).await.unwrap();
    assert_not_found(store.delete_refresh_token(a1.id).await);
    // A password change ends the rest of alice's sessions, and only hers.
    let (_, changed) = store
        .update_user(
            alice.id,
            &UserUpdate {
                password_hash: Some("$argon2id$new".to_owned()),
                ..UserUpdate::default()
            },
            at(4),
        )
        .await
        .unwrap();
    assert!(changed);
    assert!(
        store
            .list_refresh_tokens(alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.refresh_token_by_hash("r2").await.unwrap(), None);
    assert_eq!(store.list_refresh_tokens(bob.id).await.unwrap(), vec![b1]);
}

/// A refresh token obtained with an application token reports that token's expiry and
/// is deleted with it.
async fn contract_refresh_tokens_die_with_application_token(store: &Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let ci = store
        .create_application_token(
            alice.id,
            &NewApplicationToken {
                expires_at: Some(at(3600)),
                ..new_token("ci", "app-ci")
            },
            QUOTA,
            T0,
        )
        .await
        .unwrap();
    let laptop = app_token(store, &alice, "laptop", "app-laptop", T0).await;
    let refresh = |app: Option<Id>, hash: &str, secs: i64| {
        let hash = hash.to_owned();
        async move {
            store
                .create_refresh_token(alice.id, app, "svc", "docker", &hash, at(secs))
                .await
                .unwrap()
        }
    };
    let r1 = refresh(Some(ci.id), "r1", 1).await;
    let r2 = refresh(Some(ci.id), "r2", 2).await;
    let r3 = refresh(Some(laptop.id), "r3", 3).await;
    let r4 = refresh(None, "r4", 4).await;
    assert_eq!(r1.application_token_id, Some(ci.id));
    assert_eq!(r4.application_token_id, None);
    let bobs = store
        .create_refresh_token(bob.id, None, "svc", "", "b1", T0)
        .await
        .unwrap();

    let alice_now = fetch_user(store, alice.id).await;
    let credential = |token: &portcullis_domain::model::RefreshToken, expires| RefreshCredential {
        token: token.clone(),
        user: alice_now.clone(),
        application_token_expires_at: expires,
    };
    for (hash, expected) in [
        ("r1", credential(&r1, Some(at(3600)))),
        ("r2", credential(&r2, Some(at(3600)))),
        ("r3", credential(&r3, None)),
        ("r4", credential(&r4, None)),
    ] {
        assert_eq!(
            store.refresh_token_by_hash(hash).await.unwrap(),
            Some(expected),
            "{hash}"
        );
    }
    assert_eq!(
        store.refresh_token_by_id(r1.id).await.unwrap(),
        Some(r1.clone())
    );
    // Binding to a token that does not exist fails.
    assert_not_found(
        store
            .create_refresh_token(alice.id, Some(laptop.id + 1000), "svc", "", "r9", T0)
            .await,
    );

    // Revoking the application token ends the refresh tokens obtained with it.
    store.delete_application_token(ci.id).await.unwrap();
    for (token, hash) in [(&r1, "r1"), (&r2, "r2")] {
        assert_eq!(store.refresh_token_by_id(token.id).await.unwrap(), None);
        assert_eq!(store.refresh_token_by_hash(hash).await.unwrap(), None);
    }
    assert_eq!(
        store.list_refresh_tokens(alice.id).await.unwrap(),
        vec![r3.clone(), r4.clone()]
    );
    store.delete_application_token(laptop.id).await.unwrap();
    assert_eq!(store.list_refresh_tokens(alice.id).await.unwrap(), vec![r4]);
    assert_eq!(store.list_refresh_tokens(bob.id).await.unwrap(), vec![bobs]);
}

async fn contract_touch_writes_at_most_once_a_minute(store: &Store) {
    let u = user(store, "toucher").await;
    let app = app_token(store, &u, "ci", "app-hash", T0).await;
    let refresh = store
        .create_refresh_token(u.id, Some(app.id), "svc", "", "refresh-hash", T0)
        .await
        .unwrap();
    let app_used = || async {
        store
            .application_token_by_id(app.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    let refresh_used = || async {
        store
            .refresh_token_by_id(refresh.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };

    for (now, expected) in [
        (10, 10),
        (40, 10),
        (70, 10),
        (71, 71),
        (100, 71),
        (200, 200),
    ] {
        store
            .touch_application_token(app.id, at(now))
            .await
            .unwrap();
        store
            .touch_refresh_token(refresh.id, at(now))
            .await
            .unwrap();
        assert_eq!(
            app_used().await,
            Some(at(expected)),
            "application token at {now}"
        );
        assert_eq!(
            refresh_used().await,
            Some(at(expected)),
            "refresh token at {now}"
        );
    }
    // Unknown ids are no error: the token may have been revoked meanwhile.
    store
        .touch_application_token(app.id + 1000, at(300))
        .await
        .unwrap();
    store
        .touch_refresh_token(refresh.id + 1000, at(300))
        .await
        .unwrap();
}

// ---------------------------------------------------------------- contract: outage

/// After `close()` every operation, on this store and its clones, is `Unavailable`
/// (what callers turn into a 503), and keeps its cause.
async fn contract_close(store: &Store) {
    let u = user(store, "before").await;
    let clone = store.clone();
    store.close().await;

    assert_unavailable("ping", store.ping().await);
    assert_unavailable("clone ping", clone.ping().await);
    assert_unavailable("migration_state", store.migration_state().await);
    assert_unavailable("user_by_id", store.user_by_id(u.id).await);
    assert_unavailable(
        "list_users",
        store.list_users(&PageRequest::default()).await,
    );
    assert_unavailable(
        "create_user",
        store.create_user(&new_user("after"), None, T0).await,
    );
    assert_unavailable(
        "update_user",
        store.update_user(u.id, &UserUpdate::default(), T0).await,
    );
    assert_unavailable(
        "record_failed_login",
        store.record_failed_login(u.id, T0, 3).await,
    );
    assert_unavailable("clear_failed_logins", store.clear_failed_logins(u.id).await);
    assert_unavailable("delete_user", clone.delete_user(u.id).await);
    assert_unavailable(
        "list_teams",
        store
            .list_teams(TeamScope::AllVisible, u.id, &PageRequest::default())
            .await,
    );
    assert_unavailable(
        "namespace_access",
        store.namespace_access(1, Some("x"), None).await,
    );
    assert_unavailable(
        "refresh_token_by_hash",
        store.refresh_token_by_hash("x").await,
    );
    assert_unavailable("migrate", store.migrate().await);
    // Closing twice is harmless.
    clone.close().await;
    assert_unavailable("ping after second close", store.ping().await);

    let e = store.ping().await.unwrap_err();
    assert!(e.to_string().starts_with("database unavailable"), "{e}");
    let domain: portcullis_domain::Error = e.into();
    assert!(
        matches!(domain, portcullis_domain::Error::Unavailable(_)),
        "{domain:?}"
    );
    assert!(domain.cause().is_some());
}

// ---------------------------------------------------------------- races

/// Eight bootstraps at once on an empty database: exactly one admin.
async fn race_bootstrap_admin(backend: Backend) {
    let (keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        if round > 0 {
            keep.wipe().await;
            assert_eq!(user_count(&store).await, 0);
        }
        let results = concurrently(&store, 8, |i, s| async move {
            let name = format!("admin{i}");
            let hash = format!("boot-{i}");
            s.bootstrap_admin(
                &new_user(&name),
                Some(&name),
                &new_token("bootstrap", &hash),
                at(1),
            )
            .await
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert_eq!(ok.len(), 1, "round {round}: {refused:?}");
        assert_eq!(
            refused,
            vec![Refusal::AlreadyBootstrapped; 7],
            "round {round}"
        );
        let (winner, token) = &ok[0];
        assert!(winner.admin);
        let users = store.list_users(&PageRequest::default()).await.unwrap();
        assert_eq!(users.total, 1, "round {round}");
        assert_eq!(&users.items[0].user, winner);
        assert_eq!(enabled_admins(&store).await, [winner.id]);
        // Only the winner's token was written.
        assert_eq!(
            store.list_application_tokens(winner.id).await.unwrap(),
            vec![token.clone()]
        );
        for i in 0..8 {
            let found = store
                .application_token_by_hash(&format!("boot-{i}"))
                .await
                .unwrap();
            let winners = winner.username == format!("admin{i}");
            assert_eq!(found.is_some(), winners, "round {round}, token {i}");
        }
    }
}

/// A team with two owners, for a race in `round`: (team, owner a, owner b, a's and
/// b's memberships).
async fn two_owner_team(store: &Store, round: usize) -> (Team, User, User, Id, Id) {
    let a = user(store, &format!("a{round}")).await;
    let b = user(store, &format!("b{round}")).await;
    let t = team(store, &format!("team{round}"), &a).await;
    let a_m = store.membership(t.id, a.id).await.unwrap().unwrap().id;
    let b_m = store
        .add_member(t.id, b.id, Role::Owner, T0)
        .await
        .unwrap()
        .id;
    assert_eq!(owners(store, t.id).await, [a.id, b.id]);
    (t, a, b, a_m, b_m)
}

/// Both owners of a team demoted at once: one demotion is refused.
async fn race_demote_both_owners(backend: Backend) {
    let (_keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        let (t, _, _, a_m, b_m) = two_owner_team(&store, round).await;
        let members = [a_m, b_m];
        let results = concurrently(&store, 2, |i, s| async move {
            s.set_member_role(t.id, members[i], Role::Viewer, at(1))
                .await
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert_eq!(ok.len(), 1, "round {round}: {refused:?}");
        assert_eq!(refused, [Refusal::LastOwner], "round {round}");
        let left = owners(&store, t.id).await;
        assert_eq!(left.len(), 1, "round {round}");
        assert_ne!(left[0], ok[0].user_id);
        assert_eq!(team_counts(&store, t.id).await.0, 2);
    }
}

/// Both owners of a team removed at once: one removal is refused.
async fn race_remove_both_owners(backend: Backend) {
    let (_keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        let (t, a, b, a_m, b_m) = two_owner_team(&store, round).await;
        let members = [a_m, b_m];
        let results = concurrently(&store, 2, |i, s| async move {
            s.remove_member(t.id, members[i]).await.map(|()| i)
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert_eq!(ok.len(), 1, "round {round}: {refused:?}");
        assert_eq!(refused, [Refusal::LastOwner], "round {round}");
        let survivor = if ok[0] == 0 { b.id } else { a.id };
        assert_eq!(owners(&store, t.id).await, [survivor], "round {round}");
        assert_eq!(team_counts(&store, t.id).await.0, 1);
    }
}

#[derive(Debug, Clone, Copy)]
enum AdminOp {
    Disable,
    Demote,
    Delete,
}

impl AdminOp {
    async fn run(self, store: &Store, id: Id) -> Result<(), StoreError> {
        match self {
            AdminOp::Disable => store
                .update_user(
                    id,
                    &UserUpdate {
                        enabled: Some(false),
                        ..UserUpdate::default()
                    },
                    at(1),
                )
                .await
                .map(|_| ()),
            AdminOp::Demote => store.set_admin(id, false, at(1)).await.map(|_| ()),
            AdminOp::Delete => store.delete_user(id).await.map(|deleted| assert!(deleted)),
        }
    }
}

/// Two fresh enabled admins and no other enabled admin; then `ops[0]` on the first and
/// `ops[1]` on the second at once, for `ROUNDS` rounds: exactly one goes through and
/// one enabled admin, owner of the global team, remains.
async fn race_last_admin(backend: Backend, ops: [AdminOp; 2]) {
    let (_keep, store) = backend.store().await;
    let r = registry(&store, "one").await;
    let g = global_team_id(&store, &r).await;
    for round in 0..ROUNDS {
        let c = admin(&store, &format!("c{round}")).await;
        let d = admin(&store, &format!("d{round}")).await;
        // Retire the survivor of the previous round, so c and d are the only ones.
        for id in enabled_admins(&store).await {
            if id != c.id && id != d.id {
                AdminOp::Disable.run(&store, id).await.unwrap();
            }
        }
        assert_eq!(enabled_admins(&store).await, [c.id, d.id]);
        let targets = [c.id, d.id];
        let results = concurrently(&store, 2, |i, s| async move {
            ops[i].run(&s, targets[i]).await.map(|()| i)
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert_eq!(ok.len(), 1, "{ops:?} round {round}: {refused:?}");
        assert_eq!(refused, [Refusal::LastAdmin], "{ops:?} round {round}");
        let survivor = targets[1 - ok[0]];
        assert_eq!(
            enabled_admins(&store).await,
            [survivor],
            "{ops:?} round {round}"
        );
        let s = fetch_user(&store, survivor).await;
        assert!(s.admin && s.enabled);
        assert_eq!(role_in(&store, g, &s).await, Some(Role::Owner));
    }
}

async fn race_admins_disable_each_other(backend: Backend) {
    race_last_admin(backend, [AdminOp::Disable, AdminOp::Disable]).await;
}

async fn race_admins_demote_each_other(backend: Backend) {
    race_last_admin(backend, [AdminOp::Demote, AdminOp::Demote]).await;
}

async fn race_admins_disable_demote_delete(backend: Backend) {
    race_last_admin(backend, [AdminOp::Disable, AdminOp::Demote]).await;
    race_last_admin(backend, [AdminOp::Delete, AdminOp::Disable]).await;
    race_last_admin(backend, [AdminOp::Delete, AdminOp::Delete]).await;
}

/// Twelve tokens with distinct names at once against a quota of five: five exist.
async fn race_token_quota(backend: Backend) {
    let (_keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        let u = user(&store, &format!("u{round}")).await;
        let uid = u.id;
        let results = concurrently(&store, 12, |i, s| async move {
            let application = format!("app{i}");
            let hash = format!("round{round}-token{i}");
            s.create_application_token(uid, &new_token(&application, &hash), 5, at(1))
                .await
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert_eq!(ok.len(), 5, "round {round}: {refused:?}");
        assert_eq!(refused, vec![Refusal::TokenQuota(5); 7], "round {round}");
        let mut created: Vec<Id> = ok.iter().map(|t| t.id).collect();
        created.sort_unstable();
        let held: Vec<Id> = store
            .list_application_tokens(u.id)
            .await
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(held, created, "round {round}");
    }
}

/// A team with owners a and b; a deleted while b steps down (demoted, removed or
/// deleted too) at the same time. Either alone is fine, both would leave the team
/// ownerless: one of the two is refused.
async fn race_delete_owner_vs_other_owner(backend: Backend) {
    #[derive(Debug, Clone, Copy)]
    enum StepDown {
        Demote,
        Remove,
        Delete,
    }
    let (_keep, store) = backend.store().await;
    let mut round = 0;
    for step_down in [StepDown::Demote, StepDown::Remove, StepDown::Delete] {
        for _ in 0..ROUNDS {
            round += 1;
            let (t, a, b, _, b_m) = two_owner_team(&store, round).await;
            let (a_id, b_id, t_id) = (a.id, b.id, t.id);
            let results = concurrently(&store, 2, |i, s| async move {
                if i == 0 {
                    return s.delete_user(a_id).await.map(|deleted| assert!(deleted));
                }
                match step_down {
                    StepDown::Demote => s
                        .set_member_role(t_id, b_m, Role::Viewer, at(1))
                        .await
                        .map(|_| ()),
                    StepDown::Remove => s.remove_member(t_id, b_m).await,
                    StepDown::Delete => s.delete_user(b_id).await.map(|deleted| assert!(deleted)),
                }
            })
            .await;
            let what = format!("{step_down:?} round {round}: {results:?}");
            let a_won = results[0].is_ok();
            let (ok, refused) = outcomes(results);
            assert_eq!(ok.len(), 1, "{what}");
            let expected = if a_won {
                match step_down {
                    StepDown::Delete => Refusal::OnlyOwnerOf(vec![t.name.clone()]),
                    _ => Refusal::LastOwner,
                }
            } else {
                Refusal::OnlyOwnerOf(vec![t.name.clone()])
            };
            assert_eq!(refused, [expected], "{what}");
            let survivor = if a_won { b.id } else { a.id };
            assert_eq!(owners(&store, t.id).await, [survivor], "{what}");
            assert!(store.user_by_id(survivor).await.unwrap().is_some());
        }
    }
}

/// Concurrent failed logins all count and lock the account once.
async fn race_failed_logins_lock_once(backend: Backend) {
    let (_keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        let u = user(&store, &format!("u{round}")).await;
        let uid = u.id;
        let results = concurrently(&store, 10, |i, s| async move {
            s.record_failed_login(uid, at(i as i64), 5).await
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert!(refused.is_empty());
        // Exactly one failure found the account unlocked at the threshold.
        let lockers = ok.iter().filter(|u| u.failed_attempts == 5).count();
        assert_eq!(lockers, 1, "round {round}");
        let after = fetch_user(&store, uid).await;
        assert_eq!(after.failed_attempts, 10, "round {round}");
        assert!(after.locked_at.is_some());
        assert_eq!(after.credential_version, 1, "round {round}");
        // A successful login racing the failures never lifts the lock.
        store.clear_failed_logins(uid).await.unwrap();
        assert_eq!(fetch_user(&store, uid).await, after);
    }
}

// ---------------------------------------------------------------- not per backend

#[tokio::test]
async fn uninitialized_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url(dir.path())).await.unwrap();
    assert_eq!(
        store.migration_state().await.unwrap(),
        MigrationState::Uninitialized
    );
    store.migrate().await.unwrap();
    assert_eq!(
        store.migration_state().await.unwrap(),
        MigrationState::UpToDate
    );
}

#[tokio::test]
async fn uninitialized_postgres() {
    let db = postgres_database().await;
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(
        store.migration_state().await.unwrap(),
        MigrationState::Uninitialized
    );
    store.migrate().await.unwrap();
    assert_eq!(
        store.migration_state().await.unwrap(),
        MigrationState::UpToDate
    );
}

#[tokio::test]
async fn pending_migrations_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url(dir.path())).await.unwrap();
    store.migrate().await.unwrap();
    let mut conn = raw_sqlite(dir.path()).await;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, \
         execution_time) VALUES (0, 'older', '2024-01-01 00:00:00', true, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        store.migration_state().await.unwrap(),
        MigrationState::Pending
    );
}

#[tokio::test]
async fn connect_urls() {
    let dir = tempfile::tempdir().unwrap();
    // Missing directories are created; both spellings work.
    let nested = dir.path().join("a/b/c.db");
    let store = Store::connect(&format!("sqlite://{}", nested.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert!(nested.is_file());
    let again = Store::connect(&format!("sqlite:{}", nested.display()))
        .await
        .unwrap();
    assert_eq!(
        again.migration_state().await.unwrap(),
        MigrationState::UpToDate
    );

    let memory = Store::connect("sqlite::memory:").await.unwrap();
    memory.migrate().await.unwrap();
    let u = user(&memory, "mem").await;
    assert_eq!(memory.user_by_id(u.id).await.unwrap().unwrap(), u);

    // Unknown schemes are named, and no part of the URL after it is echoed.
    let e = Store::connect("mysql://root:hunter2@db:3306/portus")
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(message.contains("`mysql`"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(Store::connect("no-scheme").await.is_err());
    // A failing PostgreSQL connection does not reveal the password either.
    let e = Store::connect("postgres://u:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("cannot connect to PostgreSQL"),
        "{e}"
    );
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

/// A concurrent burst of writers on SQLite queues in the write pool instead of
/// failing with SQLITE_BUSY, and concurrent failed logins all count.
#[tokio::test]
async fn sqlite_concurrent_writes() {
    let (_keep, store) = sqlite_store().await;
    let u = user(&store, "busy").await;
    let uid = u.id;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.record_failed_login(uid, at(i), 1000).await.unwrap();
            store
                .create_team(&format!("team{i}"), "", uid, at(i))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store
            .user_by_id(u.id)
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        20
    );
    assert_eq!(
        store
            .list_teams(TeamScope::MemberOf, u.id, &PageRequest::default())
            .await
            .unwrap()
            .total,
        20
    );
}

async fn raw_sqlite(dir: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect(&sqlite_url(dir))
        .await
        .unwrap()
}

// ---------------------------------------------------------------- web sessions, resets

async fn contract_sessions(store: &Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s1 = store
        .create_session(alice.id, "hash-1", "Firefox", at(0), at(3600))
        .await
        .unwrap();
    assert_eq!((s1.user_id, s1.user_agent.as_str()), (alice.id, "Firefox"));
    assert_eq!(
        (s1.created_at, s1.last_seen_at, s1.expires_at),
        (at(0), at(0), at(3600))
    );
    let (found, owner) = store.session_by_hash("hash-1").await.unwrap().unwrap();
    assert_eq!((found, owner.id), (s1.clone(), alice.id));
    assert!(store.session_by_hash("nope").await.unwrap().is_none());
    // Touching is recorded at most once a minute.
    store.touch_session(s1.id, at(30)).await.unwrap();
    assert_eq!(
        store
            .session_by_hash("hash-1")
            .await
            .unwrap()
            .unwrap()
            .0
            .last_seen_at,
        at(0)
    );
    store.touch_session(s1.id, at(61)).await.unwrap();
    assert_eq!(
        store
            .session_by_hash("hash-1")
            .await
            .unwrap()
            .unwrap()
            .0
            .last_seen_at,
        at(61)
    );
    let s2 = store
        .create_session(alice.id, "hash-2", "Chromium", at(100), at(3700))
        .await
        .unwrap();
    let b1 = store
        .create_session(bob.id, "hash-b", "", at(0), at(3600))
        .await
        .unwrap();
    let ids =
        |v: Vec<portcullis_domain::model::Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_sessions(alice.id).await.unwrap()),
        [s1.id, s2.id]
    );
    // One's own session only.
    assert!(matches!(
        store.delete_session(alice.id, b1.id).await,
        Err(StoreError::NotFound)
    ));
    store.delete_session(alice.id, s2.id).await.unwrap();
    store.delete_session_by_hash("hash-2").await.unwrap(); // gone already: fine
    assert_eq!(ids(store.list_sessions(alice.id).await.unwrap()), [s1.id]);
    // A password change or a disable ends the user's sessions; other users keep theirs.
    let update = UserUpdate {
        password_hash: Some("$argon2id$new".into()),
        ..UserUpdate::default()
    };
    store.update_user(alice.id, &update, at(200)).await.unwrap();
    assert!(store.list_sessions(alice.id).await.unwrap().is_empty());
    assert_eq!(ids(store.list_sessions(bob.id).await.unwrap()), [b1.id]);
    store
        .create_session(bob.id, "hash-b2", "", at(300), at(9000))
        .await
        .unwrap();
    let disable = UserUpdate {
        enabled: Some(false),
        ..UserUpdate::default()
    };
    store.update_user(bob.id, &disable, at(400)).await.unwrap();
    assert!(store.list_sessions(bob.id).await.unwrap().is_empty());
    // Pruning: past the absolute end, or idle since the cutoff.
    let carol = user(store, "carol").await;
    for (hash, created, expires) in [("old", 0, 100), ("idle", 0, 99_999), ("fresh", 500, 99_999)] {
        store
            .create_session(carol.id, hash, "", at(created), at(expires))
            .await
            .unwrap();
    }
    assert_eq!(store.prune_sessions(at(1000), at(400)).await.unwrap(), 2);
    let left: Vec<_> = store.list_sessions(carol.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(store.session_by_hash("fresh").await.unwrap().is_some());
    // Deleting the user deletes its sessions.
    assert!(store.delete_user(carol.id).await.unwrap());
    assert!(store.session_by_hash("fresh").await.unwrap().is_none());
}

async fn contract_password_resets(store: &Store) {
    let alice = user(store, "alice").await;
    store
        .create_session(alice.id, "alice-session", "", at(0), at(99_999))
        .await
        .unwrap();
    store
        .create_password_reset(alice.id, "r1", at(0), at(600))
        .await
        .unwrap();
    store
        .create_password_reset(alice.id, "r2", at(0), at(600))
        .await
        .unwrap();
    assert!(store.password_reset_usable("r1", at(10)).await.unwrap());
    assert!(
        !store.password_reset_usable("r1", at(600)).await.unwrap(),
        "expired"
    );
    assert!(!store.password_reset_usable("nope", at(10)).await.unwrap());
    // Issued at 0: seen from 0 on, not from 1.
    assert!(store.password_reset_since(alice.id, at(0)).await.unwrap());
    assert!(!store.password_reset_since(alice.id, at(1)).await.unwrap());
    assert!(
        store
            .reset_password("r1", "$argon2id$late", at(600))
            .await
            .unwrap()
            .is_none()
    );
    let changed = store
        .reset_password("r1", "$argon2id$reset", at(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.id, alice.id);
    assert_eq!(changed.password_hash.as_deref(), Some("$argon2id$reset"));
    assert_eq!(changed.credential_version, alice.credential_version + 1);
    // Used once; the other token and every session ended with the change.
    assert!(
        store
            .reset_password("r1", "$argon2id$again", at(11))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.password_reset_usable("r2", at(11)).await.unwrap());
    assert!(
        store
            .session_by_hash("alice-session")
            .await
            .unwrap()
            .is_none()
    );
    // A disabled user's token does not work, and is not used up by trying.
    let bob = user(store, "bob").await;
    store
        .create_password_reset(bob.id, "rb", at(0), at(600))
        .await
        .unwrap();
    let disable = UserUpdate {
        enabled: Some(false),
        ..UserUpdate::default()
    };
    store.update_user(bob.id, &disable, at(1)).await.unwrap();
    assert!(
        store
            .reset_password("rb", "$argon2id$x", at(2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.password_reset_usable("rb", at(2)).await.unwrap());
}

async fn contract_sign_up_user(store: &Store) {
    assert!(!store.has_users().await.unwrap());
    // Closed sign-up and no first-admin rule: nobody gets in, even on an empty instance.
    let refused = store
        .sign_up_user(&new_user("x"), Some("x"), false, false, at(0))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused(Refusal::SignupClosed))),
        "{refused:?}"
    );
    let first = store
        .sign_up_user(&new_user("first"), Some("first"), true, false, at(0))
        .await
        .unwrap();
    assert!(first.admin && !first.bot);
    assert!(store.has_users().await.unwrap());
    let refused = store
        .sign_up_user(&new_user("second"), Some("second"), true, false, at(1))
        .await;
    assert!(matches!(
        refused,
        Err(StoreError::Refused(Refusal::SignupClosed))
    ));
    let second = store
        .sign_up_user(&new_user("second"), Some("second"), true, true, at(1))
        .await
        .unwrap();
    assert!(!second.admin);
    // A bot or admin flag on the input is ignored: sign-up makes plain users.
    let third = NewUser {
        admin: true,
        bot: true,
        ..new_user("third")
    };
    let third = store
        .sign_up_user(&third, Some("third"), true, true, at(2))
        .await
        .unwrap();
    assert!(!third.admin && !third.bot);
}

async fn race_sign_up_first_admin(backend: Backend) {
    let (keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        if round > 0 {
            keep.wipe().await;
        }
        let results = concurrently(&store, 8, |i, s| async move {
            let name = format!("user{i}");
            s.sign_up_user(&new_user(&name), Some(&name), true, true, at(1))
                .await
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert!(refused.is_empty(), "round {round}: {refused:?}");
        assert_eq!(ok.iter().filter(|u| u.admin).count(), 1, "round {round}");
        assert_eq!(enabled_admins(&store).await.len(), 1, "round {round}");
        // With sign-up closed, only the first one gets in.
        keep.wipe().await;
        let results = concurrently(&store, 8, |i, s| async move {
            let name = format!("closed{i}");
            s.sign_up_user(&new_user(&name), Some(&name), true, false, at(1))
                .await
        })
        .await;
        let (ok, refused) = outcomes(results);
        assert_eq!(ok.len(), 1, "round {round}");
        assert!(ok[0].admin);
        assert_eq!(refused, vec![Refusal::SignupClosed; 7], "round {round}");
    }
}

/// Two callbacks of one new person at once: one account.
async fn race_identity_sign_up(backend: Backend) {
    let (keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        if round > 0 {
            keep.wipe().await;
        }
        let results = concurrently(&store, 8, |i, s| async move {
            let name = format!("person{i}");
            s.sign_up_with_identity(&new_user(&name), Some(&name), true, ("oidc", "same"), at(1))
                .await
        })
        .await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict("identity"))))
            .count();
        assert_eq!((ok, conflicts), (1, 7), "round {round}: {results:?}");
        assert!(store.identity_user("oidc", "same").await.unwrap().is_some());
    }
}

async fn race_password_reset_used_once(backend: Backend) {
    let (keep, store) = backend.store().await;
    for round in 0..ROUNDS {
        if round > 0 {
            keep.wipe().await;
        }
        let alice = user(&store, "alice").await;
        store
            .create_password_reset(alice.id, "token", at(0), at(600))
            .await
            .unwrap();
        let results = concurrently(&store, 8, |i, s| async move {
            s.reset_password("token", &format!("$argon2id${i}"), at(1))
                .await
        })
        .await;
        let used: Vec<User> = results.into_iter().filter_map(|r| r.unwrap()).collect();
        assert_eq!(used.len(), 1, "round {round}");
        let stored = store.user_by_id(alice.id).await.unwrap().unwrap();
        assert_eq!(stored.password_hash, used[0].password_hash, "round {round}");
        assert_eq!(stored.credential_version, alice.credential_version + 1);
    }
}
