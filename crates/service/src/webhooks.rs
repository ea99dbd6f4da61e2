//! Webhooks of a namespace: configuration (with the policy of Portus reference §2.4),
//! the deliveries an event creates, and the delivery job.
//!
//! Secrets (the password, the signing secret, custom header values) are sealed with
//! the data folder's webhook key before they reach the store and opened only to send
//! a delivery. The signing secret is shown once, in the answer to create (and to
//! rotate).

use crate::activity::Audit;
use crate::auth::Authenticated;
use crate::background::{JobOutcome, kinds};
use crate::listing::{ListParams, Paged};
use crate::secrets::new_token;
use crate::users::not_found_as;
use crate::{Context, RandomSource};
use portcullis_domain::inventory::{NewJob, RegistryEvent};
use portcullis_domain::model::{Id, NamespaceListing};
use portcullis_domain::policy::{
    NamespaceFacts, can_create_webhook, can_manage_webhook, can_view_webhooks,
};
use portcullis_domain::time::Timestamp;
use portcullis_domain::webhooks::{
    BodyType, HEADER_VALUE_MAX, NAME_MAX, RequestMethod, URL_MAX, Webhook, WebhookAction,
    WebhookAttempt, WebhookDelivery, WebhookHeader, actions_problem, glob_problem, name_problem,
};
use portcullis_domain::{Error, Result};
use portcullis_storage::{
    DeliveryAttempt, NewDelivery, NewWebhook, StoreError, WebhookSecrets, WebhookUpdate,
};
use portcullis_webhooks::{
    AddressPolicy, ContentType, Deliverer, Method, Sealer, WebhookRequest, check_custom_header,
    ip_literal, normalize_url,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const WEBHOOK_SORT: &[&str] = &["id", "name", "created_at", "updated_at"];
pub const DELIVERY_SORT: &[&str] = &["id", "status", "created_at", "updated_at"];

/// Prefix of signing secrets, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "pcwh_";

// Associated data of each sealed value: a ciphertext only opens in its own column.
const AAD_PASSWORD: &[u8] = b"portcullis:webhook:password";
const AAD_SECRET: &[u8] = b"portcullis:webhook:secret";
const AAD_HEADER: &[u8] = b"portcullis:webhook:header";

/// What delivering needs beyond the store: the key that opens the sealed secrets
/// and the HTTP client with the SSRF guard (built on first use).
pub struct WebhookRuntime {
    sealer: Sealer,
    policy: AddressPolicy,
    timeout: Duration,
    deliverer: std::sync::Mutex<Option<Deliverer>>,
}

impl WebhookRuntime {
    pub fn new(sealer: Sealer, config: &portcullis_config::Config) -> Self {
        Self {
            sealer,
            policy: AddressPolicy {
                allow_private_networks: config.webhooks.allow_private_networks,
            },
            timeout: Duration::from_secs(config.webhooks.timeout_seconds.max(1).unsigned_abs()),
            deliverer: std::sync::Mutex::new(None),
        }
    }

    fn deliverer(&self) -> std::result::Result<Deliverer, String> {
        let mut slot = self
            .deliverer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = Deliverer::new(self.policy, self.timeout).map_err(|e| e.to_string())?;
        *slot = Some(d.clone());
        Ok(d)
    }

    /// The key of the webhook secrets, which also seals the payloads of mail jobs.
    pub(crate) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    fn seal(&self, random: &dyn RandomSource, value: &[u8], aad: &[u8]) -> Result<String> {
        self.sealer
            .seal(value, aad, |nonce| random.fill(nonce))
            .map_err(|e| Error::internal(format!("sealing a webhook secret: {e}")))
    }

    fn open(&self, sealed: &str, aad: &[u8]) -> std::result::Result<String, String> {
        let plain = self.sealer.open(sealed, aad).map_err(|e| {
            format!("cannot decrypt a stored webhook secret ({e}); was the webhook key replaced?")
        })?;
        String::from_utf8(plain).map_err(|_| "a stored webhook secret is not UTF-8".to_owned())
    }
}

/// A webhook with what the caller may do with it.
#[derive(Debug, Clone)]
pub struct WebhookDetails {
    pub webhook: Webhook,
    pub updatable: bool,
    pub destroyable: bool,
}

/// A webhook's fields as entered. On create, `name` and `url` are required and the
/// others default (GET, `application/json`, no credentials, disabled as in Portus, push
/// and delete, `*`); on update, `None` leaves a field alone and an empty password
/// removes it.
#[derive(Debug, Clone, Default)]
pub struct WebhookInput {
    pub name: Option<String>,
    pub url: Option<String>,
    pub request_method: Option<String>,
    pub content_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub enabled: Option<bool>,
    pub actions: Option<Vec<String>>,
    pub repository_glob: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryPayload {
    pub delivery_id: Id,
    /// Asked for by a user: sent even if the webhook was disabled since.
    #[serde(default)]
    pub manual: bool,
}

crate::service! {
    /// Webhook configuration and deliveries.
    WebhookService
}

fn facts(ns: &NamespaceListing) -> NamespaceFacts {
    NamespaceFacts {
        kind: ns.namespace.kind,
        visibility: ns.namespace.visibility,
        role: ns.role,
    }
}

/// Collects field problems into one 422.
#[derive(Default)]
struct Problems(BTreeMap<String, Vec<String>>);

impl Problems {
    fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(problem.into());
    }
    fn check(&mut self, field: &str, problem: Option<&str>) {
        if let Some(p) = problem {
            self.add(field, p);
        }
    }
    fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(self.0))
        }
    }
}

