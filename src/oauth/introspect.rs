//! Token introspection (RFC 7662). The caller authenticates as a confidential client;
//! any token it presents is answered, inactive ones with `{"active": false}` alone.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::access_tokens::{AccessTokenStatus, inspect_access_token};
use super::client_auth::{authenticate_client, presented_client};
use super::error::OAuthError;
use super::params::OAuthParams;
use super::refresh::find_usable;
use crate::apikeys::authenticate::authenticate_key;
use crate::db::utc;
use crate::domain::{ApiKeyKind, Authentication};
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::AccessTokenClaims;

/// An active access token: its claims, flattened beside `active` (RFC 7662 §2.2).
#[derive(Serialize)]
struct ActiveAccessToken<'a> {
    active: bool,
    #[serde(flatten)]
    claims: &'a AccessTokenClaims,
    token_type: &'static str,
}

/// An API key is active when it would authenticate now (same checks, same audit); it is
/// reported with its kind, owner and permissions.
async fn introspect_api_key(state: &AppState, req: &HttpRequest, token: &str) -> serde_json::Value {
    if crate::apikeys::parse(token).is_err() {
        return inactive();
    }
    match authenticate_key(req, state, token.to_owned()).await {
        Ok(auth) => {
            let view = crate::manage::api_keys::ApiKeyView::presented(&auth);
            let key = auth.key;
            // The owner: the user a personal key acts as, the service account, or the team.
            let mut answer = serde_json::json!({
                "active": true,
                "token_type": "api_key",
                "kind": view.kind,
                "sub": key.user_id.clone().filter(|_| key.key_kind() == Some(ApiKeyKind::Personal)).unwrap_or_else(|| key.id.clone()),
                "scope": view.permissions.join(" "),
                "iss": state.issuer.as_str(),
                "iat": view.created_at.timestamp(),
                "exp": view.expires_at.map(|at| at.timestamp()),
            });
            let owner = [
                ("user_id", view.user_id.filter(|_| key.key_kind() == Some(ApiKeyKind::Personal))),
                ("service_account_id", view.service_account_id),
                ("team_id", view.team_id),
                ("team_role", view.team_role),
            ];
            for (field, value) in owner {
                if let Some(value) = value {
                    answer[field] = serde_json::Value::from(value);
                }
            }
            answer
        }
        Err(_) => inactive(),
    }
}

fn inactive() -> serde_json::Value {
    serde_json::json!({ "active": false })
}

#[tracing::instrument(name = "introspect", skip_all)]
pub async fn post_introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<crate::state::AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params = OAuthParams::from_request(&req, payload).await?;
    let presented = presented_client(&req, &params)?;
    let client = authenticate_client(&state, &req, presented).await?;
    if client.is_public() {
        // Public clients hold no credentials, so anyone could pose as one.
        return Err(OAuthError::invalid_client("introspection requires a confidential client"));
    }
    let token = params.required("token")?;
    // `token_type_hint` only speeds up a search; every kind is tried regardless.
    let body = match inspect_access_token(&state, token).await? {
        // The common answer, written straight from the claims rather than through a `Value`.
        AccessTokenStatus::Active(claims, _) => {
            serde_json::to_vec(&ActiveAccessToken { active: true, claims: &claims, token_type: "Bearer" })
        }
        AccessTokenStatus::Revoked(_) => serde_json::to_vec(&inactive()),
        AccessTokenStatus::Unknown => {
            let (hasher, lookup) = (state.hasher.clone(), token.to_owned());
            let refresh = crate::db::run(&state.pool, move |conn| Ok(find_usable(conn, &hasher, &lookup)?)).await?;
            match refresh {
                Some(refresh) => {
                    let authentication =
                        refresh.auth_time.map(|at| Authentication::from_stored(refresh.amr.as_deref(), at));
                    let mut body = serde_json::json!({
                    "active": true,
                    "scope": refresh.scope,
                    "client_id": refresh.client_id,
                    "sub": refresh.user_id,
                    "aud": refresh.audience,
                    "iss": state.issuer.as_str(),
                    "iat": utc(refresh.created_at).timestamp(),
                    "exp": utc(refresh.expires_at).timestamp(),
                    "token_type": "refresh_token",
                    });
                    // The sign-in the family came from, as its access tokens report it.
                    if let (Some(authentication), Some(fields)) = (authentication, body.as_object_mut()) {
                        fields.insert("auth_time".into(), authentication.auth_time().into());
                        fields.insert("acr".into(), authentication.methods.acr().into());
                        fields.insert("amr".into(), authentication.methods.amr().into());
                    }
                    serde_json::to_vec(&body)
                }
                None => serde_json::to_vec(&introspect_api_key(&state, &req, token).await),
            }
        }
    }
    .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header(header::ContentType::json())
        .body(body))
}
