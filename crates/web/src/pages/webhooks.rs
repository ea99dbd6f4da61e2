//! A namespace's webhooks: the list and creation (the signing secret shown once),
//! a webhook's page (edit, enable/disable, rotate the secret, custom headers whose
//! values are never shown again, deliveries with their attempts, resend, delete).

use super::{Chrome, Pager, page};
use crate::format;
use crate::render::PageResult;
use crate::session::{NoFields, PagePath, PageQuery, Submitted, Viewer, see_other};
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_domain::Error;
use portcullis_domain::model::Id;
use portcullis_domain::policy::can_create_webhook;
use portcullis_domain::webhooks::WebhookAction;
use portcullis_service::Services;
use portcullis_service::listing::ListParams;
use portcullis_service::webhooks::{WebhookDetails, WebhookInput};
use serde::Deserialize;
use std::collections::BTreeMap;

super::field_errors!(WebhooksPage, WebhookPage);

pub struct WebhookRow {
    pub id: i64,
    pub name: String,
    pub url: String,
    pub method: &'static str,
    pub content_type: &'static str,
    pub username: String,
    pub enabled: bool,
    pub push: bool,
    pub delete: bool,
    pub glob: String,
}

impl WebhookRow {
    fn new(d: &WebhookDetails) -> Self {
        let w = &d.webhook;
        WebhookRow {
            id: w.id,
            name: w.name.clone(),
            url: w.url.clone(),
            method: w.request_method.as_str(),
            content_type: w.content_type.as_str(),
            username: w.username.clone(),
            enabled: w.enabled,
            push: w.actions.contains(&WebhookAction::Push),
            delete: w.actions.contains(&WebhookAction::Delete),
            glob: w.repository_glob.clone(),
        }
    }
}

#[derive(askama::Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    ns_id: i64,
    ns_name: String,
    webhooks: Vec<WebhookRow>,
    may_create: bool,
    form: WebhookForm,
    errors: BTreeMap<String, Vec<String>>,
    /// (webhook name, signing secret) of one created just now, shown once.
    new_secret: Option<(String, String)>,
}

/// The webhook form. Checkboxes are present only when ticked.
#[derive(Deserialize, Default)]
pub struct WebhookForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    request_method: String,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    enabled: Option<String>,
    push: Option<String>,
    delete: Option<String>,
    #[serde(default)]
    repository_glob: String,
}

impl WebhookForm {
    fn input(&self) -> WebhookInput {
        let mut actions = Vec::new();
        if self.push.is_some() {
            actions.push("push".to_owned());
        }
        if self.delete.is_some() {
            actions.push("delete".to_owned());
        }
        WebhookInput {
            name: Some(self.name.trim().to_owned()),
            url: Some(self.url.trim().to_owned()),
            request_method: Some(self.request_method.clone()).filter(|m| !m.is_empty()),
            content_type: Some(self.content_type.clone()).filter(|c| !c.is_empty()),
            username: Some(self.username.clone()),
            // Empty on edit: keep the stored password.
            password: Some(self.password.clone()).filter(|p| !p.is_empty()),
            enabled: Some(self.enabled.is_some()),
            actions: Some(actions),
            repository_glob: Some(self.repository_glob.trim().to_owned()).filter(|g| !g.is_empty()),
        }
    }

    fn from_row(w: &WebhookRow) -> Self {
        let on = |b: bool| b.then(|| "on".to_owned());
        WebhookForm {
            name: w.name.clone(),
            url: w.url.clone(),
            request_method: w.method.to_owned(),
            content_type: w.content_type.to_owned(),
            username: w.username.clone(),
            password: String::new(),
            enabled: on(w.enabled),
            push: on(w.push),
            delete: on(w.delete),
            repository_glob: w.glob.clone(),
        }
    }

    /// A new webhook's defaults: POST JSON on push and delete of every repository.
    fn defaults() -> Self {
        WebhookForm {
            request_method: "POST".into(),
            content_type: "application/json".into(),
            push: Some("on".into()),
            delete: Some("on".into()),
            repository_glob: "*".into(),
            ..WebhookForm::default()
        }
    }
}

#[derive(Default)]
struct ListExtras {
    form: Option<WebhookForm>,
    errors: BTreeMap<String, Vec<String>>,
    new_secret: Option<(String, String)>,
}

