//! Admin pages: users (create, bots with their token shown once, admin and enabled
//! toggles, edit, delete), registries (create and edit with the reachability check and
//! its "skip remote checks"), all activities with the CSV export, received registry
//! events, and background jobs (retry, cancel). Every handler goes through a service
//! that refuses non-admins again.

use super::dashboard::ActivityRow;
use super::{Chrome, Pager, field_error, page};
use crate::format;
use crate::render::{PageError, PageResult};
use crate::session::{NoFields, PagePath, PageQuery, Submitted, Viewer, see_other};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use portcullis_domain::Error;
use portcullis_domain::inventory::{EventStatus, JobState};
use portcullis_domain::model::Id;
use portcullis_service::listing::ListParams;
use portcullis_service::registries::RegistryInput;
use portcullis_service::users::{UserChanges, UserInput};
use portcullis_service::{Authenticated, Services};
use portcullis_storage::{EventFilter, JobFilter};
use serde::Deserialize;
use std::collections::BTreeMap;

super::field_errors!(UsersPage, EditUserPage, RegistriesPage);

fn admin(viewer: &Viewer) -> Result<&Authenticated, PageError> {
    let me = viewer.signed_in()?;
    me.require_admin()?;
    Ok(me)
}

#[derive(Deserialize)]
pub struct AdminListQuery {
    page: Option<i64>,
    /// A state or status filter of the events and jobs lists.
    #[serde(default)]
    state: String,
}

impl AdminListQuery {
    fn params(&self, s: &Services) -> ListParams {
        ListParams {
            page: self.page.unwrap_or(1).max(1),
            per_page: s.config().pagination.per_page,
            sort_order: Some("desc".into()),
            ..ListParams::default()
        }
    }
}

// ---- users -------------------------------------------------------------------------

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub admin: bool,
    pub enabled: bool,
    pub bot: bool,
    pub me: bool,
    pub created: String,
}

#[derive(askama::Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    pager: Pager,
    form: NewUserForm,
    errors: BTreeMap<String, Vec<String>>,
    /// A bot created just now: (name, token), shown this once.
    new_bot: Option<(String, String)>,
    notice: Option<String>,
    reset_link: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NewUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
    bot: Option<String>,
}

#[derive(Default)]
struct UsersExtras {
    form: NewUserForm,
    errors: BTreeMap<String, Vec<String>>,
    new_bot: Option<(String, String)>,
    notice: Option<String>,
    reset_link: Option<String>,
}

async fn users_page(
    s: &Services,
    viewer: &Viewer,
    q: &AdminListQuery,
    status: StatusCode,
    extras: UsersExtras,
) -> PageResult {
    let me = admin(viewer)?;
    let mut params = q.params(s);
    params.sort_attr = Some("username".into());
    params.sort_order = Some("asc".into());
    let found = s.users.list_users(me, &params).await?;
    let users = found
        .items
        .iter()
        .map(|l| UserRow {
            id: l.user.id,
            username: l.user.username.clone(),
            email: l.user.email.clone(),
            admin: l.user.admin,
            enabled: l.user.enabled,
            bot: l.user.bot,
            me: l.user.id == me.user.id,
            created: format::when(l.user.created_at),
        })
        .collect();
    let t = UsersPage {
        chrome: Chrome::new(s, viewer, "Users", "admin"),
        users,
        pager: Pager::new(&found, "/admin/users?", s.config().pagination.before_after),
        form: NewUserForm {
            password: String::new(),
            password_confirmation: String::new(),
            ..extras.form
        },
        errors: extras.errors,
        new_bot: extras.new_bot,
        notice: extras.notice,
        reset_link: extras.reset_link,
    };
    page(s, viewer, status, &t)
}

pub async fn users(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<AdminListQuery>,
) -> PageResult {
    users_page(&s, &viewer, &q, StatusCode::OK, UsersExtras::default()).await
}

fn first_page() -> AdminListQuery {
    AdminListQuery {
        page: None,
        state: String::new(),
    }
}

