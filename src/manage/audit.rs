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
    /// What changed, and through which key (`api_key_id`); never a secret.
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
    pub action: Option<String>,
    pub target_id: Option<String>,
}

pub const MAX_PAGE: i64 = 200;
const DEFAULT_PAGE: i64 = 50;

/// An empty query value is an absent one, as forms and query builders send it.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// A cursor names the last event of a page: its time and id.
fn encode_cursor(event: &AuditEventView) -> String {
    use base64::Engine;
    let raw = format!("{}.{}", event.occurred_at.timestamp_micros(), event.id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Option<(chrono::NaiveDateTime, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let (micros, id) = std::str::from_utf8(&raw).ok()?.split_once('.')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some((at, id.to_owned()))
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
            Some(decode_cursor(cursor).ok_or_else(|| AppError::BadRequest("the cursor is not valid".into()))?)
        }
        None => None,
    };
    let events = crate::db::audit::page_audit_events(
        conn,
        before.as_ref().map(|(at, id)| (*at, id.as_str())),
        given(&query.action),
        given(&query.target_id),
        limit + 1,
    )?;
    let more = events.len() as i64 > limit;
    let data: Vec<AuditEventView> = events.into_iter().take(limit as usize).map(AuditEventView::from).collect();
    let next_cursor = if more { data.last().map(encode_cursor) } else { None };
    Ok(AuditPage { data, next_cursor })
}
