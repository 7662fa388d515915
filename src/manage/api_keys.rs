//! API keys: created, listed, rotated and deleted. A key exists in the clear only in the
//! value returned at creation or rotation; lists show its prefix and last four characters.
//!
//! Who may hand out which key (nothing widens what its creator holds):
//! - personal: only its user, for themselves;
//! - tenant owner and service keys: only a tenant owner (a service key carries tenant
//!   permissions, which only an owner grants);
//! - team: an admin of the team, or `api_keys:admin` tenant-wide;
//! - restricted: `api_keys:write`, with permissions within the creator's own.
//!
//! Rotating or deleting a key takes what creating it takes.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{Caller, clean_name};
use crate::access::{Action, Permissions, Resource, Target, TeamRole};
use crate::apikeys::authenticate::{ApiKeyAuth, Standing, load_reach};
use crate::apikeys::{self, KeyClass};
use crate::audit;
use crate::config::Environment;
use crate::crypto::TokenHasher;
use crate::db::DbConnection;
use crate::db::api_keys::{
    ApiKeyRow, KeyFilter, KeyPageQuery, NewApiKey, count_api_keys, find_api_key, find_api_key_with_owner,
    insert_api_key, insert_service_account, list_api_keys, page_of_api_keys, revoke_api_key,
    service_account_permissions,
};
use crate::domain::ApiKeyKind;
use crate::error::AppError;
use crate::ratelimit::Tier;

/// Restricted keys are `rk_`; every other kind acts with its full reach, `sk_`.
fn class_of(kind: ApiKeyKind) -> KeyClass {
    if kind == ApiKeyKind::Restricted { KeyClass::Restricted } else { KeyClass::Secret }
}

/// A key as its holders may see it: never the key itself.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub environment: String,
    pub prefix: String,
    pub last_four: String,
    /// What the key may do tenant-wide; a tenant-owner key may do everything (`*`).
    pub permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by_user_id: Option<String>,
    /// The client it was made through: the tool that asked for it (the connect flow), or
    /// whose access token its creator used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_through_client_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when the key is being rotated out: it stops working then.
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
}

impl ApiKeyView {
    /// The key's kind (`kind` is its wire spelling).
    pub fn key_kind(&self) -> Option<ApiKeyKind> {
        ApiKeyKind::from_stored(&self.kind)
    }

    /// The presented key as its holder may see it, with the reach it was authenticated with
    /// (`GET /api/v1/api-keys/current`, and introspection of an API key).
    pub fn presented(auth: &ApiKeyAuth) -> Self {
        let mut view = Self::new(&auth.key, None);
        view.permissions = if auth.reach.owner { vec!["*".to_owned()] } else { auth.reach.tenant.names() };
        view
    }

    /// `service_permissions` is the service account's grant, for a service key.
    pub fn new(key: &ApiKeyRow, service_permissions: Option<&str>) -> Self {
        let permissions = match key.key_kind() {
            Some(ApiKeyKind::TenantOwner) => vec!["*".to_owned()],
            Some(ApiKeyKind::Service) => Permissions::from_stored(service_permissions.unwrap_or("")).names(),
            _ => Permissions::from_stored(&key.permissions).names(),
        };
        Self {
            id: key.id.clone(),
            kind: key.kind.clone(),
            name: key.name.clone(),
            environment: key.environment.clone(),
            prefix: key.display_prefix.clone(),
            last_four: key.last_four.clone(),
            permissions,
            tier: key.tier.clone(),
            user_id: key.user_id.clone(),
            service_account_id: key.service_account_id.clone(),
            team_id: key.team_id.clone(),
            team_role: key.team_role.clone(),
            created_by_user_id: key.created_by_user_id.clone(),
            created_through_client_id: key.created_through_client_id.clone(),
            created_at: crate::db::utc(key.created_at),
            expires_at: key.expires_at.map(crate::db::utc),
            revoked_at: key.revoked_at.map(crate::db::utc),
            last_used_at: key.last_used_at.map(crate::db::utc),
            last_used_ip: key.last_used_ip.clone(),
        }
    }
}

/// A new key: the only time it exists in the clear.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    pub key: String,
}

impl std::ops::Deref for CreatedApiKey {
    type Target = ApiKeyView;

    fn deref(&self) -> &ApiKeyView {
        &self.view
    }
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey").field("view", &self.view).field("key", &"<hidden>").finish()
    }
}

