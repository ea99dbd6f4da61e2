use super::*;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(t, d)| ((*t).to_owned(), (*d).to_owned()))
        .collect()
}

fn add(repository: &str, tag: &str, digest: &str) -> SyncChange {
    SyncChange::AddTag {
        repository: repository.into(),
        tag: tag.into(),
        digest: digest.into(),
    }
}

#[test]
fn sync_plans() {
    let local: BTreeMap<String, BTreeMap<String, String>> = [
        ("a/kept".to_owned(), tags(&[("1", "d1"), ("2", "d2")])),
        ("a/gone".to_owned(), tags(&[("1", "d1")])),
        ("a/unreadable".to_owned(), tags(&[("1", "d1")])),
        ("a/emptied".to_owned(), tags(&[("1", "d1")])),
    ]
    .into();
    let remote: BTreeMap<String, RemoteTags> = [
        (
            "a/kept".to_owned(),
            RemoteTags::Listed(tags(&[("1", "d1"), ("2", "d9"), ("3", "d3")])),
        ),
        ("a/unreadable".to_owned(), RemoteTags::Unreadable),
        ("a/emptied".to_owned(), RemoteTags::Listed(tags(&[]))),
        ("b/new".to_owned(), RemoteTags::Listed(tags(&[("x", "dx")]))),
    ]
    .into();
    let moved = SyncChange::MoveTag {
        repository: "a/kept".into(),
        tag: "2".into(),
        digest: "d9".into(),
    };
    // (policy, expected changes)
    let cases = [
        (
            SyncPolicy { delete: false },
            vec![
                moved.clone(),
                add("a/kept", "3", "d3"),
                add("b/new", "x", "dx"),
            ],
        ),
        (
            SyncPolicy { delete: true },
            vec![
                moved,
                add("a/kept", "3", "d3"),
                add("b/new", "x", "dx"),
                SyncChange::DeleteTag {
                    repository: "a/emptied".into(),
                    tag: "1".into(),
                },
                SyncChange::DeleteRepository {
                    repository: "a/emptied".into(),
                },
                SyncChange::DeleteRepository {
                    repository: "a/gone".into(),
                },
            ],
        ),
    ];
    for (policy, expected) in cases {
        let mut got = plan_sync(&local, &remote, policy);
        let mut expected = expected;
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{policy:?}");
        // The unreadable repository is never touched, whatever the policy.
        assert!(!got.iter().any(|c| format!("{c:?}").contains("unreadable")));
    }
}

fn tag(
    id: Id,
    name: &str,
    digest: &str,
    pushed_days_ago: i64,
    pulled_days_ago: Option<i64>,
) -> GcTag {
    let now = Timestamp::from_secs(1_000 * 86_400);
    GcTag {
        id,
        name: name.into(),
        digest: digest.into(),
        pushed_at: now.plus_secs(-pushed_days_ago * 86_400),
        pulled_at: pulled_days_ago.map(|d| now.plus_secs(-d * 86_400)),
    }
}

#[test]
fn gc_selects_per_repository() {
    let now = Timestamp::from_secs(1_000 * 86_400);
    let all = |_: &str| true;
    let only_ci = |n: &str| n.starts_with("ci-");
    let rules = |older_than_days, keep_latest| GcRules {
        older_than_days,
        keep_latest,
    };
    let repo = vec![
        tag(1, "ci-1", "d1", 90, None),
        tag(2, "ci-2", "d2", 80, Some(70)),
        tag(3, "ci-3", "d3", 70, Some(2)), // pulled recently: stays
        tag(4, "release", "d4", 60, None),
        tag(5, "ci-5", "d5", 5, None), // too young
    ];
    // (rules, name filter, expected ids, why)
    type Filter<'a> = &'a dyn Fn(&str) -> bool;
    let cases: Vec<(GcRules, Filter, Vec<Id>, &str)> = vec![
        (
            rules(30, 0),
            &all,
            vec![1, 2, 4],
            "old and not pulled lately",
        ),
        (
            rules(30, 2),
            &all,
            vec![1, 2],
            "the 2 newest (5 and 4) stay",
        ),
        (
            rules(30, 5),
            &all,
            vec![],
            "keep_latest covers the whole repository",
        ),
        (
            rules(30, 9),
            &all,
            vec![],
            "keep_latest larger than the repository",
        ),
        (rules(30, 0), &only_ci, vec![1, 2], "name filter"),
        (rules(100, 0), &all, vec![], "nothing that old"),
    ];
    for (rules, filter, expected, why) in cases {
        assert_eq!(gc_select(&repo, rules, now, filter), expected, "{why}");
    }
}

#[test]
fn gc_never_deletes_a_digest_a_kept_tag_shares() {
    let now = Timestamp::from_secs(1_000 * 86_400);
    let repo = vec![
        tag(1, "old", "shared", 90, None),
        tag(2, "latest", "shared", 1, None),
        tag(3, "older", "own", 95, None),
    ];
    let rules = GcRules {
        older_than_days: 30,
        keep_latest: 0,
    };
    assert_eq!(gc_select(&repo, rules, now, &|_| true), vec![3]);
}

#[test]
fn retry_delays_grow_and_cap() {
    let delays: Vec<i64> = (1..=12).map(retry_delay_secs).collect();
    assert_eq!(
        delays,
        vec![2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
    );
    assert_eq!(retry_delay_secs(0), 2);
    assert_eq!(retry_delay_secs(i64::MAX), 600);
}

#[test]
fn statuses_round_trip() {
    for &s in EventStatus::ALL {
        assert_eq!(EventStatus::parse(s.as_str()), Some(s));
    }
    for &s in JobState::ALL {
        assert_eq!(JobState::parse(s.as_str()), Some(s));
    }
    assert_eq!(JobState::parse("nope"), None);
}
