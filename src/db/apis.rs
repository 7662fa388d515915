//! Resource servers ("APIs" in Auth0's sense): audience, scopes, signing, token lifetime.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::changes::{Table, wrote};
use super::schema::apis;
use crate::domain::Scopes;

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = apis)]
pub struct Api {
    pub id: String,
    pub tenant_id: String,
    pub team_id: Option<String>,
    pub name: String,
    pub audience: String,
    pub signing_alg: String,
    pub secret_sealed: Option<Vec<u8>>,
    pub scopes: String,
    pub token_lifetime_secs: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("id", &self.id)
            .field("audience", &self.audience)
            .field("signing_alg", &self.signing_alg)
            .field("secret_sealed", &self.secret_sealed.as_ref().map(|_| "<hidden>"))
            .field("scopes", &self.scopes)
            .field("token_lifetime_secs", &self.token_lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl Api {
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scopes).unwrap_or_default()
    }

    /// The associated data that binds a sealed HS256 secret to this API's row.
    pub fn seal_context(id: &str) -> String {
        format!("apis/{id}")
    }
}

#[derive(Insertable)]
#[diesel(table_name = apis)]
pub struct NewApi<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub team_id: Option<&'a str>,
    pub name: &'a str,
    pub audience: &'a str,
    pub signing_alg: &'a str,
    pub secret_sealed: Option<&'a [u8]>,
    pub scopes: &'a str,
    pub token_lifetime_secs: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_api(conn: &mut DbConnection, api: &NewApi<'_>) -> QueryResult<()> {
    wrote(Table::Apis);
    diesel::insert_into(apis::table).values(api).execute(conn).map(drop)
}

/// Inserts the row unless one with its id exists (several instances may start at once).
pub fn insert_api_unless_present(conn: &mut DbConnection, api: &NewApi<'_>) -> QueryResult<()> {
    wrote(Table::Apis);
    super::first_insert(diesel::insert_into(apis::table).values(api).execute(conn)).map(drop)
}

/// A built-in API follows the deployment: its audience and scopes.
pub fn update_built_in_api(
    conn: &mut DbConnection,
    id: &str,
    audience: &str,
    scopes: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    wrote(Table::Apis);
    diesel::update(apis::table.find(id))
        .set((apis::audience.eq(audience), apis::scopes.eq(scopes), apis::updated_at.eq(now)))
        .execute(conn)
}

pub fn find_api_by_audience(conn: &mut DbConnection, audience: &str) -> QueryResult<Option<Api>> {
    apis::table.filter(apis::audience.eq(audience)).select(Api::as_select()).get_result(conn).optional()
}

pub fn find_api(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Api>> {
    apis::table.find(id).select(Api::as_select()).get_result(conn).optional()
}

/// The longest access-token lifetime any API grants, if any API exists.
pub fn max_token_lifetime_secs(conn: &mut DbConnection) -> QueryResult<Option<i64>> {
    apis::table.select(diesel::dsl::max(apis::token_lifetime_secs)).first(conn)
}

/// APIs in the tenant, or only those of these teams, by creation.
pub fn list_apis(conn: &mut DbConnection, teams: Option<&[String]>) -> QueryResult<Vec<Api>> {
    let mut query = apis::table.order((apis::created_at.asc(), apis::id.asc())).select(Api::as_select()).into_boxed();
    if let Some(teams) = teams {
        query = query.filter(apis::team_id.eq_any(teams));
    }
    query.load(conn)
}

pub fn update_api(
    conn: &mut DbConnection,
    id: &str,
    name: &str,
    scopes: &str,
    token_lifetime_secs: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    wrote(Table::Apis);
    diesel::update(apis::table.find(id))
        .set((
            apis::name.eq(name),
            apis::scopes.eq(scopes),
            apis::token_lifetime_secs.eq(token_lifetime_secs),
            apis::updated_at.eq(now),
        ))
        .execute(conn)
}

pub fn delete_api(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    wrote(Table::Apis);
    diesel::delete(apis::table.find(id)).execute(conn)
}
