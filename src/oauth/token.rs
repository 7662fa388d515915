//! The token endpoint (RFC 6749 §3.2, §5).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::client_auth::{authenticate_client, presented_client};
use super::error::{OAuthError, OAuthErrorCode};
use super::params::OAuthParams;
use crate::domain::GrantType;
use crate::startup::AppState;

/// RFC 6749 §5.1.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse").field("expires_in", &self.expires_in).field("scope", &self.scope).finish()
    }
}

/// The grants this server can issue today; metadata lists exactly these.
pub const SUPPORTED_GRANTS: &[GrantType] = &[GrantType::ClientCredentials];

#[tracing::instrument(name = "token", skip_all, fields(grant_type, client_id))]
pub async fn post_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params = OAuthParams::from_request(&req, payload).await?;
    let grant_type = params.required("grant_type")?;
    tracing::Span::current().record("grant_type", grant_type);
    let presented = presented_client(&req, &params)?;
    let client = authenticate_client(&state, &req, presented).await?;
    tracing::Span::current().record("client_id", client.client_id.as_str());

    let grant =
        grant_type.parse::<GrantType>().ok().filter(|grant| SUPPORTED_GRANTS.contains(grant)).ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                format!("the grant type `{grant_type}` is not supported"),
            )
        })?;
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client(format!("this client may not use the {grant} grant")));
    }
    let response = match grant {
        GrantType::ClientCredentials => super::client_credentials::issue(&state, &client, &params).await?,
        GrantType::AuthorizationCode | GrantType::RefreshToken | GrantType::TokenExchange => {
            unreachable!("filtered by SUPPORTED_GRANTS")
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .json(response))
}
