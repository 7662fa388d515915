//! Introspection (RFC 7662).

use serde_json::Value;

use crate::helpers::{API, Backend, credentials, spawn_app};

async fn an_issued_token_introspects_as_active_with_its_claims(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let token = app.client_credentials_token(&client, "read write").await;

    // Act
    let response = app.post_form("/oauth2/introspect", &[("token", &token)], Some(credentials(&client))).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["client_id"], client.client_id);
    assert_eq!(body["sub"], client.client_id);
    assert_eq!(body["aud"], API);
    assert_eq!(body["iss"], app.issuer());
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
}

async fn a_resource_server_client_may_introspect_tokens_issued_to_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let resource_server = app.create_client(&["client_credentials"], &[], &[]);
    let token = app.client_credentials_token(&client, "read").await;

    let body = app.introspect(&token, &resource_server).await;

    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], client.client_id);
}

async fn hs256_tokens_introspect_too(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_api("https://shared.example.com", &["read"], "HS256");
    let client = app.create_client(&["client_credentials"], &["read"], &["https://shared.example.com"]);
    let token = app.client_credentials_token(&client, "read").await;

    let body = app.introspect(&token, &client).await;

    assert_eq!(body["active"], true);
    assert_eq!(body["aud"], "https://shared.example.com");
}

async fn garbage_and_unknown_tokens_are_inactive_and_nothing_more(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    for token in ["not-a-token", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA", &"x".repeat(5000)] {
        assert_eq!(app.introspect(token, &client).await, serde_json::json!({ "active": false }), "{token}");
    }
}

async fn introspection_requires_client_authentication_and_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let token = app.client_credentials_token(&client, "read").await;

    let anonymous = app.post_form("/oauth2/introspect", &[("token", &token)], None).await;
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let without_token = app.post_form("/oauth2/introspect", &[], Some(credentials(&client))).await;
    assert_eq!(without_token.status(), 400);
    let body: Value = without_token.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

crate::on_both_backends!(
    an_issued_token_introspects_as_active_with_its_claims,
    a_resource_server_client_may_introspect_tokens_issued_to_others,
    hs256_tokens_introspect_too,
    garbage_and_unknown_tokens_are_inactive_and_nothing_more,
    introspection_requires_client_authentication_and_a_token,
);
