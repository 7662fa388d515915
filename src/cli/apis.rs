//! `latchkey api …`: APIs (resource servers).

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{details, table, text};
use super::{Out, Place, Request, body_as, segment};
use crate::domain::ApiSigning;
use crate::manage::apis::{self, ApiRegistration, ApiUpdate};

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Register an API; an HS256 API's shared secret is printed once.
    Create(ApiCreateArgs),
    /// List the APIs.
    List,
    /// Show one API.
    Show { id: String },
    /// Change an API's name, scopes or token lifetime; what is not given stays.
    Update {
        id: String,
        /// A new display name.
        #[arg(long)]
        name: Option<String>,
        /// The scopes it defines (replacing the ones it has).
        #[arg(long = "scope", num_args = 1..)]
        scopes: Option<Vec<String>>,
        /// Access-token lifetime in seconds (60 to 86400).
        #[arg(long, value_name = "SECONDS")]
        token_lifetime: Option<i64>,
    },
    /// Delete an API no client uses.
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct ApiCreateArgs {
    /// The audience identifier, an absolute URI such as `https://api.example.com`.
    #[arg(long)]
    pub audience: String,
    /// Scopes the API defines.
    #[arg(long = "scope", required = true, num_args = 1..)]
    pub scopes: Vec<String>,
    /// How its tokens are signed: RS256, ES256 or EdDSA (published keys) or HS256 (shared secret).
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA", "HS256"])]
    pub alg: String,
    /// A display name (defaults to the audience).
    #[arg(long)]
    pub name: Option<String>,
    /// Access-token lifetime in seconds (defaults to access_token_ttl_secs).
    #[arg(long, value_name = "SECONDS")]
    pub token_lifetime: Option<i64>,
}

pub(super) fn run(place: &Place, command: ApiCommand, out: Out) -> anyhow::Result<()> {
    match command {
        ApiCommand::Create(args) => create(place, args, out),
        ApiCommand::List => {
            let listed = place.act("APIs", Request::get("/apis"), |conn, caller, _| apis::list_apis(conn, caller))?;
            out.print(&listed, || {
                table(
                    &listed,
                    &[("ID", "id"), ("AUDIENCE", "audience"), ("ALG", "signing_alg"), ("SCOPE", "scope")],
                    "No APIs.",
                )
            })
        }
        ApiCommand::Show { id } => {
            let api = place
                .act(&subject(&id), Request::get(path(&id)), |conn, caller, _| apis::get_api(conn, caller, &id))?;
            out.print(&api, || details(&api))
        }
        ApiCommand::Update { id, name, scopes, token_lifetime } => {
            let mut body = json!({});
            for (field, value) in [
                ("name", name.map(Value::from)),
                ("scopes", scopes.map(Value::from)),
                ("token_lifetime_secs", token_lifetime.map(Value::from)),
            ] {
                if let Some(value) = value {
                    body[field] = value;
                }
            }
            if body.as_object().is_some_and(serde_json::Map::is_empty) {
                return Err(super::Failure::Invalid(
                    "nothing to change: give --name, --scope or --token-lifetime".into(),
                )
                .into());
            }
            let api = place.act(&subject(&id), Request::patch(path(&id), body.clone()), |conn, caller, _| {
                apis::update_api(conn, caller, &id, body_as::<ApiUpdate>(&body)?)
            })?;
            out.print(&api, || format!("Updated API {id}.\n{}", details(&api)))
        }
        ApiCommand::Delete { id } => {
            place.act(&subject(&id), Request::delete(path(&id)), |conn, caller, _| {
                apis::delete_api(conn, caller, &id)
            })?;
            out.print(&json!({ "deleted": id }), || format!("Deleted API {id}."))
        }
    }
}

fn subject(id: &str) -> String {
    format!("API {id} (`latchkey api list` shows them)")
}

fn path(id: &str) -> String {
    format!("/apis/{}", segment(id))
}

fn create(place: &Place, args: ApiCreateArgs, out: Out) -> anyhow::Result<()> {
    let mut body = json!({ "audience": args.audience, "scopes": args.scopes, "signing_alg": args.alg });
    if let Some(name) = &args.name {
        body["name"] = name.as_str().into();
    }
    if let Some(lifetime) = args.token_lifetime {
        body["token_lifetime_secs"] = lifetime.into();
    }
    let signing: ApiSigning = args.alg.parse().map_err(|e: String| super::Failure::Invalid(e))?;
    let api = place.act("API", Request::post("/apis", Some(body)), |conn, caller, local| {
        let registration = ApiRegistration {
            name: args.name,
            team_id: None,
            audience: args.audience,
            scopes: args.scopes,
            signing,
            token_lifetime_secs: args.token_lifetime,
        };
        apis::register_api(
            conn,
            &local.master_keys.sealer(),
            caller,
            registration,
            local.settings.access_token_ttl_secs,
        )
    })?;
    out.print(&api, || {
        let mut out = format!(
            "Created API {} ({}, tokens live {} s)\n  id:    {}\n  scope: {}\n",
            text(&api, "audience"),
            text(&api, "signing_alg"),
            api["token_lifetime_secs"],
            text(&api, "id"),
            text(&api, "scope")
        );
        if let Some(secret) = api["secret"].as_str() {
            out += &format!("  secret: {secret}\n\nStore the secret now: it is not shown again.");
        }
        out
    })
}
