//! The device authorization grant (RFC 8628), for CLIs, TVs and coding agents: the device
//! asks at the device authorization endpoint, shows the person a short user code (and a QR
//! code of the page), and polls the token endpoint while the person signs in at `/device`
//! and allows or denies it. The pages are `web::device`'s; this is the protocol.
//!
//! Both codes are stored as keyed hashes. A device code is redeemed once. A device that
//! polls faster than its interval is told `slow_down`, and its interval grows by 5 seconds.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use chrono::{NaiveDateTime, TimeDelta};
use serde::Serialize;

use super::access_tokens::{GrantDrafter, GrantTarget};
use super::authorize::resolve_target;
use super::client_auth::{PresentedClient, authenticate_client_then, presented_client};
use super::connect::{Collection, keep_choice, key_audience, key_response, wants_api_key};
use super::error::{OAuthError, OAuthErrorCode};
use super::params::OAuthParams;
use super::refresh::{REFRESH_TOKEN_LIFETIME, store_refresh_token};
use super::token::{PersonGrant, TokenResponse, answer_person_grant, ensure_grant_allowed};
use super::token_exchange::API_KEY_TOKEN_TYPE;
use crate::audit::{self, Origin};
use crate::config::Environment;
use crate::crypto::{PresentedHashes, TokenHasher, random_bytes, random_token};
use crate::db::DbConnection;
use crate::db::clients::{Client, find_client};
use crate::db::device_authorizations::{
    Decision, DeviceAuthorization, STATUS_APPROVED, STATUS_DENIED, STATUS_PENDING, STATUS_REDEEMED,
    decide as record_decision, find_by_device_code, find_by_user_code, insert_device_authorization, record_poll,
    redeem,
};
use crate::db::refresh_tokens::FamilyMember;
use crate::db::users::{User, find_user};
use crate::domain::{Authentication, GrantType, Issuer, Scopes, UserCode};
use crate::error::AppError;
use crate::manage::api_keys::{CreatedApiKey, KeyRequest};
use crate::manage::consents::record_approval;
use crate::ratelimit::{Limits, caller_address};
use crate::state::AppState;
use crate::tokens::AccessTokenClaims;

/// RFC 8628 §3.2's `expires_in`: long enough to find a phone and sign in.
pub const DEVICE_CODE_LIFETIME: TimeDelta = TimeDelta::minutes(10);
/// Seconds a device waits between polls, until told to slow down.
pub const POLL_INTERVAL_SECS: i64 = 5;
/// What each `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: i64 = 5;
/// Where people enter the code.
pub const DEVICE_PATH: &str = "/device";

/// RFC 8628 §3.2.
#[derive(Serialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

impl std::fmt::Debug for DeviceAuthorizationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorizationResponse").field("expires_in", &self.expires_in).finish()
    }
}

/// The page a person opens with the code already filled in: what the QR code holds.
pub fn verification_uri_complete(issuer: &Issuer, code: &UserCode) -> String {
    format!("{}?user_code={}", issuer.endpoint(DEVICE_PATH), code.display())
}

/// The keyed hash a new user code is stored by.
pub fn user_code_hash(hasher: &TokenHasher, code: &UserCode) -> String {
    hasher.hash(code.as_str()).into_string()
}

/// What the device asked for, and where from.
struct Request {
    /// RFC 8693's `requested_token_type`: tokens (absent, or the access-token type) or an
    /// API key ([`API_KEY_TOKEN_TYPE`], the connect flow).
    requested_token_type: Option<String>,
    scope: Option<String>,
    resource: Option<String>,
    issuer: Issuer,
    hasher: TokenHasher,
    requested_from: Option<String>,
    requested_by: Option<String>,
}

