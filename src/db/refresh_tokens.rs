//! Refresh tokens, stored as keyed hashes. Each use retires the token and issues its
//! successor in the same family; a retired token presented again revokes the family.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::prepared::{self, InsertRefreshToken, RetireRefreshToken};
use super::revoked_tokens::revoke_token;
use super::schema::{refresh_tokens, users};
use super::users::User;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub id: String,
    pub token_hash: String,
    pub family_id: String,
    pub parent_id: Option<String>,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub audience: String,
    pub auth_code_hash: Option<String>,
    pub access_token_jti: String,
    pub access_token_expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// The answer the rotation of this token gave, sealed, kept for its client's retries
    /// until `retry_until`.
    pub retry_answer_sealed: Option<Vec<u8>>,
    pub retry_until: Option<NaiveDateTime>,
    /// The sign-in the family came from (methods and time); `None` in families from before
    /// sign-ins were recorded.
    pub amr: Option<String>,
    pub auth_time: Option<NaiveDateTime>,
}

impl RefreshToken {
    /// The associated data that binds a sealed retry answer to the token it answered.
    pub fn retry_seal_context(token_hash: &str) -> String {
        format!("refresh_tokens/{token_hash}/retry")
    }

    /// Neither used, revoked nor expired.
    pub fn is_usable(&self, now: NaiveDateTime) -> bool {
        self.used_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A refresh token to store, with what it may later mint: everything but its identity.
#[derive(Debug, Clone, Copy)]
pub struct FamilyMember<'a> {
    pub family_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub audience: &'a str,
    pub auth_code_hash: Option<&'a str>,
    pub access_token_jti: &'a str,
    pub access_token_expires_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub amr: Option<&'a str>,
    pub auth_time: Option<NaiveDateTime>,
}

/// A refresh token's row (`prepared::InsertRefreshToken` writes it).
pub struct NewRefreshToken<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub member: FamilyMember<'a>,
}

pub fn insert_refresh_token(conn: &mut DbConnection, token: &NewRefreshToken<'_>) -> QueryResult<()> {
    prepared::execute(conn, InsertRefreshToken(token)).map(drop)
}

pub fn find_refresh_token(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<RefreshToken>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshToken::as_select())
        .get_result(conn)
        .optional()
}

/// The token with its user, in one query: what a refresh needs before it rotates, one round
/// trip where two would do.
pub fn find_refresh_token_with_user(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<(RefreshToken, User)>> {
    on_own_backend!(conn, |conn| refresh_tokens::table
        .inner_join(users::table.on(users::id.eq(refresh_tokens::user_id)))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshToken::as_select(), User::as_select()))
        .get_result(conn)
        .optional())
}

/// The sealed answer a rotation keeps for retries, and until when.
#[derive(Clone, Copy)]
pub struct RetryAnswer<'a> {
    pub sealed: &'a [u8],
    pub until: NaiveDateTime,
}

/// Retires the token if it is still usable, keeping `retry` with it, and stores its
/// `successor`: both or neither. `false` when the token was no longer usable (a concurrent
/// request rotated it first); of concurrent callers exactly one gets `true`. On PostgreSQL
/// one statement ([`prepared::update_then_store`]).
pub fn rotate_refresh_token(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
    retry: Option<RetryAnswer<'_>>,
    successor: &NewRefreshToken<'_>,
) -> QueryResult<bool> {
    let retirement = RetireRefreshToken {
        token_hash,
        now,
        retry_answer_sealed: retry.map(|r| r.sealed),
        retry_until: retry.map(|r| r.until),
    };
    prepared::update_then_store(conn, retirement, Some(successor))
}

/// Erases the retry answers whose window has passed; returns how many.
pub fn erase_expired_retry_answers(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(refresh_tokens::table.filter(refresh_tokens::retry_until.le(now)))
        .set((
            refresh_tokens::retry_answer_sealed.eq(None::<Vec<u8>>),
            refresh_tokens::retry_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

/// Revokes every token of `families` and the access tokens
/// minted with them; returns how many refresh tokens it revoked.
fn revoke_families(conn: &mut DbConnection, families: Vec<String>, now: NaiveDateTime) -> QueryResult<usize> {
    let members: Vec<(String, NaiveDateTime)> = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq_any(&families))
        .filter(refresh_tokens::access_token_expires_at.gt(now))
        .select((refresh_tokens::access_token_jti, refresh_tokens::access_token_expires_at))
        .load(conn)?;
    for (jti, expires_at) in members {
        revoke_token(conn, &jti, expires_at, now)?;
    }
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq_any(&families))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set((
        refresh_tokens::revoked_at.eq(now),
        // A revoked grant's answers are never given again.
        refresh_tokens::retry_answer_sealed.eq(None::<Vec<u8>>),
        refresh_tokens::retry_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
}

/// Revokes a whole family: every refresh token in it and their access tokens.
pub fn revoke_refresh_family(conn: &mut DbConnection, family_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    revoke_families(conn, vec![family_id.to_owned()], now)
}

/// Revokes the families started by an authorization code (its replay means theft).
pub fn revoke_families_of_code(conn: &mut DbConnection, code_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    let families: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::auth_code_hash.eq(code_hash))
        .select(refresh_tokens::family_id)
        .distinct()
        .load(conn)?;
    revoke_families(conn, families, now)
}

/// Revokes every grant `user_id` gave `client_id` (a withdrawn consent).
pub fn revoke_families_of_user_client(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let families: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::client_id.eq(client_id))
        .select(refresh_tokens::family_id)
        .distinct()
        .load(conn)?;
    revoke_families(conn, families, now)
}

/// Revokes every grant of `user_id` (the user was deactivated or deleted).
pub fn revoke_families_of_user(conn: &mut DbConnection, user_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    let families: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .select(refresh_tokens::family_id)
        .distinct()
        .load(conn)?;
    revoke_families(conn, families, now)
}
