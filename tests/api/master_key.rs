//! Master-key rotation, as docs/operations.md tells an operator to do it: restart with the
//! new key and the old one as previous, `latchkey master-key rotate`, and everything made
//! before keeps working while everything new is made under the new key.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey::crypto::MasterKey;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{API, Backend, TestApp, TestDb, spawn_app_with};
use crate::process::{json, latchkey};
use crate::refresh::{grant, refresh};

const HS_API: &str = "https://hs.example.com";

fn with_keys(master_key: &str, previous: &[&str]) -> impl FnOnce(&mut latchkey::config::Settings) {
    let (master_key, previous) =
        (master_key.to_owned(), previous.iter().map(|key| key.to_string()).collect::<Vec<_>>());
    move |settings| {
        settings.master_key = Some(SecretString::from(master_key));
        settings.previous_master_keys = previous.into_iter().map(SecretString::from).collect();
    }
}

fn id_of(key: &str) -> String {
    MasterKey::parse(key).unwrap().id().to_string()
}

fn current_key_of(app: &TestApp) -> String {
    app.state.sealer.ring().current_id().to_string()
}

/// An HS256 access token verified as a resource server does, with the API's shared secret.
fn verifies_with(token: &str, secret: &str) -> bool {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[HS_API]);
    validation.validate_exp = true;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation).is_ok()
}

