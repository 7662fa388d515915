//! People who sign in. A deleted user's row stays (status `deleted`) so that what was tied
//! to it stays dead even if the same email signs up again.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::users;

pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_DELETED: &str = "deleted";

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
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_user(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<()> {
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
