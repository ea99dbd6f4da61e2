//! The token matrix of Portus reference §2.2/§2.3 as a table, then an exhaustive sweep
//! over every actor × namespace kind × visibility × role × push policy × delete option
//! checking the invariants that must hold everywhere.

use super::*;
use crate::scope::Action::{self, *};

/// Actors of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    User,
    Admin,
    Bot,
    /// A user authenticated with a pull-only application token.
    PullOnlyToken,
    /// An admin authenticated with a pull-only application token.
    PullOnlyAdmin,
}

impl Who {
    const ALL: [Who; 6] = [
        Who::Anonymous,
        Who::User,
        Who::Admin,
        Who::Bot,
        Who::PullOnlyToken,
        Who::PullOnlyAdmin,
    ];
    fn subject(self) -> Option<Subject> {
        let s = |admin, bot, pull_only| {
            Some(Subject {
                user_id: 7,
                admin,
                bot,
                pull_only,
            })
        };
        match self {
            Who::Anonymous => None,
            Who::User => s(false, false, false),
            Who::Admin => s(true, false, false),
            Who::Bot => s(false, true, false),
            Who::PullOnlyToken => s(false, false, true),
            Who::PullOnlyAdmin => s(true, false, true),
        }
    }
}

fn opts(push: &str, delete: &str) -> PolicyOptions {
    PolicyOptions {
        push_policy: match push {
            "allow-teams" => PushPolicy::AllowTeams,
            "allow-personal" => PushPolicy::AllowPersonal,
            "admin-only" => PushPolicy::AdminOnly,
            other => panic!("unknown push policy {other}"),
        },
        delete_enabled: delete != "off",
        delete_contributors: delete == "contrib",
        ..PolicyOptions::default()
    }
}

fn facts(kind: &str, vis: &str, role: &str) -> Option<NamespaceFacts> {
    if kind == "missing" {
        return None;
    }
    Some(NamespaceFacts {
        kind: NamespaceKind::parse(kind).unwrap(),
        visibility: Visibility::parse(vis).unwrap(),
        role: if role == "-" {
            None
        } else {
            Some(Role::parse(role).unwrap())
        },
    })
}

fn who(s: &str) -> Who {
    match s {
        "anon" => Who::Anonymous,
        "user" => Who::User,
        "admin" => Who::Admin,
        "bot" => Who::Bot,
        "ro" => Who::PullOnlyToken,
        "ro-admin" => Who::PullOnlyAdmin,
        other => panic!("unknown actor {other}"),
    }
}

