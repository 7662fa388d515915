//! "Forgot your password?": a single-use link by email, valid 30 minutes, kept only as a
//! keyed hash. Using it sets the new password and ends everything the old one opened: every
//! session, every pending sign-in and every refresh token family (with their access
//! tokens). A person with a second factor gives it too, so that a mailbox alone does not
//! open the account.

use chrono::TimeDelta;

use crate::audit::{self, Actor, Origin, Outcome};
use crate::crypto::{TokenHasher, random_token};
use crate::db::DbConnection;
use crate::db::password_resets::{find_usable_reset, insert_password_reset, use_reset};
use crate::db::users::{User, find_user_by_email};
use crate::error::AppError;
use crate::passwords::PasswordHash;

/// How long a link works.
pub const RESET_LINK_LIFETIME: TimeDelta = TimeDelta::minutes(30);

/// A link to send: the person it is for, and its token (in the clear only here).
pub struct ResetLink {
    pub user: User,
    pub token: String,
}

/// Makes a link for the active account with this (normalised) email, if there is one. The
/// request is audited either way; an unknown address gets no link and no hint of that.
pub fn request_reset(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    email: &str,
    origin: &Origin,
) -> Result<Option<ResetLink>, AppError> {
    let user = find_user_by_email(conn, crate::db::DEFAULT_TENANT_ID, email)?.filter(User::is_active);
    let Some(user) = user else {
        let entry = audit::Context::of(Actor::Anonymous, origin.ip.as_deref(), Some(&origin.request_id))
            .entry("user.password_reset_requested", Outcome::Failure)
            .details(serde_json::json!({ "reason": "no active account with this email" }));
        audit::record(conn, &entry)?;
        return Ok(None);
    };
    let token = random_token::<32>();
    let now = crate::db::now();
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        insert_password_reset(conn, hasher.hash(&token).as_str(), &user.id, now, now + RESET_LINK_LIFETIME)?;
        let entry = audit::Context::of(Actor::Anonymous, origin.ip.as_deref(), Some(&origin.request_id))
            .entry("user.password_reset_requested", Outcome::Success)
            .target("user", &user.id);
        audit::record(conn, &entry)?;
        Ok(())
    })?;
    Ok(Some(ResetLink { user, token }))
}

/// The person a link is for, while it can still be used.
pub fn reset_target(conn: &mut DbConnection, hasher: &TokenHasher, token: &str) -> Result<Option<User>, AppError> {
    Ok(hasher.presented(token).find(|hash| find_usable_reset(conn, hash, crate::db::now()))?)
}

/// Sets the password the link was used for and ends every session and grant of the account,
/// atomically; `NotFound` if the link was used or expired meanwhile. What the ending took is
/// audited.
pub fn complete_reset(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    token: &str,
    user_id: &str,
    password: &PasswordHash,
    origin: &Origin,
) -> Result<(), AppError> {
    let now = crate::db::now();
    let token_hashes = hasher.presented(token);
    crate::db::write_transaction(conn, |conn| {
        if !token_hashes.any(|hash| use_reset(conn, hash, user_id, now))? {
            return Err(AppError::NotFound);
        }
        if !crate::db::users::set_password(conn, user_id, password.as_str(), now)? {
            return Err(AppError::NotFound);
        }
        let sessions = crate::db::sessions::delete_sessions_of_user(conn, user_id)?;
        crate::db::pending_sign_ins::delete_pending_sign_ins_of_user(conn, user_id)?;
        let refresh_tokens = crate::db::refresh_tokens::revoke_families_of_user(conn, user_id, now)?;
        let entry = audit::Context::of(Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id))
            .change("user.password_reset")
            .target("user", user_id)
            .details(serde_json::json!({ "sessions_ended": sessions, "refresh_tokens_revoked": refresh_tokens }));
        audit::record(conn, &entry)?;
        Ok(())
    })
}
