//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700
//! §4.14.2): every use retires the token and issues its successor in the same family; a
//! retired token presented again means it was copied, and the whole family is revoked,
//! the newest token included. A refresh may narrow the scope, never widen it.
//!
//! Except a retry: two tabs refreshing at once, or an app that timed out and asks again,
//! would otherwise sign their user out. Within the client's window after a rotation
//! (`refresh_retry_window_secs`, default 30 s), the same client asking the same way, while
//! the successor is unused, gets the rotation's answer again, byte for byte: the same
//! access and refresh token, not a second branch of the family.

use actix_web::HttpRequest;
use chrono::{NaiveDateTime, TimeDelta};

use serde::{Deserialize, Serialize};

use super::access_tokens::{BlockingSigner, GrantDrafter};
use super::client_auth::{PresentedClient, authenticate_client_then};
use super::error::OAuthError;
use super::params::OAuthParams;
use super::token::{TokenResponse, ensure_grant_allowed};
use crate::audit::{self, Origin};
use crate::crypto::{PresentedHashes, Sealer, TokenHash, TokenHasher, random_token};
use crate::db::DbConnection;
use crate::db::clients::Client;
use crate::db::refresh_tokens::{
    FamilyMember, NewRefreshToken, RefreshToken, RetryAnswer, find_refresh_token, find_refresh_token_with_user,
    insert_refresh_token, revoke_refresh_family, rotate_refresh_token,
};
use crate::domain::{Authentication, GrantType, Scopes};
use crate::state::AppState;

/// A family lives this long from its first token, however often it is refreshed.
pub const REFRESH_TOKEN_LIFETIME: TimeDelta = TimeDelta::days(30);

/// A refresh token made now: in the clear for the answer (the only time it exists so), and
/// its keyed hash and id for its row.
pub struct FreshRefreshToken {
    pub token: String,
    hash: TokenHash,
    id: String,
}

impl FreshRefreshToken {
    pub fn new(hasher: &TokenHasher) -> Self {
        let token = random_token::<32>();
        Self { hash: hasher.hash(&token), id: crate::db::time_ordered_id(), token }
    }

    /// Its row, as a member of `member`'s family.
    pub fn row<'a>(&'a self, member: FamilyMember<'a>, now: NaiveDateTime) -> NewRefreshToken<'a> {
        NewRefreshToken { id: &self.id, token_hash: self.hash.as_str(), created_at: now, member }
    }
}

/// Stores a new refresh token and returns it: the only time it exists in the clear.
pub fn store_refresh_token(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    member: &FamilyMember<'_>,
    now: NaiveDateTime,
) -> diesel::QueryResult<String> {
    let fresh = FreshRefreshToken::new(hasher);
    insert_refresh_token(conn, &fresh.row(*member, now))?;
    Ok(fresh.token)
}

/// A rotation's answer as kept for retries, with what makes a request a retry of it: the
/// same client (checked against the token's row) authenticating the same way and asking
/// for the same scope. Tokens in the clear: only ever sealed, never logged.
#[derive(Serialize, Deserialize)]
struct RetryRecord {
    auth_method: String,
    requested_scope: Option<String>,
    access_token: String,
    expires_in: i64,
    scope: Option<String>,
    refresh_token: String,
}

impl RetryRecord {
    fn of(response: &TokenResponse, request: &RetryKey) -> Self {
        Self {
            auth_method: request.auth_method.to_owned(),
            requested_scope: request.requested_scope.clone(),
            access_token: response.access_token.clone(),
            expires_in: response.expires_in.unwrap_or_default(),
            scope: response.scope.clone(),
            refresh_token: response.refresh_token.clone().unwrap_or_default(),
        }
    }

    /// The answer exactly as first given: serialising it again yields the same bytes.
    fn answer(self) -> TokenResponse {
        TokenResponse {
            access_token: self.access_token,
            token_type: "Bearer",
            expires_in: Some(self.expires_in),
            scope: self.scope,
            refresh_token: Some(self.refresh_token),
            id_token: None,
            issued_token_type: None,
        }
    }
}

/// What a retry must repeat of the request that rotated the token.
struct RetryKey {
    auth_method: &'static str,
    requested_scope: Option<String>,
}

