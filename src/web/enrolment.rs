//! Setting up a first second factor during sign-in, when the owners require one of
//! everyone: after the right password, a person without a second factor is sent here
//! instead of being signed in, sets up a passkey or an authenticator app, sees their
//! recovery codes, and only then has a session. The setup pages are the account page's
//! own, posting here.
//!
//! Only someone with no second factor may set one up this way: a password alone must never
//! add a factor to an account that has one.

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::factors::{SetupPlace, refusal_message, setup_refusal, show_codes, show_registration, show_setup};
use super::form::PageForm;
use super::pages::{form_page, see_other};
use super::second_factor::{finish, with_session};
use super::session::{Browser, pending_sign_in};
use crate::db::DbConnection;
use crate::db::users::User;
use crate::domain::{RecoveryCode, ReturnTo, SignInMethod, SignInMethods};
use crate::error::AppError;
use crate::manage::passkeys::{self, PasskeyRefused};
use crate::manage::second_factors::{self, CodeRefused, has_second_factor};
use crate::state::AppState;

pub const ENROL_PATH: &str = "/login/enrol";

/// The enrolment page's address, leading to `return_to` afterwards.
pub fn page_then(return_to: &str) -> String {
    let return_to = percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC);
    format!("{ENROL_PATH}?return_to={return_to}")
}

#[derive(Template)]
#[template(path = "enrol.html")]
struct EnrolPage<'a> {
    email: &'a str,
    passkeys: bool,
    csrf_token: &'a str,
    return_to: &'a str,
    start_again: String,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct EnrolQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct ReturnForm {
    #[serde(default)]
    return_to: String,
}

#[derive(Deserialize)]
pub struct PasskeyNameForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    return_to: String,
}

#[derive(Deserialize)]
pub struct AppCodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    return_to: String,
}

#[derive(Deserialize)]
pub struct PasskeyAnswer {
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
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
    user: &User,
    return_to: &ReturnTo,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = EnrolPage {
        email: &user.email,
        passkeys: state.passkeys.is_some(),
        csrf_token: &form_value,
        return_to: return_to.as_str(),
        start_again: super::pages::sign_in_then(return_to.as_str()),
        error,
    };
    form_page(status, cookie, &page)
}

/// Where the setup pages post during sign-in, and lead back to.
fn place<'a>(action: &'a str, back: &'a str, return_to: &'a ReturnTo) -> SetupPlace<'a> {
    SetupPlace { action, back, back_label: "Set up two-step sign-in", return_to: Some(return_to.as_str()) }
}

/// Refuses to go on for someone who has a second factor after all: they sign in with it.
fn only_without_second_factor(conn: &mut DbConnection, user_id: &str) -> Result<(), AppError> {
    if has_second_factor(conn, user_id)? {
        return Err(AppError::Conflict("You have a second factor already: sign in with it.".into()));
    }
    Ok(())
}

/// `GET /login/enrol`: the choice between a passkey and an authenticator app.
pub async fn get_enrol(
    req: HttpRequest,
    query: web::Query<EnrolQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let return_to = ReturnTo::or_default(query.return_to.as_deref(), &state.issuer);
    match pending_sign_in(&req, &state).await? {
        Some((_, user)) => show(&req, &state, StatusCode::OK, &user, &return_to, None),
        None => Ok(start_again(&return_to)),
    }
}

