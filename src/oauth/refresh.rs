//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700
//! §4.14.2): every use retires the token and issues its successor in the same family; a
//! retired token presented again means it was copied, and the whole family is revoked,
//! the newest token included. A refresh may narrow the scope, never widen it.

use actix_web::HttpRequest;
use chrono::{NaiveDateTime, TimeDelta};

use super::access_tokens::{GrantTarget, draft_access_token, load_grant_target, sign_access_token};
use super::client_auth::{PresentedClient, authenticate_client_then};
use super::error::OAuthError;
use super::params::OAuthParams;
use super::token::{TokenResponse, ensure_grant_allowed};
use crate::crypto::{TokenHasher, random_token};
use crate::db::DbConnection;
use crate::db::clients::Client;
use crate::db::refresh_tokens::{
    FamilyMember, NewRefreshToken, RefreshToken, find_refresh_token, insert_refresh_token, retire_refresh_token,
    revoke_refresh_family,
};
use crate::domain::{GrantType, Scopes};
use crate::state::AppState;
use crate::tokens::{AccessTokenClaims, IssuanceProof};

/// A family lives this long from its first token, however often it is refreshed.
pub const REFRESH_TOKEN_LIFETIME: TimeDelta = TimeDelta::days(30);

/// Stores a new refresh token and returns it: the only time it exists in the clear.
pub fn store_refresh_token(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    member: &FamilyMember<'_>,
    now: NaiveDateTime,
) -> diesel::QueryResult<String> {
    let token = random_token::<32>();
    let id = uuid::Uuid::new_v4().to_string();
    insert_refresh_token(
        conn,
        &NewRefreshToken { id: &id, token_hash: hasher.hash(&token).as_str(), created_at: now, member: *member },
    )?;
    Ok(token)
}

struct Rotated {
    refresh_token: String,
    scope: Scopes,
    target: GrantTarget,
    /// The access token's claims, recorded with the new refresh token before it is signed.
    claims: AccessTokenClaims,
}

struct Presented {
    token_hash: String,
    requested_scope: Option<Scopes>,
    issuer: String,
    proof: IssuanceProof,
    default_ttl_secs: i64,
    hasher: TokenHasher,
}

/// Checks, retires and replaces the token (from a blocking context).
fn rotate(conn: &mut DbConnection, client: &Client, presented: Presented) -> Result<Rotated, OAuthError> {
    ensure_grant_allowed(client, GrantType::RefreshToken)?;
    let now = crate::db::now();
    let Some(current) = find_refresh_token(conn, &presented.token_hash)? else {
        return Err(OAuthError::invalid_grant("the refresh token is unknown"));
    };
    if current.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    let original = Scopes::parse(&current.scope).unwrap_or_default();
    let scope = match presented.requested_scope {
        Some(requested) if !requested.is_subset(&original) => {
            return Err(OAuthError::invalid_scope(format!(
                "a refresh cannot add scopes: {}",
                requested.not_in(&original).join(" ")
            )));
        }
        Some(requested) => requested,
        None => original,
    };
    let target =
        load_grant_target(conn, &current.user_id, &current.audience, &presented.issuer, presented.default_ttl_secs)?;
    let claims = draft_access_token(
        &presented.issuer,
        &presented.proof,
        target.audience(),
        target.lifetime_secs,
        &current.user_id,
        &client.client_id,
        &scope,
    );

    // Retiring the old token and storing its successor commit together; the family's
    // revocation on reuse must not be rolled back with an error, so it comes after.
    let successor = crate::db::write_transaction(conn, |conn| -> diesel::QueryResult<Option<String>> {
        if !retire_refresh_token(conn, &presented.token_hash, now)? {
            return Ok(None);
        }
        let member = FamilyMember {
            family_id: &current.family_id,
            parent_id: Some(&current.id),
            client_id: &current.client_id,
            user_id: &current.user_id,
            // RFC 6749 §6: the new refresh token keeps the scope of the old one.
            scope: &current.scope,
            audience: &current.audience,
            auth_code_hash: current.auth_code_hash.as_deref(),
            access_token_jti: &claims.jti,
            access_token_expires_at: claims.expires_at(),
            expires_at: current.expires_at,
        };
        store_refresh_token(conn, &presented.hasher, &member, now).map(Some)
    })?;
    match successor {
        Some(refresh_token) => Ok(Rotated { refresh_token, scope, target, claims }),
        None => Err(refuse_retired(conn, &presented.token_hash, now)?),
    }
}

/// The token could not be retired: expired, or already used or revoked, which means a
/// copy is in someone else's hands.
fn refuse_retired(conn: &mut DbConnection, token_hash: &str, now: NaiveDateTime) -> Result<OAuthError, OAuthError> {
    let Some(token) = find_refresh_token(conn, token_hash)? else {
        return Ok(OAuthError::invalid_grant("the refresh token is unknown"));
    };
    if token.used_at.is_none() && token.revoked_at.is_none() {
        return Ok(OAuthError::invalid_grant("the refresh token has expired"));
    }
    let revoked = revoke_refresh_family(conn, &token.family_id, now)?;
    tracing::warn!(client_id = %token.client_id, family = %token.family_id, revoked, "a retired refresh token was reused; its family is revoked");
    Ok(OAuthError::invalid_grant("the refresh token was already used; every token of its grant is now revoked"))
}

pub async fn issue(
    state: &AppState,
    req: &HttpRequest,
    presented_client: PresentedClient,
    params: &OAuthParams,
) -> Result<TokenResponse, OAuthError> {
    let presented = Presented {
        token_hash: state.hasher.hash(params.required("refresh_token")?).into_string(),
        requested_scope: params
            .get("scope")?
            .map(Scopes::parse)
            .transpose()
            .map_err(|e| OAuthError::invalid_scope(e.to_string()))?,
        issuer: state.issuer.to_string(),
        proof: state.issuance.clone(),
        default_ttl_secs: state.settings.access_token_ttl_secs,
        hasher: state.hasher.clone(),
    };
    let (_, rotated) =
        authenticate_client_then(state, req, presented_client, move |conn, client| rotate(conn, client, presented))
            .await?;
    let target = &rotated.target;
    let access = sign_access_token(state, target.audience(), rotated.claims).await?;
    let mut response = TokenResponse::bearer(access.token, access.expires_in, &rotated.scope);
    response.refresh_token = Some(rotated.refresh_token);
    Ok(response)
}

/// Whether `token` is a live refresh token, for introspection.
pub fn find_usable(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    token: &str,
) -> diesel::QueryResult<Option<RefreshToken>> {
    let now = crate::db::now();
    Ok(find_refresh_token(conn, hasher.hash(token).as_str())?.filter(|t| t.is_usable(now)))
}
