//! What our users' guides write, answered as they expect: `/oauth/authorize` and
//! `/oauth/token`, `curl -I` (HEAD) on any GET resource, and a rate limit that reads like
//! the guides' (the hourly quota in `X-RateLimit-Limit`).

use serde_json::Value;

use crate::helpers::{Backend, TestApp, credentials, spawn_app};
use crate::on_both_backends;

async fn head(app: &TestApp, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app.http.head(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

async fn the_guides_oauth_paths_serve_the_same_endpoints(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();

    // The token endpoint under /oauth/token issues the same tokens.
    let response = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("scope", "read")],
            Some(credentials(&client)),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].as_str().is_some_and(|t| t.starts_with("ey")), "{body}");

    // The authorization endpoint under /oauth/authorize answers exactly as /oauth2/authorize.
    let query = format!(
        "?response_type=code&client_id={}&redirect_uri=https://app.example.com/cb&scope=read&state=s",
        client.client_id
    );
    for bad in [format!("/oauth2/authorize{query}"), format!("/oauth/authorize{query}")] {
        let response = app.http.get(app.url(&bad)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}: a client without the code flow is an error page");
        assert!(response.text().await.unwrap().contains("<html"), "{bad}");
    }

    // Metadata keeps naming one set.
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["token_endpoint"], app.url("/oauth2/token"));
    assert_eq!(metadata["authorization_endpoint"], app.url("/oauth2/authorize"));
}

async fn head_answers_wherever_get_does_with_the_same_headers_and_no_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.owner_key();

    // A public document: same status, type and length as GET, no body.
    let get = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    let (get_type, get_body) = (get.headers()["content-type"].clone(), get.bytes().await.unwrap());
    let response = head(&app, "/.well-known/jwks.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], get_type);
    assert_eq!(response.headers()["content-length"], get_body.len().to_string().as_str());
    assert!(response.bytes().await.unwrap().is_empty());

    // The guides' key check: `curl -I [API_URL]/v1/[resource] -H "Authorization: Bearer $API_KEY"`.
    let response = head(&app, "/api/v1/clients", Some(&key)).await;
    assert_eq!(response.status(), 200, "expected: 200");
    assert!(response.headers().contains_key("x-ratelimit-remaining"));
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(head(&app, "/api/v1/clients", Some("sk_test_not_a_key")).await.status(), 401);

    // Pages too; a POST-only endpoint refuses HEAD, and GET resources list HEAD as allowed.
    assert_eq!(head(&app, "/login", None).await.status(), 200);
    let response = head(&app, "/oauth2/token", None).await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let response = app.http.put(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
}

on_both_backends!(
    the_guides_oauth_paths_serve_the_same_endpoints,
    head_answers_wherever_get_does_with_the_same_headers_and_no_body,
);
