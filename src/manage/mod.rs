//! What operators do: register clients and APIs, manage users, teams and API keys, rotate
//! signing keys, and the audit trail of it. Plain functions over a connection, shared by
//! the CLI and the HTTP layers, returning `AppError` (`BadRequest` for input a person must
//! fix). Each takes the [`Caller`]: what it may reach, and what the audit log records.
//!
//! Floor: service (docs/architecture.md); the one door to `access`; names `apikeys`, never an HTTP family.

pub mod api_keys;
pub mod apis;
pub mod audit;
pub mod clients;
pub mod consents;
pub mod cursor;
pub mod master_keys;
pub mod passkeys;
pub mod password_reset;
pub mod second_factors;
pub mod setup;
pub mod signing_keys;
pub mod teams;
pub mod users;

use std::sync::{Arc, LazyLock};

use crate::access::{Action, Denied, Listing, Reach, Resource, Target};
use crate::audit::{Actor, Context, Origin};
use crate::db::DbConnection;
use crate::error::AppError;
use crate::principal::Principal;
use crate::state::AppState;

/// Who asks: what they reach, and how their changes are recorded.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub reach: &'a Reach,
    pub audit: Context<'a>,
}

static SYSTEM_REACH: LazyLock<Reach> = LazyLock::new(Reach::owner);

impl Caller<'static> {
    /// Latchkey itself, acting on no one's behalf.
    pub fn system() -> Self {
        Caller { reach: &SYSTEM_REACH, audit: Context::SYSTEM }
    }
}

impl<'a> Caller<'a> {
    /// The command line on the database, run by whoever holds it and the master key, audited
    /// as "operator (CLI)" with their account name on the machine (`account`) when known.
    pub fn operator(account: Option<&'a str>) -> Self {
        Caller { reach: &SYSTEM_REACH, audit: Context::of(crate::audit::Actor::Operator(account), None, None) }
    }
}

/// Someone a request acts for, who becomes a [`Caller`] on the worker that does the work.
pub trait Acting: Send + 'static {
    /// The caller, for a request from `ip` with id `request_id`.
    fn caller<'a>(&'a self, ip: Option<&'a str>, request_id: &'a str) -> Caller<'a>;
}

/// A management-API request: whatever its key or token reaches, recorded as
/// [`Principal::audit`] says.
impl Acting for Principal {
    fn caller<'a>(&'a self, ip: Option<&'a str>, request_id: &'a str) -> Caller<'a> {
        Caller { reach: self.reach(), audit: self.audit(ip, request_id) }
    }
}

/// A person signed in to Latchkey's own pages, reaching exactly what their personal key
/// would ([`Reach::of_person`]): the pages and the API can never disagree.
#[derive(Debug, Clone)]
pub struct SignedInUser {
    reach: Reach,
    user_id: String,
}

impl SignedInUser {
    /// `user`, with their role and team memberships as they are now.
    pub fn load(conn: &mut DbConnection, user: &crate::db::users::User) -> Result<Self, AppError> {
        Ok(Self { reach: crate::principal::person_reach(conn, user)?, user_id: user.id.clone() })
    }

    pub fn reach(&self) -> &Reach {
        &self.reach
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

impl Acting for SignedInUser {
    fn caller<'a>(&'a self, ip: Option<&'a str>, request_id: &'a str) -> Caller<'a> {
        let audit = Context::of(Actor::User(&self.user_id), ip, Some(request_id));
        Caller { reach: &self.reach, audit }
    }
}

/// Runs `f` on the blocking pool as `who`, its changes recorded with `origin`: the one way
/// the management API and the account page reach `manage`.
pub async fn run_as<T: Send + 'static>(
    state: &Arc<AppState>,
    who: impl Acting,
    origin: Origin,
    f: impl FnOnce(&mut DbConnection, &Caller<'_>, &AppState) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let shared = Arc::clone(state);
    crate::db::run(&state.pool, move |conn| f(conn, &who.caller(origin.ip.as_deref(), &origin.request_id), &shared))
        .await
}

/// A read answered from what this process keeps, without a trip to the blocking pool, when
/// `kept` holds it (`None`: it does not); otherwise as [`run_as`] answers it with `read`.
pub async fn read_as<T: Send + 'static>(
    state: &Arc<AppState>,
    who: impl Acting,
    origin: Origin,
    kept: impl FnOnce(&Caller<'_>, &AppState) -> Option<Result<T, AppError>>,
    read: impl FnOnce(&mut DbConnection, &Caller<'_>, &AppState) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    if let Some(answer) = kept(&who.caller(origin.ip.as_deref(), &origin.request_id), state) {
        return answer;
    }
    run_as(state, who, origin, read).await
}

fn refusal(denied: Denied, resource: Resource, action: Action) -> AppError {
    match denied {
        Denied::NotFound => AppError::NotFound,
        Denied::Forbidden => AppError::Forbidden(format!(
            "not allowed to {} {}: that takes {}:{} or a team role that allows it",
            action.as_str(),
            resource.as_str().replace('_', " "),
            resource.as_str(),
            action.as_str()
        )),
    }
}

impl Caller<'_> {
    pub fn check(&self, target: Target<'_>, action: Action) -> Result<(), AppError> {
        self.reach.check(target, action).map_err(|d| refusal(d, target.resource, action))
    }

    pub fn check_create(&self, resource: Resource, team: Option<&str>) -> Result<(), AppError> {
        self.reach.check_create(resource, team).map_err(|d| refusal(d, resource, Action::Write))
    }

    pub fn listing(&self, resource: Resource) -> Result<Listing, AppError> {
        self.reach.listing(resource).map_err(|d| refusal(d, resource, Action::Read))
    }

    /// Things only a full owner may do (handing out owner keys, granting tenant permissions).
    pub fn require_owner(&self, what: &str) -> Result<(), AppError> {
        if self.reach.is_owner() { Ok(()) } else { Err(AppError::Forbidden(format!("only a tenant owner may {what}"))) }
    }
}

/// Refuses a change that would leave the tenant with no owner credential at all: no
/// tenant-owner key that works and no active owner user, other than the ones going away.
/// Nobody could then manage the tenant (or undo the change) through the API or the pages.
/// Call it inside the change's write transaction.
pub(crate) fn ensure_an_owner_remains(
    conn: &mut crate::db::DbConnection,
    leaving_key: Option<&str>,
    leaving_user: Option<&str>,
) -> Result<(), AppError> {
    let now = crate::db::now();
    let keys = crate::db::api_keys::count_live_tenant_owner_keys(conn, leaving_key, now)?;
    let owners = crate::db::users::count_active_owners(conn, leaving_user)?;
    if keys + owners > 0 {
        return Ok(());
    }
    Err(AppError::Conflict(
        "this is the tenant's last owner credential: without it nobody could manage the tenant. Make \
         another owner user, or a tenant-owner key (`latchkey api-key create --kind tenant-owner --name \
         NAME` on the server always can), then try again"
            .into(),
    ))
}

/// A name as people give it ([`DisplayName`](crate::domain::DisplayName): trimmed, 1 to 200
/// characters, nothing invisible or direction-changing).
pub(crate) fn clean_name(name: &str, what: &str) -> Result<String, AppError> {
    crate::domain::DisplayName::parse(name)
        .map(crate::domain::DisplayName::into_string)
        .map_err(|e| AppError::BadRequest(format!("the {what} name {e}")))
}
