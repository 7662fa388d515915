//! `latchkey user …` and `latchkey team …`: people and the teams they work in.

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::output::{details, table, text};
use super::{Failure, Out, Place, Request, body_as, segment};
use crate::access::TeamRole;
use crate::config::Settings;
use crate::domain::Issuer;
use crate::manage::users::{self, Invitation, Lifecycle, UserRegistration, UserUpdate};
use crate::manage::{second_factors, teams};
use crate::passwords::PasswordHasher;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input, never from the command line.
    Create(UserCreateArgs),
    /// Invite a user by email: they choose their password through the link, printed once.
    Invite {
        /// Where the invitation goes; it becomes their sign-in name.
        #[arg(long)]
        email: String,
        /// The name pages greet them with.
        #[arg(long)]
        name: Option<String>,
        /// `owner` reaches everything in the tenant; `member` its own things and its teams'.
        #[arg(long, default_value = "member", value_parser = ["member", "owner"])]
        role: String,
    },
    /// List the users.
    List,
    /// Show one user.
    Show { id: String },
    /// Change a user's name or role; what is not given stays.
    Update {
        id: String,
        /// The name pages greet them with.
        #[arg(long)]
        name: Option<String>,
        /// `owner` or `member`; the tenant's last owner stays one.
        #[arg(long, value_parser = ["member", "owner"])]
        role: Option<String>,
    },
    /// Sign a user out everywhere and stop their personal keys, until reactivated.
    Deactivate { id: String },
    /// Let a deactivated user back in.
    Reactivate { id: String },
    /// Delete a user for good: their personal keys, sessions, grants and memberships end.
    Delete { id: String },
    /// Reset a user's two-step sign-in (authenticator app, passkeys, recovery codes); they
    /// are told by email.
    ResetSecondFactors { id: String },
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    /// Their sign-in name; stored in lower case.
    #[arg(long)]
    pub email: String,
    /// The name pages greet the user with.
    #[arg(long)]
    pub name: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// `owner` reaches everything in the tenant (through the user's personal keys);
    /// `member` reaches its own things and its teams'.
    #[arg(long, default_value = "member", value_parser = ["member", "owner"])]
    pub role: String,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Create a team.
    Create { name: String },
    /// List the teams.
    List,
    /// Show one team with its members.
    Show { id: String },
    /// Rename a team.
    Rename { id: String, name: String },
    /// Delete a team, its memberships and its keys.
    Delete { id: String },
    /// Add someone to a team (by user id or email), or change their role in it.
    AddMember {
        team: String,
        /// A user's id or email.
        user: String,
        /// What they may do in the team: viewer (read), editor (change), admin (also members and keys).
        #[arg(long, default_value = "viewer", value_parser = ["viewer", "editor", "admin"])]
        role: String,
    },
    /// Take someone out of a team (by user id or email).
    RemoveMember { team: String, user: String },
}

