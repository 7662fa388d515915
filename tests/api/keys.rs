//! Signing keys: rotation keeps old tokens verifiable; keys survive restarts; a wrong
//! master key is refused.

use latchkey::domain::SigningAlgorithm;

use serde_json::json;

use crate::helpers::{API, Backend, TestDb, spawn_app, spawn_app_with, verify_with_jwks};
use crate::management::ok;

async fn rotation_signs_with_the_new_key_and_keeps_old_tokens_verifiable(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let old_token = app.client_credentials_token(&client, "read").await;
    let old_kid = jsonwebtoken::decode_header(&old_token).unwrap().kid.unwrap();

    // Act
    let new_kid = app.rotate_key(SigningAlgorithm::RS256).await;
    let new_token = app.client_credentials_token(&client, "read").await;

    // Assert
    assert_ne!(new_kid, old_kid);
    assert_eq!(jsonwebtoken::decode_header(&new_token).unwrap().kid.unwrap(), new_kid);
    let jwks = app.jwks().await;
    let kids: Vec<_> = jwks.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![new_kid, old_kid], "newest first, the old key still published");
    for token in [&old_token, &new_token] {
        verify_with_jwks(token, &jwks, &app.issuer(), API).expect("verifies after rotation");
        assert_eq!(app.introspect(token, &client).await["active"], true);
    }
}

async fn a_retired_key_leaves_the_jwks_once_its_tokens_have_expired(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.jwks().await.keys[0].common.key_id.clone().unwrap();
    {
        // Rotate with a window that has already passed: nothing the old key signed is alive.
        let mut conn = app.pool.get().unwrap();
        latchkey::manage::signing_keys::rotate_key(
            &mut conn,
            &app.state.sealer,
            &latchkey::audit::Context::SYSTEM,
            SigningAlgorithm::RS256,
            chrono::TimeDelta::seconds(-1),
            latchkey::db::now(),
        )
        .unwrap();
    }
    app.state.reload_keys().await.unwrap();

    let kids: Vec<_> = app.jwks().await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids.len(), 1);
    assert_ne!(kids[0], first);
}

async fn a_withdrawn_key_leaves_the_jwks_at_once_and_its_tokens_stop_verifying(backend: Backend) {
    // Arrange: a token signed by the first key, which is then rotated out.
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let owner = app.owner_key();
    let leaked_token = app.client_credentials_token(&client, "read").await;
    let leaked = jsonwebtoken::decode_header(&leaked_token).unwrap().kid.unwrap();
    let withdraw = |kid: &str| format!("/signing-keys/{kid}/withdraw");
    let (while_signing, refusal) = app.api("POST", &withdraw(&leaked), &owner, None).await;
    let rotated = ok(&app, "POST", "/signing-keys/rotate", &owner, Some(json!({ "algorithm": "RS256" }))).await;
    let fresh_token = app.client_credentials_token(&client, "read").await;

    // Act
    let withdrawn = ok(&app, "POST", &withdraw(&leaked), &owner, None).await;
    let (again, _) = app.api("POST", &withdraw(&leaked), &owner, None).await;
    let (unknown, _) = app.api("POST", &withdraw("no-such-kid"), &owner, None).await;

    // Assert
    assert_eq!((while_signing, refusal["error"].as_str()), (409, Some("conflict")), "the signing key: rotate first");
    assert_eq!((withdrawn["kid"].as_str(), withdrawn["state"].as_str()), (Some(leaked.as_str()), Some("expired")));
    assert_eq!((again, unknown), (200, 404), "withdrawing twice changes nothing");
    let kids: Vec<_> = app.jwks().await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![rotated["kid"].as_str().unwrap().to_owned()], "published no longer");
    assert_eq!(app.introspect(&leaked_token, &client).await["active"], false);
    assert_eq!(app.introspect(&fresh_token, &client).await["active"], true);
    let audit = ok(&app, "GET", "/audit-log?action=signing_key.withdrawn", &owner, None).await;
    let targets: Vec<_> = audit["data"].as_array().unwrap().iter().map(|e| e["target_id"].clone()).collect();
    assert_eq!(targets, vec![json!(leaked), json!(leaked)], "each withdrawal is audited");
}

async fn a_restart_reuses_the_database_and_the_signing_key(backend: Backend) {
    let db = TestDb::new(&backend);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    // A deployment's issuer is fixed; the test servers' ports are not.
    let issuer = latchkey::config::parse_issuer("https://id.example.com").unwrap();
    let configure = |settings: &mut latchkey::config::Settings| {
        settings.master_key = Some(master_key.clone().into());
        settings.issuer = Some(issuer.clone());
    };
    let first = spawn_app_with(db, configure).await;
    let client = first.create_machine_client();
    let kid_before = first.jwks().await.keys[0].common.key_id.clone();
    let token = first.client_credentials_token(&client, "read").await;

    // A second server on the same database, as after a restart.
    let second = spawn_app_with(TestDb::reuse(&first.db), configure).await;

    assert_eq!(second.jwks().await.keys.len(), 1, "no second key was generated");
    assert_eq!(second.jwks().await.keys[0].common.key_id, kid_before);
    assert_eq!(second.introspect(&token, &client).await["active"], true);
    second.client_credentials_token(&client, "read").await;
}

async fn a_different_master_key_cannot_open_the_signing_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let settings = latchkey::config::Settings {
        master_key: Some(latchkey::crypto::MasterKey::generate().encode().into()),
        ..latchkey::config::Settings::for_tests(app.db.target())
    };

    let error = match latchkey::startup::Application::build(settings).await {
        Ok(_) => panic!("a server started with the wrong master key"),
        Err(error) => format!("{error:#}"),
    };

    assert!(error.contains("the master key does not open this database"), "{error}");
    let recorded = app.state.sealer.ring().current_id().to_string();
    assert!(error.contains(&format!("the database's current master key is {recorded}")), "{error}");
}

crate::on_both_backends!(
    rotation_signs_with_the_new_key_and_keeps_old_tokens_verifiable,
    a_retired_key_leaves_the_jwks_once_its_tokens_have_expired,
    a_withdrawn_key_leaves_the_jwks_at_once_and_its_tokens_stop_verifying,
    a_restart_reuses_the_database_and_the_signing_key,
    a_different_master_key_cannot_open_the_signing_keys,
);
