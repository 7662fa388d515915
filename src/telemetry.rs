//! Logging and the per-request context: every response carries `X-Request-Id`, and one
//! log line per request records method, path (never the query, which may hold a token
//! hint), status and latency.
//!
//! Floor: leaves (docs/architecture.md); names only `config`.

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
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let output = match format {
        LogFormat::Text => output.boxed(),
        LogFormat::Json => output.json().flatten_event(true).boxed(),
    };
    let not_http_errors = tracing_subscriber::filter::filter_fn(|metadata| !is_http_error(metadata));
    // A second call (tests start many servers) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output.with_filter(not_http_errors))
        .with(HttpErrorLevels)
        .try_init();
}

/// actix-http's own ERROR lines, which [`HttpErrorLevels`] logs again at a fitting level.
fn is_http_error(metadata: &tracing::Metadata<'_>) -> bool {
    *metadata.level() == tracing::Level::ERROR && metadata.target().starts_with("actix_http::")
}

/// actix-http logs a request it cannot parse ("stream error: …", a malformed request line,
/// a bad header) at ERROR. Anyone can send one, so those lines would page operators for
/// nothing: they are logged again here at INFO, and actix-http's other ERROR lines (a
/// response body that failed mid-way, a client that vanished) at WARN, with the request's
/// span where there is one.
struct HttpErrorLevels;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HttpErrorLevels {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if !is_http_error(event.metadata()) {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.starts_with("stream error") {
            tracing::info!(target: "latchkey::http", error = %message.0, "a client sent a request that could not be parsed");
        } else {
            tracing::warn!(target: "latchkey::http", error = %message.0, "the HTTP layer reported a failure");
        }
    }
}

/// The `message` field of an event.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
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
            let elapsed_us = started.elapsed().as_micros() as u64;
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
