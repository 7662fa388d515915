use std::fmt;

use url::Url;

/// Why a URI was refused, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("`{0}` is not an absolute URI")]
    NotAbsolute(String),
    #[error("`{0}` must not contain a fragment")]
    Fragment(String),
    #[error("{0:?} may contain only visible ASCII: no spaces, control or non-ASCII characters")]
    NotVisibleAscii(String),
    #[error("`{0}` must not carry a user name or password")]
    Credentials(String),
    #[error("`{0}` must use https (http is allowed for loopback only)")]
    PlainHttp(String),
    #[error(
        "`{0}` has a scheme redirects may not use: https, loopback http, or a native app's \
         reverse-domain scheme such as com.example.app:/callback"
    )]
    Scheme(String),
}

/// Every URI Latchkey stores is RFC 3986 text: visible ASCII only. Whitespace in particular
/// must never pass, since lists of URIs were once kept space-separated: a space inside one
/// registered URI smuggled in a second that nothing had checked.
fn visible_ascii(value: &str) -> Result<(), UriError> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(UriError::NotVisibleAscii(value.to_owned()))
    }
}

/// A resource indicator or API audience: an absolute URI without a fragment (RFC 8707 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUri(String);

impl ResourceUri {
    pub fn parse(value: &str) -> Result<Self, UriError> {
        visible_ascii(value)?;
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

/// A URI a client may have the browser sent to: after authorization (`redirect_uri`) or
/// after sign-out (`post_logout_redirect_uri`).
///
/// RFC 9700 §2.1 and RFC 8252 §7: an absolute URI without a fragment or credentials, and
/// one of
/// - `https`;
/// - `http` to a loopback host, for native apps listening on this machine;
/// - a private-use scheme of a native app, in reverse-domain form (`com.example.app:`), which
///   by its dot can never be `javascript:`, `data:`, `vbscript:` or `file:`.
///
/// Matching is exact string comparison against the registered value (RFC 9700 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(value: &str) -> Result<Self, UriError> {
        visible_ascii(value)?;
        let url = Url::parse(value).map_err(|_| UriError::NotAbsolute(value.to_owned()))?;
        if url.fragment().is_some() {
            return Err(UriError::Fragment(value.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UriError::Credentials(value.to_owned()));
        }
        match url.scheme() {
            "https" => {}
            "http" if matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => {}
            "http" => return Err(UriError::PlainHttp(value.to_owned())),
            private if private.contains('.') => {}
            _ => return Err(UriError::Scheme(value.to_owned())),
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this URI, character for character.
    pub fn matches(&self, presented: &str) -> bool {
        self.0 == presented
    }
}

impl fmt::Display for RedirectUri {
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
    fn relative_uris_fragments_and_whitespace_are_refused_as_audiences() {
        assert_eq!(ResourceUri::parse("/orders"), Err(UriError::NotAbsolute("/orders".into())));
        assert!(matches!(ResourceUri::parse("https://api.example.com/#x"), Err(UriError::Fragment(_))));
        for smuggled in ["https://a.example.com https://b.example.com", "https://a.example.com\t", "https://ä.example"]
        {
            assert!(matches!(ResourceUri::parse(smuggled), Err(UriError::NotVisibleAscii(_))), "{smuggled:?}");
        }
    }

    #[test]
    fn redirect_uris_follow_rfc_9700_and_8252() {
        for good in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?tenant=1",
            "http://127.0.0.1:5000/cb",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/cb",
            "com.example.app:/oauth2redirect/provider",
        ] {
            assert_eq!(RedirectUri::parse(good).map(|u| u.0), Ok(good.to_owned()), "{good}");
        }
        let refused = [
            ("http://app.example.com/cb", "plain http"),
            ("https://app.example.com/cb#frag", "a fragment"),
            ("/relative", "relative"),
            ("not a uri", "spaces"),
            ("https://app.example.com/cb http://evil.example/steal", "two URIs in one"),
            ("https://app.example.com/cb\nhttp://evil.example/", "a newline"),
            ("javascript:alert(document.cookie)", "javascript"),
            ("JavaScript:alert(1)", "javascript in capitals"),
            ("data:text/html,<script>alert(1)</script>", "data"),
            ("vbscript:msgbox(1)", "vbscript"),
            ("file:///etc/passwd", "file"),
            ("https://user:pass@app.example.com/cb", "credentials"),
            ("https://user@app.example.com/cb", "a user name"),
            ("http://localhost.evil.example/cb", "a host that only starts like loopback"),
            ("myapp:/cb", "a private scheme that is not reverse-domain"),
        ];
        for (bad, why) in refused {
            assert!(RedirectUri::parse(bad).is_err(), "{why}: {bad}");
        }
    }

    #[test]
    fn matching_is_exact() {
        let registered = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(registered.matches("https://app.example.com/cb"));
        for near in ["https://app.example.com/cb/", "https://APP.example.com/cb", "https://app.example.com/cb?x=1"] {
            assert!(!registered.matches(near), "{near}");
        }
    }
}

/// The parsers above see whatever a registration request or a browser sends.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Text shaped like a URI, built from the pieces attacks are made of: dangerous and
    /// look-alike schemes, loopback look-alikes, credentials, fragments, and every kind of
    /// whitespace or invisible character a parser or a browser might drop.
    fn uri_like() -> impl Strategy<Value = String> {
        let scheme = prop_oneof![
            Just("https"),
            Just("http"),
            Just("HTTPS"),
            Just("javascript"),
            Just("JavaScript"),
            Just("java\tscript"),
            Just("data"),
            Just("vbscript"),
            Just("file"),
            Just("myapp"),
            Just("com.example.app"),
            Just(" https"),
        ];
        let authority = prop_oneof![
            Just("//app.example.com"),
            Just("//localhost"),
            Just("//127.0.0.1:5000"),
            Just("//[::1]"),
            Just("//localhost.evil.example"),
            Just("//user:pass@app.example.com"),
            Just("//user@127.0.0.1"),
            Just(""),
        ];
        let tail = "[a-z0-9/?=&%.:@#\\\\ \t\n\r\u{0}\u{7f}\u{a0}\u{200b}\u{3000}ä]{0,16}";
        (scheme, authority, tail).prop_map(|(scheme, authority, tail)| format!("{scheme}:{authority}/{tail}"))
    }

    fn whitespace_or_control() -> impl Strategy<Value = char> {
        prop_oneof![
            Just(' '),
            Just('\t'),
            Just('\n'),
            Just('\r'),
            Just('\u{0}'),
            Just('\u{7f}'),
            Just('\u{a0}'),
            Just('\u{200b}'),
            Just('\u{3000}'),
        ]
    }

    proptest! {
        #[test]
        fn an_accepted_redirect_uri_is_kept_verbatim_and_is_safe(value in prop_oneof![uri_like(), any::<String>()]) {
            if let Ok(uri) = RedirectUri::parse(&value) {
                prop_assert_eq!(uri.as_str(), value.as_str());
                prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()));
                let url = Url::parse(&value).unwrap();
                prop_assert!(url.fragment().is_none());
                prop_assert!(url.username().is_empty() && url.password().is_none());
                match url.scheme() {
                    "https" => {}
                    "http" => prop_assert!(matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))),
                    private => prop_assert!(private.contains('.'), "scheme {private}"),
                }
            }
        }

        #[test]
        fn an_accepted_audience_is_one_absolute_visible_ascii_uri(value in prop_oneof![uri_like(), any::<String>()]) {
            if let Ok(uri) = ResourceUri::parse(&value) {
                prop_assert_eq!(uri.as_str(), value.as_str());
                prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert!(Url::parse(&value).unwrap().fragment().is_none());
            }
        }

        /// A space or control character smuggled anywhere into a good URI is refused: this
        /// is how a second, unchecked URI once rode along with a registered one.
        #[test]
        fn nothing_invisible_rides_along(at in any::<prop::sample::Index>(), smuggled in whitespace_or_control()) {
            let good = "https://app.example.com/callback?tenant=1";
            let mut value = good.to_owned();
            value.insert(at.index(good.len() + 1), smuggled);
            prop_assert!(RedirectUri::parse(&value).is_err(), "{:?}", value);
            prop_assert!(ResourceUri::parse(&value).is_err(), "{:?}", value);
        }
    }
}
