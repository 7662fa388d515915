//! Asymmetric signing keys; private halves sealed under the master key.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::signing_keys;

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub private_key_sealed: Vec<u8>,
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub publish_until: Option<NaiveDateTime>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key_sealed", &"<hidden>")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish()
    }
}

impl SigningKeyRow {
    /// The associated data that binds a sealed private key to its kid.
    pub fn seal_context(kid: &str) -> String {
        format!("signing_keys/{kid}")
    }
}

#[derive(Insertable)]
#[diesel(table_name = signing_keys)]
pub struct NewSigningKey<'a> {
    pub kid: &'a str,
    pub algorithm: &'a str,
    pub private_key_sealed: &'a [u8],
    pub public_jwk: &'a str,
    pub created_at: NaiveDateTime,
}

/// Keys that sign (not retired) or still verify (retired, published until their tokens
/// have expired), newest first.
pub fn list_published_keys(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::retired_at.is_null().or(signing_keys::publish_until.gt(now)))
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Every key ever made, newest first, for operators.
pub fn list_all_keys(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn find_key(conn: &mut DbConnection, kid: &str) -> QueryResult<Option<SigningKeyRow>> {
    signing_keys::table.find(kid).select(SigningKeyRow::as_select()).first(conn).optional()
}

/// Ends a key's publication at `until`.
pub fn set_publish_until(conn: &mut DbConnection, kid: &str, until: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid)).set(signing_keys::publish_until.eq(until)).execute(conn)
}

pub fn count_active_keys(conn: &mut DbConnection, algorithm: &str) -> QueryResult<i64> {
    signing_keys::table
        .filter(signing_keys::algorithm.eq(algorithm))
        .filter(signing_keys::retired_at.is_null())
        .count()
        .get_result(conn)
}

/// Makes `key` the active key of its algorithm: the others of that algorithm retire now
/// and stay published until `publish_until`. One transaction, so no moment has two or no
/// active key.
pub fn insert_and_activate_key(
    conn: &mut DbConnection,
    key: &NewSigningKey<'_>,
    publish_until: NaiveDateTime,
) -> QueryResult<usize> {
    conn.transaction(|conn| {
        let retired = diesel::update(
            signing_keys::table
                .filter(signing_keys::algorithm.eq(key.algorithm))
                .filter(signing_keys::retired_at.is_null()),
        )
        .set((signing_keys::retired_at.eq(key.created_at), signing_keys::publish_until.eq(publish_until)))
        .execute(conn)?;
        diesel::insert_into(signing_keys::table).values(key).execute(conn)?;
        Ok(retired)
    })
}
