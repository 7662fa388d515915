//! Logging and the per-request context: every response carries `X-Request-Id`, and one
//! log line per request records method, path (never the query, which may hold a token
//! hint), status and latency.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, for error bodies; empty outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Installs the global subscriber; `RUST_LOG` overrides the default level.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second call (tests start many servers) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// An id the load balancer set is kept so that logs join up; anything else is replaced.
fn request_id_from(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request_id_from(&req);
    let span = tracing::info_span!("request", method = %req.method(), path = %req.path(), request_id = %request_id);
    let started = Instant::now();
    let result = REQUEST_ID.scope(request_id.clone(), next.call(req)).instrument(span.clone()).await;
    let _entered = span.enter();
    match result {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            let elapsed_us = elapsed.as_micros() as u64;
            if let Some(state) = response.request().app_data::<actix_web::web::Data<crate::startup::AppState>>() {
                let request = response.request();
                let route = request.match_pattern();
                state.metrics.observe_request(
                    request.method().as_str(),
                    route.as_deref(),
                    status,
                    elapsed.as_secs_f64(),
                );
            }
            if status >= 500 {
                tracing::warn!(status, elapsed_us, "served");
            } else {
                tracing::info!(status, elapsed_us, "served");
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(response)
        }
        Err(error) => {
            tracing::warn!(%error, "request failed before a response was built");
            Err(error)
        }
    }
}
