//! Accepting an invitation: the invited person opens the link the management API returned,
//! chooses a password, and can sign in. The token travels in the query string (which the
//! request log leaves out) and is stored only as its keyed hash.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::form::PageForm;
use super::pages::{error_page, form_page};
use crate::db::users::find_user_by_invitation;
use crate::error::AppError;
use crate::passwords::MIN_LENGTH;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage<'a> {
    email: &'a str,
    name: Option<&'a str>,
    token: &'a str,
    csrf_token: &'a str,
    error: Option<&'a str>,
    min_length: usize,
}

#[derive(Deserialize)]
pub struct InvitationQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct AcceptForm {
    token: String,
    password: String,
}

fn invalid_link() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "This invitation is not valid",
        "It may have expired or been used already. Ask whoever invited you for a new one.",
    )
}

async fn show(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    token: String,
    error: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let hashes = state.hasher.presented(&token);
    let user = crate::db::run(&state.pool, move |conn| {
        Ok(hashes.find(|hash| find_user_by_invitation(conn, hash, crate::db::now()))?)
    })
    .await?;
    let Some(user) = user else {
        return Ok(invalid_link());
    };
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = InvitationPage {
        email: &user.email,
        name: user.name.as_deref(),
        token: &token,
        csrf_token: &form_value,
        error,
        min_length: MIN_LENGTH,
    };
    form_page(status, cookie, &page)
}

pub async fn get_invitation(
    req: HttpRequest,
    query: web::Query<InvitationQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    match query.into_inner().token {
        Some(token) => show(&req, &state, token, None, StatusCode::OK).await,
        None => Ok(invalid_link()),
    }
}

pub async fn post_invitation(
    req: HttpRequest,
    form: PageForm<AcceptForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    // The link is checked before the password is hashed: a made-up token costs no hashing.
    let (hasher, token) = (state.hasher.clone(), form.token.clone());
    match crate::db::run(&state.pool, move |conn| crate::manage::users::invited_user(conn, &hasher, &token)).await {
        Ok(_) => {}
        Err(AppError::NotFound) => return Ok(invalid_link()),
        Err(other) => return Err(other),
    }
    let password = match state.passwords.hash(SecretString::from(form.password)).await {
        Ok(Ok(password)) => password,
        Ok(Err(invalid)) => {
            return show(&req, &state, form.token, Some(&invalid.to_string()), StatusCode::BAD_REQUEST).await;
        }
        Err(busy) => return Ok(super::pages::busy_page(busy)),
    };
    let (hasher, token) = (state.hasher.clone(), form.token.clone());
    let accepted =
        crate::db::run(&state.pool, move |conn| crate::manage::users::accept(conn, &hasher, &token, &password)).await;
    match accepted {
        Ok(_) => Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/login?welcome=1")).finish()),
        Err(AppError::BadRequest(message)) => {
            show(&req, &state, form.token, Some(&message), StatusCode::BAD_REQUEST).await
        }
        Err(AppError::NotFound) => Ok(invalid_link()),
        Err(other) => Err(other),
    }
}