fn too_long(value: &str, max: usize) -> Option<&'static str> {
    (value.chars().count() > max).then_some("is too long")
}

fn parse_method(p: &mut Problems, m: &str) -> Option<RequestMethod> {
    let parsed = RequestMethod::parse(&m.to_ascii_uppercase());
    if parsed.is_none() {
        p.add("request_method", "must be GET or POST");
    }
    parsed
}

fn parse_content_type(p: &mut Problems, c: &str) -> Option<BodyType> {
    let parsed = BodyType::parse(c);
    if parsed.is_none() {
        p.add(
            "content_type",
            "must be application/json or application/x-www-form-urlencoded",
        );
    }
    parsed
}

fn parse_actions(p: &mut Problems, actions: &[String]) -> Vec<WebhookAction> {
    let mut parsed = Vec::new();
    for a in actions {
        match WebhookAction::parse(a) {
            Some(a) => parsed.push(a),
            None => p.add("actions", format!("unknown action {a:?} (push, delete)")),
        }
    }
    p.check("actions", actions_problem(&parsed));
    parsed
}

/// The normalised URL. An IP literal the address policy refuses is refused here
/// already (a host name is checked after resolution, at every delivery).
fn parse_url(p: &mut Problems, policy: AddressPolicy, url: &str) -> String {
    if url.chars().count() > URL_MAX {
        p.add("url", "is too long");
        return String::new();
    }
    let normalized = match normalize_url(url) {
        Ok(u) => u,
        Err(e) => {
            p.add("url", e);
            return String::new();
        }
    };
    let literal = portcullis_webhooks::Url::parse(&normalized)
        .ok()
        .and_then(|u| ip_literal(&u));
    if literal.is_some_and(|ip| !policy.permits(ip)) {
        p.add(
            "url",
            "is a loopback, private or link-local address (webhooks.allow_private_networks is off)",
        );
    }
    normalized
}

