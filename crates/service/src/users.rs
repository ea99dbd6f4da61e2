//! Users, the first-admin bootstrap, application tokens and refresh tokens.

use crate::Services;
use crate::auth::Authenticated;
use crate::listing::{ListParams, Paged};
use crate::secrets::{APPLICATION_TOKEN_PREFIX, new_token, token_hash};
use portcullis_domain::model::{ApplicationToken, Id, RefreshToken, User};
use portcullis_domain::names::{
    is_plausible_email, namespace_name_for_username, validate_password, validate_username,
};
use portcullis_domain::policy::can_manage_tokens_of;
use portcullis_domain::time::Timestamp;
use portcullis_domain::{Error, Result};
use portcullis_storage::NewUser;
use std::collections::BTreeMap;

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

impl Services {
    /// Creates a user after validating every field, collecting all problems at once.
    pub async fn create_user_unchecked(&self, input: &UserInput) -> Result<User> {
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
            Some(p) if !input.bot => Some(self.auth.hash_password(p).await?),
            _ => None,
        };
        let now = self.clock.now();
        // Bots have no personal namespace (Portus).
        let base = (!input.bot)
            .then(|| namespace_name_for_username(&input.username))
            .flatten();
        let user = self
            .store
            .create_user(
                &NewUser {
                    username: input.username.clone(),
                    email: input.email.clone(),
                    display_name: input.display_name.clone(),
                    password_hash,
                    admin: false,
                    bot: input.bot,
                },
                base.as_deref(),
                now,
            )
            .await?;
        self.grants_changed();
        if input.admin {
            let admin = self.store.set_admin(user.id, true, now).await?;
            self.grants_changed();
            return Ok(admin);
        }
        Ok(user)
    }

    /// `POST /api/v1/users/bootstrap`: the first user, an admin, with an application
    /// token named `bootstrap`.
    pub async fn bootstrap(&self, mut input: UserInput) -> Result<(User, CreatedToken)> {
        if !self.config.first_user_admin.enabled {
            return Err(Error::MethodNotAllowed(
                "first_user_admin is disabled: create the first admin with `portcullis admin create-user --admin`".into(),
            ));
        }
        if self.store.count_users().await? > 0 {
            return Err(Error::BadRequest(
                "you can only use this when there are no users on the system".into(),
            ));
        }
        input.admin = true;
        input.bot = false;
        let user = self.create_user_unchecked(&input).await?;
        let token = self
            .mint_application_token(
                &user,
                &TokenInput {
                    application: "bootstrap".into(),
                    ..Default::default()
                },
            )
            .await?;
        Ok((user, token))
    }

    /// Admin creates a user or a bot. Bots get an application token named `default`.
    pub async fn create_user(
        &self,
        actor: &Authenticated,
        input: UserInput,
    ) -> Result<(User, Option<CreatedToken>)> {
        actor.require_admin()?;
        let user = self.create_user_unchecked(&input).await?;
        let token = if user.bot {
            Some(
                self.mint_application_token(
                    &user,
                    &TokenInput {
                        application: "default".into(),
                        ..Default::default()
                    },
                )
                .await?,
            )
        } else {
            None
        };
        Ok((user, token))
    }

    pub async fn list_users(
        &self,
        actor: &Authenticated,
        params: &ListParams,
    ) -> Result<Paged<User>> {
        actor.require_admin()?;
        let page = self
            .store
            .list_users(&params.to_page_request(USER_SORT))
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    /// By numeric id, falling back to email (Portus).
    pub async fn find_user(&self, actor: &Authenticated, id_or_email: &str) -> Result<User> {
        actor.require_admin()?;
        let by_id = match id_or_email.parse::<Id>() {
            Ok(id) => self.store.user_by_id(id).await?,
            Err(_) => None,
        };
        match by_id {
            Some(u) => Ok(u),
            None => self
                .store
                .user_by_email(id_or_email)
                .await?
                .ok_or(Error::NotFound("User")),
        }
    }

    async fn user(&self, id: Id) -> Result<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound("User"))
    }

    pub async fn update_user(
        &self,
        actor: &Authenticated,
        id: Id,
        changes: UserChanges,
    ) -> Result<User> {
        actor.require_admin()?;
        let mut user = self.user(id).await?;
        let now = self.clock.now();
        let mut invalidate = false;
        if let Some(name) = changes.username {
            validate_username(&name).map_err(|m| Error::invalid("username", m))?;
            user.username = name;
        }
        if let Some(email) = changes.email {
            if !is_plausible_email(&email) {
                return Err(Error::invalid("email", "is invalid"));
            }
            user.email = email;
        }
        if let Some(display_name) = changes.display_name {
            user.display_name = (!display_name.trim().is_empty()).then_some(display_name);
        }
        if let Some(password) = changes.password {
            validate_password(&password).map_err(|m| Error::invalid("password", m))?;
            user.password_hash = Some(self.auth.hash_password(&password).await?);
            invalidate = true;
        }
        if let Some(enabled) = changes.enabled
            && enabled != user.enabled
        {
            if !enabled {
                self.ensure_not_last_admin(&user).await?;
            }
            user.enabled = enabled;
            invalidate = true;
        }
        if invalidate {
            user.credential_version += 1;
        }
        let mut user = self.store.update_user(&user, now).await?;
        if invalidate {
            // A new password or a disabled account ends every device session.
            self.store.delete_refresh_tokens_of_user(user.id).await?;
            self.auth.forget_user(user.id);
        }
        if let Some(admin) = changes.admin
            && admin != user.admin
        {
            if !admin {
                self.ensure_not_last_admin(&user).await?;
            }
            user = self.store.set_admin(user.id, admin, now).await?;
            self.grants_changed();
        }
        Ok(user)
    }

    /// The last enabled admin can be neither demoted, disabled nor deleted (Portus).
    async fn ensure_not_last_admin(&self, user: &User) -> Result<()> {
        if user.admin && user.enabled && self.store.count_admins().await? <= 1 {
            return Err(Error::Unprocessable("cannot remove the last admin".into()));
        }
        Ok(())
    }

    pub async fn delete_user(&self, actor: &Authenticated, id: Id) -> Result<()> {
        actor.require_admin()?;
        let user = self.user(id).await?;
        self.ensure_not_last_admin(&user).await?;
        self.store.delete_user(user.id).await?;
        self.grants_changed();
        self.auth.forget_user(user.id);
        Ok(())
    }

    /// Promotes a user to admin (CLI `admin make-admin`).
    pub async fn make_admin(&self, username: &str) -> Result<User> {
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(Error::NotFound("User"))?;
        let user = self
            .store
            .set_admin(user.id, true, self.clock.now())
            .await?;
        self.grants_changed();
        Ok(user)
    }

    // ---- application tokens ----

    async fn token_owner(&self, actor: &Authenticated, user_id: Id) -> Result<User> {
        let owner = self.user(user_id).await?;
        if !can_manage_tokens_of(&actor.subject(), owner.id, owner.bot) {
            return Err(Error::Forbidden);
        }
        Ok(owner)
    }

    pub async fn list_application_tokens(
        &self,
        actor: &Authenticated,
        user_id: Id,
    ) -> Result<Vec<ApplicationToken>> {
        let owner = self.token_owner(actor, user_id).await?;
        Ok(self.store.list_application_tokens(owner.id).await?)
    }

    pub async fn create_application_token(
        &self,
        actor: &Authenticated,
        user_id: Id,
        input: &TokenInput,
    ) -> Result<CreatedToken> {
        let owner = self.token_owner(actor, user_id).await?;
        self.mint_application_token(&owner, input).await
    }

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
        let max = self.config.security_policy.max_application_tokens;
        if self.store.count_application_tokens(owner.id).await? >= max {
            return Err(Error::invalid(
                "base",
                format!("Users cannot have more than {max} application tokens"),
            ));
        }
        let now = self.clock.now();
        if input.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let plain = new_token(self.random.as_ref(), APPLICATION_TOKEN_PREFIX);
        let token = self
            .store
            .create_application_token(
                owner.id,
                name,
                &token_hash(&plain),
                input.pull_only,
                input.expires_at,
                now,
            )
            .await?;
        Ok(CreatedToken { token, plain })
    }

    pub async fn delete_application_token(
        &self,
        actor: &Authenticated,
        token_id: Id,
    ) -> Result<()> {
        let token = self
            .store
            .application_token_by_id(token_id)
            .await?
            .ok_or(Error::NotFound("Application token"))?;
        self.token_owner(actor, token.user_id).await?;
        self.store.delete_application_token(token.id).await?;
        Ok(())
    }

    // ---- refresh tokens (beyond Portus) ----

    pub async fn list_refresh_tokens(
        &self,
        actor: &Authenticated,
        user_id: Id,
    ) -> Result<Vec<RefreshToken>> {
        let owner = self.token_owner(actor, user_id).await?;
        Ok(self.store.list_refresh_tokens(owner.id).await?)
    }

    pub async fn delete_refresh_token(&self, actor: &Authenticated, token_id: Id) -> Result<()> {
        let token = self
            .store
            .refresh_token_by_id(token_id)
            .await?
            .ok_or(Error::NotFound("Refresh token"))?;
        self.token_owner(actor, token.user_id).await?;
        self.store.delete_refresh_token(token.id).await?;
        Ok(())
    }
}
