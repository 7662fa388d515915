//! Who is calling, and with what: `GET /api/v1/api-keys/current`, `GET /api/v1/users/me`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::error::{ApiError, ApiErrorCode};
use crate::access::Reach;
use crate::apikeys::authenticate::ApiKeyAuth;
use crate::db::api_keys::find_service_account;
use crate::db::users::{User, find_user};
use crate::domain::ApiKeyKind;
use crate::error::ErrorBody;
use crate::manage::api_keys::ApiKeyView;
use crate::principal::{Principal, TokenHolder, TokenPrincipal};
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/api-keys/current", tag = "api-keys", summary = "The presented key: its kind and what it may do",
    responses((status = 200, body = ApiKeyView), (status = 400, description = "the request carried an access token, not a key", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired credential", body = ErrorBody)))]
pub async fn get_current_api_key(auth: Principal) -> Result<HttpResponse, ApiError> {
    match auth {
        Principal::Key(auth) => Ok(HttpResponse::Ok().json(ApiKeyView::presented(&auth))),
        Principal::Token(_) => Err(ApiError::new(
            ApiErrorCode::InvalidRequest,
            "this request carries an access token, not an API key: GET /api/v1/users/me says whom it acts for",
        )),
    }
}

/// Any key may give itself up, whatever it may otherwise do: whoever holds it could use it
/// anyway, and a tool signing out (`latchkey logout`) should not need `api_keys:delete`.
#[utoipa::path(delete, path = "/api/v1/api-keys/current", tag = "api-keys", summary = "Revoke the presented key: it stops working at once",
    responses((status = 204, description = "revoked"),
        (status = 400, description = "the request carried an access token, not a key", body = ErrorBody),
        (status = 401, description = "missing, invalid or expired credential", body = ErrorBody),
        (status = 409, description = "the tenant's last owner credential cannot give itself up", body = ErrorBody)))]
pub async fn delete_current_api_key(
    auth: Principal,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Principal::Key(key) = auth else {
        return Err(ApiError::new(
            ApiErrorCode::InvalidRequest,
            "this request carries an access token, not an API key: revoke a token at the revocation endpoint",
        ));
    };
    let id = key.key.id.clone();
    let state = state.into_inner();
    crate::manage::run_as(&state, Principal::Key(key), crate::audit::Origin::of(&req), move |conn, caller, _| {
        crate::manage::api_keys::give_up_key(conn, caller, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller: the user a personal key or a user's token acts as, the service account a
/// service key acts as, the client a client's own token acts as, or else the key itself.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", summary = "Who the caller is: a user, a service account, a client, or the key",
    responses((status = 200, description = "`type` is `user`, `service_account`, `client` or `api_key`", body = Object),
        (status = 401, description = "missing, invalid or expired credential", body = ErrorBody)))]
pub async fn get_me(auth: Principal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match auth {
        Principal::Key(auth) => key_holder(auth, state).await,
        Principal::Token(token) => token_holder(token, state).await,
    }
}

fn user_json(user: &User, reach: &Reach) -> serde_json::Value {
    json!({
        "type": "user",
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "status": user.status,
        "role": user.role,
        "teams": reach.teams.iter().map(|(team, role)| json!({ "team_id": team, "role": role.as_str() })).collect::<Vec<_>>(),
    })
}

async fn key_holder(auth: ApiKeyAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let personal_user = auth.key.user_id.clone().filter(|_| auth.key.key_kind() == Some(ApiKeyKind::Personal));
    let account = auth.key.service_account_id.clone().filter(|_| auth.key.key_kind() == Some(ApiKeyKind::Service));
    let (user, account) = crate::db::run(&state.pool, move |conn| {
        let user = personal_user.map(|id| find_user(conn, &id)).transpose()?.flatten();
        let account = account
            .map(|id| find_service_account(conn, &id).map(|found| found.map(|a| (id, a))))
            .transpose()?
            .flatten();
        Ok((user, account))
    })
    .await?;
    if let Some(user) = user {
        return Ok(HttpResponse::Ok().json(user_json(&user, &auth.reach)));
    }
    if let Some((id, (name, _))) = account {
        return Ok(HttpResponse::Ok().json(json!({
            "type": "service_account",
            "id": id,
            "name": name,
            "permissions": auth.reach.tenant.names(),
        })));
    }
    Ok(HttpResponse::Ok().json(json!({
        "type": "api_key",
        "id": auth.key.id,
        "kind": auth.key.kind,
        "name": auth.key.name,
    })))
}

/// A token's holder, with the client that holds it and the scopes it carries.
async fn token_holder(token: TokenPrincipal, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = json!({ "client_id": token.claims.client_id, "name": token.client_name });
    let scope = token.claims.scope.clone().unwrap_or_default();
    let TokenHolder::User(user_id) = &token.holder else {
        return Ok(HttpResponse::Ok().json(json!({
            "type": "client",
            "id": token.claims.client_id,
            "name": token.client_name,
            "permissions": token.reach.tenant.names(),
            "scope": scope,
        })));
    };
    let lookup = user_id.clone();
    let user = crate::db::run(&state.pool, move |conn| Ok(find_user(conn, &lookup)?)).await?;
    let Some(user) = user else {
        return Err(ApiError::not_found());
    };
    let mut body = user_json(&user, &token.reach);
    body["through_client"] = client;
    body["scope"] = json!(scope);
    Ok(HttpResponse::Ok().json(body))
}
