//! API keys, stored as keyed hashes with a display prefix and last four characters.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::changes::{Table, wrote};
use super::schema::{api_keys, service_accounts, users};
use crate::domain::ApiKeyKind;

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub environment: &'a str,
    pub key_hash: &'a str,
    pub display_prefix: &'a str,
    pub last_four: &'a str,
    pub user_id: Option<&'a str>,
    pub created_by_user_id: Option<&'a str>,
    pub service_account_id: Option<&'a str>,
    pub team_id: Option<&'a str>,
    pub team_role: Option<&'a str>,
    pub permissions: &'a str,
    pub tier: Option<&'a str>,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// The client the key was made through, if any (the connect flow).
    pub created_through_client_id: Option<&'a str>,
}

pub fn insert_api_key(conn: &mut DbConnection, key: &NewApiKey<'_>) -> QueryResult<()> {
    wrote(Table::ApiKeys);
    diesel::insert_into(api_keys::table).values(key).execute(conn).map(drop)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub name: String,
    pub environment: String,
    pub display_prefix: String,
    pub last_four: String,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub team_role: Option<String>,
    pub service_account_id: Option<String>,
    pub permissions: String,
    pub tier: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_by_user_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub created_through_client_id: Option<String>,
}

impl ApiKeyRow {
    /// The key's kind; `None` only for a row written by a newer build.
    pub fn key_kind(&self) -> Option<ApiKeyKind> {
        ApiKeyKind::from_stored(&self.kind)
    }
}

pub fn find_api_key_by_hash(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table.filter(api_keys::key_hash.eq(key_hash)).select(ApiKeyRow::as_select()).get_result(conn).optional()
}

/// What stands behind a key: for a personal key its user's status and tenant role, for a
/// service key its account's permissions.
#[derive(Debug, Clone, Default, Queryable)]
pub struct KeyOwner {
    pub user_status: Option<String>,
    pub user_role: Option<String>,
    pub service_permissions: Option<String>,
}

/// The key with this hash and its owner: one query, as every management request pays for it.
pub fn find_api_key_with_owner(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<(ApiKeyRow, KeyOwner)>> {
    api_keys::table
        .left_join(users::table.on(users::id.nullable().eq(api_keys::user_id)))
        .left_join(service_accounts::table.on(service_accounts::id.nullable().eq(api_keys::service_account_id)))
        .filter(api_keys::key_hash.eq(key_hash))
        .select((
            ApiKeyRow::as_select(),
            (users::status.nullable(), users::role.nullable(), service_accounts::permissions.nullable()),
        ))
        .get_result(conn)
        .optional()
}

/// Records use, unless another request recorded it within `interval` (so that concurrent
/// requests write once).
pub fn touch_api_key(
    conn: &mut DbConnection,
    id: &str,
    ip: Option<&str>,
    now: NaiveDateTime,
    interval: chrono::TimeDelta,
) -> QueryResult<()> {
    let stale = now - interval;
    diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(stale))),
    )
    .set((api_keys::last_used_at.eq(now), api_keys::last_used_ip.eq(ip)))
    .execute(conn)
    .map(drop)
}

/// Uses of keys that were authenticated without a trip to the database (from the cache),
/// written together a moment later: a key's last use is a record for its owner, not a
/// security decision, so it may trail by a second.
#[derive(Debug, Default)]
pub struct PendingTouches(std::sync::Mutex<std::collections::HashMap<String, Touch>>);

#[derive(Debug, Clone)]
pub struct Touch {
    pub ip: Option<String>,
    pub at: NaiveDateTime,
}

impl PendingTouches {
    /// Notes a use of key `id`; a later use of the same key before the write replaces it.
    pub fn note(&self, id: &str, touch: Touch) {
        let mut pending = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pending.insert(id.to_owned(), touch);
    }

    /// The uses noted since the last call.
    pub fn take(&self) -> Vec<(String, Touch)> {
        let mut pending = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pending.drain().collect()
    }
}

/// Writes noted uses in one transaction (one commit, not one per key).
pub fn touch_api_keys(
    conn: &mut DbConnection,
    touches: &[(String, Touch)],
    interval: chrono::TimeDelta,
) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        for (id, touch) in touches {
            touch_api_key(conn, id, touch.ip.as_deref(), touch.at, interval)?;
        }
        Ok(())
    })
}

pub fn find_api_key(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table.find(id).select(ApiKeyRow::as_select()).get_result(conn).optional()
}

/// Which keys to list: all, or those of these teams and this user's personal keys.
pub struct KeyFilter<'a> {
    pub all: bool,
    pub teams: &'a [String],
    pub user: Option<&'a str>,
}

/// Keys that still work or will until a rotation's grace period ends, oldest first.
pub fn list_api_keys(
    conn: &mut DbConnection,
    filter: &KeyFilter<'_>,
    now: NaiveDateTime,
) -> QueryResult<Vec<ApiKeyRow>> {
    let mut query = api_keys::table
        .filter(api_keys::revoked_at.is_null().or(api_keys::revoked_at.gt(now)))
        .order((api_keys::created_at.asc(), api_keys::id.asc()))
        .select(ApiKeyRow::as_select())
        .into_boxed();
    if !filter.all {
        let own = api_keys::kind.eq(ApiKeyKind::Personal.as_str()).and(api_keys::user_id.eq(filter.user.unwrap_or("")));
        query = query.filter(api_keys::team_id.eq_any(filter.teams).or(own));
    }
    query.load(conn)
}

