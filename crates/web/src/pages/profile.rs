//! The profile: application tokens (created with pull-only and expiry options, the
//! secret shown once), web sessions per device with sign-out, and the password change
//! (which ends every other session).

use super::{Chrome, field_error, page};
use crate::format;
use crate::render::PageResult;
use crate::session::{
    NoFields, PagePath, PageQuery, SESSION_COOKIE, Submitted, Viewer, see_other, set_cookie,
};
use axum::extract::State;
use axum::http::{StatusCode, header};
use portcullis_domain::Error;
use portcullis_domain::model::Id;
use portcullis_service::auth::AuthMethod;
use portcullis_service::users::TokenInput;
use portcullis_service::{Authenticated, Services};
use serde::Deserialize;
use std::collections::BTreeMap;

super::field_errors!(ProfilePage);

pub struct TokenRow {
    pub id: i64,
    pub application: String,
    pub pull_only: bool,
    pub expires: String,
    pub last_used: String,
    pub created: String,
}

pub struct DeviceRow {
    pub id: i64,
    pub client: String,
    pub service: String,
    pub last_used: String,
    pub created: String,
}

pub struct SessionRow {
    pub id: i64,
    pub user_agent: String,
    pub created: String,
    pub last_seen: String,
    pub current: bool,
}

#[derive(askama::Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    chrome: Chrome,
    username: String,
    email: String,
    display_name: Option<String>,
    bot: bool,
    /// Signs in through LDAP or an identity provider: no password here to change, and
    /// `docker login` takes an application token.
    no_local_password: bool,
    tokens: Vec<TokenRow>,
    /// The secret of a token created just now, shown this once.
    new_token: Option<(String, String)>,
    sessions: Vec<SessionRow>,
    /// Refresh tokens `docker login` got, one per device.
    devices: Vec<DeviceRow>,
    errors: BTreeMap<String, Vec<String>>,
    application: String,
    notice: Option<String>,
    password_changed: bool,
}

#[derive(Default)]
struct Extras {
    new_token: Option<(String, String)>,
    errors: BTreeMap<String, Vec<String>>,
    application: String,
    password_changed: bool,
    notice: Option<String>,
}

impl Extras {
    /// A refused form's messages, by field.
    fn refused(errors: BTreeMap<String, Vec<String>>) -> Self {
        Extras {
            errors,
            ..Extras::default()
        }
    }
}

async fn profile_page(
    s: &Services,
    viewer: &Viewer,
    me: &Authenticated,
    status: StatusCode,
    extras: Extras,
) -> PageResult {
    let tokens = s
        .users
        .list_application_tokens(me, me.user.id)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            application: t.application,
            pull_only: t.pull_only,
            expires: t.expires_at.map(format::when).unwrap_or_default(),
            last_used: t.last_used_at.map(format::when).unwrap_or_default(),
            created: format::when(t.created_at),
        })
        .collect();
    let current = match me.method {
        AuthMethod::Session { id } => Some(id),
        _ => None,
    };
    let sessions = s
        .sessions
        .list(me)
        .await?
        .into_iter()
        .map(|x| SessionRow {
            id: x.id,
            user_agent: x.user_agent,
            created: format::when(x.created_at),
            last_seen: format::when(x.last_seen_at),
            current: Some(x.id) == current,
        })
        .collect();
    let devices = s
        .users
        .list_refresh_tokens(me, me.user.id)
        .await?
        .into_iter()
        .map(|t| DeviceRow {
            id: t.id,
            client: t.client_id,
            service: t.service,
            last_used: t.last_used_at.map(format::when).unwrap_or_default(),
            created: format::when(t.created_at),
        })
        .collect();
    let t = ProfilePage {
        chrome: Chrome::new(s, viewer, "Profile", "profile"),
        username: me.user.username.clone(),
        email: me.user.email.clone(),
        display_name: s
            .config()
            .display_name
            .enabled
            .then(|| me.user.display_name.clone().unwrap_or_default()),
        bot: me.user.bot,
        no_local_password: !me.user.bot && me.user.password_hash.is_none(),
        tokens,
        new_token: extras.new_token,
        sessions,
        devices,
        errors: extras.errors,
        application: extras.application,
        notice: extras.notice,
        password_changed: extras.password_changed,
    };
    page(s, viewer, status, &t)
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    password: Option<String>,
}

pub async fn show(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<ProfileQuery>,
) -> PageResult {
    let me = viewer.signed_in()?;
    let extras = Extras {
        password_changed: q.password.as_deref() == Some("changed"),
        ..Extras::default()
    };
    profile_page(&s, &viewer, me, StatusCode::OK, extras).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    application: String,
    /// A checkbox: present when ticked.
    pull_only: Option<String>,
    /// Days until it expires; empty: never.
    #[serde(default)]
    expires_in_days: String,
}

