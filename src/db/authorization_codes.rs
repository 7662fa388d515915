//! Authorization codes (RFC 6749 §4.1.2): stored as keyed hashes, single use, kept after
//! use so that a replay is recognised.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::prepared::{self, ConsumeCode};
use super::refresh_tokens::NewRefreshToken;
use super::schema::{authorization_codes, users};
use super::users::User;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = authorization_codes)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub audience: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
    pub access_token_jti: Option<String>,
    pub access_token_expires_at: Option<NaiveDateTime>,
    /// Whether the authorization request named `redirect_uri` (then the token request must
    /// repeat it, RFC 6749 §4.1.3) or left it to the client's one registered URI.
    pub redirect_uri_given: bool,
    /// The connect flow: RFC 8693's `requested_token_type` when it asked for an API key,
    pub requested_token_type: Option<String>,
    /// the key the person chose (JSON), kept until the code is exchanged,
    pub key_request: Option<String>,
    /// and the key made then, revoked if the code is replayed.
    pub issued_key_id: Option<String>,
    /// How the person signed in (RFC 8176 methods); with `auth_time`, what the tokens report.
    pub amr: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct NewAuthorizationCode<'a> {
    pub code_hash: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub audience: &'a str,
    pub code_challenge: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub redirect_uri_given: bool,
    pub requested_token_type: Option<&'a str>,
    pub key_request: Option<&'a str>,
    pub amr: Option<&'a str>,
}

pub fn insert_code(conn: &mut DbConnection, code: &NewAuthorizationCode<'_>) -> QueryResult<()> {
    diesel::insert_into(authorization_codes::table).values(code).execute(conn).map(drop)
}

pub fn find_code(conn: &mut DbConnection, code_hash: &str) -> QueryResult<Option<AuthorizationCode>> {
    authorization_codes::table.find(code_hash).select(AuthorizationCode::as_select()).get_result(conn).optional()
}

/// The code with its user, in one query: what an exchange needs, one round trip where two
/// would do.
pub fn find_code_with_user(conn: &mut DbConnection, code_hash: &str) -> QueryResult<Option<(AuthorizationCode, User)>> {
    on_own_backend!(conn, |conn| authorization_codes::table
        .inner_join(users::table.on(users::id.eq(authorization_codes::user_id)))
        .filter(authorization_codes::code_hash.eq(code_hash))
        .select((AuthorizationCode::as_select(), User::as_select()))
        .get_result(conn)
        .optional())
}

/// Marks the code used. Exactly one of any number of concurrent callers gets `true`:
/// the condition and the write are one statement.
pub fn consume_code(conn: &mut DbConnection, code_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        authorization_codes::table
            .filter(authorization_codes::code_hash.eq(code_hash))
            .filter(authorization_codes::consumed_at.is_null()),
    )
    .set(authorization_codes::consumed_at.eq(now))
    .execute(conn)
    .map(|rows| rows == 1)
}

/// Consumes the code, records the access token minted from it (for revocation on replay) and
/// stores the first refresh token of its family if it has one: all or nothing, and as
/// [`consume_code`], exactly one concurrent caller gets `true`. On PostgreSQL one statement
/// ([`prepared::update_then_store`]).
pub fn redeem_code(
    conn: &mut DbConnection,
    code_hash: &str,
    now: NaiveDateTime,
    (access_token_jti, access_token_expires_at): (&str, NaiveDateTime),
    refresh_token: Option<&NewRefreshToken<'_>>,
) -> QueryResult<bool> {
    let consumption = ConsumeCode { code_hash, now, access_token_jti, access_token_expires_at };
    prepared::update_then_store(conn, consumption, refresh_token)
}

/// Remembers the key made from a code (for revocation on replay); the choice it was made
/// from has served its purpose.
pub fn record_code_key(conn: &mut DbConnection, code_hash: &str, key_id: &str) -> QueryResult<()> {
    diesel::update(authorization_codes::table.find(code_hash))
        .set((authorization_codes::issued_key_id.eq(key_id), authorization_codes::key_request.eq(None::<String>)))
        .execute(conn)
        .map(drop)
}
