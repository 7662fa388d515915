//! Verifying Latchkey's access tokens offline, in the services that receive them
//! (`features = ["verify"]`, without the server's storage, pages or crypto at rest).
//!
//! ```no_run
//! # async fn run() -> Result<(), latchkey::verify::VerifyError> {
//! use latchkey::verify::Verifier;
//!
//! let verifier = Verifier::discover("https://id.example.com", "https://api.example.com").await?;
//! let token = verifier.verify("eyJ…").await?;
//! assert!(token.has_scope("read"));
//! # Ok(()) }
//! ```
//!
//! What is checked, whatever the token says of itself:
//! - the algorithm is the one the key is published for (never `none`, never HS256 keyed with
//!   a public key); a shared-secret verifier accepts HS256 with its secret only;
//! - `typ` is `at+jwt` (RFC 9068), so an id token cannot pass for an access token;
//! - `iss`, `aud`, `exp` and `nbf`, with a leeway (60 s unless set).
//!
//! Keys are cached for as long as the JWKS response's `Cache-Control: max-age` says (five
//! minutes if it says nothing, an hour at most). Once stale, the next token refreshes them: a
//! key the issuer no longer publishes stops verifying, while an unreachable issuer leaves the
//! known keys in use. A token signed with an unknown `kid` makes the verifier refetch the
//! JWKS, at most once per `min_refetch_interval` (30 s unless set), so a flood of forged kids
//! cannot hammer Latchkey.
//!
//! Floor: apart (docs/architecture.md); names nothing else of the crate, so services link it without the server.

#[cfg(feature = "actix")]
pub mod actix;
pub mod introspect;

pub use introspect::{Introspection, Introspector};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Why a token, or the verifier's set-up, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the authorization server's metadata or keys could not be fetched: {0}")]
    Discovery(String),
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is not an access token (typ must be at+jwt)")]
    NotAnAccessToken,
    #[error("the token's header marks extensions critical (crit), and none is understood here")]
    UnsupportedCritical,
    #[error("the token's signing key is not published by the issuer")]
    UnknownKey,
    #[error("the token's algorithm is not the one its key is for")]
    AlgorithmNotAllowed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token's claims are not valid: {0}")]
    InvalidClaims(String),
}

impl From<jsonwebtoken::errors::Error> for VerifyError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::InvalidAlgorithm => Self::AlgorithmNotAllowed,
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => Self::Malformed,
            other => Self::InvalidClaims(format!("{other:?}")),
        }
    }
}

/// The `acr` of a person's token signed in with a password alone.
pub const ACR_PASSWORD: &str = "urn:latchkey:acr:pwd";
/// The `acr` of a person's token signed in with two factors (a password and a code).
pub const ACR_MULTI_FACTOR: &str = "urn:latchkey:acr:mfa";

/// A verified access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The user, or for a machine token the client (or API key) it was issued to.
    pub subject: String,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub expires_at: i64,
    pub jti: Option<String>,
    /// For a person's token: how they signed in (`urn:latchkey:acr:pwd` for a password,
    /// `urn:latchkey:acr:mfa` for two factors) and when (Unix seconds).
    pub acr: Option<String>,
    pub auth_time: Option<i64>,
    /// Every claim, for what this type does not name.
    pub claims: serde_json::Value,
}

impl AccessToken {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    client_id: Option<String>,
    scope: Option<String>,
    jti: Option<String>,
    acr: Option<String>,
    auth_time: Option<i64>,
}

/// The keys a verifier trusts.
enum Keys {
    /// Published by the issuer, fetched from its JWKS.
    Published(Published),
    /// One HS256 secret shared with this API.
    Shared(Arc<DecodingKey>),
    /// A JWKS given once, never fetched (air-gapped services, benchmarks).
    Fixed(HashMap<String, (Algorithm, Arc<DecodingKey>)>),
}

struct Published {
    jwks_uri: String,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    /// When a stale cache last started a refresh: one at a time, not one per request.
    last_refresh: Mutex<Option<Instant>>,
    /// When an unknown kid last caused a fetch: the next waits `min_refetch_interval`.
    last_forced: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (Algorithm, Arc<DecodingKey>)>,
    fetched_at: Option<Instant>,
    fresh_until: Option<Instant>,
}

struct Inner {
    issuer: String,
    audience: String,
    keys: Keys,
}

/// The algorithms Latchkey signs access tokens with.
const ALGORITHMS: [Algorithm; 4] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA, Algorithm::HS256];

/// Verifies access tokens for one audience; cheap to clone and share.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
    leeway: u64,
    min_refetch_interval: Duration,
    /// Built once per algorithm: a `Validation` allocates its sets of issuers and audiences.
    validations: Arc<[(Algorithm, Validation)]>,
}