fn render(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "-".into();
    }
    actions
        .iter()
        .map(Action::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Columns: actor, namespace kind, visibility, actor's role, push policy, delete option
/// (off | on | contrib), requested actions, expected grant. `personal` with role owner
/// is the actor's own personal namespace; with role `-`, somebody else's.
const MATRIX: &str = "
# --- §2.2, push policy allow-teams, delete on (Portus defaults) ---
anon   team      public    -           allow-teams on  pull,push,delete  pull
anon   team      protected -           allow-teams on  pull,push,delete  -
anon   team      private   -           allow-teams on  pull,push,delete  -
anon   global    public    -           allow-teams on  pull,push         pull
anon   global    protected -           allow-teams on  pull              -
anon   personal  public    -           allow-teams on  pull,push         pull
anon   personal  private   -           allow-teams on  pull              -
user   team      public    -           allow-teams on  pull,push,delete  pull
user   team      protected -           allow-teams on  pull,push,delete  pull
user   team      private   -           allow-teams on  pull,push,delete  -
user   team      private   viewer      allow-teams on  pull,push,delete  pull
user   team      private   contributor allow-teams on  pull,push,delete  pull,push
user   team      private   owner       allow-teams on  pull,push,delete  pull,push,delete
user   team      public    viewer      allow-teams on  push              -
user   global    public    -           allow-teams on  pull,push,delete  pull
user   global    protected -           allow-teams on  pull,push         pull
user   personal  private   owner       allow-teams on  pull,push,delete  pull,push,delete
user   personal  private   -           allow-teams on  pull,push,delete  -
user   personal  protected -           allow-teams on  pull,push         pull
user   personal  public    -           allow-teams on  pull,push         pull
admin  team      private   -           allow-teams on  pull,push,delete  pull,push,delete
admin  team      protected -           allow-teams on  pull,push,delete  pull,push,delete
admin  global    public    owner       allow-teams on  pull,push,delete  pull,push,delete
admin  personal  private   -           allow-teams on  pull,push,delete  pull,push,delete
bot    team      private   contributor allow-teams on  pull,push,delete  pull,push
bot    team      private   -           allow-teams on  pull              -
bot    team      protected -           allow-teams on  pull,push         pull
# --- delete options ---
user   team      private   owner       allow-teams off     delete        -
user   team      private   contributor allow-teams on      delete        -
user   team      private   contributor allow-teams contrib delete        delete
user   team      private   viewer      allow-teams contrib delete        -
admin  team      private   -           allow-teams off     delete        -
admin  global    public    owner       allow-teams off     pull,delete   pull
user   personal  private   owner       allow-teams off     delete        -
# --- §2.3 push policies ---
user   team      private   owner       allow-personal on  pull,push      pull
user   team      private   contributor allow-personal on  push           -
user   personal  private   owner       allow-personal on  push           push
admin  team      private   -           allow-personal on  push           push
user   team      private   owner       admin-only on  pull,push          pull
user   personal  private   owner       admin-only on  push               -
admin  team      private   -           admin-only on  push               push
admin  global    public    owner       admin-only on  push               push
# owners still delete when they may not push (delete does not follow the push policy)
user   team      private   owner       admin-only on  delete             delete
# --- '*' (skopeo delete), unknown actions, ordering ---
user   team      private   owner       allow-teams on  *                 *
user   team      private   owner       allow-teams on  pull,*            *
user   team      private   contributor allow-teams on  *                 pull,push
user   team      private   viewer      allow-teams on  *                 pull
anon   team      public    -           allow-teams on  *                 pull
admin  team      private   -           allow-teams off *                 pull,push
user   team      private   owner       allow-teams on  push,pull,fork    push,pull
user   team      private   owner       allow-teams on  fork              -
# --- namespace that does not exist (Portus: admin only; the service creates it on push) ---
admin  missing   -         -           allow-teams on  pull,push,delete  pull,push,delete
admin  missing   -         -           allow-teams off pull,push,delete  pull,push
user   missing   -         -           allow-teams on  pull,push         -
anon   missing   -         -           allow-teams on  pull              -
# --- pull-only application tokens (beyond Portus) ---
ro     team      private   owner       allow-teams on  pull,push,delete  pull
ro     team      public    -           allow-teams on  pull,push         pull
ro-admin team    private   -           allow-teams on  pull,push,delete  pull
ro-admin missing -         -           allow-teams on  pull,push         -
";

#[test]
fn reference_matrix() {
    let mut rows = 0;
    for line in MATRIX.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let c: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(c.len(), 8, "bad row {line}");
        let subject = who(c[0]).subject();
        let ns = facts(c[1], c[2], c[3]);
        let requested: Vec<Action> = c[6].split(',').map(Action::parse).collect();
        let granted =
            repository_grant(subject.as_ref(), ns.as_ref(), &requested, &opts(c[4], c[5]));
        assert_eq!(render(&granted), c[7], "row: {line}");
        rows += 1;
    }
    assert!(rows > 50);
}

#[test]
fn catalog_is_for_admins_only() {
    let table = [
        (Who::Admin, "catalog", vec![All], "*"),
        (Who::Admin, "catalog", vec![Pull], "-"),
        (Who::Admin, "other", vec![All], "-"),
        (Who::User, "catalog", vec![All], "-"),
        (Who::Bot, "catalog", vec![All], "-"),
        (Who::Anonymous, "catalog", vec![All], "-"),
        (Who::PullOnlyAdmin, "catalog", vec![All], "-"),
    ];
    for (w, name, requested, expected) in table {
        let granted = registry_grant(w.subject().as_ref(), name, &requested);
        assert_eq!(render(&granted), expected, "{w:?} {name}");
    }
}

/// The actions a grant stands for: `*` is pull, push and delete.
fn expand(granted: &[Action]) -> Vec<Action> {
    if granted.contains(&All) {
        vec![Pull, Push, Delete]
    } else {
        granted.to_vec()
    }
}

