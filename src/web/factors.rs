//! Two-step sign-in on the account page: setting up an authenticator app (QR code, then a
//! first code), removing it, and making new recovery codes. Each change asks for the
//! current password first, so that a borrowed browser cannot lock its owner out or keep a
//! way in; the codes themselves are shown once and never again.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::account::{Reauthentication, Shown, confirm_password, render_account};
use super::csrf::{self, CsrfToken};
use super::form::PageForm;
use super::pages::{busy_page, form_page, qr_svg, see_other, sign_in_then};
use super::session::signed_in;
use super::throttle;
use crate::audit::Origin;
use crate::db::users::User;
use crate::domain::RecoveryCode;
use crate::error::AppError;
use crate::manage::SignedInUser;
use crate::manage::second_factors::{self, CodeRefused, TotpSetup};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct TotpSetupPage<'a> {
    qr_svg: String,
    /// The base32 secret in groups of four, for typing.
    secret: String,
    csrf_token: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    codes: Vec<String>,
    notice: Option<&'a str>,
    /// New codes in place of earlier ones (which stop working).
    replaced: bool,
}

#[derive(Deserialize)]
pub struct PasswordOnlyForm {
    #[serde(default)]
    current_password: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// What an authenticator app labels the account with: the issuer's host.
fn app_label(state: &AppState) -> String {
    url::Url::parse(state.issuer.as_str())
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Latchkey".to_owned())
}

fn show_setup(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    setup: &TotpSetup,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let svg = qr_svg(&setup.uri)?;
    // The page holds the SVG element itself: the secret never travels in an image URL.
    let qr_svg = svg.find("<svg").map_or(svg.clone(), |start| svg[start..].to_owned());
    let secret = setup.secret.as_bytes().chunks(4).map(|chunk| String::from_utf8_lossy(chunk)).collect::<Vec<_>>();
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = TotpSetupPage { qr_svg, secret: secret.join(" "), csrf_token: &form_value, error };
    form_page(status, cookie, &page)
}

fn show_codes(codes: &[RecoveryCode], notice: Option<&str>, replaced: bool) -> Result<HttpResponse, AppError> {
    let page = RecoveryCodesPage { codes: codes.iter().map(RecoveryCode::display).collect(), notice, replaced };
    form_page(StatusCode::OK, None, &page)
}

/// The account page again, with why a change was refused.
async fn refuse(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    user: User,
    acting: SignedInUser,
    problem: &str,
) -> Result<HttpResponse, AppError> {
    render_account(req, state, user, acting, Shown { factor_error: Some(problem), ..Shown::default() }).await
}

/// The app `user` is setting up, if any (from the blocking pool).
async fn setup_in_progress(state: &web::Data<AppState>, user: User) -> Result<Option<TotpSetup>, AppError> {
    let (worker_state, label) = (state.clone(), app_label(state));
    crate::db::run(&state.pool, move |conn| {
        second_factors::setup_in_progress(conn, &worker_state.sealer, &user, &label)
    })
    .await
}

/// Runs `change` once the current password is confirmed; otherwise the account page says
/// why, or the busy page asks to come back.
macro_rules! after_password {
    ($req:expr, $state:expr, $user:expr, $acting:expr, $password:expr, $failed_action:expr) => {
        match confirm_password(&$req, &$state, &$user, $password, $failed_action).await? {
            Reauthentication::Confirmed(throttled) => throttled,
            Reauthentication::Refused(problem) => return refuse(&$req, &$state, $user, $acting, &problem).await,
            Reauthentication::Busy(busy) => return Ok(busy_page(busy)),
        }
    };
}

/// `GET /account/totp`: the app being set up, again (a reload, or back from the app).
pub async fn get_totp(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some((user, _)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    match setup_in_progress(&state, user).await? {
        Some(setup) => show_setup(&req, &state, StatusCode::OK, &setup, None),
        None => Ok(see_other("/account")),
    }
}

/// `POST /account/totp`: a new secret to set up, after the password.
pub async fn post_totp(
    req: HttpRequest,
    form: PageForm<PasswordOnlyForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    let throttled =
        after_password!(req, state, user, acting, form.into_inner().current_password, "user.totp_setup_failed");
    throttle::succeeded(&state.limiter, &throttled).await;
    let (origin, label, worker_state, setup_user) = (Origin::of(&req), app_label(&state), state.clone(), user.clone());
    let begun = crate::db::run(&state.pool, move |conn| {
        second_factors::begin_totp(conn, &worker_state.sealer, &setup_user, &label, &origin)
    })
    .await;
    match begun {
        Ok(setup) => show_setup(&req, &state, StatusCode::OK, &setup, None),
        Err(AppError::Conflict(problem)) => refuse(&req, &state, user, acting, &problem).await,
        Err(other) => Err(other),
    }
}

/// `POST /account/totp/confirm`: the first code from the app turns two-step sign-in on; the
/// first time, with recovery codes shown once.
pub async fn post_totp_confirm(
    req: HttpRequest,
    form: PageForm<CodeForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    let (origin, worker_state, user_id) = (Origin::of(&req), state.clone(), user.id.clone());
    let code = form.into_inner().code;
    let confirmed = crate::db::run(&state.pool, move |conn| {
        second_factors::confirm_totp(conn, &worker_state.sealer, &worker_state.hasher, &user_id, &code, &origin)
    })
    .await;
    match confirmed {
        Ok(Ok(codes)) if codes.is_empty() => Ok(see_other("/account?totp_added=1")),
        Ok(Ok(codes)) => {
            show_codes(&codes, Some("Two-step sign-in is on: signing in now asks for a code from your app."), false)
        }
        Ok(Err(refused)) => {
            let Some(setup) = setup_in_progress(&state, user).await? else {
                return Ok(see_other("/account"));
            };
            let problem = match refused {
                CodeRefused::Wrong => {
                    "That code is not right. Check that the app's clock is correct, and enter the code it shows now."
                }
                CodeRefused::Replayed => "That code was used already. Enter the next one.",
            };
            show_setup(&req, &state, StatusCode::BAD_REQUEST, &setup, Some(problem))
        }
        Err(AppError::Conflict(problem)) => refuse(&req, &state, user, acting, &problem).await,
        Err(other) => Err(other),
    }
}

/// `POST /account/totp/remove`: after the password, the app and the recovery codes go.
pub async fn post_totp_remove(
    req: HttpRequest,
    form: PageForm<PasswordOnlyForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    let throttled =
        after_password!(req, state, user, acting, form.into_inner().current_password, "user.totp_removal_failed");
    throttle::succeeded(&state.limiter, &throttled).await;
    let (origin, user_id) = (Origin::of(&req), user.id.clone());
    match crate::db::run(&state.pool, move |conn| second_factors::remove_totp(conn, &user_id, &origin)).await {
        Ok(()) | Err(AppError::NotFound) => Ok(see_other("/account?totp_removed=1")),
        Err(other) => Err(other),
    }
}

/// `POST /account/recovery-codes`: after the password, ten new codes; the old ones die.
pub async fn post_recovery_codes(
    req: HttpRequest,
    form: PageForm<PasswordOnlyForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    let throttled = after_password!(
        req,
        state,
        user,
        acting,
        form.into_inner().current_password,
        "user.recovery_codes_regeneration_failed"
    );
    throttle::succeeded(&state.limiter, &throttled).await;
    let (origin, worker_state, user_id) = (Origin::of(&req), state.clone(), user.id.clone());
    let made = crate::db::run(&state.pool, move |conn| {
        second_factors::regenerate_recovery_codes(conn, &worker_state.hasher, &user_id, &origin)
    })
    .await;
    match made {
        Ok(codes) => show_codes(&codes, None, true),
        Err(AppError::Conflict(problem)) => refuse(&req, &state, user, acting, &problem).await,
        Err(other) => Err(other),
    }
}
