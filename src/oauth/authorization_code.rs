//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3), with PKCE
//! (RFC 7636 §4.6). A code works once; a second use is treated as theft and revokes the
//! tokens the first use produced (RFC 9700 §4.5.1).

use actix_web::HttpRequest;

use super::access_tokens::{GrantDrafter, GrantTarget};
use super::client_auth::{PresentedClient, authenticate_client_then};
use super::connect::{Collection, key_response};
use super::error::OAuthError;
use super::params::OAuthParams;
use super::refresh::{FreshRefreshToken, REFRESH_TOKEN_LIFETIME};
use super::token::{PersonGrant, TokenResponse, answer_person_grant, ensure_grant_allowed};
use super::token_exchange::API_KEY_TOKEN_TYPE;
use crate::audit::Origin;
use crate::config::Environment;
use crate::crypto::{PresentedHashes, TokenHasher};
use crate::db::DbConnection;
use crate::db::api_keys::revoke_api_key;
use crate::db::authorization_codes::{
    AuthorizationCode, consume_code, find_code, find_code_with_user, record_code_key, redeem_code,
};
use crate::db::clients::Client;
use crate::db::refresh_tokens::FamilyMember;
use crate::db::refresh_tokens::revoke_families_of_code;
use crate::db::revoked_tokens::revoke_token;
use crate::domain::{Authentication, CodeChallenge, GrantType, Scopes};
use crate::error::AppError;
use crate::manage::api_keys::CreatedApiKey;
use crate::state::AppState;
use crate::tokens::AccessTokenClaims;

struct TokensRedeemed {
    code: AuthorizationCode,
    target: GrantTarget,
    /// The access token's claims, recorded with the code before it is signed.
    claims: AccessTokenClaims,
    refresh_token: Option<String>,
    authentication: Authentication,
}

enum Redeemed {
    Tokens(Box<TokensRedeemed>),
    /// The connect flow's answer: the key the person chose, made now and shown only here.
    Key(Box<CreatedApiKey>),
}

struct Presented {
    code_hashes: PresentedHashes,
    redirect_uri: Option<String>,
    verifier: Option<String>,
    drafter: GrantDrafter,
    hasher: TokenHasher,
    environment: Environment,
    origin: Origin,
}

/// Checks and consumes the code (from a blocking context).
fn redeem(conn: &mut DbConnection, client: &Client, presented: Presented) -> Result<Redeemed, OAuthError> {
    ensure_grant_allowed(client, GrantType::AuthorizationCode)?;
    let now = crate::db::now();
    let Some((code, user)) = presented.code_hashes.find(|hash| find_code_with_user(conn, hash))? else {
        return Err(OAuthError::invalid_grant("the authorization code is unknown"));
    };
    if code.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the authorization code was issued to another client"));
    }
    if code.consumed_at.is_some() {
        return Err(replayed(conn, &code, now)?);
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant("the authorization code has expired"));
    }
    // RFC 6749 §4.1.3: required if the authorization request carried it, and identical.
    match presented.redirect_uri.as_deref() {
        None if code.redirect_uri_given => {
            return Err(OAuthError::invalid_grant("redirect_uri is required: the authorization request carried one"));
        }
        Some(uri) if uri != code.redirect_uri => {
            return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"));
        }
        _ => {}
    }
    match (code.code_challenge.as_deref(), presented.verifier.as_deref()) {
        (Some(challenge), Some(verifier))
            if CodeChallenge::from_stored(challenge.to_owned()).is_satisfied_by(verifier) => {}
        (Some(_), Some(_)) => return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge")),
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade.
        (None, Some(_)) => return Err(OAuthError::invalid_grant("the authorization request had no code_challenge")),
        (None, None) => {}
    }
    if code.requested_token_type.as_deref() == Some(API_KEY_TOKEN_TYPE) {
        return redeem_key(conn, client, &code, presented, now).map(|key| Redeemed::Key(Box::new(key)));
    }
    let scope = Scopes::parse(&code.scope).unwrap_or_default();
    let authentication = Authentication::from_stored(code.amr.as_deref(), code.auth_time);
    let (target, claims) =
        presented.drafter.draft(conn, user, &code.audience, &client.client_id, &scope, Some(&authentication))?;
    let access_expires_at = claims.expires_at();
    let wants_refresh = scope.contains("offline_access");
    let stored_methods = authentication.methods.to_string();

    // Consuming the code, recording the access token it mints and storing the refresh
    // token commit together; exactly one of concurrent redemptions gets past the consume.
    let refresh_token =
        wants_refresh.then(|| (FreshRefreshToken::new(&presented.hasher), crate::db::time_ordered_id()));
    let first_of_family = refresh_token.as_ref().map(|(token, family_id)| {
        let member = FamilyMember {
            family_id,
            parent_id: None,
            client_id: &code.client_id,
            user_id: &code.user_id,
            scope: &code.scope,
            audience: &code.audience,
            auth_code_hash: Some(&code.code_hash),
            access_token_jti: &claims.jti,
            access_token_expires_at: access_expires_at,
            expires_at: now + REFRESH_TOKEN_LIFETIME,
            amr: Some(&stored_methods),
            auth_time: Some(code.auth_time),
        };
        token.row(member, now)
    });
    if !redeem_code(conn, &code.code_hash, now, (&claims.jti, access_expires_at), first_of_family.as_ref())? {
        // Another request consumed it between our read and our write.
        return Err(replayed(conn, &code, now)?);
    }
    let refresh_token = refresh_token.map(|(token, _)| token.token);
    Ok(Redeemed::Tokens(Box::new(TokensRedeemed { code, target, claims, refresh_token, authentication })))
}

