//! Teams and their members. A team owns clients, APIs and team keys; a member reaches them
//! through their role (viewer, editor, admin). Managing a team's members, or deleting it,
//! takes the team's admin role or the tenant permission `teams:admin`.

use serde::{Deserialize, Serialize};

use super::{Caller, clean_name};
use crate::access::{Action, Resource, Target, TeamRole};
use crate::audit;
use crate::db::DbConnection;
use crate::db::teams::{
    Member, NewTeam, Team, delete_team as db_delete_team, find_team, insert_team, list_members,
    list_teams as db_list_teams, remove_member as db_remove_member, rename_team, upsert_member,
};
use crate::db::users::{STATUS_DELETED, find_user};
use crate::error::AppError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TeamView {
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Team> for TeamView {
    fn from(team: &Team) -> Self {
        Self { id: team.id.clone(), name: team.name.clone(), created_at: crate::db::utc(team.created_at) }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub added_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Member> for MemberView {
    fn from(member: &Member) -> Self {
        Self {
            user_id: member.user_id.clone(),
            email: member.email.clone(),
            name: member.name.clone(),
            role: member.role.clone(),
            added_at: crate::db::utc(member.created_at),
        }
    }
}

fn team_for(conn: &mut DbConnection, caller: &Caller<'_>, id: &str, action: Action) -> Result<Team, AppError> {
    let team = find_team(conn, id)?.ok_or(AppError::NotFound)?;
    caller.check(Target::of(Resource::Teams).in_team(Some(&team.id)), action)?;
    Ok(team)
}

/// Creates a team; a user who creates one through their personal key becomes its admin.
pub fn create_team(conn: &mut DbConnection, caller: &Caller<'_>, name: &str) -> Result<TeamView, AppError> {
    caller.check_create(Resource::Teams, None)?;
    let name = clean_name(name, "team")?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        insert_team(conn, &NewTeam { id: &id, tenant_id: crate::db::DEFAULT_TENANT_ID, name: &name, created_at: now })?;
        if let Some(user) = caller.reach.user.as_deref() {
            upsert_member(conn, &id, user, TeamRole::Admin.as_str(), now)?;
        }
        audit::record(
            conn,
            &caller.audit.change("team.created").target("team", &id).details(serde_json::json!({ "name": name })),
        )?;
        Ok(())
    })
    .map_err(|e| match e {
        AppError::Conflict(_) => AppError::Conflict(format!("a team named `{name}` already exists")),
        other => other,
    })?;
    get_team(conn, caller, &id)
}

/// Where the caller may create a `resource` (a client or an API): tenant-wide (no team),
/// and in which teams, by name.
pub fn homes_for(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    resource: Resource,
) -> Result<(bool, Vec<(String, String)>), AppError> {
    let tenant_wide = caller.check_create(resource, None).is_ok();
    let teams = db_list_teams(conn, None)?
        .into_iter()
        .filter(|team| caller.check_create(resource, Some(&team.id)).is_ok())
        .map(|team| (team.id, team.name))
        .collect();
    Ok((tenant_wide, teams))
}

pub fn get_team(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<TeamView, AppError> {
    team_for(conn, caller, id, Action::Read).map(|t| TeamView::from(&t))
}

pub fn list_teams(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<TeamView>, AppError> {
    let listing = caller.listing(Resource::Teams)?;
    let only = (!listing.all).then_some(listing.teams.as_slice());
    Ok(db_list_teams(conn, only)?.iter().map(TeamView::from).collect())
}

pub fn rename(conn: &mut DbConnection, caller: &Caller<'_>, id: &str, name: &str) -> Result<TeamView, AppError> {
    team_for(conn, caller, id, Action::Write)?;
    let name = clean_name(name, "team")?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        rename_team(conn, id, &name)?;
        audit::record(
            conn,
            &caller.audit.change("team.renamed").target("team", id).details(serde_json::json!({ "name": name })),
        )?;
        Ok(())
    })?;
    get_team(conn, caller, id)
}

/// Deletes the team, its memberships and its keys; its clients and APIs stay, tenant-wide.
pub fn delete_team(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<(), AppError> {
    team_for(conn, caller, id, Action::Admin)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        db_delete_team(conn, id)?;
        audit::record(conn, &caller.audit.change("team.deleted").target("team", id))?;
        Ok(())
    })
}

pub fn members(conn: &mut DbConnection, caller: &Caller<'_>, team_id: &str) -> Result<Vec<MemberView>, AppError> {
    team_for(conn, caller, team_id, Action::Read)?;
    Ok(list_members(conn, team_id)?.iter().map(MemberView::from).collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberChange {
    pub role: TeamRole,
}

/// Adds a user to the team with a role, or changes their role.
pub fn set_member(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    team_id: &str,
    user_id: &str,
    role: TeamRole,
) -> Result<Vec<MemberView>, AppError> {
    team_for(conn, caller, team_id, Action::Admin)?;
    let user = find_user(conn, user_id)?.filter(|u| u.status != STATUS_DELETED);
    if user.is_none() {
        // The user is named by the path: a missing one is a missing resource.
        return Err(AppError::NotFound);
    }
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        let added = upsert_member(conn, team_id, user_id, role.as_str(), crate::db::now())?;
        let action = if added { "team.member_added" } else { "team.member_role_changed" };
        audit::record(
            conn,
            &caller
                .audit
                .change(action)
                .target("team", team_id)
                .details(serde_json::json!({ "user_id": user_id, "role": role.as_str() })),
        )?;
        Ok(())
    })?;
    members(conn, caller, team_id)
}

/// Adds the user who holds `email` (as sign-in compares emails) to the team, or changes
/// their role: how people name a colleague on the dashboard.
pub fn set_member_by_email(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    team_id: &str,
    email: &str,
    role: TeamRole,
) -> Result<Vec<MemberView>, AppError> {
    team_for(conn, caller, team_id, Action::Admin)?;
    let email = super::users::normalize_email(email)?;
    let user = crate::db::users::find_user_by_email(conn, crate::db::DEFAULT_TENANT_ID, &email)?.ok_or_else(|| {
        AppError::BadRequest(format!("nobody has an account with the email `{email}`; invite them first"))
    })?;
    set_member(conn, caller, team_id, &user.id, role)
}

pub fn remove_member(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    team_id: &str,
    user_id: &str,
) -> Result<(), AppError> {
    team_for(conn, caller, team_id, Action::Admin)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        if db_remove_member(conn, team_id, user_id)? == 0 {
            return Err(AppError::NotFound);
        }
        audit::record(
            conn,
            &caller
                .audit
                .change("team.member_removed")
                .target("team", team_id)
                .details(serde_json::json!({ "user_id": user_id })),
        )?;
        Ok(())
    })
}
