//! Revoked access tokens, by `jti`, kept until the token would have expired anyway.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::revoked_tokens;

#[derive(Insertable)]
#[diesel(table_name = revoked_tokens)]
struct NewRevokedToken<'a> {
    jti: &'a str,
    expires_at: NaiveDateTime,
    revoked_at: NaiveDateTime,
}

/// Records a revocation; revoking twice is not an error (RFC 7009 §2.2).
pub fn revoke_token(
    conn: &mut DbConnection,
    jti: &str,
    expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    super::changes::wrote(super::changes::Table::RevokedTokens);
    let row = NewRevokedToken { jti, expires_at, revoked_at: now };
    on_own_backend!(conn, |conn| diesel::insert_into(revoked_tokens::table)
        .values(&row)
        .on_conflict_do_nothing()
        .execute(conn))
    .map(drop)
}

pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(revoked_tokens::table.filter(revoked_tokens::jti.eq(jti)))).get_result(conn)
}

/// Drops revocations of tokens that have expired since; returns how many.
pub fn prune_expired_revocations(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.le(now))).execute(conn)
}
