//! Users in the dashboard: the list, inviting someone (the invitation link shown once),
//! changing a role, deactivating, reactivating and deleting, each behind a confirmation
//! that says what happens to the person's personal keys, sessions and refresh tokens.
//! Each action is `manage::users`' own call, made as the signed-in person.

use actix_web::http::StatusCode;
use actix_web::web::{self};
use askama::Template;
use serde::Deserialize;

use super::secret::{NewSecret, show_once};
use super::{PageResult, Section, Shell, Visitor, date, see_other};
use crate::access::{Action, Resource};
use crate::db::users::{ROLE_MEMBER, ROLE_OWNER, STATUS_ACTIVE, STATUS_DEACTIVATED};
use crate::error::AppError;
use crate::manage::second_factors;
use crate::manage::users::{self, Invitation, Lifecycle, UserUpdate, UserView};
use crate::web::form::{FieldError, PageForm};

pub const LIST: &str = "/dashboard/users";

struct UserRow {
    id: String,
    email: String,
    name: String,
    role: String,
    status: String,
    joined: String,
    is_you: bool,
    may_role: bool,
    may_deactivate: bool,
    may_reactivate: bool,
    may_delete: bool,
    /// Signing in asks for a second factor.
    two_step: bool,
    may_reset_two_step: bool,
}

#[derive(Template)]
#[template(path = "dashboard/users.html")]
struct ListPage {
    shell: Shell,
    notice: Option<&'static str>,
    users: Vec<UserRow>,
    may_invite: bool,
    /// The sign-in policy, for owners (who may change it).
    policy: Option<PolicyView>,
}

struct PolicyView {
    required: bool,
    /// Active people with a second factor, and all active people.
    with_second_factor: usize,
    active: usize,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn get_list(visitor: Visitor, query: web::Query<DoneQuery>) -> PageResult {
    let me = visitor.user.id.clone();
    let (users, may_invite, policy) = visitor
        .run(move |conn, caller, _| {
            let two_step = crate::db::second_factors::users_with_second_factor(conn)?;
            let rows = users::list_users(conn, caller)?
                .iter()
                .map(|user| {
                    let is_you = user.id == me;
                    let writable = !is_you && users::may(caller, user, Action::Write);
                    let has_two_step = two_step.contains(&user.id);
                    UserRow {
                        id: user.id.clone(),
                        email: user.email.clone(),
                        name: user.name.clone().unwrap_or_default(),
                        role: user.role.clone(),
                        status: user.status.clone(),
                        joined: date(Some(user.created_at)),
                        is_you,
                        may_role: writable && caller.reach.is_owner(),
                        may_deactivate: writable && user.status == STATUS_ACTIVE,
                        may_reactivate: writable && user.status == STATUS_DEACTIVATED,
                        may_delete: !is_you && users::may(caller, user, Action::Delete),
                        two_step: has_two_step,
                        may_reset_two_step: has_two_step && caller.reach.is_owner(),
                    }
                })
                .collect::<Vec<_>>();
            let policy = if caller.reach.is_owner() {
                let active: Vec<&UserRow> = rows.iter().filter(|row| row.status == STATUS_ACTIVE).collect();
                Some(PolicyView {
                    required: second_factors::sign_in_policy(conn, caller)?.second_factor_required,
                    with_second_factor: active.iter().filter(|row| row.two_step).count(),
                    active: active.len(),
                })
            } else {
                None
            };
            Ok((rows, caller.check_create(Resource::Users, None).is_ok(), policy))
        })
        .await?;
    let notice = match query.done.as_deref() {
        Some("role") => Some("The role was changed."),
        Some("deactivate") => Some("The user was deactivated: signed out, and their personal keys stopped working."),
        Some("reactivate") => Some("The user was reactivated."),
        Some("two-step") => {
            Some("Their two-step sign-in was reset: they sign in with their password alone, and were told by email.")
        }
        Some("delete") => Some("The user was deleted."),
        Some("required") => Some(
            "Two-step sign-in is now required: whoever has no second factor sets one up at their next password sign-in.",
        ),
        Some("optional") => Some("Two-step sign-in is now optional: each person decides."),
        _ => None,
    };
    visitor.page(StatusCode::OK, &ListPage { shell: visitor.shell(Section::Users), notice, users, may_invite, policy })
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    second_factor_required: String,
}

/// `POST /dashboard/users/sign-in-policy`: an owner requires two-step sign-in of everyone,
/// or makes it optional again.
pub async fn post_policy(visitor: Visitor, form: PageForm<PolicyForm>) -> PageResult {
    let required = form.into_inner().second_factor_required == "true";
    let policy = second_factors::SignInPolicy { second_factor_required: required };
    visitor.run(move |conn, caller, _| second_factors::set_sign_in_policy(conn, caller, policy)).await?;
    Ok(see_other(&format!("{LIST}?done={}", if required { "required" } else { "optional" })))
}

// ---------------------------------------------------------------- inviting

#[derive(Template)]
#[template(path = "dashboard/user_invite.html")]
struct InvitePage {
    shell: Shell,
    email: String,
    name: String,
    owner_role: bool,
    may_make_owners: bool,
    error: Option<FieldError>,
}

#[derive(Deserialize, Default)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// Which field a refusal of an invitation is about: a name's problems name it; the rest are
/// the address's.
const INVITE_FIELDS: [(&str, &str); 4] =
    [("email", "email"), ("address", "email"), ("name", "name"), ("characters", "email")];

pub async fn get_invite(visitor: Visitor) -> PageResult {
    if let Err(refused) = visitor_may_invite(&visitor) {
        return Err(refused.into());
    }
    let page = InvitePage {
        shell: visitor.shell(Section::Users),
        email: String::new(),
        name: String::new(),
        owner_role: false,
        may_make_owners: visitor.reach().is_owner(),
        error: None,
    };
    visitor.page(StatusCode::OK, &page)
}

fn visitor_may_invite(visitor: &Visitor) -> Result<(), AppError> {
    visitor
        .reach()
        .check_create(Resource::Users, None)
        .map_err(|_| AppError::Forbidden("inviting people takes users:write".into()))
}

pub async fn post_invite(visitor: Visitor, form: PageForm<InviteForm>) -> PageResult {
    let form = form.into_inner();
    let invitation = Invitation {
        email: form.email.clone(),
        name: Some(form.name.clone()).filter(|n| !n.trim().is_empty()),
        role: Some(if form.role == ROLE_OWNER { ROLE_OWNER } else { ROLE_MEMBER }.to_owned()),
    };
    let invited = visitor
        .run(move |conn, caller, state| users::invite_user(conn, &state.hasher, &state.issuer, caller, invitation))
        .await;
    match invited {
        Ok(invited) => {
            let expires = super::moment(invited.expires_at);
            let secret = NewSecret::new(
                "Invitation link",
                "Send this link to the person you invited",
                invited.invitation_url.clone(),
                vec![
                    ("Email".into(), invited.user.email.clone()),
                    ("Role".into(), invited.user.role.clone()),
                    ("The link works until".into(), expires),
                ],
                LIST,
            );
            show_once(&visitor, &secret)
        }
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            let page = InvitePage {
                shell: visitor.shell(Section::Users),
                email: form.email,
                name: form.name,
                owner_role: form.role == ROLE_OWNER,
                may_make_owners: visitor.reach().is_owner(),
                error: Some(FieldError::place(&message, &INVITE_FIELDS)),
            };
            visitor.page(StatusCode::BAD_REQUEST, &page)
        }
        Err(refused) => Err(refused.into()),
    }
}

