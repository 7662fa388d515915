//! The management API's errors: a stable code, a sentence for people, the request id.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::access::Denied;
use crate::error::{AppError, json_error};
use crate::principal::Refusal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorCode {
    MissingApiKey,
    InvalidApiKey,
    InvalidToken,
    TokenExpired,
    Forbidden,
    NotFound,
    InvalidRequest,
    Conflict,
    MethodNotAllowed,
    RateLimitExceeded,
    ServiceUnavailable,
    Internal,
}

impl ApiErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidRequest => "invalid_request",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Internal => "internal_error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::MissingApiKey | Self::InvalidApiKey | Self::InvalidToken | Self::TokenExpired => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Conflict => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ApiErrorCode,
    pub message: Cow<'static, str>,
}

impl ApiError {
    pub fn new(code: ApiErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ApiErrorCode::InvalidRequest, message)
    }

    /// A bad input, in the words of its own error.
    pub fn invalid_reason(reason: impl std::fmt::Display) -> Self {
        Self::invalid(reason.to_string())
    }

    pub fn not_found() -> Self {
        Self::new(ApiErrorCode::NotFound, "no such resource, or it is outside this key's reach")
    }
}

impl ApiError {
    /// RFC 6750 §3: a 401 names the scheme to use and, when a credential was presented,
    /// says that it was not good (`invalid_token`, for keys as for tokens) and why.
    fn challenge(&self) -> HeaderValue {
        if self.code == ApiErrorCode::MissingApiKey {
            return HeaderValue::from_static(r#"Bearer realm="latchkey""#);
        }
        // A quoted-string: the message is ours, but keep it safe whatever it becomes.
        let description: String = self
            .message
            .chars()
            .map(|c| if c == '"' || c == '\\' || !(' '..='~').contains(&c) { '\'' } else { c })
            .collect();
        HeaderValue::from_str(&format!(
            r#"Bearer realm="latchkey", error="invalid_token", error_description="{description}""#
        ))
        .unwrap_or(HeaderValue::from_static(r#"Bearer realm="latchkey", error="invalid_token""#))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = json_error(self.status_code(), self.code.as_str(), self.message.to_string());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, self.challenge());
        }
        if self.code == ApiErrorCode::ServiceUnavailable {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::error::BUSY_RETRY_AFTER_SECS));
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        e.log();
        match e {
            AppError::NotFound => Self::not_found(),
            AppError::Forbidden(message) => Self::new(ApiErrorCode::Forbidden, message),
            AppError::BadRequest(message) => Self::invalid(message),
            AppError::Conflict(message) => Self::new(ApiErrorCode::Conflict, message),
            AppError::Unavailable(_) => Self::new(ApiErrorCode::ServiceUnavailable, "the database is unavailable"),
            AppError::Busy(busy) => Self::new(ApiErrorCode::ServiceUnavailable, busy.to_string()),
            AppError::Unexpected(_) => Self::new(
                ApiErrorCode::Internal,
                "an unexpected error occurred; the request id identifies it in the logs",
            ),
        }
    }
}

impl From<Denied> for AppError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => Self::NotFound,
            Denied::Forbidden => Self::Forbidden("this key lacks the permission for that".into()),
        }
    }
}

/// A refused credential, in the API's words: 401 `invalid_api_key`, `invalid_token` or
/// `token_expired`, or 429 once the address has used up its failed authentications.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let code = match refusal {
            Refusal::InvalidKey(_) => ApiErrorCode::InvalidApiKey,
            Refusal::InvalidToken(_) => ApiErrorCode::InvalidToken,
            Refusal::Expired(_) => ApiErrorCode::TokenExpired,
            Refusal::TooManyFailures { .. } => ApiErrorCode::RateLimitExceeded,
            Refusal::Unchecked(error) => return error.into(),
        };
        Self::new(code, refusal.to_string())
    }
}
