//! The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707).

use super::access_tokens::mint_access_token;
use super::error::OAuthError;
use super::params::OAuthParams;
use super::token::TokenResponse;
use crate::db::apis::find_api_by_audience;
use crate::db::clients::Client;
use crate::domain::{ResourceUri, Scopes};
use crate::startup::AppState;

/// The audience asked for: RFC 8707 `resource`, or Auth0's `audience`, or the client's
/// default (its first registered audience).
fn requested_audience(client: &Client, params: &OAuthParams) -> Result<ResourceUri, OAuthError> {
    let resources: Vec<&str> = params.all("resource").collect();
    if resources.len() > 1 {
        return Err(OAuthError::invalid_target("request one resource per token"));
    }
    let audience = params.get("audience")?;
    let asked = match (resources.first().copied(), audience) {
        (Some(resource), Some(audience)) if resource != audience => {
            return Err(OAuthError::invalid_target("`resource` and `audience` name different APIs"));
        }
        (Some(resource), _) => Some(resource),
        (None, audience) => audience,
    };
    let asked = match asked {
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

pub async fn issue(state: &AppState, client: &Client, params: &OAuthParams) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client("a public client cannot use the client_credentials grant"));
    }
    let requested_scope =
        params.get("scope")?.map(Scopes::parse).transpose().map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let audience = requested_audience(client, params)?;

    let lookup = audience.to_string();
    let api = crate::db::run(&state.pool, move |conn| Ok(find_api_by_audience(conn, &lookup)?))
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

    let issued = mint_access_token(state, &api, &client.client_id, &client.client_id, &granted).await?;
    Ok(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: (!granted.is_empty()).then(|| granted.to_string()),
    })
}