/// Checks the request and stores it (from a blocking context).
fn start(
    conn: &mut DbConnection,
    client: &Client,
    request: Request,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    ensure_grant_allowed(client, GrantType::DeviceCode)?;
    let wants_key = wants_api_key(request.requested_token_type.as_deref()).map_err(OAuthError::invalid_request)?;
    let (scope, audience) = if wants_key {
        (
            Scopes::default(),
            key_audience(client, request.scope.as_deref(), request.resource.as_deref(), &request.issuer)?,
        )
    } else {
        // RFC 8628 §3.1: scope is optional; without one, everything the client may ask for.
        let scope = request.scope.clone().unwrap_or_else(|| client.scopes.clone());
        resolve_target(conn, client, &scope, request.resource.as_deref(), request.issuer.as_str())??
    };
    let device_code = random_token::<32>();
    let now = crate::db::now();
    // 2^34.6 user codes: a collision with a live one is rare, and answered with another.
    for _ in 0..4 {
        let Some(user_code) = UserCode::from_random(&random_bytes::<32>()) else { continue };
        let row = DeviceAuthorization {
            device_code_hash: request.hasher.hash(&device_code).into_string(),
            user_code_hash: user_code_hash(&request.hasher, &user_code),
            client_id: client.client_id.clone(),
            scope: scope.to_string(),
            audience: audience.clone(),
            requested_from: request.requested_from.clone(),
            requested_by: request.requested_by.clone(),
            created_at: now,
            expires_at: now + DEVICE_CODE_LIFETIME,
            interval_secs: POLL_INTERVAL_SECS,
            last_polled_at: None,
            status: STATUS_PENDING.to_owned(),
            user_id: None,
            auth_time: None,
            decided_at: None,
            requested_token_type: wants_key.then(|| API_KEY_TOKEN_TYPE.to_owned()),
            key_request: None,
            amr: None,
        };
        if insert_device_authorization(conn, &row)? {
            return Ok(DeviceAuthorizationResponse {
                device_code,
                verification_uri: request.issuer.endpoint(DEVICE_PATH),
                verification_uri_complete: verification_uri_complete(&request.issuer, &user_code),
                user_code: user_code.display(),
                expires_in: DEVICE_CODE_LIFETIME.num_seconds(),
                interval: POLL_INTERVAL_SECS,
            });
        }
    }
    Err(crate::error::AppError::Unexpected(anyhow::anyhow!("no free user code after four tries")).into())
}

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1): client authentication as at the
/// token endpoint, public clients by `client_id`. Counted against the caller's address.
#[tracing::instrument(name = "device_authorization", skip_all, fields(client_id))]
pub async fn post_device_authorization(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let limits = Limits::configured(&state.settings);
    let address = state.limiter.check(&format!("ip:{}", caller_address(req.peer_addr().map(|a| a.ip()))), limits).await;
    let mut response = if address.allowed {
        match authorize_device(&req, payload, &state).await {
            Ok(answer) => HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(answer),
            Err(error) => error.error_response(),
        }
    } else {
        OAuthError::rate_limited(address.retry_after).error_response()
    };
    address.write_headers(response.headers_mut());
    response
}

async fn authorize_device(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    let params = OAuthParams::from_request(req, payload).await?;
    let presented = presented_client(req, &params)?;
    tracing::Span::current().record("client_id", presented.client_id.as_str());
    let request = Request {
        requested_token_type: params.get("requested_token_type")?.map(str::to_owned),
        scope: params.get("scope")?.map(str::to_owned),
        resource: params.get("resource")?.map(str::to_owned),
        issuer: state.issuer.clone(),
        hasher: state.hasher.clone(),
        requested_from: req.peer_addr().map(|addr| addr.ip().to_string()),
        requested_by: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(|agent| agent.chars().take(200).collect()),
    };
    let (_, answer) =
        authenticate_client_then(state, req, presented, move |conn, client| start(conn, client, request)).await?;
    Ok(answer)
}

/// Whether an error is the device being told to keep waiting, which is no failure.
pub fn is_pending(error: &OAuthError) -> bool {
    matches!(error.error, OAuthErrorCode::AuthorizationPending | OAuthErrorCode::SlowDown)
}

struct Presented {
    device_code_hashes: PresentedHashes,
    drafter: GrantDrafter,
    hasher: TokenHasher,
    environment: Environment,
    origin: Origin,
}

/// An approved request for tokens, redeemed: what the answer is made of.
struct TokensRedeemed {
    request: DeviceAuthorization,
    target: GrantTarget,
    claims: AccessTokenClaims,
    refresh_token: Option<String>,
    authentication: Authentication,
}

enum Redeemed {
    Tokens(Box<TokensRedeemed>),
    /// The connect flow's answer: the key the person chose, made now and shown only here.
    Key(Box<CreatedApiKey>),
}

/// Answers one poll (from a blocking context): wait, slow down, denied, expired, or the
/// tokens, once.
fn poll(conn: &mut DbConnection, client: &Client, presented: Presented) -> Result<Redeemed, OAuthError> {
    ensure_grant_allowed(client, GrantType::DeviceCode)?;
    let now = crate::db::now();
    let Some(request) = presented.device_code_hashes.find(|hash| find_by_device_code(conn, hash))? else {
        return Err(OAuthError::invalid_grant("the device code is unknown"));
    };
    if request.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the device code was issued to another client"));
    }
    if request.status == STATUS_REDEEMED {
        return Err(OAuthError::invalid_grant("the device code was already used"));
    }
    if request.expires_at <= now {
        return Err(OAuthError::new(OAuthErrorCode::ExpiredToken, "the device code has expired; start again"));
    }
    match request.status.as_str() {
        STATUS_DENIED => Err(OAuthError::new(OAuthErrorCode::AccessDenied, "the person denied the request")),
        STATUS_APPROVED => redeem_approved(conn, client, request, presented, now),
        _ => Err(keep_waiting(conn, &request, now)?),
    }
}

