//! Who is calling, and with what key: `GET /api/v1/api-keys/current`, `GET /api/v1/users/me`.

use actix_web::{HttpResponse, web};

use super::error::ApiError;
use crate::apikeys::authenticate::ApiKeyAuth;
use crate::db::api_keys::find_service_account;
use crate::db::users::find_user;
use crate::domain::ApiKeyKind;
use crate::error::ErrorBody;
use crate::manage::api_keys::ApiKeyView;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/api-keys/current", tag = "api-keys", summary = "The presented key: its kind and what it may do",
    responses((status = 200, body = ApiKeyView), (status = 401, description = "missing, invalid or expired key", body = ErrorBody)))]
pub async fn get_current_api_key(auth: ApiKeyAuth) -> HttpResponse {
    HttpResponse::Ok().json(ApiKeyView::presented(&auth))
}

/// The caller: the user a personal key acts as, the service account a service key acts
/// as, or else the key itself.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", summary = "Who the caller is: the key's user, its service account, or the key",
    responses((status = 200, description = "`type` is `user`, `service_account` or `api_key`", body = Object), (status = 401, description = "missing, invalid or expired key", body = ErrorBody)))]
pub async fn get_me(auth: ApiKeyAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "type": "user",
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "status": user.status,
            "role": user.role,
            "teams": auth.reach.teams.iter().map(|(team, role)| serde_json::json!({ "team_id": team, "role": role.as_str() })).collect::<Vec<_>>(),
        })));
    }
    if let Some((id, (name, _))) = account {
        return Ok(HttpResponse::Ok().json(serde_json::json!({
            "type": "service_account",
            "id": id,
            "name": name,
            "permissions": auth.reach.tenant.names(),
        })));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "type": "api_key",
        "id": auth.key.id,
        "kind": auth.key.kind,
        "name": auth.key.name,
    })))
}
