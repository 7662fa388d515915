//! Health, readiness, request ids and the JSON 404.

use serde_json::Value;

use crate::helpers::{Backend, spawn_app};

async fn health_and_readiness_answer_ok(backend: Backend) {
    let app = spawn_app(backend).await;

    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
    }
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;

    let ok = app.http.get(app.url("/healthz")).send().await.unwrap();
    let missing = app.http.get(app.url("/no/such/thing")).send().await.unwrap();
    let error = app.http.post(app.url("/oauth2/token")).send().await.unwrap();

    let ids: Vec<String> =
        [&ok, &missing, &error].iter().map(|r| r.headers()["x-request-id"].to_str().unwrap().to_owned()).collect();
    assert!(ids.iter().all(|id| !id.is_empty()));
    assert_ne!(ids[0], ids[1]);
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["request_id"], ids[1].as_str(), "the body names the same request");
}

async fn a_well_formed_incoming_request_id_is_kept_and_a_hostile_one_replaced(backend: Backend) {
    let app = spawn_app(backend).await;

    let kept = app.http.get(app.url("/healthz")).header("x-request-id", "lb-1234_abcd").send().await.unwrap();
    let replaced =
        app.http.get(app.url("/healthz")).header("x-request-id", "x\" onload=alert(1)").send().await.unwrap();

    assert_eq!(kept.headers()["x-request-id"], "lb-1234_abcd");
    assert_ne!(replaced.headers()["x-request-id"], "x\" onload=alert(1)");
}

async fn a_wrong_method_is_405_with_allow_not_404(backend: Backend) {
    let app = spawn_app(backend).await;

    for (method, path, allowed) in [
        (reqwest::Method::GET, "/oauth2/token", "POST"),
        (reqwest::Method::PUT, "/oauth2/introspect", "POST"),
        (reqwest::Method::DELETE, "/oauth2/revoke", "POST"),
        (reqwest::Method::POST, "/.well-known/jwks.json", "GET, HEAD"),
    ] {
        let response = app.http.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allowed);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed");
    }
}

/// With the database gone, readiness says so promptly, and the token endpoint answers
/// `temporarily_unavailable` rather than a bare 500.
#[tokio::test]
async fn losing_postgresql_turns_readiness_to_503() {
    let Some(backend) = Backend::postgres() else {
        eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: PostgreSQL not tested");
        return;
    };
    let app = spawn_app(backend.clone()).await;
    let client = app.create_machine_client();
    let Backend::Postgres(server) = &backend else { unreachable!() };
    let name = app.db.url().rsplit('/').next().unwrap().to_owned();
    let mut admin = latchkey::db::establish_postgres(server).unwrap();
    diesel::connection::SimpleConnection::batch_execute(&mut admin, &format!("DROP DATABASE {name} WITH (FORCE)"))
        .unwrap();

    let started = std::time::Instant::now();
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    let token = app.post_token(&[("grant_type", "client_credentials")], &client).await;

    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["error"], "database_unavailable");
    assert_eq!(token.status(), 503);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "answers without hanging");
}

async fn metrics_count_requests_tokens_failures_and_the_pool(backend: Backend) {
    // Arrange: a token, a wrong secret, a refused API key, a request to no route.
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    app.client_credentials_token(&client, "read").await;
    let wrong = app
        .post_form(
            "/oauth2/token",
            &[("grant_type", "client_credentials")],
            Some((client.client_id.as_str(), "not-the-secret")),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let refused = app.http.get(app.url("/api/v1/clients")).bearer_auth("sk_test_nonsense").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    app.http.get(app.url("/no/such/page")).send().await.unwrap();

    // Act
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = response.text().await.unwrap();
    for expected in [
        r#"latchkey_http_requests_total{method="POST",route="/oauth2/token",status="200"} 1"#,
        r#"latchkey_http_requests_total{method="POST",route="/oauth2/token",status="401"} 1"#,
        r#"latchkey_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"latchkey_tokens_issued_total{grant_type="client_credentials"} 1"#,
        r#"latchkey_authentication_failures_total{credential="client",reason="wrong secret"} 1"#,
        r#"latchkey_authentication_failures_total{credential="api_key",reason="malformed"} 1"#,
        r#"latchkey_http_request_duration_seconds_count{method="POST",route="/oauth2/token"} 2"#,
        "latchkey_db_pool_max_connections ",
        "latchkey_db_pool_connections ",
    ] {
        assert!(text.contains(expected), "{expected}\n---\n{text}");
    }
    assert!(!text.contains(&client.client_id), "no ids in labels");
    assert!(text.ends_with("# EOF\n"));
}

crate::on_both_backends!(
    metrics_count_requests_tokens_failures_and_the_pool,
    a_wrong_method_is_405_with_allow_not_404,
    health_and_readiness_answer_ok,
    every_response_carries_a_request_id,
    a_well_formed_incoming_request_id_is_kept_and_a_hostile_one_replaced,
);