/// A poll before the person decided: `slow_down` if it came sooner than the interval
/// allows (which grows the interval), else `authorization_pending`.
fn keep_waiting(
    conn: &mut DbConnection,
    request: &DeviceAuthorization,
    now: NaiveDateTime,
) -> Result<OAuthError, OAuthError> {
    let too_soon = request.last_polled_at.is_some_and(|last| now < last + TimeDelta::seconds(request.interval_secs));
    let interval = if too_soon { request.interval_secs + SLOW_DOWN_STEP_SECS } else { request.interval_secs };
    record_poll(conn, &request.device_code_hash, interval, now)?;
    Ok(if too_soon {
        OAuthError::new(OAuthErrorCode::SlowDown, format!("polled too soon: wait {interval} seconds between polls"))
    } else {
        OAuthError::new(OAuthErrorCode::AuthorizationPending, "the person has not decided yet")
    })
}

fn redeem_approved(
    conn: &mut DbConnection,
    client: &Client,
    request: DeviceAuthorization,
    presented: Presented,
    now: NaiveDateTime,
) -> Result<Redeemed, OAuthError> {
    let Some(user_id) = request.user_id.clone() else {
        return Err(
            crate::error::AppError::Unexpected(anyhow::anyhow!("an approved device request names no user")).into()
        );
    };
    if request.requested_token_type.as_deref() == Some(API_KEY_TOKEN_TYPE) {
        return redeem_key(conn, client, &request, &user_id, presented, now).map(|key| Redeemed::Key(Box::new(key)));
    }
    let scope = Scopes::parse(&request.scope).unwrap_or_default();
    let authentication =
        Authentication::from_stored(request.amr.as_deref(), request.auth_time.unwrap_or(request.created_at));
    let stored_methods = authentication.methods.to_string();
    let Some(user) = find_user(conn, &user_id)? else {
        return Err(OAuthError::invalid_grant("the user is no longer active"));
    };
    let (target, claims) =
        presented.drafter.draft(conn, user, &request.audience, &client.client_id, &scope, Some(&authentication))?;
    let wants_refresh = scope.contains("offline_access") && client.allows_grant(GrantType::RefreshToken);
    let outcome = crate::db::write_transaction(conn, |conn| -> diesel::QueryResult<Option<Option<String>>> {
        if !redeem(conn, &request.device_code_hash, now)? {
            return Ok(None);
        }
        if !wants_refresh {
            return Ok(Some(None));
        }
        let family_id = crate::db::time_ordered_id();
        let member = FamilyMember {
            family_id: &family_id,
            parent_id: None,
            client_id: &client.client_id,
            user_id: &user_id,
            scope: &request.scope,
            audience: &request.audience,
            auth_code_hash: None,
            access_token_jti: &claims.jti,
            access_token_expires_at: claims.expires_at(),
            expires_at: now + REFRESH_TOKEN_LIFETIME,
            amr: Some(&stored_methods),
            auth_time: Some(authentication.at),
        };
        store_refresh_token(conn, &presented.hasher, &member, now).map(|token| Some(Some(token)))
    })?;
    match outcome {
        Some(refresh_token) => {
            Ok(Redeemed::Tokens(Box::new(TokensRedeemed { request, target, claims, refresh_token, authentication })))
        }
        // Another poll redeemed it between our read and our write.
        None => Err(OAuthError::invalid_grant("the device code was already used")),
    }
}

/// Makes the key the person chose ([`Collection`]) in the transaction that redeems the
/// device code, so that of concurrent polls one makes a key.
fn redeem_key(
    conn: &mut DbConnection,
    client: &Client,
    request: &DeviceAuthorization,
    user_id: &str,
    presented: Presented,
    now: NaiveDateTime,
) -> Result<CreatedApiKey, OAuthError> {
    let collection = Collection::prepare(conn, client, user_id, request.key_request.as_deref(), presented.origin)?;
    let created = crate::db::write_transaction(conn, |conn| -> Result<Option<CreatedApiKey>, AppError> {
        if !redeem(conn, &request.device_code_hash, now)? {
            return Ok(None);
        }
        collection.make(conn, &presented.hasher, presented.environment).map(Some)
    })?;
    created.ok_or_else(|| OAuthError::invalid_grant("the device code was already used"))
}

