//! The account page: who is signed in, and the way out. Consents and personal API keys
//! join it as those features arrive.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::csrf::{self, CsrfToken};
use super::pages::form_page;
use super::session::current_user;
use crate::error::AppError;
use crate::startup::AppState;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    name: &'a str,
    email: &'a str,
    member_since: String,
    csrf_token: &'a str,
}

pub async fn get_account(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/login?return_to=/account")).finish());
    };
    let CsrfToken { form_value, cookie } = csrf::issue(&req, &state);
    let page = AccountPage {
        name: user.display_name(),
        email: &user.email,
        member_since: user.created_at.format("%-d %B %Y").to_string(),
        csrf_token: &form_value,
    };
    form_page(StatusCode::OK, cookie, &page)
}
