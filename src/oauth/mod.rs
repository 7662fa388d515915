//! The OAuth 2.0 protocol endpoints.
//!
//! Floor: http (docs/architecture.md); below `startup`; above `manage`, `apikeys` and the shared floor; never names `web` or `management`.

pub mod access_tokens;
pub mod authorization_code;
pub mod authorize;
pub mod client_auth;
pub mod client_credentials;
pub mod connect;
pub mod device;
pub mod discovery;
pub mod error;
pub mod id_token;
pub mod introspect;
pub mod jwks;
pub mod jwt_bearer;
pub mod params;
pub mod refresh;
pub mod register;
pub mod revoke;
pub mod token;
pub mod token_exchange;
pub mod userinfo;

use actix_web::http::Method;
use actix_web::web;

pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const INTROSPECTION_PATH: &str = "/oauth2/introspect";
pub const REVOCATION_PATH: &str = "/oauth2/revoke";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const USERINFO_PATH: &str = "/oauth2/userinfo";
pub const REGISTRATION_PATH: &str = "/oauth2/register";
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth2/device_authorization";

/// The paths many guides write (`[AUTH_URL]/oauth/authorize`, `/oauth/token`): served the
/// same as the `/oauth2/` ones. Metadata names only those.
pub const GUIDES_AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const GUIDES_TOKEN_PATH: &str = "/oauth/token";

pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::http::only;
    // AUTHORIZE_PATH is served by `web::consent`, which carries out `authorize`'s decisions.
    cfg.service(only(TOKEN_PATH, Method::POST, web::post().to(token::post_token)))
        .service(only(GUIDES_TOKEN_PATH, Method::POST, web::post().to(token::post_token)))
        // OIDC Core §5.3: GET and POST both.
        .service(
            web::resource(USERINFO_PATH)
                .route(web::get().to(userinfo::get_userinfo))
                .route(web::post().to(userinfo::get_userinfo)),
        )
        .service(only(INTROSPECTION_PATH, Method::POST, web::post().to(introspect::post_introspect)))
        .service(only(REVOCATION_PATH, Method::POST, web::post().to(revoke::post_revoke)))
        .service(only(REGISTRATION_PATH, Method::POST, web::post().to(register::post_register)))
        .service(only(DEVICE_AUTHORIZATION_PATH, Method::POST, web::post().to(device::post_device_authorization)))
        .service(only(JWKS_PATH, Method::GET, web::get().to(jwks::get_jwks)))
        .service(only(
            "/.well-known/oauth-authorization-server",
            Method::GET,
            web::get().to(discovery::get_authorization_server_metadata),
        ))
        .service(only(
            "/.well-known/openid-configuration",
            Method::GET,
            web::get().to(discovery::get_openid_configuration),
        ));
}
