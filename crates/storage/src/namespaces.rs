//! Namespaces, and the one-query access look-up of the token endpoint.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::teams::role_of;
use crate::{
    NamespaceAccess, NamespaceScope, NewNamespace, Page, PageRequest, Sort, Store, StoreError,
    StoreResult,
};
use portcullis_domain::model::{
    Id, Namespace, NamespaceKind, NamespaceListing, Registry, Team, Visibility,
};
use portcullis_domain::time::Timestamp;

/// `SELECT <every namespace column> FROM namespaces n <rest>`, as one static string.
macro_rules! select_namespaces {
    ($rest:literal) => {
        concat!(
            "SELECT n.id, n.registry_id, n.team_id, n.name, n.description, n.kind, ",
            "n.visibility, n.user_id, n.created_at, n.updated_at FROM namespaces n ",
            $rest
        )
    };
}

/// A namespace `n` with its team `t`, registry `r` and the role of the viewer (`$1`) in
/// the team: the columns of [`namespace_listing_row`].
const LISTING_FROM: &str = "SELECT n.id, n.registry_id, n.team_id, n.name, n.description, \
     n.kind, n.visibility, n.user_id, n.created_at, n.updated_at, \
     t.name AS t_name, t.description AS t_description, t.hidden AS t_hidden, \
     t.created_at AS t_created_at, t.updated_at AS t_updated_at, \
     r.name AS r_name, r.hostname AS r_hostname, r.use_ssl AS r_use_ssl, \
     r.external_hostname AS r_external_hostname, r.created_at AS r_created_at, \
     r.updated_at AS r_updated_at, tu.role AS role \
     FROM namespaces n JOIN teams t ON t.id = n.team_id \
     JOIN registries r ON r.id = n.registry_id \
     LEFT JOIN team_users tu ON tu.team_id = n.team_id AND tu.user_id = $1";

/// Which namespace fields an update changes; `None` leaves a field as it is now, so
/// concurrent changes of other fields are never written over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub team_id: Option<Id>,
    pub visibility: Option<Visibility>,
}

const SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("registry_id", Sort::Plain),
    ("team_id", Sort::Plain),
    ("name", Sort::Text),
    ("description", Sort::Text),
    ("kind", Sort::Plain),
    ("visibility", Sort::Plain),
    ("user_id", Sort::Nullable),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

fn kind(s: &str) -> StoreResult<NamespaceKind> {
    NamespaceKind::parse(s)
        .ok_or_else(|| StoreError::Other(format!("unknown namespace kind {s:?}")))
}

fn visibility(v: i64) -> StoreResult<Visibility> {
    Visibility::from_i64(v).ok_or_else(|| StoreError::Other(format!("unknown visibility {v}")))
}

