//! How a client learns to call the management API without reading our docs: its OAuth 2.0
//! protected resource metadata (RFC 9728) at
//! `/.well-known/oauth-protected-resource/api/v1`, which a 401 points to.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::domain::Issuer;
use crate::state::AppState;

pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/api/v1";

#[derive(Serialize)]
struct ResourceMetadata {
    resource: String,
    authorization_servers: [String; 1],
    scopes_supported: Vec<String>,
    bearer_methods_supported: [&'static str; 1],
    resource_name: &'static str,
    resource_documentation: String,
}

/// Where a 401 sends a client for the rest (RFC 9728 §5.1).
pub fn resource_metadata_url(issuer: &Issuer) -> String {
    issuer.endpoint(RESOURCE_METADATA_PATH)
}

pub async fn get_resource_metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.issuer;
    let metadata = ResourceMetadata {
        resource: issuer.management_api_audience(),
        authorization_servers: [issuer.as_str().to_owned()],
        scopes_supported: crate::manage::apis::management_scopes().iter().map(str::to_owned).collect(),
        bearer_methods_supported: ["header"],
        resource_name: "Latchkey management API",
        resource_documentation: issuer.endpoint("/api/v1/openapi.json"),
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")))
        .json(metadata)
}
