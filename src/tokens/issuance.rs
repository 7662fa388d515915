//! Proof that Latchkey itself issued an HS256 access token.
//!
//! An HS256 API's shared secret is held by the API's operators as well as by Latchkey, so a
//! signature under it shows only that *someone* holding the secret signed. Latchkey's own
//! endpoints (introspection, revocation) must not take such a token for one of its own: the
//! `jti` of every HS256 token Latchkey issues carries a tag, keyed with a secret only
//! Latchkey holds, over every claim it vouches for. A secret holder can copy a real token's
//! `jti` but cannot change a single claim under it, so introspection reports exactly what
//! Latchkey issued and nothing else, without a database row per token.

use serde::Serialize;

use super::AccessTokenClaims;
use crate::crypto::TokenHasher;

/// Separates the random id from the tag in a proven `jti`; neither a UUID nor base64url
/// contains it.
const SEPARATOR: char = '.';

/// Tags and checks the `jti` of HS256 access tokens.
#[derive(Clone, Debug)]
pub struct IssuanceProof(TokenHasher);

/// The claims the tag covers, serialised unambiguously (a JSON array: no claim can run into
/// the next).
#[derive(Serialize)]
struct Covered<'a>(&'a str, &'a str, &'a str, &'a str, i64, i64, &'a str, Option<&'a str>);

/// A person's token also vouches for their sign-in; tokens without one keep the shorter
/// array, so that tags made before these claims existed still verify.
#[derive(Serialize)]
struct CoveredWithSignIn<'a>(Covered<'a>, Option<i64>, Option<&'a str>, Option<&'a [String]>);

fn covered(id: &str, claims: &AccessTokenClaims) -> String {
    let covered = Covered(
        id,
        &claims.iss,
        &claims.sub,
        &claims.aud,
        claims.exp,
        claims.iat,
        &claims.client_id,
        claims.scope.as_deref(),
    );
    let serialised = if claims.auth_time.is_none() && claims.acr.is_none() && claims.amr.is_none() {
        serde_json::to_string(&covered)
    } else {
        serde_json::to_string(&CoveredWithSignIn(
            covered,
            claims.auth_time,
            claims.acr.as_deref(),
            claims.amr.as_deref(),
        ))
    };
    serialised.expect("strings and integers always serialise")
}

impl IssuanceProof {
    /// `hasher` must be keyed for this purpose alone (`MasterKey::issuance_hasher`).
    pub fn new(hasher: TokenHasher) -> Self {
        Self(hasher)
    }

    /// The tag over `id` and every other claim.
    fn tag(&self, id: &str, claims: &AccessTokenClaims) -> String {
        self.0.hash(&covered(id, claims)).into_string()
    }

    /// Replaces `claims.jti` (a fresh random id) by `<id>.<tag>`.
    pub fn seal(&self, claims: &mut AccessTokenClaims) {
        let tag = self.tag(&claims.jti, claims);
        claims.jti = format!("{}{SEPARATOR}{tag}", claims.jti);
    }

    /// Whether Latchkey issued a token with exactly these claims (tag compared in constant
    /// time).
    pub fn verify(&self, claims: &AccessTokenClaims) -> bool {
        let Some((id, tag)) = claims.jti.rsplit_once(SEPARATOR) else {
            return false;
        };
        self.0.verify(&covered(id, claims), tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://id.example.com".into(),
            sub: "user-1".into(),
            aud: "https://api.example.com".into(),
            exp: 2_000_000_000,
            iat: 1_999_996_400,
            jti: "9f1c2d9e-6a55-4a0e-9a53-1c7d1c2f4b11".into(),
            client_id: "client-1".into(),
            scope: Some("read".into()),
            auth_time: Some(1_999_990_000),
            acr: Some("urn:latchkey:acr:mfa".into()),
            amr: Some(vec!["pwd".into(), "otp".into(), "mfa".into()]),
            nbf: None,
        }
    }

    #[test]
    fn a_sealed_token_verifies_and_keeps_its_random_id() {
        let proof = IssuanceProof::new(MasterKey::generate().issuance_hasher());
        let mut sealed = claims();

        proof.seal(&mut sealed);

        assert!(sealed.jti.starts_with("9f1c2d9e-6a55-4a0e-9a53-1c7d1c2f4b11."), "{}", sealed.jti);
        assert!(proof.verify(&sealed));
    }

    #[test]
    fn changing_any_covered_claim_or_the_key_breaks_the_proof() {
        let proof = IssuanceProof::new(MasterKey::generate().issuance_hasher());
        let mut sealed = claims();
        proof.seal(&mut sealed);
        let changes: [fn(&mut AccessTokenClaims); 12] = [
            |c| c.sub = "user-2".into(),
            |c| c.aud = "https://other.example.com".into(),
            |c| c.exp += 1,
            |c| c.iat -= 1,
            |c| c.client_id = "client-2".into(),
            |c| c.scope = Some("read admin".into()),
            |c| c.scope = None,
            |c| c.iss = "https://evil.example.com".into(),
            |c| c.auth_time = Some(2_000_000_000),
            |c| c.acr = Some("urn:latchkey:acr:pwd".into()),
            |c| c.amr = Some(vec!["pwd".into()]),
            |c| (c.auth_time, c.acr, c.amr) = (None, None, None),
        ];

        for (i, change) in changes.iter().enumerate() {
            let mut forged = sealed.clone();
            change(&mut forged);
            assert!(!proof.verify(&forged), "change {i} went unnoticed");
        }
        assert!(!IssuanceProof::new(MasterKey::generate().issuance_hasher()).verify(&sealed));
        assert!(!proof.verify(&claims()), "an unsealed jti proves nothing");
    }

    #[test]
    fn a_token_without_a_sign_in_is_covered_as_before_sign_ins_were_claimed() {
        let claims = AccessTokenClaims { auth_time: None, acr: None, amr: None, ..claims() };
        let covered = covered("id", &claims);
        assert_eq!(
            covered,
            r#"["id","https://id.example.com","user-1","https://api.example.com",2000000000,1999996400,"client-1","read"]"#
        );
    }
}
