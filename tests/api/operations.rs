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

crate::on_both_backends!(
    health_and_readiness_answer_ok,
    every_response_carries_a_request_id,
    a_well_formed_incoming_request_id_is_kept_and_a_hostile_one_replaced,
);
