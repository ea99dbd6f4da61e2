//! Loading and validation. The known key tree is the serialized default [`Config`], so
//! adding a field to the model is all it takes to make a key (and its environment
//! variable) known.

use crate::model::Config;
use serde_norway::{Mapping, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A loaded configuration with what the operator should be told about it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    /// Unknown or not-yet-effective keys; printed at startup.
    pub warnings: Vec<String>,
    /// Where each key's value came from ("default", "file …", "environment …").
    pub sources: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path} is not valid YAML: {reason}")]
    Parse { path: String, reason: String },
    #[error("config key {key} = {value:?} (from {source_}): {expected}")]
    BadValue {
        key: String,
        value: String,
        source_: String,
        expected: String,
    },
    #[error("{var}: cannot read secret file {path}: {reason}")]
    SecretFile {
        var: String,
        path: String,
        reason: String,
    },
    #[error("{var}={value}: {reason}")]
    Environment {
        var: String,
        value: String,
        reason: String,
    },
}

/// Portus keys that are understood but whose feature is not built yet: loading a Portus
/// file must not drown the operator in "unknown key" warnings, but must not pretend
/// either.
const PORTUS_KEYS_NOT_YET_EFFECTIVE: &[&str] = &[
    "gravatar",
    // OpenID 2.0, which Google, Yahoo and the rest retired years ago.
    "oauth.open_id",
    "check_ssl_usage",
    "security",
];

/// Environment variables that are not config keys, by exact name.
const RESERVED_ENV: &[&str] = &[
    "PORTCULLIS_CONFIG",
    "PORTCULLIS_LOG",
    SECRETS_DIR_ENV,
    "PORTUS_BACKGROUND",
];
/// Prefixes of variables that are not config keys: the tests' own, and `PORTUS_DB_`,
/// which are composed into `database.url` ([`portus_database_url`]).
const RESERVED_ENV_PREFIXES: &[&str] = &["PORTCULLIS_TEST_", "PORTUS_DB_"];

/// The folder whose files are read as environment variables of their name (the image
/// sets `/secrets`): `/secrets/PORTCULLIS_DATABASE_URL` counts as
/// `PORTCULLIS_DATABASE_URL_FILE=/secrets/PORTCULLIS_DATABASE_URL`, and `token.key` /
/// `token.crt` there are the signing key and certificate unless configured otherwise.
pub const SECRETS_DIR_ENV: &str = "PORTCULLIS_SECRETS_DIR";

/// Portus environment names that do not follow the key path.
const PORTUS_ALIASES: &[(&str, &str)] = &[
    ("PORTUS_KEY_PATH", "token.key_path"),
    ("PORTUS_PUMA_TLS_CERT", "server.tls.cert_path"),
    ("PORTUS_PUMA_TLS_KEY", "server.tls.key_path"),
    ("PORTUS_PUMA_HOST", "server.listen"),
];

/// Variables of Portus's image that Portcullis does not need, and why; each set one is
/// reported once at start.
const PORTUS_NOT_NEEDED: &[(&str, &str)] = &[
    (
        "PORTUS_SECRET_KEY_BASE",
        "sessions are random tokens stored in the database",
    ),
    (
        "PORTUS_PASSWORD",
        "there is no hidden portus user; Portcullis signs its own registry tokens",
    ),
    (
        "PORTUS_PORTUS_PASSWORD",
        "there is no hidden portus user; Portcullis signs its own registry tokens",
    ),
    (
        "RAILS_SERVE_STATIC_FILES",
        "the binary serves its own assets",
    ),
    ("RAILS_ENV", "there is one mode"),
    ("PORTUS_PUMA_WORKERS", "one process serves on every core"),
    (
        "PORTUS_PUMA_MAX_THREADS",
        "one process serves on every core",
    ),
    (
        "PORTUS_DB_TIMEOUT",
        "connections are retried per database.wait_seconds",
    ),
    ("PORTUS_INIT_COMMAND", "run the portcullis command instead"),
];

/// Loads `path`, or `./config.yml` when no path is given and that file exists, then
/// applies the environment.
pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Loaded, ConfigError> {
    let default_path = Path::new("config.yml");
    let chosen = match path {
        Some(p) => Some(p),
        None if default_path.exists() => Some(default_path),
        None => None,
    };
    match chosen {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                path: p.display().to_string(),
                reason: e.to_string(),
            })?;
            load_from_str(&text, &p.display().to_string(), env)
        }
        None => load_from_str("", "", env),
    }
}

