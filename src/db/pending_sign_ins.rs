//! Sign-ins halfway: the password was right, the second factor is still to come. The
//! browser holds a random id, the table its keyed hash, as for sessions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{pending_sign_ins, users};
use super::users::{STATUS_ACTIVE, User};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pending_sign_ins)]
pub struct PendingSignIn {
    pub id_hash: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = pending_sign_ins)]
pub struct NewPendingSignIn<'a> {
    pub id_hash: &'a str,
    pub user_id: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub fn insert_pending_sign_in(conn: &mut DbConnection, pending: &NewPendingSignIn<'_>) -> QueryResult<()> {
    diesel::insert_into(pending_sign_ins::table).values(pending).execute(conn).map(drop)
}

/// The unexpired pending sign-in with this hash, and its user if still active.
pub fn find_pending_sign_in(
    conn: &mut DbConnection,
    id_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(PendingSignIn, User)>> {
    pending_sign_ins::table
        .inner_join(users::table)
        .filter(pending_sign_ins::id_hash.eq(id_hash))
        .filter(pending_sign_ins::expires_at.gt(now))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select((PendingSignIn::as_select(), User::as_select()))
        .get_result(conn)
        .optional()
}

/// Ends a pending sign-in; `false` if it was gone already (used by a racing request).
pub fn delete_pending_sign_in(conn: &mut DbConnection, id_hash: &str) -> QueryResult<bool> {
    diesel::delete(pending_sign_ins::table.filter(pending_sign_ins::id_hash.eq(id_hash)))
        .execute(conn)
        .map(|deleted| deleted == 1)
}

pub fn prune_expired_pending_sign_ins(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(pending_sign_ins::table.filter(pending_sign_ins::expires_at.le(now))).execute(conn)
}

/// Ends every pending sign-in of the user (their password changed under them).
pub fn delete_pending_sign_ins_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(pending_sign_ins::table.filter(pending_sign_ins::user_id.eq(user_id))).execute(conn)
}
