//! Token exchange (RFC 8693) of an API key for a short-lived JWT access token, so that
//! a service holding a key can call microservices that verify tokens offline. The key
//! itself is the credential: no client authentication is needed.
//!
//! ```text
//! grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//! subject_token=sk_live_…&subject_token_type=urn:latchkey:params:oauth:token-type:api-key
//! resource=https://api.example.com   [&scope=read]
//! ```

use actix_web::HttpRequest;
use chrono::TimeDelta;

use super::access_tokens::{TokenAudience, mint_access_token};
use super::error::OAuthError;
use super::params::OAuthParams;
use super::token::TokenResponse;
use crate::apikeys::authenticate::{ApiKeyAuth, KeyRefusal, authenticate_key};
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::apis::{Api, find_api_by_audience};
use crate::domain::ApiKeyKind;
use crate::domain::{ResourceUri, Scopes};
use crate::state::AppState;

/// The `subject_token_type` of a Latchkey API key.
pub const API_KEY_TOKEN_TYPE: &str = "urn:latchkey:params:oauth:token-type:api-key";
/// RFC 8693 §3: what is issued.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Exchanged tokens are short-lived whatever the API's own lifetime.
pub const EXCHANGED_TOKEN_LIFETIME: TimeDelta = TimeDelta::minutes(15);

/// The scopes a key may carry into an API's token: all of the API's for a key that acts
/// as its owner or user, else the key's permissions (a team key's role) that the API defines.
fn key_scopes(auth: &ApiKeyAuth, api: &Api) -> Scopes {
    if auth.reach.owner || auth.key.key_kind() == Some(ApiKeyKind::Personal) {
        return api.scopes();
    }
    let mut names = auth.reach.tenant.names();
    for (_, role) in &auth.reach.teams {
        names.extend(role.actions().iter().map(|action| action.as_str().to_owned()));
    }
    Scopes::from_tokens(names.iter().map(String::as_str)).unwrap_or_default().intersection(&api.scopes())
}

pub async fn issue(state: &AppState, req: &HttpRequest, params: &OAuthParams) -> Result<TokenResponse, OAuthError> {
    let subject_type = params.required("subject_token_type")?;
    if subject_type != API_KEY_TOKEN_TYPE {
        return Err(OAuthError::invalid_request(format!("subject_token_type must be {API_KEY_TOKEN_TYPE}")));
    }
    if params.get("requested_token_type")?.is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!("only {ACCESS_TOKEN_TYPE} can be issued")));
    }
    if params.get("actor_token")?.is_some() {
        return Err(OAuthError::invalid_request("delegation (actor_token) is not supported"));
    }
    let requested_scope =
        params.get("scope")?.map(Scopes::parse).transpose().map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let resources: Vec<&str> = params.all("resource").collect();
    let named = match (resources.as_slice(), params.get("audience")?) {
        ([resource], None) => *resource,
        ([], Some(audience)) => audience,
        ([resource], Some(audience)) if *resource == audience => audience,
        ([], None) => return Err(OAuthError::invalid_target("name the API with `resource` or `audience`")),
        _ => return Err(OAuthError::invalid_target("request one API per token")),
    };
    let audience = ResourceUri::parse(named).map_err(|e| OAuthError::invalid_target(e.to_string()))?;
    if audience.as_str() == state.issuer.management_api_audience() {
        return Err(OAuthError::invalid_target(
            "the management API takes the API key itself: send it as `Authorization: Bearer <key>`",
        ));
    }

    // RFC 8693 §2.2.2: an unusable subject token is invalid_request.
    let auth = authenticate_key(req, state, params.required("subject_token")?.to_owned()).await.map_err(|refusal| {
        match refusal {
            KeyRefusal::Unchecked(error) => OAuthError::from(error),
            refusal => OAuthError::invalid_request(format!("subject_token: {refusal}")),
        }
    })?;
    let lookup = audience.to_string();
    let api = crate::db::run(&state.pool, move |conn| Ok(find_api_by_audience(conn, &lookup)?))
        .await?
        .ok_or_else(|| OAuthError::invalid_target(format!("no API has the audience `{audience}`")))?;
    let allowed = key_scopes(&auth, &api);
    let key = auth.key;
    let granted = match requested_scope {
        Some(requested) if !requested.is_subset(&allowed) => {
            return Err(OAuthError::invalid_scope(format!(
                "this key may not have: {}",
                requested.not_in(&allowed).join(" ")
            )));
        }
        Some(requested) => requested,
        None => allowed,
    };

    // The key's user for a personal key; otherwise the key, which acts as itself.
    let subject =
        key.user_id.clone().filter(|_| key.key_kind() == Some(ApiKeyKind::Personal)).unwrap_or_else(|| key.id.clone());
    let mut short_lived = api.clone();
    short_lived.token_lifetime_secs = api.token_lifetime_secs.min(EXCHANGED_TOKEN_LIFETIME.num_seconds());
    let issued = mint_access_token(state, TokenAudience::Api(&short_lived), &subject, &key.id, &granted).await?;
    let jti = issued.claims.jti.clone();
    let (key_id, request_id) = (key.id.clone(), crate::telemetry::current_request_id());
    crate::db::run(&state.pool, move |conn| {
        let entry = AuditEntry::new(Actor::ApiKey(&key_id), "api_key.exchanged", Outcome::Success)
            .target("access_token", &jti)
            .from_request(None, Some(&request_id));
        Ok(audit::record(conn, &entry)?)
    })
    .await?;
    let mut response = TokenResponse::bearer(issued.token, issued.expires_in, &granted);
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    Ok(response)
}
