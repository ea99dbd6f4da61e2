//! Webhooks, their custom headers and their deliveries.
//!
//! Secrets arrive here already sealed (`password_sealed`, `secret_sealed` and the
//! header `value` column hold ciphertexts made by the service); the store never sees a
//! plaintext and never returns a ciphertext except through [`Store::webhook_secrets`],
//! which only the delivery path calls.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::jobs::enqueue;
use crate::{Page, PageRequest, Sort, Store, StoreError, StoreResult};
use portcullis_domain::inventory::NewJob;
use portcullis_domain::model::Id;
use portcullis_domain::time::Timestamp;
use portcullis_domain::webhooks::{
    BodyType, RequestMethod, Webhook, WebhookAction, WebhookAttempt, WebhookDelivery,
    WebhookHeader, format_actions, parse_actions,
};

const WEBHOOK_COLUMNS: &str = "w.id, w.namespace_id, w.name, w.url, w.request_method, \
     w.content_type, w.username, \
     CAST(CASE WHEN w.password_sealed IS NULL THEN 0 ELSE 1 END AS BIGINT) AS password_set, w.enabled, \
     w.actions, w.repository_glob, w.created_at, w.updated_at";

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.uuid, d.event_id, d.payload, d.status, \
     d.attempts, d.error, d.request_header, d.request_body, d.response_header, \
     d.response_body, d.duration_ms, d.created_at, d.updated_at";

const WEBHOOK_SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("name", Sort::Text),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

const DELIVERY_SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("status", Sort::Nullable),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

