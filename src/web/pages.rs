//! Rendering pages with the headers every page carries.

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

use crate::domain::RedirectUri;
use crate::error::AppError;

/// No script, no framing, forms post only back to us.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../../static/style.css");
const COPY_SCRIPT: &str = include_str!("../../static/copy.js");
const PASSKEY_SCRIPT: &str = include_str!("../../static/passkey.js");

/// The policy for a page that runs our own static script (the copy button), and still no
/// inline script.
pub fn policy_with_script() -> String {
    CONTENT_SECURITY_POLICY.replace("default-src 'none';", "default-src 'none'; script-src 'self';")
}

/// The policy for a page that runs our passkey script: our own script, which may call back
/// to us (`connect-src 'self'`, for a sign-in challenge) and nowhere else.
const PASSKEY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A form page that offers passkeys: as [`form_page`], with the script allowed.
pub fn passkey_page(
    status: StatusCode,
    csrf_cookie: Option<Cookie<'static>>,
    template: &impl Template,
) -> Result<HttpResponse, AppError> {
    let mut response = form_page(status, csrf_cookie, template)?;
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PASSKEY_POLICY));
    Ok(response)
}

/// A builder with the page headers set: no caching (pages show who is signed in), no
/// framing (clickjacking, RFC 9700 §4.16), a strict CSP.
pub fn page_response(status: StatusCode) -> HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)));
    response
}

/// A page with a form: rendered, with the CSRF cookie attached when the browser had none.
pub fn form_page(
    status: StatusCode,
    csrf_cookie: Option<Cookie<'static>>,
    template: &impl Template,
) -> Result<HttpResponse, AppError> {
    let body = render(template)?;
    let mut response = page_response(status);
    if let Some(cookie) = csrf_cookie {
        response.cookie(cookie);
    }
    Ok(response.body(body))
}

/// A form page whose submission ends in a redirect to `redirect_uri` (consent, logout):
/// Chrome applies `form-action` to the redirect after a form post, so the CSP must allow
/// that destination's origin (or scheme, for a native app's private-use URI) too.
pub fn form_page_leading_to(
    csrf_cookie: Option<Cookie<'static>>,
    template: &impl Template,
    redirect_uri: &RedirectUri,
) -> Result<HttpResponse, AppError> {
    let destination = match url::Url::parse(redirect_uri.as_str()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        // A RedirectUri's other schemes are reverse-domain private-use ones: never
        // `javascript:` or `data:`, which would open the policy to script.
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => String::new(),
    };
    let mut response = form_page(StatusCode::OK, csrf_cookie, template)?;
    let policy = CONTENT_SECURITY_POLICY.replace("form-action 'self'", &format!("form-action 'self' {destination}"));
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
    Ok(response)
}

/// `303 See Other` to `location`: after a form, so a browser never posts it again
/// (RFC 9700 §4.12).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// The sign-in page's address, leading back to `here` (a path on this server) afterwards.
pub fn sign_in_then(here: &str) -> String {
    let return_to = percent_encoding::utf8_percent_encode(here, percent_encoding::NON_ALPHANUMERIC);
    format!("/login?return_to={return_to}")
}

/// Renders `template`; a template that fails to render is our bug, logged and shown as 500.
pub fn render(template: &impl Template) -> Result<String, AppError> {
    template.render().map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("a page failed to render")))
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// An error page; it never redirects anywhere.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    match render(&ErrorPage { title, message }) {
        Ok(body) => page_response(status).body(body),
        Err(error) => {
            error.log();
            page_response(StatusCode::INTERNAL_SERVER_ERROR).body("Something went wrong.")
        }
    }
}

/// `text` as an SVG QR code (error correction M, quiet zone kept), drawn on the server: no
/// image crates, no script.
pub fn qr_svg(text: &str) -> Result<String, AppError> {
    let qr = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).map_err(|error| {
        AppError::Unexpected(anyhow::anyhow!("could not draw a QR code of {} bytes: {error}", text.len()))
    })?;
    Ok(qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

/// Password checks are at capacity (`passwords::Busy`): come back in a second.
pub fn busy_page(busy: crate::passwords::Busy) -> HttpResponse {
    let mut response = error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again", &format!("{busy}."));
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(crate::error::BUSY_RETRY_AFTER_SECS));
    response
}

fn script(body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")))
        .body(body)
}

/// Progressive enhancement only: every page works without it.
pub async fn get_copy_script() -> HttpResponse {
    script(COPY_SCRIPT)
}

/// WebAuthn is a script API: without script, a page offers passwords and codes only.
pub async fn get_passkey_script() -> HttpResponse {
    script(PASSKEY_SCRIPT)
}

pub async fn get_stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")))
        .body(STYLESHEET)
}