pub async fn create_token(
    State(s): State<Services>,
    submitted: Submitted<TokenForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let mut errors = BTreeMap::new();
    let days = form.expires_in_days.trim();
    let expires_at = if days.is_empty() {
        None
    } else {
        match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Some(s.now().plus_secs(d * 86_400)),
            _ => {
                errors.insert(
                    "expires_in_days".to_owned(),
                    vec!["must be a number of days from 1 to 3650".to_owned()],
                );
                None
            }
        }
    };
    let refused = |errors| Extras {
        errors,
        application: form.application.clone(),
        ..Extras::default()
    };
    if !errors.is_empty() {
        return profile_page(
            &s,
            &viewer,
            me,
            StatusCode::UNPROCESSABLE_ENTITY,
            refused(errors),
        )
        .await;
    }
    let input = TokenInput {
        application: form.application.trim().to_owned(),
        pull_only: form.pull_only.is_some(),
        expires_at,
    };
    match s
        .users
        .create_application_token(me, me.user.id, &input)
        .await
    {
        Ok(created) => {
            let extras = Extras {
                new_token: Some((created.token.application, created.plain)),
                ..Extras::default()
            };
            profile_page(&s, &viewer, me, StatusCode::CREATED, extras).await
        }
        Err(Error::Invalid(errors)) => {
            profile_page(
                &s,
                &viewer,
                me,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused(errors),
            )
            .await
        }
        Err(Error::Unprocessable(message)) => {
            let errors = field_error("application", &message);
            profile_page(
                &s,
                &viewer,
                me,
                StatusCode::UNPROCESSABLE_ENTITY,
                refused(errors),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    email: String,
    display_name: Option<String>,
}

pub async fn update_account(
    State(s): State<Services>,
    submitted: Submitted<AccountForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    match s
        .users
        .update_own_profile(me, form.email.trim(), form.display_name.as_deref())
        .await
    {
        Ok(_) => Ok(see_other("/users/edit")),
        Err(Error::Invalid(errors)) => {
            let extras = Extras::refused(errors);
            profile_page(&s, &viewer, me, StatusCode::UNPROCESSABLE_ENTITY, extras).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.users.delete_application_token(me, id).await?;
    Ok(see_other("/users/edit"))
}

pub async fn revoke_device(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.users.delete_refresh_token(me, id).await?;
    Ok(see_other("/users/edit"))
}

/// Disables the caller's own account and signs this browser out.
pub async fn disable_account(
    State(s): State<Services>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let viewer = submitted.viewer;
    let me = viewer.signed_in()?;
    match s.users.disable_own_account(me).await {
        Ok(()) => {
            let mut response = see_other("/users/sign_in");
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&s, SESSION_COOKIE, "", Some(0)),
            );
            Ok(response)
        }
        Err(Error::Unprocessable(message)) => {
            let extras = Extras {
                notice: Some(message),
                ..Extras::default()
            };
            profile_page(&s, &viewer, me, StatusCode::UNPROCESSABLE_ENTITY, extras).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn end_session(
    State(s): State<Services>,
    PagePath(id): PagePath<Id>,
    submitted: Submitted<NoFields>,
) -> PageResult {
    let me = submitted.viewer.signed_in()?;
    s.sessions.end(me, id).await?;
    Ok(see_other("/users/edit"))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

pub async fn change_password(
    State(s): State<Services>,
    submitted: Submitted<PasswordForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let me = viewer.signed_in()?;
    let refuse = |field: &str, message: &str| Extras::refused(field_error(field, message));
    if form.password != form.password_confirmation {
        let extras = refuse("password_confirmation", "doesn't match the new password");
        return profile_page(&s, &viewer, me, StatusCode::UNPROCESSABLE_ENTITY, extras).await;
    }
    let changed = s
        .users
        .change_own_password(me, &form.current_password, &form.password, &viewer.client)
        .await;
    let user = match changed {
        Ok(user) => user,
        Err(Error::Invalid(errors)) => {
            let extras = Extras::refused(errors);
            return profile_page(&s, &viewer, me, StatusCode::UNPROCESSABLE_ENTITY, extras).await;
        }
        Err(e) => return Err(e.into()),
    };
    // Every session ended with the change; this browser gets a new one.
    let caller = Authenticated {
        user,
        method: AuthMethod::Password,
    };
    let new = s.sessions.open(caller, &viewer.user_agent).await?;
    let mut response = see_other("/users/edit?password=changed");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&s, SESSION_COOKIE, &new.cookie, None),
    );
    Ok(response)
}
