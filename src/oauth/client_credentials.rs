//! The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707).

use actix_web::HttpRequest;

use super::access_tokens::{TokenAudience, mint_access_token};
use super::client_auth::{PresentedClient, authenticate_client};
use super::error::OAuthError;
use super::params::OAuthParams;
use super::token::{TokenResponse, ensure_grant_allowed};
use crate::db::apis::find_api_by_audience;
use crate::db::clients::Client;
use crate::domain::{GrantType, ResourceUri, Scopes};
use crate::state::AppState;

/// The audience named in the request: RFC 8707 `resource`, or Auth0's `audience`.
fn named_audience(params: &OAuthParams) -> Result<Option<String>, OAuthError> {
    let resources: Vec<&str> = params.all("resource").collect();
    if resources.len() > 1 {
        return Err(OAuthError::invalid_target("request one resource per token"));
    }
    match (resources.first().copied(), params.get("audience")?) {
        (Some(resource), Some(audience)) if resource != audience => {
            Err(OAuthError::invalid_target("`resource` and `audience` name different APIs"))
        }
        (Some(named), _) | (None, Some(named)) => Ok(Some(named.to_owned())),
        (None, None) => Ok(None),
    }
}

/// The audience named, or else the client's default (its first registered audience); it
/// must be one the client is registered for.
fn requested_audience(client: &Client, named: Option<&str>) -> Result<ResourceUri, OAuthError> {
    let asked = match named {
        Some(asked) => asked,
        None => client
            .audiences()
            .next()
            .ok_or_else(|| OAuthError::invalid_target("no `resource` was given and the client has no default API"))?,
    };
    let uri = ResourceUri::parse(asked).map_err(|e| OAuthError::invalid_target(e.to_string()))?;
    if !client.audiences().any(|allowed| allowed == uri.as_str()) {
        return Err(OAuthError::invalid_target(format!("this client may not request tokens for `{uri}`")));
    }
    Ok(uri)
}

pub async fn issue(
    state: &AppState,
    req: &HttpRequest,
    presented: PresentedClient,
    params: &OAuthParams,
) -> Result<TokenResponse, OAuthError> {
    let requested_scope =
        params.get("scope")?.map(Scopes::parse).transpose().map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let named = named_audience(params)?;

    // With the client and the API in the caches, the grant makes no trip to the database.
    let client = authenticate_client(state, req, presented).await?;
    ensure_grant_allowed(&client, GrantType::ClientCredentials)?;
    if client.is_public() {
        return Err(OAuthError::unauthorized_client("a public client cannot use the client_credentials grant"));
    }
    let audience = requested_audience(&client, named.as_deref())?;
    let api = state
        .caches
        .apis
        .get_or_read(&state.pool, audience.as_str().to_owned(), |conn, audience| find_api_by_audience(conn, audience))
        .await?
        .ok_or_else(|| OAuthError::invalid_target(format!("no API has the audience `{audience}`")))?;

    // What both the client and the API allow; without `scope`, all of it (RFC 6749 §3.3).
    let allowed = client.allowed_scopes().intersection(&api.scopes());
    let granted = match requested_scope {
        Some(requested) if !requested.is_subset(&allowed) => {
            return Err(OAuthError::invalid_scope(format!(
                "not allowed for this client and API: {}",
                requested.not_in(&allowed).join(" ")
            )));
        }
        Some(requested) => requested,
        None => allowed,
    };

    let issued =
        mint_access_token(state, TokenAudience::Api(&api), &client.client_id, &client.client_id, &granted).await?;
    Ok(TokenResponse::bearer(issued.token, issued.expires_in, &granted))
}