/// Loads from YAML text (`origin` names it in messages) and the environment.
pub fn load_from_str(
    yaml: &str,
    origin: &str,
    env: &HashMap<String, String>,
) -> Result<Loaded, ConfigError> {
    let env = &with_secrets_dir(env)?;
    let mut tree = serde_norway::to_value(Config::default()).map_err(|e| ConfigError::Parse {
        path: "defaults".into(),
        reason: e.to_string(),
    })?;
    let mut leaves = Vec::new();
    collect_leaves(&tree, &mut Vec::new(), &mut leaves);
    let mut sources: BTreeMap<String, String> = leaves
        .iter()
        .map(|l| (l.join("."), "default".to_owned()))
        .collect();
    let mut warnings = Vec::new();

    if !yaml.trim().is_empty() {
        let user: Value = serde_norway::from_str(yaml).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            reason: e.to_string(),
        })?;
        let source = format!("file {origin}");
        match user {
            Value::Mapping(m) => merge(
                &mut tree,
                &m,
                &mut Vec::new(),
                &source,
                &mut sources,
                &mut warnings,
            )?,
            Value::Null => {}
            other => {
                return Err(ConfigError::Parse {
                    path: origin.to_owned(),
                    reason: format!("expected a mapping at the top, found {}", kind(&other)),
                });
            }
        }
    }

    apply_env(&mut tree, &leaves, env, &mut sources, &mut warnings)?;
    if let Some((url, source)) = portus_database_url(env, &mut warnings)? {
        // A Portcullis variable for the URL wins, as everywhere.
        if !sources["database.url"].starts_with("environment PORTCULLIS_") {
            set_leaf(&mut tree, &key("database.url"), Value::String(url));
            sources.insert("database.url".into(), source);
        }
    }
    if let Some(pool) = env.get("PORTUS_DB_POOL")
        && sources["database.pool"] == "default"
    {
        let n = pool
            .trim()
            .parse::<i64>()
            .map_err(|_| ConfigError::Environment {
                var: "PORTUS_DB_POOL".into(),
                value: pool.clone(),
                reason: "expected a whole number".into(),
            })?;
        set_leaf(&mut tree, &key("database.pool"), Value::Number(n.into()));
        sources.insert("database.pool".into(), "environment PORTUS_DB_POOL".into());
    }
    if let Some(dir) = env.get(SECRETS_DIR_ENV) {
        for (leaf, file) in [
            ("token.key_path", "token.key"),
            ("token.cert_path", "token.crt"),
        ] {
            let path = Path::new(dir).join(file);
            if sources[leaf] == "default" && path.is_file() {
                let text = path.display().to_string();
                set_leaf(&mut tree, &key(leaf), Value::String(text));
                sources.insert(leaf.into(), format!("{SECRETS_DIR_ENV} {dir}"));
            }
        }
    }
    for (var, why) in PORTUS_NOT_NEEDED {
        let file = format!("{var}_FILE");
        if env.contains_key(*var) || env.contains_key(&file) {
            warnings.push(format!(
                "environment variable {var} is not needed by Portcullis ({why}); ignored"
            ));
        }
    }

    // Typed values (enums, IP networks) are parsed here, once; a bad one is reported
    // like any other bad value, naming the key, the value and its source.
    let config: Config = serde_path_to_error::deserialize(&tree)
        .map_err(|e| typed_value_error(&tree, &sources, origin, &e))?;
    validate(&config, &sources)?;
    Ok(Loaded {
        config,
        warnings,
        sources,
    })
}

fn key(dotted: &str) -> Vec<String> {
    dotted.split('.').map(str::to_owned).collect()
}

/// `env` plus `<NAME>_FILE` for every file in [`SECRETS_DIR_ENV`] named like a
/// variable (`PORTCULLIS_…`, `PORTUS_…`), unless `<NAME>` or `<NAME>_FILE` is set.
fn with_secrets_dir(env: &HashMap<String, String>) -> Result<HashMap<String, String>, ConfigError> {
    let mut env = env.clone();
    let Some(dir) = env.get(SECRETS_DIR_ENV).cloned() else {
        return Ok(env);
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        // The image sets the variable; a container without the folder mounted is fine.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(env),
        Err(e) => {
            return Err(ConfigError::Environment {
                var: SECRETS_DIR_ENV.into(),
                value: dir,
                reason: format!("cannot read the folder: {e}"),
            });
        }
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_variable = (name.starts_with("PORTCULLIS_") || name.starts_with("PORTUS_"))
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        // Kubernetes mounts secrets as symbolic links: follow them.
        if !is_variable || !entry.path().is_file() {
            continue;
        }
        let file_var = format!("{name}_FILE");
        if !env.contains_key(&name) && !env.contains_key(&file_var) {
            env.insert(file_var, entry.path().display().to_string());
        }
    }
    Ok(env)
}

