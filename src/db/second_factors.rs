//! Second factors: an authenticator app's sealed secret (`totp_factors`) and single-use
//! recovery codes (`recovery_codes`, keyed hashes only). Passkeys have their own file.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{passkeys, recovery_codes, totp_factors};

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = totp_factors)]
pub struct TotpFactor {
    pub user_id: String,
    /// The RFC 6238 secret, sealed under the master key for this user alone.
    pub secret_sealed: Vec<u8>,
    pub created_at: NaiveDateTime,
    /// Until a first code confirms it, the app is being set up and counts for nothing.
    pub confirmed_at: Option<NaiveDateTime>,
    /// The last time step a code was accepted for: no code of it or before is accepted again.
    pub last_step: Option<i64>,
    pub last_used_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

impl TotpFactor {
    /// The associated data that binds a sealed secret to its person.
    pub fn seal_context(user_id: &str) -> String {
        format!("totp-secret:{user_id}")
    }

    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

pub fn find_totp(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<TotpFactor>> {
    totp_factors::table
        .filter(totp_factors::user_id.eq(user_id))
        .select(TotpFactor::as_select())
        .get_result(conn)
        .optional()
}

/// Starts setting up an authenticator app, replacing one not yet confirmed. Refused
/// (`false`) while a confirmed one exists: it must be removed first.
pub fn begin_totp(
    conn: &mut DbConnection,
    user_id: &str,
    secret_sealed: &[u8],
    now: NaiveDateTime,
) -> QueryResult<bool> {
    if find_totp(conn, user_id)?.is_some_and(|factor| factor.is_confirmed()) {
        return Ok(false);
    }
    diesel::delete(totp_factors::table.filter(totp_factors::user_id.eq(user_id))).execute(conn)?;
    diesel::insert_into(totp_factors::table)
        .values((
            totp_factors::user_id.eq(user_id),
            totp_factors::secret_sealed.eq(secret_sealed),
            totp_factors::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Confirms the app being set up with the step of its first code; `false` if there is none
/// to confirm.
pub fn confirm_totp(conn: &mut DbConnection, user_id: &str, step: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(
        totp_factors::table.filter(totp_factors::user_id.eq(user_id)).filter(totp_factors::confirmed_at.is_null()),
    )
    .set((totp_factors::confirmed_at.eq(now), totp_factors::last_step.eq(step), totp_factors::last_used_at.eq(now)))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Accepts a code of time step `step` once: `false` if a code of this step or a later one
/// was accepted already (RFC 6238 §5.2), atomically, so two requests racing with one code
/// cannot both win.
pub fn spend_totp_step(conn: &mut DbConnection, user_id: &str, step: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let updated = diesel::update(
        totp_factors::table
            .filter(totp_factors::user_id.eq(user_id))
            .filter(totp_factors::confirmed_at.is_not_null())
            .filter(totp_factors::last_step.is_null().or(totp_factors::last_step.lt(step))),
    )
    .set((totp_factors::last_step.eq(step), totp_factors::last_used_at.eq(now)))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The people whose sign-in asks for a second factor.
pub fn users_with_second_factor(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    let mut users: Vec<String> = totp_factors::table
        .filter(totp_factors::confirmed_at.is_not_null())
        .select(totp_factors::user_id)
        .load(conn)?;
    let with_passkeys: Vec<String> = passkeys::table.select(passkeys::user_id).distinct().load(conn)?;
    users.extend(with_passkeys);
    users.sort_unstable();
    users.dedup();
    Ok(users)
}

pub fn delete_totp(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(totp_factors::table.filter(totp_factors::user_id.eq(user_id))).execute(conn)
}

/// Replaces every recovery code of the user (used or not) with these.
pub fn replace_recovery_codes(
    conn: &mut DbConnection,
    user_id: &str,
    code_hashes: &[String],
    now: NaiveDateTime,
) -> QueryResult<()> {
    delete_recovery_codes(conn, user_id)?;
    // One statement per row: batch inserts are not in diesel's multi-backend subset.
    for hash in code_hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::code_hash.eq(hash),
                recovery_codes::user_id.eq(user_id),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Uses the user's unused code with this hash: `true` once, `false` ever after (and for a
/// code of someone else).
pub fn spend_recovery_code(
    conn: &mut DbConnection,
    user_id: &str,
    code_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::code_hash.eq(code_hash))
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn count_unused_recovery_codes(conn: &mut DbConnection, user_id: &str) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}

pub fn delete_recovery_codes(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn)
}
