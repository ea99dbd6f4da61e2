//! The LDAP group sync (Portus's `ldap.group_sync`) against a real slapd: groups fill
//! the teams of the same name with members who are users already, Active Directory
//! style member DNs are resolved, leavers go only with `remove_members` and only when
//! the sync added them, owners opt a team out with `/api/v1/teams/:id/ldap_check`,
//! and an outage changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::{Auth, Backend, TestApp, pw};
use portcullis_config::Config;
use portcullis_service::background::kinds;
use portcullis_testkit::ldap::{
    self as dir, ALICE_PASSWORD, BOB_PASSWORD, CAROL_PASSWORD, DAVE_PASSWORD, ERIN_DN,
    ERIN_PASSWORD, Seed, Slapd,
};
use serde_json::{Value, json};

const REGISTRY: &str = "registry.test:5000";

async fn slapd() -> Slapd {
    Slapd::start(&Seed::default_directory())
        .await
        .unwrap_or_else(|e| panic!("start slapd: {e:#} (see scripts/test.sh)"))
}

fn use_directory(config: &mut Config, server: &Slapd, remove_members: bool) {
    let l = &mut config.ldap;
    l.enabled = true;
    l.hostname = server.host().to_owned();
    l.port = i64::from(server.plain_port());
    l.base = dir::BASE_DN.to_owned();
    l.group_base = dir::GROUPS_BASE.to_owned();
    l.group_sync.remove_members = remove_members;
}

struct Fixture {
    app: TestApp,
    admin: String,
}

impl Fixture {
    async fn new(server: &Slapd, backend: Backend, remove_members: bool) -> Self {
        let app = TestApp::on(backend, |c| use_directory(c, server, remove_members)).await;
        let admin = app.bootstrap().await;
        app.create_registry(&admin, REGISTRY).await;
        Self { app, admin }
    }

    fn admin(&self) -> Auth<'_> {
        Auth::Portus("admin", &self.admin)
    }

    /// A directory user's first `docker login`, which creates the account.
    async fn sign_in(&self, user: &str, password: &str) {
        let r = self
            .app
            .token(&format!("service={REGISTRY}"), Auth::Basic(user, password))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{user}: {:?}", r.body);
    }

    async fn create_team(&self, name: &str) -> i64 {
        let r = self
            .app
            .post("/api/v1/teams", self.admin(), json!({ "name": name }))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_i64().unwrap()
    }

    /// `name:role` of every member, sorted (nobody here has a display name, so the
    /// name shown is the username).
    async fn members(&self, team: i64) -> Vec<String> {
        let r = self
            .app
            .get(&format!("/api/v1/teams/{team}/members"), self.admin())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let mut members: Vec<String> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| format!("{}:{}", m["display_name"].as_str().unwrap(), role_of(m)))
            .collect();
        members.sort();
        members
    }

    async fn sync(&self) -> portcullis_service::group_sync::GroupSyncReport {
        self.app.services.group_sync.run().await.unwrap()
    }
}

fn role_of(member: &Value) -> String {
    member["role"].as_str().unwrap_or_default().to_owned()
}

fn names(members: &[&str]) -> Vec<String> {
    members.iter().map(|m| m.to_string()).collect()
}

