//! Users, the first-admin bootstrap, application tokens and refresh tokens.

use crate::activity::Audit;
use crate::auth::Authenticated;
use crate::listing::{ListParams, Paged};
use crate::secrets::{APPLICATION_TOKEN_PREFIX, RESET_TOKEN_PREFIX, new_token, token_hash};
use portcullis_domain::model::{ApplicationToken, Id, RefreshToken, User, UserListing};
use portcullis_domain::names::{
    is_plausible_email, namespace_name_for_username, validate_password, validate_username,
};
use portcullis_domain::policy::{can_manage_tokens_of, can_view_tokens_of};
use portcullis_domain::time::Timestamp;
use portcullis_domain::{Error, Result};
use portcullis_storage::{NewApplicationToken, NewUser, Refusal, StoreError, UserUpdate};
use std::collections::BTreeMap;

crate::service! {
    /// Users, the first-admin bootstrap, application tokens and refresh tokens.
    UserService
}

#[derive(Debug, Clone, Default)]
pub struct UserInput {
    pub username: String,
    pub email: String,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub bot: bool,
    pub admin: bool,
}

#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub admin: Option<bool>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct TokenInput {
    pub application: String,
    /// Beyond Portus: a token that can only pull.
    pub pull_only: bool,
    /// Beyond Portus: an optional expiry.
    pub expires_at: Option<Timestamp>,
}

/// A freshly created application token; `plain` is shown once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub token: ApplicationToken,
    pub plain: String,
}

/// Attributes clients may sort users by.
/// How long a password reset link works (Portus/Devise: 6 hours).
const RESET_TOKEN_SECS: i64 = 6 * 3600;

pub const USER_SORT: &[&str] = &[
    "id",
    "username",
    "email",
    "created_at",
    "updated_at",
    "admin",
    "enabled",
    "bot",
];

impl UserService {
    /// Validates every field, collecting all problems at once, and hashes the password:
    /// the row to insert and the base name of the personal namespace.
    async fn validated_new_user(&self, input: &UserInput) -> Result<(NewUser, Option<String>)> {
        let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut problem = |field: &str, msg: &str| {
            problems
                .entry(field.to_owned())
                .or_default()
                .push(msg.to_owned());
        };
        if let Err(m) = validate_username(&input.username) {
            problem("username", m);
        }
        if !is_plausible_email(&input.email) {
            problem("email", "is invalid");
        }
        match (&input.password, input.bot) {
            (Some(p), _) => {
                if let Err(m) = validate_password(p) {
                    problem("password", m);
                }
            }
            (None, false) => problem("password", "can't be blank"),
            (None, true) => {}
        }
        if let Some(d) = &input.display_name
            && d.trim().is_empty()
        {
            problem("display_name", "can't be blank");
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let password_hash = match &input.password {
            Some(p) if !input.bot => Some(self.ctx.auth.hash_password(p).await?),
            _ => None,
        };
        // Bots have no personal namespace (Portus).
        let base = (!input.bot)
            .then(|| namespace_name_for_username(&input.username))
            .flatten();
        let user = NewUser {
            username: input.username.clone(),
            email: input.email.clone(),
            display_name: input.display_name.clone(),
            password_hash,
            admin: input.admin,
            bot: input.bot,
        };
        Ok((user, base))
    }

    /// Creates a user or a bot without an acting caller (the operator's CLI). Bots get
    /// an application token named `default`, returned once.
    pub async fn create_user_unchecked(
        &self,
        input: &UserInput,
    ) -> Result<(User, Option<CreatedToken>)> {
        let (new_user, base) = self.validated_new_user(input).await?;
        self.refuse_directory_name(&new_user.username).await?;
        let user = self
            .ctx
            .store
            .create_user(&new_user, base.as_deref(), self.ctx.clock.now())
            .await?;
        self.ctx.grants_changed();
        let token = if user.bot {
            let default = TokenInput {
                application: "default".into(),
                ..Default::default()
            };
            Some(self.mint_application_token(&user, &default).await?)
        } else {
            None
        };
        Ok((user, token))
    }

    /// `POST /api/v1/users/bootstrap`: the first user, an admin, with an application
    /// token named `bootstrap`. The "no user yet" check and the writes are one guarded
    /// transaction, so concurrent bootstraps create exactly one admin.
    pub async fn bootstrap(&self, input: UserInput) -> Result<(User, CreatedToken)> {
        if !self.ctx.config.first_user_admin.enabled {
            return Err(Error::Disabled(
                "first_user_admin is disabled: create the first admin with `portcullis admin create-user --admin`".into(),
            ));
        }
        let input = UserInput {
            admin: true,
            bot: false,
            ..input
        };
        let (new_user, base) = self.validated_new_user(&input).await?;
        let plain = new_token(self.ctx.random.as_ref(), APPLICATION_TOKEN_PREFIX);
        let token = NewApplicationToken {
            application: "bootstrap",
            token_hash: &token_hash(&plain),
            pull_only: false,
            expires_at: None,
        };
        let (user, token) = self
            .ctx
            .store
            .bootstrap_admin(&new_user, base.as_deref(), &token, self.ctx.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::Refused(r @ Refusal::AlreadyBootstrapped) => {
                    Error::Malformed(r.to_string())
                }
                other => other.into(),
            })?;
        self.ctx.grants_changed();
        Ok((user, CreatedToken { token, plain }))
    }