/// Every combination of the matrix's dimensions, checked against invariants that the
/// reference states for all cells.
#[test]
fn exhaustive_invariants() {
    let kinds = ["global", "personal", "team", "missing"];
    let visibilities = ["private", "protected", "public"];
    let roles = ["-", "viewer", "contributor", "owner"];
    let policies = ["allow-teams", "allow-personal", "admin-only"];
    let deletes = ["off", "on", "contrib"];
    let everything = [Pull, Push, Delete, All, Other("fork".into())];
    let mut cases = 0;
    for w in Who::ALL {
        for kind in kinds {
            for vis in visibilities {
                for role in roles {
                    for policy in policies {
                        for delete in deletes {
                            let s = w.subject();
                            let ns = facts(kind, if kind == "missing" { "-" } else { vis }, role);
                            let o = opts(policy, delete);
                            let g = repository_grant(s.as_ref(), ns.as_ref(), &everything, &o);
                            let ctx = format!("{w:?} {kind} {vis} {role} {policy} {delete}: {g:?}");
                            cases += 1;
                            // Unknown actions never appear.
                            assert!(!g.iter().any(|a| matches!(a, Other(_))), "{ctx}");
                            // Anonymous callers and pull-only tokens only ever pull.
                            if matches!(w, Who::Anonymous | Who::PullOnlyToken | Who::PullOnlyAdmin)
                            {
                                assert!(g.iter().all(|a| *a == Pull), "{ctx}");
                            }
                            // Deleting needs delete.enabled.
                            if delete == "off" {
                                assert!(!g.contains(&Delete) && !g.contains(&All), "{ctx}");
                            }
                            // `*` is granted alone, and only when all three actions are.
                            if g.contains(&All) {
                                assert_eq!(g, vec![All], "{ctx}");
                                let each = repository_grant(
                                    s.as_ref(),
                                    ns.as_ref(),
                                    &[Pull, Push, Delete],
                                    &o,
                                );
                                assert_eq!(each, vec![Pull, Push, Delete], "{ctx}");
                            }
                            // Public namespaces are pullable by everyone.
                            if kind != "missing" && vis == "public" {
                                assert!(expand(&g).contains(&Pull), "{ctx}");
                            }
                            // A missing namespace yields nothing for non-admins.
                            if kind == "missing" && w != Who::Admin {
                                assert!(g.is_empty(), "{ctx}");
                            }
                            // Admins get at least what anybody else gets in the same cell.
                            if w == Who::Admin && kind != "missing" {
                                for other in Who::ALL {
                                    let og = repository_grant(
                                        other.subject().as_ref(),
                                        ns.as_ref(),
                                        &everything,
                                        &o,
                                    );
                                    assert!(
                                        expand(&og).iter().all(|a| expand(&g).contains(a)),
                                        "{ctx} vs {other:?} {og:?}"
                                    );
                                }
                            }
                            // Non-admins never push to the global namespace.
                            if kind == "global" && w != Who::Admin {
                                assert!(!expand(&g).contains(&Push), "{ctx}");
                            }
                            // Viewers and strangers never push.
                            if w != Who::Admin && matches!(role, "-" | "viewer") {
                                assert!(!expand(&g).contains(&Push), "{ctx}");
                            }
                            // Only admins push under admin-only.
                            if policy == "admin-only" && w != Who::Admin {
                                assert!(!expand(&g).contains(&Push), "{ctx}");
                            }
                            // The grant never depends on the request order beyond ordering.
                            let reversed: Vec<Action> = everything.iter().rev().cloned().collect();
                            let mut g2 = repository_grant(s.as_ref(), ns.as_ref(), &reversed, &o);
                            let mut g1 = g.clone();
                            g1.sort();
                            g2.sort();
                            assert_eq!(g1, g2, "{ctx}");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 6 * 4 * 3 * 4 * 3 * 3);
}

#[test]
fn management_permissions() {
    let user = Subject {
        user_id: 1,
        admin: false,
        bot: false,
        pull_only: false,
    };
    let admin = Subject {
        admin: true,
        ..user
    };
    let d = PolicyOptions::default();
    let team_ns = |role| NamespaceFacts {
        kind: NamespaceKind::Team,
        visibility: Visibility::Private,
        role,
    };
    let global = NamespaceFacts {
        kind: NamespaceKind::Global,
        visibility: Visibility::Public,
        role: None,
    };

    // Namespace creation follows the push policy (Portus: create? requires push?).
    assert!(can_create_namespace(&user, Some(Role::Contributor), &d));
    assert!(!can_create_namespace(&user, Some(Role::Viewer), &d));
    assert!(!can_create_namespace(&user, None, &d));
    assert!(!can_create_namespace(
        &user,
        Some(Role::Owner),
        &PolicyOptions {
            create_namespace: false,
            ..d.clone()
        }
    ));
    assert!(!can_create_namespace(
        &user,
        Some(Role::Owner),
        &PolicyOptions {
            push_policy: PushPolicy::AllowPersonal,
            ..d.clone()
        }
    ));
    assert!(can_create_namespace(
        &admin,
        None,
        &PolicyOptions {
            create_namespace: false,
            push_policy: PushPolicy::AdminOnly,
            ..d.clone()
        }
    ));

    assert!(can_update_namespace(&user, &team_ns(Some(Role::Owner)), &d));
    assert!(!can_update_namespace(
        &user,
        &team_ns(Some(Role::Contributor)),
        &d
    ));
    assert!(!can_update_namespace(
        &user,
        &team_ns(Some(Role::Owner)),
        &PolicyOptions {
            manage_namespace: false,
            ..d.clone()
        }
    ));
    assert!(!can_update_namespace(
        &user,
        &team_ns(Some(Role::Owner)),
        &PolicyOptions {
            push_policy: PushPolicy::AdminOnly,
            ..d.clone()
        }
    ));
    assert!(can_update_namespace(&admin, &global, &d));

    assert!(can_change_visibility(
        &user,
        &team_ns(Some(Role::Owner)),
        &d
    ));
    assert!(!can_change_visibility(
        &user,
        &team_ns(Some(Role::Owner)),
        &PolicyOptions {
            change_visibility: false,
            ..d.clone()
        }
    ));
    assert!(!can_change_visibility(
        &user,
        &NamespaceFacts {
            role: Some(Role::Owner),
            ..global
        },
        &d
    ));
    assert!(can_change_visibility(&admin, &global, &d));

    assert!(can_delete_namespace(&user, &team_ns(Some(Role::Owner)), &d));
    assert!(!can_delete_namespace(
        &user,
        &team_ns(Some(Role::Contributor)),
        &d
    ));
    assert!(can_delete_namespace(
        &user,
        &team_ns(Some(Role::Contributor)),
        &PolicyOptions {
            delete_contributors: true,
            ..d.clone()
        }
    ));
    assert!(!can_delete_namespace(&admin, &global, &d));
    assert!(!can_delete_namespace(
        &admin,
        &team_ns(None),
        &PolicyOptions {
            delete_enabled: false,
            ..d.clone()
        }
    ));

    assert!(can_create_team(&user, &d));
    assert!(!can_create_team(
        &user,
        &PolicyOptions {
            create_team: false,
            ..d.clone()
        }
    ));
    assert!(can_create_team(
        &admin,
        &PolicyOptions {
            create_team: false,
            ..d.clone()
        }
    ));
    assert!(can_update_team(&user, false, Some(Role::Owner), &d));
    assert!(!can_update_team(
        &user,
        false,
        Some(Role::Owner),
        &PolicyOptions {
            manage_team: false,
            ..d.clone()
        }
    ));
    assert!(!can_update_team(&admin, true, None, &d));
    // Portus crashed here when delete.contributors was on (its Q); we answer.
    assert!(can_delete_team(
        &user,
        false,
        Some(Role::Contributor),
        &PolicyOptions {
            delete_contributors: true,
            ..d.clone()
        }
    ));
    assert!(!can_delete_team(&user, false, Some(Role::Contributor), &d));
    assert!(!can_delete_team(&admin, true, None, &d));
    assert!(can_manage_members(&user, false, Some(Role::Owner)));
    assert!(!can_manage_members(&user, false, Some(Role::Contributor)));
    assert!(can_view_team(&user, Some(Role::Viewer)));
    assert!(!can_view_team(&user, None));

    // Application tokens: the owner, or an admin for a bot (Portus checked nothing).
    assert!(can_view_tokens_of(&user, 1, false));
    assert!(!can_view_tokens_of(&user, 2, true));
    assert!(can_view_tokens_of(&admin, 2, true));
    assert!(can_manage_tokens_of(&user, 1, false));
    assert!(!can_manage_tokens_of(&user, 2, true));
    assert!(can_manage_tokens_of(&admin, 2, true));
    assert!(!can_manage_tokens_of(&admin, 2, false));
}

/// A pull-only application token is read-only everywhere: for every management rule,
/// the same caller with the same role is refused as soon as the token is pull-only,
/// while what only reads stays allowed.
#[test]
fn pull_only_tokens_change_nothing() {
    let generous = PolicyOptions {
        delete_contributors: true,
        ..PolicyOptions::default()
    };
    for admin in [false, true] {
        let full = Subject {
            user_id: 1,
            admin,
            bot: false,
            pull_only: false,
        };
        let ro = Subject {
            pull_only: true,
            ..full
        };
        let own = NamespaceFacts {
            kind: NamespaceKind::Team,
            visibility: Visibility::Private,
            role: Some(Role::Owner),
        };
        let o = &generous;
        // (rule, allowed with a full credential, allowed with the pull-only one)
        let rows: Vec<(&str, bool, bool)> = vec![
            (
                "create namespace",
                can_create_namespace(&full, Some(Role::Owner), o),
                can_create_namespace(&ro, Some(Role::Owner), o),
            ),
            (
                "update namespace",
                can_update_namespace(&full, &own, o),
                can_update_namespace(&ro, &own, o),
            ),
            (
                "change namespace team",
                can_change_namespace_team(&full, &own, o),
                can_change_namespace_team(&ro, &own, o),
            ),
            (
                "change visibility",
                can_change_visibility(&full, &own, o),
                can_change_visibility(&ro, &own, o),
            ),
            (
                "delete namespace",
                can_delete_namespace(&full, &own, o),
                can_delete_namespace(&ro, &own, o),
            ),
            (
                "create team",
                can_create_team(&full, o),
                can_create_team(&ro, o),
            ),
            (
                "update team",
                can_update_team(&full, false, Some(Role::Owner), o),
                can_update_team(&ro, false, Some(Role::Owner), o),
            ),
            (
                "delete team",
                can_delete_team(&full, false, Some(Role::Owner), o),
                can_delete_team(&ro, false, Some(Role::Owner), o),
            ),
            (
                "manage members",
                can_manage_members(&full, false, Some(Role::Owner)),
                can_manage_members(&ro, false, Some(Role::Owner)),
            ),
            (
                "mint or revoke own tokens",
                can_manage_tokens_of(&full, 1, false),
                can_manage_tokens_of(&ro, 1, false),
            ),
            ("administer", can_administer(&full), can_administer(&ro)),
            (
                "push",
                can_push(Some(&full), &own, o),
                can_push(Some(&ro), &own, o),
            ),
            (
                "delete images",
                can_delete(Some(&full), &own, o),
                can_delete(Some(&ro), &own, o),
            ),
        ];
        for (rule, with_full, with_ro) in rows {
            let allowed_for_full = rule != "administer" || admin;
            assert_eq!(
                with_full, allowed_for_full,
                "{rule} (admin: {admin}) with a full credential"
            );
            assert!(!with_ro, "{rule} (admin: {admin}) with a pull-only token");
        }
        // Reading stays allowed.
        assert!(can_view_tokens_of(&ro, 1, false));
        assert!(can_view_team(&ro, Some(Role::Viewer)));
        assert!(can_view_namespace(Some(&ro), &own));
        assert!(can_pull(Some(&ro), &own));
    }
}

/// Webhooks (reference §2.4): view = admin or member; create/delete = admin or owner
/// with `create_webhook`; manage = admin or owner with `manage_webhook`; a pull-only
/// credential changes nothing.
#[test]
fn webhook_matrix() {
    use Role::{Contributor, Owner, Viewer};
    let ns = |role| NamespaceFacts {
        kind: NamespaceKind::Team,
        visibility: Visibility::Public,
        role,
    };
    let on = PolicyOptions::default();
    let off = PolicyOptions {
        create_webhook: false,
        manage_webhook: false,
        ..PolicyOptions::default()
    };
    // (who, role, options, view, create, manage)
    let table = [
        (Who::User, Some(Owner), &on, true, true, true),
        (Who::User, Some(Contributor), &on, true, false, false),
        (Who::User, Some(Viewer), &on, true, false, false),
        (Who::User, None, &on, false, false, false),
        (Who::User, Some(Owner), &off, true, false, false),
        (Who::Admin, None, &off, true, true, true),
        (Who::Bot, Some(Owner), &on, true, true, true),
        (Who::PullOnlyToken, Some(Owner), &on, true, false, false),
        (Who::PullOnlyAdmin, None, &on, true, false, false),
    ];
    for (who, role, opts, view, create, manage) in table {
        let s = who.subject().unwrap();
        let f = ns(role);
        assert_eq!(can_view_webhooks(&s, &f), view, "view {who:?} {role:?}");
        assert_eq!(
            can_create_webhook(&s, &f, opts),
            create,
            "create {who:?} {role:?}"
        );
        assert_eq!(
            can_manage_webhook(&s, &f, opts),
            manage,
            "manage {who:?} {role:?}"
        );
    }
}
