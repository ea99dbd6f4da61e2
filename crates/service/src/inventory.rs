//! Registry notifications: intake (persist, then acknowledge) and processing (the
//! `process_events` job), plus the registry client the worker uses, authenticated by
//! tokens Portcullis signs for itself.

use crate::Context;
use crate::RandomSource;
use crate::auth::Authenticated;
use crate::background::{JobOutcome, wake_job};
use crate::listing::{ListParams, Paged};
use crate::secrets::random_id;
use portcullis_domain::inventory::{
    EventStatus, ManifestFacts, NewRegistryEvent, Platform, RegistryEvent,
};
use portcullis_domain::model::{Id, Namespace, NamespaceKind, Registry, Visibility};
use portcullis_domain::names::is_valid_namespace_name;
use portcullis_domain::scope::{namespace_of, parse_scope};
use portcullis_domain::time::Clock;
use portcullis_domain::time::Timestamp;
use portcullis_domain::{Error, Result};
use portcullis_registry::inventory_client::{
    ClientError, ManifestInfo, RegistryClient, TokenSource,
};
use portcullis_registry::jwt::{AccessEntry, Claims, TokenSigner};
use portcullis_registry::notifications::{Notification, parse_envelope};
use portcullis_storage::{Actor, EventFilter, NewNamespace, PushRecord, Refusal, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The `sub` of tokens Portcullis signs for itself, and the actor its own changes are
/// recorded under (Portus's hidden `portus` user, without a password to steal).
pub const SYSTEM_ACTOR: &str = "portcullis";
/// Events one `process_events` run works off before it queues the next run.
const EVENT_BATCH: i64 = 200;
/// Attempts at one event whose manifest could not be fetched before it is parked.
const EVENT_ATTEMPTS: i64 = 5;

pub const EVENT_SORT: &[&str] = &["id", "received_at", "occurred_at", "status", "action"];

crate::service! {
    /// Registry notifications: intake, processing, and the admin view of both.
    InventoryService
}

/// Signs short-lived registry tokens for Portcullis's own calls to one registry.
pub(crate) struct SelfTokens {
    signer: Arc<TokenSigner>,
    issuer: String,
    audience: String,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    /// Signed tokens by scope with their expiry, reused while they have
    /// [`SELF_TOKEN_MARGIN_SECS`] left: a sync sends each repository a dozen requests.
    issued: std::sync::Mutex<HashMap<String, (String, i64)>>,
}

/// How long Portcullis's own registry tokens live.
const SELF_TOKEN_SECS: i64 = 300;
/// A cached token is not handed out with less than this left: it must outlast the
/// request (with retries and clock skew) it is used for.
const SELF_TOKEN_MARGIN_SECS: i64 = 120;
/// Scopes [`SelfTokens::issued`] holds before it starts over.
const SELF_TOKEN_CACHE_ENTRIES: usize = 10_000;

impl SelfTokens {
    fn issued(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, i64)>> {
        self.issued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl TokenSource for SelfTokens {
    fn token(&self, scope_text: &str) -> std::result::Result<String, String> {
        let now = self.clock.now().as_secs();
        if let Some((token, exp)) = self.issued().get(scope_text)
            && *exp - SELF_TOKEN_MARGIN_SECS > now
        {
            return Ok(token.clone());
        }
        let scope = parse_scope(scope_text).map_err(|e| e.to_string())?;
        let exp = now + SELF_TOKEN_SECS;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: SYSTEM_ACTOR.to_owned(),
            aud: self.audience.clone(),
            iat: now,
            nbf: now - 5,
            exp,
            jti: random_id(self.random.as_ref()),
            access: Some(vec![AccessEntry {
                resource_type: scope.resource_type.as_str().to_owned(),
                name: scope.name,
                actions: scope
                    .actions
                    .iter()
                    .map(|a| a.as_str().to_owned())
                    .collect(),
            }]),
        };
        let token = self.signer.sign(&claims).map_err(|e| e.to_string())?;
        let mut issued = self.issued();
        if issued.len() >= SELF_TOKEN_CACHE_ENTRIES {
            issued.clear();
        }
        issued.insert(scope_text.to_owned(), (token.clone(), exp));
        Ok(token)
    }
}

/// A client for `registry`, authenticated as Portcullis itself; one per registry
/// address, so connections are reused.
pub(crate) fn registry_client(
    ctx: &Arc<Context>,
    registry: &Registry,
) -> Result<Arc<RegistryClient>> {
    let key = (registry.hostname.clone(), registry.use_ssl);
    let mut clients = ctx
        .registry_clients
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let tokens = Arc::new(SelfTokens {
        signer: ctx.signer.clone(),
        issuer: ctx.config.machine_fqdn.value.clone(),
        audience: registry.hostname.clone(),
        clock: ctx.clock.clone(),
        random: ctx.random.clone(),
        issued: std::sync::Mutex::default(),
    });
    let timeout = Duration::from_secs(ctx.config.registry.read_timeout.value.max(1) as u64);
    let client = Arc::new(
        RegistryClient::new(
            &registry.hostname,
            registry.use_ssl,
            timeout,
            tokens,
            &ctx.registry_roots,
        )
        .map_err(|e| Error::internal(e.to_string()))?,
    );
    clients.insert(key, client.clone());
    Ok(client)
}

pub(crate) fn manifest_facts(m: ManifestInfo) -> ManifestFacts {
    ManifestFacts {
        image_id: m
            .config_digest
            .as_deref()
            .map(|d| d.strip_prefix("sha256:").unwrap_or(d).to_owned())
            .unwrap_or_default(),
        digest: m.digest,
        media_type: m.media_type,
        size: m.size,
        platforms: m
            .platforms
            .into_iter()
            .map(|p| Platform {
                os: p.os,
                architecture: p.architecture,
                variant: p.variant,
                digest: p.digest,
                size: p.size,
            })
            .collect(),
    }
}

/// `ns/repo` → (`Some("ns")`, `"repo"`); a bare name lives in the global namespace.
pub(crate) fn split_repository(full: &str) -> (Option<&str>, &str) {
    match namespace_of(full) {
        Some(ns) => (Some(ns), &full[ns.len() + 1..]),
        None => (None, full),
    }
}

/// The registry an event came from: its `request.host` (what clients called the
/// registry) matched against hostnames and external hostnames, then the registry's own
/// `source.addr`.
fn registry_of<'r>(registries: &'r [Registry], n: &Notification) -> Option<&'r Registry> {
    let matches = |host: &str, r: &Registry| {
        r.hostname == host || r.external_hostname.as_deref() == Some(host)
    };
    [n.request_host.as_deref(), n.source_addr.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|host| registries.iter().find(|r| matches(host, r)))
}