/// Makes the key the person chose ([`Collection`]) in the transaction that consumes the
/// code, and records it with the code for revocation should the code be replayed.
fn redeem_key(
    conn: &mut DbConnection,
    client: &Client,
    code: &AuthorizationCode,
    presented: Presented,
    now: chrono::NaiveDateTime,
) -> Result<CreatedApiKey, OAuthError> {
    let collection = Collection::prepare(conn, client, &code.user_id, code.key_request.as_deref(), presented.origin)?;
    let created = crate::db::write_transaction(conn, |conn| -> Result<Option<CreatedApiKey>, AppError> {
        if !consume_code(conn, &code.code_hash, now)? {
            return Ok(None);
        }
        let created = collection.make(conn, &presented.hasher, presented.environment)?;
        record_code_key(conn, &code.code_hash, &created.id)?;
        Ok(Some(created))
    })?;
    match created {
        Some(created) => Ok(created),
        None => Err(replayed(conn, code, now)?),
    }
}

/// A code presented after its use: refused, and what the first use produced is revoked.
fn replayed(
    conn: &mut DbConnection,
    code: &AuthorizationCode,
    now: chrono::NaiveDateTime,
) -> Result<OAuthError, OAuthError> {
    // Read again: the first use may have recorded its tokens after our read.
    let code = find_code(conn, &code.code_hash)?.unwrap_or_else(|| code.clone());
    revoke_issued_from(conn, &code, now)?;
    tracing::warn!(client_id = %code.client_id, "an authorization code was replayed; its tokens are revoked");
    Ok(OAuthError::invalid_grant("the authorization code was already used"))
}

/// A replayed code: whatever its first use produced is revoked.
fn revoke_issued_from(
    conn: &mut DbConnection,
    code: &AuthorizationCode,
    now: chrono::NaiveDateTime,
) -> diesel::QueryResult<()> {
    if let (Some(jti), Some(expires_at)) = (&code.access_token_jti, code.access_token_expires_at) {
        revoke_token(conn, jti, expires_at, now)?;
    }
    if let Some(key_id) = &code.issued_key_id {
        revoke_api_key(conn, key_id, now)?;
    }
    revoke_families_of_code(conn, &code.code_hash, now).map(drop)
}

pub async fn issue(
    state: &AppState,
    req: &HttpRequest,
    presented_client: PresentedClient,
    params: &OAuthParams,
) -> Result<TokenResponse, OAuthError> {
    let presented = Presented {
        code_hashes: state.hasher.presented(params.required("code")?),
        redirect_uri: params.get("redirect_uri")?.map(str::to_owned),
        verifier: params.get("code_verifier")?.map(str::to_owned),
        drafter: GrantDrafter::of(state),
        hasher: state.hasher.clone(),
        environment: state.settings.environment,
        origin: Origin::of(req),
    };
    let (client, redeemed) =
        authenticate_client_then(state, req, presented_client, move |conn, client| redeem(conn, client, presented))
            .await?;
    let redeemed = match redeemed {
        Redeemed::Key(created) => return Ok(key_response(*created)),
        Redeemed::Tokens(tokens) => *tokens,
    };
    let grant = PersonGrant {
        scope: Scopes::parse(&redeemed.code.scope).unwrap_or_default(),
        nonce: redeemed.code.nonce.clone(),
        authentication: redeemed.authentication,
        target: redeemed.target,
        claims: redeemed.claims,
        refresh_token: redeemed.refresh_token,
    };
    answer_person_grant(state, &client.client_id, grant).await
}
