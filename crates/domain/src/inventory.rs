//! The registry inventory: what is in the registry (repositories, tags), what happened
//! to it (received notifications, activities), the background work that keeps it true
//! (jobs), and the pure decisions of catalog sync and garbage collection.

use crate::model::Id;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: Id,
    pub namespace_id: Id,
    pub name: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One image of a tag: the only one for a single-platform image, one per entry of a
/// multi-arch index or manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub digest: String,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub id: Id,
    pub repository_id: Id,
    pub name: String,
    /// The manifest digest (`sha256:…`).
    pub digest: String,
    pub media_type: String,
    /// The config digest without `sha256:` (Portus's image id); empty for an index.
    pub image_id: String,
    /// Config plus layers; for an index, the sum over its images.
    pub size: i64,
    pub platforms: Vec<Platform>,
    pub author_id: Option<Id>,
    /// Kept when the author's account is deleted.
    pub author_name: String,
    pub pushed_at: Timestamp,
    pub pulled_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a push (or a sync) learned about a tag's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFacts {
    pub digest: String,
    pub media_type: String,
    pub image_id: String,
    pub size: i64,
    pub platforms: Vec<Platform>,
}

/// A repository with what lists show beside it, loaded in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryListing {
    pub repository: Repository,
    pub namespace_name: String,
    pub namespace_kind: crate::model::NamespaceKind,
    pub registry_id: Id,
    pub tags: i64,
    pub stars: i64,
    pub starred: bool,
}

impl RepositoryListing {
    pub fn full_name(&self) -> String {
        full_repository_name(
            self.namespace_kind,
            &self.namespace_name,
            &self.repository.name,
        )
    }
}

/// The name registry clients use: `namespace/repository`, or the bare name in the
/// global namespace.
pub fn full_repository_name(
    kind: crate::model::NamespaceKind,
    namespace: &str,
    repository: &str,
) -> String {
    if kind == crate::model::NamespaceKind::Global {
        repository.to_owned()
    } else {
        format!("{namespace}/{repository}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: Id,
    pub repository_id: Id,
    pub user_id: Option<Id>,
    pub author_name: String,
    pub body: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

// ---- Notifications ----

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum EventStatus {
        Pending = "pending",
        Done = "done",
        Failed = "failed",
        /// Blob and mount events: stored, nothing to record.
        Ignored = "ignored",
        /// From a registry Portcullis does not know (Portus dropped these silently).
        UnknownRegistry = "unknown_registry",
    }
}

/// A received registry event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent {
    pub id: Id,
    pub event_id: String,
    pub registry_id: Option<Id>,
    pub status: EventStatus,
    pub action: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub actor: Option<String>,
    pub request_host: Option<String>,
    /// The single event as the registry sent it (JSON).
    pub data: String,
    pub attempts: i64,
    pub error: Option<String>,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    pub processed_at: Option<Timestamp>,
}

/// An event to store, with the status decided at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRegistryEvent {
    pub event_id: String,
    pub registry_id: Option<Id>,
    pub status: EventStatus,
    pub action: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    pub actor: Option<String>,
    pub request_host: Option<String>,
    pub data: String,
    pub occurred_at: Timestamp,
}

// ---- Jobs ----

crate::text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum JobState {
        Queued = "queued",
        Running = "running",
        Done = "done",
        /// Gave up after `max_attempts` (or failed permanently); kept with its last error
        /// until an admin retries or cancels it.
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: Id,
    pub kind: String,
    /// JSON.
    pub payload: String,
    pub singleton: Option<String>,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: Timestamp,
    pub lease_until: Option<Timestamp>,
    pub worker: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: String,
    pub payload: String,
    pub singleton: Option<String>,
    pub max_attempts: i64,
    pub run_at: Timestamp,
}

/// Seconds to wait before attempt `attempt + 1` after `attempt` failed: exponential
/// from 2 s, capped at 10 minutes.
pub fn retry_delay_secs(attempt: i64) -> i64 {
    let exponent = attempt.clamp(1, 20) - 1;
    (2_i64 << exponent).min(600)
}

// ---- Activities ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: Id,
    /// Portus's key, e.g. `repository.push`.
    pub key: String,
    pub owner_id: Option<Id>,
    pub owner_name: String,
    pub trackable_type: String,
    pub trackable_id: Option<Id>,
    pub recipient_type: Option<String>,
    pub recipient_id: Option<Id>,
    pub namespace_id: Option<Id>,
    pub team_id: Option<Id>,
    /// Names copied when written, so history survives deletion.
    pub parameters: BTreeMap<String, serde_json::Value>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewActivity {
    pub key: String,
    pub owner_id: Option<Id>,
    pub owner_name: String,
    pub trackable_type: String,
    pub trackable_id: Option<Id>,
    pub recipient_type: Option<String>,
    pub recipient_id: Option<Id>,
    pub namespace_id: Option<Id>,
    pub team_id: Option<Id>,
    pub parameters: BTreeMap<String, serde_json::Value>,
}

// ---- Catalog sync ----

/// What the registry reported for one repository during a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTags {
    /// Tag name → manifest digest.
    Listed(BTreeMap<String, String>),
    /// The tag list (or a digest) could not be read: this repository is left alone.
    Unreadable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncPolicy {
    /// Delete what the registry no longer has (`update-delete`).
    pub delete: bool,
}

