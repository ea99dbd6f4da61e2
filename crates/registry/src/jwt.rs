//! Registry bearer tokens (the JWTs distribution verifies).
//!
//! The JOSE header carries both `x5c` and `kid`: distribution 2.8 and 3.x both try `x5c` first
//! (and accept a chain ending at a CA in the rootcertbundle, so keys can rotate without touching
//! the registry); the `kid` is for verifiers that only match key IDs — libtrust IDs for 2.8,
//! RFC 7638 thumbprints for 3.x.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::keys::{Algorithm, KeyError, KidFormat, SigningKey};

/// One granted resource: `{"type": "repository", "name": "ns/repo", "actions": ["pull"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Token claims. `aud` is always a JSON string: distribution 2.8 rejects an array as malformed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access: Option<Vec<AccessEntry>>,
}

#[derive(Serialize)]
struct JoseHeader<'a> {
    typ: &'static str,
    alg: &'static str,
    kid: &'a str,
    /// Standard (padded) base64 of each DER certificate, leaf first (RFC 7515 §4.1.6).
    x5c: Vec<String>,
}

/// Signs tokens with one key. Immutable, so it can be shared in an `Arc`.
pub struct TokenSigner {
    alg: Algorithm,
    kid: String,
    /// base64url of the JSON header, the same for every token.
    header_b64: String,
    key: ParsedKey,
    rng: SystemRandom,
}

/// The key pair, parsed once. (jsonwebtoken's aws-lc backend re-parses the DER and
/// re-derives the public key on every signature, which doubled the cost of a token.)
enum ParsedKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl TokenSigner {
    pub fn new(key: &SigningKey, kid_format: KidFormat) -> Result<Self, KeyError> {
        let alg = key.algorithm();
        let kid = key.kid(kid_format);
        let header = JoseHeader {
            typ: "JWT",
            alg: alg.as_str(),
            kid: &kid,
            x5c: key
                .cert_chain_der()
                .iter()
                .map(|der| STANDARD.encode(der))
                .collect(),
        };
        let header_json = serde_json::to_vec(&header).map_err(|e| KeyError::Sign(e.to_string()))?;
        let header_b64 = URL_SAFE_NO_PAD.encode(header_json);
        let parsed = match alg {
            // FIXED: JOSE wants the raw r‖s signature, not DER.
            Algorithm::Es256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.signing_der())
                    .map(ParsedKey::Ec)
                    .map_err(|e| KeyError::Sign(e.to_string()))?
            }
            Algorithm::Rs256 => RsaKeyPair::from_der(key.signing_der())
                .map(ParsedKey::Rsa)
                .map_err(|e| KeyError::Sign(e.to_string()))?,
        };
        let signer = Self {
            alg,
            kid,
            header_b64,
            key: parsed,
            rng: SystemRandom::new(),
        };
        // jsonwebtoken only parses the key when signing: fail at startup, not per request.
        signer.sign_message(b"probe")?;
        Ok(signer)
    }

    /// Returns the compact JWS `header.claims.signature`. For ES256 the signature is the JOSE
    /// raw `r||s` form (64 bytes), not DER — distribution rejects DER.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let claims_json = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        let mut token = format!(
            "{}.{}",
            self.header_b64,
            URL_SAFE_NO_PAD.encode(claims_json)
        );
        let signature = self.sign_message(token.as_bytes())?;
        token.push('.');
        token.push_str(&signature);
        Ok(token)
    }

    /// base64url signature over `message`.
    fn sign_message(&self, message: &[u8]) -> Result<String, KeyError> {
        let fail = |e: aws_lc_rs::error::Unspecified| KeyError::Sign(e.to_string());
        let signature = match &self.key {
            ParsedKey::Ec(k) => k.sign(&self.rng, message).map_err(fail)?.as_ref().to_vec(),
            ParsedKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(fail)?;
                sig
            }
        };
        Ok(URL_SAFE_NO_PAD.encode(signature))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
