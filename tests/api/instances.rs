//! Two Latchkey instances on one database, as behind a load balancer: whatever one issues,
//! the other introspects, refreshes and revokes; refresh-reuse detection holds across
//! them; a key rotated on one is published by the other within two reload periods.

use std::time::{Duration, Instant};

use latchkey::tokens::SigningAlgorithm;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::refresh::{grant, refresh};

/// Two servers sharing a database, a master key and an issuer, rereading keys every second.
async fn two_instances(backend: Backend) -> (TestApp, TestApp) {
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let shared = |settings: &mut latchkey::config::Settings| {
        settings.master_key = Some(master_key.clone().into());
        settings.key_refresh_secs = 1;
    };
    let first = spawn_app_with(TestDb::new(&backend), shared).await;
    let issuer = first.state.issuer.clone();
    let second = spawn_app_with(TestDb::reuse(&first.db), |settings| {
        shared(settings);
        settings.issuer = Some(issuer);
    })
    .await;
    (first, second)
}

async fn what_one_instance_issues_the_other_honours(backend: Backend) {
    // Arrange
    let (a, b) = two_instances(backend).await;
    let user_grant = grant(&a, &["read", "offline_access"]).await;
    let machine = a.create_client(&["client_credentials"], &["read"], &[crate::helpers::API]);

    // Act and assert: introspection and refresh on the other instance.
    assert_eq!(b.introspect(&user_grant.access_token, &machine).await["active"], true);
    let refreshed = refresh(&b, &user_grant.client_id, &user_grant.refresh_token, None).await;
    assert_eq!(refreshed.status(), 200);
    let successor = refreshed.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned();

    // Reuse of the retired token on the first instance revokes the family everywhere.
    let reused = refresh(&a, &user_grant.client_id, &user_grant.refresh_token, None).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let after = refresh(&b, &user_grant.client_id, &successor, None).await;
    assert_eq!(after.status(), 400, "the successor died with its family");

    // Revocation on one instance is seen by the other.
    let token = a.client_credentials_token(&machine, "read").await;
    let (id, secret) = crate::helpers::credentials(&machine);
    let revoked = b.post_form("/oauth2/revoke", &[("token", token.as_str())], Some((id, secret))).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(a.introspect(&token, &machine).await["active"], false);
}

async fn a_key_rotated_on_one_instance_is_published_by_the_other(backend: Backend) {
    // Arrange
    let (a, b) = two_instances(backend).await;
    let machine = a.create_machine_client();
    let old_token = a.client_credentials_token(&machine, "read").await;

    // Act
    let new_kid = a.rotate_key(SigningAlgorithm::RS256).await;
    let started = Instant::now();
    while !b.jwks().await.keys.iter().any(|k| k.common.key_id.as_deref() == Some(new_kid.as_str())) {
        assert!(started.elapsed() < Duration::from_secs(5), "two reload periods (2 s) and some slack");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: both instances sign with the new key; the old key's tokens still verify.
    let from_b = b.client_credentials_token(&machine, "read").await;
    let header = jsonwebtoken::decode_header(&from_b).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()), "the other instance signs with the new key");
    let jwks = b.jwks().await;
    crate::helpers::verify_with_jwks(&old_token, &jwks, &a.issuer(), crate::helpers::API).expect("old tokens verify");
    crate::helpers::verify_with_jwks(&from_b, &jwks, &a.issuer(), crate::helpers::API).expect("new tokens verify");
}

crate::on_both_backends!(
    what_one_instance_issues_the_other_honours,
    a_key_rotated_on_one_instance_is_published_by_the_other
);