async fn what_was_made_under_the_old_key_keeps_working_after_a_rotation(backend: Backend) {
    // Arrange: everything a deployment holds, made under the old key.
    let (old, new) = (MasterKey::generate().encode(), MasterKey::generate().encode());
    let db = TestDb::new(&backend);
    let before = spawn_app_with(TestDb::reuse(&db), with_keys(&old, &[])).await;
    let person = grant(&before, &["read", "offline_access"]).await;
    let machine = before.create_client(&["client_credentials"], &["read"], &[API]);
    let hs_api = before.create_api(HS_API, &["read"], "HS256");
    let hs_secret = hs_api.secret.clone().expect("an HS256 API has a shared secret");
    let hs_client = before.create_client(&["client_credentials"], &["read"], &[HS_API]);
    let owner_key = before.owner_key();
    let user = before.create_user("grace@example.com", "correct horse battery staple");
    {
        let mut conn = before.pool.get().unwrap();
        let user = latchkey::db::users::find_user(&mut conn, &user.id).unwrap().unwrap();
        let origin = latchkey::audit::Origin { ip: None, request_id: "test".into() };
        latchkey::manage::second_factors::begin_totp(&mut conn, &before.state.sealer, &user, "Latchkey", &origin)
            .unwrap();
    }

    // Act 1: restarted with the new key and the old one as previous, before the rotation.
    let during = spawn_app_with(TestDb::reuse(&db), with_keys(&new, &[&old])).await;

    // Assert 1: it keeps writing under the old key, in step with instances not yet restarted.
    assert_eq!(current_key_of(&during), id_of(&old));
    // Tagged as Latchkey's under the old key (tokens carry their issuer: made here, by the
    // server that introspects it later).
    let hs_token = during.client_credentials_token(&hs_client, "read").await;

    // Act 2: the rotation, then the server's next key reload.
    let previous = [("LATCHKEY_PREVIOUS_MASTER_KEYS", old.as_str())];
    let rotation = json(&latchkey(&db, &new, &previous, &["master-key", "rotate", "--json"]));
    during.state.reload_keys().await.unwrap();

    // Assert 2: every sealed value moved; the server follows; what was made before works.
    assert_eq!(rotation["from"], id_of(&old));
    assert_eq!(rotation["to"], id_of(&new));
    let moved = |column: &str| {
        rotation["resealed"].as_array().unwrap().iter().find(|count| count["column"] == column).unwrap()["rows"].clone()
    };
    assert_eq!(moved("signing_keys.private_key_sealed"), 1);
    assert_eq!(moved("apis.secret_sealed"), 1);
    assert_eq!(moved("totp_factors.secret_sealed"), 1);
    assert_eq!(current_key_of(&during), id_of(&new));

    let rs_token = during.client_credentials_token(&machine, "read").await;
    assert_eq!(during.introspect(&rs_token, &machine).await["active"], true, "the old client secret works");
    assert_eq!(during.introspect(&hs_token, &hs_client).await["active"], true, "an HS256 token tagged before");
    let new_hs_token = during.client_credentials_token(&hs_client, "read").await;
    assert!(verifies_with(&new_hs_token, &hs_secret), "the API's shared secret is the same after re-sealing");
    let (status, _) = during.api("GET", "/clients", &owner_key, None).await;
    assert_eq!(status, 200, "the API key from before works");
    let refreshed = refresh(&during, &person.client_id, &person.refresh_token, None).await;
    assert_eq!(refreshed.status(), 200, "the refresh token from before works");
    let refreshed: Value = refreshed.json().await.unwrap();
    let new_refresh_token = refreshed["refresh_token"].as_str().unwrap().to_owned();

    let status = json(&latchkey(&db, &new, &previous, &["master-key", "status", "--json"]));
    assert_eq!(status["current"], id_of(&new));
    assert_eq!(status["sealed_under_older_keys"], serde_json::json!([]));
    assert_eq!(status["unopenable"], 0);
    let recorded: Vec<(&str, &str)> = status["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| (key["id"].as_str().unwrap(), key["state"].as_str().unwrap()))
        .collect();
    assert_eq!(recorded, vec![(id_of(&new).as_str(), "current"), (id_of(&old).as_str(), "retired")]);

    // Assert 3: what is new is made under the new key alone: a server without the old key
    // still takes the new refresh token and opens every sealed value, but no longer finds
    // what only the old key hashed (why the old key stays among the previous ones).
    let only_new = spawn_app_with(TestDb::reuse(&db), with_keys(&new, &[])).await;
    let again = refresh(&only_new, &person.client_id, &new_refresh_token, None).await;
    assert_eq!(again.status(), 200, "the refresh token issued after the rotation is hashed under the new key");
    let fresh_client = only_new.create_client(&["client_credentials"], &["read"], &[HS_API]);
    let hs_token_after = only_new.client_credentials_token(&fresh_client, "read").await;
    assert!(verifies_with(&hs_token_after, &hs_secret), "the re-sealed shared secret opens under the new key");
    let (status, _) = only_new.api("GET", "/clients", &owner_key, None).await;
    assert_eq!(status, 401, "the API key from before was hashed under the old key");
}

async fn after_a_rotation_a_process_with_only_the_old_key_refuses_to_start(backend: Backend) {
    // Arrange
    let (old, new) = (MasterKey::generate().encode(), MasterKey::generate().encode());
    let db = TestDb::new(&backend);
    let app = spawn_app_with(TestDb::reuse(&db), with_keys(&old, &[])).await;
    app.create_machine_client();
    let previous = [("LATCHKEY_PREVIOUS_MASTER_KEYS", old.as_str())];
    json(&latchkey(&db, &new, &previous, &["master-key", "rotate", "--json"]));

    // Act
    let mut settings = latchkey::config::Settings::for_tests(db.target());
    with_keys(&old, &[])(&mut settings);
    let server = latchkey::startup::Application::build(settings).await;
    let command = latchkey(&db, &old, &[], &["client", "list", "--json"]);
    let rotate_back_without_new = latchkey(&db, &old, &[], &["master-key", "rotate"]);

    // Assert
    let error = format!("{:#}", server.err().expect("a server with only the old key does not start"));
    assert!(error.contains("does not open this database"), "{error}");
    assert!(error.contains(&id_of(&new)) && error.contains(&id_of(&old)), "both keys are named by id: {error}");
    for refused in [command, rotate_back_without_new] {
        assert_eq!(refused.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(&id_of(&new)), "{stderr}");
        assert!(!stderr.contains(&old) && !stderr.contains(&new), "no key is ever printed: {stderr}");
    }
    // The server that was running follows no key it does not hold, and goes on serving.
    app.state.reload_keys().await.expect_err("the re-sealed signing key does not open under the old key alone");
    assert_eq!(current_key_of(&app), id_of(&old));
}

/// A rotation run again re-seals only what instances sealed under the old key before they
/// followed, and changes nothing else.
async fn a_second_rotation_reseals_what_was_sealed_late(backend: Backend) {
    // Arrange: an instance that has not followed the rotation yet makes an HS256 API.
    let (old, new) = (MasterKey::generate().encode(), MasterKey::generate().encode());
    let db = TestDb::new(&backend);
    spawn_app_with(TestDb::reuse(&db), with_keys(&old, &[])).await;
    let late = spawn_app_with(TestDb::reuse(&db), with_keys(&new, &[&old])).await;
    let previous = [("LATCHKEY_PREVIOUS_MASTER_KEYS", old.as_str())];
    json(&latchkey(&db, &new, &previous, &["master-key", "rotate", "--json"]));
    let hs_api = late.create_api(HS_API, &["read"], "HS256");
    assert_eq!(current_key_of(&late), id_of(&old), "not followed yet");

    // Act
    let before = json(&latchkey(&db, &new, &previous, &["master-key", "status", "--json"]));
    let again = json(&latchkey(&db, &new, &previous, &["master-key", "rotate", "--json"]));
    let after = json(&latchkey(&db, &new, &previous, &["master-key", "status", "--json"]));

    // Assert
    assert_eq!(before["sealed_under_older_keys"], serde_json::json!([{ "column": "apis.secret_sealed", "rows": 1 }]));
    assert_eq!(again["from"], again["to"]);
    let total: u64 = again["resealed"].as_array().unwrap().iter().map(|count| count["rows"].as_u64().unwrap()).sum();
    assert_eq!(total, 1, "only the late value: {again}");
    assert_eq!(after["sealed_under_older_keys"], serde_json::json!([]));
    late.state.reload_keys().await.unwrap();
    let client = late.create_client(&["client_credentials"], &["read"], &[HS_API]);
    let token = late.client_credentials_token(&client, "read").await;
    assert!(verifies_with(&token, hs_api.secret.as_deref().unwrap()));
}

crate::on_both_backends!(
    what_was_made_under_the_old_key_keeps_working_after_a_rotation,
    after_a_rotation_a_process_with_only_the_old_key_refuses_to_start,
    a_second_rotation_reseals_what_was_sealed_late,
);
