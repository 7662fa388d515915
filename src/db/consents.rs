//! Remembered consent: which scopes a user has let a client have without asking again.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::consents;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = consents)]
pub struct Consent {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
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
}

pub fn find_consent(conn: &mut DbConnection, user_id: &str, client_id: &str) -> QueryResult<Option<Consent>> {
    consents::table
        .filter(consents::user_id.eq(user_id))
        .filter(consents::client_id.eq(client_id))
        .select(Consent::as_select())
        .get_result(conn)
        .optional()
}

/// Records that `user_id` lets `client_id` have `scope` (the full set, already merged).
pub fn save_consent(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    scope: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let id = uuid::Uuid::new_v4().to_string();
    let row = NewConsent { id: &id, user_id, client_id, scope, created_at: now, updated_at: now };
    let target = (consents::user_id, consents::client_id);
    let changes = (consents::scope.eq(scope), consents::updated_at.eq(now));
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