async fn groups_fill_teams(backend: Backend) {
    let server = slapd().await;
    let f = Fixture::new(&server, backend, false).await;
    for (user, password) in [
        ("alice", ALICE_PASSWORD),
        ("bob", BOB_PASSWORD),
        ("carol", CAROL_PASSWORD),
    ] {
        f.sign_in(user, password).await;
    }
    let developers = f.create_team("developers").await;
    // Matched case-insensitively; `qa` is a groupOfUniqueNames.
    let qa = f.create_team("QA").await;
    let lonely = f.create_team("no-such-group").await;
    // Erin is an Active Directory entry (`cn=Erin Example`, `sAMAccountName: erin`)
    // and not a user yet: skipped until she signs in.
    server.add_member("developers", ERIN_DN).await.unwrap();

    let report = f.sync().await;
    assert_eq!((report.teams, report.added), (2, 3), "{report:?}");
    assert_eq!(
        f.members(developers).await,
        names(&["admin:owner", "alice:viewer", "bob:viewer"])
    );
    assert_eq!(f.members(qa).await, names(&["admin:owner", "carol:viewer"]));
    assert_eq!(f.members(lonely).await, names(&["admin:owner"]));
    // Nothing new: nothing written.
    assert_eq!(f.sync().await.added, 0);

    // With the AD-style uid attribute, erin's DN is resolved once she is a user.
    let erin_app = f
        .app
        .second_node(|c| {
            use_directory(c, &server, false);
            c.ldap.base = dir::AD_BASE.to_owned();
            c.ldap.uid = "sAMAccountName".into();
        })
        .await;
    let r = erin_app
        .token(
            &format!("service={REGISTRY}"),
            Auth::Basic("erin", ERIN_PASSWORD),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let report = erin_app.services.group_sync.run().await.unwrap();
    assert_eq!(report.added, 1, "{report:?}");
    assert_eq!(
        f.members(developers).await,
        names(&["admin:owner", "alice:viewer", "bob:viewer", "erin:viewer"])
    );

    // The audit trail names Portcullis as the author.
    let r = f
        .app
        .get("/api/v1/activities?per_page=100", f.admin())
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let synced: Vec<&Value> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["key"] == "team.add_member" && a["parameters"]["source"] == "ldap")
        .collect();
    assert_eq!(synced.len(), 4, "{:?}", r.body);
    assert!(
        synced.iter().all(|a| a["owner"]["name"] == "portcullis"),
        "{synced:?}"
    );
}

#[tokio::test]
async fn groups_fill_the_teams_of_the_same_name_on_sqlite() {
    groups_fill_teams(Backend::Sqlite).await;
}

#[tokio::test]
async fn groups_fill_the_teams_of_the_same_name_on_postgres() {
    groups_fill_teams(Backend::Postgres).await;
}

