//! Revocation (RFC 7009) of access tokens.

use serde_json::Value;

use crate::helpers::{Backend, credentials, spawn_app};

async fn a_revoked_token_introspects_as_inactive(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let token = app.client_credentials_token(&client, "read").await;
    let other = app.client_credentials_token(&client, "read").await;
    assert_eq!(app.introspect(&token, &client).await["active"], true);

    // Act
    let response = app
        .post_form(
            "/oauth2/revoke",
            &[("token", &token), ("token_type_hint", "access_token")],
            Some(credentials(&client)),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(app.introspect(&token, &client).await, serde_json::json!({ "active": false }));
    assert_eq!(app.introspect(&other, &client).await["active"], true, "only the revoked token is affected");
    assert!(app.audit_actions().contains(&("access_token.revoked".into(), "success".into())));
}

async fn revoking_twice_or_revoking_garbage_succeeds(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let token = app.client_credentials_token(&client, "read").await;

    for presented in [token.as_str(), token.as_str(), "garbage", "a.b.c"] {
        let response = app.post_form("/oauth2/revoke", &[("token", presented)], Some(credentials(&client))).await;
        assert_eq!(response.status(), 200, "{presented}");
    }
}

async fn a_client_cannot_revoke_another_clients_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.create_machine_client();
    let stranger = app.create_client(&["client_credentials"], &["read"], &[crate::helpers::API]);
    let token = app.client_credentials_token(&owner, "read").await;

    let response = app.post_form("/oauth2/revoke", &[("token", &token)], Some(credentials(&stranger))).await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(app.introspect(&token, &owner).await["active"], true);
}

async fn revocation_requires_client_authentication(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let token = app.client_credentials_token(&client, "read").await;

    let response = app.post_form("/oauth2/revoke", &[("token", &token)], None).await;

    assert_eq!(response.status(), 401);
    assert_eq!(app.introspect(&token, &client).await["active"], true);
}

crate::on_both_backends!(
    a_revoked_token_introspects_as_inactive,
    revoking_twice_or_revoking_garbage_succeeds,
    a_client_cannot_revoke_another_clients_token,
    revocation_requires_client_authentication,
);
