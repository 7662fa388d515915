//! `latchkey api-key …` (keys for the management API) and `latchkey keys …` (the keys that
//! sign tokens).

use std::io::BufRead;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::output::{cell, details, table, text};
use super::{Failure, Out, Place, Request, body_as, segment};
use crate::db;
use crate::domain::SigningAlgorithm;
use crate::manage::{api_keys, signing_keys};

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; it is printed once and never again.
    Create(ApiKeyCreateArgs),
    /// List the keys: prefix and last four only.
    List,
    /// Show one key by its id (never the key itself).
    Show { id: String },
    /// What a key in hand is and may do: kind, owner, permissions, reach, expiry, last use.
    /// The key is read from standard input when KEY is `-` (so that it stays out of shell
    /// history), never printed, and not counted as a use.
    Inspect {
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// A new key like this one, printed once; the old one works for the grace period.
    Rotate {
        id: String,
        /// Seconds the old key keeps working (0 to 604800; 0 stops it at once).
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        grace_period: i64,
    },
    /// Revoke a key at once.
    Delete { id: String },
}

/// Kinds of key (INTERFACE §5). A personal key belongs to a person: through a server
/// (`--server`) it is the signed-in person's; the database alone has no person to give it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyKindArg {
    /// Full owner access to the tenant: the key that bootstraps everything else.
    TenantOwner,
    /// A new service account's key, with the permissions given.
    Service,
    /// Only the permissions given.
    Restricted,
    /// A team's key, acting with a role in it.
    Team,
    /// The signed-in person's own key (with --server only).
    Personal,
}

impl KeyKindArg {
    fn wire(self) -> &'static str {
        match self {
            Self::TenantOwner => "tenant_owner",
            Self::Service => "service",
            Self::Restricted => "restricted",
            Self::Team => "team",
            Self::Personal => "personal",
        }
    }
}

#[derive(Debug, Args)]
pub struct ApiKeyCreateArgs {
    /// What kind of key, and so whom it acts for.
    #[arg(long, value_enum)]
    pub kind: KeyKindArg,
    /// A name people will recognise in lists and the audit log.
    #[arg(long)]
    pub name: String,
    /// Restricted keys: what the key may do; service keys: what the new service account may
    /// do (`clients:read`, `AUDIT_LOG_READ` …).
    #[arg(long = "permission", num_args = 1..)]
    pub permissions: Vec<String>,
    /// Service keys: another key for this existing service account.
    #[arg(long)]
    pub service_account: Option<String>,
    /// Team keys: the team's id.
    #[arg(long)]
    pub team: Option<String>,
    /// Team keys: the role it acts with (viewer, editor or admin).
    #[arg(long)]
    pub team_role: Option<String>,
    /// A rate-limit tier (free, standard, premium, unlimited).
    #[arg(long)]
    pub tier: Option<String>,
    /// When it stops working (RFC 3339, e.g. 2027-01-31T00:00:00Z); never, unless given.
    #[arg(long)]
    pub expires_at: Option<DateTime<Utc>>,
}

pub(super) fn run(place: &Place, command: ApiKeyCommand, out: Out) -> anyhow::Result<()> {
    match command {
        ApiKeyCommand::Create(args) => create(place, args, out),
        ApiKeyCommand::List => {
            let keys = place
                .act("API keys", Request::get("/api-keys"), |conn, caller, _| api_keys::list_keys(conn, caller))?;
            out.print(&keys, || {
                let rows: Vec<Value> = keys
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|key| {
                        let mut row = key.clone();
                        row["shown_as"] = format!("{}…{}", text(key, "prefix"), text(key, "last_four")).into();
                        row
                    })
                    .collect();
                table(
                    &Value::Array(rows),
                    &[
                        ("ID", "id"),
                        ("KIND", "kind"),
                        ("NAME", "name"),
                        ("KEY", "shown_as"),
                        ("LAST USED", "last_used_at"),
                        ("EXPIRES", "expires_at"),
                    ],
                    "No API keys.",
                )
            })
        }
        ApiKeyCommand::Show { id } => {
            let key = place
                .act(&subject(&id), Request::get(path(&id)), |conn, caller, _| api_keys::get_key(conn, caller, &id))?;
            out.print(&key, || details(&key))
        }
        ApiKeyCommand::Inspect { key } => inspect(place, &key, out),
        ApiKeyCommand::Rotate { id, grace_period } => {
            let request =
                Request::post(format!("{}/rotate", path(&id)), Some(json!({ "grace_period_secs": grace_period })));
            let rotated = place.act(&subject(&id), request, |conn, caller, local| {
                let grace = chrono::TimeDelta::try_seconds(grace_period).unwrap_or(chrono::TimeDelta::MAX);
                let hasher = local.master_keys.token_hasher();
                api_keys::rotate_key(conn, &hasher, local.settings.environment, caller, &id, grace)
            })?;
            out.print(&rotated, || key_shown("Rotated: the new", &rotated))
        }
        ApiKeyCommand::Delete { id } => {
            place.act(&subject(&id), Request::delete(path(&id)), |conn, caller, _| {
                api_keys::delete_key(conn, caller, &id)
            })?;
            out.print(&json!({ "revoked": id }), || format!("Revoked API key {id}: it stops working at once."))
        }
    }
}

