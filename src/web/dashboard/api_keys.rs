//! API keys in the dashboard: every key the person reaches (filtered, a page at a time),
//! creating the kinds they may hand out, rotating and revoking. Each action is the
//! management API's own `manage::api_keys` call, made as the signed-in person.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{self};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use super::secret::{NewSecret, show_once};
use super::{
    Choice, PageResult, Section, Shell, Visitor, chosen_grace, date, grace_choices, not_found_page, see_other,
    stops_after,
};
use crate::access::{Action, Resource};
use crate::config::Environment;
use crate::db::DbConnection;
use crate::domain::ApiKeyKind;
use crate::error::AppError;
use crate::manage::Caller;
use crate::manage::api_keys::{self, ApiKeyView, KeyListQuery, MAX_ROTATION_GRACE, creatable_kinds};
use crate::state::AppState;
use crate::web::form::PageForm;
use crate::web::key_form::{self, FieldErrors, KeyFields, KeyForm, KindOption, Offer, given, kind_label};

pub const LIST: &str = "/dashboard/api-keys";

// ---------------------------------------------------------------- the list

struct KeyRow {
    id: String,
    name: String,
    kind: &'static str,
    shown_as: String,
    environment: String,
    access: String,
    tier: String,
    created_by: String,
    /// The app (a tool that asked for the key) it was made through.
    created_through: Option<String>,
    created: String,
    expires: String,
    last_used: String,
    last_used_from: String,
    /// Set while a rotation's grace period runs.
    stops: Option<String>,
    may_rotate: bool,
    may_delete: bool,
}

