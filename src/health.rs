//! Liveness and readiness for orchestrators.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use diesel::connection::SimpleConnection;

use crate::error::{AppError, json_error};
use crate::startup::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(get_healthz)).route("/readyz", web::get().to(get_readyz));
}

/// The process is up and serving.
pub async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers; a load balancer should not route here otherwise.
pub async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    let result =
        crate::db::run(&state.pool, |conn| conn.batch_execute("SELECT 1").map_err(|e| AppError::Unexpected(e.into())))
            .await;
    match result {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", "the database is not reachable".into())
        }
    }
}
