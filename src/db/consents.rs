//! Remembered consent: which scopes a user has let a client have without asking again.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{clients, consents};

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
}

pub fn find_consent(conn: &mut DbConnection, user_id: &str, client_id: &str) -> QueryResult<Option<Consent>> {
    consents::table
        .filter(consents::user_id.eq(user_id))
        .filter(consents::client_id.eq(client_id))
        .select(Consent::as_select())
        .get_result(conn)
        .optional()
}

/// Records that `user_id` lets `client_id` have `scope` (the full set, already merged), and
/// whether to skip asking next time.
pub fn save_consent(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    scope: &str,
    remembered: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let id = uuid::Uuid::new_v4().to_string();
    let row = NewConsent { id: &id, user_id, client_id, scope, created_at: now, updated_at: now, remembered };
    let target = (consents::user_id, consents::client_id);
    let changes = (consents::scope.eq(scope), consents::updated_at.eq(now), consents::remembered.eq(remembered));
    // MultiConnection has no `on_conflict`; both backends spell the upsert the same way.
    match conn {
        DbConnection::Sqlite(conn) => {
            diesel::insert_into(consents::table).values(&row).on_conflict(target).do_update().set(changes).execute(conn)
        }
        #[cfg(feature = "postgres")]
        DbConnection::Postgres(conn) => {
            diesel::insert_into(consents::table).values(&row).on_conflict(target).do_update().set(changes).execute(conn)
        }
    }
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

pub fn find_consent_by_id(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Consent>> {
    consents::table.find(id).select(Consent::as_select()).get_result(conn).optional()
}
