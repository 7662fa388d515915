//! The hot functions of the token path: signing an access token with each algorithm (our
//! signer over a cached key pair against `jsonwebtoken::encode`), verifying one, the keyed
//! hash that authenticates a client secret, the argon2id check of a sign-in, and what the
//! `verify` library costs a microservice per token.
//!
//! cargo bench --bench signing

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey::crypto::MasterKey;
use latchkey::domain::SigningAlgorithm;
use latchkey::tokens::AccessTokenClaims;
use latchkey::tokens::jwt::{self, ACCESS_TOKEN_TYP, TokenKey};
use latchkey::tokens::keys::{KeyPair, generate_key};
use latchkey::tokens::keyset::ActiveKey;
use latchkey::verify::Verifier;

fn claims() -> AccessTokenClaims {
    let now = chrono::Utc::now().timestamp();
    AccessTokenClaims {
        iss: "https://id.example.com".into(),
        sub: "vSI2P9TuE6eIpPThehEo12JX".into(),
        aud: "https://api.example.com".into(),
        exp: now + 3600,
        iat: now,
        jti: "34b4cfcd-7e5c-4b68-9e7c-915a14306a40".into(),
        client_id: "vSI2P9TuE6eIpPThehEo12JX".into(),
        scope: Some("read write".into()),
        auth_time: None,
        acr: None,
        amr: None,
        nbf: None,
    }
}

fn active_key(algorithm: SigningAlgorithm) -> (Arc<ActiveKey>, latchkey::tokens::keys::GeneratedKey) {
    let generated = generate_key(algorithm).unwrap();
    let pair = KeyPair::from_pkcs8(algorithm, &generated.pkcs8).unwrap();
    (Arc::new(ActiveKey { kid: generated.jwk.kid.clone(), algorithm, pair }), generated)
}

/// jsonwebtoken signs RSA from PKCS#1; a 2048-bit PKCS#8 document wraps it after a fixed
/// 26-byte header (version, rsaEncryption algorithm identifier, octet-string header).
fn pkcs1_of(pkcs8: &[u8]) -> &[u8] {
    assert_eq!(&pkcs8[4..7], &[0x02, 0x01, 0x00], "a PKCS#8 v1 document");
    &pkcs8[26..]
}

fn signing(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("sign_access_token");
    for algorithm in SigningAlgorithm::ALL {
        let (key, generated) = active_key(algorithm);
        group.bench_function(format!("{algorithm}/latchkey"), |b| {
            b.iter(|| jwt::sign(black_box(&key), ACCESS_TOKEN_TYP, black_box(&claims)))
        });
        if algorithm == SigningAlgorithm::RS256 {
            // The two-core ceiling as measured, not as twice one core: both cores sign at
            // once, each half of the signatures; the time reported is the wall time per
            // signature, so the ceiling is its inverse.
            group.bench_function(format!("{algorithm}/latchkey, two threads"), |b| {
                b.iter_custom(|signatures| {
                    let (key, claims) = (&key, &claims);
                    let started = std::time::Instant::now();
                    std::thread::scope(|scope| {
                        for share in [signatures / 2, signatures - signatures / 2] {
                            scope.spawn(move || {
                                for _ in 0..share {
                                    black_box(jwt::sign(black_box(key), ACCESS_TOKEN_TYP, black_box(claims)));
                                }
                            });
                        }
                    });
                    started.elapsed()
                })
            });
        }
        let encoding = match algorithm {
            SigningAlgorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_der(pkcs1_of(&generated.pkcs8)),
            SigningAlgorithm::ES256 => jsonwebtoken::EncodingKey::from_ec_der(&generated.pkcs8),
            SigningAlgorithm::EdDSA => jsonwebtoken::EncodingKey::from_ed_der(&generated.pkcs8),
        };
        let mut header = jsonwebtoken::Header::new(algorithm.jsonwebtoken());
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(key.kid.clone());
        // Same input, same output format: check once that both verify, then race them.
        let theirs = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let parsed = TokenKey::Published(&generated.jwk.verifying_key().unwrap());
        let issuer = "https://id.example.com";
        jwt::verify_access_token(&theirs, parsed, issuer).unwrap();
        jwt::verify_access_token(&jwt::sign(&key, ACCESS_TOKEN_TYP, &claims), parsed, issuer).unwrap();
        group.bench_function(format!("{algorithm}/jsonwebtoken_encode"), |b| {
            b.iter(|| jsonwebtoken::encode(black_box(&header), black_box(&claims), &encoding).unwrap())
        });
    }
    let secret = b"0123456789abcdef0123456789abcdef0123456789a";
    group.bench_function("HS256/latchkey", |b| {
        b.iter(|| jwt::sign_hs256(black_box(secret), "api-id", ACCESS_TOKEN_TYP, black_box(&claims)))
    });
    group.finish();
}

