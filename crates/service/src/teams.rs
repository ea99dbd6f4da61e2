//! Teams and their members.

use crate::activity::Audit;
use crate::auth::Authenticated;
use crate::listing::{ListParams, Paged};
use crate::namespaces::NamespaceDetails;
use crate::users::not_found_as;
use portcullis_domain::model::{Id, Role, Team, TeamListing, TeamMember, User};
use portcullis_domain::names::{RESERVED_TEAM_PREFIX, validate_team_name};
use portcullis_domain::policy::{
    can_create_team, can_delete_team, can_manage_members, can_update_team, can_view_team,
};
use portcullis_domain::{Error, Result};
use portcullis_storage::{Refusal, StoreError, TeamScope};

pub const TEAM_SORT: &[&str] = &["id", "name", "created_at", "updated_at"];

crate::service! {
    /// Teams, their members and their namespaces.
    TeamService
}

/// The only-owner rule, in the words of the operation that broke it.
fn last_owner(what: &'static str) -> impl Fn(StoreError) -> Error {
    move |e| match e {
        StoreError::Refused(Refusal::LastOwner) => {
            Error::Unprocessable(format!("cannot {what} the only owner of the team"))
        }
        StoreError::NotFound => Error::NotFound("Team member"),
        other => other.into(),
    }
}

impl TeamService {
    /// A team the caller may see, with the caller's role and its counts; hidden teams
    /// do not exist for the API.
    pub async fn visible_team(&self, actor: &Authenticated, id: Id) -> Result<TeamListing> {
        let listing = self
            .ctx
            .store
            .team_listing(id, actor.user.id)
            .await?
            .filter(|l| !l.team.hidden)
            .ok_or(Error::NotFound("Team"))?;
        if !can_view_team(&actor.subject(), listing.role) {
            return Err(Error::Forbidden);
        }
        Ok(listing)
    }

    pub async fn list_teams(
        &self,
        actor: &Authenticated,
        params: &ListParams,
    ) -> Result<Paged<TeamListing>> {
        let scope = if actor.user.admin {
            TeamScope::AllVisible
        } else {
            TeamScope::MemberOf
        };
        let page = self
            .ctx
            .store
            .list_teams(scope, actor.user.id, &params.to_page_request(TEAM_SORT)?)
            .await?;
        Ok(params.paged(page.items, page.total))
    }

    /// Creates a team owned by the caller, or by `owner_id` (admins only).
    pub async fn create_team(
        &self,
        actor: &Authenticated,
        name: &str,
        description: &str,
        owner_id: Option<Id>,
    ) -> Result<TeamListing> {
        if !can_create_team(&actor.subject(), &self.ctx.policy) {
            return Err(actor.refusal());
        }
        let owner_id = match owner_id {
            Some(id) if id != actor.user.id => {
                if !actor.user.admin {
                    return Err(Error::Forbidden);
                }
                self.ctx
                    .store
                    .user_by_id(id)
                    .await?
                    .ok_or(Error::NotFound("User"))?
                    .id
            }
            _ => actor.user.id,
        };
        validate_new_team_name(name)?;
        let team = self
            .ctx
            .store
            .create_team(name.trim(), description, owner_id, self.ctx.clock.now())
            .await?;
        self.ctx.grants_changed();
        Audit::new("team.create", "team", Some(team.id))
            .scope(None, Some(team.id))
            .param("team", team.name.clone())
            .record(&self.ctx, actor)
            .await;
        self.visible_team(actor, team.id).await
    }

    /// Renames or re-describes; only the given fields are written.
    pub async fn update_team(
        &self,
        actor: &Authenticated,
        id: Id,
        name: Option<&str>,
        description: Option<&str>,
    ) -> Result<TeamListing> {
        let current = self.visible_team(actor, id).await?;
        let team = &current.team;
        if !can_update_team(
            &actor.subject(),
            team.hidden,
            current.role,
            &self.ctx.policy,
        ) {
            return Err(actor.refusal());
        }
        let name = name.map(str::trim);
        if let Some(name) = name
            && !name.eq_ignore_ascii_case(&team.name)
        {
            validate_new_team_name(name)?;
        }
        self.ctx
            .store
            .update_team(team.id, name, description, self.ctx.clock.now())
            .await
            .map_err(not_found_as("Team"))?;
        let changes = [
            ("team.change_team_name", Some(team.name.as_str()), name),
            (
                "team.change_team_description",
                Some(team.description.as_str()),
                description,
            ),
        ];
        for (key, old, new) in changes {
            if let Some(new) = new.filter(|n| Some(*n) != old) {
                Audit::new(key, "team", Some(team.id))
                    .scope(None, Some(team.id))
                    .param("team", team.name.clone())
                    .param("old", old.unwrap_or_default())
                    .param("new", new)
                    .record(&self.ctx, actor)
                    .await;
            }
        }
        self.visible_team(actor, id).await
    }

