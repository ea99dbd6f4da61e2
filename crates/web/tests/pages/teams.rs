//! Teams, webhooks and search pages: what each role is offered and what the server
//! refuses anyway.

use crate::browser::{Browser, signed_in, web_app};
use crate::common::{Auth, Backend, namespace_id, pw, team_fixture};
use axum::http::StatusCode;

#[tokio::test]
async fn team_pages_offer_owners_the_controls_and_refuse_others() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let (_, team) = team_fixture(&app).await;
    let url = format!("/teams/{team}");
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    let p = alice.get("/teams").await;
    assert!(
        p.body.contains(&format!("href=\"{url}\">devs</a>")) && p.body.contains("Create a team"),
        "{}",
        p.body
    );
    let p = alice.get(&url).await;
    for shown in [
        "Add member",
        "Remove",
        "Rename or describe the team",
        "Delete team",
        "developers",
    ] {
        assert!(
            p.body.contains(shown),
            "owner should see {shown:?}: {}",
            p.body
        );
    }
    let mut carol = signed_in(&app, "carol", &pw("carol")).await;
    let p = carol.get(&url).await;
    assert_eq!(p.status, StatusCode::OK);
    for hidden in ["Add member", "Delete team", "Rename or describe"] {
        assert!(!p.body.contains(hidden), "a viewer must not see {hidden:?}");
    }
    let p = carol
        .post(
            &format!("{url}/members"),
            &[("username", "dave"), ("role", "owner")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Dave is not in the team: not even its page.
    let mut dave = signed_in(&app, "dave", &pw("dave")).await;
    assert_eq!(dave.get(&url).await.status, StatusCode::FORBIDDEN);
    // Alice adds dave, changes his role, is told why the last owner stays.
    alice.get(&url).await;
    let p = alice
        .post(
            &format!("{url}/members"),
            &[("username", "nobody"), ("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("There is no such user.") && p.body.contains("value=\"nobody\""),
        "{}",
        p.body
    );
    let p = alice
        .post(
            &format!("{url}/members"),
            &[("username", "dave"), ("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = alice.get(&url).await;
    assert!(p.body.contains("<td>dave</td>"));
    assert_eq!(dave.get(&url).await.status, StatusCode::OK);
    let alice_member = member_id(&p.body, "alice");
    let p = alice
        .post(
            &format!("{url}/members/{alice_member}"),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("only owner"), "{}", p.body);
    let dave_member = member_id(&alice.get(&url).await.body, "dave");
    alice
        .post(&format!("{url}/members/{dave_member}/delete"), &[])
        .await;
    assert_eq!(dave.get(&url).await.status, StatusCode::FORBIDDEN);
    // A bad team name keeps the form; a good one creates the team with alice as owner.
    alice.get("/teams").await;
    let p = alice
        .post("/teams", &[("name", ""), ("description", "kept")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("id=\"team-name-error\"") && p.body.contains(">kept</textarea>"),
        "{}",
        p.body
    );
    let p = alice
        .post("/teams", &[("name", "ops"), ("description", "")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let ops = p.location().to_owned();
    assert!(
        alice
            .get(&ops)
            .await
            .body
            .contains("You are owner of this team.")
    );
    // Deleting devs moves its namespace to ops.
    alice.get(&url).await;
    let p = alice
        .post(&format!("{url}/delete"), &[("migrate_to", "nosuch")])
        .await;
    assert!(p.body.contains("no such team to move"), "{}", p.body);
    assert!(
        p.body.contains("value=\"nosuch\""),
        "the typed team is kept: {}",
        p.body
    );
    let p = alice
        .post(&url, &[("name", "ops"), ("description", "typed words")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "ops is taken");
    assert!(
        p.body.contains("value=\"ops\"") && p.body.contains(">typed words</textarea>"),
        "{}",
        p.body
    );
    let p = alice
        .post(&format!("{url}/delete"), &[("migrate_to", "ops")])
        .await;
    assert_eq!((p.status, p.location()), (StatusCode::SEE_OTHER, "/teams"));
    assert!(
        alice.get(&ops).await.body.contains(">devs</a>"),
        "the namespace moved"
    );
}

/// The id of `username`'s membership, from the team page's role form.
fn member_id(body: &str, username: &str) -> String {
    let label = format!("Role of {username}</label>");
    let at = body.find(&label).unwrap();
    let before = &body[..at];
    let start = before.rfind("/members/").unwrap() + 9;
    before[start..start + before[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn webhooks_are_created_with_a_secret_shown_once_and_managed_by_owners() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    let (admin, _) = team_fixture(&app).await;
    let devs = namespace_id(&app, Auth::Portus("admin", &admin), "devs").await;
    let url = format!("/namespaces/{devs}/webhooks");
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    assert!(
        alice
            .get(&format!("/namespaces/{devs}"))
            .await
            .body
            .contains(&format!("href=\"{url}\""))
    );
    let p = alice.get(&url).await;
    assert!(p.body.contains("Add a webhook"), "{}", p.body);
    let p = alice
        .post(
            &url,
            &[
                ("name", "ci"),
                ("url", "not a url"),
                ("request_method", "POST"),
                ("push", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains("id=\"wh-url-error\"") && p.body.contains("value=\"ci\""),
        "{}",
        p.body
    );
    let p = alice
        .post(
            &url,
            &[
                ("name", "ci"),
                ("url", "https://ci.example.com/hook"),
                ("request_method", "POST"),
                ("content_type", "application/json"),
                ("push", "on"),
                ("repository_glob", "app*"),
                ("username", "hook"),
                ("password", "s3cret-pass"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let secret = p.secret();
    assert!(secret.starts_with("pcwh_"), "{secret}");
    assert!(!p.body.contains("s3cret-pass"));
    let p = alice.get(&url).await;
    assert!(!p.body.contains(&secret), "shown once");
    let hook = p.target(&format!("{url}/"));
    let p = alice.get(&hook).await;
    assert!(
        p.body.contains("https://ci.example.com/hook") && p.body.contains("basic auth as hook"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("s3cret-pass"));
    let p = alice
        .post(
            &format!("{hook}/headers"),
            &[("name", "X-Token"), ("value", "header-secret")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = alice.get(&hook).await;
    assert!(p.body.contains("<code>X-Token</code>") && !p.body.contains("header-secret"));
    let p = alice.post(&format!("{hook}/secret"), &[]).await;
    assert!(p.body.contains("The new signing secret") && !p.body.contains(&secret));
    // Carol (viewer) may look but not change; the server refuses her.
    let mut carol = signed_in(&app, "carol", &pw("carol")).await;
    let p = carol.get(&hook).await;
    assert_eq!(p.status, StatusCode::OK, "team members see the webhooks");
    assert!(
        !p.body.contains("Delete webhook")
            && !p.body.contains("Add header")
            && !p.body.contains("Resend")
    );
    let mut dave = signed_in(&app, "dave", &pw("dave")).await;
    assert_eq!(dave.get(&hook).await.status, StatusCode::FORBIDDEN);
    let p = carol.post(&format!("{hook}/delete"), &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Alice edits it (the stored password stays when the field is left empty) and deletes it.
    alice.get(&hook).await;
    let p = alice
        .post(
            &hook,
            &[
                ("name", "ci2"),
                ("url", "https://ci.example.com/hook2"),
                ("request_method", "GET"),
                ("content_type", "application/json"),
                ("delete", "on"),
                ("repository_glob", "*"),
                ("username", "hook"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = alice.get(&hook).await;
    assert!(
        p.body
            .contains("GET <code>https://ci.example.com/hook2</code>")
            && p.body.contains("basic auth as hook")
            && p.body.contains("disabled"),
        "{}",
        p.body
    );
    alice.post(&format!("{hook}/delete"), &[]).await;
    assert!(alice.get(&url).await.body.contains("No webhooks."));
}

#[tokio::test]
async fn search_finds_what_the_caller_may_see() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    team_fixture(&app).await;
    let mut bob = signed_in(&app, "bob", &pw("bob")).await;
    let p = bob.get("/search?search=dev").await;
    assert!(p.body.contains(">devs</a>"), "{}", p.body);
    // `ns/app:tag` searches the part before the colon.
    let p = bob.get("/search?search=developers:latest").await;
    assert!(
        p.body
            .contains(">devs</a> <span class=\"hint\">developers</span>"),
        "{}",
        p.body
    );
    let mut dave = signed_in(&app, "dave", &pw("dave")).await;
    let p = dave.get("/search?search=dev").await;
    assert!(
        !p.body.contains(">devs</a>"),
        "dave is in no team: {}",
        p.body
    );
}

#[tokio::test]
async fn admins_create_teams_for_another_owner() {
    let app = web_app(Backend::Sqlite, |_| {}).await;
    team_fixture(&app).await;
    let mut alice = signed_in(&app, "alice", &pw("alice")).await;
    assert!(
        !alice.get("/teams").await.body.contains("id=\"team-owner\""),
        "owners are for admins to pick"
    );
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", "adminpass1").await;
    admin.get("/teams").await;
    let p = admin
        .post("/teams", &[("name", "qa"), ("owner", "nobody")])
        .await;
    assert_eq!(
        p.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        p.location()
    );
    assert!(
        p.body.contains("Owner is not a user") && p.body.contains("value=\"qa\""),
        "{}",
        p.body
    );
    let p = admin
        .post("/teams", &[("name", "qa"), ("owner", "dave")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let team = p.location().to_owned();
    let mut dave = signed_in(&app, "dave", &pw("dave")).await;
    assert!(
        dave.get(&team)
            .await
            .body
            .contains("You are owner of this team.")
    );
}
