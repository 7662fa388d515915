//! First start: the page the logged setup link opens, where the first person creates the
//! owner account and is signed in. The token travels in the query string (which the request
//! log leaves out) and in the form; it is stored only as its keyed hash.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::form::{FieldError, PageForm};
use super::pages::{busy_page, error_page, form_page};
use super::session::start_session;
use crate::audit::Origin;
use crate::error::AppError;
use crate::manage::setup::{FirstOwner, create_first_owner, setup_is_open};
use crate::passwords::MIN_LENGTH;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    token: &'a str,
    name: &'a str,
    email: &'a str,
    csrf_token: &'a str,
    error: Option<FieldError>,
    min_length: usize,
}

/// Which field a refusal is about: the password's rules name it, a name's problems name it,
/// the rest are the address's.
const FIELDS: [(&str, &str); 5] =
    [("password", "password"), ("email", "email"), ("address", "email"), ("name", "name"), ("characters", "email")];

#[derive(Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    #[serde(default)]
    name: String,
    email: String,
    password: String,
}

fn closed() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "This setup link does not work",
        "It has been used, has expired, or Latchkey already has an owner. Sign in, or restart the server \
         with an empty database for a new link.",
    )
}

async fn is_open(state: &AppState, token: &str) -> Result<bool, AppError> {
    let (hasher, token) = (state.hasher.clone(), token.to_owned());
    crate::db::run(&state.pool, move |conn| setup_is_open(conn, &hasher, &token)).await
}

fn show(
    req: &HttpRequest,
    state: &AppState,
    page: SetupPage<'_>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    form_page(status, cookie, &SetupPage { csrf_token: &form_value, ..page })
}

pub async fn get_setup(
    req: HttpRequest,
    query: web::Query<SetupQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some(token) = query.into_inner().token else {
        return Ok(closed());
    };
    if !is_open(&state, &token).await? {
        return Ok(closed());
    }
    let page = SetupPage { token: &token, name: "", email: "", csrf_token: "", error: None, min_length: MIN_LENGTH };
    show(&req, &state, page, StatusCode::OK)
}

pub async fn post_setup(
    req: HttpRequest,
    form: PageForm<SetupForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    // The link is checked before the password is hashed: a made-up token costs no hashing.
    if !is_open(&state, &form.token).await? {
        return Ok(closed());
    }
    let again = |error: &str| {
        let page = SetupPage {
            token: &form.token,
            name: &form.name,
            email: &form.email,
            csrf_token: "",
            error: Some(FieldError::place(error, &FIELDS)),
            min_length: MIN_LENGTH,
        };
        show(&req, &state, page, StatusCode::BAD_REQUEST)
    };
    let password = match state.passwords.hash(SecretString::from(form.password.clone())).await {
        Ok(Ok(password)) => password,
        Ok(Err(invalid)) => return again(&invalid.to_string()),
        Err(busy) => return Ok(busy_page(busy)),
    };
    let origin = Origin::of(&req);
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (worker_state, token, name, email) = (state.clone(), form.token.clone(), form.name.clone(), form.email.clone());
    let created = crate::db::run(&state.pool, move |conn| {
        let owner = FirstOwner { email: &email, name: Some(&name), password: &password, origin: &origin };
        let user = create_first_owner(conn, &worker_state.hasher, &token, owner)?;
        start_session(
            conn,
            &worker_state,
            &user.id,
            &crate::domain::SignInMethods::password(),
            origin.ip.as_deref(),
            user_agent.as_deref(),
        )
    })
    .await;
    match created {
        Ok(cookie) => {
            let mut response =
                HttpResponse::SeeOther().insert_header((header::LOCATION, super::dashboard::HOME)).finish();
            response.add_cookie(&cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(response)
        }
        Err(AppError::BadRequest(message)) => again(&message),
        Err(AppError::NotFound) => Ok(closed()),
        Err(other) => Err(other),
    }
}