/// `POST /login/enrol/totp`: a new authenticator app to scan.
pub async fn post_enrol_totp(
    req: HttpRequest,
    form: PageForm<ReturnForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let return_to = ReturnTo::or_default(Some(&form.into_inner().return_to), &state.issuer);
    let Some((_, user)) = pending_sign_in(&req, &state).await? else {
        return Ok(start_again(&return_to));
    };
    let (worker_state, setup_user, origin) = (state.clone(), user.clone(), Browser::of(&req, &state).origin);
    let label = super::factors::app_label(&state);
    let begun = crate::db::run(&state.pool, move |conn| {
        crate::db::write_transaction(conn, |conn| {
            only_without_second_factor(conn, &setup_user.id)?;
            second_factors::begin_totp(conn, &worker_state.sealer, &setup_user, &label, &origin)
        })
    })
    .await;
    let back = page_then(return_to.as_str());
    match begun {
        Ok(setup) => {
            let place = place("/login/enrol/totp/confirm", &back, &return_to);
            show_setup(&req, &state, StatusCode::OK, &setup, place, None)
        }
        Err(AppError::Conflict(problem)) => show(&req, &state, StatusCode::CONFLICT, &user, &return_to, Some(&problem)),
        Err(other) => Err(other),
    }
}

/// How setting up a first factor during sign-in ended.
enum Enrolled<Refused> {
    /// Signed in, with the recovery codes to show once.
    SignedIn {
        cookie: actix_web::cookie::Cookie<'static>,
        codes: Vec<RecoveryCode>,
    },
    Refused(Refused),
    /// The pending sign-in ended meanwhile.
    Gone,
}

/// The session and recovery codes of a finished enrolment.
fn signed_in(
    state: &AppState,
    cookie: &actix_web::cookie::Cookie<'static>,
    codes: &[RecoveryCode],
    return_to: &ReturnTo,
) -> Result<HttpResponse, AppError> {
    let notice = Some("Two-step sign-in is on, and you are signed in. Keep these codes before you go on.");
    with_session(state, show_codes(codes, notice, false, return_to.as_str())?, cookie)
}

/// `POST /login/enrol/totp/confirm`: the app's first code turns it on and finishes the
/// sign-in (the password, then the code just given).
pub async fn post_enrol_totp_confirm(
    req: HttpRequest,
    form: PageForm<AppCodeForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let AppCodeForm { code, return_to } = form.into_inner();
    let return_to = ReturnTo::or_default(Some(&return_to), &state.issuer);
    let Some((pending, user)) = pending_sign_in(&req, &state).await? else {
        return Ok(start_again(&return_to));
    };
    let browser = Browser::of(&req, &state);
    let (worker_state, user_id) = (state.clone(), user.id.clone());
    let enrolled = crate::db::run(&state.pool, move |conn| -> Result<Enrolled<CodeRefused>, AppError> {
        crate::db::write_transaction(conn, |conn| {
            only_without_second_factor(conn, &user_id)?;
            let s = &worker_state;
            let codes =
                match second_factors::confirm_totp(conn, &s.sealer, &s.hasher, &user_id, &code, &browser.origin)? {
                    Ok(codes) => codes,
                    Err(refused) => return Ok(Enrolled::Refused(refused)),
                };
            let methods = SignInMethods::password().and(SignInMethod::OneTimeCode);
            Ok(match finish(conn, s, &pending, &user_id, &methods, &browser)? {
                Some(cookie) => Enrolled::SignedIn { cookie, codes },
                None => Enrolled::Gone,
            })
        })
    })
    .await;
    match enrolled {
        Ok(Enrolled::SignedIn { cookie, codes }) => signed_in(&state, &cookie, &codes, &return_to),
        Ok(Enrolled::Gone) => Ok(start_again(&return_to)),
        Ok(Enrolled::Refused(refused)) => {
            let (worker_state, setup_user, label) = (state.clone(), user.clone(), super::factors::app_label(&state));
            let setup = crate::db::run(&state.pool, move |conn| {
                second_factors::setup_in_progress(conn, &worker_state.sealer, &setup_user, &label)
            })
            .await?;
            let Some(setup) = setup else { return show(&req, &state, StatusCode::OK, &user, &return_to, None) };
            let back = page_then(return_to.as_str());
            let place = place("/login/enrol/totp/confirm", &back, &return_to);
            show_setup(&req, &state, StatusCode::BAD_REQUEST, &setup, place, Some(setup_refusal(refused)))
        }
        Err(AppError::Conflict(problem)) => show(&req, &state, StatusCode::CONFLICT, &user, &return_to, Some(&problem)),
        Err(other) => Err(other),
    }
}