fn verification(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("verify_access_token");
    for algorithm in SigningAlgorithm::ALL {
        let (key, generated) = active_key(algorithm);
        let token = jwt::sign(&key, ACCESS_TOKEN_TYP, &claims);
        let parsed = generated.jwk.verifying_key().unwrap();
        group.bench_function(algorithm.as_str(), |b| {
            b.iter(|| {
                jwt::verify_access_token(black_box(&token), TokenKey::Published(&parsed), "https://id.example.com")
                    .unwrap()
            })
        });
        // The same checks through jsonwebtoken, which parses the key for every token.
        let decoding = generated.jwk.decoding_key().unwrap();
        let mut validation = jsonwebtoken::Validation::new(algorithm.jsonwebtoken());
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&["https://id.example.com"]);
        group.bench_function(format!("{algorithm}/jsonwebtoken_decode"), |b| {
            b.iter(|| jsonwebtoken::decode::<AccessTokenClaims>(black_box(&token), &decoding, &validation).unwrap())
        });
    }
    group.finish();
}

/// What a microservice pays per request: the `verify` library's full check (header, key by
/// kid, algorithm, signature, typ, iss, aud, exp, nbf, claims) against the bare signature
/// verification of the same crypto library, for RS256 and HS256.
fn microservice_verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let claims = claims();
    let mut group = c.benchmark_group("microservice_verify");
    let (key, generated) = active_key(SigningAlgorithm::RS256);
    let rs_token = jwt::sign(&key, ACCESS_TOKEN_TYP, &claims);
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(serde_json::to_value(&generated.jwk).unwrap()).unwrap();
    let jwks = jsonwebtoken::jwk::JwkSet { keys: vec![jwk.clone()] };
    let rs_verifier = Verifier::with_jwks(&claims.iss, &claims.aud, &jwks);
    let secret = b"0123456789abcdef0123456789abcdef";
    let hs_token = jwt::sign_hs256(secret, "api-1", ACCESS_TOKEN_TYP, &claims);
    let hs_verifier = Verifier::with_shared_secret(&claims.iss, &claims.aud, secret);
    let cases = [
        (
            "RS256",
            &rs_token,
            &rs_verifier,
            jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
            jsonwebtoken::Algorithm::RS256,
        ),
        (
            "HS256",
            &hs_token,
            &hs_verifier,
            jsonwebtoken::DecodingKey::from_secret(secret),
            jsonwebtoken::Algorithm::HS256,
        ),
    ];
    for (name, token, verifier, decoding, algorithm) in cases {
        assert!(runtime.block_on(verifier.verify(token)).is_ok(), "{name} verifies");
        group.bench_function(format!("{name}/verifier"), |b| {
            b.iter(|| runtime.block_on(verifier.verify(black_box(token))).unwrap())
        });
        let (message, signature) = token.rsplit_once('.').unwrap();
        group.bench_function(format!("{name}/signature only"), |b| {
            b.iter(|| {
                jsonwebtoken::crypto::verify(black_box(signature), message.as_bytes(), &decoding, algorithm).unwrap()
            })
        });
    }
    group.finish();
}

fn client_secret_check(c: &mut Criterion) {
    let hasher = MasterKey::generate().token_hasher();
    let secret = latchkey::crypto::random_token::<32>();
    let stored = hasher.hash(&secret);
    c.bench_function("client_secret/hmac_verify", |b| {
        b.iter(|| assert!(hasher.verify(black_box(&secret), black_box(stored.as_str()))))
    });
}

/// A sign-in's password check: argon2id at OWASP's parameters, what a login costs a core.
fn password_check(c: &mut Criterion) {
    let passwords = latchkey::passwords::PasswordHasher::new();
    let stored = passwords.hash("correct horse battery staple").unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(20);
    group.bench_function("argon2id_verify", |b| {
        b.iter(|| assert!(passwords.verify(black_box("correct horse battery staple"), Some(stored.as_str()))))
    });
    group.finish();
}

criterion_group!(benches, signing, verification, microservice_verification, client_secret_check, password_check);
criterion_main!(benches);
