use super::*;
use portcullis_domain::policy::PushPolicy;
use portcullis_domain::signing::{Algorithm, KidFormat};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_yaml(yaml: &str, e: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_from_str(yaml, "test.yml", &env(e))
}

#[test]
fn defaults_are_portus_defaults() {
    let l = load_yaml("", &[]).unwrap();
    let c = l.config;
    assert_eq!(c.registry.jwt_expiration_time.value, 15);
    assert!(c.delete.enabled);
    assert!(!c.delete.contributors);
    assert_eq!(c.user_permission.push_images.policy, PushPolicy::AllowTeams);
    assert!(c.first_user_admin.enabled);
    assert_eq!(c.token.algorithm, None, "follow the key");
    assert_eq!(c.token.kid, KidFormat::Libtrust);
    assert!(c.server.trusted_proxies.is_empty());
    assert_eq!(c.security_policy.refresh_token_lifetime_days, 30);
    assert_eq!(c.security_policy.refresh_token_idle_days, 7);
    assert_eq!(
        c.notification_secret_path(),
        std::path::PathBuf::from("data/notifications.secret")
    );
    assert_eq!(c.database_url(), "sqlite:data/portcullis.db");
    assert_eq!(c.key_path(), std::path::PathBuf::from("data/token.key"));
    assert!(l.warnings.is_empty());
}

#[test]
fn file_values_and_contract_keys() {
    let yaml = r#"
server: { listen: "0.0.0.0:8080", external_url: "https://portcullis.example.com/" }
database: { url: "postgres://u:p@db/portcullis" }
machine_fqdn: { value: portcullis.example.com }
token: { key_path: /k.pem, cert_path: /c.pem, algorithm: rs256, kid: rfc7638 }
registry: { jwt_expiration_time: { value: 30 } }
notifications: { secret: 12345 }
delete: { enabled: false, contributors: true }
user_permission: { push_images: { policy: admin-only }, create_team: { enabled: false } }
first_user_admin: { enabled: false }
signup: { enabled: false }
anonymous_browsing: { enabled: false }
data_dir: /var/lib/portcullis
"#;
    let c = load_yaml(yaml, &[]).unwrap().config;
    assert_eq!(c.server.listen, "0.0.0.0:8080");
    assert_eq!(c.external_url(), "https://portcullis.example.com");
    assert_eq!(c.database_url(), "postgres://u:p@db/portcullis");
    assert_eq!(c.machine_fqdn.value, "portcullis.example.com");
    assert_eq!(c.key_path(), std::path::PathBuf::from("/k.pem"));
    assert_eq!(c.token.algorithm, Some(Algorithm::Rs256));
    assert_eq!(c.token.kid, KidFormat::Rfc7638);
    assert_eq!(c.registry.jwt_expiration_time.value, 30);
    // A number given for a string key is taken as text: secrets may be all digits.
    assert_eq!(c.notifications.secret, "12345");
    assert!(!c.delete.enabled && c.delete.contributors);
    assert!(!c.user_permission.create_team.enabled);
    assert!(!c.first_user_admin.enabled && !c.signup.enabled && !c.anonymous_browsing.enabled);
    assert_eq!(c.data_dir, std::path::PathBuf::from("/var/lib/portcullis"));
    let p = c.policy_options();
    assert_eq!(p.push_policy, PushPolicy::AdminOnly);
    assert!(!p.create_team);
}

