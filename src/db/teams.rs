//! Teams and their members. A team owns clients, APIs and team keys; its members reach
//! them through their role.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::changes::{Table, wrote};
use super::schema::{team_members, teams, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = teams)]
pub struct Team {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = teams)]
pub struct NewTeam<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub name: &'a str,
    pub created_at: NaiveDateTime,
}

pub fn insert_team(conn: &mut DbConnection, team: &NewTeam<'_>) -> QueryResult<()> {
    wrote(Table::Teams);
    diesel::insert_into(teams::table).values(team).execute(conn).map(drop)
}

pub fn find_team(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Team>> {
    teams::table.find(id).select(Team::as_select()).get_result(conn).optional()
}

/// All teams, or those with these ids, by name.
pub fn list_teams(conn: &mut DbConnection, only: Option<&[String]>) -> QueryResult<Vec<Team>> {
    let mut query = teams::table.order((teams::name.asc(), teams::id.asc())).select(Team::as_select()).into_boxed();
    if let Some(ids) = only {
        query = query.filter(teams::id.eq_any(ids));
    }
    query.load(conn)
}

pub fn rename_team(conn: &mut DbConnection, id: &str, name: &str) -> QueryResult<usize> {
    wrote(Table::Teams);
    diesel::update(teams::table.find(id)).set(teams::name.eq(name)).execute(conn)
}

/// Deleting a team deletes its members and team keys, and leaves its clients and APIs to
/// the tenant (the schema's cascades).
pub fn delete_team(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    for table in [Table::Teams, Table::ApiKeys, Table::Clients, Table::Apis] {
        wrote(table);
    }
    diesel::delete(teams::table.find(id)).execute(conn)
}

#[derive(Debug, Clone, Queryable)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub created_at: NaiveDateTime,
}

pub fn list_members(conn: &mut DbConnection, team_id: &str) -> QueryResult<Vec<Member>> {
    team_members::table
        .inner_join(users::table.on(users::id.eq(team_members::user_id)))
        .filter(team_members::team_id.eq(team_id))
        .order((users::email.asc(), users::id.asc()))
        .select((team_members::user_id, users::email, users::name, team_members::role, team_members::created_at))
        .load(conn)
}

/// Adds the user to the team, or changes their role if they are in it. Returns whether
/// they were added.
pub fn upsert_member(
    conn: &mut DbConnection,
    team_id: &str,
    user_id: &str,
    role: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    wrote(Table::Teams);
    let changed = diesel::update(
        team_members::table.filter(team_members::team_id.eq(team_id)).filter(team_members::user_id.eq(user_id)),
    )
    .set(team_members::role.eq(role))
    .execute(conn)?;
    if changed > 0 {
        return Ok(false);
    }
    diesel::insert_into(team_members::table)
        .values((
            team_members::team_id.eq(team_id),
            team_members::user_id.eq(user_id),
            team_members::role.eq(role),
            team_members::created_at.eq(now),
        ))
        .execute(conn)
        .map(|_| true)
}

pub fn remove_member(conn: &mut DbConnection, team_id: &str, user_id: &str) -> QueryResult<usize> {
    wrote(Table::Teams);
    diesel::delete(
        team_members::table.filter(team_members::team_id.eq(team_id)).filter(team_members::user_id.eq(user_id)),
    )
    .execute(conn)
}

pub fn remove_user_from_all_teams(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    wrote(Table::Teams);
    diesel::delete(team_members::table.filter(team_members::user_id.eq(user_id))).execute(conn)
}

/// The user's teams and roles: what a personal key reaches beyond its user's own things.
pub fn memberships(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<(String, String)>> {
    team_members::table
        .filter(team_members::user_id.eq(user_id))
        .select((team_members::team_id, team_members::role))
        .load(conn)
}
