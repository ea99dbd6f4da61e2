//! Repositories, tags, stars, comments and activities.
//!
//! Every change an event causes runs in one transaction together with marking the
//! event processed, so a crash never leaves an event half-applied or applied twice.

use crate::db::{Conn, RowGet, Tx, execute, fetch_all, fetch_one, fetch_optional};
use crate::{Page, PageRequest, Refusal, Sort, Store, StoreError, StoreResult};
use portcullis_domain::inventory::{
    Activity, Comment, ManifestFacts, NewActivity, Platform, Repository, RepositoryListing, Tag,
    full_repository_name,
};
use portcullis_domain::model::{Id, NamespaceKind};
use portcullis_domain::time::Timestamp;
use serde_json::json;

const TAG_COLUMNS: &str = "t.id, t.repository_id, t.name, t.digest, t.media_type, t.image_id, \
     t.size, t.platforms, t.author_id, t.author_name, t.pushed_at, t.pulled_at, t.created_at, \
     t.updated_at";

/// [`TAG_COLUMNS`] unqualified, for `RETURNING` (SQLite rejects `t.` there).
const TAG_RETURNING: &str = "id, repository_id, name, digest, media_type, image_id, size, \
     platforms, author_id, author_name, pushed_at, pulled_at, created_at, updated_at";

const TAG_SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("name", Sort::Text),
    ("size", Sort::Plain),
    ("pushed_at", Sort::Plain),
    ("pulled_at", Sort::Nullable),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

const REPOSITORY_SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("name", Sort::Text),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

const ACTIVITY_COLUMNS: &str = "a.id, a.key, a.owner_id, a.owner_name, a.trackable_type, \
     a.trackable_id, a.recipient_type, a.recipient_id, a.namespace_id, a.team_id, a.parameters, \
     a.created_at";

/// A repository `r` in namespace `n` with counts and whether the viewer (`$1`)
/// starred it; the columns of [`listing_row`].
const LISTING_FROM: &str = "SELECT r.id, r.namespace_id, r.name, r.description, r.created_at, \
     r.updated_at, n.name AS n_name, n.kind AS n_kind, n.registry_id AS n_registry_id, \
     (SELECT count(*) FROM tags t WHERE t.repository_id = r.id) AS tags_count, \
     (SELECT count(*) FROM stars s WHERE s.repository_id = r.id) AS stars_count, \
     (SELECT count(*) FROM stars s WHERE s.repository_id = r.id AND s.user_id = $1) AS starred \
     FROM repositories r JOIN namespaces n ON n.id = r.namespace_id";

/// The repositories with their namespace and the viewer's (`$1`) membership of its team,
/// which listings filter on.
const REPOSITORIES_SEEN: &str = "repositories r JOIN namespaces n ON n.id = r.namespace_id \
     LEFT JOIN team_users tu ON tu.team_id = n.team_id AND tu.user_id = $1";