#[test]
fn environment_overrides_with_portus_aliases_and_files() {
    let dir = std::env::temp_dir().join(format!("pcl-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "s3cr3t\n").unwrap();
    let l = load_yaml(
        "delete: { contributors: false }",
        &[
            ("PORTCULLIS_DELETE_CONTRIBUTORS", "true"),
            ("PORTUS_MACHINE_FQDN_VALUE", "portus.example.com"),
            ("PORTUS_REGISTRY_JWT_EXPIRATION_TIME_VALUE", "20"),
            ("PORTCULLIS_REGISTRY_JWT_EXPIRATION_TIME_VALUE", "25"),
            (
                "PORTCULLIS_NOTIFICATIONS_SECRET_FILE",
                secret.to_str().unwrap(),
            ),
            ("PORTUS_KEY_PATH", "/portus/key.pem"),
            ("PORTUS_NO_SUCH_SETTING", "x"),
            ("PORTCULLIS_CONFIG", "ignored.yml"),
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    let c = &l.config;
    assert!(c.delete.contributors);
    assert_eq!(c.machine_fqdn.value, "portus.example.com");
    assert_eq!(
        c.registry.jwt_expiration_time.value, 25,
        "PORTCULLIS_ wins over PORTUS_"
    );
    assert_eq!(c.notifications.secret, "s3cr3t");
    assert_eq!(c.token.key_path, "/portus/key.pem");
    assert_eq!(
        l.sources["delete.contributors"],
        "environment PORTCULLIS_DELETE_CONTRIBUTORS"
    );
    assert_eq!(l.sources["delete.enabled"], "default");
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("PORTUS_NO_SUCH_SETTING"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_keys_warn_and_portus_keys_are_recognised() {
    let l = load_yaml(
        "gravatar: { enabled: true }\nfrobnicate: 3\ndelete: { garbage_collector: { enabled: true }, nonsense: 1 }",
        &[],
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.starts_with("config key gravatar (") && w.contains("Portus setting"))
    );
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("unknown config key frobnicate"))
    );
    assert!(
        l.warnings
            .iter()
            .any(|w| w.contains("unknown config key delete.nonsense"))
    );
}

/// A Portus `ldap:` block, as Portus's own config.yml documents it, loads unchanged.
#[test]
fn a_portus_ldap_block_loads_unchanged() {
    let l = load_yaml(
        "ldap:\n  enabled: true\n  hostname: ldap.example.org\n  port: 636\n  timeout: 10\n  \
         encryption:\n    method: starttls\n    options:\n      ca_file: /etc/ssl/ldap-ca.pem\n      \
         ssl_version: TLSv1_2\n  base: ou=users,dc=example,dc=org\n  admin_base: ''\n  group_base: ''\n  \
         filter: '(objectClass=person)'\n  uid: sAMAccountName\n  authentication:\n    enabled: true\n    \
         bind_dn: cn=portus,dc=example,dc=org\n    password: s3cret\n  group_sync:\n    enabled: true\n    \
         default_role: contributor\n  guess_email:\n    enabled: true\n    attr: mail\n",
        &[],
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let ldap = &l.config.ldap;
    assert!(ldap.enabled);
    assert_eq!(
        ldap.encryption.method,
        crate::LdapEncryptionMethod::StartTls
    );
    assert_eq!(ldap.uid, "sAMAccountName");
    assert_eq!(
        ldap.group_sync.default_role,
        portcullis_domain::model::Role::Contributor
    );
    assert!(
        !l.config.to_masked_yaml().contains("s3cret"),
        "the bind password is masked"
    );
}

#[test]
fn bad_ldap_values_are_one_line_naming_the_key() {
    let on = "ldap: { enabled: true, base: 'dc=example,dc=org'";
    let table = [
        (
            format!("{on}, port: 70000 }}"),
            "config key ldap.port = \"70000\" (from file test.yml): expected a port, 1 to 65535",
        ),
        (
            format!("{on}, timeout: 0 }}"),
            "config key ldap.timeout = \"0\" (from file test.yml): expected a number of seconds greater than 0",
        ),
        (
            "ldap: { enabled: true }".to_owned(),
            "config key ldap.base = \"\" (from default): must be set when ldap.enabled is true (where users are searched)",
        ),
        (
            format!("{on}, uid: 'u id' }}"),
            "config key ldap.uid = \"u id\" (from file test.yml): expected an attribute name such as uid or sAMAccountName",
        ),
        (
            format!("{on}, filter: 'objectClass=person' }}"),
            "config key ldap.filter = \"objectClass=person\" (from file test.yml): expected an LDAP filter in parentheses, e.g. (objectClass=person)",
        ),
        (
            format!("{on}, authentication: {{ enabled: true }} }}"),
            "config key ldap.authentication.bind_dn = \"\" (from default): must be set when ldap.authentication.enabled is true",
        ),
        (
            format!("{on}, encryption: {{ options: {{ ssl_version: TLSv1 }} }} }}"),
            "config key ldap.encryption.options.ssl_version = \"TLSv1\" (from file test.yml): expected TLSv1_2 or TLSv1_3 (older versions are not offered)",
        ),
    ];
    for (yaml, want) in table {
        let err = load_yaml(&yaml, &[])
            .err()
            .unwrap_or_else(|| panic!("{yaml} loaded"));
        assert_eq!(err.to_string(), want, "{yaml}");
    }
    // Off, nothing is checked: Portus's placeholder hostname is the default.
    assert!(load_yaml("ldap: { enabled: false, port: 0 }", &[]).is_ok());
}

/// A Portus `email:` block, as Portus's own config.yml documents it, loads unchanged.
#[test]
fn a_portus_email_block_loads_unchanged() {
    let l = load_yaml(
        "email:\n  from: portus@example.com\n  name: Portus\n  reply_to: no-reply@example.com\n  \
         smtp:\n    enabled: true\n    address: smtp.example.com\n    port: 587\n    \
         user_name: portus@example.com\n    password: m41l-s3cret\n    domain: example.com\n    \
         ssl_tls: ''\n    enable_starttls_auto: true\n    openssl_verify_mode: none\n    \
         ca_path: ''\n    ca_file: ''\n    authentication: plain\n",
        &[("PORTUS_EMAIL_SMTP_PORT", "2525")],
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let e = &l.config.email;
    assert_eq!(e.reply_to, "no-reply@example.com");
    assert!(e.smtp.enabled && e.smtp.enable_starttls_auto);
    assert_eq!(e.smtp.port, 2525, "Portus's variable overrides the file");
    assert_eq!(e.smtp.openssl_verify_mode, crate::SmtpVerifyMode::None);
    assert_eq!(e.smtp.authentication, crate::SmtpAuthentication::Plain);
    assert!(
        !l.config.to_masked_yaml().contains("m41l-s3cret"),
        "the SMTP password is masked"
    );
    // Our default checks the server's certificate (Portus's did not).
    let d = load_yaml("", &[]).unwrap().config.email;
    assert_eq!(d.smtp.openssl_verify_mode, crate::SmtpVerifyMode::Peer);
    assert_eq!(d.sendmail.location, "/usr/sbin/sendmail");
}

#[test]
fn local_login_off_needs_another_way_in() {
    let err = load_yaml("oauth: { local_login: { enabled: false } }", &[])
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "config key oauth.local_login.enabled = \"false\" (from file test.yml): expected true unless an identity provider (oauth.<provider>.enabled) or LDAP is on: nobody could sign in to the web UI"
    );
    let with_provider = "oauth: { local_login: { enabled: false }, openid_connect: { enabled: true, issuer: 'https://sso.example.com', identifier: portcullis } }";
    assert!(load_yaml(with_provider, &[]).is_ok());
}

#[test]
fn bad_email_values_are_one_line_naming_the_key() {
    let on = "email: { smtp: { enabled: true, address: smtp.example.com";
    let table = [
        (
            "email: { from: nobody }".to_owned(),
            "config key email.from = \"nobody\" (from file test.yml): expected an email address",
        ),
        (
            "email: { reply_to: 'a b@example.com' }".to_owned(),
            "config key email.reply_to = \"a b@example.com\" (from file test.yml): expected an email address, or empty",
        ),
        (
            "email: { name: 'Evil <x@y.z>' }".to_owned(),
            "config key email.name = \"Evil <x@y.z>\" (from file test.yml): expected a display name without quotes, angle brackets or control characters",
        ),
        (
            "email: { sendmail: { location: '' } }".to_owned(),
            "config key email.sendmail.location = \"\" (from file test.yml): must name the sendmail program when email.smtp.enabled is false",
        ),
        (
            format!("{on}, port: 0 }} }}"),
            "config key email.smtp.port = \"0\" (from file test.yml): expected a port, 1 to 65535",
        ),
        (
            "email: { smtp: { enabled: true, address: '' } }".to_owned(),
            "config key email.smtp.address = \"\" (from file test.yml): must be set when email.smtp.enabled is true",
        ),
        (
            format!(
                "{on}, user_name: u, enable_starttls_auto: true, authentication: cram_md5 }} }}"
            ),
            "config key email.smtp.authentication = \"cram_md5\" (from file test.yml): cram_md5 is not offered: use plain or login (sent over TLS only)",
        ),
        (
            format!("{on}, user_name: u }} }}"),
            "config key email.smtp.enable_starttls_auto = \"false\" (from default): expected true (or email.smtp.ssl_tls: tls) when email.smtp.user_name is set: the password would cross the network in clear",
        ),
        (
            "email: { smtp: { authentication: scram } }".to_owned(),
            "config key email.smtp.authentication = \"scram\" (from file test.yml): expected one of login, plain, cram_md5",
        ),
    ];
    for (yaml, want) in table {
        let err = load_yaml(&yaml, &[])
            .err()
            .unwrap_or_else(|| panic!("{yaml} loaded"));
        assert_eq!(err.to_string(), want, "{yaml}");
    }
    // Credentials to a loopback relay may go in clear; with TLS anywhere.
    for ok in [
        "email: { smtp: { enabled: true, address: 127.0.0.1, user_name: u } }",
        "email: { smtp: { enabled: true, address: smtp.example.com, user_name: u, ssl_tls: ssl } }",
    ] {
        assert!(load_yaml(ok, &[]).is_ok(), "{ok}");
    }
}

#[test]
fn bad_values_name_key_value_and_source() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let table: &[Case] = &[
        (
            "delete: { enabled: maybe }",
            &[],
            "config key delete.enabled = \"maybe\" (from file test.yml): expected true or false",
        ),
        (
            "",
            &[("PORTCULLIS_DELETE_ENABLED", "yes please")],
            "config key delete.enabled = \"yes please\" (from environment PORTCULLIS_DELETE_ENABLED): expected true or false",
        ),
        (
            "registry: { jwt_expiration_time: { value: soon } }",
            &[],
            "config key registry.jwt_expiration_time.value = \"soon\" (from file test.yml): expected a whole number",
        ),
        (
            "registry: { jwt_expiration_time: { value: 0 } }",
            &[],
            "config key registry.jwt_expiration_time.value = \"0\" (from file test.yml): expected a number greater than 0",
        ),
        (
            "user_permission: { push_images: { policy: allow-everyone } }",
            &[],
            "config key user_permission.push_images.policy = \"allow-everyone\" (from file test.yml): expected one of allow-teams, allow-personal, admin-only",
        ),
        (
            "token: { algorithm: HS256 }",
            &[],
            "config key token.algorithm = \"HS256\" (from file test.yml): expected ES256 or RS256",
        ),
        (
            "token: { kid: random }",
            &[],
            "config key token.kid = \"random\" (from file test.yml): expected libtrust or rfc7638",
        ),
        (
            "",
            &[("PORTUS_TOKEN_ALGORITHM", "PS256")],
            "config key token.algorithm = \"PS256\" (from environment PORTUS_TOKEN_ALGORITHM): expected ES256 or RS256",
        ),
        (
            "",
            &[("PORTCULLIS_TOKEN_KID", "jwk")],
            "config key token.kid = \"jwk\" (from environment PORTCULLIS_TOKEN_KID): expected libtrust or rfc7638",
        ),
        (
            "token: { kid: \"\" }",
            &[],
            "config key token.kid = \"\" (from file test.yml): expected libtrust or rfc7638",
        ),
        (
            "",
            &[(
                "PORTCULLIS_USER_PERMISSION_PUSH_IMAGES_POLICY",
                "allow-everyone",
            )],
            "config key user_permission.push_images.policy = \"allow-everyone\" (from environment PORTCULLIS_USER_PERMISSION_PUSH_IMAGES_POLICY): expected one of allow-teams, allow-personal, admin-only",
        ),
        (
            "server: { trusted_proxies: [\"10.0.0.0/8\", \"10.0.0.300\"] }",
            &[],
            "config key server.trusted_proxies = \"10.0.0.300\" (from file test.yml): expected an IP address or CIDR network (e.g. 10.0.0.0/8, ::1)",
        ),
        (
            "",
            &[("PORTCULLIS_SERVER_TRUSTED_PROXIES", "::1, fd00::/129")],
            "config key server.trusted_proxies = \"fd00::/129\" (from environment PORTCULLIS_SERVER_TRUSTED_PROXIES): expected an IP address or CIDR network (e.g. 10.0.0.0/8, ::1)",
        ),
        (
            "server: { trusted_proxies: [ { ip: 10.0.0.1 } ] }",
            &[],
            "config key server.trusted_proxies = \"- ip: 10.0.0.1\" (from file test.yml): expected a list of single values",
        ),
        (
            "security_policy: { refresh_token_lifetime_days: 0 }",
            &[],
            "config key security_policy.refresh_token_lifetime_days = \"0\" (from file test.yml): expected a number greater than 0",
        ),
        (
            "",
            &[("PORTCULLIS_SECURITY_POLICY_REFRESH_TOKEN_IDLE_DAYS", "-1")],
            "config key security_policy.refresh_token_idle_days = \"-1\" (from environment PORTCULLIS_SECURITY_POLICY_REFRESH_TOKEN_IDLE_DAYS): expected a number greater than 0",
        ),
        (
            "security_policy: { refresh_token_idle_days: 31 }",
            &[],
            "config key security_policy.refresh_token_idle_days = \"31\" (from file test.yml): expected at most security_policy.refresh_token_lifetime_days (30)",
        ),
        (
            "server: { listen: nowhere }",
            &[],
            "config key server.listen = \"nowhere\" (from file test.yml): expected host:port",
        ),
        (
            "database: { url: \"mysql://root:pw@db/x\" }",
            &[],
            "config key database.url = \"mysql:…\" (from file test.yml): expected sqlite:PATH or postgres://…",
        ),
        (
            "delete: true",
            &[],
            "config key delete = \"true\" (from file test.yml): expected a mapping of sub-keys",
        ),
    ];
    for (yaml, e, expected) in table {
        let err = load_yaml(yaml, e).unwrap_err();
        assert_eq!(err.to_string(), *expected);
        assert!(!err.to_string().contains('\n'));
    }
    assert!(matches!(
        load_yaml("- a list", &[]),
        Err(ConfigError::Parse { .. })
    ));
    assert!(matches!(
        load_yaml("a: [", &[]),
        Err(ConfigError::Parse { .. })
    ));
    let missing = load_yaml(
        "",
        &[("PORTCULLIS_NOTIFICATIONS_SECRET_FILE", "/nonexistent/x")],
    )
    .unwrap_err();
    assert!(missing.to_string().starts_with(
        "PORTCULLIS_NOTIFICATIONS_SECRET_FILE: cannot read secret file /nonexistent/x"
    ));
}

#[test]
fn show_masks_secrets() {
    let c = load_yaml(
        "notifications: { secret: hunter2 }\ndatabase: { url: \"postgres://app:pw@db:5432/x\" }",
        &[],
    )
    .unwrap()
    .config;
    let shown = c.to_masked_yaml();
    assert!(
        !shown.contains("hunter2") && !shown.contains(":pw@"),
        "{shown}"
    );
    assert!(shown.contains("postgres://app:********@db:5432/x"));
    assert_eq!(mask_url_password("sqlite:data/x.db"), "sqlite:data/x.db");
}

#[test]
fn typed_values_parse_once_from_file_and_environment() {
    let c = load_yaml(
        "token: { algorithm: Es256, kid: RFC7638 }\nuser_permission: { push_images: { policy: allow-personal } }",
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(c.token.algorithm, Some(Algorithm::Es256));
    assert_eq!(c.token.kid, KidFormat::Rfc7638);
    assert_eq!(
        c.user_permission.push_images.policy,
        PushPolicy::AllowPersonal
    );
    let l = load_yaml(
        "token: { algorithm: ES256 }",
        &[
            ("PORTCULLIS_TOKEN_ALGORITHM", "rs256"),
            ("PORTUS_TOKEN_KID", "rfc7638"),
            ("PORTUS_USER_PERMISSION_PUSH_IMAGES_POLICY", "admin-only"),
        ],
    )
    .unwrap();
    let c = &l.config;
    assert_eq!(c.token.algorithm, Some(Algorithm::Rs256));
    assert_eq!(c.token.kid, KidFormat::Rfc7638);
    assert_eq!(c.user_permission.push_images.policy, PushPolicy::AdminOnly);
    assert_eq!(
        l.sources["token.algorithm"],
        "environment PORTCULLIS_TOKEN_ALGORITHM"
    );
    // An empty value means "follow the key", wherever it comes from.
    for (yaml, e) in [
        ("token: { algorithm: \"\" }", &[][..]),
        ("token: { algorithm: ~ }", &[][..]),
        (
            "token: { algorithm: RS256 }",
            &[("PORTCULLIS_TOKEN_ALGORITHM", "")][..],
        ),
    ] {
        assert_eq!(
            load_yaml(yaml, e).unwrap().config.token.algorithm,
            None,
            "{yaml}"
        );
    }
}

#[test]
fn trusted_proxies_are_networks() {
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    let c = load_yaml(
        "server: { trusted_proxies: [\"10.0.0.0/8\", \"192.168.1.7\", \"::1\", \"fd00::/8\"] }",
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(
        c.server.trusted_proxies,
        [
            net("10.0.0.0/8"),
            net("192.168.1.7/32"),
            net("::1/128"),
            net("fd00::/8")
        ]
    );
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert!(c.server.trusts_proxy(ip("10.200.3.4")));
    assert!(c.server.trusts_proxy(ip("192.168.1.7")));
    assert!(!c.server.trusts_proxy(ip("192.168.1.8")));
    assert!(c.server.trusts_proxy(ip("::1")));
    assert!(c.server.trusts_proxy(ip("fd12::5")));
    assert!(!c.server.trusts_proxy(ip("127.0.0.1")));
    assert!(
        c.server.trusts_proxy(ip("::ffff:10.1.2.3")),
        "IPv4-mapped IPv6 peers count as IPv4"
    );

    // The environment gives a comma-separated list; it replaces the file's.
    let l = load_yaml(
        "server: { trusted_proxies: [\"10.0.0.0/8\"] }",
        &[(
            "PORTCULLIS_SERVER_TRUSTED_PROXIES",
            " 127.0.0.1 ,::1,, 172.16.0.0/12 ",
        )],
    )
    .unwrap();
    assert_eq!(
        l.config.server.trusted_proxies,
        [net("127.0.0.1/32"), net("::1/128"), net("172.16.0.0/12")]
    );
    assert_eq!(
        l.sources["server.trusted_proxies"],
        "environment PORTCULLIS_SERVER_TRUSTED_PROXIES"
    );
    for (yaml, e) in [
        ("", &[("PORTCULLIS_SERVER_TRUSTED_PROXIES", "")][..]),
        ("server: { trusted_proxies: [] }", &[][..]),
        ("server: { trusted_proxies: ~ }", &[][..]),
    ] {
        let c = load_yaml(yaml, e).unwrap().config;
        assert!(c.server.trusted_proxies.is_empty(), "{yaml}");
    }
    let one = load_yaml("server: { trusted_proxies: 10.1.0.0/16 }", &[]).unwrap();
    assert_eq!(one.config.server.trusted_proxies, [net("10.1.0.0/16")]);
}

#[test]
fn refresh_token_days() {
    let c = load_yaml(
        "security_policy: { refresh_token_lifetime_days: 90, refresh_token_idle_days: 90 }",
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(c.security_policy.refresh_token_lifetime_days, 90);
    assert_eq!(c.security_policy.refresh_token_idle_days, 90);
    let err = load_yaml("security_policy: { refresh_token_lifetime_days: 5 }", &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config key security_policy.refresh_token_idle_days = \"7\" (from default): expected at most security_policy.refresh_token_lifetime_days (5)"
    );
}

#[test]
fn show_prints_values_as_written_and_loads_back() {
    let yaml = "token: { algorithm: rs256, kid: rfc7638 }\n\
                user_permission: { push_images: { policy: admin-only } }\n\
                server: { trusted_proxies: [\"10.0.0.0/8\", \"::1\"] }";
    let c = load_yaml(yaml, &[]).unwrap().config;
    let shown = c.to_masked_yaml();
    for line in [
        "algorithm: RS256",
        "kid: rfc7638",
        "policy: admin-only",
        "- 10.0.0.0/8",
        "- ::1/128",
        "refresh_token_lifetime_days: 30",
    ] {
        assert!(shown.contains(line), "{line:?} in {shown}");
    }
    let again = load_yaml(&shown, &[]).unwrap();
    assert_eq!(again.config, c);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    let default_shown = Config::default().to_masked_yaml();
    assert!(default_shown.contains("algorithm: ''"), "{default_shown}");
    assert_eq!(
        load_yaml(&default_shown, &[]).unwrap().config,
        Config::default()
    );
}

#[test]
fn background_lease_seconds() {
    assert_eq!(
        load_yaml("", &[]).unwrap().config.background.lease_seconds,
        30
    );
    let l = load_yaml(
        "background: { lease_seconds: 90 }",
        &[("PORTCULLIS_BACKGROUND_LEASE_SECONDS", "3")],
    )
    .unwrap();
    assert_eq!(l.config.background.lease_seconds, 3);
    assert_eq!(
        l.sources["background.lease_seconds"],
        "environment PORTCULLIS_BACKGROUND_LEASE_SECONDS"
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        load_yaml("background: { lease_seconds: 90 }", &[])
            .unwrap()
            .config
            .background
            .lease_seconds,
        90
    );
    for (yaml, e, expected) in [
        (
            "background: { lease_seconds: 0 }",
            &[][..],
            "config key background.lease_seconds = \"0\" (from file test.yml): expected a number greater than 0",
        ),
        (
            "",
            &[("PORTCULLIS_BACKGROUND_LEASE_SECONDS", "-5")][..],
            "config key background.lease_seconds = \"-5\" (from environment PORTCULLIS_BACKGROUND_LEASE_SECONDS): expected a number greater than 0",
        ),
        (
            "background: { lease_seconds: soon }",
            &[][..],
            "config key background.lease_seconds = \"soon\" (from file test.yml): expected a whole number",
        ),
    ] {
        assert_eq!(load_yaml(yaml, e).unwrap_err().to_string(), expected);
    }
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pcl-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn portus_database_variables_compose_a_postgres_url() {
    let dir = scratch_dir("portus-db");
    let password = dir.join("db-password");
    std::fs::write(&password, "p@ss word\n").unwrap();
    let l = load_yaml(
        "",
        &[
            ("PORTUS_DB_ADAPTER", "postgresql"),
            ("PORTUS_DB_HOST", "db"),
            ("PORTUS_DB_DATABASE", "portus"),
            ("PORTUS_DB_USERNAME", "portus"),
            ("PORTUS_DB_PASSWORD_FILE", password.to_str().unwrap()),
            ("PORTUS_DB_POOL", "8"),
            ("PORTUS_DB_TIMEOUT", "5000"),
        ],
    )
    .unwrap();
    assert_eq!(
        l.config.database.url,
        "postgres://portus:p%40ss%20word@db:5432/portus"
    );
    assert_eq!(l.config.database.pool, 8);
    assert_eq!(
        l.sources["database.url"],
        "environment PORTUS_DB_ADAPTER, PORTUS_DB_DATABASE, PORTUS_DB_HOST, PORTUS_DB_PASSWORD, PORTUS_DB_USERNAME"
    );
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("PORTUS_DB_TIMEOUT is not needed"));
    // The password never shows in `config show`.
    assert!(!l.config.to_masked_yaml().contains("p%40ss"));

    // Portus's defaults for what is not given; a Portcullis URL wins over the parts.
    let l = load_yaml("", &[("PORTUS_DB_ADAPTER", "postgresql")]).unwrap();
    assert_eq!(
        l.config.database.url,
        "postgres://root@localhost:5432/portus_production"
    );
    let l = load_yaml(
        "",
        &[
            ("PORTUS_DB_ADAPTER", "postgresql"),
            ("PORTCULLIS_DATABASE_URL", "postgres://x@y/z"),
        ],
    )
    .unwrap();
    assert_eq!(l.config.database.url, "postgres://x@y/z");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mariadb_and_bad_portus_database_values_are_refused_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        // Portus's default adapter is mysql2: a MariaDB compose file sets only the host.
        (
            &[("PORTUS_DB_HOST", "mariadb")],
            "PORTUS_DB_ADAPTER=mysql2: Portcullis runs on PostgreSQL or SQLite, not MariaDB/MySQL",
        ),
        (
            &[("PORTUS_DB_ADAPTER", "sqlserver")],
            "PORTUS_DB_ADAPTER=sqlserver: expected postgresql",
        ),
        (
            &[("PORTUS_DB_ADAPTER", "postgresql"), ("PORTUS_DB_PORT", "x")],
            "PORTUS_DB_PORT=x: expected a port number",
        ),
        (
            &[("PORTUS_DB_POOL", "many")],
            "PORTUS_DB_POOL=many: expected a whole number",
        ),
    ];
    for (env, expected) in cases {
        let err = load_yaml("", env).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{env:?}: {err}");
    }
}

#[test]
fn portus_image_variables_map_or_are_reported_as_not_needed() {
    let l = load_yaml(
        "",
        &[
            ("PORTUS_PUMA_TLS_CERT", "/certs/portus.crt"),
            ("PORTUS_PUMA_TLS_KEY", "/certs/portus.key"),
            ("PORTUS_PUMA_HOST", "0.0.0.0:3000"),
            ("PORTUS_SECRET_KEY_BASE", "x"),
            ("PORTUS_PASSWORD_FILE", "/nonexistent"),
            ("RAILS_SERVE_STATIC_FILES", "true"),
            ("PORTUS_BACKGROUND", "true"),
        ],
    )
    .unwrap();
    let c = &l.config;
    assert_eq!(c.server.tls.cert_path, "/certs/portus.crt");
    assert_eq!(c.server.tls.key_path, "/certs/portus.key");
    assert_eq!(c.server.listen, "0.0.0.0:3000");
    assert_eq!(c.external_url(), "https://0.0.0.0:3000");
    let mut named: Vec<_> = l
        .warnings
        .iter()
        .map(|w| w.split_whitespace().nth(2).unwrap())
        .collect();
    named.sort_unstable();
    assert_eq!(
        named,
        [
            "PORTUS_PASSWORD",
            "PORTUS_SECRET_KEY_BASE",
            "RAILS_SERVE_STATIC_FILES"
        ],
        "each reported once, _FILE or not; {:?}",
        l.warnings
    );
}

#[test]
fn the_secrets_folder_supplies_variables_and_the_signing_key() {
    let dir = scratch_dir("secrets");
    std::fs::write(
        dir.join("PORTCULLIS_DATABASE_URL"),
        "postgres://u:p@db/pc\n",
    )
    .unwrap();
    std::fs::write(dir.join("PORTCULLIS_NOTIFICATIONS_SECRET"), "from-folder\n").unwrap();
    std::fs::write(dir.join("token.key"), "key").unwrap();
    std::fs::write(dir.join("README"), "not a variable").unwrap();
    let dir_text = dir.to_str().unwrap();
    let l = load_yaml("", &[("PORTCULLIS_SECRETS_DIR", dir_text)]).unwrap();
    assert_eq!(l.config.database.url, "postgres://u:p@db/pc");
    assert_eq!(l.config.notifications.secret, "from-folder");
    assert_eq!(
        l.config.key_path(),
        dir.join("token.key"),
        "token.key from the folder"
    );
    assert_eq!(
        l.config.cert_path(),
        std::path::PathBuf::from("data/token.crt"),
        "no token.crt there: the default"
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    // A variable set directly, or a configured key path, wins over the folder.
    let l = load_yaml(
        "token: { key_path: /etc/portcullis/key.pem }",
        &[
            ("PORTCULLIS_SECRETS_DIR", dir_text),
            ("PORTCULLIS_DATABASE_URL", "sqlite:other.db"),
        ],
    )
    .unwrap();
    assert_eq!(l.config.database.url, "sqlite:other.db");
    assert_eq!(l.config.token.key_path, "/etc/portcullis/key.pem");

    // The image sets the variable; no folder mounted is not an error.
    let l = load_yaml("", &[("PORTCULLIS_SECRETS_DIR", "/nonexistent/secrets")]).unwrap();
    assert!(l.config.database.url.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tls_settings_are_checked_together() {
    let cases: &[(&str, &str)] = &[
        (
            "server: { tls: { cert_path: /c.pem } }",
            "config key server.tls.key_path = \"\" (from default): must be set too when server.tls.cert_path is",
        ),
        (
            "server: { http_redirect_listen: \"0.0.0.0:80\" }",
            "config key server.http_redirect_listen = \"0.0.0.0:80\" (from file test.yml): needs server.tls.cert_path",
        ),
        (
            "server: { tls: { cert_path: /c, key_path: /k }, http_redirect_listen: \"80\" }",
            "config key server.http_redirect_listen = \"80\" (from file test.yml): expected host:port",
        ),
        (
            "log: { format: xml }",
            "config key log.format = \"xml\" (from file test.yml): expected text or json",
        ),
    ];
    for (yaml, expected) in cases {
        let err = load_yaml(yaml, &[]).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{yaml}: {err}");
    }
    let c = load_yaml(
        "server: { tls: { cert_path: /c, key_path: /k }, http_redirect_listen: \"0.0.0.0:80\" }\nlog: { format: json }",
        &[],
    )
    .unwrap()
    .config;
    assert!(c.server.tls.enabled());
    assert_eq!(c.log.format, crate::model::LogFormat::Json);
}

#[test]
fn metrics_are_readable_from_loopback_and_private_networks_only() {
    let c = load_yaml("", &[]).unwrap().config;
    let cases = [
        ("127.0.0.1", true),
        ("::1", true),
        ("::ffff:10.1.2.3", true),
        ("192.168.1.9", true),
        ("172.20.0.5", true),
        ("fd00::1", true),
        ("8.8.8.8", false),
        ("2001:db8::1", false),
    ];
    for (peer, allowed) in cases {
        assert_eq!(c.metrics.allows(peer.parse().unwrap()), allowed, "{peer}");
    }
    let c = load_yaml("metrics: { enabled: false }", &[])
        .unwrap()
        .config;
    assert!(!c.metrics.allows("127.0.0.1".parse().unwrap()));
}

#[test]
fn log_variables_are_a_key_and_the_log_filter() {
    let l = load_yaml(
        "",
        &[
            ("PORTCULLIS_LOG_FORMAT", "json"),
            ("PORTCULLIS_LOG", "debug"),
            ("PORTCULLIS_LOG_COLOUR", "never"),
        ],
    )
    .unwrap();
    assert_eq!(l.config.log.format, crate::model::LogFormat::Json);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(l.warnings[0].contains("PORTCULLIS_LOG_COLOUR is not a Portcullis setting"));
}

// --- token exchange (RFC 8693) ---

const EXCHANGE_RULE: &str = "{ name: ci, issuer: 'https://gitlab.example.com', audience: 'https://registry.example.com', claims: { project_path: 'group/*', protected: true, id: 7 }, bot: ci-bot }";

#[test]
fn token_exchange_rules_load_from_the_file_and_show_loads_back() {
    let yaml = format!("token_exchange: {{ enabled: true, rules: [ {EXCHANGE_RULE} ] }}");
    let c = load_yaml(&yaml, &[]).unwrap().config;
    let t = &c.token_exchange;
    assert!(t.enabled);
    assert_eq!(t.rules.len(), 1);
    let rule = &t.rules[0];
    assert_eq!(rule.name, "ci");
    assert_eq!(rule.bot, "ci-bot");
    assert!(!rule.pull_only, "pushes allowed unless asked");
    assert_eq!(rule.lifetime_seconds, 300);
    // Booleans and numbers are kept as their JSON text.
    assert_eq!(rule.claims["protected"], "true");
    assert_eq!(rule.claims["id"], "7");
    assert_eq!(rule.claims["project_path"], "group/*");
    let again = load_yaml(&c.to_masked_yaml(), &[]).unwrap();
    assert_eq!(again.config, c);
    // The switch alone from the environment.
    let off = load_yaml(&yaml, &[("PORTCULLIS_TOKEN_EXCHANGE_ENABLED", "false")]).unwrap();
    assert!(!off.config.token_exchange.enabled);
    assert_eq!(off.config.token_exchange.rules.len(), 1);
    assert!(!Config::default().token_exchange.enabled, "off by default");
}

#[test]
fn bad_token_exchange_rules_are_one_line_naming_the_key() {
    // A good rule with `fields` written over its own (`key: value`, comma-separated).
    let rule = |fields: &str| {
        let mut parts: Vec<(String, String)> = [
            ("name", "ci"),
            ("issuer", "'https://ci.example.com'"),
            ("audience", "reg"),
            ("bot", "ci-bot"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let (k, v) = fields.split_once(": ").unwrap();
        match parts.iter_mut().find(|(name, _)| name == k) {
            Some(part) => part.1 = v.to_owned(),
            None => parts.push((k.to_owned(), v.to_owned())),
        }
        let body: Vec<String> = parts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("token_exchange: {{ rules: [ {{ {} }} ] }}", body.join(", "))
    };
    let table = [
        (
            rule("issuer: 'http://ci.example.com'"),
            "token_exchange.rules[0].issuer",
        ),
        (
            rule("issuer: 'gitlab.com'"),
            "token_exchange.rules[0].issuer",
        ),
        (
            rule("issuer: 'https://ci.example.com/?x=1'"),
            "token_exchange.rules[0].issuer",
        ),
        (rule("audience: ' '"), "token_exchange.rules[0].audience"),
        (rule("bot: ''"), "token_exchange.rules[0].bot"),
        (rule("name: 'a b'"), "token_exchange.rules[0].name"),
        (
            rule("lifetime_seconds: 0"),
            "token_exchange.rules[0].lifetime_seconds",
        ),
        (rule("team: qa"), "token_exchange.rules[0].team"),
        (rule("role: owner"), "token_exchange.rules[0].role"),
        // A misspelt key must not leave a rule without its claim checks.
        (
            rule("claim: { ref: main }"),
            "token_exchange.rules[0].claim",
        ),
        (
            format!("token_exchange: {{ rules: [ {EXCHANGE_RULE}, {EXCHANGE_RULE} ] }}"),
            "token_exchange.rules[1].name",
        ),
        (
            format!(
                "token_exchange: {{ rules: [ {EXCHANGE_RULE}, {} ] }}",
                EXCHANGE_RULE.replace("name: ci", "name: ci2")
            ),
            "token_exchange.rules[1].claims",
        ),
        (
            "token_exchange: { enabled: true }".to_owned(),
            "token_exchange.rules",
        ),
        (
            "token_exchange: { rules: [ 5 ] }".to_owned(),
            "token_exchange.rules[0]",
        ),
        (
            "token_exchange: { requests_per_minute: -1 }".to_owned(),
            "token_exchange.requests_per_minute",
        ),
    ];
    for (yaml, key) in table {
        let err = load_yaml(&yaml, &[])
            .err()
            .unwrap_or_else(|| panic!("{yaml} loaded"))
            .to_string();
        assert!(
            err.starts_with(&format!("config key {key} = ")),
            "{yaml}: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
    // http is fine for a provider on this machine.
    for local in [
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]:9000/oidc",
    ] {
        let yaml = rule(&format!("issuer: '{local}'"));
        assert!(load_yaml(&yaml, &[]).is_ok(), "{local}");
    }
}

/// A Portus `oauth:` block, as Portus's own config.yml documents it (filled in), loads
/// unchanged; only `open_id` (OpenID 2.0) is reported as not acted on.
#[test]
fn a_portus_oauth_block_loads_unchanged() {
    let l = load_yaml(
        "oauth:\n  local_login:\n    enabled: true\n  google_oauth2:\n    enabled: true\n    \
         id: g-id\n    secret: g-secret\n    domain: example.org\n    options:\n      hd: example.org\n  \
         open_id:\n    enabled: false\n    identifier: ''\n    domain: ''\n  openid_connect:\n    \
         enabled: false\n    issuer: ''\n    identifier: ''\n    secret: ''\n  github:\n    \
         enabled: true\n    client_id: gh-id\n    client_secret: gh-secret\n    organization: acme\n    \
         team: registry\n    domain: ''\n  gitlab:\n    enabled: true\n    application_id: gl-id\n    \
         secret: gl-secret\n    group: acme/registry\n    domain: ''\n    server: ''\n  bitbucket:\n    \
         enabled: true\n    key: bb-key\n    secret: bb-secret\n    domain: ''\n    options:\n      team: acme\n",
        &[],
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert!(
        l.warnings
            .iter()
            .all(|w| w.contains("oauth.open_id ") && w.contains("Portus setting")),
        "{:?}",
        l.warnings
    );
    let o = &l.config.oauth;
    assert!(o.google_oauth2.enabled && o.github.enabled && o.gitlab.enabled && o.bitbucket.enabled);
    assert_eq!(o.google_oauth2.options.hd, "example.org");
    assert_eq!(o.google_oauth2.issuer(), "https://accounts.google.com");
    assert_eq!(
        (o.github.organization.as_str(), o.github.team.as_str()),
        ("acme", "registry")
    );
    assert_eq!(o.github.server(), "https://github.com");
    assert_eq!(
        o.gitlab.server(),
        "https://gitlab.com",
        "Portus's empty server"
    );
    assert_eq!(o.gitlab.group, "acme/registry");
    assert_eq!(o.bitbucket.options.team, "acme");
    assert_eq!(o.bitbucket.server(), "https://bitbucket.org");
    let shown = l.config.to_masked_yaml();
    for secret in ["g-secret", "gh-secret", "gl-secret", "bb-secret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("client_id: gh-id"), "{shown}");
    // The environment, Portus's names included, reaches the new keys.
    let l = load_yaml(
        "",
        &[
            ("PORTUS_OAUTH_GITHUB_ENABLED", "true"),
            ("PORTUS_OAUTH_GITHUB_CLIENT_ID", "env-id"),
            ("PORTUS_OAUTH_GITHUB_CLIENT_SECRET", "env-secret"),
            ("PORTCULLIS_OAUTH_GITHUB_SERVER", "https://ghe.corp.example"),
            ("PORTUS_OAUTH_GOOGLE_OAUTH2_OPTIONS_HD", "corp.example"),
            ("PORTUS_OAUTH_BITBUCKET_OPTIONS_TEAM", "acme"),
        ],
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let o = &l.config.oauth;
    assert!(o.github.enabled);
    assert_eq!(o.github.client_secret, "env-secret");
    assert_eq!(o.github.server(), "https://ghe.corp.example");
    assert_eq!(o.google_oauth2.options.hd, "corp.example");
    assert_eq!(o.bitbucket.options.team, "acme");
}

#[test]
fn bad_oauth_provider_values_are_one_line_naming_the_key() {
    let table = [
        (
            "oauth: { github: { enabled: true, client_secret: s } }",
            "config key oauth.github.client_id = \"\" (from default): must be set when oauth.github.enabled is true",
        ),
        (
            "oauth: { gitlab: { enabled: true, application_id: a } }",
            "config key oauth.gitlab.secret = \"\" (from default): must be set when oauth.gitlab.enabled is true",
        ),
        (
            "oauth: { google_oauth2: { enabled: true, secret: s } }",
            "config key oauth.google_oauth2.id = \"\" (from default): must be set when oauth.google_oauth2.enabled is true",
        ),
        (
            "oauth: { bitbucket: { enabled: true, key: k } }",
            "config key oauth.bitbucket.secret = \"\" (from default): must be set when oauth.bitbucket.enabled is true",
        ),
        (
            "oauth: { gitlab: { enabled: true, application_id: a, secret: s, server: 'http://gitlab.corp' } }",
            "config key oauth.gitlab.server = \"http://gitlab.corp\" (from file test.yml): expected an https URL without query or fragment",
        ),
        (
            "oauth: { github: { enabled: true, client_id: a, client_secret: s, server: 'https://ghe?x=1' } }",
            "config key oauth.github.server = \"https://ghe?x=1\" (from file test.yml): expected an https URL without query or fragment",
        ),
        (
            "oauth: { github: { enabled: true, client_id: a, client_secret: s, team: ops } }",
            "config key oauth.github.team = \"ops\" (from file test.yml): needs oauth.github.organization (team names are unique only within an organization)",
        ),
    ];
    for (yaml, want) in table {
        let err = load_yaml(yaml, &[])
            .err()
            .unwrap_or_else(|| panic!("{yaml} loaded"));
        assert_eq!(err.to_string(), want, "{yaml}");
    }
    // Off, nothing is checked.
    assert!(load_yaml("oauth: { github: { enabled: false, team: ops } }", &[]).is_ok());
}
