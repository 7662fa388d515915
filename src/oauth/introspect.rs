//! Token introspection (RFC 7662). The caller authenticates as a confidential client;
//! any token it presents is answered, inactive ones with `{"active": false}` alone.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::access_tokens::{AccessTokenStatus, inspect_access_token};
use super::client_auth::{authenticate_client, presented_client};
use super::error::OAuthError;
use super::params::OAuthParams;
use crate::tokens::AccessTokenClaims;

#[derive(Serialize)]
struct IntrospectionResponse<'a> {
    active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    claims: Option<&'a AccessTokenClaims>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
}

#[tracing::instrument(name = "introspect", skip_all)]
pub async fn post_introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<crate::startup::AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params = OAuthParams::from_request(&req, payload).await?;
    let presented = presented_client(&req, &params)?;
    let client = authenticate_client(&state, &req, presented).await?;
    if client.is_public() {
        // Public clients hold no credentials, so anyone could pose as one.
        return Err(OAuthError::invalid_client("introspection requires a confidential client"));
    }
    let token = params.required("token")?;
    // `token_type_hint` only speeds up a search; every kind is tried regardless.
    let status = inspect_access_token(&state, token).await?;
    let body = match &status {
        AccessTokenStatus::Active(claims) => {
            IntrospectionResponse { active: true, claims: Some(claims), token_type: Some("Bearer") }
        }
        AccessTokenStatus::Revoked(_) | AccessTokenStatus::Unknown => {
            IntrospectionResponse { active: false, claims: None, token_type: None }
        }
    };
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))).json(body))
}
