//! Password-reset links: the token only as a keyed hash, single use, short-lived.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{password_resets, users};
use super::users::{STATUS_ACTIVE, User};

pub fn insert_password_reset(
    conn: &mut DbConnection,
    token_hash: &str,
    user_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(password_resets::table)
        .values((
            password_resets::token_hash.eq(token_hash),
            password_resets::user_id.eq(user_id),
            password_resets::created_at.eq(now),
            password_resets::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(drop)
}

/// The active user an unused, unexpired link names.
pub fn find_usable_reset(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> QueryResult<Option<User>> {
    password_resets::table
        .inner_join(users::table)
        .filter(password_resets::token_hash.eq(token_hash))
        .filter(password_resets::used_at.is_null())
        .filter(password_resets::expires_at.gt(now))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

/// Uses the link: `true` once, while it is unused and unexpired; then every other link of
/// the same person stops working too.
pub fn use_reset(conn: &mut DbConnection, token_hash: &str, user_id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let used = diesel::update(
        password_resets::table
            .filter(password_resets::token_hash.eq(token_hash))
            .filter(password_resets::user_id.eq(user_id))
            .filter(password_resets::used_at.is_null())
            .filter(password_resets::expires_at.gt(now)),
    )
    .set(password_resets::used_at.eq(now))
    .execute(conn)?;
    if used == 1 {
        diesel::update(
            password_resets::table
                .filter(password_resets::user_id.eq(user_id))
                .filter(password_resets::used_at.is_null()),
        )
        .set(password_resets::used_at.eq(now))
        .execute(conn)?;
    }
    Ok(used == 1)
}

pub fn prune_expired_resets(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(password_resets::table.filter(password_resets::expires_at.le(now))).execute(conn)
}
