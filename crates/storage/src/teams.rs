//! Teams and their members.

use crate::db::{Guard, RowGet, Tx, execute, fetch_all, fetch_one, fetch_optional};
use crate::users::{USER_COLUMNS_PREFIXED, user_row};
use crate::{Page, PageRequest, Refusal, Sort, Store, StoreError, StoreResult, TeamScope};
use portcullis_domain::model::{Id, Role, Team, TeamListing, TeamMember, User};
use portcullis_domain::time::Timestamp;

const SORTABLE: &[(&str, Sort)] = &[
    ("id", Sort::Plain),
    ("name", Sort::Text),
    ("description", Sort::Text),
    ("hidden", Sort::Plain),
    ("created_at", Sort::Plain),
    ("updated_at", Sort::Plain),
];

pub(crate) fn team_row<R: RowGet>(r: &R) -> StoreResult<Team> {
    Ok(Team {
        id: r.col("id")?,
        name: r.col("name")?,
        description: r.col("description")?,
        hidden: r.col("hidden")?,
        created_at: Timestamp(r.col("created_at")?),
        updated_at: Timestamp(r.col("updated_at")?),
    })
}

pub(crate) fn role_of(v: i64) -> StoreResult<Role> {
    Role::from_i64(v).ok_or_else(|| StoreError::Other(format!("unknown team role {v}")))
}

/// A team row plus the viewer's `role` and the `members`/`namespaces` counts.
fn team_listing_row<R: RowGet>(r: &R) -> StoreResult<TeamListing> {
    Ok(TeamListing {
        team: team_row(r)?,
        role: r.col::<Option<i64>>("role")?.map(role_of).transpose()?,
        members: r.col("members")?,
        namespaces: r.col("namespaces")?,
    })
}

/// The columns of [`team_listing_row`] for a team aliased `t`, the viewer bound as `$1`.
const TEAM_LISTING_COLUMNS: &str = "t.id, t.name, t.description, t.hidden, t.created_at, \
     t.updated_at, \
     (SELECT tu.role FROM team_users tu WHERE tu.team_id = t.id AND tu.user_id = $1) AS role, \
     (SELECT count(*) FROM team_users tu WHERE tu.team_id = t.id) AS members, \
     (SELECT count(*) FROM namespaces n WHERE n.team_id = t.id) AS namespaces";

/// Refuses a change that would leave `team_id` without an owner, unless `member_id`
/// is not an owner now. Runs under [`Guard::TeamOwners`].
async fn ensure_another_owner(tx: &mut Tx, team_id: Id, member_id: Id) -> StoreResult<()> {
    let (target, others): (i64, i64) = fetch_one!(
        tx.conn(),
        "SELECT (SELECT count(*) FROM team_users WHERE id = $2 AND team_id = $1 AND role = $3) \
         AS target, (SELECT count(*) FROM team_users WHERE team_id = $1 AND role = $3 \
         AND id <> $2) AS others",
        [team_id, member_id, Role::Owner.as_i64()],
        |r| Ok::<_, StoreError>((r.col::<i64>("target")?, r.col::<i64>("others")?))
    );
    if target > 0 && others == 0 {
        return Err(StoreError::Refused(Refusal::LastOwner));
    }
    Ok(())
}

fn member_row<R: RowGet>(r: &R) -> StoreResult<TeamMember> {
    Ok(TeamMember {
        id: r.col("id")?,
        team_id: r.col("team_id")?,
        user_id: r.col("user_id")?,
        role: role_of(r.col("role")?)?,
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

    /// Teams in `scope`, each with `viewer`'s role and its counts, in one query.
    pub async fn list_teams(
        &self,
        scope: TeamScope,
        viewer: Id,
        p: &PageRequest,
    ) -> StoreResult<Page<TeamListing>> {
        // `v` is the viewer's membership (at most one row per team).
        let filter = match scope {
            TeamScope::AllVisible => "NOT t.hidden",
            TeamScope::MemberOf => "NOT t.hidden AND v.id IS NOT NULL",
        };
        let from = "FROM teams t LEFT JOIN team_users v ON v.team_id = t.id AND v.user_id = $1";
        let list = format!(
            "SELECT {TEAM_LISTING_COLUMNS} {from} WHERE {filter}{}",
            p.clause("t", SORTABLE)
        );
        let count = format!("SELECT count(*) AS n {from} WHERE {filter}");
        let mut c = self.db.reader().await?;
        let items = fetch_all!(c.conn(), sqlx::AssertSqlSafe(list), [viewer], |r| {
            team_listing_row(r)
        });
        let total = fetch_one!(c.conn(), sqlx::AssertSqlSafe(count), [viewer], |r| r
            .col::<i64>("n"));
        Ok(Page { items, total })
    }

    /// One team as [`Store::list_teams`] shows it to `viewer`.
    pub async fn team_listing(&self, id: Id, viewer: Id) -> StoreResult<Option<TeamListing>> {
        let sql = format!("SELECT {TEAM_LISTING_COLUMNS} FROM teams t WHERE t.id = $2");
        let mut c = self.db.reader().await?;
        Ok(fetch_optional!(
            c.conn(),
            sqlx::AssertSqlSafe(sql),
            [viewer, id],
            |r| team_listing_row(r)
        ))
    }

    /// Changes only what is given; hidden-ness never changes.
    pub async fn update_team(
        &self,
        id: Id,
        name: Option<&str>,
        description: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Team> {
        let mut c = self.db.writer().await?;
        fetch_optional!(
            c.conn(),
            "UPDATE teams SET name = COALESCE($2, name), \
             description = COALESCE($3, description), updated_at = $4 WHERE id = $1 \
             RETURNING id, name, description, hidden, created_at, updated_at",
            [id, name, description, now.0],
            |r| team_row(r)
        )
        .ok_or(StoreError::NotFound)
    }

    /// Namespaces can't be ownerless: they move to `move_namespaces_to` or are deleted
    /// with the team.
    pub async fn delete_team(&self, id: Id, move_namespaces_to: Option<Id>) -> StoreResult<()> {
        if move_namespaces_to == Some(id) {
            return Err(StoreError::Other(
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

    /// Changes a member's role; demoting the team's only owner is `Refused(LastOwner)`,
    /// checked under [`Guard::TeamOwners`] in the same transaction. `NotFound` unless
    /// the membership belongs to `team_id`.
    pub async fn set_member_role(
        &self,
        team_id: Id,
        member_id: Id,
        role: Role,
        now: Timestamp,
    ) -> StoreResult<TeamMember> {
        let mut tx = self.db.begin().await?;
        if role != Role::Owner {
            tx.guard(Guard::TeamOwners).await?;
            ensure_another_owner(&mut tx, team_id, member_id).await?;
        }
        let member = fetch_optional!(
            tx.conn(),
            "UPDATE team_users SET role = $3, updated_at = $4 WHERE id = $1 AND team_id = $2 \
             RETURNING id, team_id, user_id, role, created_at, updated_at",
            [member_id, team_id, role.as_i64(), now.0],
            |r| member_row(r)
        )
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(member)
    }

    /// Removes a member; removing the team's only owner is `Refused(LastOwner)`.
    pub async fn remove_member(&self, team_id: Id, member_id: Id) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        tx.guard(Guard::TeamOwners).await?;
        ensure_another_owner(&mut tx, team_id, member_id).await?;
        let deleted = execute!(
            tx.conn(),
            "DELETE FROM team_users WHERE id = $1 AND team_id = $2",
            [member_id, team_id]
        );
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
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
}
