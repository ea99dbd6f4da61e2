use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use x509_cert::Certificate;
use x509_cert::der::Decode as _;

use super::*;

const ES256_KEY: &str = include_str!("../../tests/fixtures/es256.key");
const ES256_CRT: &str = include_str!("../../tests/fixtures/es256.crt");
const RSA_KEY: &str = include_str!("../../tests/fixtures/rsa.key");
const RSA_CRT: &str = include_str!("../../tests/fixtures/rsa.crt");

fn claims(access: Option<Vec<AccessEntry>>) -> Claims {
    Claims {
        iss: "portcullis-test".into(),
        sub: "alice".into(),
        aud: "registry.test:5000".into(),
        exp: 4_000_000_000,
        nbf: 1_700_000_000,
        iat: 1_700_000_005,
        jti: "j".repeat(32),
        access,
    }
}

fn pull(name: &str) -> AccessEntry {
    AccessEntry {
        resource_type: "repository".into(),
        name: name.into(),
        actions: vec!["pull".into()],
    }
}

/// The claims part of a token as generic JSON.
fn claims_json(token: &str) -> serde_json::Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Verifies `token` with jsonwebtoken, using the public key of the header's `x5c[0]`.
fn verify(token: &str, alg: jsonwebtoken::Algorithm) -> Claims {
    let header = decode_header(token).unwrap();
    let leaf_der = STANDARD.decode(&header.x5c.unwrap()[0]).unwrap();
    let leaf = Certificate::from_der(&leaf_der).unwrap();
    let raw = leaf
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .as_bytes()
        .unwrap();
    // EC: the uncompressed point; RSA: the DER RSAPublicKey.
    let key = match alg {
        jsonwebtoken::Algorithm::ES256 => DecodingKey::from_ec_der(raw),
        _ => DecodingKey::from_rsa_der(raw),
    };
    let mut validation = Validation::new(alg);
    validation.set_audience(&["registry.test:5000"]);
    validation.set_issuer(&["portcullis-test"]);
    decode::<Claims>(token, &key, &validation).unwrap().claims
}

#[test]
fn es256_sign_verify_and_header() {
    let key = SigningKey::from_pem(ES256_KEY, ES256_CRT, None).unwrap();
    let signer = TokenSigner::new(&key, KidFormat::Libtrust).unwrap();
    assert_eq!(signer.algorithm(), Algorithm::Es256);
    assert_eq!(signer.kid(), key.kid(KidFormat::Libtrust));

    let token = signer.sign(&claims(Some(vec![pull("ns/repo")]))).unwrap();
    let verified = verify(&token, jsonwebtoken::Algorithm::ES256);
    assert_eq!(verified.sub, "alice");
    assert_eq!(verified.access, Some(vec![pull("ns/repo")]));

    // Raw r||s, not DER.
    let sig = URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap();
    assert_eq!(sig.len(), 64);

    let header_part = token.split('.').next().unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_part).unwrap()).unwrap();
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], key.kid(KidFormat::Libtrust));
    let x5c = header["x5c"].as_array().unwrap();
    assert_eq!(x5c.len(), 1);
    let der = STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
    assert_eq!(der, key.cert_chain_der()[0]);
}

#[test]
fn rs256_sign_verify_with_rfc7638_kid() {
    let key = SigningKey::from_pem(RSA_KEY, RSA_CRT, None).unwrap();
    let signer = TokenSigner::new(&key, KidFormat::Rfc7638).unwrap();
    assert_eq!(signer.algorithm(), Algorithm::Rs256);
    let token = signer.sign(&claims(None)).unwrap();
    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        header.kid.as_deref(),
        Some(key.kid(KidFormat::Rfc7638).as_str())
    );
    let verified = verify(&token, jsonwebtoken::Algorithm::RS256);
    assert_eq!(verified.jti, "j".repeat(32));
}

#[test]
fn x5c_carries_the_whole_chain() {
    let key = SigningKey::from_pem(ES256_KEY, &format!("{ES256_CRT}{RSA_CRT}"), None).unwrap();
    let token = TokenSigner::new(&key, KidFormat::Libtrust)
        .unwrap()
        .sign(&claims(None))
        .unwrap();
    let x5c = decode_header(&token).unwrap().x5c.unwrap();
    let ders: Vec<Vec<u8>> = x5c.iter().map(|c| STANDARD.decode(c).unwrap()).collect();
    assert_eq!(ders, key.cert_chain_der());
}

#[test]
fn claims_serialization() {
    let key = SigningKey::from_pem(ES256_KEY, ES256_CRT, None).unwrap();
    let signer = TokenSigner::new(&key, KidFormat::Libtrust).unwrap();

    let none = claims_json(&signer.sign(&claims(None)).unwrap());
    assert_eq!(none["aud"], serde_json::json!("registry.test:5000"));
    assert!(none.get("access").is_none(), "{none}");

    let empty = claims_json(&signer.sign(&claims(Some(vec![]))).unwrap());
    assert_eq!(empty["access"], serde_json::json!([]));

    let one = claims_json(&signer.sign(&claims(Some(vec![pull("a/b")]))).unwrap());
    assert_eq!(
        one["access"],
        serde_json::json!([{"type": "repository", "name": "a/b", "actions": ["pull"]}])
    );
}

#[test]
fn signer_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TokenSigner>();
}
