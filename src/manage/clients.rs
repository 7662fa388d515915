//! Registering OAuth clients.

use serde::Serialize;
use url::Url;

use super::audit::{self, Actor, AuditEntry, Outcome};
use crate::crypto::{TokenHasher, random_base62, random_token};
use crate::db::DbConnection;
use crate::db::apis::find_api_by_audience;
use crate::db::clients::{AUTH_METHOD_NONE, NewClient, insert_client};
use crate::domain::{GrantType, ResourceUri, Scopes};
use crate::error::AppError;

/// What an operator asks for.
#[derive(Debug, Default, Clone)]
pub struct ClientRegistration {
    pub name: String,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
}

/// The registered client, with its secret: the only time the secret exists in the clear.
#[derive(Serialize)]
pub struct RegisteredClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    pub grant_types: Vec<String>,
    pub scope: String,
    pub audiences: Vec<String>,
    pub redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<hidden>"))
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

/// RFC 9700 §2.1 and RFC 8252 §7: exact URIs, no fragments; plain http only to loopback
/// (native apps); other schemes are private-use schemes of native apps.
pub fn validate_redirect_uri(value: &str) -> Result<(), AppError> {
    let url = Url::parse(value).map_err(|_| bad(format!("redirect URI `{value}` is not an absolute URI")))?;
    if url.fragment().is_some() {
        return Err(bad(format!("redirect URI `{value}` must not contain a fragment")));
    }
    if url.scheme() == "http" {
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if !loopback {
            return Err(bad(format!("redirect URI `{value}` must use https (http is allowed for loopback only)")));
        }
    }
    Ok(())
}

pub fn register_client(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    registration: ClientRegistration,
) -> Result<RegisteredClient, AppError> {
    let name = registration.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(bad("the client name must be 1 to 200 characters"));
    }
    let mut grants = Vec::new();
    for grant in &registration.grant_types {
        let grant: GrantType = grant.parse().map_err(|e: String| bad(e))?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if grants.is_empty() {
        return Err(bad("a client needs at least one grant type"));
    }
    if registration.public {
        // A public client has no secret, so nothing would authenticate these grants.
        for grant in [GrantType::ClientCredentials, GrantType::TokenExchange] {
            if grants.contains(&grant) {
                return Err(bad(format!("a public client cannot use the {grant} grant")));
            }
        }
    }
    for uri in registration.redirect_uris.iter().chain(&registration.post_logout_redirect_uris) {
        validate_redirect_uri(uri)?;
    }
    if grants.contains(&GrantType::AuthorizationCode) && registration.redirect_uris.is_empty() {
        return Err(bad("the authorization_code grant needs at least one redirect URI"));
    }
    let scopes = Scopes::from_tokens(registration.scopes.iter().map(String::as_str)).map_err(|e| bad(e.to_string()))?;
    let mut audiences: Vec<String> = Vec::new();
    for audience in &registration.audiences {
        let audience = ResourceUri::parse(audience).map_err(|e| bad(e.to_string()))?;
        if find_api_by_audience(conn, audience.as_str())?.is_none() {
            return Err(bad(format!(
                "no API has the audience `{audience}`; register it first (`latchkey api create --audience {audience}`)"
            )));
        }
        if !audiences.iter().any(|a| a == audience.as_str()) {
            audiences.push(audience.to_string());
        }
    }

    let client_id = random_base62(24);
    let secret = (!registration.public).then(random_token::<32>);
    let secret_hash = secret.as_deref().map(|s| hasher.hash(s));
    let auth_method = if registration.public { AUTH_METHOD_NONE } else { "client_secret_basic" };
    let grant_names: Vec<String> = grants.iter().map(|g| g.as_str().to_owned()).collect();
    let now = crate::db::now();
    let id = uuid::Uuid::new_v4().to_string();
    insert_client(
        conn,
        &NewClient {
            id: &id,
            tenant_id: crate::db::DEFAULT_TENANT_ID,
            client_id: &client_id,
            name,
            secret_hash: secret_hash.as_ref().map(|h| h.as_str()),
            token_endpoint_auth_method: auth_method,
            grant_types: &grant_names.join(" "),
            scopes: &scopes.to_string(),
            audiences: &audiences.join(" "),
            redirect_uris: &registration.redirect_uris.join(" "),
            post_logout_redirect_uris: &registration.post_logout_redirect_uris.join(" "),
            created_at: now,
            updated_at: now,
        },
    )?;
    audit::record(
        conn,
        &AuditEntry::new(Actor::System, "client.created", Outcome::Success)
            .target("client", &client_id)
            .details(serde_json::json!({ "name": name, "grant_types": grant_names })),
    )?;
    Ok(RegisteredClient {
        client_id,
        client_secret: secret,
        name: name.to_owned(),
        grant_types: grant_names,
        scope: scopes.to_string(),
        audiences,
        redirect_uris: registration.redirect_uris,
        post_logout_redirect_uris: registration.post_logout_redirect_uris,
        token_endpoint_auth_method: auth_method.to_owned(),
        created_at: super::utc(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_rfc_9700_and_8252() {
        for good in
            ["https://app.example.com/cb", "http://127.0.0.1:5000/cb", "http://localhost/cb", "com.example.app:/cb"]
        {
            assert!(validate_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in ["http://app.example.com/cb", "https://app.example.com/cb#frag", "/relative", "not a uri"] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