pub(super) fn run(place: &Place, command: UserCommand, out: Out) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => create(place, args, out),
        UserCommand::Invite { email, name, role } => {
            let body = json!({ "email": email, "name": name, "role": role });
            let invited =
                place.act("user", Request::post("/users/invitations", Some(body.clone())), |conn, caller, local| {
                    let invitation = body_as::<Invitation>(&body)?;
                    users::invite_user(
                        conn,
                        &local.master_keys.token_hasher(),
                        &issuer(local.settings),
                        caller,
                        invitation,
                    )
                })?;
            out.print(&invited, || {
                format!(
                    "Invited {} ({}). Send them this link, shown once:\n  {}",
                    text(&invited, "email"),
                    text(&invited, "id"),
                    text(&invited, "invitation_url")
                )
            })
        }
        UserCommand::List => {
            let listed =
                place.act("users", Request::get("/users"), |conn, caller, _| users::list_users(conn, caller))?;
            out.print(&listed, || {
                table(
                    &listed,
                    &[("ID", "id"), ("EMAIL", "email"), ("NAME", "name"), ("ROLE", "role"), ("STATUS", "status")],
                    "No users.",
                )
            })
        }
        UserCommand::Show { id } => {
            let user = place
                .act(&subject(&id), Request::get(path(&id)), |conn, caller, _| users::get_user(conn, caller, &id))?;
            out.print(&user, || details(&user))
        }
        UserCommand::Update { id, name, role } => {
            let mut body = json!({});
            if let Some(name) = name {
                body["name"] = name.into();
            }
            if let Some(role) = role {
                body["role"] = role.into();
            }
            if body.as_object().is_some_and(serde_json::Map::is_empty) {
                return Err(Failure::Invalid("nothing to change: give --name or --role".into()).into());
            }
            let user = place.act(&subject(&id), Request::patch(path(&id), body.clone()), |conn, caller, _| {
                users::update_user(conn, caller, &id, body_as::<UserUpdate>(&body)?)
            })?;
            out.print(&user, || format!("Updated user {id}.\n{}", details(&user)))
        }
        UserCommand::Deactivate { id } => lifecycle(place, &id, Lifecycle::Deactivate, out),
        UserCommand::Reactivate { id } => lifecycle(place, &id, Lifecycle::Reactivate, out),
        UserCommand::Delete { id } => lifecycle(place, &id, Lifecycle::Delete, out),
        UserCommand::ResetSecondFactors { id } => {
            let request = Request::delete(format!("{}/second-factors", path(&id)));
            let mut reset = None;
            place.act(&subject(&id), request, |conn, caller, _| {
                let user = second_factors::reset_for(conn, caller, &id)?;
                reset = Some(user.clone());
                Ok(user)
            })?;
            // A server mails them itself; on the database the mail goes now, as a server's would.
            if let (Place::Local(settings), Some(user)) = (place, reset)
                && let Err(error) = tell_of_reset(settings, &user)
            {
                eprintln!(
                    "warning: the reset is done, but the mail telling {} could not be sent: {error:#}",
                    user.email
                );
            }
            out.print(&json!({ "reset": id }), || {
                format!("Reset the second factors of user {id}: they sign in with their password alone until they set one up.")
            })
        }
    }
}

fn subject(id: &str) -> String {
    format!("user {id} (`latchkey user list` shows them)")
}

fn path(id: &str) -> String {
    format!("/users/{}", segment(id))
}

/// The issuer the server of these settings has: links in mail point there.
fn issuer(settings: &Settings) -> Issuer {
    settings.issuer_at(settings.bind)
}

fn tell_of_reset(settings: &Settings, user: &users::UserView) -> anyhow::Result<()> {
    let mailer = crate::mail::Mailer::from_settings(settings)?;
    let mail = second_factors::reset_notice(&issuer(settings), user);
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(mailer.send(mail))
}

fn lifecycle(place: &Place, id: &str, change: Lifecycle, out: Out) -> anyhow::Result<()> {
    let (request, done) = match change {
        Lifecycle::Deactivate => (
            Request::post(format!("{}/deactivate", path(id)), None),
            "Deactivated: signed out everywhere, personal keys stopped",
        ),
        Lifecycle::Reactivate => (Request::post(format!("{}/reactivate", path(id)), None), "Reactivated"),
        Lifecycle::Delete => (Request::delete(path(id)), "Deleted for good"),
    };
    let user = place.act(&subject(id), request, |conn, caller, _| users::change_lifecycle(conn, caller, id, change))?;
    let answer = if change == Lifecycle::Delete { json!({ "deleted": id }) } else { user };
    out.print(&answer, || format!("{done}: user {id}."))
}

fn create(place: &Place, args: UserCreateArgs, out: Out) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("could not read the password from standard input")?;
    let password = SecretString::from(password.trim_end_matches(['\r', '\n']).to_owned());
    let body = json!({
        "email": args.email,
        "name": args.name,
        "password": password.expose_secret(),
        "role": args.role,
    });
    let user = place.act("user", Request::post("/users", Some(body)), |conn, caller, _| {
        let password = PasswordHasher::new()
            .hash(password.expose_secret())
            .map_err(|refusal| crate::error::AppError::BadRequest(refusal.to_string()))?;
        let registration = UserRegistration { email: args.email, name: args.name, password, role: Some(args.role) };
        users::register_user(conn, caller, registration)
    })?;
    out.print(&user, || format!("Created user {} ({})", text(&user, "email"), text(&user, "id")))
}

