//! OAuth 2.0 Token Exchange (RFC 8693) for CI jobs: an OpenID Connect ID token (GitLab
//! CI's `id_tokens`, GitHub Actions' OIDC token, any issuer) is exchanged for a
//! short-lived registry token that acts as a bot, when a configured trust rule
//! (`token_exchange.rules`) matches it: the issuer exactly, the audience among `aud`,
//! every listed claim (exact, or a glob with `*`).
//!
//! The exchanged token is a registry JWT like any other: its grants are the mapped
//! bot's under the policy (a `pull_only` rule makes it a pull-only subject), its `sub`
//! is the bot's name so the registry's notifications attribute pushes to the bot, and
//! no refresh token comes with it. It is not a credential anywhere else: the API and
//! the token endpoint take application tokens, passwords and refresh tokens, never a
//! registry JWT, so an exchanged token cannot mint anything.
//!
//! Rules map to bots only. A team mapping would need a caller that is no user: the
//! policy's `Subject`, the namespace-access query, the registry's `sub` and the
//! inventory's attribution of pushes all name a user. A bot that is a member of the
//! team with the wanted role gives the same grants in the existing model.
//!
//! Every attempt takes one token of a per-client-address rate limit before anything
//! is verified (a flood of made-up tokens costs no signature checks). A refusal says
//! only "not accepted" to the client; the reason goes to the log with the rule, `iss`
//! and `sub`, never the token. The issuer's discovery document is fetched on the first
//! exchange that names it (and again after a failed try): an issuer that is down then
//! makes exchanges a 503, never a refusal.

use crate::Context;
use crate::auth::{AuthMethod, Authenticated};
use crate::oidc::{OidcError, OidcVerifier};
use crate::rate_limit::RateLimiter;
use crate::token::{IssuedToken, TokenRequest, TokenService};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::TrustRule;
use portcullis_domain::scope::Scope;
use portcullis_domain::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// `grant_type` of a token exchange (RFC 8693 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `subject_token_type`s accepted: an ID token, or a JWT (GitHub's docs say so).
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// `issued_token_type` of the answer, and the only `requested_token_type` served.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Longer subject tokens are refused before they are parsed (ID tokens are a few KB).
const MAX_SUBJECT_TOKEN_BYTES: usize = 16 * 1024;
/// Discovery and JWKS requests to an issuer.
const ISSUER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const ISSUER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for issuers: bounded waits, and no redirects (the discovery
/// document and JWKS must come from where the issuer says).
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(ISSUER_CONNECT_TIMEOUT)
        .timeout(ISSUER_REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Internal(Box::new(e)))
}

/// A token exchange request, already parsed by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub struct ExchangeRequest {
    pub subject_token: String,
    pub service: String,
    /// `None`: no `scope` at all (a token with no `access` claim).
    pub scopes: Option<Vec<Scope>>,
}

/// One verifier per configured issuer, discovered on first use.
type Verifiers = HashMap<String, tokio::sync::OnceCell<OidcVerifier>>;

#[derive(Clone)]
pub struct TokenExchangeService {
    ctx: Arc<Context>,
    tokens: TokenService,
    http: reqwest::Client,
    verifiers: Arc<Verifiers>,
    limiter: Arc<RateLimiter>,
}

impl TokenExchangeService {
    pub(crate) fn new(ctx: Arc<Context>, tokens: TokenService, http: reqwest::Client) -> Self {
        let t = &ctx.config.token_exchange;
        let verifiers = t
            .rules
            .iter()
            .map(|r| (r.issuer.clone(), tokio::sync::OnceCell::new()))
            .collect();
        let limiter = RateLimiter::new(t.requests_per_minute, ctx.clock.clone());
        Self {
            tokens,
            http,
            verifiers: Arc::new(verifiers),
            limiter: Arc::new(limiter),
            ctx,
        }
    }

    /// Whether `token_exchange.enabled`.
    pub fn enabled(&self) -> bool {
        self.ctx.config.token_exchange.enabled
    }

