//! RFC 6749 §5.2 error responses, used by the token, introspection and revocation
//! endpoints (RFC 7662 §2.3 and RFC 7009 §2.2.1 reuse them).

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// The request is missing a required parameter, includes an unsupported parameter
    /// value, repeats a parameter, or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed (unknown client, no client authentication included,
    /// or unsupported authentication method).
    InvalidClient,
    /// The provided grant is invalid, expired, revoked, or was issued to another client.
    InvalidGrant,
    /// The authenticated client is not authorized to use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported by the authorization server.
    UnsupportedGrantType,
    /// The requested scope is invalid, unknown, malformed, or exceeds what was granted.
    InvalidScope,
    /// The requested resource is invalid, unknown or not allowed (RFC 8707 §2).
    InvalidTarget,
    /// The server does not support revocation of the presented token type (RFC 7009).
    UnsupportedTokenType,
    /// An unexpected condition prevented the server from fulfilling the request.
    ServerError,
    /// The server is temporarily unable to handle the request.
    TemporarilyUnavailable,
    /// RFC 8628 §3.5: the person has not decided yet; poll again after the interval.
    AuthorizationPending,
    /// RFC 8628 §3.5: polled too soon; the interval grows by 5 seconds.
    SlowDown,
    /// RFC 8628 §3.5: the person denied the request.
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired; start again.
    ExpiredToken,
    /// The client has made too many requests (429 with `Retry-After`); not in RFC 6749,
    /// named as in the management API.
    RateLimitExceeded,
}

#[derive(Debug, thiserror::Error, Serialize)]
#[error("{error:?}: {error_description}")]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    pub error_description: Cow<'static, str>,
    /// Seconds for `Retry-After`, on a refusal for too many requests.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(error: OAuthErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self { error, error_description: description.into(), retry_after: None }
    }

    /// 429: too many requests (or failures) from this caller; try again in `retry_after` s.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(OAuthErrorCode::RateLimitExceeded, crate::ratelimit::exceeded_message(retry_after))
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidScope, description)
    }

    pub fn invalid_target(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidTarget, description)
    }

    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::UnauthorizedClient, description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self.error {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        response.insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        if self.error == OAuthErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client should use.
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="latchkey""#)));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        response.json(self)
    }
}

impl From<diesel::result::Error> for OAuthError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::from(e).into()
    }
}

impl From<AppError> for OAuthError {
    fn from(e: AppError) -> Self {
        e.log();
        match e {
            AppError::Unavailable(_) => {
                Self::new(OAuthErrorCode::TemporarilyUnavailable, "the server is temporarily unavailable")
            }
            _ => Self::new(OAuthErrorCode::ServerError, "an unexpected error occurred"),
        }
    }
}