/// What a caller asks for.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    pub kind: ApiKeyKind,
    #[schema(value_type = crate::domain::DisplayName)]
    pub name: String,
    /// Restricted keys: what the key may do. Service keys: the tenant permissions of a new
    /// service account.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Service keys: another key for an existing service account.
    pub service_account_id: Option<String>,
    /// Team keys: the team and the role the key acts with.
    pub team_id: Option<String>,
    pub team_role: Option<TeamRole>,
    pub tier: Option<Tier>,
    /// In the future; none means the key does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeyRequest {
    /// A personal key for the calling user.
    pub fn personal(name: String) -> Self {
        Self {
            kind: ApiKeyKind::Personal,
            name,
            permissions: Vec::new(),
            service_account_id: None,
            team_id: None,
            team_role: None,
            tier: None,
            expires_at: None,
        }
    }
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

fn forbidden(message: impl Into<String>) -> AppError {
    AppError::Forbidden(message.into())
}

/// Whether the caller may hand out (or rotate, or delete) a key of this kind and reach.
fn may_issue(
    caller: &Caller<'_>,
    kind: ApiKeyKind,
    user: Option<&str>,
    team: Option<(&str, TeamRole)>,
    permissions: &Permissions,
) -> Result<(), AppError> {
    match kind {
        ApiKeyKind::Personal => match (caller.reach.user.as_deref(), user) {
            (Some(own), Some(user)) if own == user => Ok(()),
            _ => Err(forbidden(
                "only its user creates, rotates or deletes a personal key (with their own key or on the account page)",
            )),
        },
        ApiKeyKind::TenantOwner | ApiKeyKind::Service => caller.require_owner("hand out tenant-owner and service keys"),
        ApiKeyKind::Team => {
            let (team, role) = team.ok_or_else(|| bad("a team key needs team_id and team_role"))?;
            caller.check(Target::of(Resource::ApiKeys).in_team(Some(team)), Action::Admin)?;
            match caller.reach.role_in(team) {
                Some(own) if !caller.reach.can(Resource::ApiKeys, Action::Admin) && role > own => {
                    Err(forbidden("a team key cannot have a higher role than its creator"))
                }
                _ => Ok(()),
            }
        }
        ApiKeyKind::Restricted => {
            if !caller.reach.can(Resource::ApiKeys, Action::Write) {
                return Err(forbidden("creating restricted keys takes api_keys:write"));
            }
            if !permissions.is_subset_of(&caller.reach.tenant_permissions()) {
                return Err(forbidden("a restricted key cannot have permissions its creator lacks"));
            }
            Ok(())
        }
    }
}

/// A tier raises or lowers what a key may spend: the operators' call, not the holder's.
pub fn may_set_tier(caller: &Caller<'_>) -> bool {
    caller.reach.can(Resource::ApiKeys, Action::Admin)
}