fn subject(id: &str) -> String {
    format!("API key {id} (`latchkey api-key list` shows them)")
}

fn path(id: &str) -> String {
    format!("/api-keys/{}", segment(id))
}

/// A new key, shown now and never again.
fn key_shown(headline: &str, created: &Value) -> String {
    format!(
        "{headline} {} key \"{}\" ({})\n  {}\n\nStore the key now: it is not shown again.",
        text(created, "kind").replace('_', " "),
        text(created, "name"),
        text(created, "id"),
        text(created, "key")
    )
}

fn create(place: &Place, args: ApiKeyCreateArgs, out: Out) -> anyhow::Result<()> {
    let mut body = json!({ "kind": args.kind.wire(), "name": args.name });
    for (field, value) in [
        ("permissions", (!args.permissions.is_empty()).then(|| Value::from(args.permissions))),
        ("service_account_id", args.service_account.map(Value::from)),
        ("team_id", args.team.map(Value::from)),
        ("team_role", args.team_role.map(Value::from)),
        ("tier", args.tier.map(Value::from)),
        ("expires_at", args.expires_at.map(|at| Value::from(at.to_rfc3339()))),
    ] {
        if let Some(value) = value {
            body[field] = value;
        }
    }
    let created = place.act("API key", Request::post("/api-keys", Some(body.clone())), |conn, caller, local| {
        let request = body_as::<api_keys::KeyRequest>(&body)?;
        api_keys::create_key(conn, &local.master_keys.token_hasher(), local.settings.environment, caller, request)
    })?;
    out.print(&created, || key_shown("Created", &created))
}

