//! Sign-in's second step: after the right password, a code from the person's authenticator
//! app or one of their recovery codes. Attempts count against the same throttle as
//! passwords (per account and per address), and only a complete sign-in clears it.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::form::PageForm;
use super::pages::{form_page, see_other};
use super::session::{PENDING_SIGN_IN_COOKIE, held_session_hash, pending_sign_in, removal, start_session};
use super::throttle::{self, SignInSubjects};
use crate::audit::{self, Actor, AuditEntry, Origin, Outcome};
use crate::db::pending_sign_ins::delete_pending_sign_in;
use crate::db::sessions::delete_session;
use crate::domain::{ReturnTo, SignInMethod, SignInMethods};
use crate::error::AppError;
use crate::manage::second_factors::{CodeRefused, SecondFactor, verify_second_factor};
use crate::state::AppState;

pub const SECOND_FACTOR_PATH: &str = "/login/second-factor";

/// The second-factor page's address, leading to `return_to` afterwards.
pub fn page_then(return_to: &str) -> String {
    let return_to = percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC);
    format!("{SECOND_FACTOR_PATH}?return_to={return_to}")
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    email: &'a str,
    csrf_token: &'a str,
    return_to: &'a str,
    /// The sign-in page, leading to the same place.
    start_again: String,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct SecondFactorQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    return_to: String,
}

fn start_again(return_to: &ReturnTo) -> HttpResponse {
    see_other(&super::pages::sign_in_then(return_to.as_str()))
}

fn show(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    email: &str,
    return_to: &ReturnTo,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = SecondFactorPage {
        email,
        csrf_token: &form_value,
        return_to: return_to.as_str(),
        start_again: super::pages::sign_in_then(return_to.as_str()),
        error,
    };
    form_page(status, cookie, &page)
}

pub async fn get_second_factor(
    req: HttpRequest,
    query: web::Query<SecondFactorQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let return_to = ReturnTo::or_default(query.return_to.as_deref(), &state.issuer);
    match pending_sign_in(&req, &state).await? {
        Some((_, user)) => show(&req, &state, StatusCode::OK, &user.email, &return_to, None),
        None => Ok(start_again(&return_to)),
    }
}

/// How a second-factor attempt ended.
enum Step {
    SignedIn {
        cookie: actix_web::cookie::Cookie<'static>,
        factor: SecondFactor,
    },
    Refused(CodeRefused),
    /// The pending sign-in ended meanwhile (used by another request, or expired).
    Gone,
}

#[tracing::instrument(name = "second_factor", skip_all)]
pub async fn post_second_factor(
    req: HttpRequest,
    form: PageForm<SecondFactorForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let return_to = ReturnTo::or_default(Some(&form.return_to), &state.issuer);
    let Some((pending, user)) = pending_sign_in(&req, &state).await? else {
        return Ok(start_again(&return_to));
    };
    let origin = Origin::of(&req);
    let throttled = SignInSubjects::new(&state.hasher, &user.email, origin.ip.as_deref().unwrap_or_default());
    if let Err(wait) = throttle::admit(&state.limiter, &throttled).await {
        state.metrics.authentication_failed("user", "throttled");
        return Ok(throttle::refused_page(wait));
    }
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let worker_state = state.clone();
    let user_id = user.id.clone();
    let held = held_session_hash(&req, &state);
    let step = crate::db::run(&state.pool, move |conn| -> Result<Step, AppError> {
        let factor = match verify_second_factor(
            conn,
            &worker_state.sealer,
            &worker_state.hasher,
            &user_id,
            &form.code,
            &origin,
        )? {
            Ok(factor) => factor,
            Err(refused) => return Ok(Step::Refused(refused)),
        };
        crate::db::write_transaction(conn, |conn| {
            if !delete_pending_sign_in(conn, &pending.id_hash)? {
                return Ok(Step::Gone);
            }
            if let Some(held) = &held {
                delete_session(conn, held)?;
            }
            let methods = SignInMethods::password().and(SignInMethod::OneTimeCode);
            let cookie =
                start_session(conn, &worker_state, &user_id, &methods, origin.ip.as_deref(), user_agent.as_deref())?;
            let entry = AuditEntry::new(Actor::User(&user_id), "user.signed_in", Outcome::Success)
                .target("user", &user_id)
                .from_request(origin.ip.as_deref(), Some(&origin.request_id))
                .details(serde_json::json!({ "amr": methods.amr() }));
            audit::record(conn, &entry)?;
            Ok(Step::SignedIn { cookie, factor })
        })
    })
    .await?;
    match step {
        Step::SignedIn { cookie, factor } => {
            throttle::succeeded(&state.limiter, &throttled).await;
            tracing::info!(user_id = %user.id, "signed in with a second factor");
            // Someone down to their last recovery codes needs to hear it now.
            let destination = match factor {
                SecondFactor::RecoveryCode { left } if left <= 3 => format!("/account?recovery_codes_left={left}"),
                _ => return_to.as_str().to_owned(),
            };
            let mut response = see_other(&destination);
            response.add_cookie(&cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            response
                .add_cookie(&removal(&state, PENDING_SIGN_IN_COOKIE))
                .map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(response)
        }
        Step::Gone => Ok(start_again(&return_to)),
        Step::Refused(refused) => {
            state.metrics.authentication_failed("user", "wrong second factor");
            let message = match refused {
                CodeRefused::Wrong => "That code is not right. Check the account in your app, and try again.",
                CodeRefused::Replayed => "That code was used already. Wait for your app to show the next one.",
            };
            show(&req, &state, StatusCode::UNAUTHORIZED, &user.email, &return_to, Some(message))
        }
    }
}
