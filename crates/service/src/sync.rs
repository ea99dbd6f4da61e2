//! Catalog sync: makes the inventory match what the registry holds (Portus section 5),
//! with the safety rules Portus lacked. A catalog that cannot be read completely
//! changes nothing; a repository whose tags cannot be read is left alone; a repository
//! that received an event while the sync ran is left to the event.

use crate::auth::Authenticated;
use crate::background::{JobOutcome, SyncPayload};
use crate::inventory::{
    SYSTEM_ACTOR, manifest_facts, orphan_namespace, registry_client, split_repository,
};
use portcullis_domain::inventory::{ManifestFacts, RemoteTags, SyncChange, SyncPolicy, plan_sync};
use portcullis_domain::model::{Id, Registry};
use portcullis_domain::{Error, Result};
use portcullis_registry::inventory_client::RegistryClient;
use portcullis_storage::{Actor, PushRecord};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Registry requests a sync has in flight at once.
const CONCURRENCY: usize = 16;

/// What a sync did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub registry: String,
    pub dry_run: bool,
    pub repositories: usize,
    /// `repo:tag` entries.
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    /// Repositories whose tags could not be read, or that an event changed meanwhile.
    pub skipped: Vec<String>,
}

/// Progress callbacks for a terminal: (repositories read, of total).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Send + Sync);

crate::service! {
    /// Catalog sync with the registry.
    SyncService
}

fn actor() -> Actor {
    Actor {
        user_id: None,
        name: SYSTEM_ACTOR.to_owned(),
    }
}

impl SyncService {
    pub(crate) async fn run_job(&self, p: &SyncPayload) -> JobOutcome {
        let Some(registry) = (match self.ctx.store.registry_by_id(p.registry_id).await {
            Ok(r) => r,
            Err(e) => return JobOutcome::Retry(e.to_string()),
        }) else {
            return JobOutcome::Done; // removed meanwhile
        };
        if p.only_if_empty {
            match self.ctx.store.inventory_of_registry(registry.id).await {
                Ok(rows) if !rows.is_empty() => return JobOutcome::Done,
                Ok(_) => {}
                Err(e) => return JobOutcome::Retry(e.to_string()),
            }
        }
        let delete = p
            .delete
            .unwrap_or(self.ctx.config.background.sync.strategy.deletes());
        match self.sync(&registry, delete, false, &|_, _| {}).await {
            Ok(report) => {
                tracing::info!(
                    registry = %report.registry,
                    added = report.added.len(),
                    updated = report.updated.len(),
                    deleted = report.deleted.len(),
                    skipped = report.skipped.len(),
                    "catalog sync"
                );
                JobOutcome::Done
            }
            Err(e) => JobOutcome::Retry(e.to_string()),
        }
    }