fn repository_row<R: RowGet>(r: &R) -> StoreResult<Repository> {
    Ok(Repository {
        id: r.col("id")?,
        namespace_id: r.col("namespace_id")?,
        name: r.col("name")?,
        description: r.col("description")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

fn listing_row<R: RowGet>(r: &R) -> StoreResult<RepositoryListing> {
    let kind: String = r.col("n_kind")?;
    Ok(RepositoryListing {
        repository: repository_row(r)?,
        namespace_name: r.col("n_name")?,
        namespace_kind: NamespaceKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("unknown namespace kind {kind:?}")))?,
        registry_id: r.col("n_registry_id")?,
        tags: r.col("tags_count")?,
        stars: r.col("stars_count")?,
        starred: r.col::<i64>("starred")? > 0,
    })
}

fn tag_row<R: RowGet>(r: &R) -> StoreResult<Tag> {
    let platforms: String = r.col("platforms")?;
    Ok(Tag {
        id: r.col("id")?,
        repository_id: r.col("repository_id")?,
        name: r.col("name")?,
        digest: r.col("digest")?,
        media_type: r.col("media_type")?,
        image_id: r.col("image_id")?,
        size: r.col("size")?,
        platforms: serde_json::from_str::<Vec<Platform>>(&platforms)
            .map_err(|e| StoreError::Other(format!("bad platforms of a tag: {e}")))?,
        author_id: r.col("author_id")?,
        author_name: r.col("author_name")?,
        pushed_at: Timestamp(r.col("pushed_at")?),
        pulled_at: r.col::<Option<i64>>("pulled_at")?.map(Timestamp),
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

fn activity_row<R: RowGet>(r: &R) -> StoreResult<Activity> {
    let parameters: String = r.col("parameters")?;
    Ok(Activity {
        id: r.col("id")?,
        key: r.col("key")?,
        owner_id: r.col("owner_id")?,
        owner_name: r.col("owner_name")?,
        trackable_type: r.col("trackable_type")?,
        trackable_id: r.col("trackable_id")?,
        recipient_type: r.col("recipient_type")?,
        recipient_id: r.col("recipient_id")?,
        namespace_id: r.col("namespace_id")?,
        team_id: r.col("team_id")?,
        parameters: serde_json::from_str(&parameters)
            .map_err(|e| StoreError::Other(format!("bad activity parameters: {e}")))?,
        created_at: Timestamp(r.col("created_at")?),
    })
}

fn comment_row<R: RowGet>(r: &R) -> StoreResult<Comment> {
    Ok(Comment {
        id: r.col("id")?,
        repository_id: r.col("repository_id")?,
        user_id: r.col("user_id")?,
        author_name: r.col("author_name")?,
        body: r.col("body")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

pub(crate) async fn insert_activity(
    conn: Conn<'_>,
    a: &NewActivity,
    now: Timestamp,
) -> StoreResult<()> {
    let parameters = serde_json::to_string(&a.parameters)
        .map_err(|e| StoreError::Other(format!("activity parameters: {e}")))?;
    execute!(
        conn,
        "INSERT INTO activities (key, owner_id, owner_name, trackable_type, trackable_id, \
         recipient_type, recipient_id, namespace_id, team_id, parameters, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        [
            a.key.as_str(),
            a.owner_id,
            a.owner_name.as_str(),
            a.trackable_type.as_str(),
            a.trackable_id,
            a.recipient_type.as_deref(),
            a.recipient_id,
            a.namespace_id,
            a.team_id,
            parameters,
            now.0,
        ]
    );
    Ok(())
}

/// Who did something to the inventory, for its activities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<Id>,
    pub name: String,
}

/// A pushed (or synced) tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRecord {
    pub namespace_id: Id,
    pub repository: String,
    pub tag: String,
    pub manifest: ManifestFacts,
    pub actor: Actor,
}

/// One row of [`Store::inventory_of_registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryRow {
    /// `ns/repo`, or the bare name in the global namespace: the registry's name.
    pub full_name: String,
    pub namespace_id: Id,
    pub repository_id: Id,
    pub repository: String,
    /// Tag name and digest.
    pub tag: Option<(String, String)>,
}

/// Which repositories a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepositoryScope {
    /// Everything (admins).
    All,
    /// What a logged-in user may pull: public and protected namespaces and those of
    /// their teams.
    PullableBy,
    /// Public namespaces only (anonymous visitors).
    Public,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositoryFilter {
    pub namespace_id: Option<Id>,
    /// Case-insensitive substring of the repository or namespace name.
    pub query: Option<String>,
    pub starred_only: bool,
}

/// Which activities a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityScope {
    All,
    /// Portus's dashboard union for the viewer.
    DashboardOf(Id),
}

struct NamespaceNames {
    name: String,
    team_id: Id,
}

async fn namespace_names(tx: &mut Tx, namespace_id: Id) -> StoreResult<NamespaceNames> {
    Ok(fetch_one!(
        tx.conn(),
        "SELECT name, team_id FROM namespaces WHERE id = $1",
        [namespace_id],
        |r| Ok::<_, StoreError>(NamespaceNames {
            name: r.col("name")?,
            team_id: r.col("team_id")?,
        })
    ))
}

/// Marks `event` done, first thing in the transaction that applies it: only while it is
/// still pending. A run of `process_events` whose lease lapsed (a worker frozen, cut off
/// from the database) may still be working when another worker has taken the job over
/// and applied the same events; its transaction must then write nothing, or the push
/// would be applied twice (a second activity) and a stale tag or delete would overwrite
/// what later events did. On PostgreSQL the row lock taken here makes a concurrent run
/// wait for the other's commit and then find the event done; SQLite's single writer
/// serialises them anyway.
async fn mark_event(tx: &mut Tx, event: Option<Id>, now: Timestamp) -> StoreResult<()> {
    if let Some(id) = event {
        let n = execute!(
            tx.conn(),
            "UPDATE registry_events SET status = 'done', error = NULL, processed_at = $1, \
             attempts = attempts + 1 WHERE id = $2 AND status = 'pending'",
            [now.0, id]
        );
        if n != 1 {
            return Err(StoreError::Refused(Refusal::EventAlreadyFinished));
        }
    }
    Ok(())
}

fn removal_activity(
    key: &str,
    actor: &Actor,
    namespace_id: Id,
    ns: &NamespaceNames,
    repository_id: Id,
    repository: &str,
    tag: Option<&str>,
) -> NewActivity {
    let mut parameters = std::collections::BTreeMap::new();
    parameters.insert("repository_name".to_owned(), json!(repository));
    parameters.insert("namespace_id".to_owned(), json!(namespace_id));
    parameters.insert("namespace_name".to_owned(), json!(ns.name));
    if let Some(tag) = tag {
        parameters.insert("tag_name".to_owned(), json!(tag));
    }
    NewActivity {
        key: key.to_owned(),
        owner_id: actor.user_id,
        owner_name: actor.name.clone(),
        trackable_type: "repository".to_owned(),
        trackable_id: Some(repository_id),
        recipient_type: tag.map(|_| "tag".to_owned()),
        recipient_id: None,
        namespace_id: Some(namespace_id),
        team_id: Some(ns.team_id),
        parameters,
    }
}

/// Which tags of a repository go.
#[derive(Clone, Copy)]
enum Doomed<'a> {
    Digest(&'a str),
    Name(&'a str),
    All,
}

/// Deletes the tags of `repository_id` selected by `which`, with their activities, then
/// the repository if it has no tag left. Returns the deleted tag names.
#[allow(clippy::too_many_arguments)]
async fn delete_tags_where(
    tx: &mut Tx,
    namespace_id: Id,
    repository_id: Id,
    repository: &str,
    which: Doomed<'_>,
    actor: &Actor,
    now: Timestamp,
) -> StoreResult<Vec<String>> {
    let ns = namespace_names(tx, namespace_id).await?;
    let pair = |id: StoreResult<Id>, name: StoreResult<String>| Ok::<_, StoreError>((id?, name?));
    let doomed: Vec<(Id, String)> = match which {
        Doomed::Digest(digest) => fetch_all!(
            tx.conn(),
            "SELECT t.id, t.name FROM tags t WHERE t.repository_id = $1 AND t.digest = $2",
            [repository_id, digest],
            |r| pair(r.col("id"), r.col("name"))
        ),
        Doomed::Name(name) => fetch_all!(
            tx.conn(),
            "SELECT t.id, t.name FROM tags t WHERE t.repository_id = $1 AND t.name = $2",
            [repository_id, name],
            |r| pair(r.col("id"), r.col("name"))
        ),
        Doomed::All => fetch_all!(
            tx.conn(),
            "SELECT t.id, t.name FROM tags t WHERE t.repository_id = $1",
            [repository_id],
            |r| pair(r.col("id"), r.col("name"))
        ),
    };
    for (id, name) in &doomed {
        execute!(tx.conn(), "DELETE FROM tags WHERE id = $1", [*id]);
        let a = removal_activity(
            "repository.delete",
            actor,
            namespace_id,
            &ns,
            repository_id,
            repository,
            Some(name),
        );
        insert_activity(tx.conn(), &a, now).await?;
    }
    let left: i64 = fetch_one!(
        tx.conn(),
        "SELECT count(*) AS n FROM tags WHERE repository_id = $1",
        [repository_id],
        |r| r.col::<i64>("n")
    );
    if left == 0 {
        execute!(
            tx.conn(),
            "DELETE FROM repositories WHERE id = $1",
            [repository_id]
        );
        let a = removal_activity(
            "namespace.delete",
            actor,
            namespace_id,
            &ns,
            repository_id,
            repository,
            None,
        );
        insert_activity(tx.conn(), &a, now).await?;
    }
    Ok(doomed.into_iter().map(|(_, n)| n).collect())
}

async fn repository_id_in(
    tx: &mut Tx,
    namespace_id: Id,
    repository: &str,
) -> StoreResult<Option<Id>> {
    Ok(fetch_optional!(
        tx.conn(),
        "SELECT id FROM repositories WHERE namespace_id = $1 AND name = $2",
        [namespace_id, repository],
        |r| r.col::<Id>("id")
    ))
}

impl Store {
    /// Creates or moves a tag (and creates its repository on first push), writes the
    /// `repository.push` activity and marks `event` done, in one transaction.
    pub async fn record_push(
        &self,
        p: &PushRecord,
        event: Option<Id>,
        now: Timestamp,
    ) -> StoreResult<Tag> {
        let mut tx = self.db.begin().await?;
        mark_event(&mut tx, event, now).await?;
        let tag = push_in(&mut tx, p, now).await?;
        tx.commit().await?;
        Ok(tag)
    }

    /// [`Store::record_push`] for many tags (a sync's), in one transaction.
    pub async fn record_pushes(&self, pushes: &[PushRecord], now: Timestamp) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        for p in pushes {
            push_in(&mut tx, p, now).await?;
        }
        tx.commit().await
    }

    /// Deletes every tag of the repository pointing at `digest` (then the repository if
    /// it is empty), with activities, and marks `event` done. Returns the tag names.
    pub async fn delete_tags_by_digest(
        &self,
        namespace_id: Id,
        repository: &str,
        digest: &str,
        actor: &Actor,
        event: Option<Id>,
        now: Timestamp,
    ) -> StoreResult<Vec<String>> {
        self.delete_tags(
            namespace_id,
            repository,
            Doomed::Digest(digest),
            actor,
            event,
            now,
        )
        .await
    }

    /// Deletes one tag by name (then the repository if empty); as
    /// [`Store::delete_tags_by_digest`].
    pub async fn delete_tag_by_name(
        &self,
        namespace_id: Id,
        repository: &str,
        tag: &str,
        actor: &Actor,
        event: Option<Id>,
        now: Timestamp,
    ) -> StoreResult<Vec<String>> {
        self.delete_tags(
            namespace_id,
            repository,
            Doomed::Name(tag),
            actor,
            event,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn delete_tags(
        &self,
        namespace_id: Id,
        repository: &str,
        which: Doomed<'_>,
        actor: &Actor,
        event: Option<Id>,
        now: Timestamp,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.db.begin().await?;
        mark_event(&mut tx, event, now).await?;
        let mut deleted = Vec::new();
        if let Some(repository_id) = repository_id_in(&mut tx, namespace_id, repository).await? {
            deleted = delete_tags_where(
                &mut tx,
                namespace_id,
                repository_id,
                repository,
                which,
                actor,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Deletes a repository and all its tags (one `repository.delete` activity per tag
    /// and a `namespace.delete` for the repository).
    pub async fn delete_repository(
        &self,
        repository_id: Id,
        actor: &Actor,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let (namespace_id, name): (Id, String) = fetch_optional!(
            tx.conn(),
            "SELECT namespace_id, name FROM repositories WHERE id = $1",
            [repository_id],
            |r| Ok::<_, StoreError>((r.col::<Id>("namespace_id")?, r.col::<String>("name")?))
        )
        .ok_or(StoreError::NotFound)?;
        delete_tags_where(
            &mut tx,
            namespace_id,
            repository_id,
            &name,
            Doomed::All,
            actor,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a pull (GET or HEAD of a manifest) of a tag, or of every tag with the
    /// digest for a pull by digest, and marks `event` done.
    pub async fn record_pull(
        &self,
        namespace_id: Id,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
        event: Option<Id>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.db.begin().await?;
        mark_event(&mut tx, event, now).await?;
        let n = execute!(
            tx.conn(),
            "UPDATE tags SET pulled_at = $1 WHERE repository_id = (SELECT id FROM repositories \
             WHERE namespace_id = $2 AND name = $3) AND ($4 IS NULL OR name = $4) \
             AND ($5 IS NULL OR digest = $5) AND ($4 IS NOT NULL OR $5 IS NOT NULL)",
            [now.0, namespace_id, repository, tag, digest]
        );
        tx.commit().await?;
        Ok(n)
    }

    pub async fn repository_by_id(&self, id: Id) -> StoreResult<Option<Repository>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, namespace_id, name, description, created_at, updated_at \
             FROM repositories WHERE id = $1",
            [id],
            |r| repository_row(r)
        ))
    }

    pub async fn repository_listing(
        &self,
        id: Id,
        viewer: Option<Id>,
    ) -> StoreResult<Option<RepositoryListing>> {
        let mut c = self.db.reader().await?;
        let sql = format!("{LISTING_FROM} WHERE r.id = $2");
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [viewer, id],
            |r| listing_row(r)
        ))
    }

    pub async fn list_repositories(
        &self,
        viewer: Option<Id>,
        scope: RepositoryScope,
        filter: &RepositoryFilter,
        page: PageRequest,
    ) -> StoreResult<Page<RepositoryListing>> {
        let query = filter
            .query
            .as_ref()
            .map(|q| format!("%{}%", q.to_lowercase().replace(['%', '_'], "")));
        let starred_only = "($4 = 0 OR EXISTS (SELECT 1 FROM stars s \
             WHERE s.repository_id = r.id AND s.user_id = $1))";
        let seen = if query.is_some() {
            // A search matches namespace names too: repositories joined to them.
            let visible = match scope {
                RepositoryScope::All => "TRUE",
                RepositoryScope::PullableBy => "(n.visibility IN (1, 2) OR tu.id IS NOT NULL)",
                RepositoryScope::Public => "n.visibility = 2",
            };
            format!(
                "{REPOSITORIES_SEEN} WHERE {visible} AND ($2 IS NULL OR r.namespace_id = $2) \
                 AND (lower(r.name) LIKE $3 OR lower(n.name) LIKE $3) AND {starred_only}"
            )
        } else {
            // The visible namespaces as a set each repository is probed against (one
            // hash of namespace ids), not a join per repository: a page deep into a
            // million repositories walks the index and probes, nothing more.
            let visible = match scope {
                RepositoryScope::All => "",
                RepositoryScope::PullableBy => {
                    " AND r.namespace_id IN (SELECT n.id FROM namespaces n \
                     LEFT JOIN team_users tu ON tu.team_id = n.team_id AND tu.user_id = $1 \
                     WHERE n.visibility IN (1, 2) OR tu.id IS NOT NULL)"
                }
                RepositoryScope::Public => {
                    " AND r.namespace_id IN (SELECT n.id FROM namespaces n WHERE n.visibility = 2)"
                }
            };
            format!(
                "repositories r WHERE ($2 IS NULL OR r.namespace_id = $2) AND $3 IS NULL \
                 AND {starred_only}{visible}"
            )
        };
        let starred = i64::from(filter.starred_only);
        let list = page.page_of(LISTING_FROM, &seen, "r", REPOSITORY_SORTABLE);
        let mut c = self.db.reader().await?;
        let items = fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(list),
            [viewer, filter.namespace_id, query.as_deref(), starred],
            |r| listing_row(r)
        );
        let count = format!("SELECT count(*) AS n FROM {seen}");
        let total = fetch_one!(
            c.conn(),
            sqlx::AssertSqlSafe(count),
            [viewer, filter.namespace_id, query.as_deref(), starred],
            |r| r.col::<i64>("n")
        );
        Ok(Page { items, total })
    }

    /// Every repository of a registry with each of its tags (one row per tag; a
    /// repository without tags gives one row with `tag: None`), for sync and GC.
    pub async fn inventory_of_registry(&self, registry_id: Id) -> StoreResult<Vec<InventoryRow>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT n.name AS n_name, n.kind AS n_kind, r.namespace_id, r.id AS r_id, \
             r.name AS r_name, t.name AS t_name, t.digest AS t_digest FROM repositories r \
             JOIN namespaces n ON n.id = r.namespace_id \
             LEFT JOIN tags t ON t.repository_id = r.id WHERE n.registry_id = $1 \
             ORDER BY r.id, t.name",
            [registry_id],
            |r| {
                let kind: String = r.col("n_kind")?;
                let kind = NamespaceKind::parse(&kind)
                    .ok_or_else(|| StoreError::Other(format!("unknown namespace kind {kind:?}")))?;
                let ns: String = r.col("n_name")?;
                let repository: String = r.col("r_name")?;
                let full_name = full_repository_name(kind, &ns, &repository);
                let tag: Option<String> = r.col("t_name")?;
                let digest: Option<String> = r.col("t_digest")?;
                Ok::<_, StoreError>(InventoryRow {
                    full_name,
                    namespace_id: r.col("namespace_id")?,
                    repository_id: r.col("r_id")?,
                    repository,
                    tag: tag.zip(digest),
                })
            }
        ))
    }

    pub async fn update_repository_description(
        &self,
        id: Id,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<Repository> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE repositories SET description = $1, updated_at = $2 WHERE id = $3 \
             RETURNING id, namespace_id, name, description, created_at, updated_at",
            [description, now.0, id],
            |r| repository_row(r)
        )
        .ok_or(StoreError::NotFound)
    }

    pub async fn tags_of_repository(&self, repository_id: Id) -> StoreResult<Vec<Tag>> {
        let mut c = self.db.reader().await?;
        let sql = format!(
            "SELECT {TAG_COLUMNS} FROM tags t WHERE t.repository_id = $1 \
             ORDER BY t.pushed_at DESC, t.id DESC"
        );
        Ok(fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [repository_id],
            |r| tag_row(r)
        ))
    }

    pub async fn tag_by_id(&self, id: Id) -> StoreResult<Option<Tag>> {
        let mut c = self.db.reader().await?;
        let sql = format!("SELECT {TAG_COLUMNS} FROM tags t WHERE t.id = $1");
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [id],
            |r| tag_row(r)
        ))
    }

    pub async fn list_tags(&self, page: PageRequest) -> StoreResult<Page<Tag>> {
        let mut c = self.db.reader().await?;
        let sql = format!(
            "SELECT {TAG_COLUMNS} FROM tags t{}",
            page.clause("t", TAG_SORTABLE)
        );
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(sql), [], |r| tag_row(r));
        let total = fetch_one!(c.conn(), "SELECT count(*) AS n FROM tags", [], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }

    /// Every tag of every repository of `registry_id` (for garbage collection).
    pub async fn tags_of_registry(&self, registry_id: Id) -> StoreResult<Vec<Tag>> {
        let mut c = self.db.reader().await?;
        let sql = format!(
            "SELECT {TAG_COLUMNS} FROM tags t JOIN repositories r ON r.id = t.repository_id \
             JOIN namespaces n ON n.id = r.namespace_id WHERE n.registry_id = $1 \
             ORDER BY t.repository_id, t.id"
        );
        Ok(fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [registry_id],
            |r| tag_row(r)
        ))
    }

    /// Stars or unstars; returns whether the user now stars the repository.
    pub async fn set_star(
        &self,
        user_id: Id,
        repository_id: Id,
        starred: bool,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut c = self.db.writer().await?;
        if starred {
            execute!(
                c.conn(),
                "INSERT INTO stars (user_id, repository_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, repository_id) DO NOTHING",
                [user_id, repository_id, now.0]
            );
        } else {
            execute!(
                c.conn(),
                "DELETE FROM stars WHERE user_id = $1 AND repository_id = $2",
                [user_id, repository_id]
            );
        }
        Ok(starred)
    }

    pub async fn create_comment(
        &self,
        repository_id: Id,
        user_id: Id,
        author_name: &str,
        body: &str,
        now: Timestamp,
    ) -> StoreResult<Comment> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "INSERT INTO comments (repository_id, user_id, author_name, body, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id, repository_id, user_id, \
             author_name, body, created_at, updated_at",
            [repository_id, user_id, author_name, body, now.0],
            |r| comment_row(r)
        ))
    }

    pub async fn comments_of_repository(&self, repository_id: Id) -> StoreResult<Vec<Comment>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            "SELECT id, repository_id, user_id, author_name, body, created_at, updated_at \
             FROM comments WHERE repository_id = $1 ORDER BY created_at, id",
            [repository_id],
            |r| comment_row(r)
        ))
    }

    pub async fn comment_by_id(&self, id: Id) -> StoreResult<Option<Comment>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, repository_id, user_id, author_name, body, created_at, updated_at \
             FROM comments WHERE id = $1",
            [id],
            |r| comment_row(r)
        ))
    }

    pub async fn delete_comment(&self, id: Id) -> StoreResult<bool> {
        let mut c = self.db.writer().await?;
        Ok(execute!(c.conn(), "DELETE FROM comments WHERE id = $1", [id]) == 1)
    }

    /// Writes one activity (management changes; pushes and deletes write their own).
    pub async fn record_activity(&self, a: &NewActivity, now: Timestamp) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        insert_activity(c.conn(), a, now).await
    }

    pub async fn list_activities(
        &self,
        scope: ActivityScope,
        page: PageRequest,
    ) -> StoreResult<Page<Activity>> {
        let (cond, viewer) = match scope {
            ActivityScope::All => ("WHERE $1 = $1", 0),
            ActivityScope::DashboardOf(viewer) => (
                "WHERE a.trackable_type = 'registry' \
                 OR a.team_id IN (SELECT team_id FROM team_users WHERE user_id = $1) \
                 OR (a.trackable_type IN ('namespace', 'webhook') AND a.namespace_id IN \
                     (SELECT n.id FROM namespaces n JOIN team_users tu ON tu.team_id = n.team_id \
                      WHERE tu.user_id = $1)) \
                 OR (a.key = 'namespace.change_visibility' AND a.namespace_id IN \
                     (SELECT id FROM namespaces WHERE visibility = 2)) \
                 OR (a.trackable_type = 'repository' AND a.namespace_id IN \
                     (SELECT id FROM namespaces WHERE visibility IN (1, 2))) \
                 OR (a.trackable_type = 'application_token' AND a.owner_id = $1)",
                viewer,
            ),
        };
        let sorted = PageRequest {
            order_by: "id",
            ..page
        };
        let list = format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activities a {cond}{}",
            sorted.clause("a", &[("id", Sort::Plain)])
        );
        let mut c = self.db.reader().await?;
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(list), [viewer], |r| {
            activity_row(r)
        });
        let count = format!("SELECT count(*) AS n FROM activities a {cond}");
        let total = fetch_one!(c.conn(), sqlx::AssertSqlSafe(count), [viewer], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }
}