/// The device code grant at the token endpoint (RFC 8628 §3.4).
pub async fn issue(
    state: &AppState,
    req: &HttpRequest,
    presented_client: PresentedClient,
    params: &OAuthParams,
) -> Result<TokenResponse, OAuthError> {
    let presented = Presented {
        device_code_hashes: state.hasher.presented(params.required("device_code")?),
        drafter: GrantDrafter::of(state),
        hasher: state.hasher.clone(),
        environment: state.settings.environment,
        origin: Origin::of(req),
    };
    let (client, redeemed) =
        authenticate_client_then(state, req, presented_client, move |conn, client| poll(conn, client, presented))
            .await?;
    let TokensRedeemed { request, target, claims, refresh_token, authentication } = match redeemed {
        Redeemed::Key(created) => return Ok(key_response(*created)),
        Redeemed::Tokens(tokens) => *tokens,
    };
    let grant = PersonGrant {
        scope: Scopes::parse(&request.scope).unwrap_or_default(),
        nonce: None,
        authentication,
        target,
        claims,
        refresh_token,
    };
    answer_person_grant(state, &client.client_id, grant).await
}

/// A request waiting for a person's decision, with the client that made it.
pub struct PendingRequest {
    pub request: DeviceAuthorization,
    pub client: Client,
}

/// The pending, unexpired request `code` names (from a blocking context).
pub fn find_pending(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    code: &UserCode,
) -> Result<Option<PendingRequest>, crate::error::AppError> {
    let now = crate::db::now();
    let Some(request) = hasher.presented(code.as_str()).find(|hash| find_by_user_code(conn, hash))? else {
        return Ok(None);
    };
    if request.status != STATUS_PENDING || request.expires_at <= now {
        return Ok(None);
    }
    Ok(find_client(conn, &request.client_id)?.map(|client| PendingRequest { request, client }))
}

/// What the person chose at `/device`.
#[derive(Debug, Clone)]
pub enum DeviceDecision {
    Allow,
    /// Allow a connect-flow request, with the key the person chose (already vetted as them).
    AllowKey(KeyRequest),
    Deny,
}

impl PendingRequest {
    /// Whether the device asked for an API key (the connect flow) rather than tokens.
    pub fn wants_api_key(&self) -> bool {
        self.request.requested_token_type.as_deref() == Some(API_KEY_TOKEN_TYPE)
    }
}

/// Records `user`'s decision on the request `code` names, with the consent an allowed
/// request gives (listed on the account page, where it can be withdrawn) and an audit
/// entry; `None` if the request is no longer pending (decided elsewhere, or expired).
pub fn decide(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    code: &UserCode,
    user: &User,
    authentication: &Authentication,
    decision: DeviceDecision,
    origin: &audit::Origin,
) -> Result<Option<PendingRequest>, crate::error::AppError> {
    let Some(pending) = find_pending(conn, hasher, code)? else {
        return Ok(None);
    };
    let now = crate::db::now();
    let (status, action) = match &decision {
        DeviceDecision::Allow | DeviceDecision::AllowKey(_) => (STATUS_APPROVED, "device.approved"),
        DeviceDecision::Deny => (STATUS_DENIED, "device.denied"),
    };
    let key_request = match &decision {
        DeviceDecision::AllowKey(chosen) if pending.wants_api_key() => Some(keep_choice(chosen)?),
        DeviceDecision::Allow if pending.wants_api_key() => {
            return Err(AppError::BadRequest("choose the key this request is for".into()));
        }
        DeviceDecision::AllowKey(_) => return Err(AppError::BadRequest("this request is not for an API key".into())),
        _ => None,
    };
    let amr = authentication.methods.to_string();
    let recorded = Decision {
        status,
        user_id: &user.id,
        auth_time: authentication.at,
        amr: &amr,
        key_request: key_request.as_deref(),
    };
    let decided = crate::db::write_transaction(conn, |conn| -> Result<bool, crate::error::AppError> {
        if !record_decision(conn, &pending.request.user_code_hash, &recorded, now)? {
            return Ok(false);
        }
        // A key is its own record (made at redemption); tokens come with a consent.
        if matches!(decision, DeviceDecision::Allow) {
            let scope = Scopes::parse(&pending.request.scope).unwrap_or_default();
            record_approval(conn, &user.id, &pending.client.client_id, &pending.request.audience, &scope, false)?;
        }
        audit::record(
            conn,
            &audit::Context::of(audit::Actor::User(&user.id), origin.ip.as_deref(), Some(&origin.request_id))
                .change(action)
                .target("client", &pending.client.client_id)
                .details(serde_json::json!({
                    "scope": pending.request.scope,
                    "requested_from": pending.request.requested_from,
                    "requested_token_type": pending.request.requested_token_type,
                })),
        )?;
        Ok(true)
    })?;
    Ok(decided.then_some(pending))
}
