//! The management API under `/api/v1/` (INTERFACE §5): JSON, authenticated by API keys,
//! errors as `{"error","message","request_id"}`.

pub mod current;
pub mod error;

use actix_web::http::Method;
use actix_web::web;

use crate::startup::only;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(only("/api/v1/api-keys/current", Method::GET, web::get().to(current::get_current_api_key)))
        .service(only("/api/v1/users/me", Method::GET, web::get().to(current::get_me)));
}