/// The public keys of a JWKS, by kid, each with the one algorithm it may verify.
fn usable_keys(set: &JwkSet) -> HashMap<String, (Algorithm, Arc<DecodingKey>)> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        // A key without `kid` or `alg` cannot be matched safely to a token: skip it.
        let (Some(kid), Some(alg)) = (&jwk.common.key_id, jwk.common.key_algorithm) else { continue };
        let Ok(algorithm) = alg.to_string().parse::<Algorithm>() else { continue };
        if matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid.clone(), (algorithm, Arc::new(key)));
        }
    }
    keys
}

/// Claims the right to fetch if the last claim is at least `interval` old.
fn claim(slot: &Mutex<Option<Instant>>, interval: Duration) -> bool {
    let mut last = slot.lock().unwrap_or_else(|p| p.into_inner());
    let due = last.is_none_or(|at| at.elapsed() >= interval);
    if due {
        *last = Some(Instant::now());
    }
    due
}

/// Between two refreshes of a stale cache, however many requests find it stale.
const STALE_REFRESH_SPACING: Duration = Duration::from_secs(1);

/// How long keys are trusted when the JWKS response says nothing.
const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(300);

/// The longest keys are trusted without asking again, whatever a cache header says: a key
/// the issuer withdraws stops verifying within this time at worst.
const MAX_KEY_LIFETIME: Duration = Duration::from_secs(3600);

/// What services need of the issuer's metadata (RFC 8414).
#[derive(Deserialize)]
struct ServerMetadata {
    issuer: String,
    jwks_uri: String,
    introspection_endpoint: Option<String>,
}

/// An HTTP client for talking to the issuer, and its metadata, whose `issuer` must be the
/// one it was fetched for (RFC 8414 §3.3).
async fn discover_metadata(issuer: &str) -> Result<(reqwest::Client, ServerMetadata), VerifyError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| VerifyError::Discovery(e.to_string()))?;
    let issuer = issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/oauth-authorization-server");
    let failed = |e: reqwest::Error| VerifyError::Discovery(format!("{url}: {e}"));
    let metadata: ServerMetadata =
        http.get(&url).send().await.and_then(|r| r.error_for_status()).map_err(failed)?.json().await.map_err(failed)?;
    if metadata.issuer.trim_end_matches('/') != issuer {
        return Err(VerifyError::Discovery(format!("{url} names the issuer {}", metadata.issuer)));
    }
    Ok((http, metadata))
}

/// How long a JWKS response may be used, from its `Cache-Control` header.
fn key_lifetime(cache_control: Option<&str>) -> Duration {
    let Some(value) = cache_control else { return DEFAULT_KEY_LIFETIME };
    let directives = || value.split(',').map(|d| d.trim().to_ascii_lowercase());
    if directives().any(|d| d == "no-store" || d == "no-cache") {
        return Duration::ZERO;
    }
    let max_age = directives().find_map(|d| d.strip_prefix("max-age=")?.trim_matches('"').parse::<u64>().ok());
    max_age.map_or(DEFAULT_KEY_LIFETIME, |seconds| Duration::from_secs(seconds).min(MAX_KEY_LIFETIME))
}

impl Verifier {
    /// Reads the issuer's metadata (RFC 8414) and keys, for tokens meant for `audience`.
    pub async fn discover(issuer: &str, audience: &str) -> Result<Self, VerifyError> {
        let (http, metadata) = discover_metadata(issuer).await?;
        let published = Published {
            jwks_uri: metadata.jwks_uri,
            http,
            cache: RwLock::default(),
            last_refresh: Mutex::default(),
            last_forced: Mutex::default(),
        };
        published.fetch().await?;
        Ok(Self::build(metadata.issuer, audience, Keys::Published(published)))
    }

    /// A verifier for an API whose tokens are HS256 with a secret shared with it alone.
    pub fn with_shared_secret(issuer: &str, audience: &str, secret: &[u8]) -> Self {
        Self::build(issuer.to_owned(), audience, Keys::Shared(Arc::new(DecodingKey::from_secret(secret))))
    }

    fn build(issuer: String, audience: &str, keys: Keys) -> Self {
        let inner = Inner { issuer, audience: audience.to_owned(), keys };
        let mut verifier = Self {
            inner: Arc::new(inner),
            leeway: 60,
            min_refetch_interval: Duration::from_secs(30),
            validations: Arc::new([]),
        };
        verifier.validations = verifier.build_validations();
        verifier
    }

    fn build_validations(&self) -> Arc<[(Algorithm, Validation)]> {
        ALGORITHMS
            .iter()
            .map(|&algorithm| {
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[&self.inner.issuer]);
                validation.set_audience(&[&self.inner.audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.validate_nbf = true;
                validation.leeway = self.leeway;
                (algorithm, validation)
            })
            .collect()
    }

    /// A verifier for the keys of `jwks` alone, which it never refreshes: for services that
    /// cannot reach the issuer, and whose operators rotate keys by hand.
    pub fn with_jwks(issuer: &str, audience: &str, jwks: &JwkSet) -> Self {
        Self::build(issuer.to_owned(), audience, Keys::Fixed(usable_keys(jwks)))
    }

    /// Tolerance for clock skew on `exp` and `nbf`, in seconds.
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self.validations = self.build_validations();
        self
    }