    /// With LDAP, a name the directory has is its user's: a local account of that
    /// name would take the directory user's place (Portus refused it the same way).
    async fn refuse_directory_name(&self, username: &str) -> Result<()> {
        let Some(directory) = self.ctx.auth.directory() else {
            return Ok(());
        };
        let taken = directory
            .has_user(username)
            .await
            .map_err(|e| Error::Unavailable(Box::new(e)))?;
        if taken {
            return Err(Error::invalid(
                "username",
                "belongs to a user of the LDAP directory, who signs in with it",
            ));
        }
        Ok(())
    }

    /// Self-service sign-up (the web UI): allowed when `signup.enabled`, and for the
    /// very first user when `first_user_admin.enabled` (who then becomes an admin).
    /// Both rules are decided inside the transaction that creates the user. With LDAP
    /// there is no sign-up (as in Portus): accounts come from the directory.
    pub async fn sign_up(&self, input: &UserInput) -> Result<User> {
        if self.ctx.auth.directory().is_some() {
            return Err(Error::Disabled(
                "Sign-up is disabled: accounts come from the LDAP directory; sign in with your directory password".into(),
            ));
        }
        let signup_open = self.ctx.config.signup.enabled;
        let first_user_admin = self.ctx.config.first_user_admin.enabled;
        if !signup_open && !first_user_admin {
            return Err(Error::Disabled(
                "Sign-up is disabled on this instance".into(),
            ));
        }
        let input = UserInput {
            admin: false,
            bot: false,
            ..input.clone()
        };
        let (new_user, base) = self.validated_new_user(&input).await?;
        let user = self
            .ctx
            .store
            .sign_up_user(
                &new_user,
                base.as_deref(),
                first_user_admin,
                signup_open,
                self.ctx.clock.now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::Refused(Refusal::SignupClosed) => {
                    Error::Disabled("Sign-up is disabled on this instance".into())
                }
                other => other.into(),
            })?;
        self.ctx.grants_changed();
        Ok(user)
    }

    /// A new account for someone who signed in at an identity provider, linked to
    /// their account there (`provider`, `subject`) in the same transaction. Open
    /// whatever `signup.enabled` says (the provider vouched for them, as in Portus); the
    /// very first user becomes an admin with `first_user_admin.enabled`. No password:
    /// `docker login` takes an application token. `Conflict`-style `Invalid` errors
    /// name the field taken (`username`, `email`, `identity`).
    pub async fn sign_up_external(
        &self,
        username: &str,
        email: &str,
        display_name: Option<&str>,
        identity: (&str, &str),
    ) -> Result<User> {
        let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Err(m) = validate_username(username) {
            problems
                .entry("username".into())
                .or_default()
                .push(m.into());
        }
        if !is_plausible_email(email) {
            problems
                .entry("email".into())
                .or_default()
                .push("is invalid".into());
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        self.refuse_directory_name(username).await?;
        let new_user = NewUser {
            username: username.to_owned(),
            email: email.to_owned(),
            display_name: display_name
                .map(str::to_owned)
                .filter(|d| !d.trim().is_empty()),
            password_hash: None,
            admin: false,
            bot: false,
        };
        let user = self
            .ctx
            .store
            .sign_up_with_identity(
                &new_user,
                namespace_name_for_username(username).as_deref(),
                self.ctx.config.first_user_admin.enabled,
                identity,
                self.ctx.clock.now(),
            )
            .await?;
        self.ctx.grants_changed();
        Ok(user)
    }

    /// Whether the instance has no user yet (its front page leads to sign-up).
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(!self.ctx.store.has_users().await?)
    }

    /// An admin creates a user or a bot (see [`Self::create_user_unchecked`]).
    pub async fn create_user(
        &self,
        actor: &Authenticated,
        input: UserInput,
    ) -> Result<(User, Option<CreatedToken>)> {
        actor.require_admin_to_change()?;
        self.create_user_unchecked(&input).await
    }

    pub async fn list_users(
        &self,
        actor: &Authenticated,
        params: &ListParams,
    ) -> Result<Paged<UserListing>> {
        actor.require_admin()?;
        let page = self
            .ctx
            .store
            .list_users(&params.to_page_request(USER_SORT)?)
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    /// An admin looks a user up by username (the web UI's owner field).
    pub async fn find_by_username(&self, actor: &Authenticated, username: &str) -> Result<User> {
        actor.require_admin()?;
        self.ctx
            .store
            .user_by_username(username)
            .await?
            .ok_or(Error::NotFound("User"))
    }

    /// By numeric id, falling back to email (Portus).
    pub async fn find_user(&self, actor: &Authenticated, id_or_email: &str) -> Result<UserListing> {
        actor.require_admin()?;
        let by_id = match id_or_email.parse::<Id>() {
            Ok(id) => self.ctx.store.user_listing(id).await?,
            Err(_) => None,
        };
        match by_id {
            Some(found) => Ok(found),
            None => self.listing_by_email(id_or_email).await,
        }
    }

    async fn listing_by_email(&self, email: &str) -> Result<UserListing> {
        let user = self
            .ctx
            .store
            .user_by_email(email)
            .await?
            .ok_or(Error::NotFound("User"))?;
        self.listing(user.id).await
    }

    /// One user as lists show them.
    pub async fn listing(&self, id: Id) -> Result<UserListing> {
        self.ctx
            .store
            .user_listing(id)
            .await?
            .ok_or(Error::NotFound("User"))
    }

    async fn user(&self, id: Id) -> Result<User> {
        self.ctx
            .store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound("User"))
    }

    /// Changes only the fields given, in one guarded write (see `Store::update_user`):
    /// a concurrent disable, password change or lockout is never undone, and the last
    /// enabled admin can be neither disabled nor demoted.
    pub async fn update_user(
        &self,
        actor: &Authenticated,
        id: Id,
        changes: UserChanges,
    ) -> Result<UserListing> {
        actor.require_admin_to_change()?;
        let mut update = UserUpdate::default();
        if let Some(name) = changes.username {
            validate_username(&name).map_err(|m| Error::invalid("username", m))?;
            update.username = Some(name);
        }
        if let Some(email) = changes.email {
            if !is_plausible_email(&email) {
                return Err(Error::invalid("email", "is invalid"));
            }
            update.email = Some(email);
        }
        if let Some(display_name) = changes.display_name {
            update.display_name = Some((!display_name.trim().is_empty()).then_some(display_name));
        }
        if let Some(password) = changes.password {
            validate_password(&password).map_err(|m| Error::invalid("password", m))?;
            update.password_hash = Some(self.ctx.auth.hash_password(&password).await?);
        }
        update.enabled = changes.enabled;
        update.admin = changes.admin;
        let (user, credentials_changed) = self
            .ctx
            .store
            .update_user(id, &update, self.ctx.clock.now())
            .await
            .map_err(not_found_as("User"))?;
        if credentials_changed {
            self.ctx.auth.forget_user(user.id);
        }
        if update.admin.is_some() {
            self.ctx.grants_changed();
        }
        self.listing(user.id).await
    }

    /// A user changes their own password (the profile page). The current password is
    /// checked like a sign-in (rate limit, lockout, one verification), so a stolen
    /// session cannot lock its owner out by changing it. Ends every session and
    /// device token of the user, as any password change does.
    pub async fn change_own_password(
        &self,
        actor: &Authenticated,
        current: &str,
        new: &str,
        client: &str,
    ) -> Result<User> {
        actor.require_writable()?;
        if actor.user.bot {
            return Err(Error::Forbidden);
        }
        if is_directory_user(&actor.user) {
            return Err(Error::Unprocessable(DIRECTORY_PASSWORD.into()));
        }
        match self
            .ctx
            .auth
            .password(&actor.user.username, current, client)
            .await
            .map_err(Error::from)
        {
            Ok(_) => {}
            Err(Error::Unauthenticated) => {
                return Err(Error::invalid("current_password", "is not right"));
            }
            Err(e) => return Err(e),
        }
        validate_password(new).map_err(|m| Error::invalid("password", m))?;
        let update = UserUpdate {
            password_hash: Some(self.ctx.auth.hash_password(new).await?),
            ..UserUpdate::default()
        };
        let (user, _) = self
            .ctx
            .store
            .update_user(actor.user.id, &update, self.ctx.clock.now())
            .await
            .map_err(not_found_as("User"))?;
        self.ctx.auth.forget_user(user.id);
        Ok(user)
    }

    /// An admin creates a single-use reset link token for a user (valid 6 hours, as
    /// Portus's); bots have no password to reset.
    pub async fn create_password_reset(
        &self,
        actor: &Authenticated,
        user_id: Id,
    ) -> Result<String> {
        actor.require_admin_to_change()?;
        let user = self
            .ctx
            .store
            .user_by_id(user_id)
            .await?
            .ok_or(Error::NotFound("User"))?;
        if user.bot {
            return Err(Error::Unprocessable(
                "bots have no password: manage their application tokens instead".into(),
            ));
        }
        if is_directory_user(&user) {
            return Err(Error::Unprocessable(DIRECTORY_PASSWORD.into()));
        }
        Ok(self.issue_password_reset(&user).await?.0)
    }

    /// A new reset token for `user` (checked by the caller), and how many hours it is
    /// valid.
    pub(crate) async fn issue_password_reset(&self, user: &User) -> Result<(String, i64)> {
        let plain = new_token(self.ctx.random.as_ref(), RESET_TOKEN_PREFIX);
        let now = self.ctx.clock.now();
        self.ctx
            .store
            .create_password_reset(
                user.id,
                &token_hash(&plain),
                now,
                now.plus_secs(RESET_TOKEN_SECS),
            )
            .await?;
        Ok((plain, RESET_TOKEN_SECS / 3600))
    }

    /// Sets a new password with a reset token, once: the token is checked before the
    /// password is hashed and used up in the transaction that writes it. Every session
    /// and device token of the user ends.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<User> {
        let invalid = || Error::invalid("token", "is invalid or has expired");
        let hash = token_hash(token);
        let now = self.ctx.clock.now();
        if !token.starts_with(RESET_TOKEN_PREFIX)
            || !self.ctx.store.password_reset_usable(&hash, now).await?
        {
            return Err(invalid());
        }
        validate_password(password).map_err(|m| Error::invalid("password", m))?;
        let password_hash = self.ctx.auth.hash_password(password).await?;
        let user = self
            .ctx
            .store
            .reset_password(&hash, &password_hash, now)
            .await?
            .ok_or_else(invalid)?;
        self.ctx.auth.forget_user(user.id);
        Ok(user)
    }

    /// A user disables their own account (Portus's profile page allowed it): every
    /// session and device token ends; an admin re-enables it. The last enabled admin
    /// cannot (guarded in storage).
    pub async fn disable_own_account(&self, actor: &Authenticated) -> Result<()> {
        actor.require_writable()?;
        if actor.user.bot {
            return Err(Error::Forbidden);
        }
        let update = UserUpdate {
            enabled: Some(false),
            ..UserUpdate::default()
        };
        self.ctx
            .store
            .update_user(actor.user.id, &update, self.ctx.clock.now())
            .await
            .map_err(not_found_as("User"))?;
        self.ctx.auth.forget_user(actor.user.id);
        Ok(())
    }

    /// A user changes their own email and display name (the profile page).
    pub async fn update_own_profile(
        &self,
        actor: &Authenticated,
        email: &str,
        display_name: Option<&str>,
    ) -> Result<User> {
        actor.require_writable()?;
        let mut problems = BTreeMap::new();
        if !is_plausible_email(email) {
            problems.insert("email".to_owned(), vec!["is invalid".to_owned()]);
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let update = UserUpdate {
            email: Some(email.to_owned()),
            display_name: display_name
                .filter(|_| self.ctx.config.display_name.enabled)
                .map(|d| (!d.trim().is_empty()).then(|| d.trim().to_owned())),
            ..UserUpdate::default()
        };
        let (user, _) = self
            .ctx
            .store
            .update_user(actor.user.id, &update, self.ctx.clock.now())
            .await
            .map_err(not_found_as("User"))?;
        Ok(user)
    }

    /// Never the last enabled admin, nor the only owner of a team (guarded in storage).
    pub async fn delete_user(&self, actor: &Authenticated, id: Id) -> Result<()> {
        actor.require_admin_to_change()?;
        let username = self.ctx.store.user_by_id(id).await?.map(|u| u.username);
        if !self.ctx.store.delete_user(id).await? {
            return Err(Error::NotFound("User"));
        }
        self.ctx.grants_changed();
        self.ctx.auth.forget_user(id);
        Audit::new("user.delete", "user", Some(id))
            .param("username", username.unwrap_or_default())
            .record(&self.ctx, actor)
            .await;
        Ok(())
    }

    /// Promotes a user to admin (CLI `admin make-admin`).
    pub async fn make_admin(&self, username: &str) -> Result<User> {
        let user = self
            .ctx
            .store
            .user_by_username(username)
            .await?
            .ok_or(Error::NotFound("User"))?;
        let user = self
            .ctx
            .store
            .set_admin(user.id, true, self.ctx.clock.now())
            .await?;
        self.ctx.grants_changed();
        Ok(user)
    }

    // ---- application tokens ----

    /// The owner of tokens the caller wants to see.
    async fn token_owner_to_view(&self, actor: &Authenticated, user_id: Id) -> Result<User> {
        let owner = self.user(user_id).await?;
        if !can_view_tokens_of(&actor.subject(), owner.id, owner.bot) {
            return Err(Error::Forbidden);
        }
        Ok(owner)
    }

    /// The owner of tokens the caller wants to mint or revoke.
    async fn token_owner_to_change(&self, actor: &Authenticated, user_id: Id) -> Result<User> {
        let owner = self.token_owner_to_view(actor, user_id).await?;
        if !can_manage_tokens_of(&actor.subject(), owner.id, owner.bot) {
            return Err(actor.refusal());
        }
        Ok(owner)
    }

    pub async fn list_application_tokens(
        &self,
        actor: &Authenticated,
        user_id: Id,
    ) -> Result<Vec<ApplicationToken>> {
        let owner = self.token_owner_to_view(actor, user_id).await?;
        Ok(self.ctx.store.list_application_tokens(owner.id).await?)
    }

    pub async fn create_application_token(
        &self,
        actor: &Authenticated,
        user_id: Id,
        input: &TokenInput,
    ) -> Result<CreatedToken> {
        let owner = self.token_owner_to_change(actor, user_id).await?;
        let created = self.mint_application_token(&owner, input).await?;
        token_audit("application_token.create", &created.token)
            .record(&self.ctx, actor)
            .await;
        Ok(created)
    }

    /// The per-user quota is checked and written in one guarded transaction, so
    /// concurrent requests cannot exceed it.
    async fn mint_application_token(
        &self,
        owner: &User,
        input: &TokenInput,
    ) -> Result<CreatedToken> {
        let name = input.application.trim();
        if name.is_empty() {
            return Err(Error::invalid("application", "can't be blank"));
        }
        if name.chars().count() > 255 {
            return Err(Error::invalid(
                "application",
                "is too long (maximum is 255 characters)",
            ));
        }
        let now = self.ctx.clock.now();
        if input.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let plain = new_token(self.ctx.random.as_ref(), APPLICATION_TOKEN_PREFIX);
        let new = NewApplicationToken {
            application: name,
            token_hash: &token_hash(&plain),
            pull_only: input.pull_only,
            expires_at: input.expires_at,
        };
        let max = self.ctx.config.security_policy.max_application_tokens;
        let token = self
            .ctx
            .store
            .create_application_token(owner.id, &new, max, now)
            .await
            .map_err(|e| match e {
                StoreError::Refused(r @ Refusal::TokenQuota(_)) => {
                    Error::invalid("base", r.to_string())
                }
                other => other.into(),
            })?;
        Ok(CreatedToken { token, plain })
    }

    /// Revoking an application token also ends the refresh tokens obtained with it.
    pub async fn delete_application_token(
        &self,
        actor: &Authenticated,
        token_id: Id,
    ) -> Result<()> {
        let token = self
            .ctx
            .store
            .application_token_by_id(token_id)
            .await?
            .ok_or(Error::NotFound("Application token"))?;
        self.token_owner_to_change(actor, token.user_id).await?;
        self.ctx
            .store
            .delete_application_token(token.id)
            .await
            .map_err(not_found_as("Application token"))?;
        token_audit("application_token.destroy", &token)
            .record(&self.ctx, actor)
            .await;
        Ok(())
    }

    // ---- refresh tokens (beyond Portus) ----

    pub async fn list_refresh_tokens(
        &self,
        actor: &Authenticated,
        user_id: Id,
    ) -> Result<Vec<RefreshToken>> {
        let owner = self.token_owner_to_view(actor, user_id).await?;
        Ok(self.ctx.store.list_refresh_tokens(owner.id).await?)
    }

    pub async fn delete_refresh_token(&self, actor: &Authenticated, token_id: Id) -> Result<()> {
        let token = self
            .ctx
            .store
            .refresh_token_by_id(token_id)
            .await?
            .ok_or(Error::NotFound("Refresh token"))?;
        self.token_owner_to_change(actor, token.user_id).await?;
        self.ctx
            .store
            .delete_refresh_token(token.id)
            .await
            .map_err(not_found_as("Refresh token"))
    }
}

/// Storage's "no such row" named for the API; every other error as usual.
fn token_audit<'a>(key: &'a str, token: &ApplicationToken) -> Audit<'a> {
    Audit::new(key, "application_token", Some(token.id))
        .recipient("user", token.user_id)
        .param("application", token.application.clone())
}

pub(crate) fn not_found_as(what: &'static str) -> impl Fn(StoreError) -> Error {
    move |e| match e {
        StoreError::NotFound => Error::NotFound(what),
        other => other.into(),
    }
}

/// Made by the first sign-in through the LDAP directory or an identity provider: no
/// local password, and not a bot (bots have none either).
fn is_directory_user(user: &User) -> bool {
    !user.bot && user.password_hash.is_none()
}

const DIRECTORY_PASSWORD: &str = "this account has no password here: it signs in through the LDAP directory or an identity provider, where the password is changed or reset";
