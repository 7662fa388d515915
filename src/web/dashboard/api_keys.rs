//! API keys in the dashboard: every key the person reaches (filtered, a page at a time),
//! creating the kinds they may hand out, rotating and revoking. Each action is the
//! management API's own `manage::api_keys` call, made as the signed-in person.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{self};
use askama::Template;
use chrono::{NaiveDate, TimeDelta, Utc};
use serde::Deserialize;

use super::secret::{NewSecret, show_once};
use super::{
    Choice, PageResult, Section, Shell, Visitor, chosen_grace, date, grace_choices, not_found_page, see_other,
    stops_after,
};
use crate::access::{Action, Permission, Resource, TeamRole};
use crate::config::Environment;
use crate::db::DbConnection;
use crate::domain::{ApiKeyKind, DisplayName};
use crate::error::AppError;
use crate::manage::Caller;
use crate::manage::api_keys::{
    self, ApiKeyView, KeyListQuery, KeyRequest, MAX_ROTATION_GRACE, creatable_kinds, may_set_tier, teams_for_team_keys,
};
use crate::ratelimit::Tier;
use crate::state::AppState;
use crate::web::form::PageForm;

pub const LIST: &str = "/dashboard/api-keys";

/// How people call each kind, and what it is for.
fn kind_label(kind: ApiKeyKind) -> &'static str {
    match kind {
        ApiKeyKind::Personal => "Personal",
        ApiKeyKind::Service => "Service account",
        ApiKeyKind::Team => "Team",
        ApiKeyKind::TenantOwner => "Tenant owner",
        ApiKeyKind::Restricted => "Restricted",
    }
}

fn kind_description(kind: ApiKeyKind) -> &'static str {
    match kind {
        ApiKeyKind::Personal => "Acts as you, with exactly your access. Stops working if your account is deactivated.",
        ApiKeyKind::Service => "For a program: a new service account with the tenant permissions you choose.",
        ApiKeyKind::Team => "Acts in one team with a role: viewer, editor or admin.",
        ApiKeyKind::TenantOwner => "Reaches everything in the tenant. Keep it for bootstrapping and emergencies.",
        ApiKeyKind::Restricted => "Only the permissions you tick (an rk_ key), for one script or integration.",
    }
}

fn resource_label(resource: Option<Resource>) -> &'static str {
    match resource {
        None => "Every resource",
        Some(Resource::Clients) => "OAuth apps",
        Some(Resource::Apis) => "APIs",
        Some(Resource::Users) => "Users",
        Some(Resource::Teams) => "Teams",
        Some(Resource::ApiKeys) => "API keys",
        Some(Resource::Consents) => "Consents",
        Some(Resource::SigningKeys) => "Signing keys",
        Some(Resource::AuditLog) => "Audit log",
    }
}

