//! The `latchkey` command line (INTERFACE §1). `main.rs` only parses and dispatches here.
//! Management commands act on the configured database as the operator, or with `--server`
//! (or `LATCHKEY_SERVER`) on a running server through its management API, signed in with
//! `latchkey login` ([`remote`]). Both print the same JSON with `--json`, a table or a
//! summary without it, and end with the same exit codes ([`Failure`]).
//!
//! One module per family of commands; each command is one [`Place::act`]: the `manage`
//! function it runs on the database, and the management API request it sends to a server.
//!
//! Floor: entry (docs/architecture.md); wires the CLI onto `manage`.

mod apis;
mod audit;
mod clients;
mod keys;
mod master_keys;
mod output;
pub mod remote;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use self::output::print;
use self::remote::{CredentialStore, Remote, ServerUrl};

use crate::config::Settings;
use crate::crypto::MasterKeyRing;
use crate::db::{self, DbConnection};
use crate::error::AppError;
use crate::manage::Caller;
use crate::startup::Application;
use crate::tokens::KeySet;

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "An OAuth 2.0 / OpenID Connect authorization server",
    long_about = "An OAuth 2.0 / OpenID Connect authorization server.\n\n\
                  Without a subcommand, `latchkey` serves. Settings come from the configuration file \
                  (optional) and LATCHKEY_* environment variables, which take precedence.\n\n\
                  Management commands act on the configured database, or on a running server with \
                  --server. Exit codes: 0 done, 1 failed, 2 bad usage, input or setting, 3 not found.",
    after_help = "Exit codes: 0 done, 1 failed, 2 bad usage, input or setting, 3 not found."
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
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
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
    Config,
    /// Copy the SQLite database to FILE (a new file) while it serves: one consistent moment,
    /// checked before it is reported. PostgreSQL is backed up with pg_dump instead.
    Backup {
        /// Where the copy goes; it must not exist yet.
        file: PathBuf,
    },
    /// OAuth clients: register, list, show, change, delete, rotate secrets.
    #[command(subcommand)]
    Client(clients::ClientCommand),
    /// APIs (resource servers): audience, scopes, signing algorithm, token lifetime.
    #[command(subcommand)]
    Api(apis::ApiCommand),
    /// Signing keys: list, rotate, withdraw.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The master key: generate a new one, see which the database uses, rotate to a new one.
    #[command(subcommand, name = "master-key")]
    MasterKey(master_keys::MasterKeyCommand),
    /// API keys for the management API: create, list, show, inspect, rotate, revoke.
    #[command(subcommand, name = "api-key")]
    ApiKey(keys::ApiKeyCommand),
    /// People who sign in through the browser.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Teams and their members.
    #[command(subcommand)]
    Team(users::TeamCommand),
    /// What people allowed apps to do: list, withdraw.
    #[command(subcommand)]
    Consent(audit::ConsentCommand),
    /// The audit log, newest first; --follow prints new events as they happen.
    Audit(audit::AuditArgs),
    /// Ask the server this configuration runs (its `bind` address) whether it is up:
    /// `GET /healthz` (or `/readyz` with --ready, which also needs the database). Exit 0 when
    /// it answers 200, 1 otherwise: a container's or service manager's health check.
    Healthcheck {
        /// Ask `/readyz`: up, and the database answers.
        #[arg(long)]
        ready: bool,
    },
    /// Print shell completions: `latchkey completions bash > /etc/bash_completion.d/latchkey`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page latchkey(1), or with --dir write one page per command there
    /// (latchkey.1, latchkey-client.1, latchkey-client-create.1 …).
    Man {
        /// Write every page into this directory (e.g. /usr/local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
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
    },
    /// Revoke the key kept for the server (--server) and forget it.
    Logout,
}

/// Why a command failed, where that decides its exit code; any other error is a failure (1).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// What the command names does not exist (exit 3).
    #[error("{0}")]
    NotFound(String),
    /// The command's input is wrong (exit 2, as for bad usage).
    #[error("{0}")]
    Invalid(String),
}

impl Failure {
    fn exit_code(error: &anyhow::Error) -> ExitCode {
        match error.downcast_ref::<Failure>() {
            Some(Failure::NotFound(_)) => ExitCode::from(3),
            Some(Failure::Invalid(_)) => ExitCode::from(2),
            None => ExitCode::FAILURE,
        }
    }
}

