//! Teams in the dashboard: the teams a person reaches, creating one, and a team's page with
//! its members and their roles (add by email, change, remove), renaming and deleting. Each
//! action is `manage::teams`' own call, made as the signed-in person.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::web::{self};
use askama::Template;
use serde::Deserialize;

use super::{PageResult, Section, Shell, Visitor, date, see_other};
use crate::access::{Action, Resource, Target, TeamRole};
use crate::error::AppError;
use crate::manage::Caller;
use crate::manage::teams::{self, MemberView, TeamView};
use crate::state::AppState;
use crate::web::form::PageForm;

pub const LIST: &str = "/dashboard/teams";

const ROLES: [TeamRole; 3] = [TeamRole::Viewer, TeamRole::Editor, TeamRole::Admin];

fn may(caller: &Caller<'_>, team: &str, action: Action) -> bool {
    caller.check(Target::of(Resource::Teams).in_team(Some(team)), action).is_ok()
}

struct TeamRow {
    id: String,
    name: String,
    your_role: String,
    created: String,
}

#[derive(Template)]
#[template(path = "dashboard/teams.html")]
struct ListPage {
    shell: Shell,
    notice: Option<&'static str>,
    teams: Vec<TeamRow>,
    may_create: bool,
    name: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn list_page(visitor: &Visitor, notice: Option<&'static str>, name: String, error: Option<String>) -> PageResult {
    let roles = visitor.reach().teams.clone();
    let (teams, may_create) = visitor
        .run(move |conn, caller, _| {
            let teams = teams::list_teams(conn, caller)?;
            Ok((teams, caller.check_create(Resource::Teams, None).is_ok()))
        })
        .await?;
    let rows = teams
        .into_iter()
        .map(|team| TeamRow {
            your_role: roles.iter().find(|(id, _)| *id == team.id).map_or("—", |(_, role)| role.as_str()).to_owned(),
            created: date(Some(team.created_at)),
            id: team.id,
            name: team.name,
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = ListPage { shell: visitor.shell(Section::Teams), notice, teams: rows, may_create, name, error };
    visitor.page(status, &page)
}

pub async fn get_list(
    visitor: Visitor,
    _req: HttpRequest,
    query: web::Query<DoneQuery>,
    _state: web::Data<AppState>,
) -> PageResult {
    let notice = match query.done.as_deref() {
        Some("deleted") => Some("The team was deleted, with its memberships and team keys."),
        _ => None,
    };
    list_page(&visitor, notice, String::new(), None).await
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

pub async fn post_create(
    visitor: Visitor,
    _req: HttpRequest,
    form: PageForm<NameForm>,
    _state: web::Data<AppState>,
) -> PageResult {
    let form = form.into_inner();
    let name = form.name.clone();
    let created = visitor.run(move |conn, caller, _| teams::create_team(conn, caller, &name)).await;
    match created {
        Ok(team) => Ok(see_other(&format!("{LIST}/{}?done=created", team.id))),
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            list_page(&visitor, None, form.name, Some(crate::web::form::sentence(&message))).await
        }
        Err(refused) => Err(refused.into()),
    }
}

struct MemberRow {
    user_id: String,
    email: String,
    roles: Vec<(&'static str, bool)>,
    role: String,
}

#[derive(Template)]
#[template(path = "dashboard/team.html")]
struct TeamPage {
    shell: Shell,
    notice: Option<&'static str>,
    team: TeamView,
    members: Vec<MemberRow>,
    roles: Vec<&'static str>,
    may_rename: bool,
    may_admin: bool,
    email: String,
    error: Option<String>,
}

async fn team_page(
    visitor: &Visitor,
    id: String,
    notice: Option<&'static str>,
    email: String,
    error: Option<String>,
) -> PageResult {
    let (team, members, may_rename, may_admin) = visitor
        .run(move |conn, caller, _| {
            let team = teams::get_team(conn, caller, &id)?;
            let members = teams::members(conn, caller, &id)?;
            Ok((team, members, may(caller, &id, Action::Write), may(caller, &id, Action::Admin)))
        })
        .await?;
    let members = members
        .into_iter()
        .map(|member: MemberView| MemberRow {
            roles: ROLES.iter().map(|r| (r.as_str(), r.as_str() == member.role)).collect(),
            user_id: member.user_id,
            email: member.email,
            role: member.role,
        })
        .collect();
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let page = TeamPage {
        shell: visitor.shell(Section::Teams),
        notice,
        team,
        members,
        roles: ROLES.iter().map(|r| r.as_str()).collect(),
        may_rename,
        may_admin,
        email,
        error,
    };
    visitor.page(status, &page)
}

pub async fn get_team(
    visitor: Visitor,
    _req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<DoneQuery>,
    _state: web::Data<AppState>,
) -> PageResult {
    let notice = match query.done.as_deref() {
        Some("created") => Some("The team was created, with you as its admin."),
        Some("renamed") => Some("The team was renamed."),
        Some("member") => Some("The members were changed."),
        _ => None,
    };
    team_page(&visitor, id.into_inner(), notice, String::new(), None).await
}

#[derive(Deserialize)]
pub struct MemberForm {
    /// `set` (with email or user_id, and role) or `remove` (with user_id).
    op: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    role: String,
}

pub async fn post_members(
    visitor: Visitor,
    _req: HttpRequest,
    id: web::Path<String>,
    form: PageForm<MemberForm>,
    _state: web::Data<AppState>,
) -> PageResult {
    let form = form.into_inner();
    let id = id.into_inner();
    let team = id.clone();
    let (op, email, user_id, role) = (form.op.clone(), form.email.clone(), form.user_id.clone(), form.role.clone());
    let changed = visitor
        .run(move |conn, caller, _| {
            let role = || role.parse::<TeamRole>().map_err(AppError::BadRequest);
            match op.as_str() {
                "set" if !user_id.is_empty() => teams::set_member(conn, caller, &team, &user_id, role()?).map(drop),
                "set" => teams::set_member_by_email(conn, caller, &team, &email, role()?).map(drop),
                "remove" => teams::remove_member(conn, caller, &team, &user_id),
                _ => Err(AppError::BadRequest("the form asked for nothing known".into())),
            }
        })
        .await;
    match changed {
        Ok(()) => Ok(see_other(&format!("{LIST}/{id}?done=member"))),
        Err(AppError::BadRequest(message)) => {
            team_page(&visitor, id, None, form.email, Some(crate::web::form::sentence(&message))).await
        }
        Err(refused) => Err(refused.into()),
    }
}

pub async fn post_rename(
    visitor: Visitor,
    _req: HttpRequest,
    id: web::Path<String>,
    form: PageForm<NameForm>,
    _state: web::Data<AppState>,
) -> PageResult {
    let form = form.into_inner();
    let id = id.into_inner();
    let team = id.clone();
    let renamed = visitor.run(move |conn, caller, _| teams::rename(conn, caller, &team, &form.name)).await;
    match renamed {
        Ok(_) => Ok(see_other(&format!("{LIST}/{id}?done=renamed"))),
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            team_page(&visitor, id, None, String::new(), Some(crate::web::form::sentence(&message))).await
        }
        Err(refused) => Err(refused.into()),
    }
}

#[derive(Template)]
#[template(path = "dashboard/team_delete.html")]
struct DeletePage {
    shell: Shell,
    team: TeamView,
}

pub async fn get_delete(visitor: Visitor, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let loaded = visitor
        .run(move |conn, caller, _| {
            let team = teams::get_team(conn, caller, &id)?;
            if !may(caller, &id, Action::Admin) {
                return Err(AppError::Forbidden("deleting a team takes its admin role or teams:admin".into()));
            }
            Ok(team)
        })
        .await;
    match loaded {
        Ok(team) => visitor.page(StatusCode::OK, &DeletePage { shell: visitor.shell(Section::Teams), team }),
        Err(refused) => Err(refused.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn post_delete(visitor: Visitor, id: web::Path<String>, _form: PageForm<DeleteForm>) -> PageResult {
    let id = id.into_inner();
    visitor.run(move |conn, caller, _| teams::delete_team(conn, caller, &id)).await?;
    Ok(see_other(&format!("{LIST}?done=deleted")))
}
