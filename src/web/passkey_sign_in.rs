//! Signing in with a passkey instead of an email and password. The sign-in page's script
//! asks for a challenge (`POST /login/passkey/options`, JSON), the browser offers the
//! passkeys it holds for this site (on a button, or in the email field's autofill), and
//! its answer is posted as a form (`POST /login/passkey`). The passkey's user handle names
//! the account; its user verification makes the sign-in two-factor by itself.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;

use super::form::PageForm;
use super::login::show_login;
use super::pages::{error_page, see_other};
use super::session::{Browser, delete_held_session, start_session};
use super::throttle::{self, AddressSubjects};
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::domain::{ReturnTo, SignInMethods};
use crate::error::{AppError, json_error};
use crate::manage::passkeys;
use crate::state::AppState;

pub const OPTIONS_PATH: &str = "/login/passkey/options";
pub const SIGN_IN_PATH: &str = "/login/passkey";

#[derive(Deserialize)]
pub struct NoFields {}

/// `POST /login/passkey/options`: a challenge for signing in with any passkey of this site,
/// and the id of the ceremony it opens.
pub async fn post_options(
    req: HttpRequest,
    _form: PageForm<NoFields>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if state.passkeys.is_none() {
        return Ok(json_error(StatusCode::NOT_FOUND, "not_found", "Passkeys are off on this server.".into()));
    }
    let browser = Browser::of(&req, &state);
    let subjects = AddressSubjects::new(&state.hasher, browser.origin.ip.as_deref().unwrap_or_default());
    if let Err(wait) = throttle::admit_challenge(&state.limiter, &subjects).await {
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            crate::ratelimit::exceeded_message(wait.as_secs()),
        );
        response.headers_mut().insert(actix_web::http::header::RETRY_AFTER, wait.as_secs().max(1).into());
        return Ok(response);
    }
    let worker_state = state.clone();
    let challenge = crate::db::run(&state.pool, move |conn| {
        let webauthn = worker_state.passkeys.as_ref().ok_or(AppError::NotFound)?;
        passkeys::begin_sign_in(conn, webauthn, &worker_state.hasher)
    })
    .await?;
    let options: serde_json::Value =
        serde_json::from_str(&challenge.options).map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "ceremony": challenge.ceremony, "options": options })))
}

#[derive(Deserialize)]
pub struct PasskeySignInForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    return_to: String,
}

/// `POST /login/passkey`: the browser's answer; a session for the passkey's account.
#[tracing::instrument(name = "passkey_sign_in", skip_all)]
pub async fn post_sign_in(
    req: HttpRequest,
    form: PageForm<PasskeySignInForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let PasskeySignInForm { ceremony, credential, return_to } = form.into_inner();
    let return_to = ReturnTo::or_default(Some(&return_to), &state.issuer);
    if state.passkeys.is_none() {
        return Ok(error_page(StatusCode::NOT_FOUND, "Passkeys are off", "Sign in with your email and password."));
    }
    let browser = Browser::of(&req, &state);
    let subjects = AddressSubjects::new(&state.hasher, browser.origin.ip.as_deref().unwrap_or_default());
    if let Err(wait) = throttle::admit_address(&state.limiter, &subjects).await {
        state.metrics.authentication_failed("user", "throttled");
        return Ok(throttle::refused_page(wait));
    }
    let worker_state = state.clone();
    let outcome = crate::db::run(&state.pool, move |conn| {
        let webauthn = worker_state.passkeys.as_ref().ok_or(AppError::NotFound)?;
        let origin = &browser.origin;
        let (user, method) =
            match passkeys::finish_sign_in(conn, webauthn, &worker_state.hasher, &ceremony, &credential, origin)? {
                Ok(found) => found,
                Err(refused) => return Ok(Err(refused)),
            };
        let methods = SignInMethods::only(method);
        crate::db::write_transaction(conn, |conn| {
            if let Some(held) = &browser.held {
                delete_held_session(conn, held)?;
            }
            let ip = origin.ip.as_deref();
            let cookie = start_session(conn, &worker_state, &user.id, &methods, ip, browser.user_agent.as_deref())?;
            let entry = AuditEntry::new(Actor::User(&user.id), "user.signed_in", Outcome::Success)
                .target("user", &user.id)
                .from_request(ip, Some(&origin.request_id))
                .details(serde_json::json!({ "amr": methods.amr() }));
            audit::record(conn, &entry)?;
            Ok(Ok((user.id, cookie)))
        })
    })
    .await?;
    match outcome {
        Ok((user_id, cookie)) => {
            throttle::address_succeeded(&state.limiter, &subjects).await;
            tracing::info!(%user_id, "signed in with a passkey");
            let mut response = see_other(return_to.as_str());
            response.add_cookie(&cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(response)
        }
        Err(refused) => {
            state.metrics.authentication_failed("user", "passkey refused");
            let message = super::factors::refusal_message(refused);
            show_login(&req, &state, StatusCode::UNAUTHORIZED, &return_to, "", Some(message), None)
        }
    }
}