/// What intake decides for one event: processed later, or only kept.
///
/// Pulls by Portcullis itself (the worker fetching a pushed manifest, a sync's lookups,
/// the garbage collector) are kept as `ignored`: they are not pulls by anyone, and
/// recording them would mark every tag as just pulled after each push and each sync,
/// so `delete.garbage_collector.older_than` would never find an unused tag (and every
/// sync period would queue one event per tag).
fn intake_status(n: &Notification, registry: Option<&Registry>) -> EventStatus {
    if registry.is_none() {
        return EventStatus::UnknownRegistry;
    }
    match n.action.as_str() {
        "delete" => EventStatus::Pending,
        "pull" if n.actor.as_deref() == Some(SYSTEM_ACTOR) => EventStatus::Ignored,
        "push" | "pull" if n.is_manifest_event() => EventStatus::Pending,
        _ => EventStatus::Ignored,
    }
}

enum Step {
    Done,
    Failed(String),
    /// Try again later (the registry could not be read).
    Transient(String),
    /// Another run of the job applied this event first (this run's lease lapsed and the
    /// job was taken over while it was still working): nothing was written.
    Superseded,
}

impl InventoryService {
    /// Stores the events of one notification envelope and wakes the worker. Nothing
    /// is processed here. Malformed: `Malformed` and nothing stored; database down:
    /// `Unavailable` (503) so the registry keeps the events and retries.
    pub async fn receive(&self, body: &[u8]) -> Result<u64> {
        let notifications =
            parse_envelope(body).map_err(|e| Error::Malformed(format!("invalid envelope: {e}")))?;
        if notifications.is_empty() {
            return Ok(0);
        }
        let registries = self.ctx.authz.registries(&self.ctx.store).await?;
        let events: Vec<NewRegistryEvent> = notifications
            .into_iter()
            .map(|n| {
                let registry = registry_of(&registries, &n);
                let status = intake_status(&n, registry);
                if status == EventStatus::UnknownRegistry {
                    tracing::warn!(
                        host = n.request_host.as_deref().unwrap_or_default(),
                        source = n.source_addr.as_deref().unwrap_or_default(),
                        "notification from a registry that is not configured: kept as unknown_registry"
                    );
                }
                NewRegistryEvent {
                    event_id: n.id.clone(),
                    registry_id: registry.map(|r| r.id),
                    status,
                    action: n.action.clone(),
                    repository: n.repository.clone(),
                    tag: n.tag.clone(),
                    digest: n.digest.clone(),
                    media_type: n.media_type.clone(),
                    actor: n.actor.clone(),
                    request_host: n.request_host.clone(),
                    data: n.raw.to_string(),
                    occurred_at: Timestamp(n.timestamp_ms),
                }
            })
            .collect();
        let now = self.ctx.clock.now();
        let stored = self
            .ctx
            .store
            .store_events(&events, &wake_job(now), now)
            .await?;
        crate::metrics::notification_events(events.len());
        self.ctx.wake_workers();
        Ok(stored)
    }

