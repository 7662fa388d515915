//! `latchkey client …`: OAuth clients.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::output::{details, table, text};
use super::{Out, Place, Request, body_as, segment};
use crate::manage::clients::{self, ClientRegistration, ClientUpdate};

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum ClientCommand {
    /// Register a client; its secret is printed once and never again.
    Create(ClientCreateArgs),
    /// List the clients (never their secrets).
    List,
    /// Show one client's settings (never its secret).
    Show { client_id: String },
    /// Change a client's settings; what is not given stays. A list flag given with no values
    /// empties the list (`--scope` alone: no scopes).
    Update(ClientUpdateArgs),
    /// Delete a client with its codes, refresh tokens and consents.
    Delete { client_id: String },
    /// Give a client a new secret, printed once; the old one works for the grace period.
    RotateSecret {
        client_id: String,
        /// Seconds the old secret keeps working (0 to 604800; 0 stops it at once).
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        grace_period: i64,
    },
}

#[derive(Debug, Args)]
pub struct ClientCreateArgs {
    /// A name people will recognise (shown on consent pages).
    #[arg(long)]
    pub name: String,
    /// Grants the client may use: client_credentials, authorization_code, refresh_token,
    /// urn:ietf:params:oauth:grant-type:token-exchange.
    #[arg(long = "grant-type", required = true, num_args = 1..)]
    pub grant_types: Vec<String>,
    /// Scopes the client may be granted.
    #[arg(long = "scope", num_args = 1..)]
    pub scopes: Vec<String>,
    /// Audiences (registered APIs) the client may request tokens for; the first is the default.
    #[arg(long = "audience", num_args = 1..)]
    pub audiences: Vec<String>,
    /// Redirect URIs, matched exactly.
    #[arg(long = "redirect-uri", num_args = 1..)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return the browser, matched exactly.
    #[arg(long = "post-logout-redirect-uri", num_args = 1..)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; authorization code with PKCE only).
    #[arg(long)]
    pub public: bool,
    /// Tenant permissions of the client's own service principal, which its
    /// client-credentials tokens for the management API carry (`AUDIT_LOG_READ`, `clients:read` …).
    #[arg(long = "permission", num_args = 1..)]
    pub permissions: Vec<String>,
    /// How the client authenticates: client_secret_basic (default), client_secret_post,
    /// client_secret_jwt (HS256 JWTs signed with its secret) or private_key_jwt (with --jwks-file).
    #[arg(long = "auth-method")]
    pub auth_method: Option<String>,
    /// A JWK Set file with a private_key_jwt client's public keys.
    #[arg(long = "jwks-file", conflicts_with = "jwks_uri")]
    pub jwks_file: Option<PathBuf>,
    /// Or the https URL where a private_key_jwt client publishes its public keys.
    #[arg(long = "jwks-uri")]
    pub jwks_uri: Option<String>,
    /// Seconds after a rotation in which a retried refresh gets the same answer instead of
    /// revoking the grant (0 to 300, default 30; 0 turns retries off).
    #[arg(long = "refresh-retry-window", value_name = "SECONDS")]
    pub refresh_retry_window: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ClientUpdateArgs {
    pub client_id: String,
    /// A new name, shown on consent pages.
    #[arg(long)]
    pub name: Option<String>,
    /// The grants it may use (replacing its grants).
    #[arg(long = "grant-type", num_args = 1..)]
    pub grant_types: Option<Vec<String>>,
    /// The scopes it may be granted (replacing them; none given: no scopes).
    #[arg(long = "scope", num_args = 0..)]
    pub scopes: Option<Vec<String>>,
    /// The audiences it may request tokens for, the first the default (replacing them).
    #[arg(long = "audience", num_args = 0..)]
    pub audiences: Option<Vec<String>>,
    /// Its redirect URIs, matched exactly (replacing them).
    #[arg(long = "redirect-uri", num_args = 0..)]
    pub redirect_uris: Option<Vec<String>>,
    /// Where RP-initiated logout may return the browser (replacing them).
    #[arg(long = "post-logout-redirect-uri", num_args = 0..)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Tenant permissions of the client's own service principal.
    #[arg(long = "permission", num_args = 0..)]
    pub permissions: Option<Vec<String>>,
    /// A new JWK Set file (how a private_key_jwt client's keys rotate).
    #[arg(long = "jwks-file", conflicts_with = "jwks_uri")]
    pub jwks_file: Option<PathBuf>,
    /// Or where it publishes its public keys now (replacing a JWK Set).
    #[arg(long = "jwks-uri")]
    pub jwks_uri: Option<String>,
    /// Seconds in which a retried refresh gets the same answer (0 to 300; 0 turns retries off).
    #[arg(long = "refresh-retry-window", value_name = "SECONDS")]
    pub refresh_retry_window: Option<i64>,
}

pub(super) fn run(place: &Place, command: ClientCommand, out: Out) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create(args) => create(place, args, out),
        ClientCommand::List => {
            let clients = place
                .act("clients", Request::get("/clients"), |conn, caller, _| clients::list_clients(conn, caller))?;
            out.print(&clients, || {
                table(
                    &clients,
                    &[("CLIENT ID", "client_id"), ("NAME", "name"), ("GRANTS", "grant_types")],
                    "No clients.",
                )
            })
        }
        ClientCommand::Show { client_id } => {
            let client = place.act(&subject(&client_id), Request::get(path(&client_id)), |conn, caller, _| {
                clients::get_client(conn, caller, &client_id)
            })?;
            out.print(&client, || details(&client))
        }
        ClientCommand::Update(args) => update(place, args, out),
        ClientCommand::Delete { client_id } => {
            place.act(&subject(&client_id), Request::delete(path(&client_id)), |conn, caller, _| {
                clients::delete_client(conn, caller, &client_id)
            })?;
            out.print(&json!({ "deleted": client_id }), || format!("Deleted client {client_id}."))
        }
        ClientCommand::RotateSecret { client_id, grace_period } => {
            let request = Request::post(
                format!("{}/rotate-secret", path(&client_id)),
                Some(json!({ "grace_period_secs": grace_period })),
            );
            let rotated = place.act(&subject(&client_id), request, |conn, caller, local| {
                let grace = chrono::TimeDelta::try_seconds(grace_period).unwrap_or(chrono::TimeDelta::MAX);
                let (hasher, sealer) = (local.master_keys.token_hasher(), local.master_keys.sealer());
                clients::rotate_client_secret(conn, &hasher, &sealer, caller, &client_id, grace)
            })?;
            out.print(&rotated, || secret_shown("New secret for client", &rotated))
        }
    }
}

