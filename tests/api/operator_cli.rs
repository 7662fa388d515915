//! The operator's command line does what the management API does (issue 19): the same
//! commands, run on the database and against a server, list, show, change and delete every
//! resource, print JSON for scripts, and end with the documented exit codes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, TestDb, spawn_app};
use crate::process::migrated;

/// Where `latchkey` acts: the database itself, or a server through its management API
/// with a kept tenant-owner key (what `latchkey login` would have kept).
enum Place {
    Database { db: TestDb, master_key: String },
    Server { url: String, credentials: PathBuf },
}

impl Place {
    fn command(&self, scratch: &Path) -> Command {
        let binary = std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned());
        let mut command = Command::new(binary);
        command
            .current_dir(scratch)
            .env_remove("LATCHKEY_ENVIRONMENT")
            .env("RUST_LOG", "warn")
            .env("USER", "ops-alice");
        match self {
            Place::Database { db, master_key } => {
                command
                    .env("LATCHKEY_DATABASE_URL", db.url())
                    .env("LATCHKEY_MASTER_KEY", master_key)
                    .env_remove("LATCHKEY_SERVER");
            }
            Place::Server { url, credentials } => {
                command
                    .env("LATCHKEY_SERVER", url)
                    .env("LATCHKEY_CREDENTIALS", credentials)
                    .env_remove("LATCHKEY_DATABASE_URL");
            }
        }
        command
    }

    /// `latchkey ARGS`, with `input` on standard input.
    fn run(&self, args: &[&str], input: Option<&str>) -> Output {
        let scratch = tempfile::tempdir().unwrap();
        let mut child = self
            .command(scratch.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        child.stdin.take().unwrap().write_all(input.unwrap_or("").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The JSON a command that must succeed printed.
    fn json(&self, args: &[&str]) -> Value {
        self.json_with(args, None)
    }

    fn json_with(&self, args: &[&str], input: Option<&str>) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all, input);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?} failed ({}): {stderr}", output.status);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: no JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
    }

    /// The exit code and message of a command that must fail.
    fn fails(&self, args: &[&str]) -> (i32, String) {
        let output = self.run(args, None);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{args:?} should fail: {}", String::from_utf8_lossy(&output.stdout));
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout when failing");
        (output.status.code().expect("exited"), stderr)
    }

    fn is_server(&self) -> bool {
        matches!(self, Place::Server { .. })
    }
}

fn id(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_else(|| panic!("{field} in {value}")).to_owned()
}

