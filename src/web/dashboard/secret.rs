//! Showing a new secret once. The action that makes a secret (a new API key, a client
//! secret) answers with a redirect and a short-lived cookie holding the secret sealed
//! (AES-256-GCM under the master key, bound to the person); the page it redirects to opens
//! it and clears the cookie in the same response. Reloading, going back or opening the page
//! later finds no cookie and shows nothing, and a reload never repeats the action.

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{PageResult, Section, Shell, Visitor};
use crate::error::AppError;
use crate::state::AppState;

const COOKIE: &str = "latchkey_new_secret";
pub const PATH: &str = "/dashboard/secret";
/// Long enough for the redirect; the page clears it sooner.
const LIFETIME_SECS: i64 = 120;

/// A secret to show once, with what it is.
#[derive(Serialize, Deserialize)]
pub struct NewSecret {
    /// The page's heading: "Your new API key".
    pub title: String,
    /// What the secret is, for its field's label: "API key".
    pub label: String,
    pub value: String,
    /// Facts about what was made: name, kind, expiry…
    pub facts: Vec<(String, String)>,
    /// Where "Done" leads.
    pub back: String,
    /// Unix time after which the sealed cookie is worthless even if kept.
    until: i64,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret").field("title", &self.title).field("value", &"<hidden>").finish_non_exhaustive()
    }
}

impl NewSecret {
    pub fn new(title: &str, label: &str, value: String, facts: Vec<(String, String)>, back: &str) -> Self {
        let until = chrono::Utc::now().timestamp() + LIFETIME_SECS;
        Self { title: title.into(), label: label.into(), value, facts, back: back.into(), until }
    }
}

fn context(user_id: &str) -> String {
    format!("dashboard secret for {user_id}")
}

fn cookie(state: &AppState, value: String, max_age: CookieDuration) -> Cookie<'static> {
    Cookie::build(COOKIE, value)
        .path(PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.issuer.is_https())
        .max_age(max_age)
        .finish()
}

/// The answer to the action that made `secret`: on to the page that shows it, once.
pub fn show_once(visitor: &Visitor, secret: &NewSecret) -> PageResult {
    let state = visitor.state();
    let plain = serde_json::to_vec(secret).map_err(|e| AppError::Unexpected(e.into()))?;
    let sealed = URL_SAFE_NO_PAD.encode(state.sealer.seal(&plain, &context(&visitor.user.id)));
    let mut response = super::see_other(PATH);
    response
        .add_cookie(&cookie(state, sealed, CookieDuration::seconds(LIFETIME_SECS)))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(response)
}

#[derive(Template)]
#[template(path = "dashboard/secret.html")]
struct SecretPage<'a> {
    shell: Shell,
    secret: Option<&'a NewSecret>,
}

/// `GET /dashboard/secret`: the new secret, this once.
pub async fn get_secret(visitor: Visitor, req: HttpRequest) -> PageResult {
    let state = visitor.state();
    let secret = req
        .cookie(COOKIE)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c.value()).ok())
        .and_then(|sealed| state.sealer.open(&sealed, &context(&visitor.user.id)).ok())
        .and_then(|plain| serde_json::from_slice::<NewSecret>(&plain).ok())
        .filter(|secret| secret.until >= chrono::Utc::now().timestamp());
    let section = secret.as_ref().map_or(Section::Overview, |s| Section::of_path(&s.back));
    let page = SecretPage { shell: visitor.shell(section), secret: secret.as_ref() };
    let mut response = visitor.page(StatusCode::OK, &page)?;
    let mut cleared = cookie(state, String::new(), CookieDuration::ZERO);
    cleared.make_removal();
    response.add_cookie(&cleared).map_err(|e| AppError::Unexpected(e.into()))?;
    // The copy button is a static script, the one this page runs.
    if let Ok(policy) = HeaderValue::from_str(&crate::web::pages::policy_with_script()) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Ok(response)
}
