//! Reading the audit log: pages of events, newest first, for the management API. The
//! writer is [`crate::audit`].

use serde_json::Value;

use crate::db::DbConnection;

/// An event as the audit-log API shows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEventView {
    pub id: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// What changed, and through which key (`api_key_id`) or app (`through_client_id`); never a secret.
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<crate::db::audit::AuditEvent> for AuditEventView {
    fn from(event: crate::db::audit::AuditEvent) -> Self {
        Self {
            details: serde_json::from_str(&event.details).unwrap_or(Value::Null),
            id: event.id,
            occurred_at: crate::db::utc(event.occurred_at),
            actor_type: event.actor_type,
            actor_id: event.actor_id,
            action: event.action,
            target_type: event.target_type,
            target_id: event.target_id,
            outcome: event.outcome,
            ip: event.ip,
            request_id: event.request_id,
        }
    }
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditEventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events per page, 50 unless said.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// Only this action, such as `api_key.created`.
    pub action: Option<String>,
    /// Only what this user, service account, key or client did.
    pub actor_id: Option<String>,
    /// Only `success` or `failure`.
    #[param(pattern = "^(success|failure)?$")]
    pub outcome: Option<String>,
    /// Only what happened to this kind of resource, such as `api_key` or `user`.
    pub target_type: Option<String>,
    /// Only what happened to this resource.
    pub target_id: Option<String>,
    /// Only events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

pub const MAX_PAGE: i64 = 200;
const DEFAULT_PAGE: i64 = 50;

/// An empty query value is an absent one, as forms and query builders send it.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A page of the audit log, newest first; reading it takes `audit_log:read`
/// (`AUDIT_LOG_READ`).
pub fn list(
    conn: &mut DbConnection,
    caller: &super::Caller<'_>,
    query: AuditQuery,
) -> Result<AuditPage, crate::error::AppError> {
    use crate::access::{Action, Resource};
    use crate::error::AppError;
    if !caller.reach.can(Resource::AuditLog, Action::Read) {
        return Err(AppError::Forbidden("reading the audit log takes audit_log:read (AUDIT_LOG_READ)".into()));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let before = match given(&query.cursor) {
        Some(cursor) => {
            Some(super::cursor::decode(cursor).ok_or_else(|| AppError::BadRequest("the cursor is not valid".into()))?)
        }
        None => None,
    };
    let outcome = given(&query.outcome);
    if outcome.is_some_and(|o| o != "success" && o != "failure") {
        return Err(AppError::BadRequest("outcome is success or failure".into()));
    }
    let filter = crate::db::audit::EventFilter {
        before: before.as_ref().map(|(at, id)| (*at, id.as_str())),
        action: given(&query.action),
        actor_id: given(&query.actor_id),
        outcome,
        target_type: given(&query.target_type),
        target_id: given(&query.target_id),
        since: query.since.map(|at| at.naive_utc()),
        until: query.until.map(|at| at.naive_utc()),
    };
    let events = crate::db::audit::page_audit_events(conn, &filter, limit + 1)?;
    let more = events.len() as i64 > limit;
    let data: Vec<AuditEventView> = events.into_iter().take(limit as usize).map(AuditEventView::from).collect();
    let next_cursor = if more {
        data.last().map(|event| super::cursor::encode(event.occurred_at.naive_utc(), &event.id))
    } else {
        None
    };
    Ok(AuditPage { data, next_cursor })
}

/// What people call the actors and targets of `events`, by id: users by email, keys by
/// name and prefix, service accounts and clients by name. Ids not found are left out.
pub fn names(
    conn: &mut DbConnection,
    events: &[AuditEventView],
) -> Result<std::collections::HashMap<String, String>, crate::error::AppError> {
    let ids_of = |kind: &str| -> Vec<String> {
        events
            .iter()
            .flat_map(|e| {
                let actor = (e.actor_type == kind).then(|| e.actor_id.clone()).flatten();
                let target = (e.target_type.as_deref() == Some(kind)).then(|| e.target_id.clone()).flatten();
                [actor, target]
            })
            .flatten()
            .collect()
    };
    let mut names = std::collections::HashMap::new();
    names.extend(crate::db::users::emails_of(conn, &ids_of("user"))?);
    let mut keys = ids_of("api_key");
    keys.extend(events.iter().filter_map(|e| e.details.get("api_key_id")?.as_str().map(str::to_owned)));
    names.extend(crate::db::api_keys::key_names(conn, &keys)?);
    names.extend(crate::db::api_keys::service_account_names(conn, &ids_of("service_account"))?);
    let mut clients = ids_of("client");
    clients.extend(events.iter().filter_map(|e| e.details.get("through_client_id")?.as_str().map(str::to_owned)));
    names.extend(crate::db::clients::client_names(conn, &clients)?);
    Ok(names)
}
