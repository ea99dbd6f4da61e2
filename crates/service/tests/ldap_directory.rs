//! `portcullis_service::ldap::Directory` against a real OpenLDAP slapd
//! (`portcullis_testkit::ldap`): Portus's bind flow over plain LDAP, StartTLS and
//! LDAPS, the service bind, `admin_base`, `filter`, an Active Directory `uid`,
//! `guess_email`, and an outage told apart from a wrong password.

#![allow(clippy::unwrap_used)]

use portcullis_config::{Config, Ldap, LdapEncryptionMethod};
use portcullis_service::ldap::{Directory, DirectoryError, DirectoryUser, Verdict};
use portcullis_testkit::ldap::{
    self as dir, ALICE_PASSWORD, ERIN_PASSWORD, FRANK_PASSWORD, Seed, Slapd,
};

async fn slapd() -> Slapd {
    Slapd::start(&Seed::default_directory())
        .await
        .unwrap_or_else(|e| panic!("start slapd: {e:#} (see scripts/test.sh)"))
}

/// Portus's defaults pointed at `server`: plain LDAP, anonymous searches in
/// `ou=people`.
fn settings(server: &Slapd) -> Ldap {
    let mut l = Config::default().ldap;
    l.enabled = true;
    l.hostname = server.host().to_owned();
    l.port = i64::from(server.plain_port());
    l.base = dir::PEOPLE_BASE.to_owned();
    l
}

fn directory(l: &Ldap) -> Directory {
    Directory::new(l).unwrap_or_else(|e| panic!("directory: {e}"))
}

fn verified(dn: &str, admin: bool, email: Option<&str>) -> Verdict {
    Verdict::Verified(DirectoryUser {
        dn: dn.to_owned(),
        admin,
        email: email.map(str::to_owned),
    })
}

#[tokio::test]
async fn portus_bind_flow_over_plain_ldap() {
    let server = slapd().await;
    let d = directory(&settings(&server));
    let alice = dir::person_dn("alice");
    let cases = [
        ("alice", ALICE_PASSWORD, verified(&alice, false, None)),
        ("ALICE", ALICE_PASSWORD, verified(&alice, false, None)),
        ("alice", "wrong", Verdict::Refused),
        // An empty password would be an anonymous bind, which the server accepts.
        ("alice", "", Verdict::Refused),
        ("nobody", ALICE_PASSWORD, Verdict::Refused),
        // Filter metacharacters are escaped, not interpreted.
        ("*", ALICE_PASSWORD, Verdict::Refused),
        ("al*", ALICE_PASSWORD, Verdict::Refused),
        // Outside ldap.base.
        ("frank", FRANK_PASSWORD, Verdict::Refused),
    ];
    for (user, password, want) in cases {
        assert_eq!(
            d.verify(user, password).await.unwrap(),
            want,
            "{user}/{password}"
        );
    }
    assert!(d.has_user("bob").await.unwrap());
    assert!(!d.has_user("nobody").await.unwrap());
    d.check().await.unwrap();
}

