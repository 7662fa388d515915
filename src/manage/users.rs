//! Users: created with a password or invited, deactivated, reactivated, deleted.
//! Passwords arrive here already hashed (`passwords::Passwords` bounds that work, outside
//! any database trip); nothing here sees one in the clear.

use serde::Serialize;

use chrono::{NaiveDateTime, TimeDelta};

use super::Caller;
use crate::access::{Action, Resource, Target};
use crate::audit;
use crate::crypto::{TokenHasher, random_token};
use crate::db::DbConnection;
use crate::db::refresh_tokens::revoke_families_of_user;
use crate::db::sessions::delete_sessions_of_user;
use crate::db::teams::remove_user_from_all_teams;
use crate::db::users::{
    NewUser, ROLE_MEMBER, ROLE_OWNER, STATUS_ACTIVE, STATUS_DEACTIVATED, STATUS_DELETED, STATUS_INVITED, User,
    accept_invitation, find_user, find_user_by_email, find_user_by_invitation, insert_user,
    list_users as db_list_users, set_user_status, update_user_profile,
};
use crate::domain::{DisplayName, Email, Issuer};
use crate::error::AppError;
use crate::passwords::PasswordHash;

#[derive(Debug)]
pub struct UserRegistration {
    pub email: String,
    pub name: Option<String>,
    pub password: PasswordHash,
    /// `member` unless said otherwise; only an owner makes owners.
    pub role: Option<String>,
}

/// A user as the management API shows it: never a password hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub status: String,
    pub role: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            status: user.status.clone(),
            role: user.role.clone(),
            created_at: crate::db::utc(user.created_at),
            updated_at: crate::db::utc(user.updated_at),
        }
    }
}

pub type RegisteredUser = UserView;

/// The form an email is stored, looked up and compared in ([`Email`]): two addresses that
/// look the same are one, and one that could pass for another is refused.
pub fn normalize_email(email: &str) -> Result<String, AppError> {
    Email::parse(email).map(Email::into_string).map_err(|e| AppError::BadRequest(e.to_string()))
}

/// A person's name: optional; when given, a [`DisplayName`].
pub(crate) fn clean_display_name(name: Option<&str>) -> Result<Option<String>, AppError> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => Ok(None),
        Some(name) => DisplayName::parse(name)
            .map(|name| Some(name.into_string()))
            .map_err(|e| AppError::BadRequest(format!("the name {e}"))),
    }
}

/// The role asked for, if the caller may hand it out.
fn role_to_grant<'r>(caller: &Caller<'_>, role: Option<&'r str>) -> Result<&'r str, AppError> {
    match role.unwrap_or(ROLE_MEMBER) {
        ROLE_MEMBER => Ok(ROLE_MEMBER),
        ROLE_OWNER => caller.require_owner("make a user an owner").map(|()| ROLE_OWNER),
        other => Err(AppError::BadRequest(format!("unknown role `{other}` (expected member or owner)"))),
    }
}

struct NewUserRow<'a> {
    email: &'a str,
    name: Option<&'a str>,
    role: &'a str,
    password_hash: Option<&'a str>,
    invitation: Option<(&'a str, NaiveDateTime)>,
}

fn insert_new_user(conn: &mut DbConnection, caller: &Caller<'_>, row: NewUserRow<'_>) -> Result<User, AppError> {
    let tenant = crate::db::DEFAULT_TENANT_ID;
    if find_user_by_email(conn, tenant, row.email)?.is_some() {
        return Err(AppError::Conflict(format!("a user with the email `{}` already exists", row.email)));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    let (status, action) =
        if row.invitation.is_some() { (STATUS_INVITED, "user.invited") } else { (STATUS_ACTIVE, "user.created") };
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        insert_user(
            conn,
            &NewUser {
                id: &id,
                tenant_id: tenant,
                email: row.email,
                name: row.name,
                password_hash: row.password_hash,
                status,
                role: row.role,
                invite_token_hash: row.invitation.map(|(hash, _)| hash),
                invite_expires_at: row.invitation.map(|(_, until)| until),
                created_at: now,
                updated_at: now,
            },
        )?;
        audit::record(
            conn,
            &caller.audit.change(action).target("user", &id).details(serde_json::json!({ "role": row.role })),
        )?;
        Ok(())
    })?;
    find_user(conn, &id)?.ok_or(AppError::NotFound)
}

