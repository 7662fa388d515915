//! Two-step sign-in on the account page: setting up an authenticator app (QR code, then a
//! first code), adding and removing passkeys, removing the app, and making new recovery
//! codes. Each change asks for the current password first, so that a borrowed browser
//! cannot lock its owner out or keep a way in; the codes themselves are shown once and
//! never again.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::account::{Reauthentication, Shown, confirm_password, render_account};
use super::csrf::{self, CsrfToken};
use super::form::PageForm;
use super::pages::{busy_page, error_page, form_page, passkey_page, qr_svg, see_other, sign_in_then};
use super::session::signed_in;
use super::throttle;
use crate::audit::Origin;
use crate::db::users::User;
use crate::domain::RecoveryCode;
use crate::error::AppError;
use crate::manage::SignedInUser;
use crate::manage::passkeys::{self, PasskeyRefused};
use crate::manage::second_factors::{self, CodeRefused, TotpSetup};
use crate::state::AppState;

/// Where a setup page (an authenticator app, a passkey) posts and leads back to: the account
/// page, or the sign-in that must set up a second factor before it finishes.
#[derive(Clone, Copy)]
pub(super) struct SetupPlace<'a> {
    pub action: &'a str,
    pub back: &'a str,
    pub back_label: &'a str,
    /// Carried through a sign-in: where it leads when done.
    pub return_to: Option<&'a str>,
}

const ACCOUNT_APP: SetupPlace<'static> =
    SetupPlace { action: "/account/totp/confirm", back: "/account", back_label: "Your account", return_to: None };
const ACCOUNT_PASSKEY: SetupPlace<'static> =
    SetupPlace { action: "/account/passkeys/confirm", back: "/account", back_label: "Your account", return_to: None };

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct TotpSetupPage<'a> {
    qr_svg: String,
    /// The base32 secret in groups of four, for typing.
    secret: String,
    csrf_token: &'a str,
    error: Option<&'a str>,
    action: &'a str,
    back: &'a str,
    back_label: &'a str,
    return_to: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    codes: Vec<String>,
    notice: Option<&'a str>,
    /// New codes in place of earlier ones (which stop working).
    replaced: bool,
    /// Where "I have saved them" leads.
    next: &'a str,
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
pub(super) fn app_label(state: &AppState) -> String {
    url::Url::parse(state.issuer.as_str())
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Latchkey".to_owned())
}

pub(super) fn show_setup(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    setup: &TotpSetup,
    place: SetupPlace<'_>,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let svg = qr_svg(&setup.uri)?;
    // The page holds the SVG element itself: the secret never travels in an image URL.
    let qr_svg = svg.find("<svg").map_or(svg.clone(), |start| svg[start..].to_owned());
    let secret = setup.secret.as_bytes().chunks(4).map(|chunk| String::from_utf8_lossy(chunk)).collect::<Vec<_>>();
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = TotpSetupPage {
        qr_svg,
        secret: secret.join(" "),
        csrf_token: &form_value,
        error,
        action: place.action,
        back: place.back,
        back_label: place.back_label,
        return_to: place.return_to,
    };
    form_page(status, cookie, &page)
}

/// Recovery codes, shown once; "I have saved them" leads to `next`.
pub(super) fn show_codes(
    codes: &[RecoveryCode],
    notice: Option<&str>,
    replaced: bool,
    next: &str,
) -> Result<HttpResponse, AppError> {
    let page = RecoveryCodesPage { codes: codes.iter().map(RecoveryCode::display).collect(), notice, replaced, next };
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
        Some(setup) => show_setup(&req, &state, StatusCode::OK, &setup, ACCOUNT_APP, None),
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
        Ok(setup) => show_setup(&req, &state, StatusCode::OK, &setup, ACCOUNT_APP, None),
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
        Ok(Ok(codes)) => show_codes(
            &codes,
            Some("Two-step sign-in is on: signing in now asks for a code from your app."),
            false,
            "/account",
        ),
        Ok(Err(refused)) => {
            let Some(setup) = setup_in_progress(&state, user).await? else {
                return Ok(see_other("/account"));
            };
            show_setup(&req, &state, StatusCode::BAD_REQUEST, &setup, ACCOUNT_APP, Some(setup_refusal(refused)))
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
        Err(AppError::Conflict(problem)) => refuse(&req, &state, user, acting, &problem).await,
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
        Ok(codes) => show_codes(&codes, None, true, "/account"),
        Err(AppError::Conflict(problem)) => refuse(&req, &state, user, acting, &problem).await,
        Err(other) => Err(other),
    }
}

/// Why the first code from an app being set up was not taken.
pub(super) fn setup_refusal(refused: CodeRefused) -> &'static str {
    match refused {
        CodeRefused::Wrong => {
            "That code is not right. Check that the app's clock is correct, and enter the code it shows now."
        }
        CodeRefused::Replayed => "That code was used already. Enter the next one.",
    }
}

#[derive(Template)]
#[template(path = "passkey_register.html")]
struct PasskeyRegisterPage<'a> {
    name: &'a str,
    ceremony: &'a str,
    /// The options for `navigator.credentials.create`, safe inside a script element.
    options: String,
    csrf_token: &'a str,
    action: &'a str,
    back: &'a str,
    back_label: &'a str,
    return_to: Option<&'a str>,
}

/// The page that asks the browser for a new passkey, for `challenge`.
pub(super) fn show_registration(
    req: &HttpRequest,
    state: &AppState,
    name: &str,
    challenge: &passkeys::Challenge,
    place: SetupPlace<'_>,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = PasskeyRegisterPage {
        name,
        ceremony: &challenge.ceremony,
        options: embeddable(&challenge.options),
        csrf_token: &form_value,
        action: place.action,
        back: place.back,
        back_label: place.back_label,
        return_to: place.return_to,
    };
    passkey_page(StatusCode::OK, cookie, &page)
}

