//! The management API under `/api/v1/` (INTERFACE §5): JSON, authenticated by API keys,
//! errors as `{"error","message","request_id"}`. Handlers are thin: they parse, hand the
//! caller and the input to a `manage` function off the async workers, and shape the reply.
//!
//! Floor: http (docs/architecture.md); above `manage` and `apikeys`; nothing but `startup` names it.

pub mod auth;
pub mod current;
pub mod discovery;
pub mod error;
pub mod openapi;
pub mod resources;

use std::future::Future;
use std::pin::Pin;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::audit::Origin;
use crate::db::DbConnection;
use crate::error::AppError;
use crate::http::{only, routes};
use crate::manage::{Caller, read_as, run_as};
use crate::principal::Principal;
use crate::ratelimit::Decision;
use crate::state::AppState;
use error::ApiError;

/// Runs `f` for the authenticated caller on the blocking pool ([`crate::manage::run_as`]),
/// its changes audited with this request's address and id.
pub(crate) async fn call<T: Send + 'static>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    auth: Principal,
    f: impl FnOnce(&mut DbConnection, &Caller<'_>, &AppState) -> Result<T, AppError> + Send + 'static,
) -> Result<T, ApiError> {
    run_as(state, auth, Origin::of(req), f).await.map_err(ApiError::from)
}

/// As [`call`], answered from what the process keeps when `kept` holds it
/// ([`crate::manage::read_as`]): no trip to the blocking pool.
pub(crate) async fn read<T: Send + 'static>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    auth: Principal,
    kept: impl FnOnce(&Caller<'_>, &AppState) -> Option<Result<T, AppError>>,
    read: impl FnOnce(&mut DbConnection, &Caller<'_>, &AppState) -> Result<T, AppError> + Send + 'static,
) -> Result<T, ApiError> {
    read_as(state, auth, Origin::of(req), kept, read).await.map_err(ApiError::from)
}

/// Every response to an authenticated (or refused) caller says where it stands, and a 401
/// where to learn how to authenticate (RFC 9728 §5.1).
async fn rate_limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let decision = response.request().extensions().get::<Decision>().cloned();
    if let Some(decision) = decision {
        decision.write_headers(response.headers_mut());
    }
    let challenge = response.headers().get(header::WWW_AUTHENTICATE);
    let state = response.request().app_data::<web::Data<AppState>>();
    if let (Some(challenge), Some(state)) = (challenge, state) {
        let pointed = format!(
            r#"{}, resource_metadata="{}""#,
            challenge.to_str().unwrap_or(r#"Bearer realm="latchkey""#),
            discovery::resource_metadata_url(&state.issuer)
        );
        if let Ok(value) = header::HeaderValue::from_str(&pointed) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
    }
    Ok(response)
}

/// A JSON body, which must be an object. (serde reads a struct from an array too, by field
/// order, so `["Ada", null]` would otherwise pass for `{"name": "Ada", "role": null}`:
/// nothing the document describes, and nothing a client means.)
pub(crate) struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// The fields of an object, as the body's type reads them.
fn from_object<T: serde::de::DeserializeOwned>(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<T, actix_web::Error> {
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| input_error(format!("the request body is not valid: {e}")))
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let object = web::Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, payload);
        Box::pin(async move { from_object(object.await?.into_inner()).map(Self) })
    }
}

/// A JSON body that may be left out. No body, or `null`, means `None`; a body that does not
/// parse is refused like any other. (actix's `Option<Json<T>>` takes a bad body for an absent
/// one, so a typo such as `{"grace_period": 3600}` would silently mean "no grace period".)
pub(crate) struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let headers = req.headers();
        let declared_length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if declared_length == Some(0) || (declared_length.is_none() && !chunked) {
            return Box::pin(async { Ok(Self(None)) });
        }
        let object = web::Json::<Option<serde_json::Map<String, serde_json::Value>>>::from_request(req, payload);
        Box::pin(async move { object.await?.into_inner().map(from_object).transpose().map(Self) })
    }
}

/// Malformed JSON, paths and queries answer in the API's error format.
fn input_error(message: String) -> actix_web::Error {
    ApiError::invalid(message).into()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(only(discovery::RESOURCE_METADATA_PATH, Method::GET, web::get().to(discovery::get_resource_metadata)));
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::JsonConfig::default().limit(64 * 1024).error_handler(|e, _| match e {
                actix_web::error::JsonPayloadError::ContentType => {
                    input_error("the request body must be JSON, sent with `Content-Type: application/json`".into())
                }
                e => input_error(format!("the request body is not valid: {e}")),
            }))
            .app_data(
                web::QueryConfig::default().error_handler(|e, _| input_error(format!("the query is not valid: {e}"))),
            )
            .app_data(
                web::PathConfig::default().error_handler(|e, _| input_error(format!("the path is not valid: {e}"))),
            )
            .service(only("/openapi.json", Method::GET, web::get().to(openapi::get_openapi)))
            .service(routes(
                "/api-keys/current",
                vec![
                    (Method::GET, web::get().to(current::get_current_api_key)),
                    (Method::DELETE, web::delete().to(current::delete_current_api_key)),
                ],
            ))
            .service(only("/users/me", Method::GET, web::get().to(current::get_me)))
            .configure(resources::configure)
            .default_service(web::to(|_: Principal| async { Err::<actix_web::HttpResponse, _>(ApiError::not_found()) }))
            .wrap(from_fn(rate_limit_headers)),
    );
}