pub fn register_user(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    registration: UserRegistration,
) -> Result<RegisteredUser, AppError> {
    caller.check_create(Resource::Users, None)?;
    let email = normalize_email(&registration.email)?;
    let name = clean_display_name(registration.name.as_deref())?;
    let role = role_to_grant(caller, registration.role.as_deref())?;
    let row = NewUserRow {
        email: &email,
        name: name.as_deref(),
        role,
        password_hash: Some(registration.password.as_str()),
        invitation: None,
    };
    insert_new_user(conn, caller, row).map(|user| UserView::from(&user))
}

/// How long an invitation can be accepted.
pub const INVITATION_LIFETIME: TimeDelta = TimeDelta::days(7);

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(value_type = Option<crate::domain::OptionalDisplayName>)]
    pub name: Option<String>,
    /// `member` (default) or `owner`.
    #[schema(pattern = "^(member|owner)$")]
    pub role: Option<String>,
}

/// An invited user and the link that lets them choose a password: the link is shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitedUser {
    pub user: UserView,
    pub invitation_url: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for InvitedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitedUser").field("user", &self.user).field("invitation_url", &"<hidden>").finish()
    }
}

pub fn invite_user(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    issuer: &Issuer,
    caller: &Caller<'_>,
    invitation: Invitation,
) -> Result<InvitedUser, AppError> {
    caller.check_create(Resource::Users, None)?;
    let email = normalize_email(&invitation.email)?;
    let name = clean_display_name(invitation.name.as_deref())?;
    let role = role_to_grant(caller, invitation.role.as_deref())?;
    let token = random_token::<32>();
    let hash = hasher.hash(&token);
    let expires_at = crate::db::now() + INVITATION_LIFETIME;
    let row = NewUserRow {
        email: &email,
        name: name.as_deref(),
        role,
        password_hash: None,
        invitation: Some((hash.as_str(), expires_at)),
    };
    let user = insert_new_user(conn, caller, row)?;
    Ok(InvitedUser {
        user: UserView::from(&user),
        invitation_url: issuer.endpoint(&format!("/invitation?token={token}")),
        expires_at: crate::db::utc(expires_at),
    })
}

fn user_for(conn: &mut DbConnection, caller: &Caller<'_>, id: &str, action: Action) -> Result<User, AppError> {
    let user = find_user(conn, id)?.filter(|u| u.status != STATUS_DELETED).ok_or(AppError::NotFound)?;
    caller.check(Target::of(Resource::Users).of_user(Some(&user.id)), action)?;
    Ok(user)
}

/// Whether the caller may do `action` to the user (for showing only the buttons that work).
pub fn may(caller: &Caller<'_>, user: &UserView, action: Action) -> bool {
    caller.check(Target::of(Resource::Users).of_user(Some(&user.id)), action).is_ok()
        && (user.role != ROLE_OWNER || action == Action::Read || caller.reach.is_owner())
}

pub fn get_user(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<UserView, AppError> {
    user_for(conn, caller, id, Action::Read).map(|u| UserView::from(&u))
}

pub fn list_users(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<UserView>, AppError> {
    let listing = caller.listing(Resource::Users)?;
    let users = db_list_users(conn, false)?;
    Ok(users.iter().filter(|u| listing.all || listing.user.as_deref() == Some(&u.id)).map(UserView::from).collect())
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[schema(value_type = Option<crate::domain::OptionalDisplayName>)]
    pub name: Option<String>,
    /// `member` (default) or `owner`.
    #[schema(pattern = "^(member|owner)$")]
    pub role: Option<String>,
}

pub fn update_user(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    id: &str,
    update: UserUpdate,
) -> Result<UserView, AppError> {
    let user = user_for(conn, caller, id, Action::Write)?;
    let name = match update.name.as_deref() {
        Some(name) => clean_display_name(Some(name))?,
        None => user.name.clone(),
    };
    let role = match update.role.as_deref() {
        Some(role) if role != user.role => role_to_grant(caller, Some(role))?,
        _ => user.role.as_str(),
    };
    if role != user.role && user.role == ROLE_OWNER {
        caller.require_owner("change an owner's role")?;
    }
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        if role != user.role && user.role == ROLE_OWNER && user.status == STATUS_ACTIVE {
            super::ensure_an_owner_remains(conn, None, Some(id))?;
        }
        update_user_profile(conn, id, name.as_deref(), role, crate::db::now())?;
        audit::record(
            conn,
            &caller.audit.change("user.updated").target("user", id).details(serde_json::json!({ "role": role })),
        )?;
        Ok(())
    })?;
    get_user(conn, caller, id)
}

/// What happens to a user's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Signs them out and stops their personal keys until reactivated.
    Deactivate,
    Reactivate,
    /// For good: their personal keys, sessions, grants and memberships end, and the email
    /// is free for a new user.
    Delete,
}

