//! `token_exchange.*`: OAuth 2.0 Token Exchange (RFC 8693) at `POST /v2/token`. A CI
//! job's OpenID Connect ID token is exchanged for a short-lived registry token acting
//! as a bot, when one of the trust rules matches it.
//!
//! Kept in its own module (one struct tree, one field on `Config`) so it stays apart
//! from the other sections.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The lifetime of an exchanged token unless a rule says otherwise.
pub const DEFAULT_EXCHANGE_LIFETIME_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenExchange {
    /// Off: the grant type is answered with `unsupported_grant_type`.
    pub enabled: bool,
    /// Per client address: exchanges attempted per minute (valid or not). 0 disables.
    pub requests_per_minute: i64,
    /// Tried in order; the first rule whose issuer, audience and claims all match wins.
    pub rules: Vec<TrustRule>,
}

impl Default for TokenExchange {
    fn default() -> Self {
        Self {
            enabled: false,
            requests_per_minute: 120,
            rules: Vec::new(),
        }
    }
}

/// One trusted kind of ID token and the bot it acts as. Unknown fields are refused:
/// a misspelt `claims` must not turn into a rule that matches every token of an issuer.
/// Required fields default to empty so the validation can name the missing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustRule {
    /// Names the rule in logs and errors.
    #[serde(default)]
    pub name: String,
    /// The ID token's `iss`, compared exactly; its discovery document is fetched from
    /// `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub issuer: String,
    /// What the ID token's `aud` must contain (GitLab's `id_tokens: aud`, GitHub's
    /// `audience=`).
    #[serde(default)]
    pub audience: String,
    /// Claim → expected value; all must match. `*` in a value matches any run of
    /// characters; booleans and numbers are compared as their JSON text.
    #[serde(default, deserialize_with = "scalar_texts")]
    pub claims: BTreeMap<String, String>,
    /// The bot the exchanged token acts as (its permissions, its name as `sub`).
    #[serde(default)]
    pub bot: String,
    /// The exchanged token never carries push or delete.
    #[serde(default)]
    pub pull_only: bool,
    /// Seconds the exchanged token lives, at most `registry.jwt_expiration_time`.
    #[serde(default = "default_lifetime")]
    pub lifetime_seconds: i64,
}

fn default_lifetime() -> i64 {
    DEFAULT_EXCHANGE_LIFETIME_SECONDS
}

/// A claim's expected value as written: a string, or a boolean or number kept as its
/// text (`true`, `42`), which is how the claim's JSON value is compared.
fn scalar_texts<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Bool(bool),
        Int(i64),
        Float(f64),
        Text(String),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Scalar::Bool(b) => b.to_string(),
                Scalar::Int(n) => n.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Text(s) => s,
            };
            (k, text)
        })
        .collect())
}
