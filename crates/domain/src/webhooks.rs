//! Webhooks of a namespace (Portus reference §8): what they are, which registry events
//! fire them, and the checks on what a user may configure. Delivery itself (HTTP,
//! signing, SSRF guard, encryption of secrets) lives in `portcullis-webhooks`.
//!
//! Beyond Portus: an event filter (actions and a repository-name glob), a per-webhook
//! signing secret, passwords and header values encrypted at rest and never shown again,
//! retries with backoff, and a bounded delivery history.

use crate::model::Id;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum RequestMethod {
        Get = "GET",
        Post = "POST",
    }
}

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum BodyType {
        Json = "application/json",
        Form = "application/x-www-form-urlencoded",
    }
}

crate::text_enum! {
    /// The registry actions a webhook can fire on (Portus fired on both, always).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum WebhookAction {
        Push = "push",
        Delete = "delete",
    }
}

/// The longest name, URL, username, header name or header value accepted.
pub const NAME_MAX: usize = 255;
pub const URL_MAX: usize = 2048;
pub const HEADER_VALUE_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: Id,
    pub namespace_id: Id,
    pub name: String,
    pub url: String,
    pub request_method: RequestMethod,
    pub content_type: BodyType,
    pub username: String,
    /// Whether a password is stored (the password itself is never shown again).
    pub password_set: bool,
    pub enabled: bool,
    pub actions: Vec<WebhookAction>,
    pub repository_glob: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Webhook {
    /// Whether a registry `action` on `repository` (its name inside the namespace)
    /// fires this webhook.
    pub fn fires_on(&self, action: &str, repository: &str) -> bool {
        self.enabled
            && WebhookAction::parse(action).is_some_and(|a| self.actions.contains(&a))
            && glob_matches(&self.repository_glob, repository)
    }
}

/// A custom header. Its value is encrypted at rest and never shown: header values
/// routinely carry credentials (`Authorization: Bearer …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookHeader {
    pub id: Id,
    pub webhook_id: Id,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One delivery of one event to one webhook, with its latest attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: Id,
    pub webhook_id: Id,
    /// Sent as `X-Portcullis-Delivery`, so receivers can drop repeats.
    pub uuid: String,
    pub event_id: String,
    /// The registry event as sent.
    pub payload: String,
    /// HTTP status of the latest attempt; `None` before the first attempt or when no
    /// response arrived.
    pub status: Option<i64>,
    pub attempts: i64,
    pub error: Option<String>,
    pub request_header: String,
    pub request_body: String,
    pub response_header: String,
    pub response_body: String,
    pub duration_ms: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One attempt of a delivery, as sent and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub id: Id,
    pub delivery_id: Id,
    /// 1 for the first attempt.
    pub attempt: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub request_header: String,
    pub request_body: String,
    pub response_header: String,
    pub response_body: String,
    pub duration_ms: i64,
    pub created_at: Timestamp,
}

impl WebhookDelivery {
    /// A 2xx answer (Portus counted only 200).
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// `actions` as stored: a comma-separated list.
pub fn format_actions(actions: &[WebhookAction]) -> String {
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The stored list back; unknown entries are dropped.
pub fn parse_actions(stored: &str) -> Vec<WebhookAction> {
    stored
        .split(',')
        .filter_map(|a| WebhookAction::parse(a.trim()))
        .collect()
}

/// Shell-style matching of a repository name: `*` matches any run of characters
/// (including `/`, so `app*` matches `app/api`), `?` one character; everything else
/// matches itself. Two metacharacters over names of at most 255 characters: a crate
/// would add more syntax (classes, braces, escapes) than a name filter needs.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with backtracking to the last `*`: linear in practice,
    // O(len(p) * len(n)) at worst, never exponential.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Problems with a webhook's name (`None`: fine).
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("can't be blank")
    } else if name.chars().count() > NAME_MAX {
        Some("is too long (maximum is 255 characters)")
    } else {
        None
    }
}

