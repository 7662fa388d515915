//! First start: while nobody has an account, `latchkey serve` offers a one-time link where
//! the first person creates the owner account. The token exists in the clear only in the
//! logged link; it works once, for a day, and only while there is still nobody.

use chrono::TimeDelta;

use super::users::{clean_display_name, normalize_email};
use crate::audit::{self, Actor, AuditEntry, Origin, Outcome};
use crate::crypto::{TokenHasher, random_token};
use crate::db::DbConnection;
use crate::db::setup_tokens::{any_user, delete_setup_tokens, insert_setup_token, setup_token_is_live};
use crate::db::users::{NewUser, ROLE_OWNER, STATUS_ACTIVE, User, find_user, insert_user};
use crate::error::AppError;
use crate::passwords::PasswordHash;

/// How long a setup link works.
pub const SETUP_LINK_LIFETIME: TimeDelta = TimeDelta::hours(24);

/// The path the link opens; the token follows as `?token=`.
pub const SETUP_PATH: &str = "/setup";

/// When nobody has an account yet, a new setup token for the link to log; `None` otherwise.
/// Each start offers its own link (every instance of a fleet may log one); any of them
/// works until the owner exists.
pub fn offer_setup(conn: &mut DbConnection, hasher: &TokenHasher) -> Result<Option<String>, AppError> {
    if any_user(conn)? {
        return Ok(None);
    }
    let token = random_token::<32>();
    let now = crate::db::now();
    insert_setup_token(conn, hasher.hash(&token).as_str(), now, now + SETUP_LINK_LIFETIME)?;
    Ok(Some(token))
}

/// Whether `token` still opens the setup page.
pub fn setup_is_open(conn: &mut DbConnection, hasher: &TokenHasher, token: &str) -> Result<bool, AppError> {
    let now = crate::db::now();
    Ok(hasher.presented(token).any(|hash| setup_token_is_live(conn, hash, now))? && !any_user(conn)?)
}

/// What the first person gives.
pub struct FirstOwner<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password: &'a PasswordHash,
    /// Where the request came from, for the audit log.
    pub origin: &'a Origin,
}

/// Creates the owner account and closes setup, atomically: `NotFound` when the link is
/// expired or unknown, or somebody else finished setup first.
pub fn create_first_owner(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    token: &str,
    owner: FirstOwner<'_>,
) -> Result<User, AppError> {
    let email = normalize_email(owner.email)?;
    let name = clean_display_name(owner.name)?;
    let token_hashes = hasher.presented(token);
    let id = uuid::Uuid::new_v4().to_string();
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        let now = crate::db::now();
        if !token_hashes.any(|hash| setup_token_is_live(conn, hash, now))? || any_user(conn)? {
            return Err(AppError::NotFound);
        }
        insert_user(
            conn,
            &NewUser {
                id: &id,
                tenant_id: crate::db::DEFAULT_TENANT_ID,
                email: &email,
                name: name.as_deref(),
                password_hash: Some(owner.password.as_str()),
                status: STATUS_ACTIVE,
                role: ROLE_OWNER,
                invite_token_hash: None,
                invite_expires_at: None,
                created_at: now,
                updated_at: now,
            },
        )?;
        delete_setup_tokens(conn)?;
        let entry = AuditEntry::new(Actor::User(&id), "setup.completed", Outcome::Success)
            .target("user", &id)
            .from_request(owner.origin.ip.as_deref(), Some(&owner.origin.request_id))
            .details(serde_json::json!({ "role": ROLE_OWNER }));
        audit::record(conn, &entry)?;
        Ok(())
    })?;
    find_user(conn, &id)?.ok_or(AppError::NotFound)
}