fn subject(client_id: &str) -> String {
    format!("client {client_id} (`latchkey client list` shows them)")
}

fn path(client_id: &str) -> String {
    format!("/clients/{}", segment(client_id))
}

fn read_jwks(path: Option<&Path>) -> anyhow::Result<Option<Value>> {
    path.map(|path| -> anyhow::Result<Value> {
        let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    })
    .transpose()
}

/// A client with its secret, which is shown now and never again.
fn secret_shown(headline: &str, client: &Value) -> String {
    let mut out = format!("{headline} \"{}\"\n  client_id:     {}\n", text(client, "name"), text(client, "client_id"));
    if let Some(secret) = client["client_secret"].as_str() {
        out += &format!("  client_secret: {secret}\n\nStore the secret now: it is not shown again.");
    }
    out
}

fn create(place: &Place, args: ClientCreateArgs, out: Out) -> anyhow::Result<()> {
    let jwks = read_jwks(args.jwks_file.as_deref())?;
    let mut body = json!({
        "name": args.name,
        "grant_types": args.grant_types,
        "scopes": args.scopes,
        "audiences": args.audiences,
        "redirect_uris": args.redirect_uris,
        "post_logout_redirect_uris": args.post_logout_redirect_uris,
        "public": args.public,
        "permissions": args.permissions,
    });
    for (field, value) in [
        ("token_endpoint_auth_method", args.auth_method.clone().map(Value::from)),
        ("jwks", jwks.clone()),
        ("jwks_uri", args.jwks_uri.clone().map(Value::from)),
        ("refresh_retry_window_secs", args.refresh_retry_window.map(Value::from)),
    ] {
        if let Some(value) = value {
            body[field] = value;
        }
    }
    let client = place.act("client", Request::post("/clients", Some(body)), |conn, caller, local| {
        let registration = ClientRegistration {
            name: args.name,
            team_id: None,
            grant_types: args.grant_types,
            scopes: args.scopes,
            audiences: args.audiences,
            redirect_uris: args.redirect_uris,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            public: args.public,
            token_endpoint_auth_method: args.auth_method,
            permissions: args.permissions,
            jwks,
            acts_for_users: false,
            jwks_uri: args.jwks_uri,
            refresh_retry_window_secs: args.refresh_retry_window,
        };
        let (hasher, sealer) = (local.master_keys.token_hasher(), local.master_keys.sealer());
        clients::register_client(conn, &hasher, &sealer, caller, registration)
    })?;
    out.print(&client, || secret_shown("Created client", &client))
}

fn update(place: &Place, args: ClientUpdateArgs, out: Out) -> anyhow::Result<()> {
    let mut body = json!({});
    for (field, value) in [
        ("name", args.name.map(Value::from)),
        ("grant_types", args.grant_types.map(Value::from)),
        ("scopes", args.scopes.map(Value::from)),
        ("audiences", args.audiences.map(Value::from)),
        ("redirect_uris", args.redirect_uris.map(Value::from)),
        ("post_logout_redirect_uris", args.post_logout_redirect_uris.map(Value::from)),
        ("permissions", args.permissions.map(Value::from)),
        ("jwks", read_jwks(args.jwks_file.as_deref())?),
        ("jwks_uri", args.jwks_uri.map(Value::from)),
        ("refresh_retry_window_secs", args.refresh_retry_window.map(Value::from)),
    ] {
        if let Some(value) = value {
            body[field] = value;
        }
    }
    if body.as_object().is_some_and(serde_json::Map::is_empty) {
        return Err(super::Failure::Invalid("nothing to change: give at least one setting (see --help)".into()).into());
    }
    let client_id = args.client_id;
    let client =
        place.act(&subject(&client_id), Request::patch(path(&client_id), body.clone()), |conn, caller, _| {
            clients::update_client(conn, caller, &client_id, body_as::<ClientUpdate>(&body)?)
        })?;
    out.print(&client, || format!("Updated client {client_id}.\n{}", details(&client)))
}
