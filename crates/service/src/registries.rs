//! Registries: several per installation (Portus allowed one), each chosen by the token
//! request's `service` (hostname or external hostname).

use crate::auth::Authenticated;
use crate::namespaces::Validation;
use portcullis_domain::model::{Id, Registry};
use portcullis_domain::{Error, Result};
use portcullis_storage::NewRegistry;
use std::collections::BTreeMap;
use std::time::Duration;

crate::service! {
    /// Registries: several per installation, each with its global namespace.
    RegistryService
}

#[derive(Debug, Clone, Default)]
pub struct RegistryInput {
    pub name: String,
    pub hostname: String,
    pub use_ssl: bool,
    pub external_hostname: Option<String>,
}

/// `host` or `host:port`, nothing else (no scheme, no path).
fn hostname_problem(hostname: &str) -> Option<&'static str> {
    if hostname.is_empty() {
        return Some("can't be blank");
    }
    let (host, port) = match hostname.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h, Some(p)),
        _ => (hostname, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if host_ok && port_ok {
        None
    } else {
        Some("must be a host name with an optional port, like registry.example.com:5000")
    }
}

impl RegistryService {
    pub async fn list_registries(&self, actor: &Authenticated) -> Result<Vec<Registry>> {
        actor.require_admin()?;
        Ok(self.ctx.store.list_registries().await?)
    }

    /// Field problems of a registry definition; `only` restricts which fields are
    /// checked (Portus's `only[]`), `reachability` adds the `/v2/` check.
    pub async fn registry_problems(
        &self,
        input: &RegistryInput,
        current: Option<Id>,
        only: &[String],
        reachability: bool,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let wanted = |f: &str| only.is_empty() || only.iter().any(|o| o == f);
        let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let existing = self.ctx.store.list_registries().await?;
        let others = existing.iter().filter(|r| Some(r.id) != current);
        if wanted("name") {
            if input.name.trim().is_empty() {
                problems
                    .entry("name".into())
                    .or_default()
                    .push("can't be blank".into());
            } else if others.clone().any(|r| r.name == input.name) {
                problems
                    .entry("name".into())
                    .or_default()
                    .push("has already been taken".into());
            }
        }
        if wanted("hostname") {
            if let Some(p) = hostname_problem(&input.hostname) {
                problems
                    .entry("hostname".into())
                    .or_default()
                    .push(p.into());
            } else if others.clone().any(|r| r.hostname == input.hostname) {
                problems
                    .entry("hostname".into())
                    .or_default()
                    .push("has already been taken".into());
            } else if reachability {
                let timeout =
                    Duration::from_secs(self.ctx.config.registry.timeout.value.unsigned_abs());
                if let Err(e) = portcullis_registry::client::check_reachable(
                    &input.hostname,
                    input.use_ssl,
                    timeout,
                    &self.ctx.registry_roots,
                )
                .await
                {
                    problems
                        .entry("hostname".into())
                        .or_default()
                        .push(e.to_string());
                }
            }
        }
        if wanted("external_hostname")
            && let Some(ext) = input.external_hostname.as_deref().filter(|e| !e.is_empty())
            && let Some(p) = hostname_problem(ext)
        {
            problems
                .entry("external_hostname".into())
                .or_default()
                .push(p.into());
        }
        Ok(problems)
    }

    pub async fn validate_registry(
        &self,
        actor: &Authenticated,
        input: &RegistryInput,
        only: &[String],
    ) -> Result<Validation> {
        actor.require_admin()?;
        let messages = self.registry_problems(input, None, only, true).await?;
        Ok(Validation {
            valid: messages.is_empty(),
            messages,
        })
    }

    /// Creates a registry with its global namespace and everyone's personal namespace.
    /// `force` skips the reachability check (Portus's "Skip remote checks").
    pub async fn create_registry(
        &self,
        actor: &Authenticated,
        input: RegistryInput,
        force: bool,
    ) -> Result<Registry> {
        actor.require_admin_to_change()?;
        self.create_registry_unchecked(input, force).await
    }

    /// Same as [`Self::create_registry`] without an actor (CLI, start-up seeding).
    pub async fn create_registry_unchecked(
        &self,
        input: RegistryInput,
        force: bool,
    ) -> Result<Registry> {
        let problems = self.registry_problems(&input, None, &[], !force).await?;
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let registry = self
            .ctx
            .store
            .create_registry(
                &NewRegistry {
                    name: input.name.trim().to_owned(),
                    hostname: input.hostname,
                    use_ssl: input.use_ssl,
                    external_hostname: input.external_hostname.filter(|e| !e.is_empty()),
                },
                self.ctx.clock.now(),
            )
            .await?;
        self.ctx.grants_changed();
        Ok(registry)
    }

    pub async fn update_registry(
        &self,
        actor: &Authenticated,
        id: Id,
        input: RegistryInput,
        force: bool,
    ) -> Result<Registry> {
        actor.require_admin_to_change()?;
        let mut registry = self
            .ctx
            .store
            .registry_by_id(id)
            .await?
            .ok_or(Error::NotFound("Registry"))?;
        let moved = input.hostname != registry.hostname || input.use_ssl != registry.use_ssl;
        let problems = self
            .registry_problems(&input, Some(id), &[], moved && !force)
            .await?;
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        registry.name = input.name.trim().to_owned();
        registry.hostname = input.hostname;
        registry.use_ssl = input.use_ssl;
        registry.external_hostname = input.external_hostname.filter(|e| !e.is_empty());
        let registry = self
            .ctx
            .store
            .update_registry(&registry, self.ctx.clock.now())
            .await?;
        self.ctx.grants_changed();
        Ok(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::hostname_problem;

    #[test]
    fn hostnames() {
        for ok in [
            "registry",
            "registry.example.com",
            "127.0.0.1:5000",
            "localhost:443",
            "[::1]:5000",
        ] {
            assert_eq!(hostname_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "http://registry",
            "registry/path",
            "host:port",
            "host:0",
            "host:70000",
            ":5000",
        ] {
            assert!(hostname_problem(bad).is_some(), "{bad}");
        }
    }
}
