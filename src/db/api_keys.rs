//! API keys, stored as keyed hashes with a display prefix and last four characters.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{api_keys, users};

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
    pub permissions: &'a str,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn insert_api_key(conn: &mut DbConnection, key: &NewApiKey<'_>) -> QueryResult<()> {
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
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn find_api_key_by_hash(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table.filter(api_keys::key_hash.eq(key_hash)).select(ApiKeyRow::as_select()).get_result(conn).optional()
}

/// The key with this hash and, for a personal key, its user's status: one query, as every
/// management request pays for it.
pub fn find_api_key_with_owner(
    conn: &mut DbConnection,
    key_hash: &str,
) -> QueryResult<Option<(ApiKeyRow, Option<String>)>> {
    api_keys::table
        .left_join(users::table.on(users::id.nullable().eq(api_keys::user_id)))
        .filter(api_keys::key_hash.eq(key_hash))
        .select((ApiKeyRow::as_select(), users::status.nullable()))
        .get_result(conn)
        .optional()
}

/// Records use, at most once a minute per key: a write on every request would make
/// reads pay for SQLite's single writer.
pub fn touch_api_key(conn: &mut DbConnection, id: &str, ip: Option<&str>, now: NaiveDateTime) -> QueryResult<()> {
    let stale = now - chrono::TimeDelta::minutes(1);
    diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::last_used_at.is_null().or(api_keys::last_used_at.lt(stale))),
    )
    .set((api_keys::last_used_at.eq(now), api_keys::last_used_ip.eq(ip)))
    .execute(conn)
    .map(drop)
}
