//! Sign-in's second step: after the right password, one of the person's passkeys, a code
//! from their authenticator app or one of their recovery codes. Attempts count against the
//! same throttle as passwords (per account and per address), and only a complete sign-in
//! clears it.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::factors::{embeddable, refusal_message};
use super::form::PageForm;
use super::pages::{form_page, passkey_page, see_other};
use super::session::{Browser, PENDING_SIGN_IN_COOKIE, delete_held_session, pending_sign_in, removal, start_session};
use super::throttle::{self, SignInSubjects};
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::DbConnection;
use crate::db::pending_sign_ins::PendingSignIn;
use crate::db::pending_sign_ins::delete_pending_sign_in;
use crate::db::users::User;
use crate::domain::{ReturnTo, SignInMethod, SignInMethods};
use crate::error::AppError;
use crate::manage::passkeys::{self, Challenge};
use crate::manage::second_factors::{self, CodeRefused, SecondFactor, verify_second_factor};
use crate::state::AppState;

pub const SECOND_FACTOR_PATH: &str = "/login/second-factor";
pub const PASSKEY_PATH: &str = "/login/second-factor/passkey";

/// The second-factor page's address, leading to `return_to` afterwards.
pub fn page_then(return_to: &str) -> String {
    let return_to = percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC);
    format!("{SECOND_FACTOR_PATH}?return_to={return_to}")
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    email: &'a str,
    /// A challenge for the person's passkeys, when they have any.
    passkey: Option<Challenge>,
    /// They have an authenticator app (else only recovery codes are typed here).
    has_app: bool,
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

/// The page, with a new passkey challenge each time it is shown (a challenge is answered
/// once).
async fn show(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    status: StatusCode,
    user: &User,
    return_to: &ReturnTo,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let (worker_state, user_id) = (state.clone(), user.id.clone());
    let (passkey, has_app) = crate::db::run(&state.pool, move |conn| {
        let factors = second_factors::factors(conn, &user_id)?;
        let passkey = match &worker_state.passkeys {
            Some(webauthn) => passkeys::begin_second_factor(conn, webauthn, &worker_state.hasher, &user_id)?,
            None => None,
        };
        Ok((passkey, factors.totp.is_some_and(|app| app.is_confirmed())))
    })
    .await?;
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let with_script = passkey.is_some();
    let page = SecondFactorPage {
        email: &user.email,
        passkey: passkey.map(|challenge| Challenge { options: embeddable(&challenge.options), ..challenge }),
        has_app,
        csrf_token: &form_value,
        return_to: return_to.as_str(),
        start_again: super::pages::sign_in_then(return_to.as_str()),
        error,
    };
    if with_script { passkey_page(status, cookie, &page) } else { form_page(status, cookie, &page) }
}

pub async fn get_second_factor(
    req: HttpRequest,
    query: web::Query<SecondFactorQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let return_to = ReturnTo::or_default(query.return_to.as_deref(), &state.issuer);
    match pending_sign_in(&req, &state).await? {
        Some((_, user)) => show(&req, &state, StatusCode::OK, &user, &return_to, None).await,
        None => Ok(start_again(&return_to)),
    }
}

/// Turns the pending sign-in into a session made with `methods`; `None` if it ended
/// meanwhile (used by a racing request, or expired).
pub(super) fn finish(
    conn: &mut DbConnection,
    state: &AppState,
    pending: &PendingSignIn,
    user_id: &str,
    methods: &SignInMethods,
    browser: &Browser,
) -> Result<Option<actix_web::cookie::Cookie<'static>>, AppError> {
    let origin = &browser.origin;
    crate::db::write_transaction(conn, |conn| {
        if !delete_pending_sign_in(conn, &pending.id_hash)? {
            return Ok(None);
        }
        if let Some(held) = &browser.held {
            delete_held_session(conn, held)?;
        }
        let cookie = start_session(conn, state, user_id, methods, origin.ip.as_deref(), browser.user_agent.as_deref())?;
        let entry = AuditEntry::new(Actor::User(user_id), "user.signed_in", Outcome::Success)
            .target("user", user_id)
            .from_request(origin.ip.as_deref(), Some(&origin.request_id))
            .details(serde_json::json!({ "amr": methods.amr() }));
        audit::record(conn, &entry)?;
        Ok(Some(cookie))
    })
}

