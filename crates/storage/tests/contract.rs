//! The storage contract: every `contract_*` function below is written once and run on
//! a fresh SQLite file and on a fresh PostgreSQL database (`<name>::sqlite` and
//! `<name>::postgres`). Not getting a PostgreSQL database is a failure, never a skip.
//! That the two migrated schemas agree is checked by `tests/schema.rs`.

#![allow(clippy::unwrap_used)]

use portcullis_domain::model::{Id, NamespaceKind, Registry, Role, Team, User, Visibility};
use portcullis_domain::names::{global_namespace_name, global_team_name};
use portcullis_domain::time::Timestamp;
use portcullis_storage::{
    MigrationState, NamespaceAccess, NamespaceScope, NewNamespace, NewRegistry, NewUser,
    PageRequest, Store, StoreError, TeamScope,
};
use portcullis_testkit::postgres::{TestDatabase, sqlite_url, test_database};

const T0: Timestamp = Timestamp(1_700_000_000_000);

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

contract! {
    contract_migrations_and_ping,
    contract_user_lookups,
    contract_user_conflicts,
    contract_update_user,
    contract_list_users,
    contract_personal_namespaces,
    contract_bots_get_no_personal_namespace,
    contract_registries,
    contract_registry_adds_personal_namespaces,
    contract_set_admin,
    contract_failed_logins,
    contract_delete_user,
    contract_teams,
    contract_list_teams,
    contract_delete_team,
    contract_members,
    contract_namespaces,
    contract_list_namespaces,
    contract_namespace_access,
    contract_application_tokens,
    contract_refresh_tokens,
    contract_touch_writes_at_most_once_a_minute,
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
) -> portcullis_domain::model::Namespace {
    store
        .create_namespace(&new_namespace(registry, team, name, visibility), T0)
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

// ---------------------------------------------------------------- contract

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
    assert_eq!(store.count_users().await.unwrap(), 0);
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

    assert_eq!(store.count_users().await.unwrap(), 2);
    assert_eq!(store.count_admins().await.unwrap(), 0);
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
    assert_eq!(store.count_users().await.unwrap(), 3);

    // Updates hit the same constraints.
    let frank = store.user_by_username("frank").await.unwrap().unwrap();
    let mut renamed = frank.clone();
    renamed.username = "Carol".to_owned();
    assert_eq!(
        conflict(store.update_user(&renamed, T0).await.unwrap_err()),
        "username"
    );
    let mut renamed = frank.clone();
    renamed.email = "carol@EXAMPLE.com".to_owned();
    assert_eq!(
        conflict(store.update_user(&renamed, T0).await.unwrap_err()),
        "email"
    );
    let mut renamed = frank;
    renamed.display_name = carol.display_name.clone();
    assert_eq!(
        conflict(store.update_user(&renamed, T0).await.unwrap_err()),
        "display_name"
    );

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
    let mut changed = u.clone();
    changed.username = "heidi2".to_owned();
    changed.email = "h@example.org".to_owned();
    changed.display_name = Some("Heidi".to_owned());
    changed.password_hash = None;
    changed.enabled = false;
    changed.bot = true;
    changed.failed_attempts = 2;
    changed.locked_at = Some(at(5));
    changed.credential_version = 7;
    changed.admin = true; // ignored: only set_admin changes it
    changed.created_at = at(99); // ignored
    let updated = store.update_user(&changed, at(10)).await.unwrap();
    let expected = User {
        admin: false,
        created_at: T0,
        updated_at: at(10),
        ..changed.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.user_by_id(u.id).await.unwrap().unwrap(), expected);

    let mut missing = changed;
    missing.id += 1000;
    assert_not_found(store.update_user(&missing, at(10)).await);
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
    let names = |p: &portcullis_storage::Page<User>| -> Vec<String> {
        p.items.iter().map(|u| u.username.clone()).collect()
    };

    let all = store.list_users(&PageRequest::default()).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(names(&all), ["mallory", "Bob", "alice", "dave", "Carol"]);

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
        assert_eq!(store.team_counts(team.id).await.unwrap(), (1, 2));
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

async fn contract_registries(store: &Store) {
    let root = admin(store, "root").await;
    let other_admin = admin(store, "ops").await;
    let plain = user(store, "plain").await;
    assert_eq!(store.count_admins().await.unwrap(), 2);

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
    assert_eq!(store.count_owners(global_team.id).await.unwrap(), 2);

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
    let g1 = store
        .global_namespace(r1.id)
        .await
        .unwrap()
        .unwrap()
        .team_id;
    assert_eq!(role_in(store, g1, &u).await, None);

    let promoted = store.set_admin(u.id, true, at(5)).await.unwrap();
    assert!(promoted.admin);
    assert_eq!(promoted.updated_at, at(5));
    assert_eq!(role_in(store, g1, &u).await, Some(Role::Owner));
    assert_eq!(role_in(store, t.id, &u).await, Some(Role::Owner)); // admins own their teams
    assert_eq!(store.count_admins().await.unwrap(), 2);
    // Idempotent.
    store.set_admin(u.id, true, at(6)).await.unwrap();
    assert_eq!(store.count_owners(g1).await.unwrap(), 2);

    // Registries created later include the new admin.
    let r2 = registry(store, "two").await;
    let g2 = store
        .global_namespace(r2.id)
        .await
        .unwrap()
        .unwrap()
        .team_id;
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
    assert_eq!(store.count_admins().await.unwrap(), 1);

    // Disabled admins don't count.
    let mut disabled = store.user_by_id(boss.id).await.unwrap().unwrap();
    disabled.enabled = false;
    store.update_user(&disabled, at(8)).await.unwrap();
    assert_eq!(store.count_admins().await.unwrap(), 0);

    assert_not_found(store.set_admin(u.id + 1000, true, at(9)).await);
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
    assert_eq!(store.user_by_id(u.id).await.unwrap().unwrap(), more);

    store.clear_failed_logins(u.id).await.unwrap();
    let cleared = store.user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!((cleared.failed_attempts, cleared.locked_at), (0, None));
    assert_eq!(cleared.credential_version, 1);
    store.clear_failed_logins(u.id).await.unwrap(); // nothing to do
    store.clear_failed_logins(u.id + 1000).await.unwrap();

    // Locking disabled.
    for i in 0..3 {
        let u = store
            .record_failed_login(u.id, at(10 + i), 0)
            .await
            .unwrap();
        assert_eq!(u.locked_at, None);
    }
    assert_not_found(store.record_failed_login(u.id + 1000, at(20), 3).await);
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
    let app = store
        .create_application_token(victim.id, "ci", "hash-app", false, None, T0)
        .await
        .unwrap();
    let refresh = store
        .create_refresh_token(victim.id, "one.test:5000", "docker", "hash-refresh", T0)
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
    for ns in victims_ns {
        assert_eq!(store.namespace_by_id(ns.id).await.unwrap(), None);
    }
    assert_eq!(store.team_by_id(personal.id).await.unwrap(), None);
    assert_eq!(store.membership(t.id, victim.id).await.unwrap(), None);
    assert_eq!(store.team_counts(t.id).await.unwrap(), (1, 0));
    assert_eq!(store.application_token_by_id(app.id).await.unwrap(), None);
    assert_eq!(
        store.application_token_by_hash("hash-app").await.unwrap(),
        None
    );
    assert_eq!(store.refresh_token_by_id(refresh.id).await.unwrap(), None);
    assert_eq!(
        store.refresh_token_by_hash("hash-refresh").await.unwrap(),
        None
    );

    // Others are untouched.
    assert!(
        store
            .personal_namespace(r1.id, owner.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.team_by_id(t.id).await.unwrap().is_some());
    assert!(!store.delete_user(victim.id).await.unwrap());
}

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
    assert_eq!(store.count_owners(t.id).await.unwrap(), 1);
    assert_eq!(store.team_counts(t.id).await.unwrap(), (1, 0));

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
    let mut renamed = t.clone();
    renamed.name = "Devs".to_owned();
    renamed.description = "renamed".to_owned();
    renamed.hidden = true; // ignored
    let updated = store.update_team(&renamed, at(2)).await.unwrap();
    assert_eq!(
        updated,
        Team {
            hidden: false,
            updated_at: at(2),
            ..renamed.clone()
        }
    );
    let mut clash = updated.clone();
    clash.name = "QA".to_owned();
    assert_eq!(
        conflict(store.update_team(&clash, at(3)).await.unwrap_err()),
        "name"
    );
    let mut missing = other;
    missing.id += 1000;
    assert_not_found(store.update_team(&missing, at(3)).await);
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
    store
        .add_member(bravo.id, b.id, Role::Viewer, T0)
        .await
        .unwrap();
    assert!(store.global_namespace(r.id).await.unwrap().is_some());

    let names = |p: &portcullis_storage::Page<Team>| -> Vec<String> {
        p.items.iter().map(|t| t.name.clone()).collect()
    };
    let all = store
        .list_teams(TeamScope::AllVisible, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.total, 4);
    assert_eq!(names(&all), ["charlie", "alpha", "Bravo", "delta"]);
    let p = store
        .list_teams(TeamScope::AllVisible, &page(1, Some(2), "name", false))
        .await
        .unwrap();
    assert_eq!(
        (names(&p), p.total),
        (vec!["Bravo".into(), "charlie".into()], 4)
    );
    let p = store
        .list_teams(TeamScope::AllVisible, &page(0, Some(3), "name", true))
        .await
        .unwrap();
    assert_eq!(names(&p), ["delta", "charlie", "Bravo"]);
    let p = store
        .list_teams(TeamScope::AllVisible, &page(0, None, "bogus", true))
        .await
        .unwrap();
    assert_eq!(names(&p), ["delta", "Bravo", "alpha", "charlie"]);

    let mine = store
        .list_teams(TeamScope::MemberOf(b.id), &page(0, None, "name", false))
        .await
        .unwrap();
    assert_eq!(
        (names(&mine), mine.total),
        (vec!["Bravo".into(), "delta".into()], 2)
    );
    let p = store
        .list_teams(TeamScope::MemberOf(b.id), &page(1, Some(5), "name", false))
        .await
        .unwrap();
    assert_eq!((names(&p), p.total), (vec!["delta".into()], 2));
    let none = store
        .list_teams(TeamScope::MemberOf(b.id + 1000), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!((none.items.len(), none.total), (0, 0));
    assert_eq!(delta.name, "delta");
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
    assert_eq!(store.team_counts(from.id).await.unwrap(), (2, 2));
    assert!(store.delete_team(from.id, Some(from.id)).await.is_err());

    store.delete_team(from.id, Some(to.id)).await.unwrap();
    assert_eq!(store.team_by_id(from.id).await.unwrap(), None);
    assert_eq!(store.membership(from.id, member.id).await.unwrap(), None);
    let moved: Vec<Id> = store
        .namespaces_of_team(to.id)
        .await
        .unwrap()
        .iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(moved, [n1.id, n2.id, n3.id]);
    assert_eq!(store.team_counts(to.id).await.unwrap(), (1, 3));

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
        .set_member_role(m.id, Role::Owner, at(4))
        .await
        .unwrap();
    assert_eq!(
        (promoted.role, promoted.updated_at, promoted.created_at),
        (Role::Owner, at(4), at(1))
    );
    assert_eq!(store.count_owners(t.id).await.unwrap(), 2);
    assert_not_found(store.set_member_role(m.id + 1000, Role::Owner, at(4)).await);

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
    assert_eq!(
        members[1].1,
        store.user_by_id(alice.id).await.unwrap().unwrap()
    );

    store.remove_member(b.id).await.unwrap();
    assert_eq!(store.membership(t.id, bob.id).await.unwrap(), None);
    assert_not_found(store.remove_member(b.id).await);
    assert_eq!(store.team_counts(t.id).await.unwrap(), (2, 0));
    assert!(store.list_members(t.id + 1000).await.unwrap().is_empty());
}

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
    let of_team: Vec<String> = store
        .namespaces_of_team(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(of_team, ["apps", "apps", "tools"]);

    let mut changed = ns.clone();
    changed.name = "applications".to_owned();
    changed.description = "new".to_owned();
    changed.team_id = t2.id;
    changed.visibility = Visibility::Public;
    changed.kind = NamespaceKind::Personal; // ignored
    let updated = store.update_namespace(&changed, at(5)).await.unwrap();
    assert_eq!(
        updated,
        portcullis_domain::model::Namespace {
            kind: NamespaceKind::Team,
            updated_at: at(5),
            ..changed.clone()
        }
    );
    let mut clash = updated.clone();
    clash.name = "tools".to_owned();
    assert_eq!(
        conflict(store.update_namespace(&clash, at(6)).await.unwrap_err()),
        "name"
    );
    let mut missing = updated.clone();
    missing.id += 1000;
    assert_not_found(store.update_namespace(&missing, at(6)).await);

    store.delete_namespace(tools.id).await.unwrap();
    assert_eq!(store.namespace_by_id(tools.id).await.unwrap(), None);
    assert_not_found(store.delete_namespace(tools.id).await);
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

    let names = |p: &portcullis_storage::Page<portcullis_domain::model::Namespace>| -> Vec<String> {
        p.items.iter().map(|n| n.name.clone()).collect()
    };
    let all = store
        .list_namespaces(NamespaceScope::All, &PageRequest::default())
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

    let visible = store
        .list_namespaces(
            NamespaceScope::VisibleTo(viewer.id),
            &page(0, None, "name", false),
        )
        .await
        .unwrap();
    let mut expected = vec![
        global.clone(),
        "protected".to_owned(),
        "public".to_owned(),
        "shared".to_owned(),
        "viewer".to_owned(),
    ];
    expected.sort();
    assert_eq!(names(&visible), expected);
    assert_eq!(visible.total, 5);

    let p = store
        .list_namespaces(
            NamespaceScope::VisibleTo(viewer.id),
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
            NamespaceScope::VisibleTo(stranger.id),
            &page(0, None, "visibility", true),
        )
        .await
        .unwrap();
    assert_eq!(p.total, 4); // global, public, protected, and their own
    // Ties are broken by id in the same direction.
    assert_eq!(
        names(&p),
        ["public", global.as_str(), "protected", "stranger"]
    );

    let p = store
        .list_namespaces(
            NamespaceScope::All,
            &page(0, Some(3), "no_such_column", true),
        )
        .await
        .unwrap();
    assert_eq!(names(&p), ["stranger", "shared", "secret"]);
    assert_eq!(p.total, 8);
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

async fn contract_application_tokens(store: &Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let ci = store
        .create_application_token(alice.id, "ci", "aa11", true, Some(at(3600)), at(1))
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
    let laptop = store
        .create_application_token(alice.id, "laptop", "bb22", false, None, at(2))
        .await
        .unwrap();
    assert_eq!((laptop.pull_only, laptop.expires_at), (false, None));

    let e = store
        .create_application_token(alice.id, "ci", "cc33", false, None, at(3))
        .await
        .unwrap_err();
    assert_eq!(conflict(e), "application");
    // Same name, other user: fine.
    let bobs = store
        .create_application_token(bob.id, "ci", "dd44", false, None, at(3))
        .await
        .unwrap();
    // The same secret twice is a caller bug, not a user-facing conflict.
    assert!(matches!(
        store
            .create_application_token(bob.id, "other", "aa11", false, None, at(3))
            .await,
        Err(StoreError::Backend(_))
    ));
    assert_not_found(
        store
            .create_application_token(bob.id + 1000, "x", "ee55", false, None, at(3))
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
    assert_eq!(store.count_application_tokens(alice.id).await.unwrap(), 2);
    assert_eq!(
        store.count_application_tokens(bob.id + 1000).await.unwrap(),
        0
    );

    let (token, owner) = store
        .application_token_by_hash("aa11")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token, ci);
    assert_eq!(owner, store.user_by_id(alice.id).await.unwrap().unwrap());
    assert_eq!(store.application_token_by_hash("AA11").await.unwrap(), None);
    assert_eq!(store.application_token_by_hash("").await.unwrap(), None);

    store.delete_application_token(ci.id).await.unwrap();
    assert_eq!(store.application_token_by_hash("aa11").await.unwrap(), None);
    assert_not_found(store.delete_application_token(ci.id).await);
    assert_eq!(store.count_application_tokens(alice.id).await.unwrap(), 1);
}

async fn contract_refresh_tokens(store: &Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let a1 = store
        .create_refresh_token(alice.id, "registry.test:5000", "docker", "r1", at(1))
        .await
        .unwrap();
    assert_eq!(
        (a1.user_id, a1.service.as_str(), a1.client_id.as_str()),
        (alice.id, "registry.test:5000", "docker")
    );
    assert_eq!((a1.last_used_at, a1.created_at), (None, at(1)));
    let a2 = store
        .create_refresh_token(alice.id, "registry.test:5000", "", "r2", at(2))
        .await
        .unwrap();
    let b1 = store
        .create_refresh_token(bob.id, "other:5000", "skopeo", "r3", at(3))
        .await
        .unwrap();
    assert!(
        store
            .create_refresh_token(bob.id, "x", "", "r1", at(3))
            .await
            .is_err()
    );
    assert_not_found(
        store
            .create_refresh_token(bob.id + 1000, "x", "", "r9", at(3))
            .await,
    );

    let (t, u) = store.refresh_token_by_hash("r2").await.unwrap().unwrap();
    assert_eq!(t, a2);
    assert_eq!(u, store.user_by_id(alice.id).await.unwrap().unwrap());
    assert_eq!(store.refresh_token_by_hash("r4").await.unwrap(), None);
    assert_eq!(store.refresh_token_by_id(b1.id).await.unwrap().unwrap(), b1);
    assert_eq!(store.refresh_token_by_id(b1.id + 1000).await.unwrap(), None);
    assert_eq!(
        store.list_refresh_tokens(alice.id).await.unwrap(),
        vec![a1.clone(), a2]
    );

    store.delete_refresh_token(a1.id).await.unwrap();
    assert_not_found(store.delete_refresh_token(a1.id).await);
    assert_eq!(
        store.delete_refresh_tokens_of_user(alice.id).await.unwrap(),
        1
    );
    assert_eq!(
        store.delete_refresh_tokens_of_user(alice.id).await.unwrap(),
        0
    );
    assert!(
        store
            .list_refresh_tokens(alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_refresh_tokens(bob.id).await.unwrap(), vec![b1]);
}

async fn contract_touch_writes_at_most_once_a_minute(store: &Store) {
    let u = user(store, "toucher").await;
    let app = store
        .create_application_token(u.id, "ci", "app-hash", false, None, T0)
        .await
        .unwrap();
    let refresh = store
        .create_refresh_token(u.id, "svc", "", "refresh-hash", T0)
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
            .list_teams(TeamScope::MemberOf(u.id), &PageRequest::default())
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
