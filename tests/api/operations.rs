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
        (reqwest::Method::POST, "/.well-known/jwks.json", "GET"),
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
    let mut admin = <diesel::PgConnection as diesel::Connection>::establish(server).unwrap();
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

crate::on_both_backends!(
    a_wrong_method_is_405_with_allow_not_404,
    health_and_readiness_answer_ok,
    every_response_carries_a_request_id,
    a_well_formed_incoming_request_id_is_kept_and_a_hostile_one_replaced,
);
