//! `latchkey backup` and the restore procedure of docs/deployment.md, tried for real: a copy
//! taken while a server serves and writes, then a server started on the restored file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use serde_json::{Value, json};

use crate::helpers::{Backend, Served, TestDb};
use crate::process::{Instance, free_port, json as json_of, latchkey, migrated, register_api_and_machine_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_to_a_working_server() {
    let db = TestDb::new(&Backend::Sqlite);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &master_key);
    let owner = json_of(&latchkey(
        &db,
        &master_key,
        &[],
        &["api-key", "create", "--kind", "tenant-owner", "--name", "ops", "--json"],
    ));
    let owner = owner["key"].as_str().unwrap().to_owned();
    let client = register_api_and_machine_client(&db, &master_key);
    let server = Instance::start(&db, &master_key, free_port(), &[]);
    let issued_before = client_credentials(&server.url("/oauth2/token"), &client).await;

    // Writes go on while the copy is taken: teams made through the API, one after another.
    let writing = Arc::new(AtomicBool::new(true));
    let made = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (writing, made, url, owner) = (writing.clone(), made.clone(), server.url("/api/v1/teams"), owner.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            while writing.load(Ordering::Relaxed) {
                let name = format!("team {}", made.load(Ordering::Relaxed));
                let response = http.post(&url).bearer_auth(&owner).json(&json!({ "name": name })).send().await.unwrap();
                assert_eq!(response.status(), 201);
                made.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while made.load(Ordering::Relaxed) < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("latchkey-backup.db");
    let copy_arg = copy.to_str().unwrap().to_owned();
    // The writer runs on the other worker thread meanwhile.
    let backed_up = tokio::task::block_in_place(|| latchkey(&db, &master_key, &[], &["backup", &copy_arg, "--json"]));
    writing.store(false, Ordering::Relaxed);
    writer.await.unwrap();
    let report = json_of(&backed_up);
    assert_eq!(report["file"], copy_arg.as_str());
    assert!(report["bytes"].as_u64().unwrap() > 0);
    assert!(report["schema_version"].as_str().is_some_and(|v| v.starts_with("20")), "{report}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o600, "the copy is private");
    }

    // A copy is never written over; the original goes on.
    let again = latchkey(&db, &master_key, &[], &["backup", &copy_arg]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    drop(server);

    // The restore procedure: the copy becomes the database file; the same master key opens it.
    let restored_path = dir.path().join("latchkey.db");
    std::fs::copy(&copy, &restored_path).unwrap();
    let restored_url = format!("sqlite://{}", restored_path.display());
    let restored = Instance::start(&db, &master_key, free_port(), &[("LATCHKEY_DATABASE_URL", &restored_url)]);
    let issued_after = client_credentials(&restored.url("/oauth2/token"), &client).await;
    let teams: Value = restored
        .http()
        .get(restored.url("/api/v1/teams"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let restored_teams = teams["data"].as_array().unwrap().len();
    assert!(
        (5..=made.load(Ordering::Relaxed)).contains(&restored_teams),
        "the copy has the teams made before it, and none it could not have: {restored_teams}"
    );
    // The signing key came back too: a token from before verifies against the restored JWKS.
    let jwks: jsonwebtoken::jwk::JwkSet =
        restored.http().get(restored.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    for token in [&issued_before, &issued_after] {
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        assert!(jwks.find(&kid).is_some(), "the token's key {kid} is published after the restore");
    }
}

#[tokio::test]
async fn backup_says_how_to_back_up_postgresql_and_refuses_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let target = dir.path().join("copy.db");
    let target = target.to_str().unwrap();
    if let Some(backend) = Backend::postgres() {
        let db = TestDb::new(&backend);
        migrated(&db, &master_key);
        let output = latchkey(&db, &master_key, &[], &["backup", target]);
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"), "{output:?}");
    }
    let db = TestDb::new(&Backend::Sqlite);
    let output = latchkey(&db, &master_key, &[], &["backup", target]);
    assert_eq!(output.status.code(), Some(3), "nothing to copy: {output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("there is no Latchkey database at"), "{output:?}");
    assert!(!std::path::Path::new(target).exists(), "no copy made");
    if let latchkey::config::DatabaseTarget::Sqlite(path) = db.target() {
        assert!(!path.exists(), "and no database made either");
    }
}

async fn client_credentials(token_url: &str, (id, secret): &(String, String)) -> String {
    let oauth = BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_token_uri(TokenUrl::new(token_url.to_owned()).unwrap());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let token = oauth.exchange_client_credentials().add_scope(Scope::new("read".into())).request_async(&http).await;
    token.expect("a token is issued").access_token().secret().clone()
}
