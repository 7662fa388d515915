//! The connect flow's protocol: a tool asks for an API key instead of tokens, through the
//! device flow (a CLI) or the authorization-code flow (a web tool), with RFC 8693's
//! `requested_token_type` naming Latchkey's API-key type. The person who approves chooses
//! the key (`web::key_form`); their choice, not a key, is kept with the request, and the key
//! is made when the tool redeems its code: as that person through that client, by the rules
//! that hold then, and answered once in RFC 8693's token response shape.

use chrono::Utc;

use super::authorize::TargetRefusal;
use super::error::OAuthError;
use super::token::TokenResponse;
use super::token_exchange::{ACCESS_TOKEN_TYPE, API_KEY_TOKEN_TYPE};
use crate::access::Reach;
use crate::audit::{self, Origin};
use crate::config::Environment;
use crate::crypto::TokenHasher;
use crate::db::DbConnection;
use crate::db::clients::Client;
use crate::db::users::{User, find_user};
use crate::domain::Issuer;
use crate::error::AppError;
use crate::manage::Caller;
use crate::manage::api_keys::{CreatedApiKey, KeyRequest, VettedKey, vet_key};
use crate::principal::person_reach;

/// Whether a request asks for an API key rather than tokens; anything but the two types
/// Latchkey issues is refused.
pub fn wants_api_key(requested_token_type: Option<&str>) -> Result<bool, String> {
    match requested_token_type {
        None | Some(ACCESS_TOKEN_TYPE) => Ok(false),
        Some(API_KEY_TOKEN_TYPE) => Ok(true),
        Some(other) => Err(format!(
            "requested_token_type `{other}` is not issued here: ask for {ACCESS_TOKEN_TYPE} or {API_KEY_TOKEN_TYPE}"
        )),
    }
}

/// A request for a key is for the management API, and only a client registered for that API
/// may make one. It names no scope: the person chooses the key's reach when approving. The
/// audience, or why not.
pub fn key_audience(
    client: &Client,
    scope: Option<&str>,
    resource: Option<&str>,
    issuer: &Issuer,
) -> Result<String, TargetRefusal> {
    let audience = issuer.management_api_audience();
    let refuse = |error: &'static str, description: String| Err(TargetRefusal { error, description });
    if scope.is_some() {
        return refuse(
            "invalid_scope",
            "a request for an API key takes no scope: the person who approves it chooses the key's reach".into(),
        );
    }
    if resource.is_some_and(|resource| resource != audience) {
        return refuse("invalid_target", format!("an API key is for the management API, {audience}"));
    }
    if !client.audiences().any(|allowed| allowed == audience) {
        return refuse(
            "unauthorized_client",
            format!("this client may not ask for API keys: register it for the management API ({audience})"),
        );
    }
    Ok(audience)
}

/// The person's choice, as kept with the request until the tool collects the key.
pub fn keep_choice(chosen: &KeyRequest) -> Result<String, AppError> {
    serde_json::to_string(chosen)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("could not keep the chosen key: {e}")))
}

/// A key about to be collected: the choice kept with the request, vetted again as the
/// person who made it, with what making it records.
pub struct Collection {
    vetted: VettedKey,
    reach: Reach,
    user_id: String,
    client_id: String,
    origin: Origin,
}

impl Collection {
    /// Vets `kept` (the JSON of [`keep_choice`]) as `user_id` stands now: a person who is no
    /// longer active, or lost the right to such a key, gets `invalid_grant`.
    pub fn prepare(
        conn: &mut DbConnection,
        client: &Client,
        user_id: &str,
        kept: Option<&str>,
        origin: Origin,
    ) -> Result<Self, OAuthError> {
        let chosen: KeyRequest = kept
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("an approved key request has no readable key")))?;
        let user = find_user(conn, user_id)?
            .filter(User::is_active)
            .ok_or_else(|| OAuthError::invalid_grant("the person who approved the request is no longer active"))?;
        let reach = person_reach(conn, &user)?;
        let caller = through_client(&reach, &user.id, &client.client_id, &origin);
        let vetted = vet_key(conn, &caller, chosen).map_err(|refused| match refused {
            AppError::BadRequest(why) | AppError::Forbidden(why) | AppError::Conflict(why) => {
                OAuthError::invalid_grant(format!("the chosen key can no longer be made: {why}"))
            }
            AppError::NotFound => OAuthError::invalid_grant("the chosen key can no longer be made: its team is gone"),
            other => other.into(),
        })?;
        Ok(Self { vetted, reach, user_id: user.id, client_id: client.client_id.clone(), origin })
    }

    /// Makes the key, inside the transaction that redeems the code.
    pub fn make(
        &self,
        conn: &mut DbConnection,
        hasher: &TokenHasher,
        environment: Environment,
    ) -> Result<CreatedApiKey, AppError> {
        let caller = through_client(&self.reach, &self.user_id, &self.client_id, &self.origin);
        self.vetted.create(conn, hasher, environment, &caller)
    }
}

/// The person, through the client: the key's creator and the audit log's actor.
fn through_client<'a>(reach: &'a Reach, user_id: &'a str, client_id: &'a str, origin: &'a Origin) -> Caller<'a> {
    Caller {
        reach,
        audit: audit::Context {
            via_client: Some(client_id),
            ..audit::Context::of(audit::Actor::User(user_id), origin.ip.as_deref(), Some(&origin.request_id))
        },
    }
}

/// RFC 8693 §2.2.1's response: the key as `access_token`, `issued_token_type` naming it,
/// and `expires_in` only for a key that expires.
pub fn key_response(created: CreatedApiKey) -> TokenResponse {
    let expires_in = created.expires_at.map(|at| (at - Utc::now()).num_seconds().max(0));
    TokenResponse {
        access_token: created.key,
        token_type: "Bearer",
        expires_in,
        scope: None,
        refresh_token: None,
        id_token: None,
        issued_token_type: Some(API_KEY_TOKEN_TYPE),
    }
}
