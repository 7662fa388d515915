//! Client assertions (RFC 7523 JWTs) already accepted, as keyed hashes of (client, `jti`),
//! until they expire: the database's answer to "was this one used?", on every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::used_assertions;

/// Records the assertion; `false` if it was recorded before (a replay).
pub fn claim_assertion(conn: &mut DbConnection, assertion_hash: &str, expires_at: NaiveDateTime) -> QueryResult<bool> {
    super::first_insert(
        diesel::insert_into(used_assertions::table)
            .values((used_assertions::assertion_hash.eq(assertion_hash), used_assertions::expires_at.eq(expires_at)))
            .execute(conn),
    )
}

/// Forgets assertions that have expired since: they would be refused for their `exp` anyway.
pub fn prune_used_assertions(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(used_assertions::table.filter(used_assertions::expires_at.le(now))).execute(conn)
}
