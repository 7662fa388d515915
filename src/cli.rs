//! The `latchkey` command line (INTERFACE §1). `main.rs` only parses and dispatches here.
//! Management commands act on the configured database, or with `--server` (or
//! `LATCHKEY_SERVER`) on a running server through its management API, signed in with
//! `latchkey login` ([`remote`]). Both print the same JSON.
//!
//! Floor: entry (docs/architecture.md); wires the CLI onto `manage`.

pub mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};

use self::remote::{CredentialStore, Remote, ServerUrl};

use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db::{self, DbConnection};
use crate::domain::ApiSigning;
use crate::domain::SigningAlgorithm;
use crate::error::AppError;
use crate::manage::apis::ApiRegistration;
use crate::manage::clients::ClientRegistration;
use crate::manage::users::UserRegistration;
use crate::manage::{self, Caller};
use crate::passwords::PasswordHasher;
use crate::startup::Application;
use crate::tokens::KeySet;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "An OAuth 2.0 / OpenID Connect authorization server",
    long_about = "An OAuth 2.0 / OpenID Connect authorization server.\n\n\
                  Without a subcommand, `latchkey` serves. Settings come from the configuration file \
                  (optional) and LATCHKEY_* environment variables, which take precedence."
)]
pub struct Cli {
    /// Configuration file [default: latchkey.toml, read if present]. A file named here (or in
    /// LATCHKEY_CONFIG) must exist.
    #[arg(long, global = true, env = "LATCHKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// A running server to manage through its management API instead of the local
    /// database, with the key `latchkey login` kept for it (e.g. https://auth.example.com).
    #[arg(long, global = true, env = "LATCHKEY_SERVER")]
    pub server: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default): migrations run first, a signing key is made if none exists.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective settings and where each came from (default, file, environment);
    /// secrets are never printed.
    Config {
        #[arg(long)]
        json: bool,
    },
    /// Register and list OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Register APIs (resource servers): audience, scopes, signing algorithm.
    #[command(subcommand)]
    Api(ApiCommand),
    /// List and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create API keys for the management API.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Create users who sign in through the browser.
    #[command(subcommand)]
    User(UserCommand),
    /// Sign in to a running server (--server) in the browser; the API key you choose there is
    /// kept in your configuration directory, readable by you only.
    Login {
        /// The kind of key the page offers first (you may choose another there): personal,
        /// restricted, team, service or tenant-owner.
        #[arg(long, default_value = "personal", value_parser = ["personal", "restricted", "team", "service", "tenant-owner"])]
        kind: String,
        /// The client that asks for the key; Latchkey's built-in command-line client by default.
        #[arg(long)]
        client_id: Option<String>,
        /// Print JSON for scripts (the key itself is never printed).
        #[arg(long)]
        json: bool,
    },
    /// Revoke the key kept for the server (--server) and forget it.
    Logout {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input, never from the command line.
    Create(UserCreateArgs),
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
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
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant, reason = "parsed once per process")]
pub enum ClientCommand {
    /// Register a client; its secret is printed once and never again.
    Create(ClientCreateArgs),
    /// List the clients (never their secrets).
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
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
    pub jwks_file: Option<std::path::PathBuf>,
    /// Or the https URL where a private_key_jwt client publishes its public keys.
    #[arg(long = "jwks-uri")]
    pub jwks_uri: Option<String>,
    /// Seconds after a rotation in which a retried refresh gets the same answer instead of
    /// revoking the grant (0 to 300, default 30; 0 turns retries off).
    #[arg(long = "refresh-retry-window", value_name = "SECONDS")]
    pub refresh_retry_window: Option<i64>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Register an API; an HS256 API's shared secret is printed once.
    Create(ApiCreateArgs),
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
    #[arg(long)]
    pub token_lifetime: Option<i64>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key the one that signs; the previous one stays published until its tokens expire.
    Rotate {
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA"])]
        alg: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Take a retired key out of the JWKS now, for a key that leaked: its tokens stop verifying.
    Withdraw {
        /// The key's kid (`latchkey keys list`).
        kid: String,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List every signing key with its state.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once and never again.
    Create(ApiKeyCreateArgs),
}

/// Kinds the command line creates; the others are created through the management API.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BootstrapKeyKind {
    /// Full owner access to the tenant: the key that bootstraps everything else.
    TenantOwner,
}

#[derive(Debug, Args)]
pub struct ApiKeyCreateArgs {
    #[arg(long, value_enum)]
    pub kind: BootstrapKeyKind,
    #[arg(long)]
    pub name: String,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// The configuration file read when none is named, if it exists.
const DEFAULT_CONFIG_FILE: &str = "latchkey.toml";

/// Where a management command acts: the configured database, or a running server.
enum Place {
    Local(Settings),
    Remote(Remote),
}

/// Runs a parsed command line; the exit code is 2 for bad configuration, 1 for failures.
pub fn run(cli: Cli) -> ExitCode {
    let config = match cli.config {
        // Named on purpose: a typo must not quietly mean "defaults".
        Some(named) if !named.is_file() => {
            eprintln!("latchkey: the configuration file {} does not exist", named.display());
            return ExitCode::from(2);
        }
        Some(named) => named,
        None => PathBuf::from(DEFAULT_CONFIG_FILE),
    };
    let settings = match Settings::load(&config) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("latchkey: {error}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init_tracing(settings.log_format);
    let server = match cli.server.as_deref().filter(|s| !s.trim().is_empty()).map(ServerUrl::parse).transpose() {
        Ok(server) => server,
        Err(error) => {
            eprintln!("latchkey: {error:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Config { json }) = cli.command {
        return match show_config(&settings, &config, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("latchkey: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    match dispatch(cli.command.unwrap_or(Command::Serve), settings, server) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("latchkey: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command, settings: Settings, server: Option<ServerUrl>) -> anyhow::Result<()> {
    // LATCHKEY_SERVER may be exported for the management commands; serving here goes on.
    let here_only = |what: &str| {
        if let Some(server) = &server {
            eprintln!("note: `latchkey {what}` acts on this machine; the server {server} is for management commands");
        }
    };
    match command {
        Command::Serve => {
            here_only("serve");
            serve(settings)
        }
        Command::Migrate => {
            here_only("migrate");
            migrate(&settings)
        }
        Command::Login { kind, client_id, json } => login(server, &kind, client_id.as_deref(), json),
        Command::Logout { json } => logout(server, json),
        command => {
            let place = match server {
                Some(server) => Place::Remote(Remote::signed_in(&server, &CredentialStore::default_location()?)?),
                None => Place::Local(settings),
            };
            manage_command(&place, command)
        }
    }
}

fn manage_command(place: &Place, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Client(ClientCommand::Create(args)) => create_client(place, args),
        Command::Client(ClientCommand::List { json }) => list_clients(place, json),
        Command::Api(ApiCommand::Create(args)) => create_api(place, args),
        Command::Keys(KeysCommand::Rotate { alg, json }) => rotate_keys(place, &alg, json),
        Command::Keys(KeysCommand::List { json }) => list_keys(place, json),
        Command::Keys(KeysCommand::Withdraw { kid, json }) => withdraw_key(place, &kid, json),
        Command::ApiKey(ApiKeyCommand::Create(args)) => create_api_key(place, args),
        Command::User(UserCommand::Create(args)) => create_user(place, args),
        Command::Serve | Command::Migrate | Command::Config { .. } | Command::Login { .. } | Command::Logout { .. } => {
            unreachable!("dispatched before")
        }
    }
}

fn needs_server(server: Option<ServerUrl>) -> anyhow::Result<ServerUrl> {
    server.ok_or_else(|| anyhow!("which server? give --server https://… (or set LATCHKEY_SERVER)"))
}

fn login(server: Option<ServerUrl>, kind: &str, client_id: Option<&str>, json: bool) -> anyhow::Result<()> {
    let server = needs_server(server)?;
    let store = CredentialStore::default_location()?;
    let kind = kind.replace('-', "_");
    let signed_in = remote::login(&server, &kind, client_id, &store, |message| eprintln!("{message}"))?;
    print(json, &signed_in, || {
        format!(
            "Signed in to {} with the {} key \"{}\" ({}), kept in {}.",
            signed_in.server,
            signed_in.kind.replace('_', " "),
            signed_in.name,
            signed_in.shown_as,
            signed_in.credentials.display()
        )
    })
}

fn logout(server: Option<ServerUrl>, json: bool) -> anyhow::Result<()> {
    let server = needs_server(server)?;
    let signed_out = remote::logout(&server, &CredentialStore::default_location()?)?;
    print(json, &signed_out, || {
        format!("Signed out of {}: key {} is revoked and forgotten.", signed_out.server, signed_out.key_id)
    })
}

/// `latchkey config`: what this process would run with, and why.
fn show_config(settings: &Settings, config: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let sources = settings.explain(config);
    print(json, &sources, || {
        let width = sources.iter().map(|source| source.setting.len()).max().unwrap_or(0);
        let value_width = sources.iter().map(|source| source.value.chars().count()).max().unwrap_or(0).min(40);
        sources
            .iter()
            .map(|source| format!("{:width$}  {:value_width$}  {}", source.setting, source.value, source.from))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let application = Application::build(settings).await?;
        application.run_until_stopped().await.context("the server stopped with an error")
    })
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::build_pool(&settings.database, 1)?;
    let mut conn = pool.get().context("could not get a database connection")?;
    // build_pool applied everything pending; a second run reports it is up to date.
    let pending = db::run_migrations(&mut conn)?;
    println!(
        "database {} is up to date{}",
        settings.database.describe(),
        if pending.is_empty() { "" } else { " (applied now)" }
    );
    Ok(())
}

/// Opens the database (bringing its schema up to date) and the master key, for one command,
/// only with the master key that opens it, as `serve` insists. Says which database, and
/// whether it had to be made, on standard error (the output stays the command's).
fn open(settings: &Settings) -> anyhow::Result<(r2d2::PooledConnection<db::ConnectionManager>, MasterKey)> {
    let (master_key, is_dev_key) = MasterKey::configured_or_dev(settings.master_key.as_ref())?;
    if is_dev_key {
        eprintln!(
            "warning: LATCHKEY_MASTER_KEY is not set; using the development key in {}",
            crate::crypto::DEV_MASTER_KEY_FILE
        );
    }
    let database = settings.database.describe();
    let pool = match db::open_existing(&settings.database, 1)? {
        Some(pool) => {
            eprintln!("latchkey: using the database {database}");
            pool
        }
        // INTERFACE §1's bootstrap (`latchkey api-key create` before anything else) works on
        // a fresh machine, so a command may make the database; it never does so silently.
        None => {
            let pool = db::build_pool(&settings.database, 1)?;
            eprintln!(
                "latchkey: made a new database at {database}, as there was none; if your server uses another, \
                 set LATCHKEY_DATABASE_URL (or run this where the server runs)"
            );
            pool
        }
    };
    let mut conn = pool.get().context("could not get a database connection")?;
    // What this command seals or hashes must be what the server opens and checks.
    if let Err(error) = KeySet::load(&mut conn, &master_key.sealer(), db::now()) {
        let which = if is_dev_key {
            format!("no master key is set here, so the development key in {}", crate::crypto::DEV_MASTER_KEY_FILE)
        } else {
            "LATCHKEY_MASTER_KEY".to_owned()
        };
        bail!(
            "the master key does not open this database ({which} is not the one it was made with; {error:#}): \
             run the command with the LATCHKEY_MASTER_KEY that `latchkey serve` uses"
        );
    }
    Ok((conn, master_key))
}

/// A command's answer on standard output: JSON, or `human` text. A reader that stops early
/// (`| head`) ends the output, not the command with a panic.
fn print(json: bool, value: &impl Serialize, human: impl FnOnce() -> String) -> anyhow::Result<()> {
    use std::io::Write;
    let text = if json { serde_json::to_string_pretty(value)? } else { human() };
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// A field of a command's JSON answer, for the human-readable summary.
fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or_default()
}

/// A list answer of the management API is `{"data": […]}`; the command prints the list.
fn data(answer: Value) -> Value {
    match answer {
        Value::Object(mut fields) => fields.remove("data").unwrap_or(Value::Array(Vec::new())),
        other => other,
    }
}

fn create_client(place: &Place, args: ClientCreateArgs) -> anyhow::Result<()> {
    let jwks = args
        .jwks_file
        .as_ref()
        .map(|path| -> anyhow::Result<serde_json::Value> {
            let text = std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
        })
        .transpose()?;
    let client = match place {
        Place::Local(settings) => {
            let (mut conn, master_key) = open(settings)?;
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
            serde_json::to_value(manage::clients::register_client(
                &mut conn,
                &master_key.token_hasher(),
                &master_key.sealer(),
                &Caller::system(),
                registration,
            )?)?
        }
        Place::Remote(remote) => {
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
                ("token_endpoint_auth_method", args.auth_method.map(Value::from)),
                ("jwks", jwks),
                ("jwks_uri", args.jwks_uri.map(Value::from)),
                ("refresh_retry_window_secs", args.refresh_retry_window.map(Value::from)),
            ] {
                if let Some(value) = value {
                    body[field] = value;
                }
            }
            remote.call(Method::POST, "/clients", Some(body))?
        }
    };
    print(args.json, &client, || {
        let mut out =
            format!("Created client \"{}\"\n  client_id:     {}\n", text(&client, "name"), text(&client, "client_id"));
        if let Some(secret) = client["client_secret"].as_str() {
            out += &format!("  client_secret: {secret}\n\nStore the secret now: it is not shown again.");
        }
        out
    })
}

fn list_clients(place: &Place, json: bool) -> anyhow::Result<()> {
    let clients = match place {
        Place::Local(settings) => {
            let (mut conn, _) = open(settings)?;
            serde_json::to_value(manage::clients::list_clients(&mut conn, &Caller::system())?)?
        }
        Place::Remote(remote) => data(remote.call(Method::GET, "/clients", None)?),
    };
    print(json, &clients, || {
        let rows = clients.as_array().map(Vec::as_slice).unwrap_or_default();
        if rows.is_empty() {
            return "No clients.".to_owned();
        }
        rows.iter()
            .map(|c| {
                let grants: Vec<&str> =
                    c["grant_types"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                format!("{:<36} {:<30} {}", text(c, "client_id"), text(c, "name"), grants.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn create_api(place: &Place, args: ApiCreateArgs) -> anyhow::Result<()> {
    let api = match place {
        Place::Local(settings) => {
            let (mut conn, master_key) = open(settings)?;
            let signing: ApiSigning = args.alg.parse().map_err(anyhow::Error::msg)?;
            let registration = ApiRegistration {
                name: args.name,
                team_id: None,
                audience: args.audience,
                scopes: args.scopes,
                signing,
                token_lifetime_secs: args.token_lifetime,
            };
            serde_json::to_value(manage::apis::register_api(
                &mut conn,
                &master_key.sealer(),
                &Caller::system(),
                registration,
                settings.access_token_ttl_secs,
            )?)?
        }
        Place::Remote(remote) => {
            let mut body = json!({ "audience": args.audience, "scopes": args.scopes, "signing_alg": args.alg });
            if let Some(name) = args.name {
                body["name"] = name.into();
            }
            if let Some(lifetime) = args.token_lifetime {
                body["token_lifetime_secs"] = lifetime.into();
            }
            remote.call(Method::POST, "/apis", Some(body))?
        }
    };
    print(args.json, &api, || {
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

fn rotate_keys(place: &Place, alg: &str, json: bool) -> anyhow::Result<()> {
    let algorithm: SigningAlgorithm = alg.parse().map_err(anyhow::Error::msg)?;
    let (rotated, switch) = match place {
        Place::Local(settings) => {
            let (mut conn, master_key) = open(settings)?;
            let window = manage::signing_keys::retirement_window(
                &mut conn,
                settings.access_token_ttl_secs,
                settings.key_refresh_secs,
            )?;
            let rotated = manage::signing_keys::rotate_key(
                &mut conn,
                &master_key.sealer(),
                &crate::audit::Context::SYSTEM,
                algorithm,
                window,
                db::now(),
            )?;
            (serde_json::to_value(rotated)?, format!("within {} seconds", settings.key_refresh_secs))
        }
        Place::Remote(remote) => (
            remote.call(Method::POST, "/signing-keys/rotate", Some(json!({ "algorithm": alg })))?,
            "within their key refresh interval".to_owned(),
        ),
    };
    print(json, &rotated, || {
        format!(
            "New {} signing key {}; {} previous key(s) stay published until {}.\n\
             Running servers switch to it {switch}.",
            text(&rotated, "algorithm"),
            text(&rotated, "kid"),
            rotated["retired"],
            text(&rotated, "retired_published_until"),
        )
    })
}

fn withdraw_key(place: &Place, kid: &str, json: bool) -> anyhow::Result<()> {
    let (withdrawn, drop_within) = match place {
        Place::Local(settings) => {
            let (mut conn, _) = open(settings)?;
            let withdrawn =
                manage::signing_keys::withdraw_signing_key(&mut conn, &Caller::system(), kid).map_err(|e| match e {
                    AppError::NotFound => {
                        anyhow::anyhow!("there is no signing key {kid} (`latchkey keys list` shows them)")
                    }
                    other => other.into(),
                })?;
            (serde_json::to_value(withdrawn)?, format!("within {} seconds", settings.key_refresh_secs))
        }
        Place::Remote(remote) => (
            remote.call(Method::POST, &format!("/signing-keys/{kid}/withdraw"), None)?,
            "within their key refresh interval".to_owned(),
        ),
    };
    print(json, &withdrawn, || {
        format!(
            "Withdrew {} key {}: it is no longer published, and tokens it signed no longer verify.\n\
             Running servers drop it {drop_within}; services that cache the JWKS, within their \
             cache lifetime (Latchkey sends max-age=300).",
            text(&withdrawn, "algorithm"),
            text(&withdrawn, "kid"),
        )
    })
}

fn list_keys(place: &Place, json: bool) -> anyhow::Result<()> {
    let keys = match place {
        Place::Local(settings) => {
            let (mut conn, _) = open(settings)?;
            serde_json::to_value(manage::signing_keys::list_signing_keys(&mut conn, &Caller::system())?)?
        }
        Place::Remote(remote) => data(remote.call(Method::GET, "/signing-keys", None)?),
    };
    print(json, &keys, || {
        keys.as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|k| {
                format!(
                    "{:<44} {:<6} {:<19} created {}",
                    text(k, "kid"),
                    text(k, "algorithm"),
                    text(k, "state"),
                    text(k, "created_at")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn create_api_key(place: &Place, args: ApiKeyCreateArgs) -> anyhow::Result<()> {
    let created = match place {
        Place::Local(settings) => {
            let (mut conn, master_key): (_, MasterKey) = open(settings)?;
            let conn: &mut DbConnection = &mut conn;
            serde_json::to_value(match args.kind {
                BootstrapKeyKind::TenantOwner => manage::api_keys::create_tenant_owner_key(
                    conn,
                    &master_key.token_hasher(),
                    settings.environment,
                    &args.name,
                )?,
            })?
        }
        Place::Remote(remote) => {
            let kind = match args.kind {
                BootstrapKeyKind::TenantOwner => crate::domain::ApiKeyKind::TenantOwner,
            };
            remote.call(Method::POST, "/api-keys", Some(json!({ "kind": kind, "name": args.name })))?
        }
    };
    print(args.json, &created, || {
        format!(
            "Created {} key \"{}\" ({})\n  {}\n\nStore the key now: it is not shown again.",
            text(&created, "kind"),
            text(&created, "name"),
            text(&created, "id"),
            text(&created, "key")
        )
    })
}

fn create_user(place: &Place, args: UserCreateArgs) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("could not read the password from standard input")?;
    let password = SecretString::from(password.trim_end_matches(['\r', '\n']).to_owned());
    let user = match place {
        Place::Local(settings) => {
            let (mut conn, _) = open(settings)?;
            let password = PasswordHasher::new().hash(password.expose_secret())?;
            let registration = UserRegistration { email: args.email, name: args.name, password, role: Some(args.role) };
            serde_json::to_value(manage::users::register_user(&mut conn, &Caller::system(), registration)?)?
        }
        Place::Remote(remote) => {
            let body = json!({
                "email": args.email,
                "name": args.name,
                "password": password.expose_secret(),
                "role": args.role,
            });
            remote.call(Method::POST, "/users", Some(body))?
        }
    };
    print(args.json, &user, || format!("Created user {} ({})", text(&user, "email"), text(&user, "id")))
}