// ---------------------------------------------------------------- changing a user

/// The changes a confirmation page asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Role,
    Deactivate,
    Reactivate,
    Delete,
    /// Reset the person's second factors (owners only).
    TwoStep,
}

impl Change {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "role" => Some(Self::Role),
            "deactivate" => Some(Self::Deactivate),
            "reactivate" => Some(Self::Reactivate),
            "delete" => Some(Self::Delete),
            "two-step" => Some(Self::TwoStep),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::Deactivate => "deactivate",
            Self::Reactivate => "reactivate",
            Self::Delete => "delete",
            Self::TwoStep => "two-step",
        }
    }

    fn action(self) -> Action {
        if self == Self::Delete { Action::Delete } else { Action::Write }
    }
}

#[derive(Template)]
#[template(path = "dashboard/user_change.html")]
struct ChangePage {
    shell: Shell,
    user: UserView,
    change: &'static str,
    is_owner: bool,
}

async fn user_to(visitor: &Visitor, id: String, change: Change) -> Result<UserView, AppError> {
    visitor
        .run(move |conn, caller, _| {
            let user = users::get_user(conn, caller, &id)?;
            let owners_only = matches!(change, Change::Role | Change::TwoStep);
            if !users::may(caller, &user, change.action()) || (owners_only && !caller.reach.is_owner()) {
                return Err(AppError::Forbidden(format!("you may not {} this user", change.as_str())));
            }
            Ok(user)
        })
        .await
}

pub async fn get_change(visitor: Visitor, path: web::Path<(String, String)>) -> PageResult {
    let (id, change) = path.into_inner();
    let Some(change) = Change::parse(&change) else {
        return Ok(super::not_found_page());
    };
    let user = user_to(&visitor, id, change).await?;
    let page = ChangePage {
        shell: visitor.shell(Section::Users),
        is_owner: user.role == ROLE_OWNER,
        user,
        change: change.as_str(),
    };
    visitor.page(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    role: String,
}

pub async fn post_change(
    visitor: Visitor,
    path: web::Path<(String, String)>,
    form: PageForm<ChangeForm>,
) -> PageResult {
    let form = form.into_inner();
    let (id, change) = path.into_inner();
    let Some(change) = Change::parse(&change) else {
        return Ok(super::not_found_page());
    };
    let user = visitor
        .run(move |conn, caller, _| match change {
            Change::Role => {
                let update = UserUpdate { name: None, role: Some(form.role) };
                users::update_user(conn, caller, &id, update)
            }
            Change::Deactivate => users::change_lifecycle(conn, caller, &id, Lifecycle::Deactivate),
            Change::Reactivate => users::change_lifecycle(conn, caller, &id, Lifecycle::Reactivate),
            Change::Delete => users::change_lifecycle(conn, caller, &id, Lifecycle::Delete),
            Change::TwoStep => second_factors::reset_for(conn, caller, &id),
        })
        .await?;
    if change == Change::TwoStep {
        let state = visitor.state();
        state.mailer.send_later(second_factors::reset_notice(&state.issuer, &user));
    }
    Ok(see_other(&format!("{LIST}?done={}", change.as_str())))
}
