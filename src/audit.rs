//! The audit writer (the "shared" floor, below every family that records): entries name
//! the actor, the action and its target; secrets, tokens and keys never go in, only their
//! ids. Reading the log back is `manage::audit`.

use serde_json::Value;

use crate::db::DbConnection;
use crate::db::audit::{NewAuditEvent, insert_audit_event};

/// Who did it.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// Latchkey itself (the first signing key, made at start).
    System,
    /// Someone running the command line on the database, by their account name on that
    /// machine when it is known. Whoever holds the database and master key may do anything.
    Operator(Option<&'a str>),
    Client(&'a str),
    User(&'a str),
    ServiceAccount(&'a str),
    ApiKey(&'a str),
    Anonymous,
}

impl Actor<'_> {
    fn parts(&self) -> (&'static str, Option<&str>) {
        match *self {
            Self::System => ("system", None),
            Self::Operator(account) => ("operator", account),
            Self::Client(id) => ("client", Some(id)),
            Self::User(id) => ("user", Some(id)),
            Self::ServiceAccount(id) => ("service_account", Some(id)),
            Self::ApiKey(id) => ("api_key", Some(id)),
            Self::Anonymous => ("anonymous", None),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// Where a request came from, as its audit entries record it: the peer address and the
/// request id. Taken on the async worker, carried to the blocking one.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip: Option<String>,
    pub request_id: String,
}

impl Origin {
    pub fn of(req: &actix_web::HttpRequest) -> Self {
        Self {
            ip: req.peer_addr().map(|addr| addr.ip().to_string()),
            request_id: crate::telemetry::current_request_id(),
        }
    }
}

/// Who is acting, through which key, from where: what every change made on someone's
/// behalf is recorded with.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub actor: Actor<'a>,
    /// The API key the actor used, when the actor is its user or service account.
    pub via_key: Option<&'a str>,
    /// The client whose access token the actor (a user) used.
    pub via_client: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

impl<'a> Context<'a> {
    /// Latchkey itself.
    pub const SYSTEM: Context<'static> =
        Context { actor: Actor::System, via_key: None, via_client: None, ip: None, request_id: None };

    /// `actor` acting on its own, from `ip`, in the request `request_id`.
    pub fn of(actor: Actor<'a>, ip: Option<&'a str>, request_id: Option<&'a str>) -> Self {
        Self { actor, via_key: None, via_client: None, ip, request_id }
    }

    pub fn entry(&self, action: &'a str, outcome: Outcome) -> AuditEntry<'a> {
        let mut entry = AuditEntry::new(self.actor, action, outcome).from_request(self.ip, self.request_id);
        entry.via_key = self.via_key;
        entry.via_client = self.via_client;
        entry
    }

    /// A successful change.
    pub fn change(&self, action: &'a str) -> AuditEntry<'a> {
        self.entry(action, Outcome::Success)
    }
}

/// One entry; `ip` and `request_id` come from the HTTP request when there is one.
#[derive(Debug)]
pub struct AuditEntry<'a> {
    pub actor: Actor<'a>,
    pub action: &'a str,
    pub target: Option<(&'a str, &'a str)>,
    pub outcome: Outcome,
    pub ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub via_key: Option<&'a str>,
    pub via_client: Option<&'a str>,
    pub details: Value,
}

impl<'a> AuditEntry<'a> {
    pub fn new(actor: Actor<'a>, action: &'a str, outcome: Outcome) -> Self {
        Self {
            actor,
            action,
            target: None,
            outcome,
            ip: None,
            request_id: None,
            via_key: None,
            via_client: None,
            details: Value::Null,
        }
    }

    pub fn target(mut self, kind: &'a str, id: &'a str) -> Self {
        self.target = Some((kind, id));
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn from_request(mut self, ip: Option<&'a str>, request_id: Option<&'a str>) -> Self {
        self.ip = ip;
        self.request_id = request_id;
        self
    }
}

pub fn record(conn: &mut DbConnection, entry: &AuditEntry<'_>) -> diesel::QueryResult<()> {
    let (actor_type, actor_id) = entry.actor.parts();
    let mut details = match &entry.details {
        Value::Object(map) => map.clone(),
        Value::Null => serde_json::Map::new(),
        other => serde_json::Map::from_iter([("value".to_owned(), other.clone())]),
    };
    if let Some(key) = entry.via_key {
        details.insert("api_key_id".to_owned(), Value::from(key));
    }
    if let Some(client) = entry.via_client {
        details.insert("through_client_id".to_owned(), Value::from(client));
    }
    let details = Value::Object(details).to_string();
    insert_audit_event(
        conn,
        &NewAuditEvent {
            id: crate::db::time_ordered_id(),
            tenant_id: Some(crate::db::DEFAULT_TENANT_ID),
            occurred_at: crate::db::now(),
            actor_type,
            actor_id,
            action: entry.action,
            target_type: entry.target.map(|(kind, _)| kind),
            target_id: entry.target.map(|(_, id)| id),
            outcome: match entry.outcome {
                Outcome::Success => "success",
                Outcome::Failure => "failure",
            },
            ip: entry.ip,
            request_id: entry.request_id,
            details,
        },
    )
}
