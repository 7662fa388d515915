//! `latchkey master-key`: make a new key, see which keys the database uses, rotate. These act
//! on the database only: the master keys never leave the machine they are configured on.

use clap::Subcommand;

use super::output::{print, write_out};
use super::{IfMissing, announce_local_writes, open_database, operator_account};
use crate::config::Settings;
use crate::crypto::MasterKey;
use crate::db;
use crate::manage::Caller;
use crate::manage::master_keys::{self, ColumnCount};

#[derive(Debug, Subcommand)]
pub enum MasterKeyCommand {
    /// Print a new random master key (standard output) and its id (standard error).
    Generate,
    /// Which master key the database's hashes and seals use, its earlier keys, the keys this
    /// configuration holds, and how many sealed values are still under an older key.
    Status,
    /// Re-seal every sealed value (signing keys, HS256 API secrets, client_secret_jwt
    /// secrets, authenticator-app secrets) under LATCHKEY_MASTER_KEY and make it current, in
    /// one transaction. The database's current key must be among
    /// LATCHKEY_PREVIOUS_MASTER_KEYS; keep it there for what it hashed (docs/operations.md).
    Rotate,
}

pub fn run(settings: &Settings, command: MasterKeyCommand, json: bool) -> anyhow::Result<()> {
    match command {
        MasterKeyCommand::Generate => {
            let key = MasterKey::generate();
            let id = key.id();
            if json {
                print(true, &serde_json::json!({ "key": key.encode(), "id": id }), String::new)
            } else {
                // The key alone on standard output, for `KEY=$(latchkey master-key generate)`.
                eprintln!("latchkey: a new master key, id {id}; keep it in your secret store, never in a file here");
                write_out(format!("{}\n", key.encode()).as_bytes())
            }
        }
        MasterKeyCommand::Status => {
            let (mut conn, ring) = open_database(settings, IfMissing::Refuse)?;
            let status = master_keys::status(&mut conn, &ring, db::now())?;
            print(json, &status, || {
                let mut lines = vec![format!("current: {}", status.current.as_deref().unwrap_or("-"))];
                let time = |at: &chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
                for key in &status.recorded {
                    let until = key.until.map(|until| format!(" until {}", time(&until))).unwrap_or_default();
                    let held = if key.held { "held here" } else { "not held here" };
                    lines.push(format!("  {} {} since {}{until} ({held})", key.id, key.state, time(&key.since)));
                }
                lines.push("held here:".to_owned());
                lines.extend(status.held.iter().map(|key| format!("  {} from {}", key.id, key.setting)));
                if status.sealed_under_older_keys.is_empty() {
                    lines.push("every sealed value is under the current key".to_owned());
                } else {
                    lines.push(format!(
                        "under an older key, to re-seal with `latchkey master-key rotate`: {}",
                        counts(&status.sealed_under_older_keys)
                    ));
                }
                if status.unopenable > 0 {
                    lines.push(format!("{} sealed values open with no key held here", status.unopenable));
                }
                lines.join("\n")
            })
        }
        MasterKeyCommand::Rotate => {
            let (mut conn, ring) = open_database(settings, IfMissing::Refuse)?;
            let account = operator_account();
            let caller = Caller::operator(account.as_deref());
            let rotation = master_keys::rotate(&mut conn, &ring, &caller.audit, db::now());
            announce_local_writes(&mut conn, settings);
            let rotation = rotation?;
            print(json, &rotation, || {
                let head = if rotation.from == rotation.to {
                    format!("{} was already current", rotation.to)
                } else {
                    format!("the master key is now {} (was {})", rotation.to, rotation.from)
                };
                format!(
                    "{head}; re-sealed {}.\nRunning servers follow within key_refresh_secs ({} s). Keep the \
                     earlier keys in LATCHKEY_PREVIOUS_MASTER_KEYS: what they hashed (API keys, client secrets, \
                     refresh tokens, sessions) is found through them.",
                    counts(&rotation.resealed),
                    settings.key_refresh_secs
                )
            })
        }
    }
}

fn counts(columns: &[ColumnCount]) -> String {
    let moved: Vec<String> =
        columns.iter().filter(|count| count.rows > 0).map(|count| format!("{} {}", count.rows, count.column)).collect();
    if moved.is_empty() { "nothing".to_owned() } else { moved.join(", ") }
}
