//! Asking Latchkey about a token (RFC 7662), for what offline verification cannot tell: an
//! API key (opaque), or whether a JWT was revoked before it expired. Answers are cached for
//! a short time (10 s unless set), so a hot path asks once per token per period.
//!
//! Latchkey answers for every token it issued, whoever it was for, so the answer is checked
//! here as [`Verifier`](super::Verifier) checks a JWT: an access token counts only if its
//! `aud` is this service's audience, an API key only if the service accepts API keys, and a
//! refresh token (a credential for the token endpoint, never for a service) never.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::VerifyError;

/// Latchkey's answer about one token, as far as this service may take it.
#[derive(Debug, Clone, Deserialize)]
pub struct Introspection {
    /// Whether the token is live *and* meant for this service; see [`Introspector`].
    pub active: bool,
    /// `Bearer` (an access token), `refresh_token` or `api_key`.
    pub token_type: Option<String>,
    /// Whom an access token is for: one audience, or several (RFC 7662 §2.2).
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
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

    fn is_access_token(&self) -> bool {
        self.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("bearer") || t == "access_token")
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

/// Bounds the memory a flood of distinct tokens can take.
const MAX_CACHED: usize = 10_000;

/// Introspects with a confidential client's credentials, for one service (its audience).
pub struct Introspector {
    http: reqwest::Client,
    endpoint: String,
    client_id: String,
    client_secret: String,
    audience: String,
    accepts_api_keys: bool,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Introspection)>>,
}

impl Introspector {
    /// Finds the introspection endpoint in the issuer's metadata (RFC 8414). Access tokens
    /// count only if they are for `audience`; API keys count only after
    /// [`accept_api_keys`](Self::accept_api_keys).
    pub async fn discover(
        issuer: &str,
        audience: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, VerifyError> {
        let (http, metadata) = super::discover_metadata(issuer).await?;
        let endpoint = metadata
            .introspection_endpoint
            .ok_or_else(|| VerifyError::Discovery(format!("{issuer} publishes no introspection endpoint")))?;
        Ok(Self {
            http,
            endpoint,
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            audience: audience.to_owned(),
            accepts_api_keys: false,
            ttl: Duration::from_secs(10),
            cache: Mutex::default(),
        })
    }

    /// Takes API keys too (Latchkey's, for its management API or a service that accepts them
    /// in place of tokens); otherwise an API key is answered as inactive.
    pub fn accept_api_keys(mut self) -> Self {
        self.accepts_api_keys = true;
        self
    }

    /// Whether this service may take what Latchkey said about a token.
    fn meant_for_us(&self, answer: &Introspection) -> bool {
        if answer.is_access_token() {
            answer.aud.contains(&self.audience)
        } else {
            answer.token_type.as_deref() == Some("api_key") && self.accepts_api_keys
        }
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
        let mut answer: Introspection = self
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
        if answer.active && !self.meant_for_us(&answer) {
            answer = Introspection { active: false, ..answer };
        }
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
