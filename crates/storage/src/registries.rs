//! Registries, and the global team and namespace every registry comes with.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::users::{PERSONAL_TEAM_PREFIX, create_personal_namespace};
use crate::{NewRegistry, Store, StoreError, StoreResult};
use portcullis_domain::model::{Id, NamespaceKind, Registry, Role, Visibility};
use portcullis_domain::names::{
    global_namespace_name, global_team_name, namespace_name_for_username,
};
use portcullis_domain::time::Timestamp;

fn registry_row<R: RowGet>(r: &R) -> StoreResult<Registry> {
    Ok(Registry {
        id: r.col("id")?,
        name: r.col("name")?,
        hostname: r.col("hostname")?,
        use_ssl: r.col("use_ssl")?,
        external_hostname: r.col("external_hostname")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

impl Store {
    /// Creates the registry with what Portus attaches to it, in one transaction: the
    /// hidden global team (every admin an owner), the public global namespace owned by
    /// it, and a personal namespace for every user who has a personal team.
    pub async fn create_registry(&self, r: &NewRegistry, now: Timestamp) -> StoreResult<Registry> {
        let mut tx = self.db.begin().await?;
        let registry = fetch_one!(
            tx.conn(),
            "INSERT INTO registries (name, hostname, use_ssl, external_hostname, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             RETURNING id, name, hostname, use_ssl, external_hostname, created_at, updated_at",
            [
                r.name.as_str(),
                r.hostname.as_str(),
                r.use_ssl,
                r.external_hostname.as_deref(),
                now.0,
            ],
            |row| registry_row(row)
        );
        let team_id: Id = fetch_one!(
            tx.conn(),
            "INSERT INTO teams (name, description, hidden, created_at, updated_at) \
             VALUES ($1, '', true, $2, $2) RETURNING id",
            [global_team_name(registry.id), now.0],
            |row| row.col::<Id>("id")
        );
        execute!(
            tx.conn(),
            "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at) \
             SELECT $1, id, $2, $3, $3 FROM users WHERE admin ORDER BY id",
            [team_id, Role::Owner.as_i64(), now.0]
        );
        execute!(
            tx.conn(),
            "INSERT INTO namespaces (registry_id, team_id, name, description, kind, visibility, \
             user_id, created_at, updated_at) VALUES ($1, $2, $3, '', $4, $5, NULL, $6, $6)",
            [
                registry.id,
                team_id,
                global_namespace_name(registry.id),
                NamespaceKind::Global.as_str(),
                Visibility::Public.as_i64(),
                now.0,
            ]
        );
        // Users whose personal team exists (non-bots, as created by `create_user`).
        let owners: Vec<(Id, String, Id)> = fetch_all!(
            tx.conn(),
            "SELECT u.id, u.username, t.id AS team_id FROM users u \
             JOIN teams t ON t.hidden AND t.name = $2 || CAST(u.id AS TEXT) \
             JOIN team_users tu ON tu.team_id = t.id AND tu.user_id = u.id AND tu.role = $1 \
             WHERE NOT u.bot ORDER BY u.id",
            [Role::Owner.as_i64(), PERSONAL_TEAM_PREFIX],
            |row| Ok::<_, StoreError>((
                row.col::<Id>("id")?,
                row.col::<String>("username")?,
                row.col::<Id>("team_id")?
            ))
        );
        for (user_id, username, personal_team) in owners {
            let Some(base) = namespace_name_for_username(&username) else {
                continue;
            };
            create_personal_namespace(&mut tx, registry.id, personal_team, user_id, &base, now)
                .await?;
        }
        tx.commit().await?;
        Ok(registry)
    }

    pub async fn registry_by_id(&self, id: Id) -> StoreResult<Option<Registry>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, name, hostname, use_ssl, external_hostname, created_at, updated_at \
             FROM registries WHERE id = $1",
            [id],
            |row| registry_row(row)
        ))
    }

    /// The registry a token request's `service` names: its hostname, else its external
    /// hostname (a hostname match wins if both exist).
    pub async fn registry_by_service(&self, service: &str) -> StoreResult<Option<Registry>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, name, hostname, use_ssl, external_hostname, created_at, updated_at \
             FROM registries WHERE hostname = $1 OR external_hostname = $1 \
             ORDER BY CASE WHEN hostname = $1 THEN 0 ELSE 1 END, id LIMIT 1",
            [service],
            |row| registry_row(row)
        ))
    }

    pub async fn list_registries(&self) -> StoreResult<Vec<Registry>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, name, hostname, use_ssl, external_hostname, created_at, updated_at \
             FROM registries ORDER BY id",
            [],
            |row| registry_row(row)
        ))
    }

    pub async fn update_registry(&self, r: &Registry, now: Timestamp) -> StoreResult<Registry> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE registries SET name = $2, hostname = $3, use_ssl = $4, \
             external_hostname = $5, updated_at = $6 WHERE id = $1 \
             RETURNING id, name, hostname, use_ssl, external_hostname, created_at, updated_at",
            [
                r.id,
                r.name.as_str(),
                r.hostname.as_str(),
                r.use_ssl,
                r.external_hostname.as_deref(),
                now.0,
            ],
            |row| registry_row(row)
        )
        .ok_or(StoreError::NotFound)
    }
}