fn webhook_row<R: RowGet>(r: &R) -> StoreResult<Webhook> {
    let method: String = r.col("request_method")?;
    let content_type: String = r.col("content_type")?;
    let actions: String = r.col("actions")?;
    Ok(Webhook {
        id: r.col("id")?,
        namespace_id: r.col("namespace_id")?,
        name: r.col("name")?,
        url: r.col("url")?,
        request_method: RequestMethod::parse(&method)
            .ok_or_else(|| StoreError::Other(format!("unknown request method {method:?}")))?,
        content_type: BodyType::parse(&content_type)
            .ok_or_else(|| StoreError::Other(format!("unknown content type {content_type:?}")))?,
        username: r.col("username")?,
        password_set: r.col::<i64>("password_set")? != 0,
        enabled: r.col("enabled")?,
        actions: parse_actions(&actions),
        repository_glob: r.col("repository_glob")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

fn header_row<R: RowGet>(r: &R) -> StoreResult<WebhookHeader> {
    Ok(WebhookHeader {
        id: r.col("id")?,
        webhook_id: r.col("webhook_id")?,
        name: r.col("name")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

fn delivery_row<R: RowGet>(r: &R) -> StoreResult<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: r.col("id")?,
        webhook_id: r.col("webhook_id")?,
        uuid: r.col("uuid")?,
        event_id: r.col("event_id")?,
        payload: r.col("payload")?,
        status: r.col("status")?,
        attempts: r.col("attempts")?,
        error: r.col("error")?,
        request_header: r.col("request_header")?,
        request_body: r.col("request_body")?,
        response_header: r.col("response_header")?,
        response_body: r.col("response_body")?,
        duration_ms: r.col("duration_ms")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub namespace_id: Id,
    pub name: String,
    pub url: String,
    pub request_method: RequestMethod,
    pub content_type: BodyType,
    pub username: String,
    pub password_sealed: Option<String>,
    pub secret_sealed: String,
    pub enabled: bool,
    pub actions: Vec<WebhookAction>,
    pub repository_glob: String,
}

/// The fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub request_method: Option<RequestMethod>,
    pub content_type: Option<BodyType>,
    pub username: Option<String>,
    /// `Some(None)` removes the password.
    pub password_sealed: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub actions: Option<Vec<WebhookAction>>,
    pub repository_glob: Option<String>,
}

/// What a delivery needs that is never shown: the sealed password, signing secret and
/// header values (name, sealed value) in creation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSecrets {
    pub password_sealed: Option<String>,
    pub secret_sealed: String,
    pub headers: Vec<(String, String)>,
}

/// A delivery to create for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook_id: Id,
    pub uuid: String,
    pub event_id: String,
    pub payload: String,
}

/// One attempt's record, overwriting the previous attempt's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryAttempt {
    pub status: Option<i64>,
    pub error: Option<String>,
    pub request_header: String,
    pub request_body: String,
    pub response_header: String,
    pub response_body: String,
    pub duration_ms: i64,
}

impl Store {
    pub async fn create_webhook(&self, w: &NewWebhook, now: Timestamp) -> StoreResult<Webhook> {
        let mut c = self.db.writer().await?;
        let id: Id = fetch_one!(
            c.conn(),
            "INSERT INTO webhooks (namespace_id, name, url, request_method, content_type, \
             username, password_sealed, secret_sealed, enabled, actions, repository_glob, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
            [
                w.namespace_id,
                w.name.as_str(),
                w.url.as_str(),
                w.request_method.as_str(),
                w.content_type.as_str(),
                w.username.as_str(),
                w.password_sealed.as_deref(),
                w.secret_sealed.as_str(),
                w.enabled,
                format_actions(&w.actions),
                w.repository_glob.as_str(),
                now.0,
            ],
            |r| r.col::<Id>("id")
        );
        drop(c);
        self.webhook_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn webhook_by_id(&self, id: Id) -> StoreResult<Option<Webhook>> {
        let mut c = self.db.reader().await?;
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.id = $1");
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [id],
            |r| webhook_row(r)
        ))
    }

    pub async fn webhooks_of_namespace(
        &self,
        namespace_id: Id,
        page: PageRequest,
    ) -> StoreResult<Page<Webhook>> {
        let mut c = self.db.reader().await?;
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.namespace_id = $1{}",
            page.clause("w", WEBHOOK_SORTABLE)
        );
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(sql), [namespace_id], |r| {
            webhook_row(r)
        });
        let total = fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM webhooks WHERE namespace_id = $1",
            [namespace_id],
            |r| r.col::<i64>("n")
        );
        Ok(Page { items, total })
    }

    /// The enabled webhooks of a namespace (event processing filters them further).
    pub async fn enabled_webhooks(&self, namespace_id: Id) -> StoreResult<Vec<Webhook>> {
        let mut c = self.db.reader().await?;
        let sql = format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE w.namespace_id = $1 AND w.enabled \
             ORDER BY w.id"
        );
        Ok(fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [namespace_id],
            |r| webhook_row(r)
        ))
    }

    /// Writes only the named fields. `NotFound` when the webhook is gone.
    pub async fn update_webhook(
        &self,
        id: Id,
        u: &WebhookUpdate,
        now: Timestamp,
    ) -> StoreResult<Webhook> {
        let mut c = self.db.writer().await?;
        let (password_given, password) = match &u.password_sealed {
            Some(p) => (true, p.as_deref()),
            None => (false, None),
        };
        let changed = execute!(
            c.conn(),
            "UPDATE webhooks SET name = COALESCE($2, name), url = COALESCE($3, url), \
             request_method = COALESCE($4, request_method), \
             content_type = COALESCE($5, content_type), username = COALESCE($6, username), \
             password_sealed = CASE WHEN $7 THEN $8 ELSE password_sealed END, \
             enabled = COALESCE($9, enabled), actions = COALESCE($10, actions), \
             repository_glob = COALESCE($11, repository_glob), updated_at = $12 \
             WHERE id = $1",
            [
                id,
                u.name.as_deref(),
                u.url.as_deref(),
                u.request_method.map(RequestMethod::as_str),
                u.content_type.map(BodyType::as_str),
                u.username.as_deref(),
                password_given,
                password,
                u.enabled,
                u.actions.as_deref().map(format_actions),
                u.repository_glob.as_deref(),
                now.0,
            ]
        );
        drop(c);
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        self.webhook_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    /// Replaces the signing secret.
    pub async fn set_webhook_secret(
        &self,
        id: Id,
        secret_sealed: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        let changed = execute!(
            c.conn(),
            "UPDATE webhooks SET secret_sealed = $2, updated_at = $3 WHERE id = $1",
            [id, secret_sealed, now.0]
        );
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a webhook with its headers and deliveries; `false` when it was gone.
    pub async fn delete_webhook(&self, id: Id) -> StoreResult<bool> {
        let mut c = self.db.writer().await?;
        Ok(execute!(c.conn(), "DELETE FROM webhooks WHERE id = $1", [id]) == 1)
    }

    pub async fn webhook_headers(&self, webhook_id: Id) -> StoreResult<Vec<WebhookHeader>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, webhook_id, name, created_at, updated_at FROM webhook_headers \
             WHERE webhook_id = $1 ORDER BY id",
            [webhook_id],
            |r| header_row(r)
        ))
    }

    /// Adds a header; `Conflict("name")` when the webhook has one of that name (in any
    /// case).
    pub async fn create_webhook_header(
        &self,
        webhook_id: Id,
        name: &str,
        value_sealed: &str,
        now: Timestamp,
    ) -> StoreResult<WebhookHeader> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "INSERT INTO webhook_headers (webhook_id, name, value, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id, webhook_id, name, created_at, updated_at",
            [webhook_id, name, value_sealed, now.0],
            |r| header_row(r)
        ))
    }

    pub async fn delete_webhook_header(&self, webhook_id: Id, header_id: Id) -> StoreResult<bool> {
        let mut c = self.db.writer().await?;
        Ok(execute!(
            c.conn(),
            "DELETE FROM webhook_headers WHERE webhook_id = $1 AND id = $2",
            [webhook_id, header_id]
        ) == 1)
    }

    /// The sealed secrets of a webhook, for a delivery.
    pub async fn webhook_secrets(&self, id: Id) -> StoreResult<Option<WebhookSecrets>> {
        let mut c = self.db.reader().await?;
        let Some((password_sealed, secret_sealed)) = fetch_optional!(
            c.conn(),
            "SELECT password_sealed, secret_sealed FROM webhooks WHERE id = $1",
            [id],
            |r| Ok::<_, StoreError>((
                r.col::<Option<String>>("password_sealed")?,
                r.col::<String>("secret_sealed")?
            ))
        ) else {
            return Ok(None);
        };
        let headers = fetch_all!(
            c.conn(),
            "SELECT name, value FROM webhook_headers WHERE webhook_id = $1 ORDER BY id",
            [id],
            |r| Ok::<_, StoreError>((r.col::<String>("name")?, r.col::<String>("value")?))
        );
        Ok(Some(WebhookSecrets {
            password_sealed,
            secret_sealed,
            headers,
        }))
    }

    /// Creates the deliveries of an event and queues a job for each, in one
    /// transaction. A delivery that already exists for its (webhook, event) is left
    /// alone, so processing an event twice sends nothing twice. Returns the ids of the
    /// deliveries created.
    pub async fn enqueue_deliveries(
        &self,
        deliveries: &[NewDelivery],
        job: impl Fn(Id) -> NewJob,
        now: Timestamp,
    ) -> StoreResult<Vec<Id>> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.db.begin().await?;
        let mut created = Vec::new();
        for d in deliveries {
            let id: Option<Id> = fetch_optional!(
                tx.conn(),
                "INSERT INTO webhook_deliveries (webhook_id, uuid, event_id, payload, \
                 attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $5) \
                 ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING id",
                [
                    d.webhook_id,
                    d.uuid.as_str(),
                    d.event_id.as_str(),
                    d.payload.as_str(),
                    now.0
                ],
                |r| r.col::<Id>("id")
            );
            if let Some(id) = id {
                enqueue(tx.conn(), &job(id), now).await?;
                created.push(id);
            }
        }
        tx.notify_jobs().await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Queues another attempt of an existing delivery; `NotFound` when it is gone.
    pub async fn requeue_delivery(&self, id: Id, job: &NewJob, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let changed = execute!(
            tx.conn(),
            "UPDATE webhook_deliveries SET updated_at = $2 WHERE id = $1",
            [id, now.0]
        );
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        enqueue(tx.conn(), job, now).await?;
        tx.notify_jobs().await?;
        tx.commit().await
    }

    pub async fn delivery_by_id(&self, id: Id) -> StoreResult<Option<WebhookDelivery>> {
        let mut c = self.db.reader().await?;
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = $1");
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [id],
            |r| delivery_row(r)
        ))
    }

    pub async fn deliveries_of_webhook(
        &self,
        webhook_id: Id,
        page: PageRequest,
    ) -> StoreResult<Page<WebhookDelivery>> {
        let mut c = self.db.reader().await?;
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1{}",
            page.clause("d", DELIVERY_SORTABLE)
        );
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(sql), [webhook_id], |r| {
            delivery_row(r)
        });
        let total = fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = $1",
            [webhook_id],
            |r| r.col::<i64>("n")
        );
        Ok(Page { items, total })
    }

    /// Records an attempt: the delivery row shows it as the latest and counts it, and
    /// it joins the delivery's attempts, in one transaction. `false` when the delivery
    /// was pruned or its webhook deleted meanwhile.
    pub async fn record_delivery_attempt(
        &self,
        id: Id,
        a: &DeliveryAttempt,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let attempt: Option<i64> = fetch_optional!(
            tx.conn(),
            "UPDATE webhook_deliveries SET status = $2, error = $3, request_header = $4, \
             request_body = $5, response_header = $6, response_body = $7, duration_ms = $8, \
             attempts = attempts + 1, updated_at = $9 WHERE id = $1 RETURNING attempts",
            [
                id,
                a.status,
                a.error.as_deref(),
                a.request_header.as_str(),
                a.request_body.as_str(),
                a.response_header.as_str(),
                a.response_body.as_str(),
                a.duration_ms,
                now.0,
            ],
            |r| r.col::<i64>("attempts")
        );
        let Some(attempt) = attempt else {
            return Ok(false);
        };
        execute!(
            tx.conn(),
            "INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status, error, \
             request_header, request_body, response_header, response_body, duration_ms, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [
                id,
                attempt,
                a.status,
                a.error.as_deref(),
                a.request_header.as_str(),
                a.request_body.as_str(),
                a.response_header.as_str(),
                a.response_body.as_str(),
                a.duration_ms,
                now.0,
            ]
        );
        tx.commit().await?;
        Ok(true)
    }

    /// Every attempt of a delivery, first first.
    pub async fn delivery_attempts(&self, delivery_id: Id) -> StoreResult<Vec<WebhookAttempt>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, delivery_id, attempt, status, error, request_header, request_body, \
             response_header, response_body, duration_ms, created_at \
             FROM webhook_delivery_attempts WHERE delivery_id = $1 ORDER BY id",
            [delivery_id],
            |r| Ok::<_, StoreError>(WebhookAttempt {
                id: r.col("id")?,
                delivery_id: r.col("delivery_id")?,
                attempt: r.col("attempt")?,
                status: r.col("status")?,
                error: r.col("error")?,
                request_header: r.col("request_header")?,
                request_body: r.col("request_body")?,
                response_header: r.col("response_header")?,
                response_body: r.col("response_body")?,
                duration_ms: r.col("duration_ms")?,
                created_at: Timestamp(r.col("created_at")?),
            })
        ))
    }

    /// Keeps the newest `keep` deliveries of each webhook and deletes the rest.
    pub async fn prune_deliveries(&self, keep: i64) -> StoreResult<u64> {
        let mut c = self.db.writer().await?;
        Ok(execute!(
            c.conn(),
            "DELETE FROM webhook_deliveries WHERE id IN (SELECT d.id FROM webhook_deliveries d \
             WHERE (SELECT count(*) FROM webhook_deliveries n \
                    WHERE n.webhook_id = d.webhook_id AND n.id > d.id) >= $1)",
            [keep.max(0)]
        ))
    }
}