/// Every family of commands, start to end, as an operator's script would run it.
fn manage_everything(place: &Place) {
    // The bootstrap (INTERFACE §1): an owner credential besides the people, so that an owner
    // may be deactivated.
    let bootstrap = place.json(&["api-key", "create", "--kind", "tenant-owner", "--name", "bootstrap"]);
    assert!(bootstrap["key"].as_str().is_some_and(|key| key.starts_with("sk_test_")));

    // APIs: create, change, refuse a bad value (2), delete while used (1), delete, gone (3).
    let api = place.json(&["api", "create", "--audience", "https://orders.example.com", "--scope", "read", "write"]);
    let api_id = id(&api, "id");
    let changed = place.json(&["api", "update", &api_id, "--name", "Orders", "--token-lifetime", "600"]);
    assert_eq!((changed["name"].as_str(), changed["token_lifetime_secs"].as_i64()), (Some("Orders"), Some(600)));
    let (code, message) = place.fails(&["api", "update", &api_id, "--token-lifetime", "5"]);
    assert_eq!(code, 2, "bad input: {message}");
    assert!(message.contains("token lifetime must be between 60 and 86400"), "{message}");
    assert_eq!(place.json(&["api", "show", &api_id])["name"], "Orders");
    assert!(place.json(&["api", "list"]).as_array().unwrap().iter().any(|a| a["id"] == api_id.as_str()));

    // Clients: create, change (a list flag alone empties the list), rotate, delete.
    let client = place.json(&[
        "client",
        "create",
        "--name",
        "Reports",
        "--grant-type",
        "client_credentials",
        "--scope",
        "read",
        "--audience",
        "https://orders.example.com",
    ]);
    let client_id = id(&client, "client_id");
    let updated = place.json(&["client", "update", &client_id, "--name", "Reports v2", "--scope"]);
    assert_eq!((updated["name"].as_str(), updated["scope"].as_str()), (Some("Reports v2"), Some("")));
    assert!(updated.get("client_secret").is_none(), "never a secret again");
    let (code, _) = place.fails(&["client", "update", &client_id]);
    assert_eq!(code, 2, "nothing to change is bad usage");
    let rotated = place.json(&["client", "rotate-secret", &client_id, "--grace-period", "60"]);
    assert_ne!(rotated["client_secret"], client["client_secret"]);
    assert!(rotated["client_secret"].as_str().is_some_and(|s| s.len() >= 32));
    let (code, message) = place.fails(&["api", "delete", &api_id]);
    assert_eq!(code, 1, "refused while a client uses it: {message}");
    place.json(&["client", "delete", &client_id]);
    let (code, message) = place.fails(&["client", "show", &client_id]);
    assert_eq!(code, 3, "{message}");
    place.json(&["api", "delete", &api_id]);
    assert_eq!(place.fails(&["api", "show", &api_id]).0, 3);

    // Users: create (password on stdin), change the role, deactivate and reactivate.
    let user = place.json_with(
        &["user", "create", "--email", "ann@example.com", "--name", "Ann", "--password-stdin"],
        Some("a long enough password\n"),
    );
    let user_id = id(&user, "id");
    assert_eq!(place.json(&["user", "update", &user_id, "--role", "owner"])["role"], "owner");
    assert_eq!(place.json(&["user", "deactivate", &user_id])["status"], "deactivated");
    assert_eq!(place.json(&["user", "reactivate", &user_id])["status"], "active");
    assert!(place.json(&["user", "list"]).as_array().unwrap().iter().any(|u| u["email"] == "ann@example.com"));

    // Teams and members, by email.
    let team = place.json(&["team", "create", "Platform"]);
    let team_id = id(&team, "id");
    let members = place.json(&["team", "add-member", &team_id, "ann@example.com", "--role", "editor"]);
    assert_eq!(members, place.json(&["team", "show", &team_id])["members"]);
    assert_eq!((members[0]["user_id"].as_str(), members[0]["role"].as_str()), (Some(user_id.as_str()), Some("editor")));
    place.json(&["team", "remove-member", &team_id, "ann@example.com"]);
    assert_eq!(place.json(&["team", "show", &team_id])["members"], json!([]));
    assert_eq!(place.json(&["team", "rename", &team_id, "Infra"])["name"], "Infra");
    place.json(&["team", "delete", &team_id]);
    assert_eq!(place.fails(&["team", "show", &team_id]).0, 3);
    assert_eq!(place.fails(&["team", "add-member", &team_id, "nobody@example.com"]).0, 3);

    // API keys: create, inspect without printing or using it, rotate, revoke.
    let created =
        place.json(&["api-key", "create", "--kind", "restricted", "--name", "ro", "--permission", "clients:read"]);
    let (key_id, key) = (id(&created, "id"), id(&created, "key"));
    let inspected = place.json_with(&["api-key", "inspect", "-"], Some(&format!("{key}\n")));
    assert_eq!((inspected["id"].as_str(), inspected["kind"].as_str()), (Some(key_id.as_str()), Some("restricted")));
    assert_eq!(inspected["permissions"], json!(["clients:read"]));
    assert!(!inspected.to_string().contains(&key), "the key is never printed");
    if !place.is_server() {
        assert_eq!(inspected["standing"], "live");
        assert_eq!(inspected["last_used_at"], Value::Null, "inspecting is not using");
    }
    assert_eq!(place.json(&["api-key", "show", &key_id])["name"], "ro");
    let rotated = place.json(&["api-key", "rotate", &key_id]);
    let new_key = id(&rotated, "key");
    if place.is_server() {
        // The server refuses a key that no longer works, with its reason.
        let output = place.run(&["api-key", "inspect", "-"], Some(&key));
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("revoked"), "{output:?}");
    } else {
        assert_eq!(place.json_with(&["api-key", "inspect", "-"], Some(&key))["standing"], "revoked");
    }
    place.json(&["api-key", "delete", &id(&rotated, "id")]);
    if !place.is_server() {
        assert_eq!(place.json_with(&["api-key", "inspect", "-"], Some(&new_key))["standing"], "revoked");
        let (code, message) = place.fails(&["api-key", "inspect", "sk_test_not-a-key"]);
        assert_eq!(code, 2, "{message}");
    }

    // Consents, signing keys and the audit log read the same way.
    assert_eq!(place.json(&["consent", "list"]), json!([]));
    assert_eq!(place.json(&["consent", "list", "--user", &user_id]), json!([]));
    assert_eq!(place.fails(&["consent", "revoke", "no-such-consent"]).0, 3);
    assert!(place.json(&["keys", "list"]).as_array().is_some());
    let page = place.json(&["audit", "--action", "team.created", "--limit", "5"]);
    let event = &page["data"][0];
    assert_eq!(event["target_id"], team_id.as_str());
    if place.is_server() {
        assert_eq!(event["actor_type"], "api_key", "the kept key acts");
    } else {
        assert_eq!((event["actor_type"].as_str(), event["actor_id"].as_str()), (Some("operator"), Some("ops-alice")));
    }
    place.json(&["user", "delete", &user_id]);
}

