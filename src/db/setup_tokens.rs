//! First-start links: while nobody has an account, the token that lets the first person
//! create the owner, kept only as its keyed hash.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{setup_tokens, users};
use super::users::STATUS_DELETED;

pub fn insert_setup_token(
    conn: &mut DbConnection,
    token_hash: &str,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(setup_tokens::table)
        .values((
            setup_tokens::token_hash.eq(token_hash),
            setup_tokens::created_at.eq(created_at),
            setup_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(drop)
}

/// Whether `token_hash` names a link that still works.
pub fn setup_token_is_live(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        setup_tokens::table.filter(setup_tokens::token_hash.eq(token_hash)).filter(setup_tokens::expires_at.gt(now)),
    ))
    .get_result(conn)
}

/// Every link goes once the owner exists: used, expired or never opened.
pub fn delete_setup_tokens(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::delete(setup_tokens::table).execute(conn)
}

/// Whether anybody has an account (invited, active or deactivated): then there is nothing to set up.
pub fn any_user(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(users::table.filter(users::status.ne(STATUS_DELETED)))).get_result(conn)
}
