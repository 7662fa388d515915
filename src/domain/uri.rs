use std::fmt;

use url::Url;

/// A resource indicator or API audience: an absolute URI without a fragment (RFC 8707 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUri(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("`{0}` is not an absolute URI")]
    NotAbsolute(String),
    #[error("`{0}` must not contain a fragment")]
    Fragment(String),
}

impl ResourceUri {
    pub fn parse(value: &str) -> Result<Self, UriError> {
        let url = Url::parse(value).map_err(|_| UriError::NotAbsolute(value.to_owned()))?;
        if url.fragment().is_some() {
            return Err(UriError::Fragment(value.to_owned()));
        }
        // Kept as written: the audience is compared byte for byte, as the resource server will.
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uris_are_kept_verbatim() {
        assert_eq!(ResourceUri::parse("https://api.example.com").unwrap().as_str(), "https://api.example.com");
        assert!(ResourceUri::parse("urn:example:orders").is_ok());
    }

    #[test]
    fn relative_uris_and_fragments_are_refused() {
        assert_eq!(ResourceUri::parse("/orders"), Err(UriError::NotAbsolute("/orders".into())));
        assert!(matches!(ResourceUri::parse("https://api.example.com/#x"), Err(UriError::Fragment(_))));
    }
}
