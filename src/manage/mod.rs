//! What operators do: register clients and APIs, rotate signing keys, create API keys,
//! and the audit trail of it. Plain functions over a connection, shared by the CLI and
//! the HTTP layers, returning `AppError` (`BadRequest` for input a person must fix).

pub mod api_keys;
pub mod apis;
pub mod audit;
pub mod clients;
pub mod keys;
pub mod users;

use chrono::{DateTime, NaiveDateTime, Utc};

/// Timestamps leave the server as RFC 3339 UTC.
pub(crate) fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(at, Utc)
}