/// `POST /login/enrol/passkey`: the page that asks the browser for a first passkey.
pub async fn post_enrol_passkey(
    req: HttpRequest,
    form: PageForm<PasskeyNameForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let PasskeyNameForm { name, return_to } = form.into_inner();
    let return_to = ReturnTo::or_default(Some(&return_to), &state.issuer);
    let Some((_, user)) = pending_sign_in(&req, &state).await? else {
        return Ok(start_again(&return_to));
    };
    if state.passkeys.is_none() {
        return show(&req, &state, StatusCode::NOT_FOUND, &user, &return_to, Some("Passkeys are off on this server."));
    }
    let name = match passkeys::passkey_name(&name) {
        Ok(name) => name,
        Err(problem) => return show(&req, &state, StatusCode::BAD_REQUEST, &user, &return_to, Some(&problem)),
    };
    let (worker_state, setup_user, chosen) = (state.clone(), user.clone(), name.clone());
    let challenge = crate::db::run(&state.pool, move |conn| {
        only_without_second_factor(conn, &setup_user.id)?;
        let webauthn = worker_state.passkeys.as_ref().ok_or(AppError::NotFound)?;
        passkeys::begin_registration(conn, webauthn, &worker_state.hasher, &setup_user, &chosen)
    })
    .await;
    match challenge {
        Ok(challenge) => {
            let back = page_then(return_to.as_str());
            show_registration(&req, &state, &name, &challenge, place("/login/enrol/passkey/confirm", &back, &return_to))
        }
        Err(AppError::Conflict(problem)) => show(&req, &state, StatusCode::CONFLICT, &user, &return_to, Some(&problem)),
        Err(other) => Err(other),
    }
}

/// `POST /login/enrol/passkey/confirm`: the new passkey turns two-step sign-in on and
/// finishes the sign-in (the password, then the passkey just made, which verified its user).
pub async fn post_enrol_passkey_confirm(
    req: HttpRequest,
    form: PageForm<PasskeyAnswer>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let PasskeyAnswer { ceremony, credential, return_to } = form.into_inner();
    let return_to = ReturnTo::or_default(Some(&return_to), &state.issuer);
    let Some((pending, user)) = pending_sign_in(&req, &state).await? else {
        return Ok(start_again(&return_to));
    };
    let browser = Browser::of(&req, &state);
    let (worker_state, owner) = (state.clone(), user.clone());
    let enrolled = crate::db::run(&state.pool, move |conn| -> Result<Enrolled<PasskeyRefused>, AppError> {
        let webauthn = worker_state.passkeys.as_ref().ok_or(AppError::NotFound)?;
        crate::db::write_transaction(conn, |conn| {
            only_without_second_factor(conn, &owner.id)?;
            let s = &worker_state;
            let registered = match passkeys::finish_registration(
                conn,
                webauthn,
                &s.hasher,
                &owner,
                &ceremony,
                &credential,
                &browser.origin,
            )? {
                Ok(registered) => registered,
                Err(refused) => return Ok(Enrolled::Refused(refused)),
            };
            let methods = SignInMethods::password().and(registered.method);
            Ok(match finish(conn, s, &pending, &owner.id, &methods, &browser)? {
                Some(cookie) => Enrolled::SignedIn { cookie, codes: registered.recovery_codes },
                None => Enrolled::Gone,
            })
        })
    })
    .await;
    match enrolled {
        Ok(Enrolled::SignedIn { cookie, codes }) => signed_in(&state, &cookie, &codes, &return_to),
        Ok(Enrolled::Gone) => Ok(start_again(&return_to)),
        Ok(Enrolled::Refused(refused)) => {
            show(&req, &state, StatusCode::BAD_REQUEST, &user, &return_to, Some(refusal_message(refused)))
        }
        Err(AppError::Conflict(problem)) => show(&req, &state, StatusCode::CONFLICT, &user, &return_to, Some(&problem)),
        Err(other) => Err(other),
    }
}
