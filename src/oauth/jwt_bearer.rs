//! The JWT-bearer grant (RFC 7523 §2.1): a JWT a registered client signed, exchanged for an
//! access token. As the guides sign it (`iss` the client id, `sub`, `aud`, `iat`, `exp`,
//! HS256 with the client secret), or with one of the client's registered keys.
//!
//! ```text
//! grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=eyJ…   [&resource=…][&scope=…]
//! ```
//!
//! The token is for the API that `aud` names (one the client is registered for), or, when
//! `aud` names this server, for `resource` or the client's default API. `sub` equal to the
//! client gets the client's own access, as client credentials would; `sub` naming a user only
//! for a client an owner allowed to act for users, within what the user consented to. A `jti`,
//! when present, is accepted once. Anything else is `invalid_grant`, with the reason.

use actix_web::HttpRequest;

use super::access_tokens::{TokenAudience, mint_access_token};
use super::client_auth::{PresentedClient, authenticate_client};
use super::error::OAuthError;
use super::params::OAuthParams;
use super::token::TokenResponse;
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::apis::{Api, find_api_by_audience};
use crate::db::clients::{Client, find_client};
use crate::domain::{GrantType, Scopes};
use crate::error::AppError;
use crate::principal::client_jwt::{self, ClientJwtClaims, Expectations, KeyMaterial, Speaker};
use crate::state::AppState;

/// As the guides sign it: `exp` an hour after `iat`.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 3600;

/// A checked assertion: its client, whom it speaks for, the API the token is for.
struct Grant {
    client: Client,
    claims: ClientJwtClaims,
    speaker: Speaker,
    api: Api,
}

/// The API the token is for: the one `aud` names, else `resource` (or Auth0's `audience`),
/// else the client's default; always one the client is registered for.
fn target_audience(
    client: &Client,
    claims: &ClientJwtClaims,
    ours: &[String],
    named: Option<&str>,
) -> Result<String, &'static str> {
    let api_in_aud = claims.aud.iter().find(|aud| !ours.contains(aud) && client.audiences().any(|a| a == aud.as_str()));
    let chosen = match (api_in_aud, named) {
        (Some(aud), Some(named)) if aud != named => {
            return Err("the JWT's aud and the request's resource name different APIs");
        }
        (Some(aud), _) => aud.as_str(),
        (None, Some(named)) => named,
        (None, None) => {
            client.audiences().next().ok_or("name the API in aud or resource: the client has no default")?
        }
    };
    if !client.audiences().any(|a| a == chosen) {
        return Err("the client may not request tokens for that API");
    }
    Ok(chosen.to_owned())
}

/// Verifies the assertion of `client` (whose key material is resolved), and judges whom it
/// speaks for and for which API. `Ok(Err(reason))` is a refusal.
fn check(
    conn: &mut crate::db::DbConnection,
    client: Client,
    material: &KeyMaterial,
    assertion: &str,
    ours: &[String],
    named: Option<&str>,
) -> Result<Result<Grant, &'static str>, AppError> {
    if !client.allows_grant(GrantType::JwtBearer) {
        return Ok(Err("the client is not registered for the jwt-bearer grant"));
    }
    // `aud`: this server, or an API the client is registered for.
    let mut audiences: Vec<&str> = ours.iter().map(String::as_str).collect();
    audiences.extend(client.audiences());
    let expect =
        Expectations { audiences: &audiences, max_lifetime_secs: MAX_ASSERTION_LIFETIME_SECS, require_jti: false };
    let claims = match client_jwt::verify(assertion, &client, material, expect, chrono::Utc::now().timestamp()) {
        Ok(claims) => claims,
        Err(reason) => return Ok(Err(reason)),
    };
    let audience = match target_audience(&client, &claims, ours, named) {
        Ok(audience) => audience,
        Err(reason) => return Ok(Err(reason)),
    };
    let Some(api) = find_api_by_audience(conn, &audience)? else {
        return Ok(Err("no API has that audience"));
    };
    Ok(match client_jwt::speaks_for(conn, &client, &claims.sub, &audience)? {
        Ok(speaker) => Ok(Grant { client, claims, speaker, api }),
        Err(reason) => Err(reason),
    })
}

