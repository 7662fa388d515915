//! JWK Sets that `private_key_jwt` clients publish at a `jwks_uri` (RFC 7591 §2), fetched
//! when their JWTs are checked.
//!
//! The URI is the client's choice, so fetching it is a server-side request forgery risk. The
//! rules: https only; every address the host resolves to must be public (no loopback,
//! private, link-local, shared, documentation or multicast address); the connection goes to
//! the address that was checked (no second resolution to rebind); no redirects; 5 s for the
//! whole fetch; 64 KiB at most. An operator whose key server is on their own network allows
//! private addresses (and plain http for them) with `jwks_uri_allow_private`.
//!
//! Sets are cached for five minutes; a `kid` the cached set lacks refetches it, at most every
//! 30 seconds per URI, so that a client's key rotation is picked up at once and a stream of
//! made-up `kid`s does not turn into a stream of fetches.
//!
//! Floor: core (docs/architecture.md); names nothing else of the crate.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use url::Url;

const FRESH_FOR: Duration = Duration::from_secs(300);
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 64 * 1024;
/// Cached URIs at most: one per `private_key_jwt` client in practice.
const MAX_CACHED: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("the jwks_uri is not allowed: {0}")]
    NotAllowed(String),
    #[error("the jwks_uri could not be fetched: {0}")]
    Unreachable(String),
    #[error("the jwks_uri answered more than 64 KiB")]
    TooLarge,
    #[error("the jwks_uri did not answer a JWK Set")]
    NotAJwkSet,
}

struct Cached {
    keys: Arc<JwkSet>,
    fetched_at: Instant,
}

/// The fetcher and its cache, shared by every worker.
pub struct RemoteJwks {
    allow_private: bool,
    cache: Mutex<HashMap<String, Cached>>,
}

/// Whether an address may be reached from here on a client's say-so.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (b & 0xc0) == 64)
                || (a == 192 && b == 0)
                || (a == 198 && (b & 0xfe) == 18))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || (first == 0x2001 && v6.segments()[1] == 0xdb8)
                    || first == 0x64)
            }
        },
    }
}

/// Checks a `jwks_uri` as registered: an absolute https URL (http only where private
/// addresses are allowed), with a host, no credentials and no fragment, and not a literal
/// address that may not be reached. Names are checked again when they resolve.
pub fn check_uri(uri: &str, allow_private: bool) -> Result<Url, String> {
    let url = Url::parse(uri).map_err(|e| format!("jwks_uri is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("jwks_uri must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err("jwks_uri must not carry credentials or a fragment".into());
    }
    let literal = match url.host() {
        None => return Err("jwks_uri needs a host".into()),
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = literal.filter(|ip| !allow_private && !is_public(*ip)) {
        return Err(format!("jwks_uri points at {ip}, which is not a public address"));
    }
    Ok(url)
}

impl RemoteJwks {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private, cache: Mutex::new(HashMap::new()) }
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// The set at `uri`: from the cache while fresh and holding `kid` (when one is named),
    /// else fetched.
    pub async fn keys(&self, uri: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, FetchError> {
        let now = Instant::now();
        if let Some(cached) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(uri) {
            let fresh = now.duration_since(cached.fetched_at) < FRESH_FOR;
            let knows = kid.is_none_or(|kid| cached.keys.find(kid).is_some());
            let recently = now.duration_since(cached.fetched_at) < REFETCH_AT_MOST_EVERY;
            if (fresh && knows) || recently {
                return Ok(Arc::clone(&cached.keys));
            }
        }
        let keys = Arc::new(self.fetch(uri).await?);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, cached| now.duration_since(cached.fetched_at) < FRESH_FOR);
        }
        cache.insert(uri.to_owned(), Cached { keys: Arc::clone(&keys), fetched_at: now });
        Ok(keys)
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, FetchError> {
        let url = check_uri(uri, self.allow_private).map_err(FetchError::NotAllowed)?;
        let host = url.host_str().unwrap_or_default().trim_matches(|c| c == '[' || c == ']').to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| FetchError::Unreachable(format!("resolving {host} timed out")))?
            .map_err(|e| FetchError::Unreachable(format!("{host} does not resolve: {e}")))?
            .collect();
        let Some(first) = addresses.first().copied() else {
            return Err(FetchError::Unreachable(format!("{host} has no address")));
        };
        // Every address, not just the one used: a name that also resolves inward is refused.
        if let Some(inward) = addresses.iter().find(|a| !self.allow_private && !is_public(a.ip())) {
            return Err(FetchError::NotAllowed(format!("{host} resolves to {}, which is not public", inward.ip())));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve(&host, first)
            .build()
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let mut response = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/jwk-set+json, application/json")
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(without_url(&e)))?;
        if !response.status().is_success() {
            return Err(FetchError::Unreachable(format!("it answered {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| FetchError::Unreachable(without_url(&e)))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| FetchError::NotAJwkSet)
    }
}

/// reqwest's errors repeat the URL, which the caller already knows.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for inward in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(!is_public(inward.parse().unwrap()), "{inward}");
        }
        for outward in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(outward.parse().unwrap()), "{outward}");
        }
    }

    #[test]
    fn registered_uris_are_https_and_not_literal_inward_addresses() {
        assert!(check_uri("https://keys.example.com/jwks.json", false).is_ok());
        assert!(check_uri("http://keys.example.com/jwks.json", false).is_err());
        assert!(check_uri("https://169.254.169.254/latest/meta-data", false).is_err());
        assert!(check_uri("https://[::1]/jwks", false).is_err());
        assert!(check_uri("https://user:pw@keys.example.com/jwks", false).is_err());
        assert!(check_uri("file:///etc/passwd", true).is_err());
        assert!(check_uri("http://127.0.0.1:9000/jwks", true).is_ok());
    }
}
