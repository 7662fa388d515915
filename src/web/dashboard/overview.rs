//! `GET /dashboard`: who the person is here, their teams, and where to go next.

use actix_web::http::StatusCode;
use askama::Template;

use super::{PageResult, Section, Shell, Visitor, sees_any};
use crate::access::Resource;
use crate::manage::api_keys;

struct TeamRow {
    name: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct OverviewPage {
    shell: Shell,
    name: String,
    is_owner: bool,
    teams: Vec<TeamRow>,
    /// How many keys the person reaches, when they reach any.
    keys: Option<i64>,
}

pub async fn get_overview(visitor: Visitor) -> PageResult {
    let sees_keys = sees_any(visitor.reach(), Resource::ApiKeys);
    let roles = visitor.reach().teams.clone();
    let (keys, teams) = visitor
        .run(move |conn, caller, _| {
            let keys = if sees_keys { Some(api_keys::count_keys(conn, caller)?) } else { None };
            let ids: Vec<String> = roles.iter().map(|(id, _)| id.clone()).collect();
            let names = crate::db::teams::list_teams(conn, Some(&ids))?;
            let teams = names
                .into_iter()
                .filter_map(|team| {
                    let role = roles.iter().find(|(id, _)| *id == team.id)?.1;
                    Some(TeamRow { name: team.name, role: role.as_str() })
                })
                .collect();
            Ok((keys, teams))
        })
        .await?;
    let page = OverviewPage {
        shell: visitor.shell(Section::Overview),
        name: visitor.user.display_name().to_owned(),
        is_owner: visitor.reach().is_owner(),
        teams,
        keys,
    };
    visitor.page(StatusCode::OK, &page)
}
