//! Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect
//! Discovery 1.0 §3). Both list exactly what this server implements.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::token::SUPPORTED_GRANTS;
use crate::domain::{ACR_VALUES_SUPPORTED, Issuer};
use crate::state::AppState;

/// Latchkey's own scopes and those the built-in APIs understand; each API may define more.
pub const SCOPES_SUPPORTED: &[&str] =
    &["openid", "profile", "email", "offline_access", "read", "write", "delete", "admin"];

/// What the token endpoint accepts: `none` is for public clients, which must use PKCE.
const TOKEN_AUTH_METHODS: &[&str] =
    &["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"];

/// Introspection and revocation need a confidential client.
const CLIENT_AUTH_METHODS: &[&str] =
    &["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"];

/// What client assertions may be signed with: HS256 for `client_secret_jwt`, the others
/// for `private_key_jwt`.
const ASSERTION_ALGORITHMS: &[&str] = &["HS256", "RS256", "ES256", "EdDSA"];

const CLAIMS_SUPPORTED: &[&str] =
    &["iss", "sub", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "name"];

#[derive(Serialize)]
struct ServerMetadata<'a> {
    issuer: &'a str,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    userinfo_endpoint: String,
    /// OpenID Connect RP-Initiated Logout 1.0.
    end_session_endpoint: String,
    /// RFC 7591, with an API key as the initial access token.
    registration_endpoint: String,
    /// RFC 8628 §4.
    device_authorization_endpoint: String,
    scopes_supported: &'a [&'a str],
    response_types_supported: &'a [&'a str],
    response_modes_supported: &'a [&'a str],
    grant_types_supported: Vec<&'static str>,
    code_challenge_methods_supported: &'a [&'a str],
    /// RFC 9207: authorization responses carry `iss`.
    authorization_response_iss_parameter_supported: bool,
    token_endpoint_auth_methods_supported: &'a [&'a str],
    token_endpoint_auth_signing_alg_values_supported: &'a [&'a str],
    introspection_endpoint_auth_methods_supported: &'a [&'a str],
    introspection_endpoint_auth_signing_alg_values_supported: &'a [&'a str],
    revocation_endpoint_auth_methods_supported: &'a [&'a str],
    revocation_endpoint_auth_signing_alg_values_supported: &'a [&'a str],
    subject_types_supported: &'a [&'a str],
    id_token_signing_alg_values_supported: &'a [&'a str],
    claims_supported: &'a [&'a str],
    /// What `acr` can say: one factor, or two.
    acr_values_supported: &'a [&'a str],
    prompt_values_supported: &'a [&'a str],
    /// RFC 8707 resource indicators.
    resource_indicators_supported: bool,
    /// RFC 9728 §4: the resources this server issues tokens for that publish their own
    /// metadata: the management API.
    protected_resources: [String; 1],
}

/// Serialised once at start: the document only changes with the code.
pub fn metadata_document(issuer: &Issuer) -> Bytes {
    let document = ServerMetadata {
        issuer: issuer.as_str(),
        authorization_endpoint: issuer.endpoint(super::AUTHORIZE_PATH),
        token_endpoint: issuer.endpoint(super::TOKEN_PATH),
        jwks_uri: issuer.endpoint(super::JWKS_PATH),
        introspection_endpoint: issuer.endpoint(super::INTROSPECTION_PATH),
        revocation_endpoint: issuer.endpoint(super::REVOCATION_PATH),
        userinfo_endpoint: issuer.endpoint(super::USERINFO_PATH),
        end_session_endpoint: issuer.endpoint("/logout"),
        registration_endpoint: issuer.endpoint(super::REGISTRATION_PATH),
        device_authorization_endpoint: issuer.endpoint(super::DEVICE_AUTHORIZATION_PATH),
        scopes_supported: SCOPES_SUPPORTED,
        response_types_supported: &["code"],
        response_modes_supported: &["query"],
        grant_types_supported: SUPPORTED_GRANTS.iter().map(|g| g.as_str()).collect(),
        code_challenge_methods_supported: &["S256"],
        authorization_response_iss_parameter_supported: true,
        token_endpoint_auth_methods_supported: TOKEN_AUTH_METHODS,
        token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        introspection_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
        subject_types_supported: &["public"],
        id_token_signing_alg_values_supported: &["RS256"],
        claims_supported: CLAIMS_SUPPORTED,
        acr_values_supported: ACR_VALUES_SUPPORTED,
        prompt_values_supported: &["none", "consent"],
        resource_indicators_supported: true,
        protected_resources: [issuer.management_api_audience()],
    };
    Bytes::from(serde_json::to_vec(&document).expect("metadata always serialises"))
}

fn metadata_response(state: &AppState) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")))
        .body(state.metadata.clone())
}

pub async fn get_authorization_server_metadata(state: web::Data<AppState>) -> HttpResponse {
    metadata_response(&state)
}

pub async fn get_openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    metadata_response(&state)
}
