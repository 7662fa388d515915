//! Registering resource servers ("APIs").

use std::str::FromStr;

use serde::Serialize;

use super::audit::{self, Actor, AuditEntry, Outcome};
use crate::crypto::{Sealer, random_token};
use crate::db::DbConnection;
use crate::db::apis::{Api, NewApi, find_api_by_audience, insert_api};
use crate::domain::{ResourceUri, Scopes};
use crate::error::AppError;
use crate::tokens::SigningAlgorithm;

/// How an API's access tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiSigning {
    /// With the tenant's published key of this algorithm (verifiable from the JWKS).
    Published(SigningAlgorithm),
    /// HS256 with a secret shared with this API alone.
    SharedSecret,
}

impl ApiSigning {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published(alg) => alg.as_str(),
            Self::SharedSecret => "HS256",
        }
    }
}

impl FromStr for ApiSigning {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value == "HS256" {
            return Ok(Self::SharedSecret);
        }
        value
            .parse()
            .map(Self::Published)
            .map_err(|_| format!("unknown signing algorithm `{value}` (expected RS256, ES256, EdDSA or HS256)"))
    }
}

impl Api {
    pub fn signing(&self) -> ApiSigning {
        self.signing_alg.parse().unwrap_or(ApiSigning::Published(SigningAlgorithm::RS256))
    }
}

#[derive(Debug, Clone)]
pub struct ApiRegistration {
    pub name: Option<String>,
    pub audience: String,
    pub scopes: Vec<String>,
    pub signing: ApiSigning,
    pub token_lifetime_secs: Option<i64>,
}

#[derive(Serialize)]
pub struct RegisteredApi {
    pub id: String,
    pub name: String,
    pub audience: String,
    pub scope: String,
    pub signing_alg: String,
    pub token_lifetime_secs: i64,
    /// The HS256 shared secret, shown once; its UTF-8 bytes are the HMAC key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for RegisteredApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredApi")
            .field("id", &self.id)
            .field("audience", &self.audience)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish_non_exhaustive()
    }
}

pub fn register_api(
    conn: &mut DbConnection,
    sealer: &Sealer,
    registration: ApiRegistration,
    default_ttl_secs: i64,
) -> Result<RegisteredApi, AppError> {
    let bad = |message: String| AppError::BadRequest(message);
    let audience = ResourceUri::parse(&registration.audience).map_err(|e| bad(e.to_string()))?;
    let scopes = Scopes::from_tokens(registration.scopes.iter().map(String::as_str)).map_err(|e| bad(e.to_string()))?;
    let lifetime = registration.token_lifetime_secs.unwrap_or(default_ttl_secs);
    if !(60..=86_400).contains(&lifetime) {
        return Err(bad("the token lifetime must be between 60 and 86400 seconds".into()));
    }
    let name = registration.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).unwrap_or(audience.as_str());
    if find_api_by_audience(conn, audience.as_str())?.is_some() {
        return Err(AppError::Conflict(format!("an API with the audience `{audience}` already exists")));
    }

    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    let secret = (registration.signing == ApiSigning::SharedSecret).then(random_token::<32>);
    let sealed = secret.as_deref().map(|s| sealer.seal(s.as_bytes(), &Api::seal_context(&id)));
    if let ApiSigning::Published(algorithm) = registration.signing {
        super::keys::ensure_active_key(conn, sealer, algorithm, now)?;
    }
    insert_api(
        conn,
        &NewApi {
            id: &id,
            tenant_id: crate::db::DEFAULT_TENANT_ID,
            name,
            audience: audience.as_str(),
            signing_alg: registration.signing.as_str(),
            secret_sealed: sealed.as_deref(),
            scopes: &scopes.to_string(),
            token_lifetime_secs: lifetime,
            created_at: now,
            updated_at: now,
        },
    )?;
    audit::record(
        conn,
        &AuditEntry::new(Actor::System, "api.created", Outcome::Success).target("api", &id).details(
            serde_json::json!({ "audience": audience.as_str(), "signing_alg": registration.signing.as_str() }),
        ),
    )?;
    Ok(RegisteredApi {
        id,
        name: name.to_owned(),
        audience: audience.to_string(),
        scope: scopes.to_string(),
        signing_alg: registration.signing.as_str().to_owned(),
        token_lifetime_secs: lifetime,
        secret,
        created_at: super::utc(now),
    })
}
