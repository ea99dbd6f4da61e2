use super::*;

/// Fixtures generated once with OpenSSL 3.0 (see tests/fixtures/README.md for the commands).
const ES256_KEY: &str = include_str!("../../tests/fixtures/es256.key");
const ES256_SEC1_KEY: &str = include_str!("../../tests/fixtures/es256-sec1.key");
const ES256_CRT: &str = include_str!("../../tests/fixtures/es256.crt");
const RSA_KEY: &str = include_str!("../../tests/fixtures/rsa.key");
const RSA_PKCS8_KEY: &str = include_str!("../../tests/fixtures/rsa-pkcs8.key");
const RSA_CRT: &str = include_str!("../../tests/fixtures/rsa.crt");

// Expected libtrust kids, from the pipeline of registry-contract.md §2:
//   openssl x509 -in es256.crt -noout -pubkey | openssl pkey -pubin -outform DER \
//     | openssl dgst -sha256 -binary | head -c 30 | base32 | tr -d '=\n' | fold -w4 | paste -sd: -
const ES256_LIBTRUST: &str = "RLL4:2A3Q:5GWL:GZDT:MAHE:YO6U:UVWB:L6FH:NYWF:CWYK:2JCH:QX4X";
const RSA_LIBTRUST: &str = "3HAR:2JSI:UE5Y:LQAS:K76H:E3MF:JV5Y:NLG6:UJSF:GWXZ:M5YX:GXPM";
// Expected RFC 7638 thumbprints, from `python3 tests/fixtures/rfc7638.py <cert>`
// (python3 + the `cryptography` package, independent of this code).
const ES256_RFC7638: &str = "NgJKnzNdvbzUf6ZapjQztBAVvy_lmVM5Z1fQ4mUHSj4";
const RSA_RFC7638: &str = "xGKoK3Nra8AN6gHBrsSqdESZvHEQXbVkaXH8X9wxZ40";

#[test]
fn algorithm_and_kid_format_parse() {
    assert_eq!(Algorithm::parse("es256"), Some(Algorithm::Es256));
    assert_eq!(Algorithm::parse("RS256"), Some(Algorithm::Rs256));
    assert_eq!(Algorithm::parse("PS256"), None);
    assert_eq!(Algorithm::Rs256.as_str(), "RS256");
    assert_eq!(KidFormat::parse("LibTrust"), Some(KidFormat::Libtrust));
    assert_eq!(KidFormat::parse("rfc7638"), Some(KidFormat::Rfc7638));
    assert_eq!(KidFormat::parse("jwk"), None);
    assert_eq!(KidFormat::Rfc7638.as_str(), "rfc7638");
}

#[test]
fn es256_fixture_known_answers() {
    for key_pem in [ES256_KEY, ES256_SEC1_KEY] {
        let key = SigningKey::from_pem(key_pem, ES256_CRT, None).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Es256);
        assert_eq!(key.kid(KidFormat::Libtrust), ES256_LIBTRUST);
        assert_eq!(key.kid(KidFormat::Rfc7638), ES256_RFC7638);
        assert_eq!(key.signing_der()[0], 0x30);
    }
}

#[test]
fn rsa_fixture_known_answers() {
    // PKCS#1 (as Portus had it) and the same key as PKCS#8.
    for key_pem in [RSA_KEY, RSA_PKCS8_KEY] {
        let key = SigningKey::from_pem(key_pem, RSA_CRT, Some(Algorithm::Rs256)).unwrap();
        assert_eq!(key.algorithm(), Algorithm::Rs256);
        assert_eq!(key.kid(KidFormat::Libtrust), RSA_LIBTRUST);
        assert_eq!(key.kid(KidFormat::Rfc7638), RSA_RFC7638);
    }
    // The PKCS#8 input is unwrapped to the PKCS#1 form jsonwebtoken needs.
    let pkcs1 = SigningKey::from_pem(RSA_KEY, RSA_CRT, None).unwrap();
    let pkcs8 = SigningKey::from_pem(RSA_PKCS8_KEY, RSA_CRT, None).unwrap();
    assert_eq!(pkcs1.signing_der(), pkcs8.signing_der());
}

