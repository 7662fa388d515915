//! The account page: who is signed in, the apps the user let in (with a way to withdraw
//! each), and where the user is signed in.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::pages::{error_page, form_page};
use super::session::{SESSION_COOKIE, current_user};
use crate::db::consents::{delete_consent, list_consents_for_user};
use crate::db::refresh_tokens::revoke_families_of_user_client;
use crate::db::sessions::list_sessions_for_user;
use crate::domain::Scopes;
use crate::error::AppError;
use crate::manage::audit::{self, Actor, AuditEntry, Outcome};
use crate::oauth::authorize::scopes_for_people;
use crate::startup::AppState;

struct AppAccess {
    client_id: String,
    client_name: String,
    scopes: Vec<String>,
    since: String,
}

struct SignIn {
    started: String,
    address: String,
    browser: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    name: &'a str,
    email: &'a str,
    member_since: String,
    apps: Vec<AppAccess>,
    sessions: Vec<SignIn>,
    csrf_token: &'a str,
    notice: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    revoked: Option<String>,
}

/// "Firefox on Windows" rather than a user-agent string: enough to recognise a device.
pub fn describe_user_agent(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown browser".into();
    };
    let browser = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
        .into_iter()
        .find(|(marker, _)| ua.contains(marker))
        .map_or("A browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

fn date(at: chrono::NaiveDateTime) -> String {
    at.format("%-d %B %Y").to_string()
}

fn to_login() -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, "/login?return_to=/account")).finish()
}

pub async fn get_account(
    req: HttpRequest,
    query: web::Query<AccountQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(to_login());
    };
    let current_hash = req.cookie(SESSION_COOKIE).map(|c| state.hasher.hash(c.value()).into_string());
    let user_id = user.id.clone();
    let (consents, sessions) = crate::db::run(&state.pool, move |conn| {
        Ok((list_consents_for_user(conn, &user_id)?, list_sessions_for_user(conn, &user_id, crate::db::now())?))
    })
    .await?;
    let apps = consents
        .into_iter()
        .map(|(consent, client_name)| AppAccess {
            scopes: scopes_for_people(&Scopes::parse(&consent.scope).unwrap_or_default()),
            client_id: consent.client_id,
            client_name,
            since: date(consent.created_at),
        })
        .collect();
    let sessions = sessions
        .into_iter()
        .map(|session| SignIn {
            started: session.created_at.format("%-d %B %Y, %H:%M UTC").to_string(),
            address: session.ip.unwrap_or_else(|| "unknown address".into()),
            browser: describe_user_agent(session.user_agent.as_deref()),
            current: current_hash.as_deref() == Some(session.id_hash.as_str()),
        })
        .collect();
    let CsrfToken { form_value, cookie } = csrf::issue(&req, &state);
    let page = AccountPage {
        name: user.display_name(),
        email: &user.email,
        member_since: date(user.created_at),
        apps,
        sessions,
        csrf_token: &form_value,
        notice: query.revoked.is_some().then_some("Access withdrawn. The app's tokens no longer work."),
    };
    form_page(StatusCode::OK, cookie, &page)
}

#[derive(Deserialize)]
struct RevokeForm {
    client_id: String,
    csrf_token: String,
}

/// Withdraws a consent: the remembered decision goes, and so does every token the app
/// holds for this user (refresh token families and their access tokens).
pub async fn post_revoke_consent(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let body = payload.to_bytes_limited(16 * 1024).await.ok().and_then(Result::ok).unwrap_or_default();
    let Ok(form) = serde_urlencoded::from_bytes::<RevokeForm>(&body) else {
        return Ok(error_page(StatusCode::BAD_REQUEST, "Cannot continue", "The form was incomplete."));
    };
    if !csrf::verify(&req, &state, &form.csrf_token) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back, reload the page and try again.",
        ));
    }
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(to_login());
    };
    let request_id = crate::telemetry::current_request_id();
    crate::db::run(&state.pool, move |conn| {
        let now = crate::db::now();
        delete_consent(conn, &user.id, &form.client_id)?;
        let revoked = revoke_families_of_user_client(conn, &user.id, &form.client_id, now)?;
        let entry = AuditEntry::new(Actor::User(&user.id), "consent.revoked", Outcome::Success)
            .target("client", &form.client_id)
            .from_request(None, Some(&request_id))
            .details(serde_json::json!({ "refresh_tokens_revoked": revoked }));
        Ok(audit::record(conn, &entry)?)
    })
    .await?;
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/account?revoked=1")).finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_summarised_as_browser_and_system() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_user_agent(Some(chrome)), "Chrome on Linux");
        assert_eq!(describe_user_agent(Some(firefox)), "Firefox on Windows");
        assert_eq!(describe_user_agent(Some(safari)), "Safari on iPhone");
        assert_eq!(describe_user_agent(Some("curl/8.0")), "A browser");
        assert_eq!(describe_user_agent(None), "Unknown browser");
    }
}
