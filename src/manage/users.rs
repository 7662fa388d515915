//! Creating users. Passwords arrive once, are hashed with argon2id, and go nowhere else.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::DbConnection;
use crate::db::users::{NewUser, STATUS_ACTIVE, find_user_by_email, insert_user};
use crate::error::AppError;
use crate::passwords::PasswordHasher;

#[derive(Debug)]
pub struct UserRegistration {
    pub email: String,
    pub name: Option<String>,
    pub password: SecretString,
}

#[derive(Debug, Serialize)]
pub struct RegisteredUser {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub status: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Emails are compared case-insensitively, so they are stored lower-cased and trimmed.
/// The check is deliberately loose (one `@`, something on each side, no spaces): the
/// only real test of an address is mail reaching it.
pub fn normalize_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid { Ok(email) } else { Err(AppError::BadRequest(format!("`{email}` is not an email address"))) }
}

/// Hashing takes tens of milliseconds: call this from a blocking context.
pub fn register_user(
    conn: &mut DbConnection,
    passwords: &PasswordHasher,
    registration: UserRegistration,
) -> Result<RegisteredUser, AppError> {
    let email = normalize_email(&registration.email)?;
    let name = registration.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > 200) {
        return Err(AppError::BadRequest("the name must be at most 200 characters".into()));
    }
    let password_hash =
        passwords.hash(registration.password.expose_secret()).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let tenant = crate::db::DEFAULT_TENANT_ID;
    if find_user_by_email(conn, tenant, &email)?.is_some() {
        return Err(AppError::Conflict(format!("a user with the email `{email}` already exists")));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    insert_user(
        conn,
        &NewUser {
            id: &id,
            tenant_id: tenant,
            email: &email,
            name,
            password_hash: Some(&password_hash),
            status: STATUS_ACTIVE,
            created_at: now,
            updated_at: now,
        },
    )?;
    audit::record(conn, &AuditEntry::new(Actor::System, "user.created", Outcome::Success).target("user", &id))?;
    Ok(RegisteredUser { id, email, name: name.map(str::to_owned), status: STATUS_ACTIVE, created_at: super::utc(now) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lower_cased_and_loosely_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@", "a da@example.com", "a@b@c"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
