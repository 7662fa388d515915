//! API keys, stored as keyed hashes with a display prefix and last four characters.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::api_keys;

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
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn find_api_key_by_hash(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table.filter(api_keys::key_hash.eq(key_hash)).select(ApiKeyRow::as_select()).get_result(conn).optional()
}