fn namespace_row<R: RowGet>(r: &R) -> StoreResult<Namespace> {
    Ok(Namespace {
        id: r.col("id")?,
        registry_id: r.col("registry_id")?,
        team_id: r.col("team_id")?,
        name: r.col("name")?,
        description: r.col("description")?,
        kind: kind(&r.col::<String>("kind")?)?,
        visibility: visibility(r.col("visibility")?)?,
        user_id: r.col("user_id")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

fn namespace_listing_row<R: RowGet>(r: &R) -> StoreResult<NamespaceListing> {
    let namespace = namespace_row(r)?;
    Ok(NamespaceListing {
        team: Team {
            id: namespace.team_id,
            name: r.col("t_name")?,
            description: r.col("t_description")?,
            hidden: r.col("t_hidden")?,
            created_at: Timestamp(r.col("t_created_at")?),
            updated_at: Timestamp(r.col("t_updated_at")?),
        },
        registry: Registry {
            id: namespace.registry_id,
            name: r.col("r_name")?,
            hostname: r.col("r_hostname")?,
            use_ssl: r.col("r_use_ssl")?,
            external_hostname: r.col("r_external_hostname")?,
            created_at: Timestamp(r.col("r_created_at")?),
            updated_at: Timestamp(r.col("r_updated_at")?),
        },
        role: r.col::<Option<i64>>("role")?.map(role_of).transpose()?,
        namespace,
    })
}

fn access_row<R: RowGet>(r: &R) -> StoreResult<NamespaceAccess> {
    let role = r.col::<Option<i64>>("role")?.map(role_of).transpose()?;
    Ok(NamespaceAccess {
        namespace_id: r.col("id")?,
        kind: kind(&r.col::<String>("kind")?)?,
        visibility: visibility(r.col("visibility")?)?,
        role,
    })
}

impl Store {
    /// A second namespace of the same name in the registry is `Conflict("name")`.
    pub async fn create_namespace(
        &self,
        n: &NewNamespace,
        now: Timestamp,
    ) -> StoreResult<Namespace> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "INSERT INTO namespaces (registry_id, team_id, name, description, kind, visibility, \
             user_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
             RETURNING id, registry_id, team_id, name, description, kind, visibility, user_id, \
             created_at, updated_at",
            [
                n.registry_id,
                n.team_id,
                n.name.as_str(),
                n.description.as_str(),
                n.kind.as_str(),
                n.visibility.as_i64(),
                n.user_id,
                now.0,
            ],
            |r| namespace_row(r)
        ))
    }

    pub async fn namespace_by_id(&self, id: Id) -> StoreResult<Option<Namespace>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            select_namespaces!("WHERE n.id = $1"),
            [id],
            |r| namespace_row(r)
        ))
    }

    /// Exact match: namespace names are lower-case by rule.
    pub async fn namespace_by_name(
        &self,
        registry_id: Id,
        name: &str,
    ) -> StoreResult<Option<Namespace>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            select_namespaces!("WHERE n.registry_id = $1 AND n.name = $2"),
            [registry_id, name],
            |r| namespace_row(r)
        ))
    }

    pub async fn global_namespace(&self, registry_id: Id) -> StoreResult<Option<Namespace>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            select_namespaces!("WHERE n.registry_id = $1 AND n.kind = 'global'"),
            [registry_id],
            |r| namespace_row(r)
        ))
    }

    pub async fn personal_namespace(
        &self,
        registry_id: Id,
        user_id: Id,
    ) -> StoreResult<Option<Namespace>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            select_namespaces!("WHERE n.registry_id = $1 AND n.user_id = $2"),
            [registry_id, user_id],
            |r| namespace_row(r)
        ))
    }

    /// Namespaces in `scope` with their team, registry and `viewer`'s role (`None`:
    /// anonymous), in one query.
    pub async fn list_namespaces(
        &self,
        scope: NamespaceScope,
        viewer: Option<Id>,
        p: &PageRequest,
    ) -> StoreResult<Page<NamespaceListing>> {
        // Visible: public, protected, or the viewer is in the owning team (`tu`, joined
        // on the viewer; at most one row per namespace).
        let filter = match scope {
            NamespaceScope::All => "TRUE",
            NamespaceScope::VisibleTo => "n.visibility IN (1, 2) OR tu.id IS NOT NULL",
        };
        let seen = format!(
            "namespaces n LEFT JOIN team_users tu \
             ON tu.team_id = n.team_id AND tu.user_id = $1 WHERE ({filter})"
        );
        let list = p.page_of(LISTING_FROM, &seen, "n", SORTABLE);
        let count = format!("SELECT count(*) AS n FROM {seen}");
        let mut c = self.db.reader().await?;
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(list), [viewer], |r| {
            namespace_listing_row(r)
        });
        let total = fetch_one!(c.conn(), sqlx::AssertSqlSafe(count), [viewer], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }

    /// One namespace as [`Store::list_namespaces`] shows it to `viewer`.
    pub async fn namespace_listing(
        &self,
        id: Id,
        viewer: Option<Id>,
    ) -> StoreResult<Option<NamespaceListing>> {
        let sql = format!("{LISTING_FROM} WHERE n.id = $2");
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [viewer, id],
            |r| namespace_listing_row(r)
        ))
    }

    /// A team's namespaces as `viewer` sees them, oldest first.
    pub async fn namespaces_of_team(
        &self,
        team_id: Id,
        viewer: Option<Id>,
    ) -> StoreResult<Vec<NamespaceListing>> {
        let sql = format!("{LISTING_FROM} WHERE n.team_id = $2 ORDER BY n.id");
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [viewer, team_id],
            |r| namespace_listing_row(r)
        ))
    }

    /// Changes only what `changes` names; kind and owner never change.
    pub async fn update_namespace(
        &self,
        id: Id,
        changes: &NamespaceUpdate,
        now: Timestamp,
    ) -> StoreResult<Namespace> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE namespaces SET name = COALESCE($2, name), \
             description = COALESCE($3, description), team_id = COALESCE($4, team_id), \
             visibility = COALESCE($5, visibility), updated_at = $6 WHERE id = $1 \
             RETURNING id, registry_id, team_id, name, description, kind, visibility, user_id, \
             created_at, updated_at",
            [
                id,
                changes.name.as_deref(),
                changes.description.as_deref(),
                changes.team_id,
                changes.visibility.map(Visibility::as_i64),
                now.0,
            ],
            |r| namespace_row(r)
        )
        .ok_or(StoreError::NotFound)
    }

    pub async fn delete_namespace(&self, id: Id) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        let deleted = execute!(c.conn(), "DELETE FROM namespaces WHERE id = $1", [id]);
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The namespace `name` (`None`: the registry's global namespace) with `user_id`'s
    /// role in the owning team, in one query because every pull and push asks.
    pub async fn namespace_access(
        &self,
        registry_id: Id,
        name: Option<&str>,
        user_id: Option<Id>,
    ) -> StoreResult<Option<NamespaceAccess>> {
        // With no user, `tu.user_id = NULL` matches nothing and the role stays NULL.
        let sql = if name.is_some() {
            "SELECT n.id, n.kind, n.visibility, tu.role FROM namespaces n \
             LEFT JOIN team_users tu ON tu.team_id = n.team_id AND tu.user_id = $3 \
             WHERE n.registry_id = $1 AND n.name = $2"
        } else {
            "SELECT n.id, n.kind, n.visibility, tu.role FROM namespaces n \
             LEFT JOIN team_users tu ON tu.team_id = n.team_id AND tu.user_id = $3 \
             WHERE n.registry_id = $1 AND n.kind = 'global' AND $2 IS NULL"
        };
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sql,
            [registry_id, name, user_id],
            |r| access_row(r)
        ))
    }
}
