//! Which master key the database's hashes and seals are made under (by id, never the key),
//! and every column that holds something sealed, for a rotation to re-seal.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::apis::Api;
use super::clients::Client;
use super::refresh_tokens::RefreshToken;
use super::schema::{apis, clients, master_keys, refresh_tokens, signing_keys, totp_factors};
use super::second_factors::TotpFactor;
use super::signing_keys::SigningKeyRow;

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = master_keys)]
pub struct MasterKeyRow {
    pub id: String,
    pub is_current: bool,
    pub became_current_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

pub fn current_master_key(conn: &mut DbConnection) -> QueryResult<Option<String>> {
    master_keys::table.filter(master_keys::is_current.eq(true)).select(master_keys::id).get_result(conn).optional()
}

/// Every key the database has known, the current one first, then the most recently retired.
pub fn list_master_keys(conn: &mut DbConnection) -> QueryResult<Vec<MasterKeyRow>> {
    master_keys::table
        .order((master_keys::is_current.desc(), master_keys::became_current_at.desc()))
        .select(MasterKeyRow::as_select())
        .load(conn)
}

/// Records `id` as current if no key is; of instances recording at once, one wins (the
/// unique index on the current key) and the others keep what it recorded.
pub fn record_first_master_key(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    let row = (master_keys::id.eq(id), master_keys::is_current.eq(true), master_keys::became_current_at.eq(now));
    on_own_backend!(conn, |conn| diesel::insert_into(master_keys::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn))
    .map(drop)
}

/// Retires the current key and makes `id` current (call in a transaction).
pub fn make_master_key_current(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(master_keys::table.filter(master_keys::is_current.eq(true)))
        .set((master_keys::is_current.eq(false), master_keys::retired_at.eq(now)))
        .execute(conn)?;
    // A key made current again (a rotation back) starts a new period.
    diesel::delete(master_keys::table.find(id)).execute(conn)?;
    diesel::insert_into(master_keys::table)
        .values((master_keys::id.eq(id), master_keys::is_current.eq(true), master_keys::became_current_at.eq(now)))
        .execute(conn)
        .map(drop)
}

/// A column that holds values sealed under the master key. A new sealed column belongs
/// here, or a rotation would leave it under the old key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    SigningKeys,
    ApiSecrets,
    ClientSecrets,
    TotpSecrets,
    RefreshRetryAnswers,
}

/// One sealed value and the row it belongs to.
pub struct SealedValue {
    pub row: String,
    pub sealed: Vec<u8>,
}

impl SealedColumn {
    pub const ALL: [Self; 5] =
        [Self::SigningKeys, Self::ApiSecrets, Self::ClientSecrets, Self::TotpSecrets, Self::RefreshRetryAnswers];

    pub fn name(self) -> &'static str {
        match self {
            Self::SigningKeys => "signing_keys.private_key_sealed",
            Self::ApiSecrets => "apis.secret_sealed",
            Self::ClientSecrets => "clients.secret_sealed",
            Self::TotpSecrets => "totp_factors.secret_sealed",
            Self::RefreshRetryAnswers => "refresh_tokens.retry_answer_sealed",
        }
    }

    /// The associated data the value of `row` was sealed with.
    pub fn context(self, row: &str) -> String {
        match self {
            Self::SigningKeys => SigningKeyRow::seal_context(row),
            Self::ApiSecrets => Api::seal_context(row),
            Self::ClientSecrets => Client::seal_context(row),
            Self::TotpSecrets => TotpFactor::seal_context(row),
            Self::RefreshRetryAnswers => RefreshToken::retry_seal_context(row),
        }
    }

    /// Every value sealed in this column that can still be opened for a purpose: retry
    /// answers only while their retry window is open (later they are never read).
    pub fn load(self, conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<SealedValue>> {
        let rows: Vec<(String, Vec<u8>)> = match self {
            Self::SigningKeys => {
                signing_keys::table.select((signing_keys::kid, signing_keys::private_key_sealed)).load(conn)?
            }
            Self::ApiSecrets => apis::table
                .filter(apis::secret_sealed.is_not_null())
                .select((apis::id, apis::secret_sealed.assume_not_null()))
                .load(conn)?,
            Self::ClientSecrets => clients::table
                .filter(clients::secret_sealed.is_not_null())
                .select((clients::id, clients::secret_sealed.assume_not_null()))
                .load(conn)?,
            Self::TotpSecrets => {
                totp_factors::table.select((totp_factors::user_id, totp_factors::secret_sealed)).load(conn)?
            }
            Self::RefreshRetryAnswers => refresh_tokens::table
                .filter(refresh_tokens::retry_answer_sealed.is_not_null())
                .filter(refresh_tokens::retry_until.gt(now))
                .select((refresh_tokens::token_hash, refresh_tokens::retry_answer_sealed.assume_not_null()))
                .load(conn)?,
        };
        Ok(rows.into_iter().map(|(row, sealed)| SealedValue { row, sealed }).collect())
    }

    /// Replaces the sealed value of `row`.
    pub fn store(self, conn: &mut DbConnection, row: &str, sealed: &[u8]) -> QueryResult<usize> {
        match self {
            Self::SigningKeys => diesel::update(signing_keys::table.find(row))
                .set(signing_keys::private_key_sealed.eq(sealed))
                .execute(conn),
            Self::ApiSecrets => {
                super::changes::wrote(super::changes::Table::Apis);
                diesel::update(apis::table.find(row)).set(apis::secret_sealed.eq(sealed)).execute(conn)
            }
            Self::ClientSecrets => {
                super::changes::wrote(super::changes::Table::Clients);
                diesel::update(clients::table.find(row)).set(clients::secret_sealed.eq(sealed)).execute(conn)
            }
            Self::TotpSecrets => {
                diesel::update(totp_factors::table.find(row)).set(totp_factors::secret_sealed.eq(sealed)).execute(conn)
            }
            Self::RefreshRetryAnswers => {
                diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(row)))
                    .set(refresh_tokens::retry_answer_sealed.eq(sealed))
                    .execute(conn)
            }
        }
    }
}
