//! Sign in, sign up, sign out. Sign-in goes through the same authenticator as the
//! token endpoint: one password check per attempt whatever the account, the same
//! lockout and rate limit, and the same answer for a wrong password, an unknown, a
//! disabled or a locked account.

use super::{Chrome, field_error, page};
use crate::render::{PageError, PageResult};
use crate::session::{
    NoFields, PageQuery, SESSION_COOKIE, Submitted, Viewer, see_other, set_cookie,
};
use axum::extract::State;
use axum::http::{StatusCode, header};
use portcullis_domain::Error;
use portcullis_service::users::UserInput;
use portcullis_service::{AuthMethod, Authenticated, Services};
use serde::Deserialize;
use std::collections::BTreeMap;

super::field_errors!(SignUpPage, ResetPage);

#[derive(askama::Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    username: String,
    error: Option<String>,
    lockout_attempts: i64,
    lockout_minutes: i64,
    reset_done: bool,
    /// Not with LDAP: passwords are the directory's.
    forgot_password: bool,
    /// The username and password form (`oauth.local_login.enabled`).
    local_login: bool,
    providers: Vec<portcullis_service::external_login::ProviderButton>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(crate) fn sign_in_form(
    s: &Services,
    viewer: &Viewer,
    status: StatusCode,
    username: String,
    error: Option<String>,
    reset_done: bool,
) -> PageResult {
    let policy = &s.config().security_policy;
    let t = SignInPage {
        chrome: Chrome::new(s, viewer, "Sign in", "sign_in"),
        username,
        error,
        lockout_attempts: policy.lockout_attempts,
        lockout_minutes: policy.lockout_minutes,
        reset_done,
        forgot_password: s.auth.directory().is_none(),
        local_login: s.external_login.local_login(),
        providers: s.external_login.providers(),
    };
    page(s, viewer, status, &t)
}

#[derive(Deserialize)]
pub struct SignInQuery {
    reset: Option<String>,
}

pub async fn sign_in_page(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<SignInQuery>,
) -> PageResult {
    if viewer.caller.is_some() {
        return Ok(see_other("/dashboard"));
    }
    let reset_done = q.reset.as_deref() == Some("done");
    sign_in_form(&s, &viewer, StatusCode::OK, String::new(), None, reset_done)
}

/// A new session: its cookie and the way in.
pub(crate) fn signed_in(s: &Services, cookie: &str) -> axum::response::Response {
    let mut response = see_other("/dashboard");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(s, SESSION_COOKIE, cookie, None),
    );
    response
}

pub async fn sign_in(State(s): State<Services>, submitted: Submitted<SignInForm>) -> PageResult {
    let Submitted { viewer, form } = submitted;
    if !s.external_login.local_login() {
        return Err(PageError::Domain(Error::Disabled(
            "Signing in with a username and password is turned off here (oauth.local_login.enabled): use the identity provider".into(),
        )));
    }
    let result = s
        .sessions
        .sign_in(
            &form.username,
            &form.password,
            &viewer.client,
            &viewer.user_agent,
        )
        .await;
    let (status, message) = match result {
        Ok(new) => return Ok(signed_in(&s, &new.cookie)),
        Err(Error::Unauthenticated) => (StatusCode::UNAUTHORIZED, "Invalid username or password."),
        Err(Error::RateLimited) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts from your address. Wait a minute and try again.",
        ),
        // The form again, with what happened (the LDAP directory or the database did
        // not answer); the details are in the server's log.
        Err(Error::Unavailable(_)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Your password cannot be checked right now: the sign-in service does not answer. Try again in a few minutes.",
        ),
        Err(e) => return Err(PageError::Domain(e)),
    };
    sign_in_form(
        &s,
        &viewer,
        status,
        form.username,
        Some(message.to_owned()),
        false,
    )
}

pub async fn sign_out(State(s): State<Services>, submitted: Submitted<NoFields>) -> PageResult {
    if let Some(cookie) = &submitted.viewer.session_cookie {
        s.sessions.sign_out(cookie).await?;
    }
    let mut response = see_other("/users/sign_in");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&s, SESSION_COOKIE, "", Some(0)),
    );
    Ok(response)
}

#[derive(askama::Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    chrome: Chrome,
    form: SignUpForm,
    errors: BTreeMap<String, Vec<String>>,
    first_user: bool,
    display_name: bool,
}

#[derive(Deserialize, Default)]
pub struct SignUpForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

/// Whether sign-up is open to this visitor: `signup.enabled`, or the first user.
async fn sign_up_open(s: &Services) -> Result<(bool, bool), PageError> {
    let first = s.config().first_user_admin.enabled && s.users.is_empty().await?;
    Ok((s.config().signup.enabled || first, first))
}

fn sign_up_form(
    s: &Services,
    viewer: &Viewer,
    status: StatusCode,
    form: SignUpForm,
    errors: BTreeMap<String, Vec<String>>,
    first_user: bool,
) -> PageResult {
    let t = SignUpPage {
        chrome: Chrome::new(s, viewer, "Create an account", "sign_up"),
        form: SignUpForm {
            password: String::new(),
            password_confirmation: String::new(),
            ..form
        },
        errors,
        first_user,
        display_name: s.config().display_name.enabled,
    };
    page(s, viewer, status, &t)
}

