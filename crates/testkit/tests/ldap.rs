//! The slapd harness proven with the OpenLDAP CLI clients: binds, StartTLS, LDAPS,
//! the seeded groups and AD-style user, runtime changes and a restart. Every test
//! starts its own slapd (own ports, own directory), so they run in parallel.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use portcullis_testkit::ldap::{
    ALICE_PASSWORD, DAVE_PASSWORD, ERIN_DN, ERIN_PASSWORD, GROUPS_BASE, SERVICE_DN,
    SERVICE_PASSWORD, Seed, Slapd, User, client, person_dn,
};
use std::process::Output;
use std::time::Instant;

/// `ldapwhoami` with a simple bind of `dn`/`password` against `url`, plus `args`
/// (`-ZZ`) and environment variables `env`.
async fn whoami(
    url: &str,
    dn: &str,
    password: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    client("ldapwhoami")
        .unwrap()
        .args([
            "-x",
            "-o",
            "nettimeout=5",
            "-H",
            url,
            "-D",
            dn,
            "-w",
            password,
        ])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `ldapsearch` bound as the service account, as Portcullis will search: the DNs
/// of the matching entries below `base`.
async fn search_dns(slapd: &Slapd, base: &str, filter: &str) -> Vec<String> {
    let output = client("ldapsearch")
        .unwrap()
        .args(["-x", "-LLL", "-o", "ldif_wrap=no", "-H", &slapd.plain_url()])
        .args([
            "-D",
            SERVICE_DN,
            "-w",
            SERVICE_PASSWORD,
            "-b",
            base,
            filter,
            "1.1",
        ])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    stdout(&output)
        .lines()
        .filter_map(|l| l.strip_prefix("dn: "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn plain_bind_checks_the_password() {
    let started = Instant::now();
    let slapd = Slapd::start(&Seed::default_directory()).await.unwrap();
    eprintln!("slapd started in {:?}", started.elapsed());
    let alice = person_dn("alice");

    let ok = whoami(&slapd.plain_url(), &alice, ALICE_PASSWORD, &[], &[]).await;
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(stdout(&ok).trim(), format!("dn:{alice}"));

    let wrong = whoami(&slapd.plain_url(), &alice, "wrong", &[], &[]).await;
    assert_eq!(
        wrong.status.code(),
        Some(49),
        "invalid credentials: {wrong:?}"
    );

    let admin = whoami(
        &slapd.plain_url(),
        slapd.admin_dn(),
        slapd.admin_password(),
        &[],
        &[],
    )
    .await;
    assert!(admin.status.success(), "{admin:?}");
}

#[tokio::test]
async fn start_tls_needs_the_test_ca() {
    let slapd = Slapd::start(&Seed::default_directory()).await.unwrap();
    let ca = slapd.ca_cert_path();
    let ca = ca.to_str().unwrap();
    let alice = person_dn("alice");
    assert!(
        slapd
            .ca_cert_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    let trusted = whoami(
        &slapd.plain_url(),
        &alice,
        ALICE_PASSWORD,
        &["-ZZ"],
        &[("LDAPTLS_CACERT", ca), ("LDAPTLS_REQCERT", "demand")],
    )
    .await;
    assert!(trusted.status.success(), "{trusted:?}");

    let untrusted = whoami(
        &slapd.plain_url(),
        &alice,
        ALICE_PASSWORD,
        &["-ZZ"],
        &[("LDAPTLS_REQCERT", "demand")],
    )
    .await;
    assert!(!untrusted.status.success(), "{untrusted:?}");
    assert!(
        String::from_utf8_lossy(&untrusted.stderr).contains("ldap_start_tls"),
        "{untrusted:?}"
    );
}

#[tokio::test]
async fn ldaps_needs_the_test_ca() {
    let slapd = Slapd::start(&Seed::default_directory()).await.unwrap();
    let ca = slapd.ca_cert_path();
    let ca = ca.to_str().unwrap();
    let url = format!("ldaps://127.0.0.1:{}", slapd.ldaps_port());
    assert_eq!(url, slapd.ldaps_url());

    let trusted = whoami(&url, ERIN_DN, ERIN_PASSWORD, &[], &[("LDAPTLS_CACERT", ca)]).await;
    assert!(trusted.status.success(), "{trusted:?}");
    assert_eq!(stdout(&trusted).trim(), format!("dn:{ERIN_DN}"));

    let untrusted = whoami(
        &url,
        ERIN_DN,
        ERIN_PASSWORD,
        &[],
        &[("LDAPTLS_REQCERT", "demand")],
    )
    .await;
    assert!(!untrusted.status.success(), "{untrusted:?}");
}

#[tokio::test]
async fn seeded_groups_users_and_ad_accounts_are_searchable() {
    let slapd = Slapd::start(&Seed::default_directory()).await.unwrap();
    let base = slapd.base_dn();

    let alices = format!(
        "(&(objectClass=groupOfNames)(member={}))",
        person_dn("alice")
    );
    assert_eq!(
        search_dns(&slapd, GROUPS_BASE, &alices).await,
        ["cn=developers,ou=groups,dc=example,dc=org"]
    );
    let carols = format!("(uniqueMember={})", person_dn("carol"));
    assert_eq!(
        search_dns(&slapd, GROUPS_BASE, &carols).await,
        ["cn=qa,ou=groups,dc=example,dc=org"]
    );

    assert_eq!(
        search_dns(&slapd, base, "(sAMAccountName=erin)").await,
        [ERIN_DN]
    );
    // caseIgnoreMatch, like AD.
    assert_eq!(
        search_dns(&slapd, base, "(sAMAccountName=ERIN)").await,
        [ERIN_DN]
    );

    assert_eq!(
        search_dns(&slapd, base, "(&(uid=*)(!(mail=*)))").await,
        [person_dn("dave")]
    );
    assert_eq!(
        search_dns(&slapd, "ou=admins,dc=example,dc=org", "(uid=*)").await,
        ["uid=frank,ou=admins,dc=example,dc=org"]
    );

    // Nobody but the admin reads password attributes.
    let entry = client("ldapsearch")
        .unwrap()
        .args(["-x", "-LLL", "-H", &slapd.plain_url(), "-D", SERVICE_DN])
        .args([
            "-w",
            SERVICE_PASSWORD,
            "-b",
            &person_dn("alice"),
            "-s",
            "base",
        ])
        .output()
        .await
        .unwrap();
    assert!(entry.status.success(), "{entry:?}");
    assert!(stdout(&entry).contains("mail: alice@example.org"));
    assert!(!stdout(&entry).contains("userPassword"));
}

#[tokio::test]
async fn members_can_be_added_and_removed() {
    let slapd = Slapd::start(&Seed::default_directory()).await.unwrap();
    let dave = person_dn("dave");
    let of_dave = format!("(|(member={dave})(uniqueMember={dave}))");
    assert!(search_dns(&slapd, GROUPS_BASE, &of_dave).await.is_empty());

    slapd.add_member("developers", &dave).await.unwrap();
    slapd.add_member("qa", &dave).await.unwrap();
    assert_eq!(
        search_dns(&slapd, GROUPS_BASE, &of_dave).await,
        [
            "cn=developers,ou=groups,dc=example,dc=org",
            "cn=qa,ou=groups,dc=example,dc=org"
        ]
    );

    slapd.remove_member("developers", &dave).await.unwrap();
    assert_eq!(
        search_dns(&slapd, GROUPS_BASE, &of_dave).await,
        ["cn=qa,ou=groups,dc=example,dc=org"]
    );
    let members = slapd
        .search(
            "cn=developers,ou=groups,dc=example,dc=org",
            "(objectClass=*)",
            &["member"],
        )
        .await
        .unwrap();
    assert!(members.contains(&person_dn("alice")), "{members}");
    assert!(!members.contains(&dave), "{members}");
}

#[tokio::test]
async fn stop_and_restart_keep_data_and_ports() {
    let mut slapd = Slapd::start(&Seed::default()).await.unwrap();
    let (plain, ldaps) = (slapd.plain_port(), slapd.ldaps_port());
    let zoe = User::person("zoe", "first").with_mail("zoe@example.org");
    slapd.add_user(&zoe).await.unwrap();
    slapd.set_password(&zoe.dn, "second").await.unwrap();
    let old = whoami(&slapd.plain_url(), &zoe.dn, "first", &[], &[]).await;
    assert_eq!(old.status.code(), Some(49), "{old:?}");

    slapd.stop().await;
    assert_eq!(slapd.pid(), None);
    let down = whoami(&slapd.plain_url(), &zoe.dn, "second", &[], &[]).await;
    assert_eq!(
        down.status.code(),
        Some(255),
        "can't contact LDAP server: {down:?}"
    );

    let started = Instant::now();
    slapd.restart().await.unwrap();
    eprintln!("slapd restarted in {:?}", started.elapsed());
    assert_eq!((slapd.plain_port(), slapd.ldaps_port()), (plain, ldaps));
    let back = whoami(&slapd.plain_url(), &zoe.dn, "second", &[], &[]).await;
    assert!(back.status.success(), "{back:?}");
    // An empty seed has no default users.
    let dave = whoami(
        &slapd.plain_url(),
        &person_dn("dave"),
        DAVE_PASSWORD,
        &[],
        &[],
    )
    .await;
    assert_eq!(dave.status.code(), Some(49), "{dave:?}");
}
