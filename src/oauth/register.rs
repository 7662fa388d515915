//! Dynamic client registration (RFC 7591). The initial access token is an API key that
//! may create clients (`clients:write`, a team role that allows it for a `team_id`, or a
//! tenant owner), so registration is exactly as permitted as the management API's.
//!
//! ```text
//! POST /oauth2/register
//! Authorization: Bearer sk_live_…
//! {"client_name": "…", "redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "none"}
//! ```

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::userinfo::{bearer_error, bearer_token};
use crate::apikeys::authenticate::{KeyRefusal, authenticate_key};
use crate::db::clients::AUTH_METHOD_NONE;
use crate::error::AppError;
use crate::manage::Caller;
use crate::manage::clients::{ClientRegistration, register_client};
use crate::state::AppState;

/// Client metadata (RFC 7591 §2) as far as Latchkey uses it; `audiences` is Latchkey's
/// own: the APIs (RFC 8707 resources) the client may ask tokens for.
#[derive(Debug, Deserialize)]
struct Metadata {
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    team_id: Option<String>,
    /// RFC 7591 §2: a private_key_jwt client's public keys, by value or by reference.
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
}

/// RFC 7591 §3.2.1: the registered metadata, with the credentials.
#[derive(Serialize)]
struct Registered {
    client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    client_id_issued_at: i64,
    /// 0: the secret does not expire (RFC 7591 §3.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_expires_at: Option<i64>,
    client_name: String,
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: String,
    grant_types: Vec<String>,
    response_types: Vec<&'static str>,
    scope: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    post_logout_redirect_uris: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    audiences: Vec<String>,
}

/// RFC 7591 §3.2.2.
fn metadata_error(error: &str, description: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(serde_json::json!({ "error": error, "error_description": description.into() }))
}

/// Checks what RFC 7591 leaves to the server and maps it onto a registration.
/// `Err` is the `invalid_client_metadata` description.
fn to_registration(metadata: Metadata) -> Result<ClientRegistration, String> {
    let method = metadata.token_endpoint_auth_method.as_deref().unwrap_or("client_secret_basic");
    let supported =
        ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", AUTH_METHOD_NONE];
    if !supported.contains(&method) {
        return Err(format!(
            "token_endpoint_auth_method `{method}` is not supported (client_secret_basic, client_secret_post, \
             client_secret_jwt, private_key_jwt, none)"
        ));
    }
    if metadata.response_types.as_ref().is_some_and(|types| types.iter().any(|t| t != "code")) {
        return Err("the only response type is `code`".to_owned());
    }
    // RFC 7591 §2: the default grant is authorization_code.
    let grant_types = metadata.grant_types.unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    Ok(ClientRegistration {
        name: metadata.client_name.unwrap_or_else(|| "Unnamed client".to_owned()),
        team_id: metadata.team_id,
        grant_types,
        scopes: metadata
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        audiences: metadata.audiences,
        redirect_uris: metadata.redirect_uris,
        post_logout_redirect_uris: metadata.post_logout_redirect_uris,
        public: method == AUTH_METHOD_NONE,
        token_endpoint_auth_method: Some(method.to_owned()),
        jwks: metadata.jwks,
        jwks_uri: metadata.jwks_uri,
        // Tenant permissions and acting for users are granted by an owner through the API.
        ..ClientRegistration::default()
    })
}

pub async fn post_register(req: HttpRequest, payload: Payload, state: web::Data<AppState>) -> HttpResponse {
    let Some(token) = bearer_token(&req).map(str::to_owned) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "registration needs an API key as bearer token",
        );
    };
    let auth = match authenticate_key(&req, &state, token).await {
        Ok(auth) => auth,
        Err(KeyRefusal::Unchecked(error)) => return actix_web::ResponseError::error_response(&error),
        Err(refusal) => return bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", &refusal.to_string()),
    };
    let body = match payload.to_bytes_limited(64 * 1024).await {
        Ok(Ok(body)) => body,
        _ => return metadata_error("invalid_client_metadata", "the body must be JSON of at most 64 KiB"),
    };
    let metadata = match serde_json::from_slice::<Metadata>(&body) {
        Ok(metadata) => metadata,
        Err(e) => return metadata_error("invalid_client_metadata", format!("the client metadata is not valid: {e}")),
    };
    let registration = match to_registration(metadata) {
        Ok(registration) => registration,
        Err(description) => return metadata_error("invalid_client_metadata", description),
    };
    let ip = req.peer_addr().map(|addr| addr.ip().to_string());
    let request_id = crate::telemetry::current_request_id();
    let shared = state.clone();
    let registered = crate::db::run(&state.pool, move |conn| {
        let caller = Caller { reach: &auth.reach, audit: auth.audit(ip.as_deref(), &request_id) };
        register_client(conn, &shared.hasher, &shared.sealer, &caller, registration)
    })
    .await;
    match registered {
        Ok(client) => {
            let response = Registered {
                client_id_issued_at: client.created_at.timestamp(),
                client_secret_expires_at: client.client_secret.as_ref().map(|_| 0),
                client_id: client.client_id.clone(),
                client_secret: client.client_secret.clone(),
                client_name: client.name.clone(),
                redirect_uris: client.redirect_uris.clone(),
                token_endpoint_auth_method: client.token_endpoint_auth_method.clone(),
                response_types: if client.grant_types.iter().any(|g| g == "authorization_code") {
                    vec!["code"]
                } else {
                    vec![]
                },
                grant_types: client.grant_types.clone(),
                scope: client.scope.clone(),
                post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
                audiences: client.audiences.clone(),
            };
            HttpResponse::Created()
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .json(response)
        }
        Err(AppError::BadRequest(message)) if message.contains("redirect URI") => {
            metadata_error("invalid_redirect_uri", message)
        }
        Err(AppError::BadRequest(message)) => metadata_error("invalid_client_metadata", message),
        Err(AppError::Forbidden(_) | AppError::NotFound) => bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "this API key may not create clients (it needs clients:write)",
        ),
        Err(other) => {
            other.log();
            let status = match other {
                AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let code =
                if status == StatusCode::SERVICE_UNAVAILABLE { "temporarily_unavailable" } else { "server_error" };
            HttpResponse::build(status)
                .json(serde_json::json!({ "error": code, "error_description": "the client could not be registered" }))
        }
    }
}