pub(super) fn run_team(place: &Place, command: TeamCommand, out: Out) -> anyhow::Result<()> {
    match command {
        TeamCommand::Create { name } => {
            let body = json!({ "name": name });
            let team = place.act("team", Request::post("/teams", Some(body)), |conn, caller, _| {
                teams::create_team(conn, caller, &name)
            })?;
            out.print(&team, || format!("Created team \"{}\" ({})", text(&team, "name"), text(&team, "id")))
        }
        TeamCommand::List => {
            let listed =
                place.act("teams", Request::get("/teams"), |conn, caller, _| teams::list_teams(conn, caller))?;
            out.print(&listed, || {
                table(&listed, &[("ID", "id"), ("NAME", "name"), ("CREATED", "created_at")], "No teams.")
            })
        }
        TeamCommand::Show { id } => {
            let mut team = place.act(&team_subject(&id), Request::get(team_path(&id)), |conn, caller, _| {
                teams::get_team(conn, caller, &id)
            })?;
            let members = place.act(
                &team_subject(&id),
                Request::get(format!("{}/members", team_path(&id))),
                |conn, caller, _| teams::members(conn, caller, &id),
            )?;
            team["members"] = members.clone();
            out.print(&team, || {
                let mut shown = team.clone();
                shown.as_object_mut().map(|fields| fields.remove("members"));
                format!("{}\n\n{}", details(&shown), table(&members, MEMBER_COLUMNS, "No members."))
            })
        }
        TeamCommand::Rename { id, name } => {
            let team = place.act(
                &team_subject(&id),
                Request::patch(team_path(&id), json!({ "name": name })),
                |conn, caller, _| teams::rename(conn, caller, &id, &name),
            )?;
            out.print(&team, || format!("Renamed team {id} to \"{}\".", text(&team, "name")))
        }
        TeamCommand::Delete { id } => {
            place.act(&team_subject(&id), Request::delete(team_path(&id)), |conn, caller, _| {
                teams::delete_team(conn, caller, &id)
            })?;
            out.print(&json!({ "deleted": id }), || format!("Deleted team {id} with its memberships and keys."))
        }
        TeamCommand::AddMember { team, user, role } => {
            let role: TeamRole = role.parse().map_err(Failure::Invalid)?;
            let user_id = user_id(place, &user)?;
            let request =
                Request::put(format!("{}/members/{}", team_path(&team), segment(&user_id)), json!({ "role": role }));
            let members = place.act(&member_subject(&team, &user), request, |conn, caller, _| {
                if user.contains('@') {
                    teams::set_member_by_email(conn, caller, &team, &user, role)
                } else {
                    teams::set_member(conn, caller, &team, &user, role)
                }
            })?;
            out.print(&members, || {
                format!(
                    "{user} is {} of team {team}.\n\n{}",
                    role.as_str(),
                    table(&members, MEMBER_COLUMNS, "No members.")
                )
            })
        }
        TeamCommand::RemoveMember { team, user } => {
            let user_id = user_id(place, &user)?;
            let request = Request::delete(format!("{}/members/{}", team_path(&team), segment(&user_id)));
            place.act(&member_subject(&team, &user), request, |conn, caller, _| {
                let user_id = match user.contains('@') {
                    true => local_user_by_email(conn, &user)?,
                    false => user.clone(),
                };
                teams::remove_member(conn, caller, &team, &user_id)
            })?;
            out.print(&json!({ "removed": user, "team": team }), || format!("{user} is no longer in team {team}."))
        }
    }
}

const MEMBER_COLUMNS: &[(&str, &str)] = &[("USER ID", "user_id"), ("EMAIL", "email"), ("ROLE", "role")];

fn team_subject(id: &str) -> String {
    format!("team {id} (`latchkey team list` shows them)")
}

fn member_subject(team: &str, user: &str) -> String {
    format!("team {team}, or no user {user} in it")
}

fn team_path(id: &str) -> String {
    format!("/teams/{}", segment(id))
}

/// A user named by id or email, as the management API names them (by id). Only a server
/// needs the lookup; on the database `manage` takes either.
fn user_id(place: &Place, user: &str) -> anyhow::Result<String> {
    let Place::Remote(remote) = place else { return Ok(user.to_owned()) };
    if !user.contains('@') {
        return Ok(user.to_owned());
    }
    let users = remote.call(reqwest::Method::GET, "/users", None)?;
    users["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| text(u, "email").eq_ignore_ascii_case(user.trim()))
        .map(|u| text(u, "id").to_owned())
        .ok_or_else(|| Failure::NotFound(format!("there is no user {user}")).into())
}

fn local_user_by_email(conn: &mut crate::db::DbConnection, email: &str) -> Result<String, crate::error::AppError> {
    let email = users::normalize_email(email)?;
    crate::db::users::find_user_by_email(conn, crate::db::DEFAULT_TENANT_ID, &email)?
        .map(|user| user.id)
        .ok_or(crate::error::AppError::NotFound)
}
