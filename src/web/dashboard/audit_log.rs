//! `GET /dashboard/audit-log`: the audit log, newest first, a page at a time, filtered by
//! actor, action, outcome, resource and time; through `manage::audit::list`, as the API.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web;
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::{Choice, PageResult, Section, Shell, Visitor};
use crate::error::AppError;
use crate::manage::audit::{self, AuditEventView, AuditQuery};

pub const PATH: &str = "/dashboard/audit-log";

/// The kinds of resource the log names, as filters offer them.
const RESOURCES: [(&str, &str); 9] = [
    ("api_key", "API keys"),
    ("client", "OAuth apps"),
    ("api", "APIs"),
    ("user", "Users"),
    ("team", "Teams"),
    ("signing_key", "Signing keys"),
    ("consent", "Consents"),
    ("service_account", "Service accounts"),
    ("token", "Tokens"),
];

struct EventRow {
    when: String,
    actor: String,
    actor_kind: String,
    via: Option<String>,
    /// The app whose access token a person acted through.
    through: Option<String>,
    action: String,
    target: String,
    failed: bool,
    address: String,
}

#[derive(Template)]
#[template(path = "dashboard/audit_log.html")]
struct AuditLogPage {
    shell: Shell,
    events: Vec<EventRow>,
    actor: String,
    action: String,
    outcomes: Vec<Choice>,
    resources: Vec<Choice>,
    since: String,
    until: String,
    filtered: bool,
    next_page: Option<String>,
    first_page: Option<String>,
}

#[derive(Deserialize, serde::Serialize, Default, Clone)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    outcome: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    since: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    until: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl Filters {
    fn url(&self, cursor: Option<&str>) -> String {
        let page = Filters { cursor: cursor.unwrap_or_default().to_owned(), ..self.clone() };
        match serde_html_form::to_string(&page) {
            Ok(query) if !query.is_empty() => format!("{PATH}?{query}"),
            _ => PATH.to_owned(),
        }
    }
}

fn day(value: &str, what: &str) -> Result<Option<NaiveDate>, AppError> {
    match value.trim() {
        "" => Ok(None),
        value => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| AppError::BadRequest(format!("the {what} date is not a date (YYYY-MM-DD)"))),
    }
}

fn given(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|v| !v.is_empty())
}

fn named(names: &HashMap<String, String>, kind: &str, id: Option<&str>) -> String {
    match (kind, id) {
        ("system", _) => "Latchkey".into(),
        ("operator", Some(account)) => format!("operator (CLI) {account}"),
        ("operator", None) => "operator (CLI)".into(),
        ("anonymous", _) => "Anonymous".into(),
        (_, Some(id)) => names.get(id).cloned().unwrap_or_else(|| id.to_owned()),
        (kind, None) => kind.to_owned(),
    }
}

pub async fn get_audit_log(visitor: Visitor, filters: web::Query<Filters>) -> PageResult {
    let filters = filters.into_inner();
    let (since, until) = match (day(&filters.since, "from"), day(&filters.until, "to")) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(bad), _) | (_, Err(bad)) => return Err(bad.into()),
    };
    let actor = given(&filters.actor);
    let query = AuditQuery {
        limit: None,
        cursor: given(&filters.cursor),
        action: given(&filters.action),
        actor_id: None,
        outcome: given(&filters.outcome),
        target_type: given(&filters.resource),
        target_id: None,
        since: since.map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc()),
        // The day named is included.
        until: until.and_then(|d| d.succ_opt()).map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc()),
    };
    let (page, names) = visitor
        .run(move |conn, caller, _| {
            // An actor is named by email or id, as people know them.
            let actor_id = match actor {
                Some(actor) if actor.contains('@') => {
                    let email = crate::manage::users::normalize_email(&actor).unwrap_or(actor);
                    crate::db::users::find_user_by_email(conn, crate::db::DEFAULT_TENANT_ID, &email)?
                        .map_or_else(|| email.clone(), |user| user.id)
                }
                Some(actor) => actor,
                None => String::new(),
            };
            let query = AuditQuery { actor_id: given(&actor_id), ..query };
            let page = audit::list(conn, caller, query)?;
            let names = audit::names(conn, &page.data)?;
            Ok((page, names))
        })
        .await?;
    let row = |event: &AuditEventView| EventRow {
        when: event.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        actor: named(&names, &event.actor_type, event.actor_id.as_deref()),
        actor_kind: match event.actor_type.as_str() {
            "system" | "operator" | "anonymous" => String::new(),
            kind => kind.replace('_', " "),
        },
        via: event.details.get("api_key_id").and_then(|k| k.as_str()).map(|key| named(&names, "api_key", Some(key))),
        through: event
            .details
            .get("through_client_id")
            .and_then(|c| c.as_str())
            .map(|client| named(&names, "client", Some(client))),
        action: event.action.clone(),
        target: match (&event.target_type, &event.target_id) {
            (Some(kind), Some(id)) if !id.is_empty() => {
                format!("{} {}", kind.replace('_', " "), named(&names, kind, Some(id)))
            }
            _ => String::new(),
        },
        failed: event.outcome != "success",
        address: event.ip.clone().unwrap_or_default(),
    };
    let events = page.data.iter().map(row).collect();
    let page = AuditLogPage {
        shell: visitor.shell(Section::AuditLog),
        events,
        actor: filters.actor.clone(),
        action: filters.action.clone(),
        outcomes: [("success", "Succeeded"), ("failure", "Failed")]
            .into_iter()
            .map(|(value, label)| Choice {
                value: value.into(),
                label: label.into(),
                selected: filters.outcome == value,
            })
            .collect(),
        resources: RESOURCES
            .into_iter()
            .map(|(value, label)| Choice {
                value: value.into(),
                label: label.into(),
                selected: filters.resource == value,
            })
            .collect(),
        since: filters.since.clone(),
        until: filters.until.clone(),
        filtered: [
            &filters.actor,
            &filters.action,
            &filters.outcome,
            &filters.resource,
            &filters.since,
            &filters.until,
        ]
        .iter()
        .any(|v| !v.is_empty()),
        next_page: page.next_cursor.as_deref().map(|next| filters.url(Some(next))),
        first_page: (!filters.cursor.is_empty()).then(|| filters.url(None)),
    };
    visitor.page(StatusCode::OK, &page)
}
