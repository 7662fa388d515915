//! The audit log: who did what, when, from where. Never a secret.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub tenant_id: Option<String>,
    pub occurred_at: NaiveDateTime,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub id: String,
    pub tenant_id: Option<&'a str>,
    pub occurred_at: NaiveDateTime,
    pub actor_type: &'a str,
    pub actor_id: Option<&'a str>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub details: String,
}

pub fn insert_audit_event(conn: &mut DbConnection, event: &NewAuditEvent<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_events::table).values(event).execute(conn).map(drop)
}

/// The newest events first.
pub fn list_audit_events(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)
}

/// Which events a page holds: each field narrows it.
#[derive(Debug, Default)]
pub struct EventFilter<'a> {
    /// Strictly older than this event (a previous page's last): its time and id.
    pub before: Option<(NaiveDateTime, &'a str)>,
    pub action: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
    /// At or after this time.
    pub since: Option<NaiveDateTime>,
    /// Before this time.
    pub until: Option<NaiveDateTime>,
}

/// A page of events, newest first.
pub fn page_audit_events(
    conn: &mut DbConnection,
    filter: &EventFilter<'_>,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let mut query = audit_events::table
        .filter(audit_events::tenant_id.eq(super::DEFAULT_TENANT_ID))
        .order((audit_events::occurred_at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some((at, id)) = filter.before {
        query = query.filter(
            audit_events::occurred_at
                .lt(at)
                .or(audit_events::occurred_at.eq(at).and(audit_events::id.lt(id.to_owned()))),
        );
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_events::action.eq(action.to_owned()));
    }
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_events::actor_id.eq(actor.to_owned()));
    }
    if let Some(outcome) = filter.outcome {
        query = query.filter(audit_events::outcome.eq(outcome.to_owned()));
    }
    if let Some(target_type) = filter.target_type {
        query = query.filter(audit_events::target_type.eq(target_type.to_owned()));
    }
    if let Some(target) = filter.target_id {
        query = query.filter(audit_events::target_id.eq(target.to_owned()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    query.load(conn)
}
