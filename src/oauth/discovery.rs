//! Authorization server metadata (RFC 8414) and OpenID Provider metadata (OpenID Connect
//! Discovery 1.0 §3). Both list exactly what this server implements.

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::token::SUPPORTED_GRANTS;
use crate::domain::Issuer;
use crate::startup::AppState;

/// Scopes the built-in APIs understand; each API may define more.
pub const SCOPES_SUPPORTED: &[&str] = &["read", "write", "delete", "admin"];

const CLIENT_AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post"];

#[derive(Serialize)]
struct ServerMetadata<'a> {
    issuer: &'a str,
    token_endpoint: String,
    jwks_uri: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    scopes_supported: &'a [&'a str],
    /// No authorization endpoint yet, so no response type.
    response_types_supported: &'a [&'a str],
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: &'a [&'a str],
    introspection_endpoint_auth_methods_supported: &'a [&'a str],
    revocation_endpoint_auth_methods_supported: &'a [&'a str],
    subject_types_supported: &'a [&'a str],
    /// RFC 8707 resource indicators.
    resource_indicators_supported: bool,
}

/// Serialised once at start: the document only changes with the code.
pub fn metadata_document(issuer: &Issuer) -> Bytes {
    let document = ServerMetadata {
        issuer: issuer.as_str(),
        token_endpoint: issuer.endpoint(super::TOKEN_PATH),
        jwks_uri: issuer.endpoint(super::JWKS_PATH),
        introspection_endpoint: issuer.endpoint(super::INTROSPECTION_PATH),
        revocation_endpoint: issuer.endpoint(super::REVOCATION_PATH),
        scopes_supported: SCOPES_SUPPORTED,
        response_types_supported: &[],
        grant_types_supported: SUPPORTED_GRANTS.iter().map(|g| g.as_str()).collect(),
        token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        subject_types_supported: &["public"],
        resource_indicators_supported: true,
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
