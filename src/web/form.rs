//! A form posted from one of our pages: read (at most 16 KiB), its CSRF token checked, then
//! parsed into `T` (repeated fields such as checkboxes into a `Vec`). As an extractor, a
//! handler that takes a [`PageForm`] never runs for a forged or unreadable form.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::csrf;
use super::pages::error_page;
use crate::state::AppState;

const LIMIT: usize = 16 * 1024;

pub struct PageForm<T>(pub T);

impl<T> PageForm<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Why a form was not taken: shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum FormRefusal {
    #[error("the form could not be read")]
    Unreadable,
    #[error("the form's CSRF token does not match this browser")]
    Expired,
}

impl ResponseError for FormRefusal {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unreadable => StatusCode::BAD_REQUEST,
            Self::Expired => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Unreadable => error_page(self.status_code(), "Cannot continue", "The form was incomplete."),
            Self::Expired => {
                error_page(self.status_code(), "This form has expired", "Go back, reload the page and try again.")
            }
        }
    }
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    csrf_token: String,
}

/// `manage` words its refusals as API messages (lower case, no full stop); pages show sentences.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.is_empty() && !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// One option of a select or a set of radio buttons.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A refusal of a form's input, placed next to the field it is about when one is named.
pub struct FieldError {
    /// The form field's name; `""` for the form as a whole.
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    /// Places `message` (from `manage`) by the first of `rules` (a phrase, the field it is
    /// about) that it contains.
    pub fn place(message: &str, rules: &[(&str, &'static str)]) -> Self {
        let lower = message.to_lowercase();
        let field = rules.iter().find(|(phrase, _)| lower.contains(phrase)).map_or("", |(_, field)| field);
        Self { field, message: sentence(message) }
    }

    pub fn is_for(&self, field: &str) -> bool {
        self.field == field
    }
}

/// A form read as two parts that ignore each other's fields: a page's own fields and a
/// group several pages share (the key fields of `web::key_form`).
pub struct PageForms<A, B>(pub A, pub B);

type FormFuture<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// Reads a form's body (within the limit), checks its CSRF token, and parses it with `parse`.
fn extract<T: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    parse: impl FnOnce(&[u8]) -> Result<T, FormRefusal> + 'static,
) -> FormFuture<T> {
    let req = req.clone();
    let payload = web::Payload::from_request(&req, payload);
    Box::pin(async move {
        let state = req.app_data::<web::Data<AppState>>().cloned().ok_or(FormRefusal::Unreadable)?;
        let body = match payload.await?.to_bytes_limited(LIMIT).await {
            Ok(Ok(body)) => body,
            _ => return Err(FormRefusal::Unreadable.into()),
        };
        let token: Token = serde_html_form::from_bytes(&body).map_err(|_| FormRefusal::Unreadable)?;
        if !csrf::verify(&req, &state, &token.csrf_token) {
            return Err(FormRefusal::Expired.into());
        }
        Ok(parse(&body)?)
    })
}

fn fields<T: DeserializeOwned>(body: &[u8]) -> Result<T, FormRefusal> {
    serde_html_form::from_bytes(body).map_err(|_| FormRefusal::Unreadable)
}

impl<T: DeserializeOwned + 'static> FromRequest for PageForm<T> {
    type Error = actix_web::Error;
    type Future = FormFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |body| Ok(PageForm(fields(body)?)))
    }
}

impl<A: DeserializeOwned + 'static, B: DeserializeOwned + 'static> FromRequest for PageForms<A, B> {
    type Error = actix_web::Error;
    type Future = FormFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        extract(req, payload, |body| Ok(PageForms(fields(body)?, fields(body)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_goes_next_to_the_field_it_names() {
        let rules = [("redirect uri", "redirect_uris"), ("name", "name")];
        let placed = FieldError::place("redirect URI: `x` is not absolute", &rules);
        assert!(placed.is_for("redirect_uris") && placed.message.starts_with("Redirect URI"));
        assert!(FieldError::place("the client name is empty", &rules).is_for("name"));
        assert!(FieldError::place("something else", &rules).is_for(""));
    }

    #[test]
    fn refusals_read_as_sentences() {
        assert_eq!(sentence("the key name is empty"), "The key name is empty.");
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), "");
    }
}
