//! CSRF protection for our forms: a random value in a `SameSite=Lax`, `HttpOnly` cookie,
//! and in the form its keyed hash. A forged form cannot know the cookie's value, and a
//! cookie planted from a sibling domain cannot produce the matching hash.

use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

use super::session::cookie;
use crate::state::AppState;

pub const CSRF_COOKIE: &str = "latchkey_csrf";
pub const CSRF_FIELD: &str = "csrf_token";

/// The token a form must carry, and the cookie to set when the browser had none.
pub struct CsrfToken {
    pub form_value: String,
    pub cookie: Option<Cookie<'static>>,
}

fn form_value(state: &AppState, cookie_value: &str) -> String {
    state.hasher.hash(&format!("csrf {cookie_value}")).into_string()
}

fn usable(value: &str) -> bool {
    (32..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn issue(req: &HttpRequest, state: &AppState) -> CsrfToken {
    if let Some(existing) = req.cookie(CSRF_COOKIE).filter(|c| usable(c.value())) {
        return CsrfToken { form_value: form_value(state, existing.value()), cookie: None };
    }
    let value = crate::crypto::random_token::<32>();
    CsrfToken { form_value: form_value(state, &value), cookie: Some(cookie(state, CSRF_COOKIE, value, None)) }
}

/// Whether the submitted form value matches the browser's cookie (constant-time).
pub fn verify(req: &HttpRequest, state: &AppState, submitted: &str) -> bool {
    match req.cookie(CSRF_COOKIE) {
        Some(cookie) if usable(cookie.value()) => state.hasher.verify(&format!("csrf {}", cookie.value()), submitted),
        _ => false,
    }
}