/// The key to inspect: the argument, or the first line of standard input for `-`.
fn key_in_hand(argument: &str) -> anyhow::Result<String> {
    if argument != "-" {
        return Ok(argument.trim().to_owned());
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("could not read the key from standard input")?;
    Ok(line.trim().to_owned())
}

fn inspect(place: &Place, argument: &str, out: Out) -> anyhow::Result<()> {
    let key = key_in_hand(argument)?;
    if key.is_empty() {
        return Err(Failure::Invalid("no key given: pass it, or `-` to read it from standard input".into()).into());
    }
    let inspected = match place {
        Place::Local(settings) => {
            let (mut conn, master_keys) = super::open(settings)?;
            let inspection = api_keys::inspect_key(&mut conn, &master_keys.token_hasher(), settings.environment, &key)
                .map_err(|error| {
                    super::local_failure("such key: it is unknown, or was deleted with its owner", error)
                })?;
            serde_json::to_value(inspection)?
        }
        Place::Remote(remote) => remote.inspect(&key)?,
    };
    out.print(&inspected, || {
        let standing = match text(&inspected, "standing") {
            "" | "live" => "works now".to_owned(),
            "owner_not_active" => "does not work: its user is not active".to_owned(),
            other => format!("does not work: {other}"),
        };
        let everything = "everything in the tenant (owner)".to_owned();
        let can = match &inspected["reach"] {
            // A server's answer: the key's own permissions.
            Value::Null if cell(&inspected["permissions"]) == "*" => everything,
            Value::Null => cell(&inspected["permissions"]),
            reach if reach["owner"].as_bool() == Some(true) => everything,
            reach => {
                let tenant_wide = reach["permissions"]
                    .as_array()
                    .filter(|permissions| !permissions.is_empty())
                    .map(|_| format!("tenant-wide: {}", cell(&reach["permissions"])));
                let teams = reach["teams"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|team| format!("team {} as {}", text(team, "team_id"), text(team, "role")));
                let parts: Vec<String> = tenant_wide.into_iter().chain(teams).collect();
                if parts.is_empty() { "nothing".to_owned() } else { parts.join("; ") }
            }
        };
        format!(
            "{} key \"{}\" ({}…{}, id {}): {standing}\n  may do:     {can}\n  owner:      {}\n  expires:    {}\n  last used:  {}",
            text(&inspected, "kind").replace('_', " "),
            text(&inspected, "name"),
            text(&inspected, "prefix"),
            text(&inspected, "last_four"),
            text(&inspected, "id"),
            owner(&inspected),
            inspected["expires_at"].as_str().unwrap_or("never"),
            match inspected["last_used_at"].as_str() {
                Some(at) => format!("{at} from {}", cell(&inspected["last_used_ip"])),
                None => "never".to_owned(),
            },
        )
    })
}

/// Whom a key belongs to, as its view names them.
fn owner(key: &Value) -> String {
    for (field, what) in [("user_id", "user"), ("service_account_id", "service account"), ("team_id", "team")] {
        if let Some(id) = key[field].as_str() {
            return format!("{what} {id}");
        }
    }
    "the tenant".to_owned()
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key the one that signs; the previous one stays published until its tokens expire.
    Rotate {
        /// The new key's algorithm.
        #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA"])]
        alg: String,
    },
    /// Take a retired key out of the JWKS now, for a key that leaked: its tokens stop verifying.
    Withdraw {
        /// The key's kid (`latchkey keys list`). A kid is base64url and may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// List every signing key with its state.
    List,
}

pub(super) fn run_signing(place: &Place, command: KeysCommand, out: Out) -> anyhow::Result<()> {
    // A server switches at once; others (and any server, after a local change) within their
    // key refresh interval.
    let switch = match place {
        Place::Local(settings) => format!("within {} seconds", settings.key_refresh_secs),
        Place::Remote(_) => "within their key refresh interval".to_owned(),
    };
    match command {
        KeysCommand::Rotate { alg } => {
            let algorithm: SigningAlgorithm = alg.parse().map_err(|e: String| Failure::Invalid(e))?;
            let request = Request::post("/signing-keys/rotate", Some(json!({ "algorithm": alg })));
            let rotated = place.act("signing key", request, |conn, caller, local| {
                let window = signing_keys::retirement_window(
                    conn,
                    local.settings.access_token_ttl_secs,
                    local.settings.key_refresh_secs,
                )?;
                Ok(signing_keys::rotate_key(
                    conn,
                    &local.master_keys.sealer(),
                    &caller.audit,
                    algorithm,
                    window,
                    db::now(),
                )?)
            })?;
            out.print(&rotated, || {
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
        KeysCommand::Withdraw { kid } => {
            let subject = format!("signing key {kid} (`latchkey keys list` shows them)");
            let request = Request::post(format!("/signing-keys/{}/withdraw", segment(&kid)), None);
            let withdrawn = place
                .act(&subject, request, |conn, caller, _| signing_keys::withdraw_signing_key(conn, caller, &kid))?;
            out.print(&withdrawn, || {
                format!(
                    "Withdrew {} key {}: it is no longer published, and tokens it signed no longer verify.\n\
                     Running servers drop it {switch}; services that cache the JWKS, within their \
                     cache lifetime (Latchkey sends max-age=300).",
                    text(&withdrawn, "algorithm"),
                    text(&withdrawn, "kid"),
                )
            })
        }
        KeysCommand::List => {
            let keys = place.act("signing keys", Request::get("/signing-keys"), |conn, caller, _| {
                signing_keys::list_signing_keys(conn, caller)
            })?;
            out.print(&keys, || {
                table(
                    &keys,
                    &[
                        ("KID", "kid"),
                        ("ALG", "algorithm"),
                        ("STATE", "state"),
                        ("CREATED", "created_at"),
                        ("PUBLISHED UNTIL", "published_until"),
                    ],
                    "No signing keys yet: `latchkey serve` makes the first.",
                )
            })
        }
    }
}
