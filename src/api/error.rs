//! The management API's errors: a stable code, a sentence for people, the request id.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::error::{AppError, json_error};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorCode {
    MissingApiKey,
    InvalidApiKey,
    TokenExpired,
    ServiceUnavailable,
    Internal,
}

impl ApiErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::TokenExpired => "token_expired",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Internal => "internal_error",
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
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            ApiErrorCode::MissingApiKey | ApiErrorCode::InvalidApiKey | ApiErrorCode::TokenExpired => {
                StatusCode::UNAUTHORIZED
            }
            ApiErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = json_error(self.status_code(), self.code.as_str(), self.message.to_string());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: a 401 names the scheme to use.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="latchkey""#));
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        e.log();
        match e {
            AppError::Unavailable(_) => Self::new(ApiErrorCode::ServiceUnavailable, "the database is unavailable"),
            _ => Self::new(
                ApiErrorCode::Internal,
                "an unexpected error occurred; the request id identifies it in the logs",
            ),
        }
    }
}
