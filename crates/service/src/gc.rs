//! The garbage collector (`delete.garbage_collector.*`): deletes old tags, keeping the
//! newest `keep_latest` of **each repository** and anything pulled within the window.
//! It deletes manifests in the registry; blob space comes back only when the registry's
//! own `garbage-collect` runs.

use crate::auth::Authenticated;
use crate::background::JobOutcome;
use crate::inventory::{SYSTEM_ACTOR, registry_client};
use portcullis_domain::inventory::{GcRules, GcTag, gc_select};
use portcullis_domain::model::Id;
use portcullis_domain::{Error, Result};
use portcullis_registry::inventory_client::ClientError;
use portcullis_storage::Actor;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub older_than_days: i64,
    pub keep_latest: usize,
    /// Only tags whose name matches; `None`: every tag.
    pub tag: Option<regex::Regex>,
    pub dry_run: bool,
}

/// One deleted (or, dry, doomed) manifest: `repo` and the tags that pointed at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcDeletion {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// Why it could not be deleted, if it could not.
    pub error: Option<String>,
}

crate::service! {
    /// Garbage collection of old tags.
    GcService
}

impl GcService {
    /// The configured rules.
    pub fn configured(&self) -> Result<GcOptions> {
        let gc = &self.ctx.config.delete.garbage_collector;
        let tag = match gc.tag.trim() {
            "" => None,
            re => Some(
                regex::Regex::new(re)
                    .map_err(|e| Error::invalid("delete.garbage_collector.tag", e.to_string()))?,
            ),
        };
        Ok(GcOptions {
            older_than_days: gc.older_than,
            keep_latest: usize::try_from(gc.keep_latest).unwrap_or(0),
            tag,
            dry_run: false,
        })
    }

    pub(crate) async fn run_job(&self) -> JobOutcome {
        if !self.ctx.config.delete.garbage_collector.enabled {
            return JobOutcome::Done;
        }
        let options = match self.configured() {
            Ok(o) => o,
            Err(e) => return JobOutcome::Fail(e.to_string()),
        };
        match self.collect(None, &options).await {
            Ok(deleted) => {
                if !deleted.is_empty() {
                    tracing::info!(manifests = deleted.len(), "garbage collector deleted tags");
                }
                JobOutcome::Done
            }
            Err(e) => JobOutcome::Retry(e.to_string()),
        }
    }

    /// Runs the collector over every registry (or reports what it would delete).
    pub async fn collect(
        &self,
        actor: Option<&Authenticated>,
        options: &GcOptions,
    ) -> Result<Vec<GcDeletion>> {
        if let Some(a) = actor {
            a.require_admin_to_change()?;
        }
        let store = &self.ctx.store;
        let now = self.ctx.clock.now();
        let rules = GcRules {
            older_than_days: options.older_than_days,
            keep_latest: options.keep_latest,
        };
        let matches = |name: &str| options.tag.as_ref().is_none_or(|re| re.is_match(name));
        let system = Actor {
            user_id: None,
            name: SYSTEM_ACTOR.to_owned(),
        };
        let mut out = Vec::new();
        for registry in store.list_registries().await? {
            let rows = store.inventory_of_registry(registry.id).await?;
            let names: BTreeMap<Id, (String, Id, String)> = rows
                .iter()
                .map(|r| {
                    (
                        r.repository_id,
                        (r.full_name.clone(), r.namespace_id, r.repository.clone()),
                    )
                })
                .collect();
            let mut by_repository: BTreeMap<Id, Vec<GcTag>> = BTreeMap::new();
            let mut tag_names: BTreeMap<Id, (String, String)> = BTreeMap::new();
            for t in store.tags_of_registry(registry.id).await? {
                tag_names.insert(t.id, (t.name.clone(), t.digest.clone()));
                by_repository
                    .entry(t.repository_id)
                    .or_default()
                    .push(GcTag {
                        id: t.id,
                        name: t.name,
                        digest: t.digest,
                        pushed_at: t.pushed_at,
                        pulled_at: t.pulled_at,
                    });
            }
            let client = if options.dry_run {
                None
            } else {
                Some(registry_client(&self.ctx, &registry)?)
            };
            for (repository_id, tags) in by_repository {
                let Some((full_name, namespace_id, repository)) = names.get(&repository_id) else {
                    continue;
                };
                let mut digests: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for id in gc_select(&tags, rules, now, &matches) {
                    if let Some((name, digest)) = tag_names.get(&id) {
                        digests
                            .entry(digest.clone())
                            .or_default()
                            .push(name.clone());
                    }
                }
                for (digest, tags) in digests {
                    let mut deletion = GcDeletion {
                        repository: full_name.clone(),
                        digest: digest.clone(),
                        tags,
                        error: None,
                    };
                    if let Some(client) = &client {
                        match client.delete_manifest(full_name, &digest).await {
                            // Gone from the registry already: the inventory follows.
                            Ok(()) | Err(ClientError::NotFound(_)) => {
                                store
                                    .delete_tags_by_digest(
                                        *namespace_id,
                                        repository,
                                        &digest,
                                        &system,
                                        None,
                                        self.ctx.clock.now(),
                                    )
                                    .await?;
                            }
                            Err(e) => deletion.error = Some(e.to_string()),
                        }
                    }
                    out.push(deletion);
                }
            }
        }
        Ok(out)
    }
}
