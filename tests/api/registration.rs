//! Dynamic client registration (RFC 7591) with an API key as the initial access token.

use serde_json::{Value, json};

use crate::helpers::{API, Backend, TestApp, spawn_app};
use crate::management::ok;

async fn register(app: &TestApp, key: Option<&str>, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.http.post(app.url("/oauth2/register")).json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

async fn a_key_with_client_write_registers_clients_that_work(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let person = app.create_user("person@example.com", "a password long enough");
    ok(&app, "POST", "/apis", &owner, Some(json!({ "audience": API, "scopes": ["read"] }))).await;
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["registration_endpoint"], app.url("/oauth2/register"));

    // Act: a public browser app, and a confidential machine client that asks to be known
    // by a person's id (RFC 9700 §4.15: a client must not pass for a resource owner).
    let (status, headers, public) = register(
        &app,
        Some(&owner),
        json!({ "client_name": "SPA", "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none", "scope": "openid profile" }),
    )
    .await;
    let (_, _, machine) = register(
        &app,
        Some(&owner),
        json!({ "client_name": "Cron", "client_id": person.id, "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post", "scope": "read", "audiences": [API] }),
    )
    .await;

    // Assert
    assert_eq!(status, 201, "{public}");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(public.get("client_secret").is_none(), "a public client has no secret: {public}");
    assert_eq!(public["grant_types"], json!(["authorization_code"]), "RFC 7591's default grant");
    assert_eq!(public["response_types"], json!(["code"]));
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert!(public["client_id_issued_at"].as_i64().unwrap() > 0);
    assert_eq!(machine["client_secret_expires_at"], 0);
    assert_eq!(machine["token_endpoint_auth_method"], "client_secret_post");
    let token = app
        .http
        .post(app.url("/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", machine["client_id"].as_str().unwrap()),
            ("client_secret", machine["client_secret"].as_str().unwrap()),
            ("resource", API),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200, "the registered client gets tokens");
    assert_ne!(machine["client_id"], json!(person.id), "Latchkey chooses client ids");
    let token: Value = token.json().await.unwrap();
    let claims: Value =
        jsonwebtoken::dangerous::insecure_decode(token["access_token"].as_str().unwrap()).unwrap().claims;
    assert_eq!(claims["sub"], machine["client_id"]);
    let stored = ok(&app, "GET", &format!("/clients/{}", public["client_id"].as_str().unwrap()), &owner, None).await;
    assert_eq!(stored["name"], "SPA");
    assert!(app.audit_actions().iter().any(|(action, _)| action == "client.created"));
}

async fn registration_refuses_bad_keys_and_bad_metadata(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let reader = ok(
        &app,
        "POST",
        "/api-keys",
        &owner,
        Some(json!({ "kind": "restricted", "name": "r", "permissions": ["clients:read"] })),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let good = json!({ "client_name": "x", "redirect_uris": ["https://app.example.com/cb"] });
    let cases: Vec<(&str, Option<&str>, Value, u16, &str)> = vec![
        ("no key", None, good.clone(), 401, "invalid_token"),
        ("unknown key", Some("sk_test_000000000000000000000000000000AAAAAA"), good.clone(), 401, "invalid_token"),
        ("read-only key", Some(&reader), good.clone(), 403, "insufficient_scope"),
        (
            "http redirect",
            Some(&owner),
            json!({ "redirect_uris": ["http://evil.example.com/cb"] }),
            400,
            "invalid_redirect_uri",
        ),
        ("no redirect for the code grant", Some(&owner), json!({ "client_name": "x" }), 400, "invalid_redirect_uri"),
        (
            "implicit flow",
            Some(&owner),
            json!({ "redirect_uris": ["https://a.example/cb"], "response_types": ["token"] }),
            400,
            "invalid_client_metadata",
        ),
        (
            "unknown auth method",
            Some(&owner),
            json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }),
            400,
            "invalid_client_metadata",
        ),
        (
            "public machine client",
            Some(&owner),
            json!({ "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none" }),
            400,
            "invalid_client_metadata",
        ),
        ("not an object", Some(&owner), json!(["redirect_uris"]), 400, "invalid_client_metadata"),
    ];

    for (name, key, body, status, error) in cases {
        let (actual, headers, answer) = register(&app, key, body).await;

        assert_eq!(actual, status, "{name}: {answer}");
        assert_eq!(answer["error"], error, "{name}: {answer}");
        if status == 401 || status == 403 {
            let challenge = headers["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains(&format!(r#"error="{error}""#)), "{name}: {challenge}");
        }
    }
    let listed = ok(&app, "GET", "/clients", &owner, None).await;
    let built_in = |c: &Value| c["built_in"] == true;
    assert!(listed["data"].as_array().unwrap().iter().all(built_in), "nothing was registered: {listed}");
}

crate::on_both_backends!(
    a_key_with_client_write_registers_clients_that_work,
    registration_refuses_bad_keys_and_bad_metadata
);
