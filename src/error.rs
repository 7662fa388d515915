//! `AppError`: what the storage and domain layers report. HTTP layers turn it into their
//! own audience's error (RFC 6749 JSON for OAuth, `{"error","message","request_id"}` for
//! the API); unexpected causes are logged with their chain and never shown to clients.
//!
//! Floor: leaves (docs/architecture.md); names only `telemetry` (the request id) and `passwords` (its `Busy`).

use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::telemetry::current_request_id;

#[derive(thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Bounded work (password checks) is at capacity: worth retrying in a second.
    #[error("{0}")]
    Busy(#[from] crate::passwords::Busy),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        error_chain_fmt(self, f)
    }
}

/// Writes an error followed by each of its causes, one per line.
pub fn error_chain_fmt(e: &impl std::error::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{e}")?;
    let mut current = e.source();
    while let Some(cause) = current {
        writeln!(f, "Caused by:\n\t{cause}")?;
        current = cause.source();
    }
    Ok(())
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict(format!("already exists ({})", info.message()))
            }
            other => Self::Unexpected(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        Self::Unavailable(anyhow::Error::new(e).context("no database connection could be had"))
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Unexpected(anyhow::Error::new(e).context("the blocking thread pool is gone"))
    }
}

impl AppError {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::BadRequest(_) => "invalid_request",
            Self::Conflict(_) => "conflict",
            Self::Unavailable(_) | Self::Busy(_) => "service_unavailable",
            Self::Unexpected(_) => "internal_error",
        }
    }

    /// Logs what the client will not see.
    pub fn log(&self) {
        match self {
            Self::Unavailable(_) => tracing::warn!(error = ?self, "request failed"),
            Self::Unexpected(_) => tracing::error!(error = ?self, "request failed"),
            _ => {}
        }
    }
}

/// What `Retry-After` says when password checks are at capacity: a check takes tens of
/// milliseconds, so the queue is empty again within a second.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// The management API's error body (INTERFACE §5).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub message: String,
    pub request_id: String,
}

pub fn json_error(status: StatusCode, code: &str, message: String) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { error: code, message, request_id: current_request_id() })
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let message = match self {
            Self::Unexpected(_) => "an unexpected error occurred; the request id identifies it in the logs".into(),
            other => other.to_string(),
        };
        let mut response = json_error(self.status_code(), self.code(), message);
        if matches!(self, Self::Busy(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(BUSY_RETRY_AFTER_SECS));
        }
        response
    }
}