/// Portus's image named its database by parts (`PORTUS_DB_ADAPTER`, `_HOST`, `_PORT`,
/// `_DATABASE`, `_USERNAME`, `_PASSWORD`, each also as `_FILE`); they are composed into
/// a PostgreSQL URL with Portus's defaults. Portus's default adapter, `mysql2`, is
/// refused: Portcullis runs on PostgreSQL or SQLite. `None` when none is set.
fn portus_database_url(
    env: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Option<(String, String)>, ConfigError> {
    const PARTS: [&str; 6] = [
        "ADAPTER", "HOST", "PORT", "DATABASE", "USERNAME", "PASSWORD",
    ];
    let mut given = HashMap::new();
    for part in PARTS {
        let var = format!("PORTUS_DB_{part}");
        let file_var = format!("{var}_FILE");
        let value = match (env.get(&var), env.get(&file_var)) {
            (_, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError::SecretFile {
                    var: file_var.clone(),
                    path: path.clone(),
                    reason: e.to_string(),
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            (Some(value), None) => value.clone(),
            (None, None) => continue,
        };
        given.insert(part, value);
    }
    if given.is_empty() {
        return Ok(None);
    }
    let adapter = given.get("ADAPTER").map_or("mysql2", String::as_str);
    match adapter {
        "postgresql" | "postgres" | "postgis" => {}
        "mysql2" | "mysql" => {
            return Err(ConfigError::Environment {
                var: "PORTUS_DB_ADAPTER".into(),
                value: adapter.into(),
                reason: "Portcullis runs on PostgreSQL or SQLite, not MariaDB/MySQL \
                         (mysql2 is Portus's default when the variable is unset); set \
                         PORTUS_DB_ADAPTER=postgresql for a PostgreSQL database (Portus's \
                         own data: see \"Moving from Portus\" in docs/OPERATIONS.md)"
                    .into(),
            });
        }
        other => {
            return Err(ConfigError::Environment {
                var: "PORTUS_DB_ADAPTER".into(),
                value: other.into(),
                reason: "expected postgresql".into(),
            });
        }
    }
    if env.contains_key("PORTUS_DB_SOCKET") {
        warnings.push(
            "environment variable PORTUS_DB_SOCKET is not supported; ignored (set PORTUS_DB_HOST, \
             or PORTCULLIS_DATABASE_URL with ?host=/socket/dir)"
                .into(),
        );
    }
    let part = |name: &str, default: &str| {
        given
            .get(name)
            .map_or_else(|| default.to_owned(), |v| v.trim().to_owned())
    };
    let port = part("PORT", "5432");
    if port.parse::<u16>().is_err() {
        return Err(ConfigError::Environment {
            var: "PORTUS_DB_PORT".into(),
            value: port,
            reason: "expected a port number".into(),
        });
    }
    let encode = |s: &str| url_escape(s);
    let user = encode(&part("USERNAME", "root"));
    let password = given.get("PASSWORD").map(|p| encode(p)).unwrap_or_default();
    let credentials = if password.is_empty() {
        user
    } else {
        format!("{user}:{password}")
    };
    let url = format!(
        "postgres://{credentials}@{}:{port}/{}",
        part("HOST", "localhost"),
        encode(&part("DATABASE", "portus_production"))
    );
    let mut names: Vec<_> = given.keys().map(|p| format!("PORTUS_DB_{p}")).collect();
    names.sort();
    Ok(Some((url, format!("environment {}", names.join(", ")))))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn collect_leaves(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                if let Some(k) = k.as_str() {
                    path.push(k.to_owned());
                    collect_leaves(child, path, out);
                    path.pop();
                }
            }
        }
        _ => out.push(path.clone()),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// Converts `given` to the type of `default`, or explains what was expected.
fn coerce(default: &Value, given: &Value) -> Result<Value, String> {
    match (default, given) {
        (Value::Bool(_), Value::Bool(b)) => Ok(Value::Bool(*b)),
        (Value::Bool(_), Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("expected true or false".into()),
        },
        (Value::Bool(_), _) => Err("expected true or false".into()),
        (Value::Number(_), Value::Number(n)) if n.is_i64() => Ok(given.clone()),
        (Value::Number(_), Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(|n| Value::Number(n.into()))
            .map_err(|_| "expected a whole number".into()),
        (Value::Number(_), _) => Err("expected a whole number".into()),
        (Value::String(_), Value::Mapping(_) | Value::Sequence(_)) => {
            Err("expected a single value".into())
        }
        (Value::String(_), v) => Ok(Value::String(scalar_text(v))),
        // Lists: a YAML list of single values, or one comma-separated string (which is
        // how the environment gives them).
        (Value::Sequence(_), Value::Sequence(items)) => items
            .iter()
            .map(|item| match item {
                Value::Mapping(_) | Value::Sequence(_) => {
                    Err("expected a list of single values".to_owned())
                }
                v => Ok(Value::String(scalar_text(v))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Sequence),
        (Value::Sequence(_), Value::Mapping(_)) => Err("expected a list".into()),
        (Value::Sequence(_), v) => Ok(Value::Sequence(
            scalar_text(v)
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        )),
        _ => Err("unsupported value".into()),
    }
}

/// A value that has the right shape but not a valid one for its type (an enum outside
/// its set, a malformed IP network), found while deserializing the merged tree.
fn typed_value_error(
    tree: &Value,
    sources: &BTreeMap<String, String>,
    origin: &str,
    err: &serde_path_to_error::Error<serde_norway::Error>,
) -> ConfigError {
    use serde_path_to_error::Segment;
    let mut key: Vec<String> = Vec::new();
    let mut node = Some(tree);
    for segment in err.path() {
        node = match segment {
            Segment::Map { key: k } => {
                key.push(k.clone());
                node.and_then(|n| n.as_mapping()?.get(k.as_str()))
            }
            Segment::Seq { index } => {
                // An entry of a list of mappings: `rules[2].bot`.
                let structured = token_exchange::STRUCTURED_LISTS.contains(&key.join(".").as_str());
                if let Some(last) = key.last_mut().filter(|_| structured) {
                    last.push_str(&format!("[{index}]"));
                }
                node.and_then(|n| n.as_sequence()?.get(*index))
            }
            Segment::Enum { .. } | Segment::Unknown => node,
        };
    }
    let reason = err.inner().to_string();
    if key.is_empty() {
        return ConfigError::Parse {
            path: origin.to_owned(),
            reason,
        };
    }
    let key = key.join(".");
    // A list entry's value came from wherever the list came from.
    let list = key.split('[').next().unwrap_or_default();
    let source = sources
        .get(&key)
        .or_else(|| sources.get(list))
        .cloned()
        .unwrap_or_else(|| "default".into());
    // Never echo what may be a secret read from a file.
    let value = if source.starts_with("environment ") && source.ends_with("_FILE") {
        "<file content>".to_owned()
    } else {
        node.map(scalar_text).unwrap_or_default()
    };
    ConfigError::BadValue {
        key,
        value,
        source_: source,
        expected: expectation(&reason),
    }
}

/// serde's "unknown variant `x`, expected one of `a`, `b`" → "expected one of a, b";
/// other messages (ours already read "expected …") unchanged.
fn expectation(reason: &str) -> String {
    match reason.split_once(", expected ") {
        Some((head, tail)) if head.starts_with("unknown variant") => {
            format!("expected {}", tail.replace('`', ""))
        }
        _ => reason.to_owned(),
    }
}

fn merge(
    target: &mut Value,
    user: &Mapping,
    path: &mut Vec<String>,
    source: &str,
    sources: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (k, given) in user {
        let key = scalar_text(k);
        path.push(key.clone());
        let dotted = path.join(".");
        let slot = target.as_mapping_mut().and_then(|m| m.get_mut(k));
        match slot {
            None => warnings.push(unknown_key_warning(&dotted, source)),
            Some(slot @ Value::Mapping(_)) => match given {
                Value::Mapping(m) => merge(slot, m, path, source, sources, warnings)?,
                Value::Null => {}
                other => {
                    return Err(ConfigError::BadValue {
                        key: dotted,
                        value: scalar_text(other),
                        source_: source.to_owned(),
                        expected: "expected a mapping of sub-keys".into(),
                    });
                }
            },
            // A list of mappings (token exchange rules) is taken as written; its
            // entries are typed and checked when the tree is deserialized and validated.
            Some(slot @ Value::Sequence(_))
                if token_exchange::STRUCTURED_LISTS.contains(&dotted.as_str()) =>
            {
                *slot = token_exchange::structured_list(&dotted, given, source)?;
                sources.insert(dotted, source.to_owned());
            }
            Some(slot) => {
                let value = coerce(slot, given).map_err(|expected| ConfigError::BadValue {
                    key: dotted.clone(),
                    value: scalar_text(given),
                    source_: source.to_owned(),
                    expected,
                })?;
                *slot = value;
                sources.insert(dotted, source.to_owned());
            }
        }
        path.pop();
    }
    Ok(())
}

fn unknown_key_warning(dotted: &str, source: &str) -> String {
    let portus = PORTUS_KEYS_NOT_YET_EFFECTIVE
        .iter()
        .any(|p| dotted == *p || dotted.starts_with(&format!("{p}.")));
    if portus {
        format!(
            "config key {dotted} ({source}) is a Portus setting Portcullis does not act on yet; ignored"
        )
    } else {
        format!("unknown config key {dotted} ({source}); ignored")
    }
}

fn env_name(leaf: &[String]) -> String {
    leaf.join("_").to_ascii_uppercase()
}

fn set_leaf(tree: &mut Value, leaf: &[String], value: Value) {
    let mut node = tree;
    for part in leaf {
        let Some(next) = node
            .as_mapping_mut()
            .and_then(|m| m.get_mut(Value::String(part.clone())))
        else {
            return;
        };
        node = next;
    }
    *node = value;
}

fn get_leaf<'a>(tree: &'a Value, leaf: &[String]) -> Option<&'a Value> {
    leaf.iter().try_fold(tree, |node, part| {
        node.as_mapping()?.get(Value::String(part.clone()))
    })
}

fn apply_env(
    tree: &mut Value,
    leaves: &[Vec<String>],
    env: &HashMap<String, String>,
    sources: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let by_name: HashMap<String, &Vec<String>> = leaves.iter().map(|l| (env_name(l), l)).collect();
    let alias = |var: &str| -> Option<Vec<String>> {
        PORTUS_ALIASES
            .iter()
            .find(|(name, _)| *name == var)
            .map(|(_, path)| path.split('.').map(str::to_owned).collect())
    };
    // Portus names first, so Portcullis names win when both are set; plain values before
    // `_FILE` ones within each prefix, so a secret file wins over an inline value.
    let mut vars: Vec<(&String, &String)> = env.iter().collect();
    vars.sort_by_key(|(name, _)| {
        (
            !name.starts_with("PORTUS_"),
            name.ends_with("_FILE"),
            name.to_string(),
        )
    });
    for (var, raw) in vars {
        let Some(rest) = var
            .strip_prefix("PORTCULLIS_")
            .or_else(|| var.strip_prefix("PORTUS_"))
        else {
            continue;
        };
        let not_needed = PORTUS_NOT_NEEDED
            .iter()
            .any(|(name, _)| var.strip_suffix("_FILE").unwrap_or(var) == *name);
        let reserved = RESERVED_ENV.contains(&var.as_str())
            || RESERVED_ENV_PREFIXES.iter().any(|r| var.starts_with(r));
        if not_needed || reserved {
            continue;
        }
        let (leaf, value) = match by_name
            .get(rest)
            .map(|l| (*l).clone())
            .or_else(|| alias(var))
        {
            Some(leaf) => (leaf, raw.clone()),
            None => {
                let file_target = rest.strip_suffix("_FILE").and_then(|r| {
                    by_name
                        .get(r)
                        .map(|l| (*l).clone())
                        .or_else(|| alias(var.strip_suffix("_FILE").unwrap_or_default()))
                });
                match file_target {
                    Some(leaf) => {
                        let content =
                            std::fs::read_to_string(raw).map_err(|e| ConfigError::SecretFile {
                                var: var.clone(),
                                path: raw.clone(),
                                reason: e.to_string(),
                            })?;
                        (leaf, content.trim_end_matches(['\n', '\r']).to_owned())
                    }
                    None => {
                        warnings.push(format!(
                            "environment variable {var} is not a Portcullis setting; ignored"
                        ));
                        continue;
                    }
                }
            }
        };
        let dotted = leaf.join(".");
        let source = format!("environment {var}");
        let Some(default) = get_leaf(tree, &leaf) else {
            continue;
        };
        let coerced = coerce(default, &Value::String(value.clone())).map_err(|expected| {
            ConfigError::BadValue {
                key: dotted.clone(),
                // Never echo what may be a secret read from a file.
                value: if var.ends_with("_FILE") {
                    "<file content>".into()
                } else {
                    value
                },
                source_: source.clone(),
                expected,
            }
        })?;
        set_leaf(tree, &leaf, coerced);
        sources.insert(dotted, source);
    }
    Ok(())
}

fn validate(c: &Config, sources: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let bad = |key: &str, value: &str, expected: &str| ConfigError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        source_: sources
            .get(key)
            .cloned()
            .unwrap_or_else(|| "default".into()),
        expected: expected.to_owned(),
    };
    let host_port = |v: &str| {
        v.rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    };
    if !host_port(&c.server.listen) {
        return Err(bad("server.listen", &c.server.listen, "expected host:port"));
    }
    let tls = &c.server.tls;
    if tls.cert_path.is_empty() != tls.key_path.is_empty() {
        let (missing, given) = if tls.cert_path.is_empty() {
            ("server.tls.cert_path", "server.tls.key_path")
        } else {
            ("server.tls.key_path", "server.tls.cert_path")
        };
        return Err(bad(
            missing,
            "",
            &format!("must be set too when {given} is"),
        ));
    }
    let redirect = &c.server.http_redirect_listen;
    if !redirect.is_empty() {
        if !host_port(redirect) {
            return Err(bad(
                "server.http_redirect_listen",
                redirect,
                "expected host:port",
            ));
        }
        if !tls.enabled() {
            return Err(bad(
                "server.http_redirect_listen",
                redirect,
                "needs server.tls.cert_path and server.tls.key_path (it redirects to HTTPS)",
            ));
        }
    }
    let ext = &c.server.external_url;
    if !(ext.is_empty() || ext.starts_with("http://") || ext.starts_with("https://")) {
        return Err(bad(
            "server.external_url",
            ext,
            "expected an http:// or https:// URL",
        ));
    }
    let url = &c.database.url;
    if !url.is_empty()
        && !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| url.starts_with(p))
    {
        // Only the scheme is shown: the rest may hold a password.
        let scheme = url.split(':').next().unwrap_or_default();
        return Err(bad(
            "database.url",
            &format!("{scheme}:…"),
            "expected sqlite:PATH or postgres://…",
        ));
    }
    if c.machine_fqdn.value.trim().is_empty() {
        return Err(bad(
            "machine_fqdn.value",
            "",
            "must not be empty (it is the JWT issuer)",
        ));
    }
    let positive = [
        (
            "registry.jwt_expiration_time.value",
            c.registry.jwt_expiration_time.value,
        ),
        ("registry.timeout.value", c.registry.timeout.value),
        ("registry.read_timeout.value", c.registry.read_timeout.value),
        ("registry.catalog_page.value", c.registry.catalog_page.value),
        ("pagination.per_page", c.pagination.per_page),
        (
            "security_policy.lockout_attempts",
            c.security_policy.lockout_attempts,
        ),
        (
            "security_policy.max_concurrent_password_checks",
            c.security_policy.max_concurrent_password_checks,
        ),
        (
            "security_policy.max_application_tokens",
            c.security_policy.max_application_tokens,
        ),
        (
            "security_policy.refresh_token_lifetime_days",
            c.security_policy.refresh_token_lifetime_days,
        ),
        (
            "security_policy.refresh_token_idle_days",
            c.security_policy.refresh_token_idle_days,
        ),
        (
            "security_policy.session_idle_minutes",
            c.security_policy.session_idle_minutes,
        ),
        (
            "security_policy.session_lifetime_hours",
            c.security_policy.session_lifetime_hours,
        ),
        ("background.workers", c.background.workers),
        ("background.lease_seconds", c.background.lease_seconds),
        (
            "background.sync.period_seconds",
            c.background.sync.period_seconds,
        ),
        (
            "delete.garbage_collector.older_than",
            c.delete.garbage_collector.older_than,
        ),
        ("webhooks.timeout_seconds", c.webhooks.timeout_seconds),
        ("webhooks.max_attempts", c.webhooks.max_attempts),
        ("webhooks.history", c.webhooks.history),
        ("database.pool", c.database.pool),
    ];
    for (key, v) in positive {
        if v <= 0 {
            return Err(bad(key, &v.to_string(), "expected a number greater than 0"));
        }
    }
    let non_negative = [
        ("database.wait_seconds", c.database.wait_seconds),
        (
            "security_policy.lockout_minutes",
            c.security_policy.lockout_minutes,
        ),
        (
            "security_policy.credential_cache_seconds",
            c.security_policy.credential_cache_seconds,
        ),
        (
            "security_policy.password_checks_per_minute",
            c.security_policy.password_checks_per_minute,
        ),
        ("pagination.before_after", c.pagination.before_after),
        (
            "security_policy.authorization_cache_seconds",
            c.security_policy.authorization_cache_seconds,
        ),
        (
            "delete.garbage_collector.keep_latest",
            c.delete.garbage_collector.keep_latest,
        ),
    ];
    for (key, v) in non_negative {
        if v < 0 {
            return Err(bad(key, &v.to_string(), "expected 0 or more"));
        }
    }
    let gc_tag = &c.delete.garbage_collector.tag;
    if let Err(e) = regex::Regex::new(gc_tag) {
        let reason = e.to_string();
        let last = reason.lines().last().unwrap_or_default().trim().to_owned();
        return Err(bad(
            "delete.garbage_collector.tag",
            gc_tag,
            &format!("expected a regular expression ({last})"),
        ));
    }
    validate_ldap(&c.ldap, &bad)?;
    validate_email(&c.email, &bad)?;
    validate_openid_connect(&c.oauth.openid_connect, &bad)?;
    validate_oauth_providers(&c.oauth, &bad)?;
    let o = &c.oauth;
    let any_provider = o.openid_connect.enabled
        || o.google_oauth2.enabled
        || o.github.enabled
        || o.gitlab.enabled
        || o.bitbucket.enabled;
    if !o.local_login.enabled && !any_provider && !c.ldap.enabled {
        return Err(bad(
            "oauth.local_login.enabled",
            "false",
            "expected true unless an identity provider (oauth.<provider>.enabled) or LDAP is on: nobody could sign in to the web UI",
        ));
    }
    token_exchange::validate(c, sources)?;
    let sp = &c.security_policy;
    if sp.refresh_token_idle_days > sp.refresh_token_lifetime_days {
        return Err(bad(
            "security_policy.refresh_token_idle_days",
            &sp.refresh_token_idle_days.to_string(),
            &format!(
                "expected at most security_policy.refresh_token_lifetime_days ({})",
                sp.refresh_token_lifetime_days
            ),
        ));
    }
    Ok(())
}

/// `ldap.*` when enabled: what a directory connection needs, checked at start rather
/// than at the first sign-in.
fn validate_ldap(
    l: &crate::model::Ldap,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    if !l.enabled {
        return Ok(());
    }
    if l.hostname.trim().is_empty() {
        return Err(bad(
            "ldap.hostname",
            "",
            "must be set when ldap.enabled is true",
        ));
    }
    if !(1..=65535).contains(&l.port) {
        return Err(bad(
            "ldap.port",
            &l.port.to_string(),
            "expected a port, 1 to 65535",
        ));
    }
    if l.timeout <= 0 {
        return Err(bad(
            "ldap.timeout",
            &l.timeout.to_string(),
            "expected a number of seconds greater than 0",
        ));
    }
    if l.base.trim().is_empty() {
        return Err(bad(
            "ldap.base",
            "",
            "must be set when ldap.enabled is true (where users are searched)",
        ));
    }
    let attribute = |v: &str| {
        v.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !attribute(&l.uid) {
        return Err(bad(
            "ldap.uid",
            &l.uid,
            "expected an attribute name such as uid or sAMAccountName",
        ));
    }
    let filter = l.filter.trim();
    let parenthesised = filter.starts_with('(') && filter.ends_with(')');
    if !filter.is_empty() && !parenthesised {
        return Err(bad(
            "ldap.filter",
            &l.filter,
            "expected an LDAP filter in parentheses, e.g. (objectClass=person)",
        ));
    }
    if l.authentication.enabled && l.authentication.bind_dn.trim().is_empty() {
        return Err(bad(
            "ldap.authentication.bind_dn",
            "",
            "must be set when ldap.authentication.enabled is true",
        ));
    }
    let version = &l.encryption.options.ssl_version;
    if !matches!(version.as_str(), "TLSv1_2" | "TLSv1_3") {
        return Err(bad(
            "ldap.encryption.options.ssl_version",
            version,
            "expected TLSv1_2 or TLSv1_3 (older versions are not offered)",
        ));
    }
    if l.guess_email.enabled && !l.guess_email.attr.is_empty() && !attribute(&l.guess_email.attr) {
        return Err(bad(
            "ldap.guess_email.attr",
            &l.guess_email.attr,
            "expected an attribute name such as mail",
        ));
    }
    Ok(())
}

/// `oauth.openid_connect.*` when enabled: an issuer the flow can use.
fn validate_openid_connect(
    o: &crate::model::OpenIdConnect,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    if !o.enabled {
        return Ok(());
    }
    if !provider_url_ok(&o.issuer) {
        return Err(bad(
            "oauth.openid_connect.issuer",
            &o.issuer,
            "expected an https URL without query or fragment (the provider's issuer)",
        ));
    }
    if o.identifier.trim().is_empty() {
        return Err(bad(
            "oauth.openid_connect.identifier",
            "",
            "must be set when oauth.openid_connect.enabled is true (the client id)",
        ));
    }
    Ok(())
}

/// A provider's base URL: https (http only on a loopback host, for test fakes),
/// without query or fragment.
fn provider_url_ok(value: &str) -> bool {
    let loopback = |host: &str| matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match url::Url::parse(value) {
        Ok(u) => {
            u.host_str().is_some()
                && (u.scheme() == "https"
                    || (u.scheme() == "http" && u.host_str().is_some_and(loopback)))
                && u.query().is_none()
                && u.fragment().is_none()
        }
        Err(_) => false,
    }
}

/// `oauth.{google_oauth2,github,gitlab,bitbucket}.*` when enabled: the client's
/// credentials, a usable server, restrictions that mean what they say.
fn validate_oauth_providers(
    o: &crate::model::OAuth,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    // (enabled, [(key, value) that must be set], (url key, url value))
    let providers = [
        (
            o.google_oauth2.enabled,
            "oauth.google_oauth2",
            [
                ("id", &o.google_oauth2.id),
                ("secret", &o.google_oauth2.secret),
            ],
            ("issuer", &o.google_oauth2.issuer),
        ),
        (
            o.github.enabled,
            "oauth.github",
            [
                ("client_id", &o.github.client_id),
                ("client_secret", &o.github.client_secret),
            ],
            ("server", &o.github.server),
        ),
        (
            o.gitlab.enabled,
            "oauth.gitlab",
            [
                ("application_id", &o.gitlab.application_id),
                ("secret", &o.gitlab.secret),
            ],
            ("server", &o.gitlab.server),
        ),
        (
            o.bitbucket.enabled,
            "oauth.bitbucket",
            [("key", &o.bitbucket.key), ("secret", &o.bitbucket.secret)],
            ("server", &o.bitbucket.server),
        ),
    ];
    for (enabled, prefix, required, (url_key, url)) in providers {
        if !enabled {
            continue;
        }
        for (key, value) in required {
            if value.trim().is_empty() {
                return Err(bad(
                    &format!("{prefix}.{key}"),
                    "",
                    &format!("must be set when {prefix}.enabled is true"),
                ));
            }
        }
        // Empty is the provider's public service (Portus's config.yml ships
        // `gitlab.server: ""`).
        if !url.is_empty() && !provider_url_ok(url) {
            return Err(bad(
                &format!("{prefix}.{url_key}"),
                url,
                "expected an https URL without query or fragment",
            ));
        }
    }
    // A team name alone would match a team of that name in any organization, which
    // anyone can create.
    if o.github.enabled && !o.github.team.is_empty() && o.github.organization.trim().is_empty() {
        return Err(bad(
            "oauth.github.team",
            &o.github.team,
            "needs oauth.github.organization (team names are unique only within an organization)",
        ));
    }
    Ok(())
}

/// `email.*`: addresses that parse, and an SMTP setup that can work and never sends
/// credentials in clear to another host.
fn validate_email(
    e: &crate::model::Email,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<(), ConfigError> {
    let address = |v: &str| {
        let (local, domain) = v.rsplit_once('@').unwrap_or_default();
        !local.is_empty()
            && domain.contains('.')
            && !v.chars().any(|c| c.is_whitespace() || "<>,;\"".contains(c))
    };
    if !address(&e.from) {
        return Err(bad("email.from", &e.from, "expected an email address"));
    }
    if !e.reply_to.is_empty() && !address(&e.reply_to) {
        return Err(bad(
            "email.reply_to",
            &e.reply_to,
            "expected an email address, or empty",
        ));
    }
    if e.name.chars().any(|c| c.is_control() || "<>\"".contains(c)) {
        return Err(bad(
            "email.name",
            &e.name,
            "expected a display name without quotes, angle brackets or control characters",
        ));
    }
    let s = &e.smtp;
    if !s.enabled {
        if e.sendmail.location.trim().is_empty() {
            return Err(bad(
                "email.sendmail.location",
                "",
                "must name the sendmail program when email.smtp.enabled is false",
            ));
        }
        return Ok(());
    }
    if s.address.trim().is_empty() {
        return Err(bad(
            "email.smtp.address",
            "",
            "must be set when email.smtp.enabled is true",
        ));
    }
    if !(1..=65535).contains(&s.port) {
        return Err(bad(
            "email.smtp.port",
            &s.port.to_string(),
            "expected a port, 1 to 65535",
        ));
    }
    if s.user_name.is_empty() {
        return Ok(());
    }
    if s.authentication == crate::model::SmtpAuthentication::CramMd5 {
        return Err(bad(
            "email.smtp.authentication",
            "cram_md5",
            "cram_md5 is not offered: use plain or login (sent over TLS only)",
        ));
    }
    let encrypted = s.ssl_tls != crate::model::SmtpImplicitTls::None || s.enable_starttls_auto;
    let loopback = matches!(s.address.as_str(), "localhost" | "127.0.0.1" | "::1");
    if !encrypted && !loopback {
        return Err(bad(
            "email.smtp.enable_starttls_auto",
            "false",
            "expected true (or email.smtp.ssl_tls: tls) when email.smtp.user_name is set: \
             the password would cross the network in clear",
        ));
    }
    Ok(())
}

impl Config {
    /// The effective configuration as YAML with secrets masked (`config show`).
    pub fn to_masked_yaml(&self) -> String {
        let mut c = self.clone();
        if !c.notifications.secret.is_empty() {
            c.notifications.secret = "********".into();
        }
        c.database.url = mask_url_password(&c.database.url);
        if !c.ldap.authentication.password.is_empty() {
            c.ldap.authentication.password = "********".into();
        }
        if !c.email.smtp.password.is_empty() {
            c.email.smtp.password = "********".into();
        }
        let oauth = &mut c.oauth;
        for secret in [
            &mut oauth.openid_connect.secret,
            &mut oauth.google_oauth2.secret,
            &mut oauth.github.client_secret,
            &mut oauth.gitlab.secret,
            &mut oauth.bitbucket.secret,
        ] {
            if !secret.is_empty() {
                *secret = "********".into();
            }
        }
        serde_norway::to_string(&c).unwrap_or_default()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:********@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
        None => url.to_owned(),
    }
}

// Token exchange (RFC 8693): its loading and checks live in load/token_exchange.rs.
mod token_exchange;

#[cfg(test)]
mod tests;
