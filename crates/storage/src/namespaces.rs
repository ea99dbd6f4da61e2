//! Namespaces, and the one-query access look-up of the token endpoint.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::{
    NamespaceAccess, NamespaceScope, NewNamespace, Page, PageRequest, Sort, Store, StoreError,
    StoreResult,
};
use portcullis_domain::model::{Id, Namespace, NamespaceKind, Role, Visibility};
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

const NAMESPACE_COLUMNS: &str = "n.id, n.registry_id, n.team_id, n.name, n.description, n.kind, \
     n.visibility, n.user_id, n.created_at, n.updated_at";

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
        .ok_or_else(|| StoreError::Backend(format!("unknown namespace kind {s:?}")))
}

fn visibility(v: i64) -> StoreResult<Visibility> {
    Visibility::from_i64(v).ok_or_else(|| StoreError::Backend(format!("unknown visibility {v}")))
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

fn access_row<R: RowGet>(r: &R) -> StoreResult<NamespaceAccess> {
    let role = match r.col::<Option<i64>>("role")? {
        Some(v) => Some(
            Role::from_i64(v)
                .ok_or_else(|| StoreError::Backend(format!("unknown team role {v}")))?,
        ),
        None => None,
    };
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

    pub async fn list_namespaces(
        &self,
        scope: NamespaceScope,
        p: &PageRequest,
    ) -> StoreResult<Page<Namespace>> {
        // Both scopes bind one parameter so the statement shape stays the same.
        let (filter, user_id) = match scope {
            NamespaceScope::All => ("$1 IS NULL", None),
            NamespaceScope::VisibleTo(user_id) => (
                "(n.visibility IN (1, 2) OR EXISTS (SELECT 1 FROM team_users tu \
                 WHERE tu.team_id = n.team_id AND tu.user_id = $1))",
                Some(user_id),
            ),
        };
        let list = format!(
            "SELECT {NAMESPACE_COLUMNS} FROM namespaces n WHERE {filter}{}",
            p.clause("n", SORTABLE)
        );
        let count = format!("SELECT count(*) AS n FROM namespaces n WHERE {filter}");
        let mut c = self.db.reader().await?;
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(list), [user_id], |r| {
            namespace_row(r)
        });
        let total = fetch_one!(c.conn(), sqlx::AssertSqlSafe(count), [user_id], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }

    pub async fn namespaces_of_team(&self, team_id: Id) -> StoreResult<Vec<Namespace>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            select_namespaces!("WHERE n.team_id = $1 ORDER BY n.id"),
            [team_id],
            |r| namespace_row(r)
        ))
    }

    /// Writes name, description, team and visibility; kind and owner never change.
    pub async fn update_namespace(&self, n: &Namespace, now: Timestamp) -> StoreResult<Namespace> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE namespaces SET name = $2, description = $3, team_id = $4, visibility = $5, \
             updated_at = $6 WHERE id = $1 \
             RETURNING id, registry_id, team_id, name, description, kind, visibility, user_id, \
             created_at, updated_at",
            [
                n.id,
                n.name.as_str(),
                n.description.as_str(),
                n.team_id,
                n.visibility.as_i64(),
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