    /// Deletes a team; its namespaces move to `new_team` when given, else go with it.
    pub async fn delete_team(
        &self,
        actor: &Authenticated,
        id: Id,
        new_team: Option<&str>,
    ) -> Result<()> {
        let current = self.visible_team(actor, id).await?;
        let team = &current.team;
        if !can_delete_team(
            &actor.subject(),
            team.hidden,
            current.role,
            &self.ctx.policy,
        ) {
            return Err(actor.refusal());
        }
        let target = match new_team {
            Some(name) => {
                let t = self
                    .ctx
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
        self.ctx
            .store
            .delete_team(team.id, target)
            .await
            .map_err(not_found_as("Team"))?;
        self.ctx.grants_changed();
        // Kept with the new team's id (if any) so its members see it.
        Audit::new("team.delete", "team", Some(team.id))
            .scope(None, target)
            .param("team", team.name.clone())
            .record(&self.ctx, actor)
            .await;
        Ok(())
    }

    pub async fn team_members(
        &self,
        actor: &Authenticated,
        team_id: Id,
    ) -> Result<Vec<(TeamMember, User)>> {
        let team = self.visible_team(actor, team_id).await?.team;
        Ok(self.ctx.store.list_members(team.id).await?)
    }

    /// The team's namespaces with what the caller may do in each, in one query.
    pub async fn team_namespaces(
        &self,
        actor: &Authenticated,
        team_id: Id,
    ) -> Result<Vec<NamespaceDetails>> {
        let team = self.visible_team(actor, team_id).await?.team;
        let listings = self
            .ctx
            .store
            .namespaces_of_team(team.id, Some(actor.user.id))
            .await?;
        Ok(listings
            .into_iter()
            .map(|l| NamespaceDetails::new(l, Some(actor), &self.ctx.policy))
            .collect())
    }

    async fn managed_team(&self, actor: &Authenticated, team_id: Id) -> Result<Team> {
        let current = self.visible_team(actor, team_id).await?;
        if !can_manage_members(&actor.subject(), current.team.hidden, current.role) {
            return Err(actor.refusal());
        }
        Ok(current.team)
    }

    /// Whether the LDAP group sync fills a team the caller may see.
    pub async fn group_sync(&self, actor: &Authenticated, team_id: Id) -> Result<bool> {
        let team = self.visible_team(actor, team_id).await?.team;
        self.ctx
            .store
            .team_group_sync(team.id)
            .await?
            .ok_or(Error::NotFound("Team"))
    }

    /// Turns the LDAP group sync of a team off (Portus's `POST
    /// /api/v1/teams/:id/ldap_check`) or back on, for its owners and admins. Refused
    /// (405, as Portus) unless LDAP and the group sync are on.
    pub async fn set_group_sync(
        &self,
        actor: &Authenticated,
        team_id: Id,
        enabled: bool,
    ) -> Result<()> {
        if !crate::group_sync::enabled(&self.ctx) {
            return Err(Error::Disabled(
                "LDAP group sync is not enabled (ldap.enabled and ldap.group_sync.enabled)".into(),
            ));
        }
        let team = self.managed_team(actor, team_id).await?;
        self.ctx
            .store
            .set_team_group_sync(team.id, enabled, self.ctx.clock.now())
            .await?;
        Audit::new("team.ldap_group_sync", "team", Some(team.id))
            .scope(None, Some(team.id))
            .param("team", team.name.clone())
            .param("enabled", enabled)
            .record(&self.ctx, actor)
            .await;
        Ok(())
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
            .ctx
            .store
            .user_by_username(username)
            .await?
            .ok_or(Error::NotFound("User"))?;
        let role = if user.admin { Role::Owner } else { role };
        let member = self
            .ctx
            .store
            .add_member(team.id, user.id, role, self.ctx.clock.now())
            .await?;
        self.ctx.grants_changed();
        member_audit("team.add_member", &team, &user)
            .param("role", role.as_str())
            .record(&self.ctx, actor)
            .await;
        Ok((member, user))
    }

    async fn member_of(&self, team: &Team, member_id: Id) -> Result<(TeamMember, User)> {
        let member = self
            .ctx
            .store
            .member_by_id(member_id)
            .await?
            .filter(|m| m.team_id == team.id)
            .ok_or(Error::NotFound("Team member"))?;
        let user = self
            .ctx
            .store
            .user_by_id(member.user_id)
            .await?
            .ok_or(Error::NotFound("User"))?;
        Ok((member, user))
    }

    /// Changes a member's role. The only owner cannot be demoted: checked and written
    /// in one guarded transaction, so two concurrent demotions cannot both pass.
    pub async fn update_member(
        &self,
        actor: &Authenticated,
        team_id: Id,
        member_id: Id,
        role: Role,
    ) -> Result<(TeamMember, User)> {
        let team = self.managed_team(actor, team_id).await?;
        let (before, user) = self.member_of(&team, member_id).await?;
        if role != Role::Owner && user.admin {
            return Err(Error::Unprocessable(
                "cannot demote an admin: admins are always owners".into(),
            ));
        }
        let member = self
            .ctx
            .store
            .set_member_role(team.id, member_id, role, self.ctx.clock.now())
            .await
            .map_err(last_owner("demote"))?;
        self.ctx.grants_changed();
        member_audit("team.change_member_role", &team, &user)
            .param("old_role", before.role.as_str())
            .param("new_role", role.as_str())
            .record(&self.ctx, actor)
            .await;
        Ok((member, user))
    }

    /// Removes a member; the only owner stays (guarded like [`Self::update_member`]).
    pub async fn remove_member(
        &self,
        actor: &Authenticated,
        team_id: Id,
        member_id: Id,
    ) -> Result<()> {
        let team = self.managed_team(actor, team_id).await?;
        let (member, user) = self.member_of(&team, member_id).await?;
        self.ctx
            .store
            .remove_member(team.id, member_id)
            .await
            .map_err(last_owner("remove"))?;
        self.ctx.grants_changed();
        member_audit("team.remove_member", &team, &user)
            .param("role", member.role.as_str())
            .record(&self.ctx, actor)
            .await;
        Ok(())
    }
}

/// A membership change: the user is the recipient (Portus).
fn member_audit<'a>(key: &'a str, team: &Team, user: &User) -> Audit<'a> {
    Audit::new(key, "team", Some(team.id))
        .recipient("user", user.id)
        .scope(None, Some(team.id))
        .param("team", team.name.clone())
        .param("user", user.username.clone())
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
