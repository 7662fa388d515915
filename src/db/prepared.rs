//! The grants' writes as statements of fixed text, which diesel prepares once per connection
//! and keeps. Its query builder cannot keep an `UPDATE` (it may leave columns out) nor a
//! `sql_query`: those it writes out and prepares again on every call, and on SQLite that
//! happens holding the writer's lock, so every rotation and code exchange waited for the
//! parses of the ones before it; PostgreSQL parses and plans them anew. These are the writes
//! of every refresh and every code exchange, on both databases.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use diesel::connection::Connection;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Binary, Nullable, Text, Timestamp};

use super::refresh_tokens::NewRefreshToken;

/// Implements [`QueryFragment`] for SQLite and PostgreSQL with one body: the text and binds
/// are the same, the placeholders (`?`, `$1`) are each backend's.
macro_rules! statement_for_both {
    ($statement:ident, |$self:ident, $out:ident| $body:block) => {
        impl QueryId for $statement<'_> {
            type QueryId = $statement<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl QueryFragment<diesel::sqlite::Sqlite> for $statement<'_> {
            fn walk_ast<'b>(&'b $self, mut $out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
                $body
            }
        }

        #[cfg(feature = "postgres")]
        impl QueryFragment<diesel::pg::Pg> for $statement<'_> {
            fn walk_ast<'b>(&'b $self, mut $out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
                $body
            }
        }
    };
}

/// Retires a usable refresh token, keeping its rotation's answer for retries: what
/// `refresh_tokens::rotate_refresh_token` changes.
pub struct RetireRefreshToken<'a> {
    pub token_hash: &'a str,
    pub now: NaiveDateTime,
    pub retry_answer_sealed: Option<&'a [u8]>,
    pub retry_until: Option<NaiveDateTime>,
}

statement_for_both!(RetireRefreshToken, |self, out| {
    out.push_sql("UPDATE refresh_tokens SET used_at = ");
    out.push_bind_param::<Timestamp, _>(&self.now)?;
    out.push_sql(", retry_answer_sealed = ");
    out.push_bind_param::<Nullable<Binary>, _>(&self.retry_answer_sealed)?;
    out.push_sql(", retry_until = ");
    out.push_bind_param::<Nullable<Timestamp>, _>(&self.retry_until)?;
    out.push_sql(" WHERE token_hash = ");
    out.push_bind_param::<Text, _>(self.token_hash)?;
    out.push_sql(" AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ");
    out.push_bind_param::<Timestamp, _>(&self.now)
});

/// Consumes an unused authorization code, recording the access token minted from it.
pub struct ConsumeCode<'a> {
    pub code_hash: &'a str,
    pub now: NaiveDateTime,
    pub access_token_jti: &'a str,
    pub access_token_expires_at: NaiveDateTime,
}

statement_for_both!(ConsumeCode, |self, out| {
    out.push_sql("UPDATE authorization_codes SET consumed_at = ");
    out.push_bind_param::<Timestamp, _>(&self.now)?;
    out.push_sql(", access_token_jti = ");
    out.push_bind_param::<Text, _>(self.access_token_jti)?;
    out.push_sql(", access_token_expires_at = ");
    out.push_bind_param::<Timestamp, _>(&self.access_token_expires_at)?;
    out.push_sql(" WHERE code_hash = ");
    out.push_bind_param::<Text, _>(self.code_hash)?;
    out.push_sql(" AND consumed_at IS NULL");
    Ok(())
});

/// The head of a refresh token's `INSERT`: its values follow (`push_refresh_token_values`).
const INSERT_REFRESH_TOKEN: &str = "INSERT INTO refresh_tokens (id, token_hash, created_at, family_id, \
    parent_id, client_id, user_id, scope, audience, auth_code_hash, access_token_jti, \
    access_token_expires_at, expires_at, amr, auth_time) ";

/// Stores a refresh token: every column of [`NewRefreshToken`].
pub struct InsertRefreshToken<'a>(pub &'a NewRefreshToken<'a>);

statement_for_both!(InsertRefreshToken, |self, out| {
    out.push_sql(INSERT_REFRESH_TOKEN);
    out.push_sql("VALUES (");
    push_refresh_token_values(&mut out, self.0)?;
    out.push_sql(")");
    Ok(())
});

