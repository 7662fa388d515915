//! JWTs a registered client signs itself (RFC 7523): client authentication at the token,
//! introspection and revocation endpoints (`client_secret_jwt`, `private_key_jwt`), the
//! JWT-bearer grant, and the guides' "sign a JWT with your client secret" on the management
//! API. Verification is pure: the caller loads the client and opens its sealed secret.
//!
//! The key is the client's, chosen by the client's registration and never by the token: HS256
//! only with a `client_secret_jwt` client's secret; RS256, ES256 or EdDSA only with a key of
//! that type from a `private_key_jwt` client's JWK Set. `alg: none`, an HS256 token "signed"
//! with a public key, an HMAC key smuggled into a JWK Set, or an unknown `kid` never verify.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::TokenHolder;
use crate::db::DbConnection;
use crate::db::clients::{AUTH_METHOD_PRIVATE_KEY_JWT, AUTH_METHOD_SECRET_JWT, Client};
use crate::db::users::{User, find_user};
use crate::domain::Scopes;
use crate::error::AppError;
use crate::state::AppState;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What a `private_key_jwt` client may sign with, as metadata lists them.
pub const KEY_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Clocks differ: `exp`, `nbf` and `iat` are allowed this much slack.
const LEEWAY_SECS: i64 = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct ClientJwtClaims {
    pub iss: String,
    pub sub: String,
    /// One audience or several (RFC 7519 §4.1.3).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub jti: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// What the caller requires of a client's JWT.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// `aud` must name one of these.
    pub audiences: &'a [&'a str],
    /// `exp` no further from now than this (RFC 7523 §3: a short-lived assertion).
    pub max_lifetime_secs: i64,
    /// A `jti` is required (assertions used once; the caller records it).
    pub require_jti: bool,
}

/// The client a JWT claims to come from (`iss`), before anything in it is trusted: only to
/// know whose key to check it with.
pub fn claimed_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Issuer>(&json).ok().map(|claims| claims.iss)
}

/// Why a client's JWT was refused: said to the client (nothing about the key or secret
/// beyond "does not verify") and recorded in the audit log.
pub type Refused = &'static str;

/// The refusal of an expired JWT, which callers answer apart (`token_expired`).
pub const EXPIRED: Refused = "the JWT has expired";

/// What a client's JWTs are checked with: a `client_secret_jwt` client's secret, or a
/// `private_key_jwt` client's public keys (registered by value, or fetched from its
/// `jwks_uri`). Callers resolve it with [`resolve_key_material`].
pub enum KeyMaterial {
    Secret(Vec<u8>),
    Keys(std::sync::Arc<JwkSet>),
    None,
}

/// Resolves what `client`'s JWT `token` is checked with: its secret opened, its key set
/// parsed, or fetched from its `jwks_uri` (from the cache, or again for a `kid` the cached set
/// lacks). A `jwks_uri` that cannot be used is a refusal; the detail goes to the log.
pub async fn resolve_key_material(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<Result<KeyMaterial, Refused>, AppError> {
    use crate::remote_jwks::FetchError;
    if let Some(local) = local_key_material(&state.sealer, client)? {
        return Ok(local);
    }
    let Some(uri) = client.jwks_uri.as_deref() else { return Ok(Ok(KeyMaterial::None)) };
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|header| header.kid);
    Ok(match state.remote_jwks.keys(uri, kid.as_deref()).await {
        Ok(keys) => Ok(KeyMaterial::Keys(keys)),
        Err(error) => {
            tracing::warn!(client_id = %client.client_id, %error, "a client's jwks_uri could not be used");
            Err(match error {
                FetchError::NotAllowed(_) => "the client's jwks_uri is not allowed: https to a public address only",
                FetchError::Unreachable(_) => "the client's jwks_uri could not be fetched",
                FetchError::TooLarge => "the client's jwks_uri answered more than 64 KiB",
                FetchError::NotAJwkSet => "the client's jwks_uri did not answer a JWK Set",
            })
        }
    })
}

/// The key material at hand without fetching anything (the sealed secret, registered keys,
/// or none at all); `None` when the keys are at the client's `jwks_uri`.
pub fn local_key_material(
    sealer: &crate::crypto::Sealer,
    client: &Client,
) -> Result<Option<Result<KeyMaterial, Refused>>, AppError> {
    if let Some(secret) = secret_of(sealer, client)? {
        return Ok(Some(Ok(KeyMaterial::Secret(secret))));
    }
    if let Some(jwks) = client.jwks.as_deref() {
        return Ok(Some(
            serde_json::from_str(jwks)
                .map(|keys| KeyMaterial::Keys(std::sync::Arc::new(keys)))
                .map_err(|_| "the client has no usable keys"),
        ));
    }
    Ok(client.jwks_uri.is_none().then_some(Ok(KeyMaterial::None)))
}