    /// `portcullis sync` and the admin API: one sync of every registry now.
    pub async fn sync_all(
        &self,
        actor: Option<&Authenticated>,
        delete: bool,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<Vec<SyncReport>> {
        if let Some(a) = actor {
            a.require_admin_to_change()?;
        }
        let mut reports = Vec::new();
        for registry in self.ctx.store.list_registries().await? {
            reports.push(self.sync(&registry, delete, dry_run, progress).await?);
        }
        Ok(reports)
    }

    async fn sync(
        &self,
        registry: &Registry,
        delete: bool,
        dry_run: bool,
        progress: Progress<'_>,
    ) -> Result<SyncReport> {
        let store = &self.ctx.store;
        // Events stored after this point win over what the sync read.
        let mark = store.last_event_row_id().await?;
        let client = Arc::new(registry_client(&self.ctx, registry)?);
        let page = u32::try_from(self.ctx.config.registry.catalog_page.value).unwrap_or(100);
        let catalog = client.catalog(page).await.map_err(|e| {
            Error::Unavailable(
                format!("catalog of {} could not be read: {e}", registry.name).into(),
            )
        })?;
        let mut local: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut ids: BTreeMap<String, (Id, Id, String)> = BTreeMap::new();
        for row in store.inventory_of_registry(registry.id).await? {
            let entry = local.entry(row.full_name.clone()).or_default();
            if let Some((tag, digest)) = row.tag {
                entry.insert(tag, digest);
            }
            ids.insert(
                row.full_name,
                (row.namespace_id, row.repository_id, row.repository),
            );
        }
        let total = catalog.len();
        let (remote, facts) = read_remote(&client, catalog, &local, page, progress).await;
        let mut report = SyncReport {
            registry: registry.name.clone(),
            dry_run,
            repositories: total,
            ..SyncReport::default()
        };
        let mut skip: BTreeSet<String> = remote
            .iter()
            .filter(|(_, t)| matches!(t, RemoteTags::Unreadable))
            .map(|(r, _)| r.clone())
            .collect();
        skip.extend(
            store
                .repositories_with_events_after(registry.id, mark)
                .await?,
        );
        report.skipped = skip.iter().cloned().collect();
        let changes = plan_sync(&local, &remote, SyncPolicy { delete });
        for change in changes {
            let repository = match &change {
                SyncChange::AddTag { repository, .. }
                | SyncChange::MoveTag { repository, .. }
                | SyncChange::DeleteTag { repository, .. }
                | SyncChange::DeleteRepository { repository } => repository.clone(),
            };
            if skip.contains(&repository) {
                continue;
            }
            let (ns_name, repo_name) = split_repository(&repository);
            let moved = matches!(change, SyncChange::MoveTag { .. });
            match change {
                SyncChange::AddTag { tag, digest, .. }
                | SyncChange::MoveTag { tag, digest, .. } => {
                    let label = format!("{repository}:{tag}");
                    if moved {
                        report.updated.push(label);
                    } else {
                        report.added.push(label);
                    }
                    if dry_run {
                        continue;
                    }
                    let manifest = match facts.get(&(repository.clone(), tag.clone())) {
                        Some(m) => m.clone(),
                        None => match client.manifest(&repository, &digest).await {
                            Ok(m) => manifest_facts(m),
                            Err(e) => {
                                tracing::warn!(%repository, %tag, error = %e, "sync: manifest unreadable");
                                continue;
                            }
                        },
                    };
                    let Some(namespace) = orphan_namespace(&self.ctx, registry, ns_name).await?
                    else {
                        continue;
                    };
                    let record = PushRecord {
                        namespace_id: namespace.id,
                        repository: repo_name.to_owned(),
                        tag,
                        manifest,
                        actor: actor(),
                    };
                    store
                        .record_push(&record, None, self.ctx.clock.now())
                        .await?;
                }
                SyncChange::DeleteTag { tag, .. } => {
                    report.deleted.push(format!("{repository}:{tag}"));
                    if dry_run {
                        continue;
                    }
                    if let Some((namespace_id, _, name)) = ids.get(&repository) {
                        store
                            .delete_tag_by_name(
                                *namespace_id,
                                name,
                                &tag,
                                &actor(),
                                None,
                                self.ctx.clock.now(),
                            )
                            .await?;
                    }
                }
                SyncChange::DeleteRepository { .. } => {
                    report.deleted.push(repository.clone());
                    if dry_run {
                        continue;
                    }
                    if let Some((_, repository_id, _)) = ids.get(&repository) {
                        match store
                            .delete_repository(*repository_id, &actor(), self.ctx.clock.now())
                            .await
                        {
                            Ok(()) | Err(portcullis_storage::StoreError::NotFound) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}

type Facts = BTreeMap<(String, String), ManifestFacts>;

/// Reads every repository's tags and their digests, `CONCURRENCY` requests at a time.
/// Known tags cost a `HEAD` (has it moved?); new tags a `GET`, whose facts are kept
/// for the insert.
async fn read_remote(
    client: &Arc<RegistryClient>,
    catalog: Vec<String>,
    local: &BTreeMap<String, BTreeMap<String, String>>,
    page: u32,
    progress: Progress<'_>,
) -> (BTreeMap<String, RemoteTags>, Facts) {
    let semaphore = Arc::new(Semaphore::new(CONCURRENCY));
    let total = catalog.len();
    let mut tasks = tokio::task::JoinSet::new();
    for repository in catalog {
        let known: BTreeSet<String> = local
            .get(&repository)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let client = client.clone();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let result = read_repository(&client, &semaphore, &repository, &known, page).await;
            (repository, result)
        });
    }
    let mut remote = BTreeMap::new();
    let mut facts = Facts::new();
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += 1;
        progress(done, total);
        let Ok((repository, result)) = joined else {
            continue;
        };
        match result {
            Some((tags, new_facts)) => {
                for (tag, f) in new_facts {
                    facts.insert((repository.clone(), tag), f);
                }
                remote.insert(repository, RemoteTags::Listed(tags));
            }
            None => {
                remote.insert(repository, RemoteTags::Unreadable);
            }
        }
    }
    (remote, facts)
}

async fn read_repository(
    client: &Arc<RegistryClient>,
    semaphore: &Arc<Semaphore>,
    repository: &str,
    known: &BTreeSet<String>,
    page: u32,
) -> Option<(BTreeMap<String, String>, Vec<(String, ManifestFacts)>)> {
    let tags = {
        let _permit = semaphore.acquire().await.ok()?;
        match client.tags(repository, page).await {
            Ok(tags) => tags,
            Err(e) => {
                tracing::warn!(%repository, error = %e, "sync: tag list unreadable; repository left alone");
                return None;
            }
        }
    };
    let mut digests = BTreeMap::new();
    let mut facts = Vec::new();
    let mut lookups = tokio::task::JoinSet::new();
    for tag in tags {
        let client = client.clone();
        let semaphore = semaphore.clone();
        let repository = repository.to_owned();
        let is_known = known.contains(&tag);
        lookups.spawn(async move {
            let _permit = semaphore.acquire().await.ok();
            if is_known {
                let digest = client.manifest_digest(&repository, &tag).await;
                (tag, digest.map(|d| (d, None)))
            } else {
                let manifest = client.manifest(&repository, &tag).await;
                (
                    tag,
                    manifest.map(|m| {
                        let f = manifest_facts(m);
                        (f.digest.clone(), Some(f))
                    }),
                )
            }
        });
    }
    while let Some(joined) = lookups.join_next().await {
        let (tag, result) = joined.ok()?;
        match result {
            Ok((digest, f)) => {
                if let Some(f) = f {
                    facts.push((tag.clone(), f));
                }
                digests.insert(tag, digest);
            }
            Err(e) => {
                tracing::warn!(%repository, %tag, error = %e, "sync: tag unreadable; repository left alone");
                return None;
            }
        }
    }
    Some((digests, facts))
}
