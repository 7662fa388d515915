//! Browser sessions, server-side: the cookie holds a random id, the table its keyed hash.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{sessions, users};
use super::users::{STATUS_ACTIVE, User};
use crate::crypto::PresentedHashes;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// How the person signed in: RFC 8176 methods, space-separated.
    pub amr: String,
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user_id: &'a str,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub amr: &'a str,
}

pub fn insert_session(conn: &mut DbConnection, session: &NewSession<'_>) -> QueryResult<()> {
    diesel::insert_into(sessions::table).values(session).execute(conn).map(drop)
}

/// The unexpired session with this hash, and its user if that user is still active.
pub fn find_live_session(
    conn: &mut DbConnection,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(Session, User)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::id_hash.eq(id_hash))
        .filter(sessions::expires_at.gt(now))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select((Session::as_select(), User::as_select()))
        .get_result(conn)
        .optional()
}

pub fn delete_session(conn: &mut DbConnection, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::id_hash.eq(id_hash))).execute(conn)
}

pub fn prune_expired_sessions(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)
}

/// The user's live sessions, newest first.
pub fn list_sessions_for_user(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .order(sessions::created_at.desc())
        .select(Session::as_select())
        .load(conn)
}

/// Signs the user out everywhere but the session `keep` (by the hashes it may be stored
/// under, one per master key).
pub fn delete_other_sessions_of_user(
    conn: &mut DbConnection,
    user_id: &str,
    keep: &PresentedHashes,
) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)).filter(sessions::id_hash.ne_all(keep.iter())))
        .execute(conn)
}

/// Signs the user out everywhere.
pub fn delete_sessions_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)
}