/// The kinds of key the caller may create (for a team key, in at least one team), by the
/// same rules [`create_key`] applies.
pub fn creatable_kinds(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<ApiKeyKind>, AppError> {
    let nothing = Permissions::default();
    let has_team = !teams_for_team_keys(conn, caller)?.is_empty();
    Ok(ApiKeyKind::ALL
        .into_iter()
        .filter(|&kind| match kind {
            ApiKeyKind::Team => has_team,
            ApiKeyKind::Personal => caller.reach.user.is_some(),
            other => may_issue(caller, other, None, None, &nothing).is_ok(),
        })
        .collect())
}

/// The service accounts the caller may add a key to, by name: all of them for an owner
/// (only owners hand out service keys), none otherwise.
pub fn service_accounts_for_keys(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
) -> Result<Vec<(String, String)>, AppError> {
    if may_issue(caller, ApiKeyKind::Service, None, None, &Permissions::default()).is_err() {
        return Ok(Vec::new());
    }
    Ok(crate::db::api_keys::list_service_accounts(conn)?)
}

/// The teams the caller may create team keys for, by name.
pub fn teams_for_team_keys(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<(String, String)>, AppError> {
    let nothing = Permissions::default();
    Ok(crate::db::teams::list_teams(conn, None)?
        .into_iter()
        .filter(|team| may_issue(caller, ApiKeyKind::Team, None, Some((&team.id, TeamRole::Viewer)), &nothing).is_ok())
        .map(|team| (team.id, team.name))
        .collect())
}

fn parse_expiry(expires_at: Option<DateTime<Utc>>, now: NaiveDateTime) -> Result<Option<NaiveDateTime>, AppError> {
    match expires_at.map(|at| at.naive_utc()) {
        Some(at) if at <= now => Err(bad("expires_at must be in the future")),
        other => Ok(other),
    }
}

/// Creates a key of any kind, within what the caller may hand out.
pub fn create_key(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    environment: Environment,
    caller: &Caller<'_>,
    request: KeyRequest,
) -> Result<CreatedApiKey, AppError> {
    let vetted = vet_key(conn, caller, request)?;
    crate::db::write_transaction(conn, |conn| vetted.create(conn, hasher, environment, caller))
}

/// A key request that passed every rule for its caller: what [`create_key`] checks before it
/// writes. The connect flow vets the person's choice when they approve and creates the key
/// (vetting again) when the tool collects it.
#[derive(Debug)]
pub struct VettedKey {
    request: KeyRequest,
    name: String,
    user: Option<String>,
    permissions: Permissions,
    expires_at: Option<NaiveDateTime>,
}

/// Checks `request` against what `caller` may hand out, without writing anything.
pub fn vet_key(conn: &mut DbConnection, caller: &Caller<'_>, request: KeyRequest) -> Result<VettedKey, AppError> {
    let name = clean_name(&request.name, "key")?;
    let expires_at = parse_expiry(request.expires_at, crate::db::now())?;
    let permissions = Permissions::parse_list(&request.permissions).map_err(|e| bad(e.to_string()))?;
    let kind = request.kind;
    let user = (kind == ApiKeyKind::Personal).then(|| caller.reach.user.clone()).flatten();
    let team = match (kind, request.team_id.as_deref(), request.team_role) {
        (ApiKeyKind::Team, Some(team), Some(role)) => Some((team, role)),
        (ApiKeyKind::Team, _, _) => return Err(bad("a team key needs team_id and team_role")),
        (_, None, None) => None,
        _ => return Err(bad("team_id and team_role are for team keys")),
    };
    match kind {
        ApiKeyKind::Restricted if permissions.is_empty() => {
            return Err(bad("a restricted key needs at least one permission"));
        }
        ApiKeyKind::Service if permissions.is_empty() == request.service_account_id.is_none() => {
            return Err(bad(
                "a service key needs either permissions (for a new service account) or service_account_id",
            ));
        }
        ApiKeyKind::Personal | ApiKeyKind::Team | ApiKeyKind::TenantOwner if !permissions.is_empty() => {
            return Err(bad(format!(
                "a {} key's reach comes from its kind; permissions are not set on it",
                kind.as_str()
            )));
        }
        _ => {}
    }
    if request.service_account_id.is_some() && kind != ApiKeyKind::Service {
        return Err(bad("service_account_id is for service keys"));
    }
    may_issue(caller, kind, user.as_deref(), team, &permissions)?;
    // A tier raises or lowers what a key may spend: the operators' call, not the holder's.
    if request.tier.is_some() && !may_set_tier(caller) {
        return Err(forbidden("only a tenant owner or a key with api_keys:admin sets a rate-limit tier"));
    }
    if let Some((team, _)) = team {
        super::clients::existing_team(conn, Some(team))?;
    }
    Ok(VettedKey { name, user, permissions, expires_at, request })
}

impl VettedKey {
    pub fn kind(&self) -> ApiKeyKind {
        self.request.kind
    }

    /// Writes the key, its new service account if it asks for one, and the audit entry.
    /// Call it inside a write transaction (`create_key` opens one).
    pub fn create(
        &self,
        conn: &mut DbConnection,
        hasher: &TokenHasher,
        environment: Environment,
        caller: &Caller<'_>,
    ) -> Result<CreatedApiKey, AppError> {
        let (kind, name, now) = (self.request.kind, self.name.as_str(), crate::db::now());
        let service_account = match (kind, self.request.service_account_id.as_deref()) {
            (ApiKeyKind::Service, None) => {
                let id = uuid::Uuid::new_v4().to_string();
                insert_service_account(conn, &id, name, &self.permissions.to_stored(), now)?;
                Some(id)
            }
            (_, existing) => existing.map(str::to_owned),
        };
        if let Some(account) = &service_account
            && service_account_permissions(conn, std::slice::from_ref(account))?.is_empty()
        {
            return Err(bad(format!("there is no service account `{account}`")));
        }
        let new = IssuedKey {
            kind,
            name,
            user: self.user.as_deref(),
            service_account: service_account.as_deref(),
            team: self.request.team_id.as_deref().zip(self.request.team_role),
            permissions: if kind == ApiKeyKind::Restricted { self.permissions.to_stored() } else { String::new() },
            tier: self.request.tier,
            expires_at: self.expires_at,
        };
        let created = issue(conn, hasher, environment, caller, &new, now)?;
        audit::record(
            conn,
            &caller
                .audit
                .change("api_key.created")
                .target("api_key", &created.id)
                .details(serde_json::json!({ "kind": kind.as_str(), "name": name })),
        )?;
        Ok(created)
    }
}

/// A key to store: everything but its secret.
#[derive(Clone)]
struct IssuedKey<'a> {
    kind: ApiKeyKind,
    name: &'a str,
    user: Option<&'a str>,
    service_account: Option<&'a str>,
    team: Option<(&'a str, TeamRole)>,
    permissions: String,
    tier: Option<Tier>,
    expires_at: Option<NaiveDateTime>,
}

fn issue(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    environment: Environment,
    caller: &Caller<'_>,
    new: &IssuedKey<'_>,
    now: NaiveDateTime,
) -> Result<CreatedApiKey, AppError> {
    let key = apikeys::generate(class_of(new.kind), environment);
    let id = uuid::Uuid::new_v4().to_string();
    insert_api_key(
        conn,
        &NewApiKey {
            id: &id,
            tenant_id: crate::db::DEFAULT_TENANT_ID,
            kind: new.kind.as_str(),
            name: new.name,
            environment: environment.as_str(),
            key_hash: hasher.hash(&key).as_str(),
            display_prefix: &apikeys::display_prefix(&key),
            last_four: &apikeys::last_four(&key),
            user_id: new.user,
            created_by_user_id: caller.reach.user.as_deref(),
            service_account_id: new.service_account,
            team_id: new.team.map(|(team, _)| team),
            team_role: new.team.map(|(_, role)| role.as_str()),
            permissions: &new.permissions,
            tier: new.tier.map(Tier::as_str),
            expires_at: new.expires_at,
            created_at: now,
            created_through_client_id: caller.audit.via_client,
        },
    )?;
    let row = find_api_key(conn, &id)?.ok_or(AppError::NotFound)?;
    let service_permissions = match &row.service_account_id {
        Some(account) => service_account_permissions(conn, std::slice::from_ref(account))?.pop().map(|(_, p)| p),
        None => None,
    };
    Ok(CreatedApiKey { view: ApiKeyView::new(&row, service_permissions.as_deref()), key })
}

/// The bootstrap key: full owner access to the tenant.
pub fn create_tenant_owner_key(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    environment: Environment,
    name: &str,
) -> Result<CreatedApiKey, AppError> {
    let request = KeyRequest { kind: ApiKeyKind::TenantOwner, ..KeyRequest::personal(name.to_owned()) };
    create_key(conn, hasher, environment, &Caller::system(), request)
}

fn target_of(key: &ApiKeyRow) -> Target<'_> {
    let owner = key.user_id.as_deref().filter(|_| key.key_kind() == Some(ApiKeyKind::Personal));
    Target::of(Resource::ApiKeys).in_team(key.team_id.as_deref()).of_user(owner)
}

/// Whether the caller may do `action` to `key`: see it, and for any change, also hand out
/// a key like it.
fn may(caller: &Caller<'_>, key: &ApiKeyRow, action: Action) -> Result<(), AppError> {
    caller.check(target_of(key), action)?;
    if action != Action::Read {
        let kind = key.key_kind().ok_or(AppError::NotFound)?;
        let team = key.team_id.as_deref().zip(key.team_role.as_deref().and_then(|r| r.parse().ok()));
        may_issue(caller, kind, key.user_id.as_deref(), team, &Permissions::from_stored(&key.permissions))?;
    }
    Ok(())
}

fn key_for(conn: &mut DbConnection, caller: &Caller<'_>, id: &str, action: Action) -> Result<ApiKeyRow, AppError> {
    let now = crate::db::now();
    let key = find_api_key(conn, id)?.filter(|k| k.revoked_at.is_none_or(|at| at > now)).ok_or(AppError::NotFound)?;
    may(caller, &key, action)?;
    Ok(key)
}

fn views(conn: &mut DbConnection, keys: &[ApiKeyRow]) -> Result<Vec<ApiKeyView>, AppError> {
    let accounts: Vec<String> = keys.iter().filter_map(|k| k.service_account_id.clone()).collect();
    let permissions: HashMap<String, String> = if accounts.is_empty() {
        HashMap::new()
    } else {
        service_account_permissions(conn, &accounts)?.into_iter().collect()
    };
    Ok(keys
        .iter()
        .map(|k| ApiKeyView::new(k, k.service_account_id.as_ref().and_then(|a| permissions.get(a)).map(String::as_str)))
        .collect())
}

pub fn get_key(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<ApiKeyView, AppError> {
    get_key_for(conn, caller, id, Action::Read)
}

/// The key, if the caller may do `action` to it: what a page asking "rotate?" or "revoke?"
/// shows, refused exactly as the change itself would be.
pub fn get_key_for(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    id: &str,
    action: Action,
) -> Result<ApiKeyView, AppError> {
    let key = key_for(conn, caller, id, action)?;
    Ok(views(conn, std::slice::from_ref(&key))?.remove(0))
}

/// What a key in hand is and may do (`latchkey api-key inspect`), read without using it: its
/// last use stays as it was, and nothing is audited.
#[derive(Debug, Serialize)]
pub struct KeyInspection {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// Whether it works now: `live`, `revoked`, `expired` or `owner_not_active`.
    pub standing: Standing,
    /// What it reaches now: everything (`owner`), tenant-wide permissions, and team roles.
    pub reach: InspectedReach,
}

#[derive(Debug, Serialize)]
pub struct InspectedReach {
    pub owner: bool,
    pub permissions: Vec<String>,
    pub teams: Vec<InspectedTeam>,
    /// The user it acts as (a personal key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct InspectedTeam {
    pub team_id: String,
    pub role: TeamRole,
}

/// Looks up `presented` by its hash. A malformed key or one of the other environment is
/// refused as bad input, an unknown one is `NotFound`: the key is never echoed.
pub fn inspect_key(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    environment: Environment,
    presented: &str,
) -> Result<KeyInspection, AppError> {
    let parsed = apikeys::parse(presented).map_err(|e| AppError::BadRequest(format!("this is not an API key: {e}")))?;
    if parsed.environment != environment {
        return Err(AppError::BadRequest(format!(
            "this is a {} key; this database holds {environment} keys (LATCHKEY_ENVIRONMENT)",
            parsed.environment
        )));
    }
    let (key, owner) =
        hasher.presented(presented).find(|hash| find_api_key_with_owner(conn, hash))?.ok_or(AppError::NotFound)?;
    let standing = Standing::of(&key, &owner, crate::db::now());
    let reach = load_reach(conn, &key, &owner)?;
    let view = views(conn, std::slice::from_ref(&key))?.remove(0);
    Ok(KeyInspection {
        view,
        standing,
        reach: InspectedReach {
            owner: reach.owner,
            permissions: reach.tenant.names(),
            teams: reach.teams.into_iter().map(|(team_id, role)| InspectedTeam { team_id, role }).collect(),
            user_id: reach.user,
        },
    })
}

pub fn list_keys(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<ApiKeyView>, AppError> {
    let listing = caller.listing(Resource::ApiKeys)?;
    let filter = KeyFilter { all: listing.all, teams: &listing.teams, user: listing.user.as_deref() };
    let keys = list_api_keys(conn, &filter, crate::db::now())?;
    views(conn, &keys)
}

/// What a list of keys is narrowed to, and where its page starts.
#[derive(Debug, Default)]
pub struct KeyListQuery {
    pub kind: Option<ApiKeyKind>,
    pub team: Option<String>,
    pub environment: Option<Environment>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// A key in a list, with what the caller may do to it.
#[derive(Debug)]
pub struct ListedKey {
    pub view: ApiKeyView,
    pub may_rotate: bool,
    pub may_delete: bool,
}

#[derive(Debug)]
pub struct KeyPage {
    pub keys: Vec<ListedKey>,
    /// Where the next (older) page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

pub const MAX_PAGE: i64 = 200;
const DEFAULT_PAGE: i64 = 50;

/// How many keys the caller reaches.
pub fn count_keys(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<i64, AppError> {
    let listing = caller.listing(Resource::ApiKeys)?;
    let filter = KeyFilter { all: listing.all, teams: &listing.teams, user: listing.user.as_deref() };
    Ok(count_api_keys(conn, &filter, crate::db::now())?)
}

/// A page of the keys the caller reaches, newest first.
pub fn page_of_keys(conn: &mut DbConnection, caller: &Caller<'_>, query: &KeyListQuery) -> Result<KeyPage, AppError> {
    let listing = caller.listing(Resource::ApiKeys)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let after = match query.cursor.as_deref() {
        Some(cursor) => Some(super::cursor::decode(cursor).ok_or_else(|| bad("the cursor is not valid"))?),
        None => None,
    };
    let page = KeyPageQuery {
        filter: KeyFilter { all: listing.all, teams: &listing.teams, user: listing.user.as_deref() },
        kind: query.kind.map(ApiKeyKind::as_str),
        team: query.team.as_deref(),
        environment: query.environment.map(Environment::as_str),
        after: after.as_ref().map(|(at, id)| (*at, id.as_str())),
        limit: limit + 1,
    };
    let mut rows = page_of_api_keys(conn, &page, crate::db::now())?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|key| super::cursor::encode(key.created_at, &key.id)) } else { None };
    let keys = views(conn, &rows)?
        .into_iter()
        .zip(&rows)
        .map(|(view, row)| ListedKey {
            view,
            may_rotate: may(caller, row, Action::Write).is_ok(),
            may_delete: may(caller, row, Action::Delete).is_ok(),
        })
        .collect();
    Ok(KeyPage { keys, next_cursor })
}

/// The longest a rotated-out key may keep working.
pub const MAX_ROTATION_GRACE: TimeDelta = TimeDelta::days(7);

/// A new key with the same kind, reach, tier and expiry; the old one stops working at once
/// or after `grace`.
pub fn rotate_key(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    environment: Environment,
    caller: &Caller<'_>,
    id: &str,
    grace: TimeDelta,
) -> Result<CreatedApiKey, AppError> {
    if grace < TimeDelta::zero() || grace > MAX_ROTATION_GRACE {
        return Err(bad("the grace period must be between 0 and 604800 seconds (7 days)"));
    }
    let old = key_for(conn, caller, id, Action::Write)?;
    let kind = old.key_kind().ok_or(AppError::NotFound)?;
    let now = crate::db::now();
    let team = old.team_id.as_deref().zip(old.team_role.as_deref().and_then(|r| r.parse().ok()));
    let new = IssuedKey {
        kind,
        name: &old.name,
        user: old.user_id.as_deref(),
        service_account: old.service_account_id.as_deref(),
        team,
        permissions: old.permissions.clone(),
        tier: old.tier.as_deref().and_then(|t| t.parse().ok()),
        expires_at: old.expires_at,
    };
    crate::db::write_transaction(conn, |conn| -> Result<CreatedApiKey, AppError> {
        // Only one of two concurrent rotations shortens the old key's life.
        if !revoke_api_key(conn, &old.id, now + grace)? {
            return Err(AppError::Conflict("the key is already being rotated out".into()));
        }
        let created = issue(conn, hasher, environment, caller, &new, now)?;
        audit::record(
            conn,
            &caller
                .audit
                .change("api_key.rotated")
                .target("api_key", &old.id)
                .details(serde_json::json!({ "replaced_by": created.id, "grace_secs": grace.num_seconds() })),
        )?;
        Ok(created)
    })
}

/// Revokes the key the caller presented, which needs no permission: holding a key is
/// reason enough to be rid of it. Only the tenant's last owner credential is kept.
pub fn give_up_key(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<(), AppError> {
    let key = find_api_key(conn, id)?.ok_or(AppError::NotFound)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        if key.key_kind() == Some(ApiKeyKind::TenantOwner) {
            super::ensure_an_owner_remains(conn, Some(&key.id), None)?;
        }
        revoke_api_key(conn, &key.id, crate::db::now())?;
        audit::record(
            conn,
            &caller
                .audit
                .change("api_key.deleted")
                .target("api_key", &key.id)
                .details(serde_json::json!({ "by": "itself" })),
        )?;
        Ok(())
    })
}

pub fn delete_key(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<(), AppError> {
    let key = key_for(conn, caller, id, Action::Delete)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        if key.key_kind() == Some(ApiKeyKind::TenantOwner) {
            super::ensure_an_owner_remains(conn, Some(&key.id), None)?;
        }
        revoke_api_key(conn, &key.id, crate::db::now())?;
        audit::record(conn, &caller.audit.change("api_key.deleted").target("api_key", &key.id))?;
        Ok(())
    })
}