async fn every_resource_is_managed_on_the_database_as_the_operator(backend: Backend) {
    let db = TestDb::new(&backend);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &master_key);
    let place = Place::Database { db, master_key };
    tokio::task::spawn_blocking(move || manage_everything(&place)).await.unwrap();
}

async fn every_resource_is_managed_on_a_server_through_its_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.owner_key();
    let home = tempfile::tempdir().unwrap();
    let credentials = home.path().join("credentials.json");
    let url = app.url("").trim_end_matches('/').to_owned();
    let kept = json!({ "servers": { &url: {
        "key_id": "kept", "kind": "tenant_owner", "name": "ops", "key": key, "saved_at": "2026-12-03T00:00:00Z",
    } } });
    std::fs::write(&credentials, kept.to_string()).unwrap();
    let place = Place::Server { url, credentials };
    tokio::task::spawn_blocking(move || manage_everything(&place)).await.unwrap();
}

/// `latchkey audit --follow` prints events as they happen, one JSON object per line.
async fn audit_follow_prints_new_events_as_they_happen(backend: Backend) {
    let db = TestDb::new(&backend);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &master_key);
    let place = Place::Database { db, master_key };
    tokio::task::spawn_blocking(move || {
        place.json(&["team", "create", "Before"]);
        let scratch = tempfile::tempdir().unwrap();
        let mut follow = place
            .command(scratch.path())
            .args(["audit", "--follow", "--json", "--action", "team.created"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (lines, seen) = std::sync::mpsc::channel();
        let stdout = follow.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let next = |what: &str| -> Value {
            let line = seen.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no line for {what}"));
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {line}"))
        };
        assert_eq!(next("the event before")["details"]["name"], "Before");
        let started = Instant::now();
        for name in ["After one", "After two"] {
            place.json(&["team", "create", name]);
        }
        let first_new = next("the first new event");
        assert_eq!(first_new["details"]["name"], "After one");
        assert_eq!(next("the second new event")["details"]["name"], "After two");
        // An event whose transaction committed after the last poll, stamped before the
        // newest event already printed (as a long transaction would leave it).
        if let Place::Database { db, .. } = &place {
            let stamped: chrono::DateTime<chrono::Utc> = first_new["occurred_at"].as_str().unwrap().parse().unwrap();
            let pool = latchkey::db::build_pool(&db.target(), 1).unwrap();
            let late = latchkey::db::audit::NewAuditEvent {
                id: uuid::Uuid::new_v4().to_string(),
                tenant_id: Some(latchkey::db::DEFAULT_TENANT_ID),
                occurred_at: stamped.naive_utc(),
                actor_type: "operator",
                actor_id: None,
                action: "team.created",
                target_type: Some("team"),
                target_id: Some("late"),
                outcome: "success",
                ip: None,
                request_id: None,
                details: json!({ "name": "Late" }).to_string(),
            };
            latchkey::db::audit::insert_audit_event(&mut pool.get().unwrap(), &late).unwrap();
        }
        assert_eq!(next("the late event")["details"]["name"], "Late");
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(seen.recv_timeout(Duration::from_millis(2500)).is_err(), "each event once");
        follow.kill().unwrap();
        follow.wait().unwrap();
    })
    .await
    .unwrap();
}

crate::on_both_backends!(
    every_resource_is_managed_on_the_database_as_the_operator,
    every_resource_is_managed_on_a_server_through_its_api,
    audit_follow_prints_new_events_as_they_happen,
);
