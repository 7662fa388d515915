//! The OAuth 2.0 protocol endpoints.

pub mod access_tokens;
pub mod client_auth;
pub mod client_credentials;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod jwks;
pub mod params;
pub mod revoke;
pub mod token;

use actix_web::web;

pub const TOKEN_PATH: &str = "/oauth2/token";
pub const INTROSPECTION_PATH: &str = "/oauth2/introspect";
pub const REVOCATION_PATH: &str = "/oauth2/revoke";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(TOKEN_PATH, web::post().to(token::post_token))
        .route(INTROSPECTION_PATH, web::post().to(introspect::post_introspect))
        .route(REVOCATION_PATH, web::post().to(revoke::post_revoke))
        .route(JWKS_PATH, web::get().to(jwks::get_jwks))
        .route("/.well-known/oauth-authorization-server", web::get().to(discovery::get_authorization_server_metadata))
        .route("/.well-known/openid-configuration", web::get().to(discovery::get_openid_configuration));
}
