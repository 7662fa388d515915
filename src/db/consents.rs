//! Consent: which scopes a user has let a client have for one API (or for Latchkey itself),
//! and whether to skip asking next time. One row per user, client and audience.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{clients, consents, users};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consents)]
pub struct Consent {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Whether the user asked not to be asked again for these scopes.
    pub remembered: bool,
    /// The API the scopes are for, or the issuer for Latchkey itself; empty for consents
    /// recorded before consent was per API (they remember nothing).
    pub audience: String,
}

#[derive(Insertable)]
#[diesel(table_name = consents)]
struct NewConsent<'a> {
    id: &'a str,
    user_id: &'a str,
    client_id: &'a str,
    scope: &'a str,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    remembered: bool,
    audience: &'a str,
}

pub fn find_consent(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    audience: &str,
) -> QueryResult<Option<Consent>> {
    consents::table
        .filter(consents::user_id.eq(user_id))
        .filter(consents::client_id.eq(client_id))
        .filter(consents::audience.eq(audience))
        .select(Consent::as_select())
        .get_result(conn)
        .optional()
}

/// What a user lets a client have for one audience.
pub struct ConsentGrant<'a> {
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub audience: &'a str,
    /// The full set, already merged with what was granted before.
    pub scope: &'a str,
    /// Whether to skip asking next time.
    pub remembered: bool,
}

/// Records a consent, replacing the one for the same user, client and audience.
pub fn save_consent(conn: &mut DbConnection, grant: &ConsentGrant<'_>, now: NaiveDateTime) -> QueryResult<()> {
    let id = uuid::Uuid::new_v4().to_string();
    let ConsentGrant { user_id, client_id, audience, scope, remembered } = *grant;
    let row = NewConsent { id: &id, user_id, client_id, scope, created_at: now, updated_at: now, remembered, audience };
    let target = (consents::user_id, consents::client_id, consents::audience);
    let changes = (consents::scope.eq(scope), consents::updated_at.eq(now), consents::remembered.eq(remembered));
    on_own_backend!(conn, |conn| diesel::insert_into(consents::table)
        .values(&row)
        .on_conflict(target)
        .do_update()
        .set(changes)
        .execute(conn))
    .map(drop)
}

/// The user's consents, newest first, each with the client's name.
pub fn list_consents_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<(Consent, String)>> {
    consents::table
        .inner_join(clients::table.on(clients::client_id.eq(consents::client_id)))
        .filter(consents::user_id.eq(user_id))
        .order((consents::updated_at.desc(), consents::id.desc()))
        .select((Consent::as_select(), clients::name))
        .load(conn)
}

/// Withdraws every consent the user gave the client, whatever API it was for.
pub fn delete_consent(conn: &mut DbConnection, user_id: &str, client_id: &str) -> QueryResult<usize> {
    diesel::delete(consents::table.filter(consents::user_id.eq(user_id)).filter(consents::client_id.eq(client_id)))
        .execute(conn)
}

/// Consents, all or one user's, newest first, each with the client's name.
pub fn list_consents(conn: &mut DbConnection, user_id: Option<&str>) -> QueryResult<Vec<(Consent, String)>> {
    let mut query = consents::table
        .inner_join(clients::table.on(clients::client_id.eq(consents::client_id)))
        .order((consents::updated_at.desc(), consents::id.desc()))
        .select((Consent::as_select(), clients::name))
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(consents::user_id.eq(user_id));
    }
    query.load(conn)
}

/// Who consented to the client, newest first, with each person's email.
pub fn list_consents_for_client(conn: &mut DbConnection, client_id: &str) -> QueryResult<Vec<(Consent, String)>> {
    consents::table
        .inner_join(users::table.on(users::id.eq(consents::user_id)))
        .filter(consents::client_id.eq(client_id))
        .order((consents::updated_at.desc(), consents::id.desc()))
        .select((Consent::as_select(), users::email))
        .load(conn)
}

pub fn find_consent_by_id(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Consent>> {
    consents::table.find(id).select(Consent::as_select()).get_result(conn).optional()
}
