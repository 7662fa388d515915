//! Token revocation (RFC 7009). Access tokens are stateless JWTs: revoking one records its
//! `jti` until it expires, and introspection reports it inactive from then on.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::DateTime;

use super::access_tokens::{AccessTokenStatus, inspect_access_token};
use super::client_auth::{authenticate_client, presented_client};
use super::error::OAuthError;
use super::params::OAuthParams;
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::refresh_tokens::{find_refresh_token, revoke_refresh_family};
use crate::db::revoked_tokens::revoke_token;
use crate::state::AppState;

/// RFC 7009 §2.1: revoking a refresh token also invalidates the access tokens of the same
/// grant, so the whole family goes.
async fn revoke_refresh_token(
    state: &AppState,
    req: &HttpRequest,
    client_id: &str,
    token: &str,
) -> Result<(), OAuthError> {
    let token_hashes = state.hasher.presented(token);
    let client_id = client_id.to_owned();
    let ip = req.peer_addr().map(|addr| addr.ip().to_string());
    let request_id = crate::telemetry::current_request_id();
    let foreign = crate::db::run(&state.pool, move |conn| {
        let Some(refresh) = token_hashes.find(|hash| find_refresh_token(conn, hash))? else {
            return Ok(false);
        };
        if refresh.client_id != client_id {
            return Ok(true);
        }
        revoke_refresh_family(conn, &refresh.family_id, crate::db::now())?;
        let entry = AuditEntry::new(Actor::Client(&client_id), "refresh_token.revoked", Outcome::Success)
            .target("refresh_family", &refresh.family_id)
            .from_request(ip.as_deref(), Some(&request_id));
        audit::record(conn, &entry)?;
        Ok(false)
    })
    .await?;
    if foreign {
        return Err(OAuthError::unauthorized_client("the token was not issued to this client"));
    }
    Ok(())
}

#[tracing::instrument(name = "revoke", skip_all)]
pub async fn post_revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params = OAuthParams::from_request(&req, payload).await?;
    let presented = presented_client(&req, &params)?;
    let client = authenticate_client(&state, &req, presented).await?;
    let token = params.required("token")?;

    // RFC 7009 §2.2: an invalid, expired or already revoked token is not an error.
    let status = inspect_access_token(&state, token).await?;
    if matches!(status, AccessTokenStatus::Unknown) {
        revoke_refresh_token(&state, &req, &client.client_id, token).await?;
    }
    if let AccessTokenStatus::Active(claims, _) = status {
        // §2.1: a client may revoke only the tokens issued to it.
        if claims.client_id != client.client_id {
            return Err(OAuthError::unauthorized_client("the token was not issued to this client"));
        }
        let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_default().naive_utc();
        let ip = req.peer_addr().map(|addr| addr.ip().to_string());
        let request_id = crate::telemetry::current_request_id();
        crate::db::run(&state.pool, move |conn| {
            revoke_token(conn, &claims.jti, expires_at, crate::db::now())?;
            let entry = AuditEntry::new(Actor::Client(&claims.client_id), "access_token.revoked", Outcome::Success)
                .target("access_token", &claims.jti)
                .from_request(ip.as_deref(), Some(&request_id));
            Ok(audit::record(conn, &entry)?)
        })
        .await?;
    }
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))).finish())
}
