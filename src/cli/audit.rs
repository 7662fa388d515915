//! `latchkey audit` (the audit log, and following it) and `latchkey consent …`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{cell, table, text, write_out};
use super::{Out, Place, Request, body_as, local_failure, segment};
use crate::manage::audit::{self, AuditQuery};
use crate::manage::{Caller, consents};

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// List the consents people gave apps.
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Withdraw a consent: the app's tokens for that user are revoked, and it must ask again.
    Revoke { id: String },
}

pub(super) fn run_consent(place: &Place, command: ConsentCommand, out: Out) -> anyhow::Result<()> {
    match command {
        ConsentCommand::List { user } => {
            let path = match &user {
                Some(user) => {
                    format!(
                        "/consents?{}",
                        url::form_urlencoded::Serializer::new(String::new()).append_pair("user_id", user).finish()
                    )
                }
                None => "/consents".to_owned(),
            };
            let listed = place.act("consents", Request::get(path), |conn, caller, _| {
                consents::list_consents(conn, caller, user.as_deref())
            })?;
            out.print(&listed, || {
                table(
                    &listed,
                    &[
                        ("ID", "id"),
                        ("USER", "user_id"),
                        ("APP", "client_name"),
                        ("AUDIENCE", "audience"),
                        ("SCOPE", "scope"),
                        ("REMEMBERED", "remembered"),
                    ],
                    "No consents.",
                )
            })
        }
        ConsentCommand::Revoke { id } => {
            let subject = format!("consent {id} (`latchkey consent list` shows them)");
            place.act(&subject, Request::delete(format!("/consents/{}", segment(&id))), |conn, caller, _| {
                consents::revoke_consent(conn, caller, &id)
            })?;
            out.print(&json!({ "revoked": id }), || {
                format!("Withdrew consent {id}: the app's tokens for that person are revoked.")
            })
        }
    }
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this action, such as `api_key.created`.
    #[arg(long)]
    action: Option<String>,
    /// Only what this user, service account, key or client did (its id).
    #[arg(long)]
    actor: Option<String>,
    /// Only `success` or `failure`.
    #[arg(long, value_parser = ["success", "failure"])]
    outcome: Option<String>,
    /// Only what happened to this kind of resource, such as `api_key` or `user`.
    #[arg(long)]
    target_type: Option<String>,
    /// Only what happened to this resource (its id).
    #[arg(long)]
    target: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Events per page (1 to 200).
    #[arg(long, default_value_t = 50)]
    limit: i64,
    /// Where the page starts: the `next_cursor` of the page before.
    #[arg(long, conflicts_with = "follow")]
    cursor: Option<String>,
    /// Keep printing new events as they happen (oldest first; one JSON object per line with
    /// --json), until interrupted.
    #[arg(long, short = 'f', conflicts_with = "until")]
    follow: bool,
}

impl AuditArgs {
    fn query(&self) -> Value {
        let mut query = json!({ "limit": self.limit });
        for (field, value) in [
            ("action", &self.action),
            ("actor_id", &self.actor),
            ("outcome", &self.outcome),
            ("target_type", &self.target_type),
            ("target_id", &self.target),
            ("cursor", &self.cursor),
        ] {
            if let Some(value) = value {
                query[field] = value.as_str().into();
            }
        }
        for (field, at) in [("since", self.since), ("until", self.until)] {
            if let Some(at) = at {
                query[field] = at.to_rfc3339().into();
            }
        }
        query
    }
}

/// How often `--follow` asks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// An event is stamped when its transaction writes it, but seen only once that commits: a
/// poll asks this far back before the newest event seen, so that one committed after the
/// last poll with an earlier stamp is not missed. Write transactions are far shorter (a
/// writer waits at most 5 s for SQLite's lock).
const LATE_COMMIT_WINDOW: chrono::TimeDelta = chrono::TimeDelta::seconds(15);

