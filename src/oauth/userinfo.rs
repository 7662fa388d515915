//! The UserInfo endpoint (OpenID Connect Core §5.3): the signed-in user's claims, as far
//! as the access token's scopes allow. Bearer errors follow RFC 6750 §3.
//!
//! Only a token meant for Latchkey itself is taken here (RFC 9068 §4: `aud` names this
//! resource), signed with one of Latchkey's own keys. A token for an API is refused even
//! when Latchkey issued it: the API, which received it, must not be able to replay it here
//! for the user's personal data (RFC 9700 §4.10).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::access_tokens::{AccessTokenStatus, Signer, inspect_access_token};
use crate::db::users::{User, find_user};
use crate::domain::Scopes;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Serialize)]
struct UserInfo<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

/// RFC 6750 §3.1: the status and the `WWW-Authenticate` challenge say what went wrong.
pub(super) fn bearer_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    let challenge = format!(r#"Bearer realm="latchkey", error="{error}", error_description="{description}""#);
    let mut response = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.insert_header((header::WWW_AUTHENTICATE, value));
    }
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(serde_json::json!({ "error": error, "error_description": description }))
}

pub(super) fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

pub async fn get_userinfo(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Some(token) = bearer_token(&req) else {
        // RFC 6750 §3.1: no credentials, no error code.
        return Ok(HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="latchkey""#)))
            .finish());
    };
    let AccessTokenStatus::Active(claims, signer) = inspect_access_token(&state, token).await? else {
        return Ok(bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is invalid, expired or revoked",
        ));
    };
    if signer != Signer::Latchkey || claims.aud != state.issuer.as_str() {
        return Ok(bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is for another audience; ask for identity scopes alone to call userinfo",
        ));
    }
    let scope = Scopes::parse(claims.scope.as_deref().unwrap_or_default()).unwrap_or_default();
    if !scope.contains("openid") {
        return Ok(bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the access token lacks the openid scope",
        ));
    }
    let subject = claims.sub.clone();
    let user = crate::db::run(&state.pool, move |conn| Ok(find_user(conn, &subject)?)).await?;
    let Some(user) = user.filter(User::is_active) else {
        return Ok(bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", "the access token's user is not active"));
    };
    let info = UserInfo {
        sub: &user.id,
        email: scope.contains("email").then_some(user.email.as_str()),
        name: if scope.contains("profile") { user.name.as_deref() } else { None },
    };
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))).json(info))
}