async fn webhooks_page(
    s: &Services,
    viewer: &Viewer,
    ns_id: Id,
    status: StatusCode,
    extras: ListExtras,
) -> PageResult {
    let me = viewer.signed_in()?;
    let ns = s.namespaces.show_namespace(me, ns_id).await?;
    let all = ListParams {
        all: true,
        ..ListParams::default()
    };
    let webhooks = s
        .webhooks
        .list(me, ns_id, &all)
        .await?
        .items
        .iter()
        .map(WebhookRow::new)
        .collect();
    let opts = s.config().policy_options();
    let t = WebhooksPage {
        chrome: Chrome::new(
            s,
            viewer,
            &format!("Webhooks of {}", ns.namespace.name),
            "namespaces",
        ),
        ns_id,
        ns_name: ns.namespace.name.clone(),
        webhooks,
        may_create: can_create_webhook(&me.subject(), &ns.facts(), &opts),
        form: extras.form.unwrap_or_else(WebhookForm::defaults),
        errors: extras.errors,
        new_secret: extras.new_secret,
    };
    page(s, viewer, status, &t)
}

pub async fn list(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath(ns_id): PagePath<Id>,
) -> PageResult {
    webhooks_page(&s, &viewer, ns_id, StatusCode::OK, ListExtras::default()).await
}

pub async fn create(
    State(s): State<Services>,
    PagePath(ns_id): PagePath<Id>,
    submitted: Submitted<WebhookForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    match s.webhooks.create(me, ns_id, &form.input()).await {
        Ok((created, secret)) => {
            let extras = ListExtras {
                new_secret: Some((created.webhook.name, secret)),
                ..ListExtras::default()
            };
            webhooks_page(&s, &viewer, ns_id, StatusCode::CREATED, extras).await
        }
        Err(Error::Invalid(errors)) => {
            let extras = ListExtras {
                form: Some(WebhookForm {
                    password: String::new(),
                    ..form
                }),
                errors,
                ..ListExtras::default()
            };
            webhooks_page(&s, &viewer, ns_id, StatusCode::UNPROCESSABLE_ENTITY, extras).await
        }
        Err(e) => Err(e.into()),
    }
}

pub struct DeliveryRow {
    pub id: i64,
    pub status: String,
    pub attempts: i64,
    pub error: String,
    pub when: String,
}

#[derive(askama::Template)]
#[template(path = "webhook.html")]
struct WebhookPage {
    chrome: Chrome,
    ns_id: i64,
    ns_name: String,
    webhook: WebhookRow,
    password_set: bool,
    updatable: bool,
    destroyable: bool,
    form: WebhookForm,
    errors: BTreeMap<String, Vec<String>>,
    /// (id, name)
    headers: Vec<(i64, String)>,
    deliveries: Vec<DeliveryRow>,
    pager: Pager,
    new_secret: Option<String>,
    notice: Option<String>,
}

#[derive(Default)]
struct WebhookExtras {
    form: Option<WebhookForm>,
    errors: BTreeMap<String, Vec<String>>,
    new_secret: Option<String>,
    notice: Option<String>,
    page: i64,
}

async fn webhook_page(
    s: &Services,
    viewer: &Viewer,
    ns_id: Id,
    id: Id,
    status: StatusCode,
    extras: WebhookExtras,
) -> PageResult {
    let me = viewer.signed_in()?;
    let ns = s.namespaces.show_namespace(me, ns_id).await?;
    let details = s.webhooks.show(me, ns_id, id).await?;
    let headers = s
        .webhooks
        .headers(me, ns_id, id)
        .await?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect();
    let params = ListParams {
        page: extras.page.max(1),
        per_page: s.config().pagination.per_page,
        sort_order: Some("desc".into()),
        ..ListParams::default()
    };
    let found = s.webhooks.deliveries(me, ns_id, id, &params).await?;
    let deliveries = found
        .items
        .iter()
        .map(|d| DeliveryRow {
            id: d.id,
            status: d.status.map(|c| c.to_string()).unwrap_or_default(),
            attempts: d.attempts,
            error: d.error.clone().unwrap_or_default(),
            when: format::when(d.updated_at),
        })
        .collect();
    let row = WebhookRow::new(&details);
    let t = WebhookPage {
        chrome: Chrome::new(s, viewer, &details.webhook.name, "namespaces"),
        ns_id,
        ns_name: ns.namespace.name.clone(),
        form: extras.form.unwrap_or_else(|| WebhookForm::from_row(&row)),
        webhook: row,
        password_set: details.webhook.password_set,
        updatable: details.updatable,
        destroyable: details.destroyable,
        errors: extras.errors,
        headers,
        deliveries,
        pager: Pager::new(
            &found,
            &format!("/namespaces/{ns_id}/webhooks/{id}?"),
            s.config().pagination.before_after,
        ),
        new_secret: extras.new_secret,
        notice: extras.notice,
    };
    page(s, viewer, status, &t)
}

#[derive(Deserialize)]
pub struct WebhookQuery {
    page: Option<i64>,
}