struct Presented {
    token_hashes: PresentedHashes,
    requested_scope: Option<Scopes>,
    retry_key: RetryKey,
    drafter: GrantDrafter,
    hasher: TokenHasher,
    sealer: Sealer,
    signer: BlockingSigner,
    origin: Origin,
}

/// Checks, retires and replaces the token, or answers a retry (from a blocking context).
///
/// The access token is signed and the answer sealed before the transaction, so that the
/// answer commits with the rotation: a retry after a crash between commit and response gets
/// it too. Of concurrent requests with one token, one rotates it; the others, finding it
/// retired, are answered as retries.
fn rotate(conn: &mut DbConnection, client: &Client, presented: Presented) -> Result<TokenResponse, OAuthError> {
    ensure_grant_allowed(client, GrantType::RefreshToken)?;
    let now = crate::db::now();
    let Some((current, user)) = presented.token_hashes.find(|hash| find_refresh_token_with_user(conn, hash))? else {
        return Err(OAuthError::invalid_grant("the refresh token is unknown"));
    };
    if current.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    if !current.is_usable(now) {
        return retry_or_refuse(conn, client, &current, &presented, now);
    }
    let original = Scopes::parse(&current.scope).unwrap_or_default();
    let scope = match &presented.requested_scope {
        Some(requested) if !requested.is_subset(&original) => {
            return Err(OAuthError::invalid_scope(format!(
                "a refresh cannot add scopes: {}",
                requested.not_in(&original).join(" ")
            )));
        }
        Some(requested) => requested.clone(),
        None => original,
    };
    // RFC 9470 §3: a refreshed token reports the original sign-in, never a fresh one.
    let authentication = current.auth_time.map(|at| Authentication::from_stored(current.amr.as_deref(), at));
    let (target, claims) =
        presented.drafter.draft(conn, user, &current.audience, &client.client_id, &scope, authentication.as_ref())?;
    let (jti, access_expires_at) = (claims.jti.clone(), claims.expires_at());
    let access = presented.signer.sign(conn, target.audience(), claims)?;
    let successor = FreshRefreshToken::new(&presented.hasher);
    let mut response = TokenResponse::bearer(access.token, access.expires_in, &scope);
    response.refresh_token = Some(successor.token.clone());
    let sealed = (client.refresh_retry_secs > 0).then(|| {
        let record = serde_json::to_vec(&RetryRecord::of(&response, &presented.retry_key))
            .expect("a record of strings and integers serialises");
        presented.sealer.seal(&record, &RefreshToken::retry_seal_context(&current.token_hash))
    });
    let retry = sealed
        .as_deref()
        .map(|sealed| RetryAnswer { sealed, until: now + TimeDelta::seconds(client.refresh_retry_secs) });

    // Retiring the old token and storing its successor commit together; the family's
    // revocation on reuse must not be rolled back with an error, so it comes after.
    let member = FamilyMember {
        family_id: &current.family_id,
        parent_id: Some(&current.id),
        client_id: &current.client_id,
        user_id: &current.user_id,
        // RFC 6749 §6: the new refresh token keeps the scope of the old one.
        scope: &current.scope,
        audience: &current.audience,
        auth_code_hash: current.auth_code_hash.as_deref(),
        access_token_jti: &jti,
        access_token_expires_at: access_expires_at,
        expires_at: current.expires_at,
        amr: current.amr.as_deref(),
        auth_time: current.auth_time,
    };
    let rotated = rotate_refresh_token(conn, &current.token_hash, now, retry, &successor.row(member, now))?;
    if rotated {
        return Ok(response);
    }
    // Another request rotated it between our read and our write: most likely this one's
    // twin (two tabs, a retry after a timeout), answered as a retry of it.
    let current = find_refresh_token(conn, &current.token_hash)?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is unknown"))?;
    retry_or_refuse(conn, client, &current, &presented, now)
}

