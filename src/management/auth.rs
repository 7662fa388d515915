//! The management API's authentication step: the [`ApiKeyAuth`] extractor every handler
//! takes. It authenticates the key (`apikeys`), then counts the request against the key's
//! rate limit, or the address's when there is no key.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::error::{ApiError, ApiErrorCode};
use crate::apikeys::authenticate::{ApiKeyAuth, authenticate_key, presented_key};
use crate::ratelimit::{Decision, FailureBudget, Limits, Tier, caller_address};
use crate::state::AppState;

/// Authenticates the request's key, then counts the request against the key's rate limit.
/// A refused key was counted as a failure from the caller's address (see
/// [`authenticate_key`]); a request without a key spends the address's budget. The
/// decision is left in the request for the headers every API response carries.
async fn authenticate(req: &HttpRequest, state: &web::Data<AppState>) -> Result<ApiKeyAuth, ApiError> {
    let defaults = Limits::configured(&state.settings);
    let authenticated = match presented_key(req) {
        None => Err(ApiError::new(
            ApiErrorCode::MissingApiKey,
            "send an API key as `Authorization: Bearer <key>` or `X-User-Token: <key>`",
        )),
        Some(presented) => authenticate_key(req, state, presented).await.map_err(ApiError::from),
    };
    let decision = match &authenticated {
        Ok(auth) => {
            let tier = auth.key.tier.as_deref().and_then(|t| t.parse::<Tier>().ok());
            state.limiter.check(&format!("key:{}", auth.key.id), tier.map_or(defaults, Limits::of_tier)).await
        }
        Err(error) if error.code == ApiErrorCode::MissingApiKey => {
            state.limiter.check(&format!("ip:{}", caller_address(req.peer_addr().map(|a| a.ip()))), defaults).await
        }
        // Already counted as a failure: report where that bucket stands.
        Err(_) => FailureBudget::of(&state.limiter, req.peer_addr().map(|a| a.ip()), &state.settings).allows().await,
    };
    // A refused key has its answer already (401, or 429 past the address's failures).
    let refused_key = authenticated.as_ref().is_err_and(|e| e.code != ApiErrorCode::MissingApiKey);
    if !decision.allowed && !refused_key {
        return Err(rate_limited(req, decision));
    }
    req.extensions_mut().insert(decision);
    authenticated
}

/// 429, with the decision left for the headers.
fn rate_limited(req: &HttpRequest, decision: Decision) -> ApiError {
    let retry_after = decision.retry_after;
    req.extensions_mut().insert(decision);
    ApiError::new(ApiErrorCode::RateLimitExceeded, crate::ratelimit::exceeded_message(retry_after))
}

impl FromRequest for ApiKeyAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::new(ApiErrorCode::Internal, "the server is misconfigured"))?;
            authenticate(&req, &state).await
        })
    }
}