#[derive(Template)]
#[template(path = "dashboard/api_keys.html")]
struct ListPage {
    shell: Shell,
    notice: Option<&'static str>,
    keys: Vec<KeyRow>,
    kinds: Vec<Choice>,
    teams: Vec<Choice>,
    environments: Vec<Choice>,
    filtered: bool,
    may_create: bool,
    next_page: Option<String>,
    first_page: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    kind: Option<String>,
    team: Option<String>,
    environment: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

fn parse_environment(value: &str) -> Option<Environment> {
    [Environment::Live, Environment::Test].into_iter().find(|e| e.as_str() == value)
}

/// What a key may do, in a few words.
fn access_of(view: &ApiKeyView, users: &Names, teams: &Names) -> String {
    match view.key_kind() {
        Some(ApiKeyKind::TenantOwner) => "Everything".to_owned(),
        Some(ApiKeyKind::Personal) => {
            let user = view.user_id.as_ref().and_then(|id| users.get(id)).map_or("its user", String::as_str);
            format!("Acts as {user}")
        }
        Some(ApiKeyKind::Team) => {
            let team = view.team_id.as_ref().and_then(|id| teams.get(id)).map_or("a team", String::as_str);
            format!("{} in {team}", view.team_role.as_deref().unwrap_or("no role"))
        }
        _ if view.permissions.is_empty() => "Nothing".to_owned(),
        _ => view.permissions.join(", "),
    }
}

/// Names by id.
type Names = HashMap<String, String>;

/// The emails and team names a page of keys mentions.
fn names_for(conn: &mut DbConnection, views: &[&ApiKeyView]) -> Result<(Names, Names), AppError> {
    let user_ids: Vec<String> =
        views.iter().flat_map(|v| [v.user_id.clone(), v.created_by_user_id.clone()]).flatten().collect();
    let team_ids: Vec<String> = views.iter().filter_map(|v| v.team_id.clone()).collect();
    let users = crate::db::users::emails_of(conn, &user_ids)?.into_iter().collect();
    let teams = crate::db::teams::list_teams(conn, Some(&team_ids))?.into_iter().map(|t| (t.id, t.name)).collect();
    Ok((users, teams))
}

/// The apps keys were made through, by client id: few (the tools people connected).
fn apps_for(conn: &mut DbConnection, views: &[&ApiKeyView]) -> Result<Names, AppError> {
    let mut apps = Names::new();
    for id in views.iter().filter_map(|v| v.created_through_client_id.as_deref()) {
        if !apps.contains_key(id) {
            let name = crate::db::clients::find_client(conn, id)?.map_or_else(|| id.to_owned(), |client| client.name);
            apps.insert(id.to_owned(), name);
        }
    }
    Ok(apps)
}

/// The app a key was made through, by name (its id if it is gone).
fn made_through(view: &ApiKeyView, apps: &Names) -> Option<String> {
    let app = view.created_through_client_id.as_ref()?;
    Some(apps.get(app).cloned().unwrap_or_else(|| app.clone()))
}

/// The teams a filter may name: every team for whoever reaches every key, else the person's.
fn filter_teams(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<(String, String)>, AppError> {
    let listing = caller.listing(Resource::ApiKeys)?;
    let only = if listing.all { None } else { Some(listing.teams.as_slice()) };
    Ok(crate::db::teams::list_teams(conn, only)?.into_iter().map(|t| (t.id, t.name)).collect())
}

fn list_url(kind: Option<&str>, team: Option<&str>, environment: Option<&str>, cursor: Option<&str>) -> String {
    let pairs: Vec<(&str, &str)> = [("kind", kind), ("team", team), ("environment", environment), ("cursor", cursor)]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
    if pairs.is_empty() {
        return LIST.to_owned();
    }
    format!("{LIST}?{}", serde_html_form::to_string(pairs).unwrap_or_default())
}

pub async fn get_list(visitor: Visitor, query: web::Query<ListQuery>) -> PageResult {
    let query = query.into_inner();
    let kind = match given(&query.kind) {
        Some(kind) => match ApiKeyKind::from_stored(kind) {
            Some(kind) => Some(kind),
            None => return Err(AppError::BadRequest(format!("there is no kind of key called `{kind}`")).into()),
        },
        None => None,
    };
    let environment = match given(&query.environment) {
        Some(value) => match parse_environment(value) {
            Some(environment) => Some(environment),
            None => return Err(AppError::BadRequest("the environment is live or test".into()).into()),
        },
        None => None,
    };
    let team = given(&query.team).map(str::to_owned);
    let cursor = given(&query.cursor).map(str::to_owned);
    let list_query = KeyListQuery { kind, team: team.clone(), environment, cursor: cursor.clone(), limit: None };
    let (page, (users, teams, apps), team_choices, may_create) = visitor
        .run(move |conn, caller, _| {
            let page = api_keys::page_of_keys(conn, caller, &list_query)?;
            let views = page.keys.iter().map(|k| &k.view).collect::<Vec<_>>();
            let (users, teams) = names_for(conn, &views)?;
            let apps = apps_for(conn, &views)?;
            let filter_teams = filter_teams(conn, caller)?;
            let may_create = !creatable_kinds(conn, caller)?.is_empty();
            Ok((page, (users, teams, apps), filter_teams, may_create))
        })
        .await?;
    let now = Utc::now();
    let keys = page
        .keys
        .iter()
        .map(|listed| {
            let view = &listed.view;
            KeyRow {
                id: view.id.clone(),
                name: view.name.clone(),
                kind: view.key_kind().map_or("Unknown", kind_label),
                shown_as: format!("{}…{}", view.prefix, view.last_four),
                environment: view.environment.clone(),
                access: access_of(view, &users, &teams),
                tier: view.tier.clone().unwrap_or_else(|| "default".into()),
                created_by: view
                    .created_by_user_id
                    .as_ref()
                    .and_then(|id| users.get(id))
                    .cloned()
                    .unwrap_or_else(|| "—".into()),
                created_through: made_through(view, &apps),
                created: date(Some(view.created_at)),
                expires: if view.expires_at.is_some() { date(view.expires_at) } else { "Never".into() },
                last_used: if view.last_used_at.is_some() { date(view.last_used_at) } else { "Never".into() },
                last_used_from: view.last_used_ip.clone().unwrap_or_default(),
                stops: view.revoked_at.filter(|at| *at > now).map(|at| at.format("%-d %b %Y %H:%M UTC").to_string()),
                may_rotate: listed.may_rotate && view.revoked_at.is_none(),
                may_delete: listed.may_delete,
            }
        })
        .collect();
    let kind_value = kind.map(ApiKeyKind::as_str);
    let environment_value = environment.map(Environment::as_str);
    let page = ListPage {
        shell: visitor.shell(Section::ApiKeys),
        notice: match given(&query.done) {
            Some("created") => Some("The key was created."),
            Some("rotated") => Some("The key was rotated."),
            Some("revoked") => Some("The key was revoked. It no longer works."),
            _ => None,
        },
        keys,
        kinds: ApiKeyKind::ALL
            .into_iter()
            .map(|k| Choice { value: k.as_str().into(), label: kind_label(k).into(), selected: kind == Some(k) })
            .collect(),
        teams: team_choices
            .into_iter()
            .map(|(id, name)| Choice { selected: team.as_deref() == Some(id.as_str()), value: id, label: name })
            .collect(),
        environments: [Environment::Live, Environment::Test]
            .into_iter()
            .map(|e| Choice { value: e.as_str().into(), label: e.as_str().into(), selected: environment == Some(e) })
            .collect(),
        filtered: kind.is_some() || team.is_some() || environment.is_some(),
        may_create,
        next_page: page
            .next_cursor
            .as_deref()
            .map(|next| list_url(kind_value, team.as_deref(), environment_value, Some(next))),
        first_page: cursor.map(|_| list_url(kind_value, team.as_deref(), environment_value, None)),
    };
    visitor.page(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- creating

#[derive(Template)]
#[template(path = "dashboard/api_key_new.html")]
struct NewKeyPage {
    shell: Shell,
    /// The kinds offered, until one is chosen.
    kinds: Vec<KindOption>,
    /// The chosen kind's fields.
    key: Option<KeyFields>,
}

#[derive(Deserialize)]
pub struct NewKeyQuery {
    kind: Option<String>,
}

pub async fn get_new(visitor: Visitor, query: web::Query<NewKeyQuery>, state: web::Data<AppState>) -> PageResult {
    let offer = visitor.run(|conn, caller, _| Offer::load(conn, caller)).await?;
    if offer.kinds.is_empty() {
        return Err(AppError::Forbidden("you may not create API keys".into()).into());
    }
    let kind = match given(&query.kind) {
        Some(value) => match offer.kind(value) {
            Some(kind) => Some(kind),
            None => return Ok(not_found_page()),
        },
        // One choice is no choice.
        None if offer.kinds.len() == 1 => offer.kinds.first().copied(),
        None => None,
    };
    let environment = state.settings.environment;
    let page = NewKeyPage {
        shell: visitor.shell(Section::ApiKeys),
        kinds: offer.kind_options(),
        key: kind.map(|kind| key_form::fields(environment, &offer, kind, &KeyForm::default(), FieldErrors::default())),
    };
    visitor.page(StatusCode::OK, &page)
}

pub async fn post_create(visitor: Visitor, form: PageForm<KeyForm>, state: web::Data<AppState>) -> PageResult {
    let form = form.into_inner();
    let Some(kind) = ApiKeyKind::from_stored(form.kind.trim()) else {
        return Ok(not_found_page());
    };
    let (request, mut errors) = key_form::read(&form, kind, Utc::now().date_naive());
    let fine = !errors.any();
    let (offer, created) = visitor
        .run(move |conn, caller, state| {
            let offer = Offer::load(conn, caller)?;
            let created =
                fine.then(|| api_keys::create_key(conn, &state.hasher, state.settings.environment, caller, request));
            Ok((offer, created))
        })
        .await?;
    match created {
        Some(Ok(created)) => {
            let expires = created.expires_at.map_or_else(|| "Never".to_owned(), super::moment);
            let secret = NewSecret::new(
                "Your new API key",
                "API key",
                created.key.clone(),
                vec![
                    ("Name".into(), created.name.clone()),
                    ("Kind".into(), kind_label(kind).into()),
                    ("Environment".into(), created.environment.clone()),
                    ("Expires".into(), expires),
                ],
                &format!("{LIST}?done=created"),
            );
            return show_once(&visitor, &secret);
        }
        Some(Err(AppError::BadRequest(message) | AppError::Conflict(message))) => {
            errors = FieldErrors::refused(&message);
        }
        Some(Err(other)) => return Err(other.into()),
        None => {}
    }
    let page = NewKeyPage {
        shell: visitor.shell(Section::ApiKeys),
        kinds: offer.kind_options(),
        key: Some(key_form::fields(state.settings.environment, &offer, kind, &form, errors)),
    };
    visitor.page(StatusCode::BAD_REQUEST, &page)
}

// ---------------------------------------------------------------- rotating and revoking

struct KeySummary {
    id: String,
    name: String,
    kind: &'static str,
    shown_as: String,
}

impl From<&ApiKeyView> for KeySummary {
    fn from(view: &ApiKeyView) -> Self {
        Self {
            id: view.id.clone(),
            name: view.name.clone(),
            kind: view.key_kind().map_or("Unknown", kind_label),
            shown_as: format!("{}…{}", view.prefix, view.last_four),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/api_key_rotate.html")]
struct RotatePage {
    shell: Shell,
    key: KeySummary,
    graces: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "dashboard/api_key_revoke.html")]
struct RevokePage {
    shell: Shell,
    key: KeySummary,
    is_personal: bool,
}

/// The key `id`, if the person may do `action` to it; `Err` is the page refusing.
async fn key_to(visitor: &Visitor, id: String, action: Action) -> Result<ApiKeyView, AppError> {
    visitor.run(move |conn, caller, _| api_keys::get_key_for(conn, caller, &id, action)).await
}

pub async fn get_rotate(visitor: Visitor, id: web::Path<String>) -> PageResult {
    let view = key_to(&visitor, id.into_inner(), Action::Write).await?;
    let graces = grace_choices();
    visitor.page(
        StatusCode::OK,
        &RotatePage { shell: visitor.shell(Section::ApiKeys), key: KeySummary::from(&view), graces },
    )
}

#[derive(Deserialize)]
pub struct RotateForm {
    grace_secs: String,
}

pub async fn post_rotate(visitor: Visitor, id: web::Path<String>, form: PageForm<RotateForm>) -> PageResult {
    let form = form.into_inner();
    let grace = chosen_grace(&form.grace_secs, MAX_ROTATION_GRACE)?;
    let id = id.into_inner();
    let rotated = visitor
        .run(move |conn, caller, state| {
            api_keys::rotate_key(conn, &state.hasher, state.settings.environment, caller, &id, grace)
        })
        .await;
    match rotated {
        Ok(created) => {
            let secret = NewSecret::new(
                "The rotated API key",
                "New API key",
                created.key.clone(),
                vec![
                    ("Name".into(), created.name.clone()),
                    ("Kind".into(), created.key_kind().map_or("Unknown", kind_label).into()),
                    ("The old key stops working".into(), stops_after(grace)),
                ],
                &format!("{LIST}?done=rotated"),
            );
            show_once(&visitor, &secret)
        }
        Err(refused) => Err(refused.into()),
    }
}

pub async fn get_revoke(visitor: Visitor, id: web::Path<String>) -> PageResult {
    let view = key_to(&visitor, id.into_inner(), Action::Delete).await?;
    let page = RevokePage {
        shell: visitor.shell(Section::ApiKeys),
        is_personal: view.key_kind() == Some(ApiKeyKind::Personal),
        key: KeySummary::from(&view),
    };
    visitor.page(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct RevokeForm {}

pub async fn post_revoke(visitor: Visitor, id: web::Path<String>, _form: PageForm<RevokeForm>) -> PageResult {
    let id = id.into_inner();
    visitor.run(move |conn, caller, _| api_keys::delete_key(conn, caller, &id)).await?;
    Ok(see_other(&format!("{LIST}?done=revoked")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_links_keep_the_filters() {
        assert_eq!(list_url(None, None, None, None), LIST);
        assert_eq!(
            list_url(Some("team"), Some("t 1"), None, Some("abc")),
            format!("{LIST}?kind=team&team=t+1&cursor=abc")
        );
    }
}