fn decoding_key(
    client: &Client,
    material: &KeyMaterial,
    header: &jsonwebtoken::Header,
) -> Result<DecodingKey, Refused> {
    match (client.token_endpoint_auth_method.as_str(), header.alg) {
        (AUTH_METHOD_SECRET_JWT, Algorithm::HS256) => match material {
            KeyMaterial::Secret(secret) => Ok(DecodingKey::from_secret(secret)),
            _ => Err("the client has no secret to check the JWT with"),
        },
        (AUTH_METHOD_PRIVATE_KEY_JWT, alg) if KEY_ALGORITHMS.contains(&alg) => {
            let KeyMaterial::Keys(keys) = material else { return Err("the client has no usable keys") };
            let key = match &header.kid {
                Some(kid) => keys.find(kid).ok_or("the JWT names a key (kid) the client has not registered")?,
                None => match keys.keys.iter().filter(|k| suits(k, alg)).collect::<Vec<_>>()[..] {
                    [only] => only,
                    _ => return Err("the JWT must name its key (kid): the client has several"),
                },
            };
            if !suits(key, alg) {
                return Err("the JWT's algorithm does not match the key it names");
            }
            DecodingKey::from_jwk(key).map_err(|_| "the client's key cannot be used")
        }
        (AUTH_METHOD_SECRET_JWT, _) => Err("a client_secret_jwt client signs with HS256"),
        (AUTH_METHOD_PRIVATE_KEY_JWT, _) => Err("a private_key_jwt client signs with RS256, ES256 or EdDSA"),
        _ => Err("the client is not registered to sign JWTs (client_secret_jwt or private_key_jwt)"),
    }
}

/// Whether `key` is a public key of the type `alg` needs (never an HMAC key).
pub fn suits(key: &Jwk, alg: Algorithm) -> bool {
    let type_fits = match &key.algorithm {
        AlgorithmParameters::RSA(_) => alg == Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => {
            alg == Algorithm::ES256 && ec.curve == jsonwebtoken::jwk::EllipticCurve::P256
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            alg == Algorithm::EdDSA && okp.curve == jsonwebtoken::jwk::EllipticCurve::Ed25519
        }
        _ => false,
    };
    let declared = key.common.key_algorithm.map(|a| a.to_string());
    type_fits && declared.is_none_or(|declared| declared == format!("{alg:?}"))
}

/// Verifies a JWT that `client` signed: its key, `iss` (the client), `aud`, `exp` (soon),
/// `nbf`, and a `jti` when required. `sub` is the caller's to judge.
pub fn verify(
    token: &str,
    client: &Client,
    material: &KeyMaterial,
    expect: Expectations<'_>,
    now: i64,
) -> Result<ClientJwtClaims, Refused> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "the JWT is malformed")?;
    if header.crit.is_some() {
        return Err("the JWT has critical header extensions, which Latchkey does not understand");
    }
    let key = decoding_key(client, material, &header)?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECS.unsigned_abs();
    validation.validate_nbf = true;
    validation.set_issuer(&[&client.client_id]);
    validation.set_audience(expect.audiences);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
    let claims = jsonwebtoken::decode::<ClientJwtClaims>(token, &key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => EXPIRED,
                ErrorKind::ImmatureSignature => "the JWT is not valid yet (nbf)",
                ErrorKind::InvalidAudience => "the JWT's aud does not name this endpoint or API",
                ErrorKind::InvalidIssuer => "the JWT's iss is not the client",
                ErrorKind::MissingRequiredClaim(_) => "the JWT lacks iss, sub, aud or exp",
                ErrorKind::InvalidSignature => "the JWT's signature does not verify",
                _ => "the JWT is malformed or its signature does not verify",
            }
        })?
        .claims;
    if claims.exp - now > expect.max_lifetime_secs + LEEWAY_SECS {
        return Err("the JWT lives too long: its exp must be within its allowed lifetime of now");
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err("the JWT was issued in the future (iat)");
    }
    if expect.require_jti && claims.jti.as_deref().is_none_or(str::is_empty) {
        return Err("the JWT needs a jti, so that it is used once");
    }
    Ok(claims)
}

