//! Latchkey's own pages: sign-in, sign-out, consent, the account page (the "http" floor,
//! beside `oauth`, whose decisions the consent page carries out). HTML from askama
//! templates, CSS from `static/`, no JavaScript needed.
//!
//! Floor: http (docs/architecture.md); may name `oauth` (the consent page carries out its decisions); `oauth` never names it.

pub mod account;
pub mod consent;
pub mod csrf;
pub mod invitation;
pub mod login;
pub mod pages;
pub mod session;
pub mod throttle;

use actix_web::http::Method;
use actix_web::web;

use crate::http::{only, routes};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(crate::oauth::AUTHORIZE_PATH)
            .route(web::get().to(consent::get_authorize))
            .route(web::post().to(consent::post_authorize)),
    )
    .service(web::resource("/login").route(web::get().to(login::get_login)).route(web::post().to(login::post_login)))
    .service(web::resource("/logout").route(web::get().to(login::get_logout)).route(web::post().to(login::post_logout)))
    .service(only("/", Method::GET, web::get().to(account::get_home)))
    .service(only("/account", Method::GET, web::get().to(account::get_account)))
    .service(only("/account/consents/revoke", Method::POST, web::post().to(account::post_revoke_consent)))
    .service(routes(
        "/invitation",
        vec![
            (Method::GET, web::get().to(invitation::get_invitation)),
            (Method::POST, web::post().to(invitation::post_invitation)),
        ],
    ))
    .service(only("/account/api-keys", Method::POST, web::post().to(account::post_create_key)))
    .service(only("/account/api-keys/delete", Method::POST, web::post().to(account::post_delete_key)))
    .service(only("/static/style.css", Method::GET, web::get().to(pages::get_stylesheet)));
}
