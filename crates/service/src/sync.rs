//! Catalog sync: makes the inventory match what the registry holds (Portus section 5),
//! with the safety rules Portus lacked. A catalog that cannot be read completely
//! changes nothing; a repository whose tags cannot be read is left alone; a repository
//! that received an event while the sync ran is left to the event.

use crate::auth::Authenticated;
use crate::background::{JobOutcome, SyncPayload};
use crate::inventory::{
    SYSTEM_ACTOR, manifest_facts, orphan_namespace, registry_client, split_repository,
};
use portcullis_domain::inventory::{
    ManifestFacts, SyncChange, SyncPolicy, plan_gone_repositories, plan_repository,
};
use portcullis_domain::model::{Id, Registry};
use portcullis_domain::{Error, Result};
use portcullis_registry::inventory_client::RegistryClient;
use portcullis_storage::{Actor, PushRecord};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Registry requests a sync has in flight at once.
const CONCURRENCY: usize = 16;
/// Tags a sync writes per transaction: one commit per tag was most of a large sync's
/// database time.
const WRITE_BATCH: usize = 500;

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
                crate::metrics::sync_run(if report.skipped.is_empty() {
                    "complete"
                } else {
                    "partial"
                });
                JobOutcome::Done
            }
            Err(e) => {
                crate::metrics::sync_run("failed");
                JobOutcome::Retry(e.to_string())
            }
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
        let client = registry_client(&self.ctx, registry)?;
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
        let in_catalog: BTreeSet<String> = catalog.iter().cloned().collect();
        let policy = SyncPolicy { delete };
        let mut writer = Writer {
            report: SyncReport {
                registry: registry.name.clone(),
                dry_run,
                repositories: total,
                ..SyncReport::default()
            },
            sync: self,
            client: &client,
            registry,
            ids: &ids,
            mark,
            dry_run,
            namespaces: HashMap::new(),
            pushes: Vec::new(),
        };
        // Each repository is planned and written as soon as its tags are read, while
        // the other reads go on: reading and writing overlap.
        let mut reads = read_remote(&client, catalog, &local, page);
        let mut done = 0;
        while let Some(joined) = reads.join_next().await {
            done += 1;
            progress(done, total);
            let Ok((repository, listed)) = joined else {
                continue;
            };
            let Some((tags, facts)) = listed else {
                writer.report.skipped.push(repository);
                continue;
            };
            let changes = plan_repository(&repository, local.get(&repository), &tags, policy);
            writer.apply(changes, facts).await?;
        }
        let gone = plan_gone_repositories(&local, |r| in_catalog.contains(r), policy);
        writer.apply(gone, Facts::new()).await?;
        writer.flush().await?;
        let mut report = writer.report;
        report.skipped.sort();
        report.skipped.dedup();
        Ok(report)
    }
}

/// Manifest facts by tag, for the tags a read fetched whole.
type Facts = BTreeMap<String, ManifestFacts>;
/// A repository's tags with their digests, and the facts read along; `None` when its
/// tags could not be read.
type RemoteRead = Option<(BTreeMap<String, String>, Facts)>;

/// A tag a sync will write, with how the report names it.
struct PendingPush {
    full_name: String,
    label: String,
    moved: bool,
    record: PushRecord,
}

/// Applies one sync's changes: tags are collected and written [`WRITE_BATCH`] at a
/// time; a repository that received a registry event since the sync began (`mark`)
/// is left to that event, checked just before each write.
struct Writer<'a> {
    report: SyncReport,
    sync: &'a SyncService,
    client: &'a Arc<RegistryClient>,
    registry: &'a Registry,
    /// Inventory repositories by full name: (namespace id, repository id, name).
    ids: &'a BTreeMap<String, (Id, Id, String)>,
    mark: Id,
    dry_run: bool,
    /// Namespace ids by name (looked up, or created as orphans, once each).
    namespaces: HashMap<Option<String>, Option<Id>>,
    pushes: Vec<PendingPush>,
}