    /// Exchanges `req.subject_token` for a registry token. `client` keys the rate
    /// limit (the client's address). Errors: `Disabled` when the feature is off,
    /// `RateLimited`, `Unauthenticated` for every refused token (the reason is
    /// logged), `Unavailable` when the issuer cannot be asked.
    pub async fn exchange(&self, req: &ExchangeRequest, client: &str) -> Result<IssuedToken> {
        let config = &self.ctx.config.token_exchange;
        if !config.enabled {
            return Err(Error::Disabled("token exchange is not enabled".into()));
        }
        if !self.limiter.try_acquire(client) {
            return Err(Error::RateLimited);
        }
        // Unverified, only to pick the rules: everything is verified below.
        let Some(unverified) = unverified_claims(&req.subject_token) else {
            tracing::info!(
                client,
                "token exchange refused: the subject token is not a JWT"
            );
            return Err(Error::Unauthenticated);
        };
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let claimed_sub = unverified
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let rules: Vec<&TrustRule> = config.rules.iter().filter(|r| r.issuer == iss).collect();
        let Some(verifier) = self.verifiers.get(iss).filter(|_| !rules.is_empty()) else {
            tracing::info!(
                iss,
                sub = claimed_sub,
                "token exchange refused: no rule trusts this issuer"
            );
            return Err(Error::Unauthenticated);
        };
        let verifier = verifier
            .get_or_try_init(|| OidcVerifier::discover(self.http.clone(), iss))
            .await
            .map_err(|e| {
                tracing::warn!(iss, error = %e, "token exchange: the issuer's discovery failed");
                Error::Unavailable(Box::new(e))
            })?;
        let now = self.ctx.clock.now().as_secs();
        let mut by_audience: HashMap<&str, std::result::Result<Value, String>> = HashMap::new();
        let mut reasons = Vec::new();
        let mut matched = None;
        for rule in rules {
            let verified = match by_audience.get(rule.audience.as_str()) {
                Some(v) => v.clone(),
                None => {
                    let v = match verifier
                        .verify_id_token(&req.subject_token, &rule.audience, now)
                        .await
                    {
                        Ok(claims) => Ok(claims),
                        Err(e @ OidcError::Unreachable(_)) => {
                            tracing::warn!(iss, rule = %rule.name, error = %e, "token exchange: the issuer's keys cannot be fetched");
                            return Err(Error::Unavailable(Box::new(e)));
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    by_audience.insert(&rule.audience, v.clone());
                    v
                }
            };
            match verified {
                Err(why) => reasons.push(format!("{}: {why}", rule.name)),
                Ok(claims) => match claim_mismatch(rule, &claims) {
                    Some(why) => reasons.push(format!("{}: {why}", rule.name)),
                    None => {
                        matched = Some((rule, claims));
                        break;
                    }
                },
            }
        }
        let Some((rule, claims)) = matched else {
            tracing::info!(iss, sub = claimed_sub, reasons = %reasons.join("; "), "token exchange refused: no rule matched");
            return Err(Error::Unauthenticated);
        };
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let refuse = |why: &str| {
            tracing::warn!(rule = %rule.name, iss, sub, bot = %rule.bot, "token exchange refused: {why}");
            Error::Unauthenticated
        };
        let bot = match self.ctx.store.user_by_username(&rule.bot).await? {
            None => return Err(refuse("the rule's bot does not exist")),
            Some(u) if !u.bot => return Err(refuse("the rule's bot is a user, not a bot")),
            Some(u) if !u.enabled => return Err(refuse("the rule's bot is disabled")),
            Some(u) => u,
        };
        let who = Authenticated {
            user: bot,
            method: AuthMethod::TokenExchange {
                pull_only: rule.pull_only,
            },
        };
        let lifetime = rule
            .lifetime_seconds
            .min(self.ctx.config.registry.jwt_expiration_time.value * 60);
        let token_request = TokenRequest {
            service: req.service.clone(),
            scopes: req.scopes.clone(),
            offline: false,
            client_id: String::new(),
        };
        let issued = self
            .tokens
            .issue_exchanged(&who, &token_request, lifetime)
            .await?;
        // The record of this issuance: who the CI identity was and what it got.
        let selected: serde_json::Map<String, Value> = rule
            .claims
            .keys()
            .filter_map(|k| claims.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        let selected = Value::Object(selected).to_string();
        tracing::info!(
            rule = %rule.name,
            iss,
            sub,
            claims = %selected,
            bot = %who.user.username,
            service = %req.service,
            scope = %issued.scope,
            expires_in = issued.expires_in,
            "token exchanged"
        );
        Ok(issued)
    }
}

/// The payload of a compact JWS, not verified.
fn unverified_claims(token: &str) -> Option<Value> {
    if token.len() > MAX_SUBJECT_TOKEN_BYTES {
        return None;
    }
    let mut parts = token.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// Why `claims` do not satisfy the rule's claim conditions, or `None` when they do.
fn claim_mismatch(rule: &TrustRule, claims: &Value) -> Option<String> {
    for (name, expected) in &rule.claims {
        let text = match claims.get(name) {
            None => return Some(format!("claim {name} is missing")),
            Some(Value::String(s)) => s.clone(),
            // Booleans and numbers as their JSON text; lists, objects and null never
            // match (a list of groups would need its own rule syntax).
            Some(v @ (Value::Bool(_) | Value::Number(_))) => v.to_string(),
            Some(_) => return Some(format!("claim {name} is not a single value")),
        };
        if !glob_match(expected, &text) {
            return Some(format!(
                "claim {name} is {text:?}, the rule wants {expected:?}"
            ));
        }
    }
    None
}

/// `pattern` matches all of `text`; `*` matches any run of characters (`/` included),
/// everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: exact.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_values() {
        let table = [
            ("main", "main", true),
            ("main", "mainline", false),
            ("main", "", false),
            ("", "", true),
            ("group/*", "group/app", true),
            ("group/*", "group/sub/app", true),
            ("group/*", "group", false),
            ("group/*", "other/group/app", false),
            ("*", "", true),
            ("*", "anything", true),
            ("refs/tags/v*", "refs/tags/v1.2", true),
            ("refs/tags/v*", "refs/heads/v1", false),
            ("*-prod", "eu-prod", true),
            ("*-prod", "eu-prod-2", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
        ];
        for (pattern, text, want) in table {
            assert_eq!(glob_match(pattern, text), want, "{pattern:?} ~ {text:?}");
        }
    }

    #[test]
    fn claims_are_compared_as_text() {
        let rule = TrustRule {
            name: "r".into(),
            issuer: "https://ci".into(),
            audience: "reg".into(),
            claims: [
                ("ref".to_owned(), "main".to_owned()),
                ("protected".to_owned(), "true".to_owned()),
                ("project_id".to_owned(), "42".to_owned()),
            ]
            .into_iter()
            .collect(),
            bot: "ci-bot".into(),
            pull_only: false,
            lifetime_seconds: 300,
        };
        let good = serde_json::json!({"ref": "main", "protected": true, "project_id": 42});
        assert_eq!(claim_mismatch(&rule, &good), None);
        for bad in [
            serde_json::json!({"ref": "dev", "protected": true, "project_id": 42}),
            serde_json::json!({"ref": "main", "protected": false, "project_id": 42}),
            serde_json::json!({"ref": "main", "protected": "yes", "project_id": 42}),
            serde_json::json!({"ref": "main", "protected": true}),
            serde_json::json!({"ref": ["main"], "protected": true, "project_id": 42}),
        ] {
            assert!(claim_mismatch(&rule, &bad).is_some(), "{bad}");
        }
        // "true" as a string is the same text as the boolean: documented.
        let text = serde_json::json!({"ref": "main", "protected": "true", "project_id": "42"});
        assert_eq!(claim_mismatch(&rule, &text), None);
    }

    #[test]
    fn only_compact_jws_payloads_are_read() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://ci","sub":"x"}"#);
        let token = format!("e30.{payload}.sig");
        assert_eq!(unverified_claims(&token).unwrap()["iss"], "https://ci");
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            &format!("e30.{payload}.s.x"),
            "e30.bm90IGpzb24.s",
        ] {
            assert!(unverified_claims(bad).is_none(), "{bad}");
        }
        let long = format!("e30.{}.s", "A".repeat(MAX_SUBJECT_TOKEN_BYTES));
        assert!(unverified_claims(&long).is_none());
    }
}