/// Problems with a repository glob.
pub fn glob_problem(glob: &str) -> Option<&'static str> {
    if glob.is_empty() {
        Some("can't be blank (use * for every repository)")
    } else if glob.chars().count() > NAME_MAX {
        Some("is too long (maximum is 255 characters)")
    } else if glob.chars().any(char::is_whitespace) {
        Some("cannot contain spaces")
    } else {
        None
    }
}

/// Problems with an action list: it must name at least one action, each once.
pub fn actions_problem(actions: &[WebhookAction]) -> Option<&'static str> {
    if actions.is_empty() {
        return Some("must contain at least one of push, delete");
    }
    let mut sorted = actions.to_vec();
    sorted.sort();
    sorted.dedup();
    (sorted.len() != actions.len()).then_some("lists an action twice")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let table = [
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("app", "app", true),
            ("app", "apps", false),
            ("app*", "app", true),
            ("app*", "app/api", true),
            ("app*", "my-app", false),
            ("*-api", "billing-api", true),
            ("*-api", "billing-api2", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("**", "x", true),
            ("*a", "aaaa", true),
            (
                "a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("", "", true),
            ("", "x", false),
            ("é*", "éclair", true),
        ];
        for (pattern, name, expected) in table {
            assert_eq!(
                glob_matches(pattern, name),
                expected,
                "{pattern:?} vs {name:?}"
            );
        }
    }

    fn hook(enabled: bool, actions: &[WebhookAction], glob: &str) -> Webhook {
        Webhook {
            id: 1,
            namespace_id: 1,
            name: "n".into(),
            url: "http://example.com".into(),
            request_method: RequestMethod::Post,
            content_type: BodyType::Json,
            username: String::new(),
            password_set: false,
            enabled,
            actions: actions.to_vec(),
            repository_glob: glob.into(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn which_events_fire_a_webhook() {
        use WebhookAction::{Delete, Push};
        let table = [
            (true, &[Push, Delete][..], "*", "push", "app", true),
            (true, &[Push, Delete][..], "*", "delete", "app", true),
            (true, &[Push, Delete][..], "*", "pull", "app", false),
            (true, &[Push, Delete][..], "*", "mount", "app", false),
            (false, &[Push, Delete][..], "*", "push", "app", false),
            (true, &[Push][..], "*", "delete", "app", false),
            (true, &[Delete][..], "*", "delete", "app", true),
            (true, &[Push][..], "web*", "push", "app", false),
            (true, &[Push][..], "web*", "push", "web/front", true),
        ];
        for (enabled, actions, glob, action, repo, expected) in table {
            assert_eq!(
                hook(enabled, actions, glob).fires_on(action, repo),
                expected,
                "{enabled} {actions:?} {glob} {action} {repo}"
            );
        }
    }

    #[test]
    fn stored_texts_round_trip() {
        use WebhookAction::{Delete, Push};
        for actions in [vec![Push], vec![Delete], vec![Push, Delete]] {
            assert_eq!(parse_actions(&format_actions(&actions)), actions);
        }
        assert_eq!(parse_actions("push, bogus,delete"), vec![Push, Delete]);
        for &m in RequestMethod::ALL {
            assert_eq!(RequestMethod::parse(m.as_str()), Some(m));
        }
        for &b in BodyType::ALL {
            assert_eq!(BodyType::parse(b.as_str()), Some(b));
        }
        assert_eq!(RequestMethod::parse("PUT"), None);
    }

    #[test]
    fn input_checks() {
        use WebhookAction::{Delete, Push};
        assert_eq!(name_problem("hook"), None);
        assert!(name_problem("  ").is_some());
        assert!(name_problem(&"x".repeat(256)).is_some());
        assert_eq!(glob_problem("*"), None);
        assert!(glob_problem("").is_some());
        assert!(glob_problem("a b").is_some());
        assert_eq!(actions_problem(&[Push, Delete]), None);
        assert!(actions_problem(&[]).is_some());
        assert!(actions_problem(&[Push, Push]).is_some());
    }
}