fn sign_up_closed() -> PageError {
    PageError::Domain(Error::Disabled(
        "Sign-up is disabled on this instance: ask an administrator for an account.".into(),
    ))
}

pub async fn sign_up_page(State(s): State<Services>, viewer: Viewer) -> PageResult {
    if viewer.caller.is_some() {
        return Ok(see_other("/dashboard"));
    }
    let (open, first) = sign_up_open(&s).await?;
    if !open {
        return Err(sign_up_closed());
    }
    sign_up_form(
        &s,
        &viewer,
        StatusCode::OK,
        SignUpForm::default(),
        BTreeMap::new(),
        first,
    )
}

pub async fn sign_up(State(s): State<Services>, submitted: Submitted<SignUpForm>) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let (open, first) = sign_up_open(&s).await?;
    if !open {
        return Err(sign_up_closed());
    }
    if form.password != form.password_confirmation {
        let errors = field_error("password_confirmation", "doesn't match the password");
        return sign_up_form(
            &s,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            errors,
            first,
        );
    }
    let display_name = Some(form.display_name.trim().to_owned())
        .filter(|d| !d.is_empty() && s.config().display_name.enabled);
    let input = UserInput {
        username: form.username.trim().to_owned(),
        email: form.email.trim().to_owned(),
        password: Some(form.password.clone()),
        display_name,
        ..Default::default()
    };
    let user = match s.users.sign_up(&input).await {
        Ok(user) => user,
        Err(Error::Invalid(errors)) => {
            return sign_up_form(
                &s,
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
                first,
            );
        }
        Err(e) => return Err(e.into()),
    };
    // The password was just set: the new account is signed in at once.
    let caller = Authenticated {
        user,
        method: AuthMethod::Password,
    };
    let new = s.sessions.open(caller, &viewer.user_agent).await?;
    Ok(signed_in(&s, &new.cookie))
}

#[derive(askama::Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage {
    chrome: Chrome,
    email: String,
    /// After a request: the same words whether an account has the address or not.
    sent: bool,
    error: Option<String>,
}

fn forgot_page(
    s: &Services,
    viewer: &Viewer,
    status: StatusCode,
    email: String,
    sent: bool,
    error: Option<String>,
) -> PageResult {
    let t = ForgotPage {
        chrome: Chrome::new(s, viewer, "Forgot your password?", "sign_in"),
        email,
        sent,
        error,
    };
    page(s, viewer, status, &t)
}

/// "Forgot your password?" (Portus's `/users/password/new`): the address to mail a
/// reset link to. With LDAP there is none to reset here.
pub async fn forgot_password(State(s): State<Services>, viewer: Viewer) -> PageResult {
    if s.auth.directory().is_some() {
        return Err(PageError::Domain(Error::Disabled(
            "Passwords belong to the LDAP directory: reset yours there.".into(),
        )));
    }
    forgot_page(&s, &viewer, StatusCode::OK, String::new(), false, None)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// Queues the reset mail; the page says the same for every address.
pub async fn request_reset(
    State(s): State<Services>,
    submitted: Submitted<ForgotForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let (status, error) = match s
        .mail
        .request_password_reset(&form.email, &viewer.client)
        .await
    {
        Ok(()) => return forgot_page(&s, &viewer, StatusCode::OK, String::new(), true, None),
        Err(Error::Invalid(_)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the email address of your account.",
        ),
        Err(Error::RateLimited) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests from your address. Wait a minute and try again.",
        ),
        Err(e) => return Err(PageError::Domain(e)),
    };
    forgot_page(&s, &viewer, status, form.email, false, Some(error.into()))
}

#[derive(askama::Template)]
#[template(path = "reset_password.html")]
struct ResetPage {
    chrome: Chrome,
    token: String,
    errors: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
}

pub async fn reset_password_page(
    State(s): State<Services>,
    viewer: Viewer,
    PageQuery(q): PageQuery<ResetQuery>,
) -> PageResult {
    let t = ResetPage {
        chrome: Chrome::new(&s, &viewer, "Choose a new password", "sign_in"),
        token: q.token,
        errors: BTreeMap::new(),
    };
    page(&s, &viewer, StatusCode::OK, &t)
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirmation: String,
}

pub async fn reset_password(
    State(s): State<Services>,
    submitted: Submitted<ResetForm>,
) -> PageResult {
    let Submitted { viewer, form } = submitted;
    let refused = |errors| ResetPage {
        chrome: Chrome::new(&s, &viewer, "Choose a new password", "sign_in"),
        token: form.token.clone(),
        errors,
    };
    if form.password != form.password_confirmation {
        let errors = field_error("password_confirmation", "doesn't match the password");
        return page(
            &s,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &refused(errors),
        );
    }
    match s.users.reset_password(&form.token, &form.password).await {
        Ok(_) => Ok(see_other("/users/sign_in?reset=done")),
        Err(Error::Invalid(errors)) => page(
            &s,
            &viewer,
            StatusCode::UNPROCESSABLE_ENTITY,
            &refused(errors),
        ),
        Err(e) => Err(e.into()),
    }
}
