//! The token endpoint (RFC 6749 §3.2, §5).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use super::access_tokens::{GrantTarget, sign_access_token};
use super::client_auth::{AuthMethod, PresentedClient, presented_client};
use super::error::{OAuthError, OAuthErrorCode};
use super::id_token::mint_id_token;
use super::params::OAuthParams;
use crate::db::clients::Client;
use crate::domain::{Authentication, GrantType, Scopes};
use crate::ratelimit::{Decision, FailureBudget, Limits, caller_address};
use crate::state::AppState;
use crate::tokens::AccessTokenClaims;

/// RFC 6749 §5.1, with OpenID Connect's `id_token`.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    /// Absent only for an API key that does not expire (the connect flow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1, for token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

impl TokenResponse {
    pub fn bearer(access_token: String, expires_in: i64, scope: &crate::domain::Scopes) -> Self {
        Self {
            access_token,
            token_type: "Bearer",
            expires_in: Some(expires_in),
            scope: (!scope.is_empty()).then(|| scope.to_string()),
            refresh_token: None,
            id_token: None,
            issued_token_type: None,
        }
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse").field("expires_in", &self.expires_in).field("scope", &self.scope).finish()
    }
}

/// What a person's grant (a code, an approved device) issues, once its records are written.
pub struct PersonGrant {
    pub target: GrantTarget,
    /// The access token's claims, already recorded with the grant.
    pub claims: AccessTokenClaims,
    pub scope: Scopes,
    pub refresh_token: Option<String>,
    /// For the id token: the authorization request's `nonce`, and when and how the person
    /// signed in.
    pub nonce: Option<String>,
    pub authentication: Authentication,
}

/// The answer to a person's grant: the access token signed as its audience asks, the refresh
/// token stored with it, and an id token when `openid` was granted.
pub async fn answer_person_grant(
    state: &AppState,
    client_id: &str,
    grant: PersonGrant,
) -> Result<TokenResponse, OAuthError> {
    let access = sign_access_token(state, grant.target.audience(), grant.claims).await?;
    let mut response = TokenResponse::bearer(access.token, access.expires_in, &grant.scope);
    response.refresh_token = grant.refresh_token;
    if grant.scope.contains("openid") {
        response.id_token = Some(
            mint_id_token(state, &grant.target.user, client_id, &grant.scope, grant.nonce, &grant.authentication)
                .await?,
        );
    }
    Ok(response)
}

/// Refuses a grant the authenticated client is not registered for (RFC 6749 §5.2).
pub fn ensure_grant_allowed(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows_grant(grant) {
        Ok(())
    } else {
        Err(OAuthError::unauthorized_client(format!("this client may not use the {grant} grant")))
    }
}

/// The grants this server can issue today; metadata lists exactly these.
pub const SUPPORTED_GRANTS: &[GrantType] = &GrantType::ALL;

/// Rate limits at the token endpoint (INTERFACE §5), so that nobody can spend a client's
/// budget by naming it:
/// - a client's own budget is looked at before the grant and spent only once the client has
///   authenticated;
/// - failed client authentications count against the caller's address (`client_auth` sees
///   to that, and past the address's budget answers 429 without writing an audit row); so
///   do failed grants of public clients, which anyone can name;
/// - a device polling while its person decides (`authorization_pending`, `slow_down`)
///   spends its address's budget, not failures;
/// - a request naming no client (token exchange, whose API key is the credential and
///   counts its own refusals, or a body that cannot be read) spends the address's budget.
///
/// Every answer carries the headers of the bucket it was counted against.
#[tracing::instrument(name = "token", skip_all, fields(grant_type, client_id))]
pub async fn post_token(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let limits = Limits::configured(&state.settings);
    let ip = req.peer_addr().map(|a| a.ip());
    let failures = FailureBudget::of(&state.limiter, ip, &state.settings);
    // The credentials are read once: they say whose budget the request spends, and the
    // grant then authenticates them.
    let request = OAuthParams::from_request(&req, payload).await.map(|params| {
        let presented = presented_client(&req, &params);
        (params, presented)
    });
    let (mut response, decision) = match request {
        Ok((params, Ok(presented))) => {
            let budget = format!("client:{}", presented.client_id);
            let before = state.limiter.peek(&budget, limits).await;
            if !before.allowed {
                return refused(&before);
            }
            let public = presented.method == AuthMethod::None;
            let result = issue(&req, &params, Ok(presented), &state).await;
            let decision = match &result {
                Ok(_) => state.limiter.check(&budget, limits).await,
                // Counted by client authentication already.
                Err(error) if error.error == OAuthErrorCode::InvalidClient => failures.allows().await,
                Err(error) if error.error == OAuthErrorCode::RateLimitExceeded => failures.allows().await,
                // A device polling while its person decides is no failure; each device
                // polls from its own address, while a public CLI's client id is everyone's.
                Err(error) if super::device::is_pending(error) => {
                    state.limiter.check(&format!("ip:{}", caller_address(ip)), limits).await
                }
                Err(_) if public => failures.spend().await,
                Err(_) => state.limiter.check(&budget, limits).await,
            };
            (result.unwrap_or_else(|error| error.error_response()), decision)
        }
        Ok((params, Err(no_client))) => {
            let address = state.limiter.check(&format!("ip:{}", caller_address(ip)), limits).await;
            if !address.allowed {
                return refused(&address);
            }
            let result = issue(&req, &params, Err(no_client), &state).await;
            (result.unwrap_or_else(|error| error.error_response()), address)
        }
        Err(error) => {
            (error.error_response(), state.limiter.check(&format!("ip:{}", caller_address(ip)), limits).await)
        }
    };
    decision.write_headers(response.headers_mut());
    response
}

/// 429 with the headers of the bucket that refused.
fn refused(decision: &Decision) -> HttpResponse {
    let mut response = OAuthError::rate_limited(decision.retry_after).error_response();
    decision.write_headers(response.headers_mut());
    response
}

async fn issue(
    req: &HttpRequest,
    params: &OAuthParams,
    presented: Result<PresentedClient, OAuthError>,
    state: &AppState,
) -> Result<HttpResponse, OAuthError> {
    let grant_type = params.required("grant_type")?;
    tracing::Span::current().record("grant_type", grant_type);
    let unsupported = || {
        OAuthError::new(OAuthErrorCode::UnsupportedGrantType, format!("the grant type `{grant_type}` is not supported"))
    };
    let grant = grant_type.parse::<GrantType>().map_err(|_| unsupported())?;
    // Each grant authenticates its client in the same database trip as its own lookups;
    // for token exchange the API key being exchanged is the credential.
    let response = match grant {
        GrantType::ClientCredentials => {
            super::client_credentials::issue(state, req, client(presented)?, params).await?
        }
        GrantType::AuthorizationCode => {
            super::authorization_code::issue(state, req, client(presented)?, params).await?
        }
        GrantType::RefreshToken => super::refresh::issue(state, req, client(presented)?, params).await?,
        GrantType::TokenExchange => super::token_exchange::issue(state, req, params).await?,
        GrantType::JwtBearer => super::jwt_bearer::issue(state, req, presented, params).await?,
        GrantType::DeviceCode => super::device::issue(state, req, client(presented)?, params).await?,
    };
    state.metrics.token_issued(grant.as_str());
    Ok(token_response(response))
}

/// The client credentials the request presents, noted in the request's log span.
fn client(presented: Result<PresentedClient, OAuthError>) -> Result<PresentedClient, OAuthError> {
    let presented = presented?;
    tracing::Span::current().record("client_id", presented.client_id.as_str());
    Ok(presented)
}

fn token_response(response: TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .json(response)
}
