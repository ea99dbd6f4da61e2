//! Naming rules for users, namespaces and teams, and the derivation of a personal
//! namespace name from a username (Portus's rules, so migrated installs agree).

/// Longest namespace name Portus accepted.
pub const NAMESPACE_MAX_LEN: usize = 255;
/// Longest username we accept (Portus had no explicit bound; LDAP names fit easily).
pub const USERNAME_MAX_LEN: usize = 64;
pub const PASSWORD_MIN_LEN: usize = 8;
pub const PASSWORD_MAX_LEN: usize = 128;

fn is_separator(c: char) -> bool {
    matches!(c, '.' | '_' | '-')
}

/// Docker namespace rule: `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`, at most 255 characters.
pub fn is_valid_namespace_name(name: &str) -> bool {
    if name.is_empty() || name.len() > NAMESPACE_MAX_LEN {
        return false;
    }
    let mut previous_was_separator = true; // forbids a leading separator
    for c in name.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            previous_was_separator = false;
        } else if is_separator(c) {
            if previous_was_separator {
                return false;
            }
            previous_was_separator = true;
        } else {
            return false;
        }
    }
    !previous_was_separator
}

/// Usernames: 1–64 characters of letters, digits, `.`, `_`, `-`, starting with a letter
/// or digit. `:` is excluded because HTTP Basic splits on it; `/` because it would be
/// ambiguous in repository paths.
pub fn validate_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("can't be blank");
    }
    if name.chars().count() > USERNAME_MAX_LEN {
        return Err("is too long (maximum is 64 characters)");
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || is_separator(c))
    {
        return Err(
            "can only contain letters, digits, '.', '_' and '-', and must start with a letter or digit",
        );
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < PASSWORD_MIN_LEN {
        return Err("is too short (minimum is 8 characters)");
    }
    if n > PASSWORD_MAX_LEN {
        return Err("is too long (maximum is 128 characters)");
    }
    Ok(())
}

/// A deliberately small check: one `@` with text on both sides and no whitespace. Real
/// validation is the confirmation mail, once mail exists.
pub fn is_plausible_email(email: &str) -> bool {
    let mut parts = email.splitn(2, '@');
    let (Some(local), Some(domain)) = (parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(char::is_whitespace)
}

/// Team names are free-form (Portus) but must not be blank or absurdly long.
pub fn validate_team_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("can't be blank");
    }
    if name.chars().count() > 255 {
        return Err("is too long (maximum is 255 characters)");
    }
    Ok(())
}

/// Turns a username into a valid namespace name the way Portus did: lower-case; trim
/// everything before the first and after the last letter or digit; replace invalid
/// characters with `_`; collapse runs of separators into one `_`. `None` when nothing
/// usable is left (e.g. a name made only of symbols).
pub fn namespace_name_for_username(username: &str) -> Option<String> {
    let lower = username.to_lowercase();
    if is_valid_namespace_name(&lower) {
        return Some(lower);
    }
    let is_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let first = lower.find(is_alnum)?;
    let last = lower.rfind(is_alnum)?;
    let trimmed = &lower[first..=last];
    let mut out = String::with_capacity(trimmed.len());
    let mut in_separator_run = 0usize;
    let mut run_start = 0usize;
    for c in trimmed.chars() {
        let c = if is_alnum(c) || is_separator(c) {
            c
        } else {
            '_'
        };
        if is_separator(c) {
            if in_separator_run == 0 {
                run_start = out.len();
            }
            in_separator_run += 1;
            out.push(c);
            if in_separator_run >= 2 {
                out.truncate(run_start);
                out.push('_');
            }
        } else {
            in_separator_run = 0;
            out.push(c);
        }
    }
    if out.len() > NAMESPACE_MAX_LEN {
        out.truncate(NAMESPACE_MAX_LEN);
        while out.ends_with(is_separator) {
            out.pop();
        }
    }
    is_valid_namespace_name(&out).then_some(out)
}

/// The candidates for a personal namespace, tried in order until one is free:
/// `base`, `base1`, `base2`, … (Portus appended a counter the same way).
pub fn personal_namespace_candidates(base: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(base.to_owned()).chain((1..).map(move |n| format!("{base}{n}")))
}

/// Prefix of the hidden teams Portcullis creates itself (personal and global teams);
/// users cannot name a team with it.
pub const RESERVED_TEAM_PREFIX: &str = "portus_";

/// The hidden team owning a user's personal namespaces is this prefix + the user id.
pub const PERSONAL_TEAM_PREFIX: &str = "portus_personal_";

pub fn personal_team_name(user_id: i64) -> String {
    format!("{PERSONAL_TEAM_PREFIX}{user_id}")
}

/// Name of the hidden team that owns a registry's global namespace.
pub fn global_team_name(registry_id: i64) -> String {
    format!("portus_global_team_{registry_id}")
}

/// Internal name of a registry's global namespace (displayed as the registry hostname).
pub fn global_namespace_name(registry_id: i64) -> String {
    format!("portus_global_namespace_{registry_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        let table = [
            ("alice", true),
            ("a", true),
            ("a.b-c_d", true),
            ("a1", true),
            ("Alice", false),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("a--b", false),
            ("a._b", false),
            ("a b", false),
            ("a/b", false),
            ("é", false),
        ];
        for (name, valid) in table {
            assert_eq!(is_valid_namespace_name(name), valid, "{name:?}");
        }
        assert!(is_valid_namespace_name(&"a".repeat(255)));
        assert!(!is_valid_namespace_name(&"a".repeat(256)));
    }

    #[test]
    fn usernames() {
        for ok in ["alice", "Bob.Smith", "x", "user_1", "a-b"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_x", ".x", "a:b", "a/b", "a b", "ü"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert!(validate_username(&"a".repeat(64)).is_ok());
        assert!(validate_username(&"a".repeat(65)).is_err());
    }

    #[test]
    fn passwords() {
        assert!(validate_password("1234567").is_err());
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password(&"x".repeat(128)).is_ok());
        assert!(validate_password(&"x".repeat(129)).is_err());
    }

    #[test]
    fn emails() {
        for (e, ok) in [
            ("a@b", true),
            ("a.b@example.com", true),
            ("", false),
            ("a", false),
            ("@b", false),
            ("a@", false),
            ("a@b@c", false),
            ("a b@c", false),
        ] {
            assert_eq!(is_plausible_email(e), ok, "{e}");
        }
    }

    #[test]
    fn personal_namespace_derivation() {
        let table = [
            ("alice", Some("alice")),
            ("Alice", Some("alice")),
            ("John.Smith", Some("john.smith")),
            ("__bob__", Some("bob")),
            ("a--b", Some("a_b")),
            ("a.-_b", Some("a_b")),
            ("user@example.com", Some("user_example.com")),
            ("x!!y", Some("x_y")),
            ("---", None),
            ("", None),
        ];
        for (user, expected) in table {
            assert_eq!(
                namespace_name_for_username(user).as_deref(),
                expected,
                "{user}"
            );
        }
    }

    #[test]
    fn candidates_append_a_counter() {
        let c: Vec<_> = personal_namespace_candidates("bob").take(3).collect();
        assert_eq!(c, ["bob", "bob1", "bob2"]);
    }
}