/// The configuration file read when none is named, if it exists.
const DEFAULT_CONFIG_FILE: &str = "latchkey.toml";

/// Runs a parsed command line; see [`Failure`] for the exit codes.
pub fn run(cli: Cli) -> ExitCode {
    // Generated from the definitions alone: a broken configuration must not stop them.
    match &cli.command {
        Some(Command::Completions { shell }) => return finish(completions(*shell)),
        Some(Command::Man { dir }) => return finish(man(dir.as_deref())),
        _ => {}
    }
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
    finish(match cli.command.unwrap_or(Command::Serve) {
        Command::Config => show_config(&settings, &config, cli.json),
        command => dispatch(command, settings, server, cli.json),
    })
}

/// A command's end: its error on standard error, and the exit code.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("latchkey: {error:#}");
            Failure::exit_code(&error)
        }
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "latchkey", &mut script);
    output::write_out(&script)
}

fn man(dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let command = <Cli as clap::CommandFactory>::command();
    match dir {
        Some(dir) => {
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("could not write the pages to {}", dir.display()))?;
            eprintln!("latchkey: wrote the manual pages to {}", dir.display());
            Ok(())
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            output::write_out(&page)
        }
    }
}

fn dispatch(command: Command, settings: Settings, server: Option<ServerUrl>, json: bool) -> anyhow::Result<()> {
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
        Command::Healthcheck { ready } => healthcheck(&settings, ready),
        Command::Backup { file } => {
            here_only("backup");
            backup(&settings, &file, json)
        }
        Command::MasterKey(command) => {
            here_only("master-key");
            master_keys::run(&settings, command, json)
        }
        Command::Login { kind, client_id } => login(server, &kind, client_id.as_deref(), json),
        Command::Logout => logout(server, json),
        command => {
            let place = match server {
                Some(server) => Place::Remote(Remote::signed_in(&server, &CredentialStore::default_location()?)?),
                None => Place::Local(Box::new(LocalDb::new(settings))),
            };
            let out = Out { json };
            match command {
                Command::Client(command) => clients::run(&place, command, out),
                Command::Api(command) => apis::run(&place, command, out),
                Command::Keys(command) => keys::run_signing(&place, command, out),
                Command::ApiKey(command) => keys::run(&place, command, out),
                Command::User(command) => users::run(&place, command, out),
                Command::Team(command) => users::run_team(&place, command, out),
                Command::Consent(command) => audit::run_consent(&place, command, out),
                Command::Audit(args) => audit::run(&place, args, out),
                Command::Serve
                | Command::Migrate
                | Command::Config
                | Command::Completions { .. }
                | Command::Man { .. }
                | Command::Backup { .. }
                | Command::MasterKey(_)
                | Command::Healthcheck { .. }
                | Command::Login { .. }
                | Command::Logout => {
                    unreachable!("dispatched before")
                }
            }
        }
    }
}

