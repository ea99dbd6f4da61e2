//! The registry token service: turns a token request (service, scopes, caller) into a
//! signed JWT the registry accepts, granting the intersection of what was asked and
//! what the policy allows. Denied actions are dropped silently; only bad credentials
//! and malformed scopes are errors (handled before this point).

use crate::Context;
use crate::auth::Authenticated;
use crate::secrets::{REFRESH_TOKEN_PREFIX, new_token, random_id, token_hash};
use portcullis_domain::names::is_valid_namespace_name;
use portcullis_domain::policy::{NamespaceFacts, registry_grant, repository_grant};
use portcullis_domain::scope::{ResourceType, Scope, namespace_of};
use portcullis_domain::time::Timestamp;
use portcullis_domain::{Error, Result};
use portcullis_registry::jwt::{AccessEntry, Claims};
use std::sync::Arc;

/// Seconds `nbf` lies in the past, for registries whose clock runs slightly behind
/// (Portus used the same 5 s).
const NOT_BEFORE_SKEW_SECS: i64 = 5;

#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub service: String,
    /// `None` when the request had no `scope` at all (`docker login`): then the JWT has
    /// no `access` claim, as Portus.
    pub scopes: Option<Vec<Scope>>,
    /// `offline_token=true` or `access_type=offline`: also return a refresh token.
    pub offline: bool,
    pub client_id: String,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: Timestamp,
    pub refresh_token: Option<String>,
    /// Granted scopes in scope syntax, space-separated (the OAuth2 `scope` field).
    pub scope: String,
    pub access: Vec<AccessEntry>,
}

/// Issues the registry's bearer tokens (and refresh tokens for `docker login`).
#[derive(Clone)]
pub struct TokenService {
    ctx: Arc<Context>,
}

impl TokenService {
    pub(crate) fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    pub async fn issue_token(
        &self,
        who: Option<&Authenticated>,
        req: &TokenRequest,
        existing_refresh_token: Option<String>,
    ) -> Result<IssuedToken> {
        let expires_in = self.ctx.config.registry.jwt_expiration_time.value * 60;
        self.issue(who, req, existing_refresh_token, expires_in)
            .await
    }

    /// A token exchange's registry token (see [`crate::exchange`]): the bot's grants,
    /// living `expires_in` seconds, never with a refresh token (an exchange is
    /// repeated with a fresh ID token instead).
    pub(crate) async fn issue_exchanged(
        &self,
        bot: &Authenticated,
        req: &TokenRequest,
        expires_in: i64,
    ) -> Result<IssuedToken> {
        let req = TokenRequest {
            offline: false,
            ..req.clone()
        };
        self.issue(Some(bot), &req, None, expires_in).await
    }

    async fn issue(
        &self,
        who: Option<&Authenticated>,
        req: &TokenRequest,
        existing_refresh_token: Option<String>,
        expires_in: i64,
    ) -> Result<IssuedToken> {
        let now = self.ctx.clock.now();
        let access = match &req.scopes {
            None => None,
            Some(scopes) => Some(self.grant(who, &req.service, scopes).await?),
        };
        let refresh_token = match (existing_refresh_token, who) {
            (Some(rt), _) => Some(rt),
            (None, Some(w)) if req.offline => self.new_refresh_token(w, req, now).await?,
            _ => None,
        };
        let claims = Claims {
            iss: self.ctx.config.machine_fqdn.value.clone(),
            // The authenticated user, never the unchecked `account` parameter.
            sub: who.map(|w| w.user.username.clone()).unwrap_or_default(),
            aud: req.service.clone(),
            iat: now.as_secs(),
            nbf: now.as_secs() - NOT_BEFORE_SKEW_SECS,
            exp: now.as_secs() + expires_in,
            jti: random_id(self.ctx.random.as_ref()),
            access: access.clone(),
        };
        let token = self
            .ctx
            .signer
            .sign(&claims)
            .map_err(|e| Error::Internal(Box::new(e)))?;
        let access = access.unwrap_or_default();
        let scope = access
            .iter()
            .map(|a| format!("{}:{}:{}", a.resource_type, a.name, a.actions.join(",")))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(IssuedToken {
            token,
            expires_in,
            issued_at: now,
            refresh_token,
            scope,
            access,
        })
    }

    async fn grant(
        &self,
        who: Option<&Authenticated>,
        service: &str,
        scopes: &[Scope],
    ) -> Result<Vec<AccessEntry>> {
        // An unknown service gets a token with empty access (Portus).
        let Some(registry) = self
            .ctx
            .authz
            .registry_by_service(&self.ctx.store, service)
            .await?
        else {
            return Ok(Vec::new());
        };
        let subject = who.map(Authenticated::subject);
        let mut out = Vec::new();
        for scope in scopes {
            let granted = match scope.resource_type {
                ResourceType::Registry => {
                    registry_grant(subject.as_ref(), &scope.name, &scope.actions)
                }
                ResourceType::Repository => {
                    let ns_name = namespace_of(&scope.name);
                    let user_id = who.map(|w| w.user.id);
                    let access = self
                        .ctx
                        .authz
                        .namespace_access(&self.ctx.store, registry.id, ns_name, user_id)
                        .await?;
                    let facts = access.map(|a| NamespaceFacts {
                        kind: a.kind,
                        visibility: a.visibility,
                        role: a.role,
                    });
                    let granted = repository_grant(
                        subject.as_ref(),
                        facts.as_ref(),
                        &scope.actions,
                        &self.ctx.policy,
                    );
                    // Only an admin is granted a push into a namespace that does not
                    // exist yet. A GET must not write: the namespace is created when the
                    // push notification is processed (Portus granted the push, then
                    // ignored the image). A name that cannot be a namespace gets nothing.
                    if facts.is_none() && !ns_name.is_none_or(is_valid_namespace_name) {
                        Vec::new()
                    } else {
                        granted
                    }
                }
            };
            if !granted.is_empty() {
                out.push(AccessEntry {
                    resource_type: scope.resource_type.as_str().to_owned(),
                    name: scope.name.clone(),
                    actions: granted.iter().map(|a| a.as_str().to_owned()).collect(),
                });
            }
        }
        Ok(out)
    }

    /// A refresh token bound to one service and to the credential it was obtained with:
    /// an application token's refresh tokens die with it and never outlive it. A
    /// pull-only token gets none (its holder keeps using the token itself), so a
    /// refresh token can never lift that restriction.
    async fn new_refresh_token(
        &self,
        who: &Authenticated,
        req: &TokenRequest,
        now: Timestamp,
    ) -> Result<Option<String>> {
        if req.service.is_empty() || !who.subject().may_write() {
            return Ok(None);
        }
        let token = new_token(self.ctx.random.as_ref(), REFRESH_TOKEN_PREFIX);
        self.ctx
            .store
            .create_refresh_token(
                who.user.id,
                who.application_token_id(),
                &req.service,
                &req.client_id,
                &token_hash(&token),
                now,
            )
            .await?;
        Ok(Some(token))
    }
}
