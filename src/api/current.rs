//! Who is calling, and with what key: `GET /api/v1/api-keys/current`, `GET /api/v1/users/me`.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::error::ApiError;
use crate::apikeys::extractor::ApiKeyAuth;
use crate::db::users::find_user;
use crate::manage::utc;
use crate::startup::AppState;

/// A key as its holder may see it: never the key itself.
#[derive(Serialize)]
pub struct ApiKeyView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub environment: String,
    pub prefix: String,
    pub last_four: String,
    /// What the key may do; a tenant-owner key may do everything (`*`).
    pub permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&crate::db::api_keys::ApiKeyRow> for ApiKeyView {
    fn from(key: &crate::db::api_keys::ApiKeyRow) -> Self {
        let permissions = if key.kind == "tenant_owner" {
            vec!["*".to_owned()]
        } else {
            key.permissions.split(' ').filter(|p| !p.is_empty()).map(str::to_owned).collect()
        };
        Self {
            id: key.id.clone(),
            kind: key.kind.clone(),
            name: key.name.clone(),
            environment: key.environment.clone(),
            prefix: key.display_prefix.clone(),
            last_four: key.last_four.clone(),
            permissions,
            tier: key.tier.clone(),
            user_id: key.user_id.clone(),
            team_id: key.team_id.clone(),
            created_at: utc(key.created_at),
            expires_at: key.expires_at.map(utc),
            last_used_at: key.last_used_at.map(utc),
        }
    }
}

pub async fn get_current_api_key(auth: ApiKeyAuth) -> HttpResponse {
    HttpResponse::Ok().json(ApiKeyView::from(&auth.key))
}

/// The caller: the user a personal key acts as, or else the key itself.
pub async fn get_me(auth: ApiKeyAuth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(user_id) = auth.key.user_id.clone().filter(|_| auth.key.kind == "personal") {
        let user = crate::db::run(&state.pool, move |conn| Ok(find_user(conn, &user_id)?)).await?;
        if let Some(user) = user {
            return Ok(HttpResponse::Ok().json(serde_json::json!({
                "type": "user",
                "id": user.id,
                "email": user.email,
                "name": user.name,
                "status": user.status,
            })));
        }
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "type": "api_key",
        "id": auth.key.id,
        "kind": auth.key.kind,
        "name": auth.key.name,
    })))
}