pub(super) fn run(place: &Place, args: AuditArgs, out: Out) -> anyhow::Result<()> {
    let mut log = AuditLog::open(place)?;
    if !args.follow {
        let page = log.page(&args.query())?;
        return out.print(&page, || {
            let mut shown = events_table(&page["data"]);
            if let Some(cursor) = page["next_cursor"].as_str() {
                shown += &format!("\n\nOlder events: --cursor {cursor}");
            }
            shown
        });
    }
    // The newest `limit` first, oldest first, then whatever comes after them.
    let mut query = args.query();
    let mut batch = log.page(&query)?["data"].as_array().cloned().unwrap_or_default();
    batch.reverse();
    // Each event seen in the window the next poll asks for again, by id, to print it once.
    let mut seen: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
    let stamp = |event: &Value| event["occurred_at"].as_str().and_then(|at| at.parse::<DateTime<Utc>>().ok());
    // Never before what the first page showed: older events are history, not news.
    let floor = batch.iter().filter_map(stamp).max().or(args.since);
    let mut newest = floor;
    loop {
        for event in &batch {
            if seen.insert(text(event, "id").to_owned(), stamp(event)).is_some() {
                continue;
            }
            newest = newest.max(stamp(event));
            let line = if out.json { event.to_string() } else { event_line(event) };
            write_out(format!("{line}\n").as_bytes())?;
        }
        if let Some(newest) = newest {
            let since = floor.map_or(newest - LATE_COMMIT_WINDOW, |floor| floor.max(newest - LATE_COMMIT_WINDOW));
            seen.retain(|_, at| at.is_none_or(|at| at >= since));
            query["since"] = since.to_rfc3339().into();
        }
        std::thread::sleep(FOLLOW_INTERVAL);
        batch = log.everything_since(&query)?;
    }
}

/// The audit log of a place: one connection for a whole `--follow`.
enum AuditLog<'p> {
    Local(crate::db::PooledDb),
    Remote(&'p super::remote::Remote),
}

impl<'p> AuditLog<'p> {
    fn open(place: &'p Place) -> anyhow::Result<Self> {
        Ok(match place {
            Place::Local(settings) => Self::Local(super::open(settings)?.0),
            Place::Remote(remote) => Self::Remote(remote),
        })
    }

    /// One page, newest first: `{"data": [...], "next_cursor": ...}`.
    fn page(&mut self, query: &Value) -> anyhow::Result<Value> {
        match self {
            Self::Local(conn) => {
                let parsed: AuditQuery = body_as(query).map_err(|error| local_failure("audit log", error))?;
                let account = super::operator_account();
                let page = audit::list(conn, &Caller::operator(account.as_deref()), parsed)
                    .map_err(|error| local_failure("audit log", error))?;
                Ok(serde_json::to_value(page)?)
            }
            Self::Remote(remote) => {
                let mut encoded = url::form_urlencoded::Serializer::new(String::new());
                for (name, value) in query.as_object().into_iter().flatten() {
                    encoded.append_pair(name, &cell(value));
                }
                remote.call(reqwest::Method::GET, &format!("/audit-log?{}", encoded.finish()), None)
            }
        }
    }

    /// Every event the query matches, page after page, oldest first.
    fn everything_since(&mut self, query: &Value) -> anyhow::Result<Vec<Value>> {
        let mut query = query.clone();
        let mut events = Vec::new();
        loop {
            let page = self.page(&query)?;
            events.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(cursor) => query["cursor"] = cursor.into(),
                None => break,
            }
        }
        events.reverse();
        Ok(events)
    }
}

fn actor(event: &Value) -> String {
    match (text(event, "actor_type"), event["actor_id"].as_str()) {
        ("operator", Some(account)) => format!("operator (CLI) {account}"),
        ("operator", None) => "operator (CLI)".to_owned(),
        (kind, Some(id)) => format!("{kind} {id}"),
        (kind, None) => kind.to_owned(),
    }
}

fn target(event: &Value) -> String {
    match (event["target_type"].as_str(), event["target_id"].as_str()) {
        (Some(kind), Some(id)) => format!("{kind} {id}"),
        (Some(kind), None) => kind.to_owned(),
        _ => "-".to_owned(),
    }
}

fn event_line(event: &Value) -> String {
    format!(
        "{}  {:<7}  {:<28}  {}  by {}",
        text(event, "occurred_at"),
        text(event, "outcome"),
        text(event, "action"),
        target(event),
        actor(event)
    )
}

fn events_table(events: &Value) -> String {
    let rows: Vec<Value> = events
        .as_array()
        .into_iter()
        .flatten()
        .map(|event| {
            json!({
                "at": event["occurred_at"],
                "actor": actor(event),
                "action": event["action"],
                "target": target(event),
                "outcome": event["outcome"],
            })
        })
        .collect();
    table(
        &Value::Array(rows),
        &[("TIME", "at"), ("OUTCOME", "outcome"), ("ACTION", "action"), ("TARGET", "target"), ("ACTOR", "actor")],
        "No events.",
    )
}
