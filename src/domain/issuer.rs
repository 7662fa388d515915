use std::fmt;

use url::Url;

/// The issuer identifier: the `iss` of every token and the base of every metadata URL.
/// Stored without a trailing slash so that `iss` comparisons are exact (RFC 8414 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn from_url(url: &Url) -> Self {
        Self(url.as_str().trim_end_matches('/').to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute URL of one of our endpoints, `path` starting with `/`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The audience of Latchkey's own management API, `{issuer}/api/v1`: what its access
    /// tokens name in `aud`.
    pub fn management_api_audience(&self) -> String {
        self.endpoint("/api/v1")
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_hang_off_the_issuer_path() {
        let issuer = Issuer::from_url(&Url::parse("https://id.example.com/tenant-a/").unwrap());
        assert_eq!(issuer.endpoint("/oauth2/token"), "https://id.example.com/tenant-a/oauth2/token");
        assert!(issuer.is_https());
    }
}
