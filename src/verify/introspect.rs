//! Asking Latchkey about a token (RFC 7662), for what offline verification cannot tell: an
//! API key (opaque), or whether a JWT was revoked before it expired. Answers are cached for
//! a short time (10 s unless set), so a hot path asks once per token per period.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::VerifyError;

/// Latchkey's answer about one token.
#[derive(Debug, Clone, Deserialize)]
pub struct Introspection {
    pub active: bool,
    /// `access_token`, `refresh_token` or `api_key`.
    pub token_type: Option<String>,
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// For an API key: `personal`, `service`, `team`, `tenant_owner` or `restricted`.
    pub kind: Option<String>,
    pub exp: Option<i64>,
}

impl Introspection {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.active && self.scope.as_deref().unwrap_or_default().split(' ').any(|s| s == scope)
    }
}

/// Bounds the memory a flood of distinct tokens can take.
const MAX_CACHED: usize = 10_000;

/// Introspects with a confidential client's credentials.
pub struct Introspector {
    http: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Introspection)>>,
}

impl Introspector {
    /// Finds the introspection endpoint in the issuer's metadata (RFC 8414).
    pub async fn discover(issuer: &str, client_id: &str, client_secret: &str) -> Result<Self, VerifyError> {
        let (http, metadata) = super::discover_metadata(issuer).await?;
        let endpoint = metadata
            .introspection_endpoint
            .ok_or_else(|| VerifyError::Discovery(format!("{issuer} publishes no introspection endpoint")))?;
        Ok(Self {
            http,
            endpoint,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            ttl: Duration::from_secs(10),
            cache: Mutex::default(),
        })
    }

    /// How long an answer is reused; zero asks every time.
    pub fn cache_for(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub async fn introspect(&self, token: &str) -> Result<Introspection, VerifyError> {
        if let Some((at, answer)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(token)
            && at.elapsed() < self.ttl
        {
            return Ok(answer.clone());
        }
        let failed = |e: reqwest::Error| VerifyError::Discovery(format!("{}: {e}", self.endpoint));
        let answer: Introspection = self
            .http
            .post(&self.endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)?;
        if !self.ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED {
                let ttl = self.ttl;
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(token.to_owned(), (Instant::now(), answer.clone()));
        }
        Ok(answer)
    }
}
