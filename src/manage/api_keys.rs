//! Creating API keys. The key exists in the clear only in the value returned here.

use std::fmt;

use serde::Serialize;

use super::audit::{self, Actor, AuditEntry, Outcome};
use crate::apikeys::{self, KeyClass};
use crate::config::Environment;
use crate::crypto::TokenHasher;
use crate::db::DbConnection;
use crate::db::api_keys::{NewApiKey, insert_api_key};
use crate::error::AppError;

/// The kinds of key (INTERFACE §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyKind {
    Personal,
    Service,
    Team,
    TenantOwner,
    Restricted,
}

impl ApiKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Service => "service",
            Self::Team => "team",
            Self::TenantOwner => "tenant_owner",
            Self::Restricted => "restricted",
        }
    }

    fn class(self) -> KeyClass {
        if self == Self::Restricted { KeyClass::Restricted } else { KeyClass::Secret }
    }
}

#[derive(Serialize)]
pub struct CreatedApiKey {
    pub id: String,
    pub key: String,
    pub kind: ApiKeyKind,
    pub name: String,
    pub environment: Environment,
    pub prefix: String,
    pub last_four: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey").field("id", &self.id).field("key", &"<hidden>").finish_non_exhaustive()
    }
}

/// The bootstrap key: full owner access to the tenant.
pub fn create_tenant_owner_key(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    environment: Environment,
    name: &str,
) -> Result<CreatedApiKey, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::BadRequest("the key name must be 1 to 200 characters".into()));
    }
    let kind = ApiKeyKind::TenantOwner;
    let key = apikeys::generate(kind.class(), environment);
    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    let (prefix, last_four) = (apikeys::display_prefix(&key), apikeys::last_four(&key));
    insert_api_key(
        conn,
        &NewApiKey {
            id: &id,
            tenant_id: crate::db::DEFAULT_TENANT_ID,
            kind: kind.as_str(),
            name,
            environment: environment.as_str(),
            key_hash: hasher.hash(&key).as_str(),
            display_prefix: &prefix,
            last_four: &last_four,
            user_id: None,
            created_by_user_id: None,
            permissions: "",
            expires_at: None,
            created_at: now,
        },
    )?;
    audit::record(
        conn,
        &AuditEntry::new(Actor::System, "api_key.created", Outcome::Success)
            .target("api_key", &id)
            .details(serde_json::json!({ "kind": kind.as_str(), "name": name })),
    )?;
    Ok(CreatedApiKey {
        id,
        key,
        kind,
        name: name.to_owned(),
        environment,
        prefix,
        last_four,
        created_at: super::utc(now),
    })
}