pub async fn issue(
    state: &AppState,
    req: &HttpRequest,
    presented: Result<PresentedClient, OAuthError>,
    params: &OAuthParams,
) -> Result<TokenResponse, OAuthError> {
    let assertion = params.required("assertion")?.to_owned();
    let requested_scope =
        params.get("scope")?.map(Scopes::parse).transpose().map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let resources: Vec<&str> = params.all("resource").collect();
    let named = match (resources.as_slice(), params.get("audience")?) {
        ([], None) => None,
        ([one], None) => Some((*one).to_owned()),
        ([], Some(one)) => Some(one.to_owned()),
        ([one], Some(other)) if *one == other => Some(other.to_owned()),
        _ => return Err(OAuthError::invalid_target("request one API per token")),
    };
    // RFC 7523 §3.1: client authentication is optional here, but if the request carries it,
    // it must succeed and be the assertion's own client.
    let authenticated = match presented {
        Ok(presented) => Some(authenticate_client(state, req, presented).await?.client_id),
        Err(_) => None,
    };

    let ours = [state.issuer.as_str().to_owned(), state.issuer.endpoint(req.path())];
    let (audit_ip, request_id) =
        (req.peer_addr().map(|addr| addr.ip().to_string()), crate::telemetry::current_request_id());
    // The client first, then its keys (perhaps fetched from its jwks_uri), then the rest.
    let claimed = client_jwt::claimed_issuer(&assertion);
    let audit_target = claimed.clone().unwrap_or_default();
    let client = match claimed {
        Some(iss) => crate::db::run(&state.pool, move |conn| Ok(find_client(conn, &iss)?)).await?,
        None => None,
    };
    let material = match &client {
        Some(client) => client_jwt::resolve_key_material(state, client, &assertion).await?,
        None => Err("the assertion's iss is not a registered client"),
    };
    let grant = crate::db::run(&state.pool, move |conn| {
        let checked = match (client, material) {
            (Some(client), Ok(material)) => check(conn, client, &material, &assertion, &ours, named.as_deref())?,
            (_, Err(reason)) => Err(reason),
            (None, Ok(_)) => Err("the assertion's iss is not a registered client"),
        };
        if let Err(reason) = &checked {
            let entry = AuditEntry::new(Actor::Anonymous, "client.assertion_refused", Outcome::Failure)
                .target("client", &audit_target)
                .from_request(audit_ip.as_deref(), Some(&request_id))
                .details(serde_json::json!({ "reason": reason, "grant_type": GrantType::JwtBearer.as_str() }));
            audit::record(conn, &entry)?;
        }
        Ok(checked)
    })
    .await?;
    let grant = grant.map_err(|reason| {
        state.metrics.authentication_failed("client_assertion", reason);
        OAuthError::invalid_grant(reason)
    })?;
    if authenticated.is_some_and(|id| id != grant.client.client_id) {
        return Err(OAuthError::invalid_grant("the assertion was signed by another client than the one authenticated"));
    }
    if let Some(jti) = grant.claims.jti.as_deref()
        && !client_jwt::first_use(state, &grant.client.client_id, jti, grant.claims.exp).await?
    {
        return Err(OAuthError::invalid_grant("the assertion was used before (jti)"));
    }

    // What the client (or the user, through it) may have, that the API defines.
    let allowed = grant.speaker.scopes.intersection(&grant.api.scopes());
    let granted = match requested_scope {
        Some(requested) if !requested.is_subset(&allowed) => {
            return Err(OAuthError::invalid_scope(format!("not allowed: {}", requested.not_in(&allowed).join(" "))));
        }
        Some(requested) => requested,
        None => allowed,
    };
    let issued =
        mint_access_token(state, TokenAudience::Api(&grant.api), &grant.claims.sub, &grant.client.client_id, &granted)
            .await?;
    Ok(TokenResponse::bearer(issued.token, issued.expires_in, &granted))
}