    pub async fn list_events(
        &self,
        actor: &Authenticated,
        filter: &EventFilter,
        params: &ListParams,
    ) -> Result<Paged<RegistryEvent>> {
        actor.require_admin()?;
        let page = self
            .ctx
            .store
            .list_events(filter, params.to_page_request(EVENT_SORT)?)
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    pub async fn show_event(&self, actor: &Authenticated, id: Id) -> Result<RegistryEvent> {
        actor.require_admin()?;
        self.ctx
            .store
            .event_by_id(id)
            .await?
            .ok_or(Error::NotFound("Event"))
    }

    /// The `process_events` job: works off pending events in arrival order. An event
    /// whose manifest cannot be read now stops the run (later events of the same tag
    /// must not overtake it) and the job retries with backoff; after
    /// [`EVENT_ATTEMPTS`] the event is parked as failed and the rest go on.
    pub(crate) async fn process_pending(&self) -> JobOutcome {
        let events = match self.ctx.store.pending_events(EVENT_BATCH).await {
            Ok(e) => e,
            Err(e) => return JobOutcome::Retry(e.to_string()),
        };
        let full_batch = events.len() as i64 == EVENT_BATCH;
        let registries = match self.ctx.authz.registries(&self.ctx.store).await {
            Ok(r) => r,
            Err(e) => return JobOutcome::Retry(e.to_string()),
        };
        for event in events {
            let now = self.ctx.clock.now();
            let registry = registries.iter().find(|r| Some(r.id) == event.registry_id);
            let step = match registry {
                Some(registry) => self.process(&event, registry).await,
                None => Step::Failed("the registry was removed".into()),
            };
            let result = match step {
                Step::Done => Ok(()),
                Step::Superseded => {
                    tracing::warn!(event = %event.event_id, "registry event already processed by another run of the job; skipped");
                    Ok(())
                }
                Step::Failed(reason) => {
                    tracing::warn!(event = %event.event_id, %reason, "registry event failed");
                    self.ctx
                        .store
                        .finish_event(event.id, EventStatus::Failed, Some(&reason), now)
                        .await
                }
                Step::Transient(reason) => {
                    match self.ctx.store.event_attempt_failed(event.id, &reason).await {
                        Ok(attempts) if attempts >= EVENT_ATTEMPTS => {
                            self.ctx
                                .store
                                .finish_event(event.id, EventStatus::Failed, Some(&reason), now)
                                .await
                        }
                        Ok(_) => return JobOutcome::Retry(reason),
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = result {
                return JobOutcome::Retry(e.to_string());
            }
        }
        if full_batch {
            // More may wait: queue the next run (a singleton, so at most one).
            let now = self.ctx.clock.now();
            if let Err(e) = self.ctx.store.enqueue_job(&wake_job(now), now).await {
                return JobOutcome::Retry(e.to_string());
            }
            self.ctx.wake_workers();
        }
        JobOutcome::Done
    }

    async fn process(&self, event: &RegistryEvent, registry: &Registry) -> Step {
        match self.try_process(event, registry).await {
            Ok(step) => step,
            Err(StoreError::Refused(Refusal::EventAlreadyFinished)) => Step::Superseded,
            Err(e) => Step::Transient(e.to_string()),
        }
    }

    async fn try_process(
        &self,
        event: &RegistryEvent,
        registry: &Registry,
    ) -> std::result::Result<Step, StoreError> {
        let store = &self.ctx.store;
        let now = self.ctx.clock.now();
        let (ns_name, repository) = split_repository(&event.repository);
        let actor_user = match event.actor.as_deref() {
            Some(name) if name != SYSTEM_ACTOR => store.user_by_username(name).await?,
            _ => None,
        };
        let actor = Actor {
            user_id: actor_user.as_ref().map(|u| u.id),
            name: event
                .actor
                .clone()
                .unwrap_or_else(|| SYSTEM_ACTOR.to_owned()),
        };
        let namespace = match ns_name {
            Some(name) => store.namespace_by_name(registry.id, name).await?,
            None => store.global_namespace(registry.id).await?,
        };
        match event.action.as_str() {
            "push" => {
                let Some(tag) = event.tag.as_deref() else {
                    // A manifest pushed by digest only (the images of an index, pushed
                    // before the index itself): no tag to record.
                    store
                        .finish_event(event.id, EventStatus::Done, None, now)
                        .await?;
                    return Ok(Step::Done);
                };
                let namespace = match namespace {
                    Some(ns) => ns,
                    // Only admins are granted a push into a missing namespace: create it
                    // now (private, owned by the registry's global team).
                    None if actor_user.as_ref().is_some_and(|u| u.admin) => {
                        match self.orphan_namespace(registry, ns_name).await? {
                            Some(ns) => ns,
                            None => return Ok(Step::Failed("invalid namespace name".into())),
                        }
                    }
                    None => {
                        return Ok(Step::Failed(format!(
                            "namespace {} does not exist",
                            ns_name.unwrap_or_default()
                        )));
                    }
                };
                let reference = event.digest.as_deref().unwrap_or(tag);
                let client = match registry_client(&self.ctx, registry) {
                    Ok(c) => c,
                    Err(e) => return Ok(Step::Transient(e.to_string())),
                };
                let manifest = match client.manifest(&event.repository, reference).await {
                    Ok(m) => manifest_facts(m),
                    Err(ClientError::NotFound(_)) => {
                        return Ok(Step::Failed(
                            "the manifest is no longer in the registry".into(),
                        ));
                    }
                    Err(e) if e.is_transient() => return Ok(Step::Transient(e.to_string())),
                    Err(e) => return Ok(Step::Failed(e.to_string())),
                };
                crate::webhooks::enqueue_for_event(&self.ctx, namespace.id, repository, event)
                    .await?;
                let record = PushRecord {
                    namespace_id: namespace.id,
                    repository: repository.to_owned(),
                    tag: tag.to_owned(),
                    manifest,
                    actor,
                };
                store.record_push(&record, Some(event.id), now).await?;
            }
            "delete" => {
                let Some(namespace) = namespace else {
                    store
                        .finish_event(event.id, EventStatus::Done, None, now)
                        .await?;
                    return Ok(Step::Done);
                };
                crate::webhooks::enqueue_for_event(&self.ctx, namespace.id, repository, event)
                    .await?;
                match (&event.digest, &event.tag) {
                    (Some(digest), _) => {
                        store
                            .delete_tags_by_digest(
                                namespace.id,
                                repository,
                                digest,
                                &actor,
                                Some(event.id),
                                now,
                            )
                            .await?;
                    }
                    (None, Some(tag)) => {
                        store
                            .delete_tag_by_name(
                                namespace.id,
                                repository,
                                tag,
                                &actor,
                                Some(event.id),
                                now,
                            )
                            .await?;
                    }
                    (None, None) => {
                        return Ok(Step::Failed("a delete event without digest or tag".into()));
                    }
                }
            }
            "pull" => match namespace {
                Some(ns) => {
                    store
                        .record_pull(
                            ns.id,
                            repository,
                            event.tag.as_deref(),
                            event.digest.as_deref().filter(|_| event.tag.is_none()),
                            Some(event.id),
                            now,
                        )
                        .await?;
                }
                None => {
                    store
                        .finish_event(event.id, EventStatus::Done, None, now)
                        .await?;
                }
            },
            _ => {
                store
                    .finish_event(event.id, EventStatus::Ignored, None, now)
                    .await?;
            }
        }
        Ok(Step::Done)
    }

    /// The namespace `name` of `registry`, created private and owned by the registry's
    /// global team when missing (an admin's push, a sync). `None` for a name that
    /// cannot be a namespace.
    pub(crate) async fn orphan_namespace(
        &self,
        registry: &Registry,
        name: Option<&str>,
    ) -> std::result::Result<Option<Namespace>, StoreError> {
        orphan_namespace(&self.ctx, registry, name).await
    }
}

pub(crate) async fn orphan_namespace(
    ctx: &Arc<Context>,
    registry: &Registry,
    name: Option<&str>,
) -> std::result::Result<Option<Namespace>, StoreError> {
    let store = &ctx.store;
    let Some(name) = name else {
        return store.global_namespace(registry.id).await;
    };
    if let Some(ns) = store.namespace_by_name(registry.id, name).await? {
        return Ok(Some(ns));
    }
    if !is_valid_namespace_name(name) {
        return Ok(None);
    }
    let Some(global) = store.global_namespace(registry.id).await? else {
        return Ok(None);
    };
    let created = store
        .create_namespace(
            &NewNamespace {
                registry_id: registry.id,
                team_id: global.team_id,
                name: name.to_owned(),
                description: String::new(),
                kind: NamespaceKind::Team,
                visibility: Visibility::Private,
                user_id: None,
            },
            ctx.clock.now(),
        )
        .await;
    match created {
        Ok(ns) => {
            ctx.grants_changed();
            tracing::info!(namespace = %ns.name, "created namespace for pushed images");
            Ok(Some(ns))
        }
        // Created concurrently: use that one.
        Err(StoreError::Conflict(_)) => store.namespace_by_name(registry.id, name).await,
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn event(action: &str, actor: Option<&str>) -> Notification {
        let raw = serde_json::json!({
            "id": "e1",
            "timestamp": "2025-01-01T00:00:00Z",
            "action": action,
            "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "repository": "ns/app",
                "digest": "sha256:aa",
                "tag": "v1",
            },
            "actor": {"name": actor.unwrap_or_default()},
            "request": {"host": "registry.test:5000", "method": "GET"},
        });
        let body = serde_json::json!({ "events": [raw] }).to_string();
        parse_envelope(body.as_bytes()).unwrap().remove(0)
    }

    fn registry() -> Registry {
        Registry {
            id: 1,
            name: "r".into(),
            hostname: "registry.test:5000".into(),
            use_ssl: false,
            external_hostname: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn intake_keeps_only_what_the_worker_must_process() {
        let r = registry();
        let status =
            |action: &str, actor: Option<&str>| intake_status(&event(action, actor), Some(&r));
        assert_eq!(status("push", Some("alice")), EventStatus::Pending);
        assert_eq!(status("pull", Some("alice")), EventStatus::Pending);
        assert_eq!(
            status("pull", None),
            EventStatus::Pending,
            "anonymous pulls count"
        );
        assert_eq!(status("delete", Some("alice")), EventStatus::Pending);
        assert_eq!(status("mount", Some("alice")), EventStatus::Ignored);
        // Portcullis's own reads are not pulls; its own pushes and deletes still count.
        assert_eq!(status("pull", Some(SYSTEM_ACTOR)), EventStatus::Ignored);
        assert_eq!(status("push", Some(SYSTEM_ACTOR)), EventStatus::Pending);
        assert_eq!(status("delete", Some(SYSTEM_ACTOR)), EventStatus::Pending);
        assert_eq!(
            intake_status(&event("push", Some("alice")), None),
            EventStatus::UnknownRegistry
        );
    }
}
