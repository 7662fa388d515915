//! People who sign in. A deleted user's row stays (status `deleted`) so that what was tied
//! to it stays dead even if the same email signs up again.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::changes::{Table, wrote};
use super::schema::users;

pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_DELETED: &str = "deleted";
pub const STATUS_DEACTIVATED: &str = "deactivated";
/// Invited and not yet accepted: no password, cannot sign in.
pub const STATUS_INVITED: &str = "invited";
/// A tenant owner reaches everything; a member its own things and its teams'.
pub const ROLE_OWNER: &str = "owner";
pub const ROLE_MEMBER: &str = "member";

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    pub role: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("status", &self.status)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<hidden>"))
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }

    /// What pages call the user.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.email)
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub status: &'a str,
    pub role: &'a str,
    pub invite_token_hash: Option<&'a str>,
    pub invite_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_user(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<()> {
    wrote(Table::Users);
    diesel::insert_into(users::table).values(user).execute(conn).map(drop)
}

/// The user who holds `email` now (deleted users no longer hold theirs).
pub fn find_user_by_email(conn: &mut DbConnection, tenant_id: &str, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::email.eq(email))
        .filter(users::status.ne(STATUS_DELETED))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

pub fn find_user(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).get_result(conn).optional()
}

/// Users in the tenant (the deleted ones only when asked), by email.
pub fn list_users(conn: &mut DbConnection, include_deleted: bool) -> QueryResult<Vec<User>> {
    let mut query = users::table.order((users::email.asc(), users::id.asc())).select(User::as_select()).into_boxed();
    if !include_deleted {
        query = query.filter(users::status.ne(STATUS_DELETED));
    }
    query.load(conn)
}

/// The emails of these users, by id (for naming who made what).
pub fn emails_of(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    users::table.filter(users::id.eq_any(ids)).select((users::id, users::email)).load(conn)
}

/// Active owners other than `except`: people who can sign in and reach everything.
pub fn count_active_owners(conn: &mut DbConnection, except: Option<&str>) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(ROLE_OWNER))
        .filter(users::status.eq(STATUS_ACTIVE))
        .filter(users::id.ne(except.unwrap_or("")))
        .count()
        .get_result(conn)
}

pub fn set_user_status(conn: &mut DbConnection, id: &str, status: &str, now: NaiveDateTime) -> QueryResult<usize> {
    wrote(Table::Users);
    let deleted_at = (status == STATUS_DELETED).then_some(now);
    diesel::update(users::table.find(id))
        .set((users::status.eq(status), users::updated_at.eq(now), users::deleted_at.eq(deleted_at)))
        .execute(conn)
}

pub fn update_user_profile(
    conn: &mut DbConnection,
    id: &str,
    name: Option<&str>,
    role: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    wrote(Table::Users);
    diesel::update(users::table.find(id))
        .set((users::name.eq(name), users::role.eq(role), users::updated_at.eq(now)))
        .execute(conn)
}

/// The invited user holding this invitation, while it is valid.
pub fn find_user_by_invitation(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::invite_token_hash.eq(token_hash))
        .filter(users::status.eq(STATUS_INVITED))
        .filter(users::invite_expires_at.gt(now))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

/// Replaces an active user's password; `false` if the user is no longer active.
pub fn set_password(conn: &mut DbConnection, id: &str, password_hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    wrote(Table::Users);
    diesel::update(users::table.find(id).filter(users::status.eq(STATUS_ACTIVE)))
        .set((users::password_hash.eq(password_hash), users::updated_at.eq(now)))
        .execute(conn)
        .map(|n| n == 1)
}

/// Accepts an invitation: the password is set, the token spent, the user active. Only one
/// of two concurrent acceptances changes the row.
pub fn accept_invitation(
    conn: &mut DbConnection,
    id: &str,
    token_hash: &str,
    password_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    wrote(Table::Users);
    diesel::update(
        users::table.find(id).filter(users::invite_token_hash.eq(token_hash)).filter(users::status.eq(STATUS_INVITED)),
    )
    .set((
        users::password_hash.eq(password_hash),
        users::status.eq(STATUS_ACTIVE),
        users::invite_token_hash.eq(None::<String>),
        users::invite_expires_at.eq(None::<NaiveDateTime>),
        users::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}