pub async fn show(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath((ns_id, id)): PagePath<(Id, Id)>,
    PageQuery(q): PageQuery<WebhookQuery>,
) -> PageResult {
    let extras = WebhookExtras {
        page: q.page.unwrap_or(1),
        ..WebhookExtras::default()
    };
    webhook_page(&s, &viewer, ns_id, id, StatusCode::OK, extras).await
}

pub async fn update(
    State(s): State<Services>,
    PagePath((ns_id, id)): PagePath<(Id, Id)>,
    submitted: Submitted<WebhookForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    match s.webhooks.update(me, ns_id, id, &form.input()).await {
        Ok(_) => Ok(see_other(&format!("/namespaces/{ns_id}/webhooks/{id}"))),
        Err(Error::Invalid(errors)) => {
            let extras = WebhookExtras {
                form: Some(WebhookForm {
                    password: String::new(),
                    ..form
                }),
                errors,
                ..WebhookExtras::default()
            };
            webhook_page(
                &s,
                &viewer,
                ns_id,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                extras,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn rotate_secret(
    State(s): State<Services>,
    PagePath((ns_id, id)): PagePath<(Id, Id)>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let viewer = submitted.viewer;
    let me = viewer.signed_in()?;
    let secret = s.webhooks.rotate_secret(me, ns_id, id).await?;
    let extras = WebhookExtras {
        new_secret: Some(secret),
        ..WebhookExtras::default()
    };
    webhook_page(&s, &viewer, ns_id, id, StatusCode::OK, extras).await
}

pub async fn delete(
    State(s): State<Services>,
    PagePath((ns_id, id)): PagePath<(Id, Id)>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.webhooks.delete(me, ns_id, id).await?;
    Ok(see_other(&format!("/namespaces/{ns_id}/webhooks")))
}

#[derive(Deserialize)]
pub struct HeaderForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

pub async fn add_header(
    State(s): State<Services>,
    PagePath((ns_id, id)): PagePath<(Id, Id)>,
    submitted: Submitted<HeaderForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    match s
        .webhooks
        .create_header(me, ns_id, id, form.name.trim(), &form.value)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/namespaces/{ns_id}/webhooks/{id}"))),
        Err(e @ (Error::Invalid(_) | Error::Unprocessable(_))) => {
            let extras = WebhookExtras {
                notice: Some(format!("The header was not added: {e}")),
                ..WebhookExtras::default()
            };
            webhook_page(
                &s,
                &viewer,
                ns_id,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                extras,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_header(
    State(s): State<Services>,
    PagePath((ns_id, id, header_id)): PagePath<(Id, Id, Id)>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.webhooks.delete_header(me, ns_id, id, header_id).await?;
    Ok(see_other(&format!("/namespaces/{ns_id}/webhooks/{id}")))
}

pub async fn resend(
    State(s): State<Services>,
    PagePath((ns_id, id, delivery_id)): PagePath<(Id, Id, Id)>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.webhooks.resend(me, ns_id, id, delivery_id).await?;
    Ok(see_other(&format!("/namespaces/{ns_id}/webhooks/{id}")))
}

pub struct AttemptRow {
    pub attempt: i64,
    pub status: String,
    pub error: String,
    pub duration_ms: i64,
    pub request_header: String,
    pub request_body: String,
    pub response_header: String,
    pub response_body: String,
    pub when: String,
}

#[derive(askama::Template)]
#[template(path = "webhook_delivery.html")]
struct DeliveryPage {
    chrome: Chrome,
    ns_id: i64,
    webhook_id: i64,
    webhook_name: String,
    id: i64,
    uuid: String,
    event_id: String,
    payload: String,
    attempts: Vec<AttemptRow>,
}

pub async fn delivery(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath((ns_id, id, delivery_id)): PagePath<(Id, Id, Id)>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let details = s.webhooks.show(me, ns_id, id).await?;
    let (d, attempts) = s.webhooks.delivery(me, ns_id, id, delivery_id).await?;
    let t = DeliveryPage {
        chrome: Chrome::new(&s, &viewer, &format!("Delivery {}", d.id), "namespaces"),
        ns_id,
        webhook_id: id,
        webhook_name: details.webhook.name,
        id: d.id,
        uuid: d.uuid,
        event_id: d.event_id,
        payload: d.payload,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptRow {
                attempt: a.attempt,
                status: a.status.map(|c| c.to_string()).unwrap_or_default(),
                error: a.error.unwrap_or_default(),
                duration_ms: a.duration_ms,
                request_header: a.request_header,
                request_body: a.request_body,
                response_header: a.response_header,
                response_body: a.response_body,
                when: format::when(a.created_at),
            })
            .collect(),
    };
    page(&s, &viewer, StatusCode::OK, &t)
}