/// Records that `client` used the assertion `jti`, which expires at `exp`: `false` if it
/// was used before, on any instance (through Redis when configured, else the database).
/// The pair is kept as a keyed hash: a `jti` is the client's, and says nothing to anyone.
pub async fn first_use(state: &AppState, client_id: &str, jti: &str, exp: i64) -> Result<bool, AppError> {
    // Named by client and jti: one client's jti never collides with another's. Claimed under
    // every master key held (one, but for a rotation), so that instances on either side of
    // a rotation see the same use: a use is the first only if every name was still free.
    let names = state.hasher.presented(&format!("assertion\0{client_id}\0{jti}"));
    let mut first = true;
    for name in names.iter() {
        first &= claim(state, name, exp).await?;
    }
    Ok(first)
}

async fn claim(state: &AppState, name: &str, exp: i64) -> Result<bool, AppError> {
    if let Some(first) = state.limiter.first_use(name, exp).await {
        return Ok(first);
    }
    let expires_at = chrono::DateTime::from_timestamp(exp, 0).unwrap_or_default().naive_utc();
    let name = name.to_owned();
    crate::db::run(&state.pool, move |conn| Ok(crate::db::used_assertions::claim_assertion(conn, &name, expires_at)?))
        .await
}

/// Opens a `client_secret_jwt` client's sealed secret, to check its JWTs with.
pub fn secret_of(sealer: &crate::crypto::Sealer, client: &Client) -> Result<Option<Vec<u8>>, AppError> {
    let Some(sealed) = client.secret_sealed.as_deref() else { return Ok(None) };
    let secret = sealer.open(sealed, &Client::seal_context(&client.id)).map_err(|e| {
        AppError::Unexpected(anyhow::Error::new(e).context(format!("the secret of client {}", client.client_id)))
    })?;
    Ok(Some(secret))
}

/// Whom a client's JWT speaks for, and the most it may be granted for an audience.
#[derive(Debug, Clone)]
pub struct Speaker {
    pub holder: TokenHolder,
    /// The user, when `sub` names one.
    pub user: Option<User>,
    /// For the client itself, its registered scopes; for a user, what the user consented to
    /// the client having for the audience, within those.
    pub scopes: Scopes,
}

/// Judges `sub` of a verified client JWT for `audience`: the client itself; or a user, only
/// for a client an owner allowed to act for users, only while the user is active, and only
/// within what the user consented to the client having for that audience.
pub fn speaks_for(
    conn: &mut DbConnection,
    client: &Client,
    sub: &str,
    audience: &str,
) -> Result<Result<Speaker, Refused>, AppError> {
    if sub == client.client_id {
        return Ok(Ok(Speaker { holder: TokenHolder::Client, user: None, scopes: client.allowed_scopes() }));
    }
    if !client.acts_for_users {
        return Ok(Err("the JWT's sub names someone else, and this client may not act for users"));
    }
    let Some(user) = find_user(conn, sub)?.filter(User::is_active) else {
        return Ok(Err("the JWT's sub is not an active user"));
    };
    let Some(consent) = crate::db::consents::find_consent(conn, &user.id, &client.client_id, audience)? else {
        return Ok(Err("the user has not let this client act for them with this API"));
    };
    let consented = Scopes::parse(&consent.scope).unwrap_or_default().intersection(&client.allowed_scopes());
    Ok(Ok(Speaker { holder: TokenHolder::User(user.id.clone()), user: Some(user), scopes: consented }))
}

