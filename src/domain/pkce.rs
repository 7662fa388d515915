//! PKCE (RFC 7636) with S256 only: `plain` would hand the verifier to anyone who sees the
//! authorization request (RFC 9700 §2.1.1).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// A validated S256 code challenge: 43 base64url characters (a SHA-256 digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge_method must be S256 (plain is not accepted)")]
    UnsupportedMethod,
    #[error("code_challenge must be 43 base64url characters (the S256 of the verifier)")]
    MalformedChallenge,
}

fn is_base64url(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CodeChallenge {
    /// RFC 7636 §4.3: an absent method means `plain`, which is refused.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, PkceError> {
        if method != Some("S256") {
            return Err(PkceError::UnsupportedMethod);
        }
        if challenge.len() != 43 || !is_base64url(challenge) {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(Self(challenge.to_owned()))
    }

    /// A stored challenge, validated when it was stored.
    pub fn from_stored(challenge: String) -> Self {
        Self(challenge)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.1 and §4.6: a verifier of 43 to 128 unreserved characters whose S256
    /// is the challenge; compared in constant time.
    pub fn is_satisfied_by(&self, verifier: &str) -> bool {
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !well_formed {
            return false;
        }
        let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifies() {
        let challenge = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert!(challenge.is_satisfied_by(VERIFIER));
        assert!(!challenge.is_satisfied_by(&VERIFIER.replace('d', "e")));
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        assert_eq!(CodeChallenge::parse(CHALLENGE, Some("plain")), Err(PkceError::UnsupportedMethod));
        assert_eq!(CodeChallenge::parse(CHALLENGE, None), Err(PkceError::UnsupportedMethod));
    }

    #[test]
    fn malformed_challenges_and_verifiers_are_refused() {
        assert_eq!(CodeChallenge::parse("short", Some("S256")), Err(PkceError::MalformedChallenge));
        assert_eq!(
            CodeChallenge::parse(&format!("{}=", &CHALLENGE[..42]), Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
        let challenge = CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap();
        assert!(!challenge.is_satisfied_by("too-short"));
        assert!(!challenge.is_satisfied_by(&"a".repeat(129)));
        // The challenge itself is not a verifier for itself.
        assert!(!challenge.is_satisfied_by(CHALLENGE));
    }
}