pub async fn create_user(
    State(s): State<Services>,
    submitted: Submitted<NewUserForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = admin(&viewer)?;
    let bot = form.bot.is_some();
    if !bot && form.password != form.password_confirmation {
        let errors = field_error("password_confirmation", "doesn't match the password");
        let extras = UsersExtras {
            form,
            errors,
            ..UsersExtras::default()
        };
        return users_page(
            &s,
            &viewer,
            &first_page(),
            StatusCode::UNPROCESSABLE_ENTITY,
            extras,
        )
        .await;
    }
    let input = UserInput {
        username: form.username.trim().to_owned(),
        email: form.email.trim().to_owned(),
        password: (!bot).then(|| form.password.clone()),
        bot,
        ..UserInput::default()
    };
    match s.users.create_user(me, input).await {
        Ok((user, token)) => {
            let extras = UsersExtras {
                new_bot: token.map(|t| (user.username.clone(), t.plain)),
                notice: Some(format!("The user {} was created.", user.username)),
                ..UsersExtras::default()
            };
            users_page(&s, &viewer, &first_page(), StatusCode::CREATED, extras).await
        }
        Err(Error::Invalid(errors)) => {
            let extras = UsersExtras {
                form,
                errors,
                ..UsersExtras::default()
            };
            users_page(
                &s,
                &viewer,
                &first_page(),
                StatusCode::UNPROCESSABLE_ENTITY,
                extras,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// A refusal of a change shown on the users page (the last admin, a team's only
/// owner); anything else is the error page.
async fn refused_on_users_page(s: &Services, viewer: &Viewer, e: Error) -> PageResult {
    let message = match e {
        Error::Unprocessable(m) => m,
        Error::Invalid(_) => e.to_string(),
        other => return Err(PageError::Domain(other)),
    };
    let extras = UsersExtras {
        notice: Some(message),
        ..UsersExtras::default()
    };
    users_page(
        s,
        viewer,
        &first_page(),
        StatusCode::UNPROCESSABLE_ENTITY,
        extras,
    )
    .await
}

#[derive(Deserialize)]
pub struct FlagForm {
    #[serde(default)]
    value: String,
}

async fn change_user(s: &Services, viewer: &Viewer, id: Id, changes: UserChanges) -> PageResult {
    let me = admin(viewer)?;
    match s.users.update_user(me, id, changes).await {
        Ok(_) => Ok(see_other("/admin/users")),
        Err(e) => refused_on_users_page(s, viewer, e).await,
    }
}

pub async fn set_admin(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<FlagForm>,
) -> PageResult {
    let changes = UserChanges {
        admin: Some(submitted.form.value == "true"),
        ..UserChanges::default()
    };
    change_user(&s, &submitted.viewer, id, changes).await
}

pub async fn set_enabled(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<FlagForm>,
) -> PageResult {
    let changes = UserChanges {
        enabled: Some(submitted.form.value == "true"),
        ..UserChanges::default()
    };
    change_user(&s, &submitted.viewer, id, changes).await
}

/// A single-use password reset link for a user, shown to the admin once (the admin
/// passes it on; users can also have one mailed from "Forgot your password?").
pub async fn reset_link(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let viewer = submitted.viewer;
    let me = admin(&viewer)?;
    let token = match s.users.create_password_reset(me, id).await {
        Ok(token) => token,
        Err(e) => return refused_on_users_page(&s, &viewer, e).await,
    };
    let base = s.config().external_url();
    let extras = UsersExtras {
        reset_link: Some(format!("{base}/users/password/edit?token={token}")),
        ..UsersExtras::default()
    };
    users_page(&s, &viewer, &first_page(), StatusCode::CREATED, extras).await
}

pub async fn delete_user(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let viewer = submitted.viewer;
    let me = admin(&viewer)?;
    match s.users.delete_user(me, id).await {
        Ok(()) => Ok(see_other("/admin/users")),
        Err(e) => refused_on_users_page(&s, &viewer, e).await,
    }
}

#[derive(askama::Template)]
#[template(path = "admin_user.html")]
struct EditUserPage {
    chrome: Chrome,
    id: i64,
    form: EditUserForm,
    display_name: bool,
    errors: BTreeMap<String, Vec<String>>,
    /// A bot's application tokens (admins manage them; users manage their own).
    bot_tokens: Option<Vec<BotToken>>,
    /// A bot token created just now: (application, secret), shown once.
    new_token: Option<(String, String)>,
}

pub struct BotToken {
    pub id: i64,
    pub application: String,
    pub pull_only: bool,
    pub last_used: String,
}

#[derive(Deserialize, Default)]
pub struct EditUserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
}

/// The edit page of a user; for a bot, also its application tokens.
async fn edit_user_page(
    s: &Services,
    viewer: &Viewer,
    id: Id,
    status: StatusCode,
    new_token: Option<(String, String)>,
) -> PageResult {
    let me = admin(viewer)?;
    let user = s.users.find_user(me, &id.to_string()).await?.user;
    let bot_tokens = if user.bot {
        Some(
            s.users
                .list_application_tokens(me, user.id)
                .await?
                .into_iter()
                .map(|t| BotToken {
                    id: t.id,
                    application: t.application,
                    pull_only: t.pull_only,
                    last_used: t.last_used_at.map(format::when).unwrap_or_default(),
                })
                .collect(),
        )
    } else {
        None
    };
    let t = EditUserPage {
        chrome: Chrome::new(s, viewer, &format!("Edit {}", user.username), "admin"),
        id,
        form: EditUserForm {
            username: user.username,
            email: user.email,
            display_name: user.display_name.unwrap_or_default(),
        },
        display_name: s.config().display_name.enabled,
        errors: BTreeMap::new(),
        bot_tokens,
        new_token,
    };
    page(s, viewer, status, &t)
}

pub async fn edit_user(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath(id): PagePath<Id>,
) -> PageResult {
    edit_user_page(&s, &viewer, id, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct BotTokenForm {
    #[serde(default)]
    application: String,
    pull_only: Option<String>,
}

/// A new application token for a bot, shown once on its edit page.
pub async fn create_bot_token(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<BotTokenForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = admin(&viewer)?;
    let input = portcullis_service::users::TokenInput {
        application: form.application.trim().to_owned(),
        pull_only: form.pull_only.is_some(),
        expires_at: None,
    };
    let created = s.users.create_application_token(me, id, &input).await?;
    let shown = Some((created.token.application, created.plain));
    edit_user_page(&s, &viewer, id, StatusCode::CREATED, shown).await
}

pub async fn revoke_bot_token(
    State(s): State<Services>,
    PagePath((id, token_id)): PagePath<(Id, Id)>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = admin(&submitted.viewer)?;
    let token = s
        .users
        .list_application_tokens(me, id)
        .await?
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or(Error::NotFound("Application token"))?;
    s.users.delete_application_token(me, token.id).await?;
    Ok(see_other(&format!("/admin/users/{id}/edit")))
}

pub async fn update_user(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<EditUserForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = admin(&viewer)?;
    let changes = UserChanges {
        username: Some(form.username.trim().to_owned()),
        email: Some(form.email.trim().to_owned()),
        display_name: s
            .config()
            .display_name
            .enabled
            .then(|| form.display_name.clone()),
        ..UserChanges::default()
    };
    match s.users.update_user(me, id, changes).await {
        Ok(_) => Ok(see_other("/admin/users")),
        Err(Error::Invalid(errors)) => {
            let t = EditUserPage {
                chrome: Chrome::new(&s, &viewer, "Edit user", "admin"),
                id,
                form,
                display_name: s.config().display_name.enabled,
                errors,
                bot_tokens: None,
                new_token: None,
            };
            page(&s, &viewer, StatusCode::UNPROCESSABLE_ENTITY, &t)
        }
        Err(e) => Err(e.into()),
    }
}

// ---- registries --------------------------------------------------------------------

pub struct RegistryRow {
    pub id: i64,
    pub name: String,
    pub hostname: String,
    pub external_hostname: String,
    pub use_ssl: bool,
}

#[derive(askama::Template)]
#[template(path = "admin_registries.html")]
struct RegistriesPage {
    chrome: Chrome,
    registries: Vec<RegistryRow>,
    /// The form: a new registry, or the one being edited.
    editing: Option<i64>,
    form: RegistryForm,
    errors: BTreeMap<String, Vec<String>>,
    /// The reachability check failed: offer to skip it.
    offer_force: bool,
}

#[derive(Deserialize, Default)]
pub struct RegistryForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    hostname: String,
    use_ssl: Option<String>,
    #[serde(default)]
    external_hostname: String,
    force: Option<String>,
}

async fn registries_page(
    s: &Services,
    viewer: &Viewer,
    status: StatusCode,
    editing: Option<i64>,
    form: RegistryForm,
    errors: BTreeMap<String, Vec<String>>,
) -> PageResult {
    let me = admin(viewer)?;
    let registries = s
        .registries
        .list_registries(me)
        .await?
        .into_iter()
        .map(|r| RegistryRow {
            id: r.id,
            name: r.name,
            hostname: r.hostname,
            external_hostname: r.external_hostname.unwrap_or_default(),
            use_ssl: r.use_ssl,
        })
        .collect();
    let offer_force = errors.contains_key("hostname");
    let t = RegistriesPage {
        chrome: Chrome::new(s, viewer, "Registries", "admin"),
        registries,
        editing,
        form,
        errors,
        offer_force,
    };
    page(s, viewer, status, &t)
}

pub async fn registries(State(s): State<Services>, viewer: Viewer) -> PageResult {
    registries_page(
        &s,
        &viewer,
        StatusCode::OK,
        None,
        RegistryForm::default(),
        BTreeMap::new(),
    )
    .await
}

pub async fn edit_registry(
    State(s): State<Services>,
    viewer: Viewer,
    PagePath(id): PagePath<Id>,
) -> PageResult {
    let me = admin(&viewer)?;
    let r = s
        .registries
        .list_registries(me)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or(Error::NotFound("Registry"))?;
    let form = RegistryForm {
        name: r.name,
        hostname: r.hostname,
        use_ssl: r.use_ssl.then(|| "on".to_owned()),
        external_hostname: r.external_hostname.unwrap_or_default(),
        force: None,
    };
    registries_page(&s, &viewer, StatusCode::OK, Some(id), form, BTreeMap::new()).await
}

fn registry_input(form: &RegistryForm) -> RegistryInput {
    RegistryInput {
        name: form.name.trim().to_owned(),
        hostname: form.hostname.trim().to_owned(),
        use_ssl: form.use_ssl.is_some(),
        external_hostname: Some(form.external_hostname.trim().to_owned()).filter(|e| !e.is_empty()),
    }
}

pub async fn create_registry(
    State(s): State<Services>,
    submitted: Submitted<RegistryForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = admin(&viewer)?;
    let force = form.force.is_some();
    match s
        .registries
        .create_registry(me, registry_input(&form), force)
        .await
    {
        Ok(_) => Ok(see_other("/admin/registries")),
        Err(Error::Invalid(errors)) => {
            registries_page(
                &s,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                form,
                errors,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn update_registry(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<RegistryForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = admin(&viewer)?;
    let force = form.force.is_some();
    match s
        .registries
        .update_registry(me, id, registry_input(&form), force)
        .await
    {
        Ok(_) => Ok(see_other("/admin/registries")),
        Err(Error::Invalid(errors)) => {
            registries_page(
                &s,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(id),
                form,
                errors,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---- activities, events, jobs ------------------------------------------------------

#[derive(askama::Template)]
#[template(path = "admin_activities.html")]
struct ActivitiesPage {
    chrome: Chrome,
    activities: Vec<ActivityRow>,
    pager: Pager,
}

pub async fn activities(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<AdminListQuery>,
) -> PageResult {
    let me = admin(&viewer)?;
    let found = s.repositories.activities(me, true, &q.params(&s)).await?;
    let t = ActivitiesPage {
        chrome: Chrome::new(&s, &viewer, "Activities", "admin"),
        activities: found.items.iter().map(ActivityRow::new).collect(),
        pager: Pager::new(
            &found,
            "/admin/activities?",
            s.config().pagination.before_after,
        ),
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

/// Every activity as CSV (the API's export format).
pub async fn activities_csv(State(s): State<Services>, viewer: Viewer) -> PageResult {
    let me = admin(&viewer)?;
    let all = ListParams {
        all: true,
        sort_order: Some("desc".into()),
        ..ListParams::default()
    };
    let found = s.repositories.activities(me, true, &all).await?;
    let response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"activities.csv\"",
            ),
        ],
        portcullis_http::api::activities_csv(&found.items),
    )
        .into_response();
    Ok(viewer.finish(&s, response))
}

pub struct EventRow {
    pub id: i64,
    pub status: &'static str,
    pub action: String,
    pub target: String,
    pub actor: String,
    pub attempts: i64,
    pub error: String,
    pub received: String,
}

#[derive(askama::Template)]
#[template(path = "admin_events.html")]
struct EventsPage {
    chrome: Chrome,
    events: Vec<EventRow>,
    pager: Pager,
    state: String,
    states: Vec<&'static str>,
}

pub async fn events(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<AdminListQuery>,
) -> PageResult {
    let me = admin(&viewer)?;
    let filter = EventFilter {
        status: EventStatus::parse(&q.state),
        ..EventFilter::default()
    };
    let found = s.inventory.list_events(me, &filter, &q.params(&s)).await?;
    let events = found
        .items
        .iter()
        .map(|e| EventRow {
            id: e.id,
            status: e.status.as_str(),
            action: e.action.clone(),
            target: match &e.tag {
                Some(tag) => format!("{}:{tag}", e.repository),
                None => e.repository.clone(),
            },
            actor: e.actor.clone().unwrap_or_default(),
            attempts: e.attempts,
            error: e.error.clone().unwrap_or_default(),
            received: format::when(e.received_at),
        })
        .collect();
    let t = EventsPage {
        chrome: Chrome::new(&s, &viewer, "Registry events", "admin"),
        events,
        pager: Pager::new(
            &found,
            &format!("/admin/events?state={}&", q.state),
            s.config().pagination.before_after,
        ),
        state: q.state.clone(),
        states: EventStatus::ALL.iter().map(|v| v.as_str()).collect(),
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub state: &'static str,
    pub attempts: String,
    pub run_at: String,
    pub error: String,
    pub retryable: bool,
    pub cancellable: bool,
}

#[derive(askama::Template)]
#[template(path = "admin_jobs.html")]
struct JobsPage {
    chrome: Chrome,
    jobs: Vec<JobRow>,
    pager: Pager,
    state: String,
    states: Vec<&'static str>,
}

pub async fn jobs(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<AdminListQuery>,
) -> PageResult {
    let me = admin(&viewer)?;
    let filter = JobFilter {
        state: JobState::parse(&q.state),
        ..JobFilter::default()
    };
    let found = s.background.list_jobs(me, &filter, &q.params(&s)).await?;
    let jobs = found
        .items
        .iter()
        .map(|j| JobRow {
            id: j.id,
            kind: j.kind.clone(),
            state: j.state.as_str(),
            attempts: format!("{} of {}", j.attempts, j.max_attempts),
            run_at: format::when(j.run_at),
            error: j.last_error.clone().unwrap_or_default(),
            retryable: matches!(j.state, JobState::Failed | JobState::Cancelled),
            cancellable: matches!(j.state, JobState::Queued | JobState::Failed),
        })
        .collect();
    let t = JobsPage {
        chrome: Chrome::new(&s, &viewer, "Background jobs", "admin"),
        jobs,
        pager: Pager::new(
            &found,
            &format!("/admin/jobs?state={}&", q.state),
            s.config().pagination.before_after,
        ),
        state: q.state.clone(),
        states: JobState::ALL.iter().map(|v| v.as_str()).collect(),
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

pub async fn retry_job(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = admin(&submitted.viewer)?;
    s.background.retry_job(me, id).await?;
    Ok(see_other("/admin/jobs"))
}

pub async fn cancel_job(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = admin(&submitted.viewer)?;
    s.background.cancel_job(me, id).await?;
    Ok(see_other("/admin/jobs"))
}