#[test]
fn cert_pem_and_expiry() {
    let key = SigningKey::from_pem(ES256_KEY, ES256_CRT, None).unwrap();
    let reparsed: Vec<_> = CertificateDer::pem_slice_iter(key.cert_pem().as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let original: Vec<_> = CertificateDer::pem_slice_iter(ES256_CRT.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(reparsed, original);
    // `openssl x509 -in es256.crt -noout -enddate` = Oct 30 09:03:04 2126 GMT.
    assert_eq!(key.cert_not_after_unix(), 4_949_024_584);
}

#[test]
fn chain_keeps_order() {
    let bundle = format!("{ES256_CRT}{RSA_CRT}");
    let key = SigningKey::from_pem(ES256_KEY, &bundle, None).unwrap();
    assert_eq!(key.cert_chain_der().len(), 2);
    assert_eq!(key.cert_pem().matches("BEGIN CERTIFICATE").count(), 2);
    // Only the leaf has to match the key.
    let err = SigningKey::from_pem(ES256_KEY, &format!("{RSA_CRT}{ES256_CRT}"), None).unwrap_err();
    assert!(matches!(err, KeyError::CertKeyMismatch), "{err}");
}

#[test]
fn generate_round_trip() {
    let now = 1_780_000_000;
    for alg in [Algorithm::Es256, Algorithm::Rs256] {
        let (key_pem, cert_pem) = SigningKey::generate_pem(alg, "portcullis-test", now).unwrap();
        assert!(
            key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "{key_pem}"
        );
        let key = SigningKey::from_pem(&key_pem, &cert_pem, Some(alg)).unwrap();
        assert_eq!(key.algorithm(), alg);
        assert_eq!(key.cert_not_after_unix(), now + 3650 * 86_400);
        let leaf = Certificate::from_der(&key.cert_chain_der()[0]).unwrap();
        assert_eq!(
            leaf.tbs_certificate.subject.to_string(),
            "CN=portcullis-test"
        );
        let kid = key.kid(KidFormat::Libtrust);
        assert_eq!(kid.len(), 59);
        assert_eq!(kid.split(':').count(), 12);
        assert_eq!(key.kid(KidFormat::Rfc7638).len(), 43);
    }
}

#[test]
fn rejects_bad_input() {
    let err = SigningKey::from_pem("garbage", ES256_CRT, None).unwrap_err();
    assert!(matches!(err, KeyError::NotPemKey), "{err}");
    assert_eq!(err.to_string(), "not a PEM private key");

    let junk_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let err = SigningKey::from_pem(junk_key, ES256_CRT, None).unwrap_err();
    assert!(matches!(err, KeyError::InvalidKey(_)), "{err}");

    let err = SigningKey::from_pem(ES256_KEY, RSA_CRT, None).unwrap_err();
    assert!(matches!(err, KeyError::CertKeyMismatch), "{err}");
    let (_, other_cert) = SigningKey::generate_pem(Algorithm::Es256, "other", 0).unwrap();
    let err = SigningKey::from_pem(ES256_KEY, &other_cert, None).unwrap_err();
    assert!(matches!(err, KeyError::CertKeyMismatch), "{err}");

    let err = SigningKey::from_pem(ES256_KEY, "", None).unwrap_err();
    assert!(matches!(err, KeyError::NoCertificate), "{err}");

    let err = SigningKey::from_pem(RSA_KEY, RSA_CRT, Some(Algorithm::Es256)).unwrap_err();
    assert!(matches!(err, KeyError::AlgorithmMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("ES256") && msg.contains("RS256"), "{msg}");
}

#[test]
fn load_or_generate_writes_then_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("sub/dir/token.key");
    let cert_path = dir.path().join("other/token.crt");

    let (first, generated) =
        SigningKey::load_or_generate(&key_path, &cert_path, None, "issuer", 1_780_000_000).unwrap();
    assert!(generated);
    assert_eq!(first.algorithm(), Algorithm::Es256);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(fs::read_to_string(&cert_path).unwrap(), first.cert_pem());

    let (second, generated) =
        SigningKey::load_or_generate(&key_path, &cert_path, None, "issuer", 0).unwrap();
    assert!(!generated);
    assert_eq!(
        second.kid(KidFormat::Libtrust),
        first.kid(KidFormat::Libtrust)
    );

    // A requested algorithm that the existing key doesn't have names the key file.
    let err = SigningKey::load_or_generate(&key_path, &cert_path, Some(Algorithm::Rs256), "i", 0)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("token.key_path {}: ", key_path.display())),
        "{msg}"
    );
}

/// Nodes started at once on one empty shared data folder: one generates, the others
/// wait for it and read the same key; nobody fails on a half-written pair.
#[test]
fn load_or_generate_at_once_from_many_processes_makes_one_key() {
    const STARTS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let (key_path, cert_path) = (dir.path().join("token.key"), dir.path().join("token.crt"));
    let barrier = std::sync::Barrier::new(STARTS);
    let results: Vec<(String, bool)> = std::thread::scope(|scope| {
        let starts: Vec<_> = (0..STARTS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let (key, generated) =
                        SigningKey::load_or_generate(&key_path, &cert_path, None, "issuer", 0)
                            .unwrap();
                    (key.kid(KidFormat::Libtrust), generated)
                })
            })
            .collect();
        starts.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|(_, generated)| *generated).count(),
        1
    );
    assert!(
        results.iter().all(|(kid, _)| *kid == results[0].0),
        "{results:?}"
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
}

#[test]
fn load_or_generate_rs256() {
    let dir = tempfile::tempdir().unwrap();
    let (key, generated) = SigningKey::load_or_generate(
        &dir.path().join("k.pem"),
        &dir.path().join("c.pem"),
        Some(Algorithm::Rs256),
        "issuer",
        0,
    )
    .unwrap();
    assert!(generated);
    assert_eq!(key.algorithm(), Algorithm::Rs256);
}

#[test]
fn load_or_generate_errors() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("token.key");
    let cert_path = dir.path().join("token.crt");

    fs::write(&key_path, ES256_KEY).unwrap();
    let err = SigningKey::load_or_generate(&key_path, &cert_path, None, "i", 0).unwrap_err();
    assert!(matches!(err, KeyError::OneFileMissing { .. }), "{err}");
    assert!(err.to_string().contains("token.cert_path"), "{err}");
    assert!(!cert_path.exists());

    fs::remove_file(&key_path).unwrap();
    fs::write(&cert_path, ES256_CRT).unwrap();
    let err = SigningKey::load_or_generate(&key_path, &cert_path, None, "i", 0).unwrap_err();
    assert!(matches!(err, KeyError::OneFileMissing { .. }), "{err}");
    assert!(!key_path.exists());

    // Problems are reported against the file they concern.
    fs::write(&key_path, "not a key").unwrap();
    let err = SigningKey::load_or_generate(&key_path, &cert_path, None, "i", 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "token.key_path {}: not a PEM private key",
            key_path.display()
        )
    );
    fs::write(&key_path, ES256_KEY).unwrap();
    fs::write(&cert_path, RSA_CRT).unwrap();
    let err = SigningKey::load_or_generate(&key_path, &cert_path, None, "i", 0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("token.cert_path {}: ", cert_path.display())),
        "{err}"
    );
}