/// Stores a refresh token if and only if the update changes a row, in one statement (on
/// PostgreSQL: an `UPDATE` in a `WITH` feeding the `INSERT`). Of concurrent statements
/// updating the same row, the later waits for the first, then finds its condition no longer
/// holds and inserts nothing.
#[cfg(feature = "postgres")]
pub struct InsertIfUpdated<'a, U> {
    pub update: U,
    pub token: &'a NewRefreshToken<'a>,
}

#[cfg(feature = "postgres")]
impl<U: QueryId> QueryId for InsertIfUpdated<'_, U> {
    type QueryId = InsertIfUpdated<'static, U::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = U::HAS_STATIC_QUERY_ID;
}

#[cfg(feature = "postgres")]
impl<U: QueryFragment<diesel::pg::Pg>> QueryFragment<diesel::pg::Pg> for InsertIfUpdated<'_, U> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        out.push_sql("WITH updated AS (");
        self.update.walk_ast(out.reborrow())?;
        out.push_sql(" RETURNING 1) ");
        out.push_sql(INSERT_REFRESH_TOKEN);
        out.push_sql("SELECT ");
        push_refresh_token_values(&mut out, self.token)?;
        out.push_sql(" FROM updated");
        Ok(())
    }
}

/// The values of [`INSERT_REFRESH_TOKEN`]'s columns, in their order, separated by commas.
fn push_refresh_token_values<'b, DB>(out: &mut AstPass<'_, 'b, DB>, token: &'b NewRefreshToken<'b>) -> QueryResult<()>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<Text> + diesel::sql_types::HasSqlType<Timestamp>,
    str: diesel::serialize::ToSql<Text, DB>,
    NaiveDateTime: diesel::serialize::ToSql<Timestamp, DB>,
{
    let member = &token.member;
    out.push_bind_param::<Text, _>(token.id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(token.token_hash)?;
    out.push_sql(", ");
    out.push_bind_param::<Timestamp, _>(&token.created_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(member.family_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&member.parent_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(member.client_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(member.user_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(member.scope)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(member.audience)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&member.auth_code_hash)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(member.access_token_jti)?;
    out.push_sql(", ");
    out.push_bind_param::<Timestamp, _>(&member.access_token_expires_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Timestamp, _>(&member.expires_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&member.amr)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Timestamp>, _>(&member.auth_time)
}

/// Runs `update` and, if and only if it changed a row, stores `token`: both or neither.
/// `true` when the update changed a row; of concurrent callers updating the same row, exactly
/// one gets `true`. On PostgreSQL one statement ([`InsertIfUpdated`], or the update alone):
/// one round trip where a transaction takes three or four. SQLite, in-process, has no round
/// trips to save (nor an `UPDATE` inside `WITH`): a write transaction in the writer's turn,
/// as every write there.
pub fn update_then_store<U>(
    conn: &mut super::DbConnection,
    update: U,
    token: Option<&NewRefreshToken<'_>>,
) -> QueryResult<bool>
where
    U: QueryFragment<diesel::sqlite::Sqlite> + QueryId + PgStatement,
{
    #[cfg(feature = "postgres")]
    if let super::DbConnection::Postgres(conn) = conn {
        let changed = match token {
            Some(token) => conn.execute_returning_count(&InsertIfUpdated { update, token })?,
            None => conn.execute_returning_count(&update)?,
        };
        return Ok(changed == 1);
    }
    super::write_transaction(conn, |conn| {
        if execute(conn, update)? != 1 {
            return Ok(false);
        }
        if let Some(token) = token {
            execute(conn, InsertRefreshToken(token))?;
        }
        Ok(true)
    })
}

/// Runs `statement` on whichever database `conn` is; the number of rows it changed.
pub fn execute<S>(conn: &mut super::DbConnection, statement: S) -> QueryResult<usize>
where
    S: QueryFragment<diesel::sqlite::Sqlite> + QueryId,
    S: PgStatement,
{
    on_own_backend!(conn, |conn| conn.execute_returning_count(&statement))
}

/// A statement PostgreSQL can run too (when built with it).
#[cfg(feature = "postgres")]
pub trait PgStatement: QueryFragment<diesel::pg::Pg> {}
#[cfg(feature = "postgres")]
impl<T: QueryFragment<diesel::pg::Pg>> PgStatement for T {}
#[cfg(not(feature = "postgres"))]
pub trait PgStatement {}
#[cfg(not(feature = "postgres"))]
impl<T> PgStatement for T {}
