use url::Url;

use super::Issuer;

/// Where the browser goes after signing in: a path on this server, never anywhere else.
///
/// Only visible ASCII is taken. Browsers and URL parsers drop tabs and newlines inside a
/// URL, so `/\t/evil.example/` arrives at the browser as `//evil.example/`, another host;
/// and a newline cannot be put in a `Location` header at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// Where a browser goes when it named nowhere, or nowhere acceptable.
    pub const DEFAULT: &str = "/dashboard";

    /// `value` if it is a path that, resolved against the issuer, stays on the issuer's
    /// origin.
    pub fn parse(value: &str, issuer: &Issuer) -> Option<Self> {
        let visible_ascii = value.bytes().all(|b| b.is_ascii_graphic());
        if !visible_ascii || !value.starts_with('/') || value.starts_with("//") || value.contains('\\') {
            return None;
        }
        let base = Url::parse(issuer.as_str()).ok()?;
        let resolved = base.join(value).ok()?;
        (resolved.origin() == base.origin()).then(|| Self(value.to_owned()))
    }

    /// `value` if acceptable, else [`Self::DEFAULT`].
    pub fn or_default(value: Option<&str>, issuer: &Issuer) -> Self {
        value.and_then(|value| Self::parse(value, issuer)).unwrap_or_else(|| Self(Self::DEFAULT.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Issuer {
        Issuer::from_url(&Url::parse("https://id.example.com").unwrap())
    }

    #[test]
    fn local_paths_are_kept_as_given() {
        for local in ["/account", "/oauth2/authorize?client_id=x&scope=openid%20read", "/a/../b", "/%2F%2Fevil"] {
            assert_eq!(ReturnTo::parse(local, &issuer()).map(|r| r.0), Some(local.to_owned()), "{local}");
        }
    }

    #[test]
    fn anything_that_could_leave_the_origin_falls_back_to_the_dashboard() {
        let hostile = [
            "https://evil.example.com",
            "//evil.example.com",
            "/\\evil.example.com",
            "\\\\evil.example.com",
            "javascript:alert(1)",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/\r\nSet-Cookie: x=1",
            "/ /evil.example/",
            "/\u{3000}/evil.example/",
            "/\u{0}x",
            "",
            "account",
        ];
        for value in hostile {
            assert_eq!(ReturnTo::or_default(Some(value), &issuer()).as_str(), ReturnTo::DEFAULT, "{value:?}");
        }
        assert_eq!(ReturnTo::or_default(None, &issuer()).as_str(), "/dashboard");
    }
}

/// `return_to` comes from a query string anyone can craft.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn issuer() -> Issuer {
        Issuer::from_url(&Url::parse("https://id.example.com/tenant").unwrap())
    }

    /// Paths built from what open redirects are made of: slashes both ways, schemes,
    /// `@`, dots, percent escapes, and characters browsers strip or fold.
    fn path_like() -> impl Strategy<Value = String> {
        "[/\\\\a-z.:@%2F?#\t\n\r \u{0}\u{3000}\u{ff0f}]{0,14}"
    }

    proptest! {
        #[test]
        fn an_accepted_return_to_never_leaves_the_issuers_origin(value in prop_oneof![path_like(), any::<String>()]) {
            if let Some(accepted) = ReturnTo::parse(&value, &issuer()) {
                prop_assert_eq!(accepted.as_str(), value.as_str());
                prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()));
                // As a browser resolves it, with `\` read as `/` the way WHATWG URLs do.
                let base = Url::parse(issuer().as_str()).unwrap();
                let as_a_browser_reads_it = value.replace('\\', "/");
                prop_assert_eq!(base.join(&as_a_browser_reads_it).unwrap().origin(), base.origin());
            }
        }
    }
}
