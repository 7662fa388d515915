//! The verifier in an actix-web service (`features = ["verify", "actix"]`).
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, web};
//! use latchkey::verify::Verifier;
//! use latchkey::verify::actix::{Bearer, BearerError, ProtectedResource};
//!
//! async fn orders(token: Bearer) -> Result<HttpResponse, BearerError> {
//!     token.require_scope("read")?;
//!     Ok(HttpResponse::Ok().body(format!("orders of {}", token.subject)))
//! }
//!
//! # async fn run(verifier: Verifier) {
//! let resource = ProtectedResource::new(verifier, "https://api.example.com", &["read", "write"]);
//! let app = App::new().configure(|cfg| resource.configure(cfg)).route("/orders", web::get().to(orders));
//! # }
//! ```
//!
//! Refusals follow RFC 6750 §3: 401 with `WWW-Authenticate: Bearer error="invalid_token"`
//! (no error code when no token was sent), 403 with `error="insufficient_scope"`, and RFC
//! 9470's 401 `error="insufficient_user_authentication"` with `acr_values` or `max_age`. The
//! challenge points at the resource's metadata (RFC 9728), which `configure` serves at
//! `/.well-known/oauth-protected-resource`, so clients find the authorization server.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use super::{AccessToken, Verifier};

/// RFC 9728 §3: where the metadata lives, relative to the resource's origin.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// A protected resource: its verifier, identifier and scopes, shared with every request.
#[derive(Clone)]
pub struct ProtectedResource {
    verifier: Verifier,
    resource: String,
    scopes: Vec<String>,
}

impl ProtectedResource {
    /// `resource` is the API's identifier (its audience, RFC 8707), an https URL.
    pub fn new(verifier: Verifier, resource: &str, scopes: &[&str]) -> Self {
        Self { verifier, resource: resource.to_owned(), scopes: scopes.iter().map(|s| (*s).to_owned()).collect() }
    }

    fn metadata_url(&self) -> String {
        format!("{}{METADATA_PATH}", self.resource.trim_end_matches('/'))
    }

    /// Makes the resource available to `Bearer`, and serves its RFC 9728 metadata.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let metadata = serde_json::json!({
            "resource": self.resource,
            "authorization_servers": [self.verifier.issuer()],
            "scopes_supported": self.scopes,
            "bearer_methods_supported": ["header"],
        });
        cfg.app_data(web::Data::new(self.clone())).route(
            METADATA_PATH,
            web::get().to(move || {
                let metadata = metadata.clone();
                async move { HttpResponse::Ok().json(metadata) }
            }),
        );
    }
}

/// A request's verified bearer token.
#[derive(Debug, Clone)]
pub struct Bearer {
    token: AccessToken,
    metadata_url: String,
}

impl Deref for Bearer {
    type Target = AccessToken;

    fn deref(&self) -> &AccessToken {
        &self.token
    }
}

impl Bearer {
    /// 403 `insufficient_scope` unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), BearerError> {
        if self.token.has_scope(scope) {
            return Ok(());
        }
        Err(BearerError {
            status: StatusCode::FORBIDDEN,
            error: Some("insufficient_scope"),
            description: format!("the token lacks the {scope} scope"),
            scope: Some(scope.to_owned()),
            metadata_url: Some(self.metadata_url.clone()),
            step_up: None,
        })
    }

    /// RFC 9470 step-up: 401 `insufficient_user_authentication` unless the person signed in
    /// with one of `acr_values` (say `urn:latchkey:acr:mfa`). The challenge repeats them, and
    /// the client's next authorization request with those `acr_values` makes the person add
    /// the missing factor. A token with no person behind it (client credentials) never
    /// meets this.
    pub fn require_acr(&self, acr_values: &[&str]) -> Result<(), BearerError> {
        if self.token.acr.as_deref().is_some_and(|acr| acr_values.contains(&acr)) {
            return Ok(());
        }
        let mut refusal = self.insufficient_authentication("the sign-in behind this token is not strong enough");
        refusal.step_up = Some(format!(r#"acr_values="{}""#, acr_values.join(" ")));
        Err(refusal)
    }

    /// RFC 9470 step-up: 401 `insufficient_user_authentication` unless the person signed in
    /// at most `seconds` ago. The challenge carries `max_age`, for the client to send on.
    pub fn max_age(&self, seconds: u64) -> Result<(), BearerError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX));
        let limit = i64::try_from(seconds).unwrap_or(i64::MAX);
        if self.token.auth_time.is_some_and(|at| now.saturating_sub(at) <= limit) {
            return Ok(());
        }
        let mut refusal = self.insufficient_authentication("the sign-in behind this token is too old");
        refusal.step_up = Some(format!("max_age={seconds}"));
        Err(refusal)
    }

    fn insufficient_authentication(&self, description: &str) -> BearerError {
        BearerError::unauthorized(
            Some("insufficient_user_authentication"),
            description,
            Some(self.metadata_url.clone()),
        )
    }
}

/// An RFC 6750 refusal.
#[derive(Debug, thiserror::Error)]
#[error("{description}")]
pub struct BearerError {
    status: StatusCode,
    error: Option<&'static str>,
    description: String,
    scope: Option<String>,
    metadata_url: Option<String>,
    /// RFC 9470 §3: what would be enough (`acr_values="…"` or `max_age=…`).
    step_up: Option<String>,
}

impl BearerError {
    fn unauthorized(error: Option<&'static str>, description: impl Into<String>, metadata_url: Option<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error,
            description: description.into(),
            scope: None,
            metadata_url,
            step_up: None,
        }
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut challenge = String::from("Bearer");
        let mut params = Vec::new();
        if let Some(url) = &self.metadata_url {
            params.push(format!(r#"resource_metadata="{url}""#));
        }
        if let Some(error) = self.error {
            params.push(format!(r#"error="{error}""#));
            params.push(format!(r#"error_description="{}""#, self.description.replace('"', "'")));
        }
        if let Some(scope) = &self.scope {
            params.push(format!(r#"scope="{scope}""#));
        }
        if let Some(step_up) = &self.step_up {
            params.push(step_up.clone());
        }
        if !params.is_empty() {
            challenge = format!("{challenge} {}", params.join(", "));
        }
        let mut response = HttpResponse::build(self.status);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        match self.error {
            Some(error) => response.json(serde_json::json!({ "error": error, "error_description": self.description })),
            None => response.finish(),
        }
    }
}

impl FromRequest for Bearer {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let resource = req.app_data::<web::Data<ProtectedResource>>().cloned();
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned())
            .filter(|token| !token.is_empty());
        Box::pin(async move {
            let Some(resource) = resource else {
                return Err(BearerError::unauthorized(
                    Some("invalid_token"),
                    "this service has no verifier configured (ProtectedResource::configure)",
                    None,
                ));
            };
            let metadata_url = resource.metadata_url();
            // RFC 6750 §3.1: a request without credentials gets the challenge, no error code.
            let Some(token) = presented else {
                return Err(BearerError::unauthorized(None, "a bearer token is required", Some(metadata_url)));
            };
            match resource.verifier.verify(&token).await {
                Ok(token) => Ok(Bearer { token, metadata_url }),
                Err(e) => Err(BearerError::unauthorized(Some("invalid_token"), e.to_string(), Some(metadata_url))),
            }
        })
    }
}