pub fn change_lifecycle(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    id: &str,
    change: Lifecycle,
) -> Result<UserView, AppError> {
    let action = if change == Lifecycle::Delete { Action::Delete } else { Action::Write };
    let user = user_for(conn, caller, id, action)?;
    // A user's own personal key could otherwise lock its user out or delete them.
    if caller.reach.user.as_deref() == Some(&user.id) && !caller.reach.is_owner() {
        return Err(AppError::Forbidden("a user cannot deactivate or delete themselves".into()));
    }
    if user.role == ROLE_OWNER {
        caller.require_owner("deactivate or delete an owner")?;
    }
    let (status, audit_action) = match (change, user.status.as_str()) {
        (Lifecycle::Deactivate, STATUS_ACTIVE) => (STATUS_DEACTIVATED, "user.deactivated"),
        (Lifecycle::Reactivate, STATUS_DEACTIVATED) => (STATUS_ACTIVE, "user.reactivated"),
        (Lifecycle::Delete, _) => (STATUS_DELETED, "user.deleted"),
        (_, current) => {
            return Err(AppError::Conflict(format!("the user is {current}; that change does not apply")));
        }
    };
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        if user.role == ROLE_OWNER && user.status == STATUS_ACTIVE && status != STATUS_ACTIVE {
            super::ensure_an_owner_remains(conn, None, Some(id))?;
        }
        let now = crate::db::now();
        set_user_status(conn, id, status, now)?;
        if status != STATUS_ACTIVE {
            delete_sessions_of_user(conn, id)?;
            revoke_families_of_user(conn, id, now)?;
        }
        if status == STATUS_DELETED {
            remove_user_from_all_teams(conn, id)?;
        }
        audit::record(conn, &caller.audit.change(audit_action).target("user", id))?;
        Ok(())
    })?;
    let user = find_user(conn, id)?.ok_or(AppError::NotFound)?;
    Ok(UserView::from(&user))
}

/// A signed-in person replaced their password (the current one, or a recent second factor,
/// already checked; `confirmed_by` says which, for the audit log): every other session of
/// theirs ends, as someone who knew the old password may hold one. Answers how many
/// sessions ended.
pub fn change_password(
    conn: &mut DbConnection,
    user_id: &str,
    password: &PasswordHash,
    current_session: &crate::crypto::PresentedHashes,
    confirmed_by: &str,
    origin: &audit::Origin,
) -> Result<usize, AppError> {
    crate::db::write_transaction(conn, |conn| -> Result<usize, AppError> {
        if !crate::db::users::set_password(conn, user_id, password.as_str(), crate::db::now())? {
            return Err(AppError::NotFound);
        }
        let ended = crate::db::sessions::delete_other_sessions_of_user(conn, user_id, current_session)?;
        // Whoever is half way through signing in with the old password stops there too.
        crate::db::pending_sign_ins::delete_pending_sign_ins_of_user(conn, user_id)?;
        let entry = audit::Context::of(audit::Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id))
            .change("user.password_changed")
            .target("user", user_id)
            .details(serde_json::json!({ "sessions_ended": ended, "confirmed_by": confirmed_by }));
        audit::record(conn, &entry)?;
        Ok(ended)
    })
}

/// The invited user an invitation link names, while it can still be accepted.
pub fn invited_user(conn: &mut DbConnection, hasher: &TokenHasher, token: &str) -> Result<User, AppError> {
    let now = crate::db::now();
    hasher.presented(token).find(|hash| find_user_by_invitation(conn, hash, now))?.ok_or(AppError::NotFound)
}

/// Accepts an invitation with the password the person chose; a link used or expired since
/// [`invited_user`] was asked is refused here, atomically.
pub fn accept(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    token: &str,
    password: &PasswordHash,
) -> Result<User, AppError> {
    let token_hashes = hasher.presented(token);
    let now = crate::db::now();
    let user = token_hashes.find(|hash| find_user_by_invitation(conn, hash, now))?.ok_or(AppError::NotFound)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        if !token_hashes.any(|hash| accept_invitation(conn, &user.id, hash, password.as_str(), now))? {
            return Err(AppError::NotFound);
        }
        let entry = crate::audit::AuditEntry::new(
            crate::audit::Actor::User(&user.id),
            "user.invitation_accepted",
            crate::audit::Outcome::Success,
        )
        .target("user", &user.id);
        audit::record(conn, &entry)?;
        Ok(())
    })?;
    find_user(conn, &user.id)?.ok_or(AppError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_look_alikes_refused() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        assert_eq!(normalize_email("ＡＤＡ@example.com").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@example.com", "ada@", "a da@example.com", "a@b@c", "\u{0430}da@example.com"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
