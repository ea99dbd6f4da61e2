//! A short-lived, in-process cache of the facts the token endpoint reads for every
//! scope: the registry a `service` names, and a namespace's kind, visibility and the
//! caller's role in it. Each of those is a database round trip, and on SQLite a round
//! trip costs more than everything else the token endpoint does.
//!
//! Why staleness is acceptable: every write made through this process clears the cache
//! at once; another node's writes are seen after at most the TTL (2 s by default).
//! Tokens already issued stay valid for `registry.jwt_expiration_time` (15 min), so a
//! TTL of seconds adds nothing meaningful to the window in which a removed member can
//! still pull. Credentials are NOT cached here: the user row is read on every request,
//! so a password change, disable or lockout takes effect on every node immediately.
//!
//! A look-up that misses reads the database without holding a lock; an invalidation
//! may happen meanwhile. A generation counter, bumped by every invalidation before the
//! maps are cleared, keeps such a look-up from storing what it read before the write.

use portcullis_domain::model::{Id, Registry};
use portcullis_domain::time::{Clock, Timestamp};
use portcullis_storage::{NamespaceAccess, Store, StoreResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type NamespaceKey = (Id, Option<String>, Option<Id>);

/// Namespace entries kept at most; beyond it the map is emptied (cheap to refill).
const MAX_NAMESPACE_ENTRIES: usize = 50_000;

pub struct AuthzCache {
    ttl_secs: i64,
    clock: Arc<dyn Clock>,
    /// Bumped by every invalidation; an entry read under an older generation is stale.
    generation: AtomicU64,
    registries: Mutex<Option<(Timestamp, Arc<Vec<Registry>>)>>,
    namespaces: Mutex<HashMap<NamespaceKey, (Timestamp, Option<NamespaceAccess>)>>,
}

impl AuthzCache {
    /// `ttl_secs == 0` disables caching.
    pub fn new(ttl_secs: i64, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl_secs,
            clock,
            generation: AtomicU64::new(0),
            registries: Mutex::new(None),
            namespaces: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets everything; called after every write that can change a grant.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.registries.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Every registry (cached like the rest; there are few).
    pub async fn registries(&self, store: &Store) -> StoreResult<Arc<Vec<Registry>>> {
        if self.ttl_secs == 0 {
            return Ok(Arc::new(store.list_registries().await?));
        }
        let now = self.clock.now();
        let generation = self.generation.load(Ordering::SeqCst);
        let cached = self
            .registries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(until, _)| now < *until)
            .map(|(_, list)| list.clone());
        if let Some(list) = cached {
            return Ok(list);
        }
        let list = Arc::new(store.list_registries().await?);
        let mut slot = self.registries.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *slot = Some((now.plus_secs(self.ttl_secs), list.clone()));
        }
        Ok(list)
    }

    /// The registry whose hostname or external hostname is `service`.
    pub async fn registry_by_service(
        &self,
        store: &Store,
        service: &str,
    ) -> StoreResult<Option<Registry>> {
        if self.ttl_secs == 0 {
            return store.registry_by_service(service).await;
        }
        let list = self.registries(store).await?;
        // Same precedence as the store: a hostname match wins over an external one.
        Ok(list
            .iter()
            .find(|r| r.hostname == service)
            .or_else(|| {
                list.iter()
                    .find(|r| r.external_hostname.as_deref() == Some(service))
            })
            .cloned())
    }

    /// Entries currently held (for tests).
    pub fn namespace_entries(&self) -> usize {
        self.namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub async fn namespace_access(
        &self,
        store: &Store,
        registry_id: Id,
        name: Option<&str>,
        user_id: Option<Id>,
    ) -> StoreResult<Option<NamespaceAccess>> {
        if self.ttl_secs == 0 {
            return store.namespace_access(registry_id, name, user_id).await;
        }
        let key = (registry_id, name.map(str::to_owned), user_id);
        self.namespace_lookup(key, || store.namespace_access(registry_id, name, user_id))
            .await
    }

    /// The cached entry for `key`, or what `load` reads — kept only if no invalidation
    /// happened while it was reading.
    async fn namespace_lookup<F, Fut>(
        &self,
        key: NamespaceKey,
        load: F,
    ) -> StoreResult<Option<NamespaceAccess>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<Option<NamespaceAccess>>>,
    {
        let now = self.clock.now();
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((until, access)) = self
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && now < *until
        {
            return Ok(*access);
        }
        let access = load().await?;
        let mut map = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::SeqCst) != generation {
            // Written meanwhile: answer this request, but do not keep what may be stale.
            return Ok(access);
        }
        if map.len() >= MAX_NAMESPACE_ENTRIES {
            map.clear();
        }
        map.insert(key, (now.plus_secs(self.ttl_secs), access));
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_domain::model::{NamespaceKind, Visibility};
    use portcullis_domain::time::FixedClock;

    fn access(visibility: Visibility) -> Option<NamespaceAccess> {
        Some(NamespaceAccess {
            namespace_id: 1,
            kind: NamespaceKind::Team,
            visibility,
            role: None,
        })
    }

    #[tokio::test]
    async fn a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = AuthzCache::new(60, Arc::new(FixedClock::default()));
        let key = || (1, Some("ns".to_owned()), Some(7));
        // The namespace is made private while the lookup is reading the old row.
        let read = cache
            .namespace_lookup(key(), || async {
                cache.invalidate();
                Ok(access(Visibility::Public))
            })
            .await
            .unwrap();
        assert_eq!(
            read,
            access(Visibility::Public),
            "this request gets what it read"
        );
        assert_eq!(
            cache.namespace_entries(),
            0,
            "but the stale row is not cached"
        );
        // The next lookup reads again and keeps the fresh row.
        let fresh = cache
            .namespace_lookup(key(), || async { Ok(access(Visibility::Private)) })
            .await
            .unwrap();
        assert_eq!(fresh, access(Visibility::Private));
        assert_eq!(cache.namespace_entries(), 1);
        let cached = cache
            .namespace_lookup(key(), || async { panic!("served from the cache") })
            .await
            .unwrap();
        assert_eq!(cached, access(Visibility::Private));
    }
}