/// How a command prints its answer.
#[derive(Debug, Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    /// `value` as JSON, or as `human` text.
    fn print(self, value: &impl Serialize, human: impl FnOnce() -> String) -> anyhow::Result<()> {
        print(self.json, value, human)
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

/// `latchkey healthcheck`: the server of these settings, asked on this machine.
fn healthcheck(settings: &Settings, ready: bool) -> anyhow::Result<()> {
    let mut address = settings.bind;
    if address.ip().is_unspecified() {
        // Listening everywhere includes here.
        address.set_ip(if address.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let scheme = if settings.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{address}{}", if ready { "/readyz" } else { "/healthz" });
    let status = tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            // The certificate names the public host, not this address; the probe sends
            // nothing secret and only reads a status.
            .danger_accept_invalid_certs(true)
            .build()?
            .get(&url)
            .send()
            .await
            .map(|response| response.status())
    });
    match status {
        Ok(status) if status.is_success() => Ok(()),
        Ok(status) => bail!("{url} answered {status}"),
        Err(error) => Err(anyhow::Error::new(error).context(format!("{url} did not answer"))),
    }
}

/// `latchkey backup FILE`: a copy of the SQLite database, taken while it serves.
fn backup(settings: &Settings, file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    if !matches!(settings.database, crate::config::DatabaseTarget::Sqlite(_)) {
        return Err(Failure::Invalid(
            "`latchkey backup` copies a SQLite database; back up PostgreSQL with pg_dump \
             (docs/deployment.md, \"Backups\")"
                .into(),
        )
        .into());
    }
    if file.exists() {
        return Err(
            Failure::Invalid(format!("{} exists: a backup never overwrites; name a new file", file.display())).into()
        );
    }
    let (mut conn, _) = open_database(settings, IfMissing::Refuse)?;
    let report = db::back_up_sqlite(&mut conn, file)?;
    print(json, &report, || {
        format!(
            "Backed up {} to {} ({} bytes, schema {}). To restore it, see docs/deployment.md, \"Backups\".",
            settings.database.describe(),
            report.file.display(),
            report.bytes,
            report.schema_version
        )
    })
}

/// Where a management command acts: the configured database, or a running server.
enum Place {
    Local(Box<LocalDb>),
    Remote(Remote),
}

/// The configured database, opened (its master key checked) at the first step of a command
/// and kept for the others: a command of several steps opens it, and says which it is, once.
struct LocalDb {
    settings: Settings,
    opened: std::cell::RefCell<Option<(db::PooledDb, Arc<MasterKeyRing>)>>,
}

impl LocalDb {
    fn new(settings: Settings) -> Self {
        Self { settings, opened: std::cell::RefCell::new(None) }
    }
}

impl std::ops::Deref for LocalDb {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.settings
    }
}

/// The database a local command acts on, opened for it.
struct Local<'s> {
    master_keys: Arc<MasterKeyRing>,
    settings: &'s Settings,
}

/// A management API request: the remote side of a command.
struct Request {
    method: Method,
    /// Under `/api/v1`.
    path: String,
    body: Option<Value>,
}

impl Request {
    fn get(path: impl Into<String>) -> Self {
        Self { method: Method::GET, path: path.into(), body: None }
    }

    fn post(path: impl Into<String>, body: Option<Value>) -> Self {
        Self { method: Method::POST, path: path.into(), body }
    }

    fn patch(path: impl Into<String>, body: Value) -> Self {
        Self { method: Method::PATCH, path: path.into(), body: Some(body) }
    }

    fn put(path: impl Into<String>, body: Value) -> Self {
        Self { method: Method::PUT, path: path.into(), body: Some(body) }
    }

    fn delete(path: impl Into<String>) -> Self {
        Self { method: Method::DELETE, path: path.into(), body: None }
    }
}

impl Place {
    /// One management action: `local` on the database, as the operator, or `request` on the
    /// server. `subject` names what the command is about ("client abc"), for "there is no …".
    /// A list answer of the API (`{"data": […]}`) comes back as the list, as `local` gives it.
    fn act<T: Serialize>(
        &self,
        subject: &str,
        request: Request,
        local: impl FnOnce(&mut DbConnection, &Caller<'_>, &Local<'_>) -> Result<T, AppError>,
    ) -> anyhow::Result<Value> {
        match self {
            Place::Local(database) => {
                let mut opened = database.opened.borrow_mut();
                if opened.is_none() {
                    *opened = Some(open(&database.settings)?);
                }
                let (conn, master_keys) = opened.as_mut().expect("opened above");
                let account = operator_account();
                let caller = Caller::operator(account.as_deref());
                let local_db = Local { master_keys: master_keys.clone(), settings: &database.settings };
                let answer = local(conn, &caller, &local_db);
                announce_local_writes(conn, &database.settings);
                let answer = answer.map_err(|error| local_failure(subject, error))?;
                Ok(serde_json::to_value(answer)?)
            }
            Place::Remote(remote) => {
                let answer = remote.call(request.method, &request.path, request.body)?;
                Ok(match answer {
                    Value::Object(mut fields) if fields.contains_key("data") && !fields.contains_key("next_cursor") => {
                        fields.remove("data").unwrap_or_default()
                    }
                    other => other,
                })
            }
        }
    }
}

/// Tells the running instances what a local command wrote, so that none keeps using a key,
/// client or API it changed (`db::changes`).
fn announce_local_writes(conn: &mut db::DbConnection, settings: &Settings) {
    let written = db::changes::take_written();
    if written.is_empty() {
        return;
    }
    if let Err(error) = db::changes::announce(conn, &written.to_message()) {
        tracing::warn!(%error, "could not tell the running instances of this change; their caches age out");
    }
    crate::changefeed::announce_from_command_line(settings, written);
}