impl Writer<'_> {
    async fn apply(&mut self, changes: Vec<SyncChange>, mut facts: Facts) -> Result<()> {
        for change in changes {
            match change {
                SyncChange::AddTag {
                    repository,
                    tag,
                    digest,
                } => {
                    self.push(repository, tag, &digest, false, &mut facts)
                        .await?
                }
                SyncChange::MoveTag {
                    repository,
                    tag,
                    digest,
                } => {
                    self.push(repository, tag, &digest, true, &mut facts)
                        .await?
                }
                SyncChange::DeleteTag { repository, tag } => {
                    if self.changed_by_events(&repository).await? {
                        continue;
                    }
                    self.report.deleted.push(format!("{repository}:{tag}"));
                    if self.dry_run {
                        continue;
                    }
                    self.flush().await?;
                    if let Some((namespace_id, _, name)) = self.ids.get(&repository) {
                        self.sync
                            .ctx
                            .store
                            .delete_tag_by_name(
                                *namespace_id,
                                name,
                                &tag,
                                &actor(),
                                None,
                                self.sync.ctx.clock.now(),
                            )
                            .await?;
                    }
                }
                SyncChange::DeleteRepository { repository } => {
                    if self.changed_by_events(&repository).await? {
                        continue;
                    }
                    self.report.deleted.push(repository.clone());
                    if self.dry_run {
                        continue;
                    }
                    self.flush().await?;
                    if let Some((_, repository_id, _)) = self.ids.get(&repository) {
                        match self
                            .sync
                            .ctx
                            .store
                            .delete_repository(*repository_id, &actor(), self.sync.ctx.clock.now())
                            .await
                        {
                            Ok(()) | Err(portcullis_storage::StoreError::NotFound) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues an added or moved tag; its manifest facts come from the read (a new
    /// tag's `GET`) or, for a moved tag (only a `HEAD` so far), are fetched now.
    async fn push(
        &mut self,
        repository: String,
        tag: String,
        digest: &str,
        moved: bool,
        facts: &mut Facts,
    ) -> Result<()> {
        let label = format!("{repository}:{tag}");
        if self.dry_run {
            if moved {
                self.report.updated.push(label);
            } else {
                self.report.added.push(label);
            }
            return Ok(());
        }
        let manifest = match facts.remove(&tag) {
            Some(m) => m,
            None => match self.client.manifest(&repository, digest).await {
                Ok(m) => manifest_facts(m),
                Err(e) => {
                    tracing::warn!(%repository, %tag, error = %e, "sync: manifest unreadable");
                    return Ok(());
                }
            },
        };
        let (ns_name, repo_name) = split_repository(&repository);
        let key = ns_name.map(str::to_owned);
        let namespace_id = match self.namespaces.get(&key) {
            Some(known) => *known,
            None => {
                let found = orphan_namespace(&self.sync.ctx, self.registry, ns_name)
                    .await?
                    .map(|n| n.id);
                self.namespaces.insert(key, found);
                found
            }
        };
        let Some(namespace_id) = namespace_id else {
            return Ok(());
        };
        self.pushes.push(PendingPush {
            label,
            moved,
            record: PushRecord {
                namespace_id,
                repository: repo_name.to_owned(),
                tag,
                manifest,
                actor: actor(),
            },
            full_name: repository,
        });
        if self.pushes.len() >= WRITE_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes the queued tags in one transaction, except those of repositories an
    /// event changed meanwhile.
    async fn flush(&mut self) -> Result<()> {
        if self.pushes.is_empty() {
            return Ok(());
        }
        let changed = self.events_since_mark().await?;
        let mut records = Vec::with_capacity(self.pushes.len());
        for p in std::mem::take(&mut self.pushes) {
            if changed.contains(&p.full_name) {
                self.report.skipped.push(p.full_name);
            } else if p.moved {
                self.report.updated.push(p.label);
                records.push(p.record);
            } else {
                self.report.added.push(p.label);
                records.push(p.record);
            }
        }
        if !records.is_empty() {
            self.sync
                .ctx
                .store
                .record_pushes(&records, self.sync.ctx.clock.now())
                .await?;
        }
        Ok(())
    }

    /// Whether an event changed `repository` since the sync began; it is then
    /// reported as skipped. Dry runs read nothing more.
    async fn changed_by_events(&mut self, repository: &str) -> Result<bool> {
        if self.dry_run || !self.events_since_mark().await?.contains(repository) {
            return Ok(false);
        }
        self.report.skipped.push(repository.to_owned());
        Ok(true)
    }

    async fn events_since_mark(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .sync
            .ctx
            .store
            .repositories_with_events_after(self.registry.id, self.mark)
            .await?
            .into_iter()
            .collect())
    }
}

/// Reads every repository's tags and their digests, `CONCURRENCY` requests at a time,
/// one task per repository: `(repository, None)` when its tags could not be read.
/// Known tags cost a `HEAD` (has it moved?); new tags a `GET`, whose facts (by tag)
/// are kept for the insert.
fn read_remote(
    client: &Arc<RegistryClient>,
    catalog: Vec<String>,
    local: &BTreeMap<String, BTreeMap<String, String>>,
    page: u32,
) -> JoinSet<(String, RemoteRead)> {
    let semaphore = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = JoinSet::new();
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
    tasks
}

async fn read_repository(
    client: &Arc<RegistryClient>,
    semaphore: &Arc<Semaphore>,
    repository: &str,
    known: &BTreeSet<String>,
    page: u32,
) -> RemoteRead {
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
    let mut facts = Facts::new();
    let mut lookups = JoinSet::new();
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
                    facts.insert(tag.clone(), f);
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