#[tokio::test]
async fn leavers_go_only_with_remove_members_and_only_when_synced() {
    let server = slapd().await;
    for remove in [false, true] {
        let f = Fixture::new(&server, Backend::Sqlite, remove).await;
        for (user, password) in [
            ("alice", ALICE_PASSWORD),
            ("bob", BOB_PASSWORD),
            ("dave", DAVE_PASSWORD),
        ] {
            f.sign_in(user, password).await;
        }
        let team = f.create_team("developers").await;
        f.sync().await;
        // Dave joins by hand; he is in no group.
        let r = f
            .app
            .post(
                &format!("/api/v1/teams/{team}/members"),
                f.admin(),
                json!({"user": "dave", "role": "contributor"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        server
            .remove_member("developers", &dir::person_dn("bob"))
            .await
            .unwrap();
        let report = f.sync().await;
        let want = if remove {
            vec!["admin:owner", "alice:viewer", "dave:contributor"]
        } else {
            vec![
                "admin:owner",
                "alice:viewer",
                "bob:viewer",
                "dave:contributor",
            ]
        };
        assert_eq!(
            f.members(team).await,
            names(&want),
            "remove_members={remove}"
        );
        assert_eq!(report.removed, usize::from(remove), "{report:?}");
        server
            .add_member("developers", &dir::person_dn("bob"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn owners_opt_a_team_out_with_ldap_check() {
    let server = slapd().await;
    let f = Fixture::new(&server, Backend::Sqlite, false).await;
    f.sign_in("alice", ALICE_PASSWORD).await;
    f.sign_in("carol", CAROL_PASSWORD).await;
    f.app.create_user(&f.admin, "zoe").await;
    let team = f.create_team("developers").await;
    let uri = format!("/api/v1/teams/{team}/ldap_check");
    let r = f
        .app
        .post(
            &format!("/api/v1/teams/{team}/members"),
            f.admin(),
            json!({"user": "zoe", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Who may switch it: owners and admins; a viewer and an outsider are refused.
    let zoe_pw = pw("zoe");
    let refusals = [
        (Auth::Basic("zoe", &zoe_pw), StatusCode::FORBIDDEN),
        (Auth::Basic("carol", CAROL_PASSWORD), StatusCode::FORBIDDEN),
        (Auth::None, StatusCode::UNAUTHORIZED),
    ];
    for (auth, want) in refusals {
        assert_eq!(f.app.post(&uri, auth, json!({})).await.status, want);
    }
    // A pull-only token of an admin is read-only here too.
    let r = f
        .app
        .post(
            "/api/v1/users/1/application_tokens",
            f.admin(),
            json!({"application": "ro", "pull_only": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let ro = r.body["plain_token"].as_str().unwrap().to_owned();
    let r = f
        .app
        .post(&uri, Auth::Portus("admin", &ro), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);

    let r = f.app.post(&uri, f.admin(), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["ldap_group_sync"], false);
    assert_eq!(f.sync().await.teams, 0);
    assert_eq!(f.members(team).await, names(&["admin:owner", "zoe:viewer"]));
    let r = f.app.get(&uri, Auth::Basic("zoe", &zoe_pw)).await;
    assert_eq!(r.body["ldap_group_sync"], false, "{:?}", r.body);

    let r = f.app.delete(&uri, f.admin()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(f.sync().await.added, 1);
    assert_eq!(
        f.members(team).await,
        names(&["admin:owner", "alice:viewer", "zoe:viewer"])
    );
}

#[tokio::test]
async fn ldap_check_is_405_without_the_group_sync() {
    let server = slapd().await;
    let app = TestApp::with(|c| {
        use_directory(c, &server, false);
        c.ldap.group_sync.enabled = false;
    })
    .await;
    let admin = app.bootstrap().await;
    let r = app
        .post(
            "/api/v1/teams",
            Auth::Portus("admin", &admin),
            json!({"name": "devs"}),
        )
        .await;
    let team = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            &format!("/api/v1/teams/{team}/ldap_check"),
            Auth::Portus("admin", &admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{:?}", r.body);
    assert!(
        r.body["message"].to_string().contains("group sync"),
        "{:?}",
        r.body
    );
    // Nor is the periodic task queued.
    let queued = app.services.background.schedule_due().await.unwrap();
    assert!(!queued.contains(&kinds::LDAP_GROUP_SYNC), "{queued:?}");
}

#[tokio::test]
async fn the_worker_runs_it_every_period_and_an_outage_changes_nothing() {
    let mut server = slapd().await;
    let f = Fixture::new(&server, Backend::Sqlite, true).await;
    f.sign_in("alice", ALICE_PASSWORD).await;
    let team = f.create_team("developers").await;
    let queued = f.app.services.background.schedule_due().await.unwrap();
    assert!(queued.contains(&kinds::LDAP_GROUP_SYNC), "{queued:?}");
    // Not again within the period (10 s).
    f.app.clock.advance_secs(5);
    let queued = f.app.services.background.schedule_due().await.unwrap();
    assert!(!queued.contains(&kinds::LDAP_GROUP_SYNC), "{queued:?}");
    let worker = portcullis_worker::Worker::new(f.app.services.clone(), "test", 1);
    let ran = worker.drain().await.unwrap();
    assert!(
        ran.iter()
            .any(|(job, outcome)| job.kind == kinds::LDAP_GROUP_SYNC
                && *outcome == portcullis_service::JobOutcome::Done),
        "{ran:?}"
    );
    assert_eq!(
        f.members(team).await,
        names(&["admin:owner", "alice:viewer"])
    );

    server.stop().await;
    assert!(f.app.services.group_sync.run().await.is_err());
    let outcome = f.app.services.group_sync.run_job().await;
    assert!(
        matches!(outcome, portcullis_service::JobOutcome::Retry(_)),
        "{outcome:?}"
    );
    assert_eq!(
        f.members(team).await,
        names(&["admin:owner", "alice:viewer"])
    );
}
