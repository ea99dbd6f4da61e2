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
            ("PORTUS_DB_HOST", "mariadb"),
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
    assert!(l.warnings[0].contains("PORTUS_DB_HOST"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_keys_warn_and_portus_keys_are_recognised() {
    let l = load_yaml(
        "ldap: { enabled: true }\nfrobnicate: 3\ndelete: { garbage_collector: { enabled: true }, nonsense: 1 }",
        &[],
    )
    .unwrap();
    assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.starts_with("config key ldap (") && w.contains("Portus setting"))
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
