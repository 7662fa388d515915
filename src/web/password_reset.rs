//! "Forgot your password?": `/login/forgot` sends a single-use link (30 minutes) to the
//! account's email, answering the same whether or not an account uses the address;
//! `/login/reset` takes the new password (and the second factor, if the account has one) and
//! ends every session and grant of the account.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::form::PageForm;
use super::pages::{busy_page, error_page, form_page, see_other, sign_in_then};
use super::throttle::{self, SignInSubjects};
use crate::audit::Origin;
use crate::db::users::User;
use crate::domain::ReturnTo;
use crate::error::AppError;
use crate::mail::Mail;
use crate::manage::password_reset::{self, RESET_LINK_LIFETIME};
use crate::manage::second_factors::{self, CodeRefused};
use crate::manage::users::normalize_email;
use crate::passwords::PasswordHasher;
use crate::ratelimit::Limits;
use crate::state::AppState;

pub const FORGOT_PATH: &str = "/login/forgot";
pub const RESET_PATH: &str = "/login/reset";

/// Links asked for one account: three at once, then one every ten minutes, so that nobody
/// can fill a mailbox.
const ACCOUNT_LIMITS: Limits = Limits { per_hour: Some(6), burst: 3 };
/// Links asked for from one address, for any accounts.
const ADDRESS_LIMITS: Limits = Limits { per_hour: Some(30), burst: 10 };

/// The "forgot" page's address, with where the sign-in page was leading.
pub fn forgot_then(return_to: &str) -> String {
    let return_to = percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC);
    format!("{FORGOT_PATH}?return_to={return_to}")
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPage<'a> {
    csrf_token: &'a str,
    return_to: &'a str,
    sign_in: String,
    /// The request was taken: the same words whether or not a mail went out.
    sent: bool,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPage<'a> {
    csrf_token: &'a str,
    token: &'a str,
    email: &'a str,
    second_factor: bool,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct ForgotQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    return_to: String,
}

#[derive(Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
    #[serde(default)]
    code: String,
}

fn forgot_page(
    req: &HttpRequest,
    state: &AppState,
    return_to: &ReturnTo,
    sent: bool,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = ForgotPage {
        csrf_token: &form_value,
        return_to: return_to.as_str(),
        sign_in: sign_in_then(return_to.as_str()),
        sent,
    };
    form_page(StatusCode::OK, cookie, &page)
}

fn too_many(wait_secs: u64) -> HttpResponse {
    let minutes = wait_secs.div_ceil(60);
    let mut response = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many reset requests",
        &format!("Wait {minutes} minute(s) before asking again."),
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    response
}

pub async fn get_forgot(
    req: HttpRequest,
    query: web::Query<ForgotQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let return_to = ReturnTo::or_default(query.return_to.as_deref(), &state.issuer);
    forgot_page(&req, &state, &return_to, false)
}

/// Takes a request for a link. Both budgets are spent whether or not the address has an
/// account, and the answer is the same page: neither says which emails exist.
pub async fn post_forgot(
    req: HttpRequest,
    form: PageForm<ForgotForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let return_to = ReturnTo::or_default(Some(&form.return_to), &state.issuer);
    let email = normalize_email(&form.email).unwrap_or_else(|_| form.email.trim().to_lowercase());
    let origin = Origin::of(&req);
    let address = state.hasher.hash(origin.ip.as_deref().unwrap_or_default()).into_string();
    let account = state.hasher.hash(&email).into_string();
    for (bucket, limits) in
        [(format!("reset:address:{address}"), ADDRESS_LIMITS), (format!("reset:account:{account}"), ACCOUNT_LIMITS)]
    {
        let decision = state.limiter.check(&bucket, limits).await;
        if !decision.allowed {
            return Ok(too_many(decision.retry_after));
        }
    }
    let hasher = state.hasher.clone();
    let link =
        crate::db::run(&state.pool, move |conn| password_reset::request_reset(conn, &hasher, &email, &origin)).await?;
    if let Some(link) = link {
        let url = format!("{}?token={}", state.issuer.endpoint(RESET_PATH), link.token);
        state.mailer.send_later(reset_mail(&state, &link.user, &url));
    }
    forgot_page(&req, &state, &return_to, true)
}