    /// The least time between two JWKS fetches caused by unknown kids.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    pub fn audience(&self) -> &str {
        &self.inner.audience
    }

    /// Verifies `token` and returns its claims, or says why not.
    pub async fn verify(&self, token: &str) -> Result<AccessToken, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // RFC 7515 §4.1.11: an extension marked critical that the recipient does not
        // understand makes the token invalid. This library understands none.
        if header.crit.is_some() {
            return Err(VerifyError::UnsupportedCritical);
        }
        let typ = header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(VerifyError::NotAnAccessToken);
        }
        let (algorithm, key) = match &self.inner.keys {
            Keys::Shared(secret) => (Algorithm::HS256, secret.clone()),
            Keys::Published(published) => {
                let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
                published.key(kid, self.min_refetch_interval).await?
            }
            Keys::Fixed(keys) => {
                let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
                keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)?
            }
        };
        // The key decides the algorithm; a token naming another is refused before any
        // signature check.
        if header.alg != algorithm {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let validation = self
            .validations
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, v)| v)
            .ok_or(VerifyError::AlgorithmNotAllowed)?;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, validation)?;
        let claims = Claims::deserialize(&data.claims).map_err(|e| VerifyError::InvalidClaims(e.to_string()))?;
        Ok(AccessToken {
            subject: claims.sub,
            client_id: claims.client_id,
            scopes: claims.scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            expires_at: claims.exp,
            jti: claims.jti,
            acr: claims.acr,
            auth_time: claims.auth_time,
            claims: data.claims,
        })
    }
}

impl Published {
    /// The key for `kid`: from the cache while it is fresh, else after a refetch.
    async fn key(&self, kid: &str, min_interval: Duration) -> Result<(Algorithm, Arc<DecodingKey>), VerifyError> {
        let (found, fresh, fetched_at) = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            (
                cache.keys.get(kid).cloned(),
                cache.fresh_until.is_some_and(|until| Instant::now() < until),
                cache.fetched_at,
            )
        };
        match found {
            Some(key) if fresh => return Ok(key),
            // Stale: refresh when allowed (one request at a time does), then believe the issuer.
            Some(stale) => {
                if claim(&self.last_refresh, STALE_REFRESH_SPACING) {
                    // On failure the known keys stay in use; the next request tries again.
                    let _ = self.fetch().await;
                }
                let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
                return match cache.keys.get(kid) {
                    Some(key) => Ok(key.clone()),
                    // The issuer answered since and no longer publishes the key: withdrawn.
                    None if cache.fetched_at != fetched_at => Err(VerifyError::UnknownKey),
                    // Not asked yet, or unreachable: an outage must not refuse every token.
                    None => Ok(stale),
                };
            }
            None if claim(&self.last_forced, min_interval) => self.fetch().await?,
            None => return Err(VerifyError::UnknownKey),
        }
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        cache.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)
    }

    async fn fetch(&self) -> Result<(), VerifyError> {
        let failed = |e: reqwest::Error| VerifyError::Discovery(format!("{}: {e}", self.jwks_uri));
        let response = self.http.get(&self.jwks_uri).send().await.and_then(|r| r.error_for_status()).map_err(failed)?;
        let cache_control = response.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok());
        let lifetime = key_lifetime(cache_control);
        let set: JwkSet = response.json().await.map_err(failed)?;
        let keys = usable_keys(&set);
        let now = Instant::now();
        *self.cache.write().unwrap_or_else(|p| p.into_inner()) =
            KeyCache { keys, fetched_at: Some(now), fresh_until: Some(now + lifetime) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwks_cache_header_sets_how_long_keys_are_trusted() {
        let cases = [
            (None, DEFAULT_KEY_LIFETIME),
            (Some("public, max-age=300"), Duration::from_secs(300)),
            (Some("Max-Age=20"), Duration::from_secs(20)),
            (Some(r#"max-age="45""#), Duration::from_secs(45)),
            (Some("max-age=0"), Duration::ZERO),
            (Some("no-store"), Duration::ZERO),
            (Some("max-age=600, no-cache"), Duration::ZERO),
            (Some("max-age=31536000"), MAX_KEY_LIFETIME),
            (Some("public"), DEFAULT_KEY_LIFETIME),
            (Some("max-age=soon"), DEFAULT_KEY_LIFETIME),
        ];
        for (header, expected) in cases {
            assert_eq!(key_lifetime(header), expected, "{header:?}");
        }
    }
}
