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
use crate::error::AppError;
use crate::manage::audit::{self, Actor, AuditEntry, Outcome};
use crate::oauth::authorize::describe_scope;
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
            scopes: consent.scope.split(' ').filter(|s| !s.is_empty()).map(describe_scope).collect(),
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
            browser: session.user_agent.unwrap_or_else(|| "unknown browser".into()),
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
