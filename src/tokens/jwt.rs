//! JWT access tokens (RFC 9068) — signed and verified over keys parsed once (jsonwebtoken
//! re-parses an RSA key on every `encode` and `decode`: half the signing throughput, a sixth
//! of a verification), the algorithm fixed by the key, never by the token; jsonwebtoken
//! reads the header.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use super::keys::VerifyingKey;
use super::keyset::ActiveKey;

/// `typ` of an access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// For a person's token: when they signed in, and how (RFC 9068 §2.2.1, RFC 8176).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// Never written by Latchkey; honoured when a holder of an API's shared secret wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

impl AccessTokenClaims {
    /// `exp` as the database stores times.
    pub fn expires_at(&self) -> chrono::NaiveDateTime {
        chrono::DateTime::from_timestamp(self.exp, 0).unwrap_or_default().naive_utc()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

fn signing_input(alg: &str, typ: &str, kid: &str, claims: &impl Serialize) -> String {
    let header = serde_json::to_vec(&Header { alg, typ, kid }).expect("a header always serialises");
    let payload = serde_json::to_vec(claims).expect("claims always serialise");
    let mut input = String::with_capacity(header.len() * 4 / 3 + payload.len() * 4 / 3 + 350);
    URL_SAFE_NO_PAD.encode_string(header, &mut input);
    input.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut input);
    input
}

/// A compact JWS signed by one of our asymmetric keys.
pub fn sign(key: &ActiveKey, typ: &str, claims: &impl Serialize) -> String {
    let mut token = signing_input(key.algorithm.as_str(), typ, &key.kid, claims);
    let signature = key.pair.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

/// A compact JWS signed with an API's shared secret; `kid` names the API, not the secret.
pub fn sign_hs256(secret: &[u8], kid: &str, typ: &str, claims: &impl Serialize) -> String {
    let mut token = signing_input("HS256", typ, kid, claims);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    token
}

/// A compact JWS as presented, its header read once to choose the key that checks it.
/// Nothing in it is trusted until [`Self::verify_access_token`] says so, and a header
/// Latchkey cannot honour is no header at all.
pub struct PresentedJws<'a> {
    token: &'a str,
    header: jsonwebtoken::Header,
}

impl<'a> PresentedJws<'a> {
    /// The token with its header, if Latchkey can honour that header. RFC 7515 §4.1.11: a
    /// recipient must refuse a JWS whose `crit` lists an extension it does not understand.
    /// Latchkey understands none, and an empty list is itself invalid, so any `crit` is
    /// refused.
    pub fn parse(token: &'a str) -> Option<Self> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        header.crit.is_none().then_some(Self { token, header })
    }

    /// The `kid` the token names, unverified: which key to try, nothing more.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The `alg` the token names, unverified: an HS256 token's key is an API's secret.
    pub fn algorithm(&self) -> Algorithm {
        self.header.alg
    }

    /// Verifies the header (the key's own algorithm, the access-token `typ`), the signature,
    /// then `iss`, expiry and `nbf` with no leeway: an expired token is inactive, a token not
    /// yet valid is not valid. The claims are read only once the signature holds.
    pub fn verify_access_token(
        &self,
        key: TokenKey<'_>,
        issuer: &str,
    ) -> Result<AccessTokenClaims, jsonwebtoken::errors::Error> {
        use jsonwebtoken::errors::ErrorKind;
        if self.header.alg != key.algorithm() {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        if self.header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(ErrorKind::InvalidToken.into());
        }
        let (message, signature) = self.token.rsplit_once('.').ok_or(ErrorKind::InvalidToken)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| ErrorKind::InvalidSignature)?;
        if !key.verifies(message.as_bytes(), &signature) {
            return Err(ErrorKind::InvalidSignature.into());
        }
        let (_, payload) = message.split_once('.').ok_or(ErrorKind::InvalidToken)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| ErrorKind::InvalidToken)?;
        let claims: AccessTokenClaims = serde_json::from_slice(&payload).map_err(|_| ErrorKind::InvalidToken)?;
        let now = chrono::Utc::now().timestamp();
        if claims.exp < now {
            return Err(ErrorKind::ExpiredSignature.into());
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(ErrorKind::ImmatureSignature.into());
        }
        if claims.iss != issuer {
            return Err(ErrorKind::InvalidIssuer.into());
        }
        Ok(claims)
    }
}

/// What checks an access token's signature: one of Latchkey's published keys, parsed once,
/// or the shared secret of an API whose tokens are HS256.
#[derive(Clone, Copy)]
pub enum TokenKey<'a> {
    Published(&'a VerifyingKey),
    SharedSecret(&'a [u8]),
}

impl TokenKey<'_> {
    fn algorithm(self) -> Algorithm {
        match self {
            Self::Published(key) => key.algorithm().jsonwebtoken(),
            Self::SharedSecret(_) => Algorithm::HS256,
        }
    }

    fn verifies(self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Published(key) => key.verifies(message, signature),
            // In constant time (aws-lc's HMAC verification).
            Self::SharedSecret(secret) => {
                hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, secret), message, signature).is_ok()
            }
        }
    }
}

