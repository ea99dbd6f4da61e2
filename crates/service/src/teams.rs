//! Teams and their members.

use crate::Services;
use crate::auth::Authenticated;
use crate::listing::{ListParams, Paged};
use portcullis_domain::model::{Id, Namespace, Role, Team, TeamMember, User};
use portcullis_domain::names::{RESERVED_TEAM_PREFIX, validate_team_name};
use portcullis_domain::policy::{
    can_create_team, can_delete_team, can_manage_members, can_update_team, can_view_team,
};
use portcullis_domain::{Error, Result};
use portcullis_storage::TeamScope;

pub const TEAM_SORT: &[&str] = &["id", "name", "created_at", "updated_at"];

impl Services {
    async fn team(&self, id: Id) -> Result<Team> {
        self.store
            .team_by_id(id)
            .await?
            .ok_or(Error::NotFound("Team"))
    }

    async fn role_in(&self, team_id: Id, user_id: Id) -> Result<Option<Role>> {
        Ok(self
            .store
            .membership(team_id, user_id)
            .await?
            .map(|m| m.role))
    }

    /// A team the caller may see; hidden teams do not exist for the API.
    pub async fn visible_team(
        &self,
        actor: &Authenticated,
        id: Id,
    ) -> Result<(Team, Option<Role>)> {
        let team = self.team(id).await?;
        let role = self.role_in(team.id, actor.user.id).await?;
        if team.hidden {
            return Err(Error::NotFound("Team"));
        }
        if !can_view_team(&actor.subject(), role) {
            return Err(Error::Forbidden);
        }
        Ok((team, role))
    }

