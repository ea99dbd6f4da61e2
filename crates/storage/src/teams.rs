//! Teams and their members.

use crate::db::{RowGet, execute, fetch_all, fetch_one, fetch_optional};
use crate::users::{USER_COLUMNS_PREFIXED, user_row};
use crate::{Page, PageRequest, Sort, Store, StoreError, StoreResult, TeamScope};
use portcullis_domain::model::{Id, Role, Team, TeamMember, User};
use portcullis_domain::time::Timestamp;

const TEAM_COLUMNS: &str = "t.id, t.name, t.description, t.hidden, t.created_at, t.updated_at";

const SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("name", Sort::Text),
    ("description", Sort::Text),
    ("hidden", Sort::Plain),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

fn team_row<R: RowGet>(r: &R) -> StoreResult<Team> {
    Ok(Team {
        id: r.col("id")?,
        name: r.col("name")?,
        description: r.col("description")?,
        hidden: r.col("hidden")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

fn member_row<R: RowGet>(r: &R) -> StoreResult<TeamMember> {
    let role: i64 = r.col("role")?;
    Ok(TeamMember {
        id: r.col("id")?,
        team_id: r.col("team_id")?,
        user_id: r.col("user_id")?,
        role: Role::from_i64(role)
            .ok_or_else(|| StoreError::Backend(format!("unknown team role {role}")))?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

impl Store {
    /// A visible team with `owner_id` as its first owner (a team never starts ownerless).
    pub async fn create_team(
        &self,
        name: &str,
        description: &str,
        owner_id: Id,
        now: Timestamp,
    ) -> StoreResult<Team> {
        let mut tx = self.db.begin().await?;
        let team = fetch_one!(
            tx.conn(),
            "INSERT INTO teams (name, description, hidden, created_at, updated_at) \
             VALUES ($1, $2, false, $3, $3) \
             RETURNING id, name, description, hidden, created_at, updated_at",
            [name, description, now.0],
            |r| team_row(r)
        );
        execute!(
            tx.conn(),
            "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4)",
            [team.id, owner_id, Role::Owner.as_i64(), now.0]
        );
        tx.commit().await?;
        Ok(team)
    }

    pub async fn team_by_id(&self, id: Id) -> StoreResult<Option<Team>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT t.id, t.name, t.description, t.hidden, t.created_at, t.updated_at \
             FROM teams t WHERE t.id = $1",
            [id],
            |r| team_row(r)
        ))
    }

    /// Case-insensitive, hidden teams included (names are unique across both).
    pub async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT t.id, t.name, t.description, t.hidden, t.created_at, t.updated_at \
             FROM teams t WHERE lower(t.name) = lower($1)",
            [name],
            |r| team_row(r)
        ))
    }

    pub async fn list_teams(&self, scope: TeamScope, p: &PageRequest) -> StoreResult<Page<Team>> {
        // Both scopes bind one parameter so the statement shape stays the same.
        let (filter, user_id) = match scope {
            TeamScope::AllVisible => ("NOT t.hidden AND $1 IS NULL", None),
            TeamScope::MemberOf(user_id) => (
                "NOT t.hidden AND EXISTS (SELECT 1 FROM team_users tu \
                 WHERE tu.team_id = t.id AND tu.user_id = $1)",
                Some(user_id),
            ),
        };
        let list = format!(
            "SELECT {TEAM_COLUMNS} FROM teams t WHERE {filter}{}",
            p.clause("t", SORTABLE)
        );
        let count = format!("SELECT count(*) AS n FROM teams t WHERE {filter}");
        let mut c = self.db.reader().await?;
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(list), [user_id], |r| {
            team_row(r)
        });
        let total = fetch_one!(c.conn(), sqlx::AssertSqlSafe(count), [user_id], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }

    /// Renames and re-describes; hidden-ness never changes.
    pub async fn update_team(&self, t: &Team, now: Timestamp) -> StoreResult<Team> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE teams SET name = $2, description = $3, updated_at = $4 WHERE id = $1 \
             RETURNING id, name, description, hidden, created_at, updated_at",
            [t.id, t.name.as_str(), t.description.as_str(), now.0],
            |r| team_row(r)
        )
        .ok_or(StoreError::NotFound)
    }

    /// Namespaces can't be ownerless: they move to `move_namespaces_to` or are deleted
    /// with the team.
    pub async fn delete_team(&self, id: Id, move_namespaces_to: Option<Id>) -> StoreResult<()> {
        if move_namespaces_to == Some(id) {
            return Err(StoreError::Backend(
                "cannot move namespaces to the team being deleted".to_owned(),
            ));
        }
        let mut tx = self.db.begin().await?;
        match move_namespaces_to {
            Some(target) => {
                let exists = fetch_optional!(
                    tx.conn(),
                    "SELECT id FROM teams WHERE id = $1",
                    [target],
                    |r| r.col::<Id>("id")
                );
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
                execute!(
                    tx.conn(),
                    "UPDATE namespaces SET team_id = $2 WHERE team_id = $1",
                    [id, target]
                );
            }
            None => {
                execute!(tx.conn(), "DELETE FROM namespaces WHERE team_id = $1", [id]);
            }
        }
        let deleted = execute!(tx.conn(), "DELETE FROM teams WHERE id = $1", [id]);
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    /// (members, namespaces) of a team.
    pub async fn team_counts(&self, team_id: Id) -> StoreResult<(i64, i64)> {
        let mut c = self.db.reader().await?;
        Ok(fetch_one!(
            c.conn(),
            "SELECT (SELECT count(*) FROM team_users WHERE team_id = $1) AS members, \
             (SELECT count(*) FROM namespaces WHERE team_id = $1) AS namespaces",
            [team_id],
            |r| Ok::<_, StoreError>((r.col::<i64>("members")?, r.col::<i64>("namespaces")?))
        ))
    }

    /// A second membership of the same user is `Conflict("member")`.
    pub async fn add_member(
        &self,
        team_id: Id,
        user_id: Id,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<TeamMember> {
        let mut c = self.db.writer().await?;
        Ok(fetch_one!(
            c.conn(),
            "INSERT INTO team_users (team_id, user_id, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) \
             RETURNING id, team_id, user_id, role, created_at, updated_at",
            [team_id, user_id, role.as_i64(), now.0],
            |r| member_row(r)
        ))
    }

    pub async fn member_by_id(&self, id: Id) -> StoreResult<Option<TeamMember>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, team_id, user_id, role, created_at, updated_at FROM team_users WHERE id = $1",
            [id],
            |r| member_row(r)
        ))
    }

    pub async fn membership(&self, team_id: Id, user_id: Id) -> StoreResult<Option<TeamMember>> {
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            "SELECT id, team_id, user_id, role, created_at, updated_at FROM team_users \
             WHERE team_id = $1 AND user_id = $2",
            [team_id, user_id],
            |r| member_row(r)
        ))
    }

    pub async fn set_member_role(
        &self,
        member_id: Id,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<TeamMember> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE team_users SET role = $2, updated_at = $3 WHERE id = $1 \
             RETURNING id, team_id, user_id, role, created_at, updated_at",
            [member_id, role.as_i64(), now.0],
            |r| member_row(r)
        )
        .ok_or(StoreError::NotFound)
    }

    pub async fn remove_member(&self, member_id: Id) -> StoreResult<()> {
        let mut c = self.db.writer().await?;
        let deleted = execute!(
            c.conn(),
            "DELETE FROM team_users WHERE id = $1",
            [member_id]
        );
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Members with their users, oldest membership first.
    pub async fn list_members(&self, team_id: Id) -> StoreResult<Vec<(TeamMember, User)>> {
        let sql = format!(
            "SELECT tu.id, tu.team_id, tu.user_id, tu.role, tu.created_at, tu.updated_at, \
             {USER_COLUMNS_PREFIXED} FROM team_users tu JOIN users u ON u.id = tu.user_id \
             WHERE tu.team_id = $1 ORDER BY tu.id"
        );
        let mut c = self.db.reader().await?;
        Ok(fetch_all!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [team_id],
            |r| Ok::<_, StoreError>((member_row(r)?, user_row(r, "u_")?))
        ))
    }

    pub async fn count_owners(&self, team_id: Id) -> StoreResult<i64> {
        let mut c = self.db.reader().await?;
        Ok(fetch_one!(
            c.conn(),
            "SELECT count(*) AS n FROM team_users WHERE team_id = $1 AND role = $2",
            [team_id, Role::Owner.as_i64()],
            |r| r.col::<i64>("n")
        ))
    }
}