/// Creates or moves the tag of `p` (and its repository on first push) and writes the
/// `repository.push` activity.
async fn push_in(tx: &mut Tx, p: &PushRecord, now: Timestamp) -> StoreResult<Tag> {
    let platforms = serde_json::to_string(&p.manifest.platforms)
        .map_err(|e| StoreError::Other(format!("platforms: {e}")))?;
    let ns = namespace_names(tx, p.namespace_id).await?;
    execute!(
        tx.conn(),
        "INSERT INTO repositories (namespace_id, name, description, created_at, updated_at) \
             VALUES ($1, $2, '', $3, $3) ON CONFLICT (namespace_id, name) DO NOTHING",
        [p.namespace_id, p.repository.as_str(), now.0]
    );
    let repository_id = repository_id_in(tx, p.namespace_id, &p.repository)
        .await?
        .ok_or(StoreError::NotFound)?;
    let m = &p.manifest;
    let sql = format!(
        "INSERT INTO tags AS t (repository_id, name, digest, media_type, image_id, size, \
             platforms, author_id, author_name, pushed_at, pulled_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $10, $10) \
             ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, \
             media_type = excluded.media_type, image_id = excluded.image_id, \
             size = excluded.size, platforms = excluded.platforms, \
             author_id = excluded.author_id, author_name = excluded.author_name, \
             pushed_at = excluded.pushed_at, updated_at = excluded.updated_at \
             RETURNING {TAG_RETURNING}"
    );
    let tag = fetch_one!(
        tx.conn(),
        sqlx::AssertSqlSafe(sql),
        [
            repository_id,
            p.tag.as_str(),
            m.digest.as_str(),
            m.media_type.as_str(),
            m.image_id.as_str(),
            m.size,
            platforms,
            p.actor.user_id,
            p.actor.name.as_str(),
            now.0,
        ],
        |r| tag_row(r)
    );
    execute!(
        tx.conn(),
        "UPDATE repositories SET updated_at = $1 WHERE id = $2",
        [now.0, repository_id]
    );
    let mut parameters = std::collections::BTreeMap::new();
    parameters.insert("repository_name".to_owned(), json!(p.repository));
    parameters.insert("namespace_name".to_owned(), json!(ns.name));
    parameters.insert("tag_name".to_owned(), json!(p.tag));
    parameters.insert("digest".to_owned(), json!(m.digest));
    let activity = NewActivity {
        key: "repository.push".to_owned(),
        owner_id: p.actor.user_id,
        owner_name: p.actor.name.clone(),
        trackable_type: "repository".to_owned(),
        trackable_id: Some(repository_id),
        recipient_type: Some("tag".to_owned()),
        recipient_id: Some(tag.id),
        namespace_id: Some(p.namespace_id),
        team_id: Some(ns.team_id),
        parameters,
    };
    insert_activity(tx.conn(), &activity, now).await?;
    Ok(tag)
}
