//! The registry token scope grammar: `type[(class)]:name:action[,action…]`.
//!
//! A `scope` query parameter may repeat and each value may hold several scopes separated
//! by spaces (the registry's own challenge does that for cross-repository mounts). The
//! name may itself contain `:` (a `host:port` prefix), so the type is split off from the
//! left and the actions from the right.

use serde::Serialize;

/// Resource types this token service understands. Anything else is an error (401), as
/// in Portus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    Repository,
    Registry,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Repository => "repository",
            ResourceType::Registry => "registry",
        }
    }
}

/// A requested or granted action. Unknown requested actions are kept as
/// [`Action::Other`] so the policy can drop them silently (never an error).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Pull,
    Push,
    Delete,
    /// `*`: everything. skopeo asks for it to delete; the catalog needs it literally.
    All,
    Other(String),
}

impl Action {
    pub fn parse(s: &str) -> Self {
        match s {
            "pull" => Action::Pull,
            "push" => Action::Push,
            "delete" => Action::Delete,
            "*" => Action::All,
            other => Action::Other(other.to_owned()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
            Action::Other(s) => s,
        }
    }
}

/// One parsed scope. Duplicates of the same (type, name) are merged by [`parse_scopes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub resource_type: ResourceType,
    pub name: String,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("malformed scope {0:?}: expected type:name:actions")]
    Malformed(String),
    #[error("scope type {0:?} is not handled")]
    UnknownType(String),
}

/// Parses one `type[(class)]:name:actions` item.
pub fn parse_scope(item: &str) -> Result<Scope, ScopeError> {
    let malformed = || ScopeError::Malformed(item.to_owned());
    let (type_part, rest) = item.split_once(':').ok_or_else(malformed)?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(malformed)?;
    if name.is_empty() {
        return Err(malformed());
    }
    // The deprecated class suffix, e.g. `repository(plugin)`, is accepted and ignored.
    let base_type = match type_part.split_once('(') {
        Some((base, class)) if class.ends_with(')') => base,
        Some(_) => return Err(malformed()),
        None => type_part,
    };
    let resource_type = match base_type {
        "repository" => ResourceType::Repository,
        "registry" => ResourceType::Registry,
        other => return Err(ScopeError::UnknownType(other.to_owned())),
    };
    let mut parsed = Vec::new();
    for a in actions.split(',').filter(|a| !a.is_empty()) {
        let a = Action::parse(a);
        if !parsed.contains(&a) {
            parsed.push(a);
        }
    }
    Ok(Scope {
        resource_type,
        name: name.to_owned(),
        actions: parsed,
    })
}

/// Parses every `scope` parameter value (each may hold several space-separated scopes)
/// and merges duplicates of the same (type, name), keeping the order of first appearance.
pub fn parse_scopes<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Scope>, ScopeError> {
    let mut out: Vec<Scope> = Vec::new();
    for value in values {
        for item in value.split(' ').filter(|s| !s.is_empty()) {
            let scope = parse_scope(item)?;
            match out
                .iter_mut()
                .find(|s| s.resource_type == scope.resource_type && s.name == scope.name)
            {
                Some(existing) => {
                    for a in scope.actions {
                        if !existing.actions.contains(&a) {
                            existing.actions.push(a);
                        }
                    }
                }
                None => out.push(scope),
            }
        }
    }
    Ok(out)
}

/// The namespace part of a repository name: the first path segment when the name has a
/// `/`, otherwise `None`, meaning the registry's global namespace.
pub fn namespace_of(repository: &str) -> Option<&str> {
    repository.split_once('/').map(|(ns, _)| ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    fn repo(name: &str, actions: Vec<Action>) -> Scope {
        Scope {
            resource_type: ResourceType::Repository,
            name: name.into(),
            actions,
        }
    }

    #[test]
    fn parses_single_scopes() {
        let table: Vec<(&str, Result<Scope, ScopeError>)> = vec![
            ("repository:busybox:pull", Ok(repo("busybox", vec![Pull]))),
            (
                "repository:ns/repo:pull,push",
                Ok(repo("ns/repo", vec![Pull, Push])),
            ),
            (
                "repository:ns/a/b:push,pull",
                Ok(repo("ns/a/b", vec![Push, Pull])),
            ),
            ("repository:ns/repo:*", Ok(repo("ns/repo", vec![All]))),
            (
                "repository:ns/repo:delete",
                Ok(repo("ns/repo", vec![Delete])),
            ),
            (
                "repository:ns/repo:pull,fork",
                Ok(repo("ns/repo", vec![Pull, Other("fork".into())])),
            ),
            (
                "repository:ns/repo:pull,pull",
                Ok(repo("ns/repo", vec![Pull])),
            ),
            ("repository:ns/repo:", Ok(repo("ns/repo", vec![]))),
            ("repository(plugin):ns/p:pull", Ok(repo("ns/p", vec![Pull]))),
            (
                "repository:localhost:5000/ns/repo:pull",
                Ok(repo("localhost:5000/ns/repo", vec![Pull])),
            ),
            (
                "registry:catalog:*",
                Ok(Scope {
                    resource_type: ResourceType::Registry,
                    name: "catalog".into(),
                    actions: vec![All],
                }),
            ),
            (
                "whale:foo,bar",
                Err(ScopeError::Malformed("whale:foo,bar".into())),
            ),
            (
                "repository",
                Err(ScopeError::Malformed("repository".into())),
            ),
            (
                "repository::pull",
                Err(ScopeError::Malformed("repository::pull".into())),
            ),
            (
                "repository(plugin:ns:pull",
                Err(ScopeError::Malformed("repository(plugin:ns:pull".into())),
            ),
            ("lala:x:y", Err(ScopeError::UnknownType("lala".into()))),
        ];
        for (input, expected) in table {
            assert_eq!(parse_scope(input), expected, "{input}");
        }
    }

    #[test]
    fn merges_repeated_and_space_separated_scopes() {
        let scopes = parse_scopes([
            "repository:busybox:push",
            "repository:busybox:pull repository:other/src:pull",
        ])
        .unwrap();
        assert_eq!(
            scopes,
            vec![
                repo("busybox", vec![Push, Pull]),
                repo("other/src", vec![Pull])
            ]
        );
        assert_eq!(parse_scopes(["  "]).unwrap(), vec![]);
        assert!(parse_scopes(["repository:a:pull", "bad"]).is_err());
    }

    #[test]
    fn namespace_is_the_first_segment() {
        assert_eq!(namespace_of("busybox"), None);
        assert_eq!(namespace_of("ns/repo"), Some("ns"));
        assert_eq!(namespace_of("ns/a/b"), Some("ns"));
    }
}