const ACTIONS: [Action; 4] = [Action::Read, Action::Write, Action::Delete, Action::Admin];

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

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
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
    let (page, users, teams, team_choices, may_create) = visitor
        .run(move |conn, caller, _| {
            let page = api_keys::page_of_keys(conn, caller, &list_query)?;
            let (users, teams) = names_for(conn, &page.keys.iter().map(|k| &k.view).collect::<Vec<_>>())?;
            let filter_teams = filter_teams(conn, caller)?;
            let may_create = !creatable_kinds(conn, caller)?.is_empty();
            Ok((page, users, teams, filter_teams, may_create))
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

struct PermissionCell {
    id: String,
    value: String,
    label: String,
    checked: bool,
}

struct PermissionRow {
    label: &'static str,
    cells: Vec<PermissionCell>,
}

struct KindOption {
    value: &'static str,
    label: &'static str,
    description: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/api_key_new.html")]
struct NewKeyPage {
    shell: Shell,
    /// The kinds offered; the form shows once one is chosen.
    kinds: Vec<KindOption>,
    kind: Option<KindOption>,
    name: String,
    name_error: Option<String>,
    teams: Vec<Choice>,
    roles: Vec<Choice>,
    /// Existing service accounts a service key may join instead of making a new one.
    accounts: Vec<Choice>,
    new_account: bool,
    permissions: Vec<PermissionRow>,
    permissions_needed: bool,
    tiers: Vec<Choice>,
    expiries: Vec<Choice>,
    expires_on: String,
    expires_error: Option<String>,
    environment: &'static str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NewKeyQuery {
    kind: Option<String>,
}

/// What the person typed, kept when the form comes back with an error.
#[derive(Deserialize, Default)]
pub struct CreateForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    permissions: Vec<String>,
    team_id: Option<String>,
    team_role: Option<String>,
    /// A service key's account: `new`, or an existing account's id.
    service_account: Option<String>,
    tier: Option<String>,
    expires: Option<String>,
    expires_on: Option<String>,
}

const EXPIRIES: [(&str, &str); 6] = [
    ("never", "Never"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("180", "In 180 days"),
    ("365", "In a year"),
    ("date", "On a date (below)"),
];

/// What the create form needs from storage: the kinds, teams and tiers this person may use.
struct Offer {
    kinds: Vec<ApiKeyKind>,
    teams: Vec<(String, String)>,
    accounts: Vec<(String, String)>,
    tiers: bool,
}

fn offer(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Offer, AppError> {
    Ok(Offer {
        kinds: creatable_kinds(conn, caller)?,
        teams: teams_for_team_keys(conn, caller)?,
        accounts: api_keys::service_accounts_for_keys(conn, caller)?,
        tiers: may_set_tier(caller),
    })
}

#[derive(Default)]
struct FieldErrors {
    form: Option<String>,
    name: Option<String>,
    expires: Option<String>,
}

fn new_key_page(
    visitor: &Visitor,
    environment: Environment,
    offer: &Offer,
    kind: Option<ApiKeyKind>,
    form: &CreateForm,
    errors: FieldErrors,
) -> NewKeyPage {
    let option =
        |k: ApiKeyKind| KindOption { value: k.as_str(), label: kind_label(k), description: kind_description(k) };
    let selected = |value: &Option<String>, candidate: &str| value.as_deref() == Some(candidate);
    let rows = std::iter::once(None).chain(Resource::ALL.into_iter().map(Some));
    NewKeyPage {
        shell: visitor.shell(Section::ApiKeys),
        kinds: offer.kinds.iter().copied().map(option).collect(),
        kind: kind.map(option),
        name: form.name.clone(),
        name_error: errors.name,
        teams: offer
            .teams
            .iter()
            .map(|(id, name)| Choice { value: id.clone(), label: name.clone(), selected: selected(&form.team_id, id) })
            .collect(),
        accounts: offer
            .accounts
            .iter()
            .map(|(id, name)| Choice {
                value: id.clone(),
                label: name.clone(),
                selected: selected(&form.service_account, id),
            })
            .collect(),
        new_account: given(&form.service_account).is_none_or(|a| a == "new"),
        roles: [TeamRole::Viewer, TeamRole::Editor, TeamRole::Admin]
            .into_iter()
            .map(|r| Choice {
                value: r.as_str().into(),
                label: r.as_str().into(),
                selected: selected(&form.team_role, r.as_str()),
            })
            .collect(),
        permissions: rows
            .map(|resource| PermissionRow {
                label: resource_label(resource),
                cells: ACTIONS
                    .into_iter()
                    .map(|action| {
                        let value = Permission { resource, action }.to_string();
                        PermissionCell {
                            id: format!("perm-{}", value.replace(':', "-")),
                            label: format!("{}: {}", resource_label(resource), action.as_str()),
                            checked: form.permissions.contains(&value),
                            value,
                        }
                    })
                    .collect(),
            })
            .collect(),
        permissions_needed: matches!(kind, Some(ApiKeyKind::Restricted | ApiKeyKind::Service)),
        tiers: if offer.tiers {
            [Tier::Free, Tier::Pro, Tier::Enterprise]
                .into_iter()
                .map(|t| Choice {
                    value: t.as_str().into(),
                    label: t.as_str().into(),
                    selected: selected(&form.tier, t.as_str()),
                })
                .collect()
        } else {
            Vec::new()
        },
        expiries: EXPIRIES
            .into_iter()
            .map(|(value, label)| Choice {
                value: value.into(),
                label: label.into(),
                selected: form.expires.as_deref().unwrap_or("never") == value,
            })
            .collect(),
        expires_on: form.expires_on.clone().unwrap_or_default(),
        expires_error: errors.expires,
        environment: environment.as_str(),
        error: errors.form,
    }
}

pub async fn get_new(visitor: Visitor, query: web::Query<NewKeyQuery>, state: web::Data<AppState>) -> PageResult {
    let offer = visitor.run(|conn, caller, _| offer(conn, caller)).await?;
    if offer.kinds.is_empty() {
        return Err(AppError::Forbidden("you may not create API keys".into()).into());
    }
    let kind = match given(&query.kind) {
        Some(value) => match ApiKeyKind::from_stored(value).filter(|k| offer.kinds.contains(k)) {
            Some(kind) => Some(kind),
            None => return Ok(not_found_page()),
        },
        // One choice is no choice.
        None if offer.kinds.len() == 1 => offer.kinds.first().copied(),
        None => None,
    };
    let page = new_key_page(
        &visitor,
        state.settings.environment,
        &offer,
        kind,
        &CreateForm::default(),
        FieldErrors::default(),
    );
    visitor.page(StatusCode::OK, &page)
}

/// The expiry the form asks for: `Err` is the message for the field.
fn expiry(form: &CreateForm, today: NaiveDate) -> Result<Option<chrono::DateTime<Utc>>, String> {
    let now = Utc::now();
    match form.expires.as_deref().map(str::trim).filter(|v| !v.is_empty()).unwrap_or("never") {
        "never" => Ok(None),
        "date" => {
            let value = form.expires_on.as_deref().map(str::trim).unwrap_or_default();
            let day =
                NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| "Choose a date (YYYY-MM-DD).".to_owned())?;
            if day <= today {
                return Err("Choose a date after today.".into());
            }
            Ok(Some(day.and_time(chrono::NaiveTime::MIN).and_utc()))
        }
        days => match days.parse::<i64>() {
            Ok(days) if (1..=3650).contains(&days) => Ok(Some(now + TimeDelta::days(days))),
            _ => Err("Choose one of the offered expiries.".into()),
        },
    }
}

pub async fn post_create(visitor: Visitor, form: PageForm<CreateForm>, state: web::Data<AppState>) -> PageResult {
    let form = form.into_inner();
    let Some(kind) = ApiKeyKind::from_stored(form.kind.trim()) else {
        return Ok(not_found_page());
    };
    let mut errors = FieldErrors::default();
    if let Err(problem) = DisplayName::parse(&form.name) {
        errors.name = Some(crate::web::form::sentence(&format!("the name {problem}")));
    }
    let expires_at = expiry(&form, Utc::now().date_naive()).unwrap_or_else(|message| {
        errors.expires = Some(message);
        None
    });
    let team_role = match given(&form.team_role).map(str::parse::<TeamRole>) {
        Some(Ok(role)) => Some(role),
        Some(Err(message)) => {
            errors.form = Some(crate::web::form::sentence(&message));
            None
        }
        None => None,
    };
    let tier = match given(&form.tier).map(str::parse::<Tier>) {
        Some(Ok(tier)) => Some(tier),
        Some(Err(message)) => {
            errors.form = Some(crate::web::form::sentence(&message));
            None
        }
        None => None,
    };
    let existing_account =
        given(&form.service_account).filter(|a| *a != "new" && kind == ApiKeyKind::Service).map(str::to_owned);
    let request = KeyRequest {
        kind,
        name: form.name.clone(),
        permissions: match kind {
            ApiKeyKind::Restricted => form.permissions.clone(),
            ApiKeyKind::Service if existing_account.is_none() => form.permissions.clone(),
            _ => vec![],
        },
        service_account_id: existing_account,
        team_id: (kind == ApiKeyKind::Team).then(|| given(&form.team_id).map(str::to_owned)).flatten(),
        team_role: if kind == ApiKeyKind::Team { team_role } else { None },
        tier,
        expires_at,
    };
    let fine = errors.form.is_none() && errors.name.is_none() && errors.expires.is_none();
    let outcome = visitor
        .run(move |conn, caller, state| {
            let offer = offer(conn, caller)?;
            let created = if fine {
                Some(api_keys::create_key(conn, &state.hasher, state.settings.environment, caller, request))
            } else {
                None
            };
            Ok((offer, created))
        })
        .await?;
    let (offer, created) = outcome;
    let refused = match created {
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
        Some(Err(AppError::BadRequest(message) | AppError::Conflict(message))) => message,
        Some(Err(other)) => return Err(other.into()),
        None => String::new(),
    };
    if !refused.is_empty() {
        errors.form = Some(crate::web::form::sentence(&refused));
    }
    let page = new_key_page(&visitor, state.settings.environment, &offer, Some(kind), &form, errors);
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
    fn expiries_are_future_dates_or_offered_periods() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let form = |expires: &str, on: &str| CreateForm {
            expires: Some(expires.into()),
            expires_on: Some(on.into()),
            ..CreateForm::default()
        };
        assert_eq!(expiry(&form("never", ""), today), Ok(None));
        assert_eq!(expiry(&CreateForm::default(), today), Ok(None));
        let on = expiry(&form("date", "2027-01-31"), today).unwrap().unwrap();
        assert_eq!(on.to_rfc3339(), "2027-01-31T00:00:00+00:00");
        assert!(expiry(&form("date", "2026-12-02"), today).is_err());
        assert!(expiry(&form("date", "31/01/2027"), today).is_err());
        assert!(expiry(&form("0", ""), today).is_err());
        assert!(expiry(&form("99999", ""), today).is_err());
        assert!(expiry(&form("30", ""), today).unwrap().is_some());
    }

    #[test]
    fn list_links_keep_the_filters() {
        assert_eq!(list_url(None, None, None, None), LIST);
        assert_eq!(
            list_url(Some("team"), Some("t 1"), None, Some("abc")),
            format!("{LIST}?kind=team&team=t+1&cursor=abc")
        );
    }
}
