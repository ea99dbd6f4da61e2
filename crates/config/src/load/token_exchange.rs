//! Loading and checking `token_exchange.*` (see `model/token_exchange.rs`).

use super::{ConfigError, kind, scalar_text};
use crate::model::{Config, TrustRule};
use serde_norway::Value;
use std::collections::BTreeMap;

/// Keys whose value is a list of mappings rather than of single values.
pub(super) const STRUCTURED_LISTS: &[&str] = &["token_exchange.rules"];

/// The list as written, after the checks that need the raw YAML: it is a list of
/// mappings, and none maps to a team (the reason is in docs/CONFIGURATION.md).
pub(super) fn structured_list(
    dotted: &str,
    given: &Value,
    source: &str,
) -> Result<Value, ConfigError> {
    let bad = |key: String, value: String, expected: &str| ConfigError::BadValue {
        key,
        value,
        source_: source.to_owned(),
        expected: expected.to_owned(),
    };
    let items = match given {
        Value::Sequence(items) => items,
        Value::Null => return Ok(Value::Sequence(Vec::new())),
        other => {
            return Err(bad(
                dotted.to_owned(),
                scalar_text(other),
                &format!("expected a list of rules, found {}", kind(other)),
            ));
        }
    };
    for (i, item) in items.iter().enumerate() {
        let Value::Mapping(m) = item else {
            return Err(bad(
                format!("{dotted}[{i}]"),
                scalar_text(item),
                &format!(
                    "expected a mapping (name, issuer, audience, claims, bot, ...), found {}",
                    kind(item)
                ),
            ));
        };
        for field in ["team", "role"] {
            if let Some(v) = m.get(field) {
                return Err(bad(
                    format!("{dotted}[{i}].{field}"),
                    scalar_text(v),
                    "rules map to a bot only: make the bot a member of the team with that role",
                ));
            }
        }
    }
    Ok(given.clone())
}

/// Checked whether or not the feature is on, so a rule is right before it is enabled.
pub(super) fn validate(c: &Config, sources: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let t = &c.token_exchange;
    let bad = |key: &str, value: &str, expected: &str| {
        // Entries of the list come from wherever the list came from.
        let origin = if key.starts_with("token_exchange.rules") {
            "token_exchange.rules"
        } else {
            key
        };
        ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            source_: sources
                .get(origin)
                .cloned()
                .unwrap_or_else(|| "default".into()),
            expected: expected.to_owned(),
        }
    };
    if t.requests_per_minute < 0 {
        return Err(bad(
            "token_exchange.requests_per_minute",
            &t.requests_per_minute.to_string(),
            "expected 0 or more",
        ));
    }
    if t.enabled && t.rules.is_empty() {
        return Err(bad(
            "token_exchange.rules",
            "",
            "must hold at least one rule when token_exchange.enabled is true",
        ));
    }
    for (i, rule) in t.rules.iter().enumerate() {
        let key = |field: &str| format!("token_exchange.rules[{i}].{field}");
        validate_rule(rule, &key, &bad)?;
        if let Some(j) = t.rules[..i].iter().position(|r| r.name == rule.name) {
            return Err(bad(
                &key("name"),
                &rule.name,
                &format!("duplicate: token_exchange.rules[{j}] has this name"),
            ));
        }
        let same_match = |r: &TrustRule| {
            r.issuer == rule.issuer && r.audience == rule.audience && r.claims == rule.claims
        };
        if let Some(j) = t.rules[..i].iter().position(same_match) {
            return Err(bad(
                &key("claims"),
                "",
                &format!(
                    "duplicate: token_exchange.rules[{j}] has the same issuer, audience and claims, so this rule would never be used"
                ),
            ));
        }
    }
    Ok(())
}

fn validate_rule(
    rule: &TrustRule,
    key: &dyn Fn(&str) -> String,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    let name_ok = !rule.name.is_empty()
        && rule
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(bad(
            &key("name"),
            &rule.name,
            "expected a name of letters, digits, '-', '_' or '.'",
        ));
    }
    if let Err(why) = check_issuer(&rule.issuer) {
        return Err(bad(&key("issuer"), &rule.issuer, why));
    }
    if rule.audience.trim().is_empty() {
        return Err(bad(
            &key("audience"),
            &rule.audience,
            "must be set: the value the ID token's aud must contain",
        ));
    }
    if let Some(claim) = rule.claims.keys().find(|k| k.trim().is_empty()) {
        return Err(bad(&key("claims"), claim, "expected claim names"));
    }
    if portcullis_domain::names::validate_username(&rule.bot).is_err() {
        return Err(bad(
            &key("bot"),
            &rule.bot,
            "expected the username of the bot the exchanged token acts as",
        ));
    }
    if rule.lifetime_seconds <= 0 {
        return Err(bad(
            &key("lifetime_seconds"),
            &rule.lifetime_seconds.to_string(),
            "expected a number greater than 0",
        ));
    }
    Ok(())
}

/// An absolute `https://host[:port][/path]` URL without user, query or fragment;
/// `http://` only for a loopback host (tests, a provider on the same machine). The
/// discovery of the issuer checks it again and exactly.
fn check_issuer(issuer: &str) -> Result<(), &'static str> {
    const EXPECTED: &str =
        "expected an absolute https:// URL (http:// only for 127.0.0.1, [::1] or localhost)";
    let (scheme, rest) = issuer.split_once("://").ok_or(EXPECTED)?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || rest.contains(['?', '#', ' ']) {
        return Err(EXPECTED);
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(EXPECTED);
    }
    match scheme {
        "https" => Ok(()),
        "http"
            if matches!(
                host.to_ascii_lowercase().as_str(),
                "127.0.0.1" | "::1" | "localhost"
            ) =>
        {
            Ok(())
        }
        _ => Err(EXPECTED),
    }
}