/// Who runs a local command, as the audit log records it: their account on this machine.
fn operator_account() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"].iter().find_map(|name| std::env::var(name).ok()).filter(|name| !name.is_empty())
}

/// A refusal of `manage` as the command line says it.
fn local_failure(subject: &str, error: AppError) -> anyhow::Error {
    match error {
        AppError::NotFound => Failure::NotFound(format!("there is no {subject}")).into(),
        AppError::BadRequest(message) => Failure::Invalid(message).into(),
        AppError::Forbidden(message) | AppError::Conflict(message) => anyhow!(message),
        other => anyhow::Error::new(other),
    }
}

/// `id` as one segment of a management API path: what would end or split it is escaped.
fn segment(id: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'/').add(b'?').add(b'\\');
    utf8_percent_encode(id, SEGMENT).to_string()
}

/// A request body for `manage` from the one the management API takes, so that both places
/// read a command's flags the same way.
fn body_as<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, AppError> {
    serde_json::from_value(body.clone()).map_err(|error| AppError::BadRequest(error.to_string()))
}

/// What a command does when there is no database where the settings point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfMissing {
    /// Make it, and say so.
    Create,
    /// Fail, naming where it looked.
    Refuse,
}

/// Opens the database (bringing its schema up to date) and the master key, for one command,
/// only with the master key that opens it, as `serve` insists. Says which database, and
/// whether it had to be made, on standard error (the output stays the command's).
fn open(settings: &Settings) -> anyhow::Result<(db::PooledDb, Arc<MasterKeyRing>)> {
    open_database(settings, IfMissing::Create)
}

fn open_database(settings: &Settings, if_missing: IfMissing) -> anyhow::Result<(db::PooledDb, Arc<MasterKeyRing>)> {
    let (master_keys, is_dev_key) =
        MasterKeyRing::configured_or_dev(settings.master_key.as_ref(), &settings.previous_master_keys)?;
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
        None if if_missing == IfMissing::Refuse => {
            return Err(Failure::NotFound(format!(
                "there is no Latchkey database at {database}: set LATCHKEY_DATABASE_URL (or run this where the server runs)"
            ))
            .into());
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
    // What this command seals or hashes must be what the server opens and checks: under the
    // database's current master key, which this command must hold.
    let opened = crate::manage::master_keys::adopt(&mut conn, &master_keys, db::now())
        .and_then(|_| KeySet::load(&mut conn, &master_keys.sealer(), db::now()));
    if let Err(error) = opened {
        let which = if is_dev_key {
            format!("no master key is set here, so the development key in {}", crate::crypto::DEV_MASTER_KEY_FILE)
        } else {
            "LATCHKEY_MASTER_KEY".to_owned()
        };
        bail!(
            "the master key does not open this database ({which} is not its current master key; {error:#}): \
             run the command with the LATCHKEY_MASTER_KEY that `latchkey serve` uses"
        );
    }
    Ok((conn, master_keys))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_command_is_documented_and_its_flags_are_consistent() {
        fn walk(command: &clap::Command, path: &str) {
            for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
                let path = format!("{path} {}", sub.get_name());
                assert!(sub.get_about().is_some(), "`{path}` has no help text");
                for arg in sub.get_arguments().filter(|arg| !arg.is_positional()) {
                    assert!(arg.get_help().is_some(), "`{path} --{}` has no help text", arg.get_id());
                }
                walk(sub, &path);
            }
        }
        let cli = super::Cli::command();
        cli.clone().debug_assert();
        walk(&cli, "latchkey");
    }

    /// A kid is base64url: one in 32 begins with `-`, which must not read as a flag.
    #[test]
    fn a_kid_that_begins_with_a_hyphen_is_a_kid() {
        use clap::Parser;
        let parsed = super::Cli::try_parse_from(["latchkey", "keys", "withdraw", "-rX0a", "--json"]).unwrap();
        assert!(parsed.json);
        assert!(format!("{:?}", parsed.command).contains("\"-rX0a\""), "{:?}", parsed.command);
    }
}