/// Verifies an access token whose header has not been read yet ([`PresentedJws`]); a
/// malformed header or one with `crit` is refused as [`ErrorKind::InvalidToken`].
///
/// [`ErrorKind::InvalidToken`]: jsonwebtoken::errors::ErrorKind::InvalidToken
pub fn verify_access_token(
    token: &str,
    key: TokenKey<'_>,
    issuer: &str,
) -> Result<AccessTokenClaims, jsonwebtoken::errors::Error> {
    PresentedJws::parse(token).ok_or(jsonwebtoken::errors::ErrorKind::InvalidToken)?.verify_access_token(key, issuer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        let now = chrono::Utc::now().timestamp();
        AccessTokenClaims {
            iss: "https://id.example.com".into(),
            sub: "client-1".into(),
            aud: "https://api.example.com".into(),
            exp: now + 60,
            iat: now,
            jti: "jti-1".into(),
            client_id: "client-1".into(),
            scope: Some("read".into()),
            auth_time: None,
            acr: None,
            amr: None,
            nbf: None,
        }
    }

    #[test]
    fn hs256_tokens_verify_only_with_their_secret() {
        let token = sign_hs256(b"0123456789abcdef0123456789abcdef", "api-1", ACCESS_TOKEN_TYP, &claims());
        let good = TokenKey::SharedSecret(b"0123456789abcdef0123456789abcdef");
        let bad = TokenKey::SharedSecret(b"another secret of the same size!");
        assert_eq!(verify_access_token(&token, good, "https://id.example.com").unwrap(), claims());
        assert!(verify_access_token(&token, bad, "https://id.example.com").is_err());
        assert!(verify_access_token(&token, good, "https://other.example.com").is_err());
    }

    /// Each published key verifies tokens of its own algorithm and key only: not another
    /// key's, and not HS256 "signed" with the public key as the secret.
    #[test]
    fn published_keys_verify_only_their_own_tokens() {
        use crate::domain::SigningAlgorithm;
        use crate::tokens::keys::{KeyPair, generate_key};
        for algorithm in SigningAlgorithm::ALL {
            let generated = generate_key(algorithm).unwrap();
            let pair = KeyPair::from_pkcs8(algorithm, &generated.pkcs8).unwrap();
            let signer = ActiveKey { kid: generated.jwk.kid.clone(), algorithm, pair };
            let key = generated.jwk.verifying_key().unwrap();
            let other = generate_key(algorithm).unwrap().jwk.verifying_key().unwrap();
            let token = sign(&signer, ACCESS_TOKEN_TYP, &claims());
            let public = serde_json::to_vec(&generated.jwk).unwrap();
            let confused = sign_hs256(&public, &generated.jwk.kid, ACCESS_TOKEN_TYP, &claims());

            assert_eq!(
                verify_access_token(&token, TokenKey::Published(&key), "https://id.example.com").unwrap(),
                claims()
            );
            assert!(verify_access_token(&token, TokenKey::Published(&other), "https://id.example.com").is_err());
            assert!(verify_access_token(&confused, TokenKey::Published(&key), "https://id.example.com").is_err());
            assert!(verify_access_token(&token, TokenKey::SharedSecret(&public), "https://id.example.com").is_err());
        }
    }

    #[test]
    fn a_token_without_the_access_token_typ_is_refused() {
        let token = sign_hs256(b"secret-secret-secret-secret-1234", "api-1", "JWT", &claims());
        let key = TokenKey::SharedSecret(b"secret-secret-secret-secret-1234");
        assert!(verify_access_token(&token, key, "https://id.example.com").is_err());
    }

    /// Signs arbitrary claims and header fields with HS256, as a holder of the secret could.
    fn hand_signed(secret: &[u8], header: serde_json::Value, claims: serde_json::Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let secret = b"secret-secret-secret-secret-1234";
        let mut body = serde_json::to_value(claims()).unwrap();
        let header = serde_json::json!({ "alg": "HS256", "typ": ACCESS_TOKEN_TYP, "kid": "api-1" });
        body["nbf"] = serde_json::json!(chrono::Utc::now().timestamp() + 600);
        let early = hand_signed(secret, header.clone(), body.clone());
        let due_at = chrono::Utc::now().timestamp() - 1;
        body["nbf"] = serde_json::json!(due_at);
        let due = hand_signed(secret, header, body);
        let key = TokenKey::SharedSecret(secret);

        assert!(verify_access_token(&early, key, "https://id.example.com").is_err());
        // Kept with the claims, for introspection to report.
        assert_eq!(verify_access_token(&due, key, "https://id.example.com").unwrap().nbf, Some(due_at));
    }

    #[test]
    fn a_header_with_critical_extensions_is_refused() {
        let secret = b"secret-secret-secret-secret-1234";
        let key = TokenKey::SharedSecret(secret);
        let body = serde_json::to_value(claims()).unwrap();
        for crit in [serde_json::json!(["exp"]), serde_json::json!(["b64"]), serde_json::json!([])] {
            let header = serde_json::json!({ "alg": "HS256", "typ": ACCESS_TOKEN_TYP, "kid": "api-1", "crit": crit, "b64": true });
            let token = hand_signed(secret, header, body.clone());

            assert!(verify_access_token(&token, key, "https://id.example.com").is_err(), "{crit}");
            assert!(PresentedJws::parse(&token).is_none(), "{crit}");
        }
    }

    #[test]
    fn an_expired_token_is_refused_without_leeway() {
        let mut expired = claims();
        expired.exp = chrono::Utc::now().timestamp() - 1;
        let token = sign_hs256(b"secret-secret-secret-secret-1234", "api-1", ACCESS_TOKEN_TYP, &expired);
        let key = TokenKey::SharedSecret(b"secret-secret-secret-secret-1234");
        assert!(verify_access_token(&token, key, "https://id.example.com").is_err());
    }
}