#[tokio::test]
async fn service_bind_admin_base_filter_and_guessed_emails() {
    let server = slapd().await;
    let mut l = settings(&server);
    l.authentication.enabled = true;
    l.authentication.bind_dn = dir::SERVICE_DN.to_owned();
    l.authentication.password = dir::SERVICE_PASSWORD.to_owned();
    l.base = dir::BASE_DN.to_owned();
    l.admin_base = dir::ADMINS_BASE.to_owned();
    l.guess_email.enabled = true;
    let d = directory(&l);
    // No attribute: <username>@<the dc= parts of the base>.
    assert_eq!(
        d.verify("frank", FRANK_PASSWORD).await.unwrap(),
        verified(
            &dir::admin_user_dn("frank"),
            true,
            Some("frank@example.org")
        )
    );
    assert_eq!(
        d.verify("alice", ALICE_PASSWORD).await.unwrap(),
        verified(&dir::person_dn("alice"), false, Some("alice@example.org"))
    );
    // The attribute, when named: dave has none.
    l.guess_email.attr = "mail".into();
    let d = directory(&l);
    assert_eq!(
        d.verify("carol", dir::CAROL_PASSWORD).await.unwrap(),
        verified(&dir::person_dn("carol"), false, Some("carol@example.org"))
    );
    assert_eq!(
        d.verify("dave", dir::DAVE_PASSWORD).await.unwrap(),
        verified(&dir::person_dn("dave"), false, None)
    );
    // ldap.filter: only users with a mail attribute.
    l.filter = "(mail=*)".into();
    let d = directory(&l);
    assert_eq!(
        d.verify("dave", dir::DAVE_PASSWORD).await.unwrap(),
        Verdict::Refused
    );
    assert!(matches!(
        d.verify("carol", dir::CAROL_PASSWORD).await.unwrap(),
        Verdict::Verified(_)
    ));
    // A wrong service password is the directory failing, not the user.
    l.authentication.password = "wrong".into();
    let err = directory(&l)
        .verify("alice", ALICE_PASSWORD)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DirectoryError::ServiceBind { rc: 49, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn active_directory_style_sam_account_name() {
    let server = slapd().await;
    let mut l = settings(&server);
    l.uid = "sAMAccountName".into();
    l.base = dir::AD_BASE.to_owned();
    let d = directory(&l);
    assert_eq!(
        d.verify("erin", ERIN_PASSWORD).await.unwrap(),
        verified(dir::ERIN_DN, false, None)
    );
    assert_eq!(d.verify("erin", "wrong").await.unwrap(), Verdict::Refused);
}

#[tokio::test]
async fn start_tls_and_ldaps_trust_the_configured_ca_only() {
    let server = slapd().await;
    let ca = server.ca_cert_path().display().to_string();
    for (method, port) in [
        (LdapEncryptionMethod::StartTls, server.plain_port()),
        (LdapEncryptionMethod::SimpleTls, server.ldaps_port()),
    ] {
        let mut l = settings(&server);
        l.port = i64::from(port);
        l.encryption.method = method;
        l.encryption.options.ca_file = ca.clone();
        let d = directory(&l);
        assert!(
            matches!(
                d.verify("alice", ALICE_PASSWORD).await.unwrap(),
                Verdict::Verified(_)
            ),
            "{method:?}"
        );
        // Without the test CA the server's certificate is not trusted: no answer.
        l.encryption.options.ca_file.clear();
        let err = directory(&l)
            .verify("alice", ALICE_PASSWORD)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DirectoryError::Unreachable { .. }),
            "{method:?}: {err}"
        );
    }
    let mut l = settings(&server);
    l.encryption.method = LdapEncryptionMethod::StartTls;
    l.encryption.options.ca_file = "/nonexistent/ca.pem".into();
    let err = Directory::new(&l).err().unwrap();
    assert!(
        err.starts_with("ldap.encryption.options.ca_file /nonexistent/ca.pem: "),
        "{err}"
    );
}

#[tokio::test]
async fn an_outage_is_an_error_not_a_refusal_and_the_pool_recovers() {
    let mut server = slapd().await;
    let d = directory(&settings(&server));
    assert!(matches!(
        d.verify("alice", ALICE_PASSWORD).await.unwrap(),
        Verdict::Verified(_)
    ));
    server.stop().await;
    let err = d.verify("alice", ALICE_PASSWORD).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(d.server()), "{err}");
    server.restart().await.unwrap();
    // The pooled connection died with the server; a new one is opened.
    assert!(matches!(
        d.verify("alice", ALICE_PASSWORD).await.unwrap(),
        Verdict::Verified(_)
    ));
}

#[test]
fn a_filter_that_does_not_parse_is_refused_at_start() {
    let mut l = Config::default().ldap;
    l.enabled = true;
    l.base = dir::BASE_DN.to_owned();
    l.filter = "(objectClass=person".into();
    let err = Directory::new(&l).err().unwrap();
    assert_eq!(
        err,
        "ldap.filter \"(objectClass=person\": not an LDAP filter"
    );
}
