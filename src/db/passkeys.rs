//! Passkeys (`passkeys`: public keys and counters, nothing secret) and the WebAuthn
//! ceremonies under way (`passkey_ceremonies`: taken once, by keyed hash of the id the
//! browser holds).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{passkey_ceremonies, passkeys, users};
use super::users::{STATUS_ACTIVE, User};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    /// base64url, as the browser reports it.
    pub credential_id: String,
    /// The random id the authenticator keeps with the credential (a UUID).
    pub user_handle: String,
    pub name: String,
    /// webauthn-rs's `Passkey`, as JSON: the public key and the signature counter.
    pub credential: String,
    /// Synced between devices by its provider (WebAuthn's BE flag): a software key (`swk`)
    /// rather than one bound to a device (`hwk`).
    pub backup_eligible: bool,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = passkeys)]
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub user_handle: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    pub backup_eligible: bool,
    pub created_at: NaiveDateTime,
}

pub fn insert_passkey(conn: &mut DbConnection, passkey: &NewPasskey<'_>) -> QueryResult<()> {
    diesel::insert_into(passkeys::table).values(passkey).execute(conn).map(drop)
}

/// A person's passkeys, oldest first.
pub fn passkeys_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order((passkeys::created_at.asc(), passkeys::id.asc()))
        .select(PasskeyRow::as_select())
        .load(conn)
}

pub fn count_passkeys(conn: &mut DbConnection, user_id: &str) -> QueryResult<i64> {
    passkeys::table.filter(passkeys::user_id.eq(user_id)).count().get_result(conn)
}

/// The passkey with this credential id, and its owner if still active.
pub fn find_by_credential_id(conn: &mut DbConnection, credential_id: &str) -> QueryResult<Option<(PasskeyRow, User)>> {
    passkeys::table
        .inner_join(users::table)
        .filter(passkeys::credential_id.eq(credential_id))
        .filter(users::status.eq(STATUS_ACTIVE))
        .select((PasskeyRow::as_select(), User::as_select()))
        .get_result(conn)
        .optional()
}

pub fn credential_id_taken(conn: &mut DbConnection, credential_id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(passkeys::table.filter(passkeys::credential_id.eq(credential_id))))
        .get_result(conn)
}

/// After a sign-in: the new counter (and backup state) and when.
pub fn record_use(conn: &mut DbConnection, id: &str, credential: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(passkeys::table.filter(passkeys::id.eq(id)))
        .set((passkeys::credential.eq(credential), passkeys::last_used_at.eq(Some(now))))
        .execute(conn)
        .map(drop)
}

/// Removes one of the person's passkeys; `false` if they have none with this id.
pub fn delete_passkey(conn: &mut DbConnection, user_id: &str, id: &str) -> QueryResult<bool> {
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id)).filter(passkeys::id.eq(id)))
        .execute(conn)
        .map(|deleted| deleted == 1)
}

pub fn delete_passkeys_of_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = passkey_ceremonies)]
pub struct Ceremony {
    pub id_hash: String,
    pub purpose: String,
    pub user_id: Option<String>,
    /// webauthn-rs's ceremony state, as JSON.
    pub state: String,
    pub expires_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = passkey_ceremonies)]
pub struct NewCeremony<'a> {
    pub id_hash: &'a str,
    pub purpose: &'a str,
    pub user_id: Option<&'a str>,
    pub state: &'a str,
    pub expires_at: NaiveDateTime,
}

/// Starts a ceremony. A person has at most one of each purpose under way: a new one
/// replaces the last, so reloading a page cannot fill the table.
pub fn insert_ceremony(conn: &mut DbConnection, ceremony: &NewCeremony<'_>) -> QueryResult<()> {
    if let Some(user_id) = ceremony.user_id {
        diesel::delete(
            passkey_ceremonies::table
                .filter(passkey_ceremonies::user_id.eq(user_id))
                .filter(passkey_ceremonies::purpose.eq(ceremony.purpose)),
        )
        .execute(conn)?;
    }
    diesel::insert_into(passkey_ceremonies::table).values(ceremony).execute(conn).map(drop)
}

/// Takes the unexpired ceremony with this hash and purpose: it is deleted as it is read, so
/// that of two requests answering the same challenge, one gets it.
pub fn take_ceremony(
    conn: &mut DbConnection,
    id_hash: &str,
    purpose: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<Ceremony>> {
    let found = passkey_ceremonies::table
        .filter(passkey_ceremonies::id_hash.eq(id_hash))
        .filter(passkey_ceremonies::purpose.eq(purpose))
        .select(Ceremony::as_select())
        .get_result(conn)
        .optional()?;
    let Some(ceremony) = found else {
        return Ok(None);
    };
    let deleted =
        diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::id_hash.eq(id_hash))).execute(conn)?;
    Ok((deleted == 1 && ceremony.expires_at > now).then_some(ceremony))
}

pub fn prune_expired_ceremonies(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(passkey_ceremonies::table.filter(passkey_ceremonies::expires_at.le(now))).execute(conn)
}