/// How many keys in `filter` still work.
pub fn count_api_keys(conn: &mut DbConnection, filter: &KeyFilter<'_>, now: NaiveDateTime) -> QueryResult<i64> {
    let mut rows = api_keys::table
        .filter(api_keys::tenant_id.eq(super::DEFAULT_TENANT_ID))
        .filter(api_keys::revoked_at.is_null().or(api_keys::revoked_at.gt(now)))
        .into_boxed();
    if !filter.all {
        let own = api_keys::kind.eq(ApiKeyKind::Personal.as_str()).and(api_keys::user_id.eq(filter.user.unwrap_or("")));
        rows = rows.filter(api_keys::team_id.eq_any(filter.teams).or(own));
    }
    rows.count().get_result(conn)
}

/// One page of the keys in `filter`, newest first, narrowed as asked.
pub struct KeyPageQuery<'a> {
    pub filter: KeyFilter<'a>,
    pub kind: Option<&'a str>,
    pub team: Option<&'a str>,
    pub environment: Option<&'a str>,
    /// The last key of the previous page: its creation time and id.
    pub after: Option<(NaiveDateTime, &'a str)>,
    pub limit: i64,
}

/// Keys that still work (or will until a rotation's grace period ends), newest first.
pub fn page_of_api_keys(
    conn: &mut DbConnection,
    query: &KeyPageQuery<'_>,
    now: NaiveDateTime,
) -> QueryResult<Vec<ApiKeyRow>> {
    let mut rows = api_keys::table
        .filter(api_keys::tenant_id.eq(super::DEFAULT_TENANT_ID))
        .filter(api_keys::revoked_at.is_null().or(api_keys::revoked_at.gt(now)))
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .select(ApiKeyRow::as_select())
        .limit(query.limit)
        .into_boxed();
    if !query.filter.all {
        let own =
            api_keys::kind.eq(ApiKeyKind::Personal.as_str()).and(api_keys::user_id.eq(query.filter.user.unwrap_or("")));
        rows = rows.filter(api_keys::team_id.eq_any(query.filter.teams).or(own));
    }
    if let Some(kind) = query.kind {
        rows = rows.filter(api_keys::kind.eq(kind));
    }
    if let Some(team) = query.team {
        rows = rows.filter(api_keys::team_id.eq(team));
    }
    if let Some(environment) = query.environment {
        rows = rows.filter(api_keys::environment.eq(environment));
    }
    if let Some((at, id)) = query.after {
        rows = rows.filter(api_keys::created_at.lt(at).or(api_keys::created_at.eq(at).and(api_keys::id.lt(id))));
    }
    rows.load(conn)
}

/// Names of keys, revoked or not, as `name (prefix…last four)`, by id: what the audit log
/// calls a key that acted.
pub fn key_names(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    let rows: Vec<(String, String, String, String)> = api_keys::table
        .filter(api_keys::id.eq_any(ids))
        .select((api_keys::id, api_keys::name, api_keys::display_prefix, api_keys::last_four))
        .load(conn)?;
    Ok(rows.into_iter().map(|(id, name, prefix, last_four)| (id, format!("{name} ({prefix}…{last_four})"))).collect())
}

/// Names of service accounts, by id.
pub fn service_account_names(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    service_accounts::table
        .filter(service_accounts::id.eq_any(ids))
        .select((service_accounts::id, service_accounts::name))
        .load(conn)
}

/// Every service account, by name: (id, name).
pub fn list_service_accounts(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    service_accounts::table
        .filter(service_accounts::tenant_id.eq(super::DEFAULT_TENANT_ID))
        .order((service_accounts::name.asc(), service_accounts::id.asc()))
        .select((service_accounts::id, service_accounts::name))
        .load(conn)
}

/// Stops a key working at `at` (now, or the end of a rotation's grace period), unless it
/// stops earlier already. Returns whether anything changed.
pub fn revoke_api_key(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<bool> {
    wrote(Table::ApiKeys);
    diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::revoked_at.is_null().or(api_keys::revoked_at.gt(at))),
    )
    .set(api_keys::revoked_at.eq(at))
    .execute(conn)
    .map(|n| n == 1)
}

/// Tenant-owner keys that work now, other than `except`.
pub fn count_live_tenant_owner_keys(
    conn: &mut DbConnection,
    except: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    api_keys::table
        .filter(api_keys::kind.eq(ApiKeyKind::TenantOwner.as_str()))
        .filter(api_keys::id.ne(except.unwrap_or("")))
        .filter(api_keys::revoked_at.is_null().or(api_keys::revoked_at.gt(now)))
        .filter(api_keys::expires_at.is_null().or(api_keys::expires_at.gt(now)))
        .count()
        .get_result(conn)
}

/// The permissions of service accounts, by id.
pub fn service_account_permissions(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    service_accounts::table
        .filter(service_accounts::id.eq_any(ids))
        .select((service_accounts::id, service_accounts::permissions))
        .load(conn)
}

pub fn insert_service_account(
    conn: &mut DbConnection,
    id: &str,
    name: &str,
    permissions: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    wrote(Table::ServiceAccounts);
    diesel::insert_into(service_accounts::table)
        .values((
            service_accounts::id.eq(id),
            service_accounts::tenant_id.eq(super::DEFAULT_TENANT_ID),
            service_accounts::name.eq(name),
            service_accounts::permissions.eq(permissions),
            service_accounts::created_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// A service account's name and permissions.
pub fn find_service_account(conn: &mut DbConnection, id: &str) -> QueryResult<Option<(String, String)>> {
    service_accounts::table
        .find(id)
        .select((service_accounts::name, service_accounts::permissions))
        .get_result(conn)
        .optional()
}