/// One change a sync makes to the inventory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncChange {
    AddTag {
        repository: String,
        tag: String,
        digest: String,
    },
    /// The tag now points at another manifest.
    MoveTag {
        repository: String,
        tag: String,
        digest: String,
    },
    DeleteTag {
        repository: String,
        tag: String,
    },
    /// No tag left in the registry and the tag list was read.
    DeleteRepository {
        repository: String,
    },
}

/// The changes that make the inventory (`local`: full repository name → tag → digest)
/// match the registry (`remote`, from a complete catalog). Safety rules, each a Portus
/// complaint: a repository whose tags could not be read is neither changed nor deleted;
/// nothing is deleted unless `policy.delete`. (An incomplete catalog never gets here:
/// the caller aborts the sync.)
pub fn plan_sync(
    local: &BTreeMap<String, BTreeMap<String, String>>,
    remote: &BTreeMap<String, RemoteTags>,
    policy: SyncPolicy,
) -> Vec<SyncChange> {
    let mut changes = Vec::new();
    for (repository, tags) in remote {
        if let RemoteTags::Listed(tags) = tags {
            changes.extend(plan_repository(
                repository,
                local.get(repository),
                tags,
                policy,
            ));
        }
    }
    changes.extend(plan_gone_repositories(
        local,
        |r| remote.contains_key(r),
        policy,
    ));
    changes
}

/// [`plan_sync`] for one listed repository: `known` is what the inventory holds of
/// it, `tags` what the registry listed (tag → digest).
pub fn plan_repository(
    repository: &str,
    known: Option<&BTreeMap<String, String>>,
    tags: &BTreeMap<String, String>,
    policy: SyncPolicy,
) -> Vec<SyncChange> {
    let mut changes = Vec::new();
    for (tag, digest) in tags {
        match known.and_then(|k| k.get(tag)) {
            None => changes.push(SyncChange::AddTag {
                repository: repository.to_owned(),
                tag: tag.clone(),
                digest: digest.clone(),
            }),
            Some(d) if d != digest => changes.push(SyncChange::MoveTag {
                repository: repository.to_owned(),
                tag: tag.clone(),
                digest: digest.clone(),
            }),
            Some(_) => {}
        }
    }
    if policy.delete
        && let Some(known) = known
    {
        for tag in known.keys().filter(|t| !tags.contains_key(*t)) {
            changes.push(SyncChange::DeleteTag {
                repository: repository.to_owned(),
                tag: tag.clone(),
            });
        }
        if tags.is_empty() {
            changes.push(SyncChange::DeleteRepository {
                repository: repository.to_owned(),
            });
        }
    }
    changes
}

/// [`plan_sync`] for the repositories the catalog no longer lists (`in_catalog`
/// false): deleted when the policy deletes.
pub fn plan_gone_repositories(
    local: &BTreeMap<String, BTreeMap<String, String>>,
    in_catalog: impl Fn(&str) -> bool,
    policy: SyncPolicy,
) -> Vec<SyncChange> {
    if !policy.delete {
        return Vec::new();
    }
    local
        .keys()
        .filter(|r| !in_catalog(r))
        .map(|repository| SyncChange::DeleteRepository {
            repository: repository.clone(),
        })
        .collect()
}

// ---- Garbage collection ----

/// The facts GC needs about one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcTag {
    pub id: Id,
    pub name: String,
    pub digest: String,
    /// When the tag last changed (pushed or moved).
    pub pushed_at: Timestamp,
    pub pulled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcRules {
    /// Tags pushed and pulled less than this long ago stay.
    pub older_than_days: i64,
    /// The newest N tags of **each repository** stay (Portus counted the whole
    /// database, and wiped whole repositories).
    pub keep_latest: usize,
}

/// The tags of one repository that GC deletes. A tag goes when it is not among the
/// repository's `keep_latest` newest, was pushed and (if ever) pulled before the
/// cutoff, and matches the name filter. Deleting is by digest in the registry, so a
/// tag is kept when another tag that stays shares its digest (deleting it would take
/// the kept tag too).
pub fn gc_select(
    tags: &[GcTag],
    rules: GcRules,
    now: Timestamp,
    name_matches: &dyn Fn(&str) -> bool,
) -> Vec<Id> {
    let cutoff = now.plus_secs(-rules.older_than_days.saturating_mul(86_400));
    let mut newest_first: Vec<&GcTag> = tags.iter().collect();
    newest_first.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at).then(b.id.cmp(&a.id)));
    let (kept, candidates) = newest_first.split_at(rules.keep_latest.min(newest_first.len()));
    let mut doomed: Vec<&GcTag> = Vec::new();
    let mut staying: BTreeSet<&str> = kept.iter().map(|t| t.digest.as_str()).collect();
    for t in candidates {
        let old = t.pushed_at < cutoff && t.pulled_at.is_none_or(|p| p < cutoff);
        if old && name_matches(&t.name) {
            doomed.push(t);
        } else {
            staying.insert(&t.digest);
        }
    }
    let mut ids: Vec<Id> = doomed
        .into_iter()
        .filter(|t| !staying.contains(t.digest.as_str()))
        .map(|t| t.id)
        .collect();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests;