fn reset_mail(state: &AppState, user: &User, url: &str) -> Mail {
    let minutes = RESET_LINK_LIFETIME.num_minutes();
    Mail {
        to: user.email.clone(),
        subject: "Reset your Latchkey password".to_owned(),
        body: format!(
            "Hello {name},\n\n\
             someone, hopefully you, asked to reset the password of your account at {issuer}.\n\n\
             Choose a new password here; the link works once, for {minutes} minutes:\n\n{url}\n\n\
             Using it signs you out everywhere. If you did not ask for it, ignore this mail: your \
             password stays as it is.\n",
            name = user.display_name(),
            issuer = state.issuer,
        ),
    }
}

fn invalid_link() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "This link does not work",
        "It was used already, it is older than 30 minutes, or it was copied incompletely. Ask for a new one from the sign-in page.",
    )
}

/// The person a link is for and whether they have a second factor, while the link works.
async fn target(state: &AppState, token: String) -> Result<Option<(User, bool)>, AppError> {
    let hasher = state.hasher.clone();
    crate::db::run(&state.pool, move |conn| {
        let Some(user) = password_reset::reset_target(conn, &hasher, &token)? else {
            return Ok(None);
        };
        let second_factor = second_factors::has_second_factor(conn, &user.id)?;
        Ok(Some((user, second_factor)))
    })
    .await
}

fn reset_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    token: &str,
    (user, second_factor): &(User, bool),
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = ResetPage { csrf_token: &form_value, token, email: &user.email, second_factor: *second_factor, error };
    form_page(status, cookie, &page)
}

pub async fn get_reset(
    req: HttpRequest,
    query: web::Query<ResetQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = query.into_inner().token.unwrap_or_default();
    match target(&state, token.clone()).await? {
        Some(found) => reset_page(&req, &state, StatusCode::OK, &token, &found, None),
        None => Ok(invalid_link()),
    }
}

/// The new password: checked, then the second factor (counted against the sign-in throttle
/// as at sign-in), then set, ending every session and grant of the account.
pub async fn post_reset(
    req: HttpRequest,
    form: PageForm<ResetForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let Some(found) = target(&state, form.token.clone()).await? else {
        return Ok(invalid_link());
    };
    let refuse = |problem: &str| reset_page(&req, &state, StatusCode::BAD_REQUEST, &form.token, &found, Some(problem));
    if form.new_password != form.confirm_password {
        return refuse("The new passwords do not match.");
    }
    if let Err(problem) = PasswordHasher::validate(&form.new_password) {
        return refuse(&super::form::sentence(&problem.to_string()));
    }
    let (user, second_factor) = &found;
    let origin = Origin::of(&req);
    let throttled = SignInSubjects::new(&state.hasher, &user.email, origin.ip.as_deref().unwrap_or_default());
    if *second_factor {
        if let Err(wait) = throttle::admit(&state.limiter, &throttled).await {
            let minutes = wait.as_secs().div_ceil(60);
            return refuse(&format!("Too many attempts. Wait {minutes} minute(s) before trying again."));
        }
        let (worker_state, user_id, code, code_origin) =
            (state.clone(), user.id.clone(), form.code.clone(), origin.clone());
        let checked = crate::db::run(&state.pool, move |conn| {
            second_factors::verify_second_factor(
                conn,
                &worker_state.sealer,
                &worker_state.hasher,
                &user_id,
                &code,
                &code_origin,
            )
        })
        .await?;
        match checked {
            Ok(_) => {}
            Err(CodeRefused::Wrong) => return refuse("That code is not right."),
            Err(CodeRefused::Replayed) => return refuse("That code was used already. Wait for the next one."),
        }
    }
    let hashed = match state.passwords.hash(SecretString::from(form.new_password.clone())).await {
        Ok(Ok(hashed)) => hashed,
        Ok(Err(problem)) => return refuse(&super::form::sentence(&problem.to_string())),
        Err(busy) => return Ok(busy_page(busy)),
    };
    let (hasher, token, user_id) = (state.hasher.clone(), form.token.clone(), user.id.clone());
    let done = crate::db::run(&state.pool, move |conn| {
        password_reset::complete_reset(conn, &hasher, &token, &user_id, &hashed, &origin)
    })
    .await;
    match done {
        Ok(()) => {
            throttle::succeeded(&state.limiter, &throttled).await;
            Ok(see_other("/login?reset=1"))
        }
        Err(AppError::NotFound) => Ok(invalid_link()),
        Err(other) => Err(other),
    }
}