/// Parses a JWK Set a client registers: public keys only, each of a type Latchkey verifies
/// (RSA, P-256, Ed25519), each with a `kid` when there are several.
pub fn parse_jwks(value: &serde_json::Value) -> Result<JwkSet, String> {
    let keys: JwkSet = serde_json::from_value(value.clone()).map_err(|e| format!("jwks is not a JWK Set: {e}"))?;
    if keys.keys.is_empty() {
        return Err("jwks has no keys".into());
    }
    let private = ["d", "p", "q", "dp", "dq", "qi", "k"];
    for (index, key) in value["keys"].as_array().into_iter().flatten().enumerate() {
        if private.iter().any(|field| key.get(field).is_some()) {
            return Err(format!("jwks key {index} holds private material: register public keys only"));
        }
    }
    for (index, key) in keys.keys.iter().enumerate() {
        if !KEY_ALGORITHMS.iter().any(|alg| suits(key, *alg)) {
            return Err(format!(
                "jwks key {index} is not an RSA, P-256 or Ed25519 public key for RS256, ES256 or EdDSA"
            ));
        }
        if DecodingKey::from_jwk(key).is_err() {
            return Err(format!("jwks key {index} cannot be read"));
        }
        if keys.keys.len() > 1 && key.common.key_id.as_deref().is_none_or(str::is_empty) {
            return Err(format!("jwks key {index} needs a kid: with several keys, each JWT names its key"));
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const SECRET: &[u8] = b"a-client-secret-of-plenty-of-bytes";

    fn client(method: &str, jwks: Option<&str>) -> Client {
        Client {
            id: "row".into(),
            tenant_id: "t".into(),
            team_id: None,
            client_id: "c1".into(),
            name: "c".into(),
            secret_hash: None,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            token_endpoint_auth_method: method.into(),
            grant_types: "client_credentials".into(),
            scopes: String::new(),
            audiences: String::new(),
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            created_at: chrono::NaiveDateTime::default(),
            updated_at: chrono::NaiveDateTime::default(),
            permissions: String::new(),
            secret_sealed: None,
            jwks: jwks.map(str::to_owned),
            acts_for_users: false,
            jwks_uri: None,
            refresh_retry_secs: 0,
        }
    }

    const EXPECT: Expectations<'static> =
        Expectations { audiences: &["https://id.example.com"], max_lifetime_secs: 300, require_jti: true };

    fn claims(now: i64) -> serde_json::Value {
        json!({ "iss": "c1", "sub": "c1", "aud": "https://id.example.com", "exp": now + 60, "iat": now, "jti": "j1" })
    }

    fn hs256(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    #[test]
    fn a_secret_jwt_verifies_with_the_secret_and_its_claims_are_checked() {
        let now = chrono::Utc::now().timestamp();
        let secret_client = client(AUTH_METHOD_SECRET_JWT, None);
        assert_eq!(
            verify(&hs256(&claims(now)), &secret_client, &KeyMaterial::Secret(SECRET.to_vec()), EXPECT, now)
                .unwrap()
                .sub,
            "c1"
        );

        let wrong = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims(now);
            change(&mut c);
            verify(&hs256(&c), &secret_client, &KeyMaterial::Secret(SECRET.to_vec()), EXPECT, now).unwrap_err()
        };
        assert_eq!(wrong(&|c| c["exp"] = json!(now - 60)), "the JWT has expired");
        assert!(wrong(&|c| c["exp"] = json!(now + 3600)).contains("lives too long"));
        assert!(wrong(&|c| c["aud"] = json!("https://other.example.com")).contains("aud"));
        assert!(wrong(&|c| c["iss"] = json!("c2")).contains("iss"));
        assert!(wrong(&|c| c["iat"] = json!(now + 600)).contains("future"));
        assert!(wrong(&|c| c["nbf"] = json!(now + 600)).contains("nbf"));
        assert!(wrong(&|c| c.as_object_mut().unwrap().remove("jti").map(drop).unwrap()).contains("jti"));
        assert!(
            verify(&hs256(&claims(now)), &secret_client, &KeyMaterial::Secret(b"another secret".to_vec()), EXPECT, now)
                .is_err()
        );
        // The same JWT against a client that does not sign with a secret.
        assert!(
            verify(
                &hs256(&claims(now)),
                &client("client_secret_basic", None),
                &KeyMaterial::Secret(SECRET.to_vec()),
                EXPECT,
                now
            )
            .is_err()
        );
    }

    #[test]
    fn none_and_hmac_keys_in_a_jwks_never_verify() {
        let now = chrono::Utc::now().timestamp();
        let oct = json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0", "kid": "k" }] }).to_string();
        let smuggled = client(AUTH_METHOD_PRIVATE_KEY_JWT, Some(&oct));
        let header = Header { kid: Some("k".into()), ..Header::new(Algorithm::HS256) };
        let token = jsonwebtoken::encode(&header, &claims(now), &EncodingKey::from_secret(b"secret")).unwrap();
        assert!(
            verify(
                &token,
                &smuggled,
                &KeyMaterial::Keys(std::sync::Arc::new(serde_json::from_str(&oct).unwrap())),
                EXPECT,
                now
            )
            .is_err()
        );
        assert!(parse_jwks(&serde_json::from_str(&oct).unwrap()).is_err());

        use base64::Engine;
        let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let unsigned = format!("{}.{}.", b64(json!({ "alg": "none" })), b64(claims(now)));
        assert!(
            verify(
                &unsigned,
                &client(AUTH_METHOD_SECRET_JWT, None),
                &KeyMaterial::Secret(SECRET.to_vec()),
                EXPECT,
                now
            )
            .is_err()
        );
        assert_eq!(claimed_issuer(&unsigned).as_deref(), Some("c1"));
    }
}