/// Every token presented to introspection, userinfo or the token endpoint passes through
/// here before anything else knows who sent it.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    const SECRET: &[u8] = b"secret-secret-secret-secret-1234";
    const ISSUER: &str = "https://id.example.com";

    fn claims() -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({ "iss": ISSUER, "sub": "user-1", "aud": "https://api.example.com", "exp": now + 60,
                "iat": now, "jti": "jti-1", "client_id": "client-1", "scope": "read" })
    }

    fn signed(header: &Value, claims: &Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, SECRET), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Headers a forger would try: other algorithms (`none` among them), other types,
    /// critical extensions, and fields nobody asked for.
    fn header() -> impl Strategy<Value = Value> {
        let alg = prop_oneof![Just("HS256"), Just("none"), Just("RS256"), Just("HS512"), Just("hs256"), Just("")];
        let typ = prop_oneof![Just(Some(ACCESS_TOKEN_TYP)), Just(Some("JWT")), Just(Some("AT+JWT")), Just(None)];
        let crit =
            prop_oneof![Just(None), Just(Some(json!([]))), Just(Some(json!(["exp"]))), Just(Some(json!("b64"))),];
        let extra = prop::option::of(("ext_[a-z]{1,5}", "[ -~]{0,8}"));
        (alg, typ, crit, extra).prop_map(|(alg, typ, crit, extra)| {
            let mut header = json!({ "alg": alg, "kid": "api-1" });
            if let Some(typ) = typ {
                header["typ"] = json!(typ);
            }
            if let Some(crit) = crit {
                header["crit"] = crit;
            }
            if let Some((name, value)) = extra {
                header[name] = json!(value);
            }
            header
        })
    }

    proptest! {
        #[test]
        fn garbage_is_refused_without_a_panic(token in prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_=+/-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,20}",
            prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| format!("{}.e30.", URL_SAFE_NO_PAD.encode(bytes))),
        ]) {
            let key = TokenKey::SharedSecret(SECRET);
            prop_assert!(verify_access_token(&token, key, ISSUER).is_err());
            let _ = PresentedJws::parse(&token).map(|presented| presented.kid().map(str::len));
        }

        /// Only one header shape passes: the key's own algorithm, the access-token type, no
        /// `crit`. Whatever else the signer wrote there, the token is refused.
        #[test]
        fn only_an_understood_header_passes(header in header()) {
            let token = signed(&header, &claims());
            let passed = verify_access_token(&token, TokenKey::SharedSecret(SECRET), ISSUER).is_ok();
            let understood = header["alg"] == "HS256" && header["typ"] == ACCESS_TOKEN_TYP && header.get("crit").is_none();
            prop_assert_eq!(passed, understood, "{}", header);
            if header.get("crit").is_some() {
                prop_assert!(PresentedJws::parse(&token).is_none());
            }
        }

        /// Changing any one character of a good token, anywhere, breaks it.
        #[test]
        fn no_single_character_can_be_changed(at in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.-]") {
            let header = json!({ "alg": "HS256", "typ": ACCESS_TOKEN_TYP, "kid": "api-1" });
            let token = signed(&header, &claims());
            let position = at.index(token.len());
            prop_assume!(token[position..position + 1] != *replacement);
            let mut altered = token.clone();
            altered.replace_range(position..position + 1, &replacement);
            prop_assert!(verify_access_token(&altered, TokenKey::SharedSecret(SECRET), ISSUER).is_err());
        }
    }
}