    pub async fn list_teams(
        &self,
        actor: &Authenticated,
        params: &ListParams,
    ) -> Result<Paged<Team>> {
        let scope = if actor.user.admin {
            TeamScope::AllVisible
        } else {
            TeamScope::MemberOf(actor.user.id)
        };
        let page = self
            .store
            .list_teams(scope, &params.to_page_request(TEAM_SORT))
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    pub async fn team_counts(&self, team_id: Id) -> Result<(i64, i64)> {
        Ok(self.store.team_counts(team_id).await?)
    }

    /// Creates a team owned by the caller, or by `owner_id` (admins only).
    pub async fn create_team(
        &self,
        actor: &Authenticated,
        name: &str,
        description: &str,
        owner_id: Option<Id>,
    ) -> Result<Team> {
        if !can_create_team(&actor.subject(), &self.policy) {
            return Err(Error::Forbidden);
        }
        let owner = match owner_id {
            Some(id) if id != actor.user.id => {
                if !actor.user.admin {
                    return Err(Error::Forbidden);
                }
                self.store
                    .user_by_id(id)
                    .await?
                    .ok_or(Error::NotFound("User"))?
            }
            _ => actor.user.clone(),
        };
        validate_new_team_name(name)?;
        let team = self
            .store
            .create_team(name.trim(), description, owner.id, self.clock.now())
            .await?;
        self.grants_changed();
        Ok(team)
    }

    pub async fn update_team(
        &self,
        actor: &Authenticated,
        id: Id,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<Team> {
        let (mut team, role) = self.visible_team(actor, id).await?;
        if !can_update_team(&actor.subject(), team.hidden, role, &self.policy) {
            return Err(Error::Forbidden);
        }
        if let Some(name) = name {
            if !name.trim().eq_ignore_ascii_case(&team.name) {
                validate_new_team_name(name)?;
            }
            team.name = name.trim().to_owned();
        }
        if let Some(d) = description {
            team.description = d.to_owned();
        }
        Ok(self.store.update_team(&team, self.clock.now()).await?)
    }

    /// Deletes a team; its namespaces move to `new_team` when given, else go with it.
    pub async fn delete_team(
        &self,
        actor: &Authenticated,
        id: Id,
        new_team: Option<&str>,
    ) -> Result<()> {
        let (team, role) = self.visible_team(actor, id).await?;
        if !can_delete_team(&actor.subject(), team.hidden, role, &self.policy) {
            return Err(Error::Forbidden);
        }
        let target = match new_team {
            Some(name) => {
                let t = self
                    .store
                    .team_by_name(name)
                    .await?
                    .filter(|t| !t.hidden)
                    .ok_or(Error::NotFound("Team"))?;
                if t.id == team.id {
                    return Err(Error::Unprocessable(
                        "cannot migrate namespaces to the team being removed".into(),
                    ));
                }
                Some(t.id)
            }
            None => None,
        };
        self.store.delete_team(team.id, target).await?;
        self.grants_changed();
        Ok(())
    }

    pub async fn team_members(
        &self,
        actor: &Authenticated,
        team_id: Id,
    ) -> Result<Vec<(TeamMember, User)>> {
        let (team, _) = self.visible_team(actor, team_id).await?;
        Ok(self.store.list_members(team.id).await?)
    }

    pub async fn team_namespaces(
        &self,
        actor: &Authenticated,
        team_id: Id,
    ) -> Result<Vec<Namespace>> {
        let (team, _) = self.visible_team(actor, team_id).await?;
        Ok(self.store.namespaces_of_team(team.id).await?)
    }

    async fn managed_team(&self, actor: &Authenticated, team_id: Id) -> Result<Team> {
        let (team, role) = self.visible_team(actor, team_id).await?;
        if !can_manage_members(&actor.subject(), team.hidden, role) {
            return Err(Error::Forbidden);
        }
        Ok(team)
    }

    /// Adds `username` with `role`; admins always join as owners (Portus).
    pub async fn add_member(
        &self,
        actor: &Authenticated,
        team_id: Id,
        username: &str,
        role: Role,
    ) -> Result<(TeamMember, User)> {
        let team = self.managed_team(actor, team_id).await?;
        let user = self
            .store
            .user_by_username(username)
            .await?
            .ok_or(Error::NotFound("User"))?;
        let role = if user.admin { Role::Owner } else { role };
        let member = self
            .store
            .add_member(team.id, user.id, role, self.clock.now())
            .await?;
        self.grants_changed();
        Ok((member, user))
    }

    async fn member_of(&self, team: &Team, member_id: Id) -> Result<(TeamMember, User)> {
        let member = self
            .store
            .member_by_id(member_id)
            .await?
            .filter(|m| m.team_id == team.id)
            .ok_or(Error::NotFound("Team member"))?;
        let user = self
            .store
            .user_by_id(member.user_id)
            .await?
            .ok_or(Error::NotFound("User"))?;
        Ok((member, user))
    }

    pub async fn update_member(
        &self,
        actor: &Authenticated,
        team_id: Id,
        member_id: Id,
        role: Role,
    ) -> Result<(TeamMember, User)> {
        let team = self.managed_team(actor, team_id).await?;
        let (member, user) = self.member_of(&team, member_id).await?;
        if role != Role::Owner {
            if user.admin {
                return Err(Error::Unprocessable(
                    "cannot demote an admin: admins are always owners".into(),
                ));
            }
            if member.role == Role::Owner && self.store.count_owners(team.id).await? <= 1 {
                return Err(Error::Unprocessable(
                    "cannot demote the only owner of the team".into(),
                ));
            }
        }
        let member = self
            .store
            .set_member_role(member.id, role, self.clock.now())
            .await?;
        self.grants_changed();
        Ok((member, user))
    }

    pub async fn remove_member(
        &self,
        actor: &Authenticated,
        team_id: Id,
        member_id: Id,
    ) -> Result<()> {
        let team = self.managed_team(actor, team_id).await?;
        let (member, _) = self.member_of(&team, member_id).await?;
        if member.role == Role::Owner && self.store.count_owners(team.id).await? <= 1 {
            return Err(Error::Unprocessable(
                "cannot remove the only owner of the team".into(),
            ));
        }
        self.store.remove_member(member.id).await?;
        self.grants_changed();
        Ok(())
    }
}

fn validate_new_team_name(name: &str) -> Result<()> {
    validate_team_name(name).map_err(|m| Error::invalid("name", m))?;
    if name
        .trim()
        .to_ascii_lowercase()
        .starts_with(RESERVED_TEAM_PREFIX)
    {
        return Err(Error::invalid("name", "is reserved"));
    }
    Ok(())
}
