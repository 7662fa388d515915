//! Liveness and readiness for orchestrators, and the Prometheus metrics.
//!
//! Floor: http (docs/architecture.md); reads the state only.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use diesel::connection::SimpleConnection;

use crate::error::{AppError, json_error};
use crate::metrics::PoolReading;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(get_healthz))
        .route("/readyz", web::get().to(get_readyz))
        .route("/metrics", web::get().to(get_metrics));
}

/// The process is up and serving.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// How long readiness waits for a connection: probes give up after about a second.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// The database answers; a load balancer should not route here otherwise.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let result = web::block(move || -> Result<(), AppError> {
        let mut conn = pool.get_timeout(READINESS_TIMEOUT)?;
        conn.batch_execute("SELECT 1").map_err(|e| AppError::Unexpected(e.into()))
    })
    .await
    .map_err(AppError::from)
    .and_then(|result| result);
    match result {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", "the database is not reachable".into())
        }
    }
}

/// `GET /metrics` (see [`crate::metrics`]).
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.state();
    let reading =
        PoolReading { connections: pool.connections, idle: pool.idle_connections, max: state.pool.max_size() };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(reading))
}