/// The token was not usable: expired, revoked, or already rotated. A retry of its rotation
/// within the client's window, while the successor is still unused, gets that rotation's
/// answer again; any other use means a copy is in someone else's hands, and revokes the
/// whole family.
fn retry_or_refuse(
    conn: &mut DbConnection,
    client: &Client,
    current: &RefreshToken,
    presented: &Presented,
    now: NaiveDateTime,
) -> Result<TokenResponse, OAuthError> {
    match (current.used_at, current.revoked_at) {
        (None, None) => return Err(OAuthError::invalid_grant("the refresh token has expired")),
        (None, Some(_)) => return Err(OAuthError::invalid_grant("the refresh token was revoked")),
        (Some(_), _) => {}
    }
    if let Some(answer) = retry_answer(conn, current, presented, now)? {
        tracing::info!(client_id = %client.client_id, family = %current.family_id, "a refresh was retried; it got the answer its rotation gave");
        return Ok(answer);
    }
    let revoked = crate::db::write_transaction(conn, |conn| -> diesel::QueryResult<usize> {
        let revoked = revoke_refresh_family(conn, &current.family_id, now)?;
        audit::record(
            conn,
            &audit::Context::of(
                audit::Actor::Client(&client.client_id),
                presented.origin.ip.as_deref(),
                Some(&presented.origin.request_id),
            )
            .entry("refresh_token.reused", audit::Outcome::Failure)
            .target("refresh_token_family", &current.family_id)
            .details(serde_json::json!({ "user_id": current.user_id, "revoked": revoked })),
        )?;
        Ok(revoked)
    })?;
    tracing::warn!(client_id = %client.client_id, family = %current.family_id, revoked, "a retired refresh token was reused; its family is revoked");
    Err(OAuthError::invalid_grant("the refresh token was already used; every token of its grant is now revoked"))
}

/// The answer kept for a retry of `current`'s rotation, if this request is one: within the
/// window, from the same client the same way, for the same scope, and nobody has used the
/// successor yet (once the app has moved on, an old token is a copy, not a retry).
fn retry_answer(
    conn: &mut DbConnection,
    current: &RefreshToken,
    presented: &Presented,
    now: NaiveDateTime,
) -> Result<Option<TokenResponse>, OAuthError> {
    let (Some(sealed), Some(until)) = (&current.retry_answer_sealed, current.retry_until) else {
        return Ok(None);
    };
    if current.revoked_at.is_some() || until <= now || current.expires_at <= now {
        return Ok(None);
    }
    let record = presented
        .sealer
        .open(sealed, &RefreshToken::retry_seal_context(&current.token_hash))
        .ok()
        .and_then(|plain| serde_json::from_slice::<RetryRecord>(&plain).ok());
    let Some(record) = record else {
        tracing::warn!(family = %current.family_id, "a kept refresh answer could not be opened; taken as a reuse");
        return Ok(None);
    };
    if record.auth_method != presented.retry_key.auth_method
        || record.requested_scope != presented.retry_key.requested_scope
    {
        return Ok(None);
    }
    let successor = presented.hasher.presented(&record.refresh_token).find(|hash| find_refresh_token(conn, hash))?;
    if !successor.is_some_and(|successor| successor.is_usable(now)) {
        return Ok(None);
    }
    Ok(Some(record.answer()))
}

pub async fn issue(
    state: &AppState,
    req: &HttpRequest,
    presented_client: PresentedClient,
    params: &OAuthParams,
) -> Result<TokenResponse, OAuthError> {
    let requested_scope =
        params.get("scope")?.map(Scopes::parse).transpose().map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let presented = Presented {
        token_hashes: state.hasher.presented(params.required("refresh_token")?),
        retry_key: RetryKey {
            auth_method: presented_client.method.as_str(),
            requested_scope: requested_scope.as_ref().map(ToString::to_string),
        },
        requested_scope,
        drafter: GrantDrafter::of(state),
        hasher: state.hasher.clone(),
        sealer: state.sealer.clone(),
        signer: BlockingSigner::of(state),
        origin: Origin::of(req),
    };
    let (_, response) =
        authenticate_client_then(state, req, presented_client, move |conn, client| rotate(conn, client, presented))
            .await?;
    Ok(response)
}

/// Whether `token` is a live refresh token, for introspection.
pub fn find_usable(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    token: &str,
) -> diesel::QueryResult<Option<RefreshToken>> {
    let now = crate::db::now();
    Ok(hasher.presented(token).find(|hash| find_refresh_token(conn, hash))?.filter(|t| t.is_usable(now)))
}