#[derive(Template)]
#[template(path = "passkey_remove.html")]
struct PasskeyRemovePage<'a> {
    id: &'a str,
    name: &'a str,
    /// The person's last second factor: removing it turns two-step sign-in off.
    last: bool,
    csrf_token: &'a str,
}

#[derive(Deserialize)]
pub struct NewPasskeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    current_password: String,
}

#[derive(Deserialize)]
pub struct PasskeyAnswerForm {
    #[serde(default)]
    pub ceremony: String,
    #[serde(default)]
    pub credential: String,
}

/// JSON for a `<script type="application/json">` element: no `<` can close it early (a
/// display name is the person's to choose).
pub(super) fn embeddable(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// What the person reads when a passkey was not accepted.
pub(super) fn refusal_message(refused: PasskeyRefused) -> &'static str {
    match refused {
        PasskeyRefused::Expired => "That passkey request expired or was already used. Try again.",
        PasskeyRefused::Malformed => "Your browser's answer could not be read. Try again, or use another way in.",
        PasskeyRefused::Unknown => "That passkey is not registered here. It may have been removed from the account.",
        PasskeyRefused::Failed => "That passkey could not be verified. Try again, or use another way in.",
        PasskeyRefused::AlreadyRegistered => "That passkey is registered already.",
    }
}

fn passkeys_off() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Passkeys are off",
        "This server's address is not a domain name, and browsers offer passkeys only to domain names.",
    )
}

/// `POST /account/passkeys`: after the password, the page that asks the browser for a new
/// passkey.
pub async fn post_passkey(
    req: HttpRequest,
    form: PageForm<NewPasskeyForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    if state.passkeys.is_none() {
        return Ok(passkeys_off());
    }
    let NewPasskeyForm { name, current_password } = form.into_inner();
    let name = match passkeys::passkey_name(&name) {
        Ok(name) => name,
        Err(problem) => return refuse(&req, &state, user, acting, &problem).await,
    };
    let throttled = after_password!(req, state, user, acting, current_password, "user.passkey_registration_failed");
    throttle::succeeded(&state.limiter, &throttled).await;
    let (worker_state, setup_user, chosen) = (state.clone(), user.clone(), name.clone());
    let challenge = crate::db::run(&state.pool, move |conn| {
        let webauthn = worker_state.passkeys.as_ref().ok_or(AppError::NotFound)?;
        passkeys::begin_registration(conn, webauthn, &worker_state.hasher, &setup_user, &chosen)
    })
    .await?;
    show_registration(&req, &state, &name, &challenge, ACCOUNT_PASSKEY)
}

/// `POST /account/passkeys/confirm`: the browser's new passkey. The person's first second
/// factor comes with recovery codes, shown once.
pub async fn post_passkey_confirm(
    req: HttpRequest,
    form: PageForm<PasskeyAnswerForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    if state.passkeys.is_none() {
        return Ok(passkeys_off());
    }
    let PasskeyAnswerForm { ceremony, credential } = form.into_inner();
    let (origin, worker_state, owner) = (Origin::of(&req), state.clone(), user.clone());
    let registered = crate::db::run(&state.pool, move |conn| {
        let webauthn = worker_state.passkeys.as_ref().ok_or(AppError::NotFound)?;
        passkeys::finish_registration(conn, webauthn, &worker_state.hasher, &owner, &ceremony, &credential, &origin)
    })
    .await?;
    match registered {
        Ok(registered) if registered.recovery_codes.is_empty() => Ok(see_other("/account?passkey_added=1#passkeys")),
        Ok(registered) => show_codes(
            &registered.recovery_codes,
            Some("Passkey added. Signing in with your password now also asks for it."),
            false,
            "/account",
        ),
        Err(refused) => refuse(&req, &state, user, acting, refusal_message(refused)).await,
    }
}

/// `GET /account/passkeys/{id}/remove`: are you sure, and your password.
pub async fn get_passkey_remove(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, _)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    let id = path.into_inner();
    let user_id = user.id.clone();
    let factors = crate::db::run(&state.pool, move |conn| second_factors::factors(conn, &user_id)).await?;
    let Some(passkey) = factors.passkeys.iter().find(|passkey| passkey.id == id) else {
        return Ok(error_page(StatusCode::NOT_FOUND, "No such passkey", "It may have been removed already."));
    };
    let last = factors.passkeys.len() == 1 && !factors.totp.as_ref().is_some_and(|app| app.is_confirmed());
    let CsrfToken { form_value, cookie } = csrf::issue(&req, &state);
    let page = PasskeyRemovePage { id: &passkey.id, name: &passkey.name, last, csrf_token: &form_value };
    form_page(StatusCode::OK, cookie, &page)
}

/// `POST /account/passkeys/{id}/remove`: after the password, the passkey goes (and with the
/// last second factor, the recovery codes).
pub async fn post_passkey_remove(
    req: HttpRequest,
    path: web::Path<String>,
    form: PageForm<PasswordOnlyForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(see_other(&sign_in_then("/account")));
    };
    let throttled =
        after_password!(req, state, user, acting, form.into_inner().current_password, "user.passkey_removal_failed");
    throttle::succeeded(&state.limiter, &throttled).await;
    let (origin, user_id, id) = (Origin::of(&req), user.id.clone(), path.into_inner());
    match crate::db::run(&state.pool, move |conn| passkeys::remove(conn, &user_id, &id, &origin)).await {
        Ok(()) | Err(AppError::NotFound) => Ok(see_other("/account?passkey_removed=1#passkeys")),
        Err(AppError::Conflict(problem)) => refuse(&req, &state, user, acting, &problem).await,
        Err(other) => Err(other),
    }
}