/// `response` gives the browser its new session, and takes the pending sign-in's cookie.
pub(super) fn with_session(
    state: &AppState,
    mut response: HttpResponse,
    cookie: &actix_web::cookie::Cookie<'static>,
) -> Result<HttpResponse, AppError> {
    response.add_cookie(cookie).map_err(|e| AppError::Unexpected(e.into()))?;
    response.add_cookie(&removal(state, PENDING_SIGN_IN_COOKIE)).map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(response)
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
    let browser = Browser::of(&req, &state);
    let address = browser.origin.ip.as_deref().unwrap_or_default();
    let throttled = SignInSubjects::new(&state.hasher, &user.email, address);
    if let Err(wait) = throttle::admit(&state.limiter, &throttled).await {
        state.metrics.authentication_failed("user", "throttled");
        return Ok(throttle::refused_page(wait));
    }
    let (worker_state, user_id) = (state.clone(), user.id.clone());
    let step = crate::db::run(&state.pool, move |conn| -> Result<Step, AppError> {
        let factor = match verify_second_factor(
            conn,
            &worker_state.sealer,
            &worker_state.hasher,
            &user_id,
            &form.code,
            &browser.origin,
        )? {
            Ok(factor) => factor,
            Err(refused) => return Ok(Step::Refused(refused)),
        };
        let methods = SignInMethods::password().and(SignInMethod::OneTimeCode);
        let finished = finish(conn, &worker_state, &pending, &user_id, &methods, &browser)?;
        Ok(finished.map_or(Step::Gone, |cookie| Step::SignedIn { cookie, factor }))
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
            with_session(&state, see_other(&destination), &cookie)
        }
        Step::Gone => Ok(start_again(&return_to)),
        Step::Refused(refused) => {
            state.metrics.authentication_failed("user", "wrong second factor");
            let message = match refused {
                CodeRefused::Wrong => "That code is not right. Check the account in your app, and try again.",
                CodeRefused::Replayed => "That code was used already. Wait for your app to show the next one.",
            };
            show(&req, &state, StatusCode::UNAUTHORIZED, &user, &return_to, Some(message)).await
        }
    }
}

#[derive(Deserialize)]
pub struct PasskeyStepForm {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    return_to: String,
}

/// `POST /login/second-factor/passkey`: one of the person's passkeys after the password.
#[tracing::instrument(name = "second_factor_passkey", skip_all)]
pub async fn post_second_factor_passkey(
    req: HttpRequest,
    form: PageForm<PasskeyStepForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let PasskeyStepForm { ceremony, credential, return_to } = form.into_inner();
    let return_to = ReturnTo::or_default(Some(&return_to), &state.issuer);
    let Some((pending, user)) = pending_sign_in(&req, &state).await? else {
        return Ok(start_again(&return_to));
    };
    let browser = Browser::of(&req, &state);
    let address = browser.origin.ip.as_deref().unwrap_or_default();
    let throttled = SignInSubjects::new(&state.hasher, &user.email, address);
    if let Err(wait) = throttle::admit(&state.limiter, &throttled).await {
        state.metrics.authentication_failed("user", "throttled");
        return Ok(throttle::refused_page(wait));
    }
    let (worker_state, user_id) = (state.clone(), user.id.clone());
    let outcome = crate::db::run(&state.pool, move |conn| {
        let Some(webauthn) = &worker_state.passkeys else {
            return Ok(Err(passkeys::PasskeyRefused::Unknown));
        };
        let method = match passkeys::finish_second_factor(
            conn,
            webauthn,
            &worker_state.hasher,
            &user_id,
            &ceremony,
            &credential,
            &browser.origin,
        )? {
            Ok(method) => method,
            Err(refused) => return Ok(Err(refused)),
        };
        let methods = SignInMethods::password().and(method);
        finish(conn, &worker_state, &pending, &user_id, &methods, &browser).map(Ok)
    })
    .await?;
    match outcome {
        Ok(Some(cookie)) => {
            throttle::succeeded(&state.limiter, &throttled).await;
            tracing::info!(user_id = %user.id, "signed in with a password and a passkey");
            with_session(&state, see_other(return_to.as_str()), &cookie)
        }
        Ok(None) => Ok(start_again(&return_to)),
        Err(refused) => {
            state.metrics.authentication_failed("user", "passkey refused");
            show(&req, &state, StatusCode::UNAUTHORIZED, &user, &return_to, Some(refusal_message(refused))).await
        }
    }
}