/// A UUID (version 4) from the injected randomness.
fn new_uuid(random: &dyn RandomSource) -> String {
    let mut b = [0u8; 16];
    random.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn delivery_job(ctx: &Context, payload: &DeliveryPayload, now: Timestamp) -> NewJob {
    NewJob {
        kind: kinds::DELIVER_WEBHOOK.into(),
        payload: serde_json::to_string(payload).unwrap_or_else(|_| "{}".into()),
        singleton: None,
        max_attempts: ctx.config.webhooks.max_attempts.max(1),
        run_at: now,
    }
}

fn header_lines(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl WebhookService {
    /// The namespace and the caller's facts in it, or `Forbidden` when they may not see
    /// its webhooks.
    async fn namespace(&self, actor: &Authenticated, ns_id: Id) -> Result<NamespaceListing> {
        let ns = self
            .ctx
            .store
            .namespace_listing(ns_id, Some(actor.user.id))
            .await?
            .ok_or(Error::NotFound("Namespace"))?;
        if !can_view_webhooks(&actor.subject(), &facts(&ns)) {
            return Err(Error::Forbidden);
        }
        Ok(ns)
    }

    fn details(&self, actor: &Authenticated, ns: &NamespaceListing, w: Webhook) -> WebhookDetails {
        let s = actor.subject();
        let f = facts(ns);
        WebhookDetails {
            updatable: can_manage_webhook(&s, &f, &self.ctx.policy),
            destroyable: can_create_webhook(&s, &f, &self.ctx.policy),
            webhook: w,
        }
    }

    async fn webhook_in(&self, ns: &NamespaceListing, id: Id) -> Result<Webhook> {
        self.ctx
            .store
            .webhook_by_id(id)
            .await?
            .filter(|w| w.namespace_id == ns.namespace.id)
            .ok_or(Error::NotFound("Webhook"))
    }

    /// The namespace and webhook for a change the caller must be allowed to `manage`.
    async fn for_change(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
        allowed: fn(
            &portcullis_domain::policy::Subject,
            &NamespaceFacts,
            &portcullis_domain::policy::PolicyOptions,
        ) -> bool,
    ) -> Result<(NamespaceListing, Webhook)> {
        let ns = self.namespace(actor, ns_id).await?;
        let w = self.webhook_in(&ns, id).await?;
        if !allowed(&actor.subject(), &facts(&ns), &self.ctx.policy) {
            return Err(actor.refusal());
        }
        Ok((ns, w))
    }

    async fn record(&self, actor: &Authenticated, ns: &NamespaceListing, w: &Webhook, key: &str) {
        let host = portcullis_webhooks::Url::parse(&w.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        Audit::new(key, "webhook", Some(w.id))
            .scope(Some(ns.namespace.id), Some(ns.namespace.team_id))
            .param("namespace_id", ns.namespace.id)
            .param("namespace_name", ns.namespace.name.clone())
            .param("webhook_name", w.name.clone())
            .param("webhook_url", w.url.clone())
            .param("webhook_host", host)
            .record(&self.ctx, actor)
            .await;
    }

    pub async fn list(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        params: &ListParams,
    ) -> Result<Paged<WebhookDetails>> {
        let ns = self.namespace(actor, ns_id).await?;
        let page = self
            .ctx
            .store
            .webhooks_of_namespace(ns.namespace.id, params.to_page_request(WEBHOOK_SORT)?)
            .await?;
        let items = page
            .items
            .into_iter()
            .map(|w| self.details(actor, &ns, w))
            .collect();
        Ok(params.paged(items, page.total))
    }

    pub async fn show(&self, actor: &Authenticated, ns_id: Id, id: Id) -> Result<WebhookDetails> {
        let ns = self.namespace(actor, ns_id).await?;
        let w = self.webhook_in(&ns, id).await?;
        Ok(self.details(actor, &ns, w))
    }

    /// Creates a webhook; returns it with its signing secret (shown this once).
    pub async fn create(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        input: &WebhookInput,
    ) -> Result<(WebhookDetails, String)> {
        let ns = self.namespace(actor, ns_id).await?;
        if !can_create_webhook(&actor.subject(), &facts(&ns), &self.ctx.policy) {
            return Err(actor.refusal());
        }
        let mut p = Problems::default();
        let name = input.name.as_deref().unwrap_or_default();
        p.check("name", name_problem(name));
        let url = parse_url(
            &mut p,
            self.ctx.webhooks.policy,
            input.url.as_deref().unwrap_or_default(),
        );
        let method = input
            .request_method
            .as_deref()
            .map_or(Some(RequestMethod::Get), |m| parse_method(&mut p, m));
        let content_type = input
            .content_type
            .as_deref()
            .map_or(Some(BodyType::Json), |c| parse_content_type(&mut p, c));
        let actions = match &input.actions {
            Some(a) => parse_actions(&mut p, a),
            None => vec![WebhookAction::Push, WebhookAction::Delete],
        };
        let glob = input.repository_glob.clone().unwrap_or_else(|| "*".into());
        p.check("repository_glob", glob_problem(&glob));
        let username = input.username.clone().unwrap_or_default();
        p.check("username", too_long(&username, NAME_MAX));
        let password = input.password.clone().filter(|s| !s.is_empty());
        p.check(
            "password",
            password
                .as_deref()
                .and_then(|s| too_long(s, HEADER_VALUE_MAX)),
        );
        p.finish()?;
        let (Some(method), Some(content_type)) = (method, content_type) else {
            return Err(Error::internal("a checked webhook field was missing"));
        };
        let rt = &self.ctx.webhooks;
        let random = self.ctx.random.as_ref();
        let secret = new_token(random, SECRET_PREFIX);
        let new = NewWebhook {
            namespace_id: ns.namespace.id,
            name: name.trim().to_owned(),
            url,
            request_method: method,
            content_type,
            username,
            password_sealed: password
                .map(|p| rt.seal(random, p.as_bytes(), AAD_PASSWORD))
                .transpose()?,
            secret_sealed: rt.seal(random, secret.as_bytes(), AAD_SECRET)?,
            enabled: input.enabled.unwrap_or(false),
            actions,
            repository_glob: glob,
        };
        let w = self
            .ctx
            .store
            .create_webhook(&new, self.ctx.clock.now())
            .await?;
        self.record(actor, &ns, &w, "webhook.create").await;
        Ok((self.details(actor, &ns, w), secret))
    }

    pub async fn update(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
        changes: &WebhookInput,
    ) -> Result<WebhookDetails> {
        let (ns, before) = self
            .for_change(actor, ns_id, id, can_manage_webhook)
            .await?;
        let mut p = Problems::default();
        if let Some(name) = &changes.name {
            p.check("name", name_problem(name));
        }
        let url = changes
            .url
            .as_deref()
            .map(|u| parse_url(&mut p, self.ctx.webhooks.policy, u));
        let method = changes
            .request_method
            .as_deref()
            .and_then(|m| parse_method(&mut p, m));
        let content_type = changes
            .content_type
            .as_deref()
            .and_then(|c| parse_content_type(&mut p, c));
        let actions = changes.actions.as_deref().map(|a| parse_actions(&mut p, a));
        if let Some(glob) = &changes.repository_glob {
            p.check("repository_glob", glob_problem(glob));
        }
        if let Some(u) = &changes.username {
            p.check("username", too_long(u, NAME_MAX));
        }
        if let Some(pw) = &changes.password {
            p.check("password", too_long(pw, HEADER_VALUE_MAX));
        }
        p.finish()?;
        let random = self.ctx.random.as_ref();
        let password_sealed = match changes.password.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(pw) => Some(Some(self.ctx.webhooks.seal(
                random,
                pw.as_bytes(),
                AAD_PASSWORD,
            )?)),
        };
        let update = WebhookUpdate {
            name: changes.name.as_ref().map(|n| n.trim().to_owned()),
            url,
            request_method: method,
            content_type,
            username: changes.username.clone(),
            password_sealed,
            enabled: changes.enabled,
            actions,
            repository_glob: changes.repository_glob.clone(),
        };
        let after = self
            .ctx
            .store
            .update_webhook(before.id, &update, self.ctx.clock.now())
            .await
            .map_err(not_found_as("Webhook"))?;
        // Portus: toggling writes enabled/disabled, any other change writes update.
        if after.enabled != before.enabled {
            let key = if after.enabled {
                "webhook.enabled"
            } else {
                "webhook.disabled"
            };
            self.record(actor, &ns, &after, key).await;
        }
        let toggled_only = WebhookUpdate {
            enabled: update.enabled,
            ..WebhookUpdate::default()
        } == update;
        if !toggled_only {
            self.record(actor, &ns, &after, "webhook.update").await;
        }
        Ok(self.details(actor, &ns, after))
    }

    /// Replaces the signing secret; returns the new one (shown this once).
    pub async fn rotate_secret(&self, actor: &Authenticated, ns_id: Id, id: Id) -> Result<String> {
        let (ns, w) = self
            .for_change(actor, ns_id, id, can_manage_webhook)
            .await?;
        let random = self.ctx.random.as_ref();
        let secret = new_token(random, SECRET_PREFIX);
        let sealed = self
            .ctx
            .webhooks
            .seal(random, secret.as_bytes(), AAD_SECRET)?;
        self.ctx
            .store
            .set_webhook_secret(w.id, &sealed, self.ctx.clock.now())
            .await
            .map_err(not_found_as("Webhook"))?;
        self.record(actor, &ns, &w, "webhook.update").await;
        Ok(secret)
    }

    pub async fn delete(&self, actor: &Authenticated, ns_id: Id, id: Id) -> Result<()> {
        let (ns, w) = self
            .for_change(actor, ns_id, id, can_create_webhook)
            .await?;
        if !self.ctx.store.delete_webhook(w.id).await? {
            return Err(Error::NotFound("Webhook"));
        }
        self.record(actor, &ns, &w, "webhook.destroy").await;
        Ok(())
    }

    pub async fn headers(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
    ) -> Result<Vec<WebhookHeader>> {
        let ns = self.namespace(actor, ns_id).await?;
        let w = self.webhook_in(&ns, id).await?;
        Ok(self.ctx.store.webhook_headers(w.id).await?)
    }

    pub async fn create_header(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
        name: &str,
        value: &str,
    ) -> Result<WebhookHeader> {
        let (ns, w) = self
            .for_change(actor, ns_id, id, can_manage_webhook)
            .await?;
        let name = name.trim();
        let mut p = Problems::default();
        if name.is_empty() {
            p.add("name", "can't be blank");
        }
        p.check("name", too_long(name, NAME_MAX));
        p.check("value", too_long(value, HEADER_VALUE_MAX));
        if p.0.is_empty()
            && let Err(problem) = check_custom_header(name, value)
        {
            p.add("name", problem);
        }
        p.finish()?;
        let sealed =
            self.ctx
                .webhooks
                .seal(self.ctx.random.as_ref(), value.as_bytes(), AAD_HEADER)?;
        let header = self
            .ctx
            .store
            .create_webhook_header(w.id, name, &sealed, self.ctx.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => Error::invalid("name", "has already been taken"),
                other => other.into(),
            })?;
        self.record(actor, &ns, &w, "webhook.update").await;
        Ok(header)
    }

    pub async fn delete_header(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
        header_id: Id,
    ) -> Result<()> {
        let (ns, w) = self
            .for_change(actor, ns_id, id, can_manage_webhook)
            .await?;
        if !self
            .ctx
            .store
            .delete_webhook_header(w.id, header_id)
            .await?
        {
            return Err(Error::NotFound("Webhook header"));
        }
        self.record(actor, &ns, &w, "webhook.update").await;
        Ok(())
    }

    pub async fn deliveries(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
        params: &ListParams,
    ) -> Result<Paged<WebhookDelivery>> {
        let ns = self.namespace(actor, ns_id).await?;
        let w = self.webhook_in(&ns, id).await?;
        let page = self
            .ctx
            .store
            .deliveries_of_webhook(w.id, params.to_page_request(DELIVERY_SORT)?)
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    /// One delivery with every attempt.
    pub async fn delivery(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
        delivery_id: Id,
    ) -> Result<(WebhookDelivery, Vec<WebhookAttempt>)> {
        let ns = self.namespace(actor, ns_id).await?;
        let w = self.webhook_in(&ns, id).await?;
        let delivery = self
            .ctx
            .store
            .delivery_by_id(delivery_id)
            .await?
            .filter(|d| d.webhook_id == w.id)
            .ok_or(Error::NotFound("Webhook delivery"))?;
        let attempts = self.ctx.store.delivery_attempts(delivery.id).await?;
        Ok((delivery, attempts))
    }

    /// Queues the stored event again, sent with the webhook's current settings.
    pub async fn resend(
        &self,
        actor: &Authenticated,
        ns_id: Id,
        id: Id,
        delivery_id: Id,
    ) -> Result<WebhookDelivery> {
        let (_, w) = self
            .for_change(actor, ns_id, id, can_manage_webhook)
            .await?;
        let delivery = self
            .ctx
            .store
            .delivery_by_id(delivery_id)
            .await?
            .filter(|d| d.webhook_id == w.id)
            .ok_or(Error::NotFound("Webhook delivery"))?;
        let now = self.ctx.clock.now();
        let payload = DeliveryPayload {
            delivery_id: delivery.id,
            manual: true,
        };
        self.ctx
            .store
            .requeue_delivery(delivery.id, &delivery_job(&self.ctx, &payload, now), now)
            .await
            .map_err(not_found_as("Webhook delivery"))?;
        self.ctx.wake_workers();
        self.ctx
            .store
            .delivery_by_id(delivery.id)
            .await?
            .ok_or(Error::NotFound("Webhook delivery"))
    }
}

/// Creates the deliveries an event causes in namespace `namespace_id` (repository
/// `repository` inside it) and queues their jobs. Idempotent per (webhook, event).
pub(crate) async fn enqueue_for_event(
    ctx: &Arc<Context>,
    namespace_id: Id,
    repository: &str,
    event: &RegistryEvent,
) -> std::result::Result<(), StoreError> {
    let hooks = ctx.store.enabled_webhooks(namespace_id).await?;
    let deliveries: Vec<NewDelivery> = hooks
        .iter()
        .filter(|w| w.fires_on(&event.action, repository))
        .map(|w| NewDelivery {
            webhook_id: w.id,
            uuid: new_uuid(ctx.random.as_ref()),
            event_id: event.event_id.clone(),
            payload: event.data.clone(),
        })
        .collect();
    if deliveries.is_empty() {
        return Ok(());
    }
    let now = ctx.clock.now();
    let created = ctx
        .store
        .enqueue_deliveries(
            &deliveries,
            |delivery_id| {
                delivery_job(
                    ctx,
                    &DeliveryPayload {
                        delivery_id,
                        manual: false,
                    },
                    now,
                )
            },
            now,
        )
        .await?;
    if !created.is_empty() {
        ctx.wake_workers();
    }
    Ok(())
}

/// The request for one attempt, secrets opened.
fn request(
    rt: &WebhookRuntime,
    w: &Webhook,
    secrets: &WebhookSecrets,
    d: &WebhookDelivery,
    now: Timestamp,
) -> std::result::Result<WebhookRequest, String> {
    let password = secrets
        .password_sealed
        .as_deref()
        .map(|s| rt.open(s, AAD_PASSWORD))
        .transpose()?;
    let headers = secrets
        .headers
        .iter()
        .map(|(name, sealed)| Ok((name.clone(), rt.open(sealed, AAD_HEADER)?)))
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(WebhookRequest {
        url: w.url.clone(),
        method: match w.request_method {
            RequestMethod::Get => Method::Get,
            RequestMethod::Post => Method::Post,
        },
        content_type: match w.content_type {
            BodyType::Json => ContentType::Json,
            BodyType::Form => ContentType::Form,
        },
        username: Some(w.username.clone()).filter(|u| !u.is_empty()),
        password,
        headers,
        body: d.payload.clone().into_bytes(),
        signing_secret: Some(rt.open(&secrets.secret_sealed, AAD_SECRET)?.into_bytes()),
        unix_seconds: now.as_secs(),
        delivery_id: d.uuid.clone(),
    })
}

impl WebhookService {
    /// Runs one delivery job: sends, records the attempt, asks for a retry (with the
    /// queue's backoff) unless the receiver answered 2xx.
    pub(crate) async fn run_delivery(&self, payload: &DeliveryPayload) -> JobOutcome {
        match self.try_deliver(payload).await {
            Ok(outcome) => outcome,
            Err(e) => JobOutcome::Retry(e.to_string()),
        }
    }

    async fn try_deliver(
        &self,
        payload: &DeliveryPayload,
    ) -> std::result::Result<JobOutcome, StoreError> {
        let store = &self.ctx.store;
        // Gone (pruned, or its webhook deleted): nothing left to do.
        let Some(d) = store.delivery_by_id(payload.delivery_id).await? else {
            return Ok(JobOutcome::Done);
        };
        let (Some(w), Some(secrets)) = (
            store.webhook_by_id(d.webhook_id).await?,
            store.webhook_secrets(d.webhook_id).await?,
        ) else {
            return Ok(JobOutcome::Done);
        };
        let now = self.ctx.clock.now();
        if !w.enabled && !payload.manual {
            let attempt = DeliveryAttempt {
                error: Some("not sent: the webhook was disabled".into()),
                ..DeliveryAttempt::default()
            };
            store.record_delivery_attempt(d.id, &attempt, now).await?;
            return Ok(JobOutcome::Done);
        }
        let rt = &self.ctx.webhooks;
        let req = match request(rt, &w, &secrets, &d, now) {
            Ok(r) => r,
            Err(e) => return Ok(JobOutcome::Fail(e)),
        };
        let deliverer = match rt.deliverer() {
            Ok(d) => d,
            Err(e) => return Ok(JobOutcome::Retry(e)),
        };
        let outcome = deliverer.deliver(&req).await;
        // Custom header values may be credentials: the log keeps their names only.
        let custom: Vec<String> = req
            .headers
            .iter()
            .map(|(n, _)| n.to_ascii_lowercase())
            .collect();
        let sent: Vec<(String, String)> = outcome
            .request_headers
            .iter()
            .map(|(n, v)| {
                let v = if custom.contains(&n.to_ascii_lowercase()) {
                    "[redacted]".to_owned()
                } else {
                    v.clone()
                };
                (n.clone(), v)
            })
            .collect();
        let attempt = DeliveryAttempt {
            status: outcome.status.map(i64::from),
            error: outcome.error.clone(),
            request_header: header_lines(&sent),
            request_body: outcome.request_body.clone(),
            response_header: header_lines(&outcome.response_headers),
            response_body: outcome.response_body.clone(),
            duration_ms: i64::try_from(outcome.duration.as_millis()).unwrap_or(i64::MAX),
        };
        store
            .record_delivery_attempt(d.id, &attempt, self.ctx.clock.now())
            .await?;
        crate::metrics::webhook_attempt(if outcome.succeeded() {
            "delivered"
        } else {
            "failed"
        });
        Ok(if outcome.succeeded() {
            JobOutcome::Done
        } else {
            JobOutcome::Retry(match (outcome.status, outcome.error) {
                (_, Some(e)) => e,
                (Some(s), None) => format!("the receiver answered HTTP {s}"),
                (None, None) => "no response".into(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SeededRandom;

    #[test]
    fn uuids_are_version_4() {
        let r = SeededRandom::default();
        let a = new_uuid(&r);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, new_uuid(&r));
    }

    #[test]
    fn header_log_lines() {
        let h = vec![("A".to_owned(), "1".to_owned()), ("B".into(), "2".into())];
        assert_eq!(header_lines(&h), "A: 1\nB: 2");
    }
}
