//! The management API's authentication step: the [`Principal`] extractor every handler
//! takes. It authenticates the credential (an API key or an access token, `principal`),
//! then counts the request against the caller's rate limit, or the address's when there is
//! no credential.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use super::error::{ApiError, ApiErrorCode};
use crate::apikeys::authenticate::presented_key;
use crate::principal::{Principal, authenticate as authenticate_credential};
use crate::ratelimit::{Decision, FailureBudget, Limits, caller_address};
use crate::state::AppState;

/// Authenticates the request's credential, then counts the request against the caller's
/// rate limit: a key's, a user's (for a user's tokens) or a client's. A refused credential
/// was counted as a failure from the caller's address; a request without one spends the
/// address's budget. The decision is left in the request for the headers every API
/// response carries.
async fn authenticate(req: &HttpRequest, state: &web::Data<AppState>) -> Result<Principal, ApiError> {
    let defaults = Limits::configured(&state.settings);
    let authenticated = match presented_key(req) {
        None => Err(ApiError::new(
            ApiErrorCode::MissingApiKey,
            "send an API key or an access token as `Authorization: Bearer <credential>` or `X-User-Token: <credential>`",
        )),
        Some(presented) => authenticate_credential(req, state, presented).await.map_err(ApiError::from),
    };
    let decision = match &authenticated {
        Ok(principal) => state.limiter.check(&principal.rate_limit_subject(), principal.limits(defaults)).await,
        Err(error) if error.code == ApiErrorCode::MissingApiKey => {
            state.limiter.check(&format!("ip:{}", caller_address(req.peer_addr().map(|a| a.ip()))), defaults).await
        }
        // Already counted as a failure: report where that bucket stands.
        Err(_) => FailureBudget::of(&state.limiter, req.peer_addr().map(|a| a.ip()), &state.settings).allows().await,
    };
    // A refused credential has its answer already (401, or 429 past the address's failures).
    let refused = authenticated.as_ref().is_err_and(|e| e.code != ApiErrorCode::MissingApiKey);
    if !decision.allowed && !refused {
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

impl FromRequest for Principal {
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
