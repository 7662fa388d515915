//! Asymmetric signing keys: generation, PKCS#8 storage form, public JWK (RFC 7517) and
//! the RFC 7638 thumbprint that serves as `kid`.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::domain::SigningAlgorithm;

/// A public key as published in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub key_use: String,
    pub alg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

impl PublicJwk {
    /// The key to verify signatures with; the algorithm is the key's, never the token's.
    pub fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, jsonwebtoken::errors::Error> {
        let missing = || jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into();
        match self.kty.as_str() {
            "RSA" => jsonwebtoken::DecodingKey::from_rsa_components(
                self.n.as_deref().ok_or_else(missing)?,
                self.e.as_deref().ok_or_else(missing)?,
            ),
            "EC" => jsonwebtoken::DecodingKey::from_ec_components(
                self.x.as_deref().ok_or_else(missing)?,
                self.y.as_deref().ok_or_else(missing)?,
            ),
            "OKP" => jsonwebtoken::DecodingKey::from_ed_components(self.x.as_deref().ok_or_else(missing)?),
            _ => Err(missing()),
        }
    }
}

/// A published public key parsed once, with the one algorithm it verifies. jsonwebtoken
/// parses an RSA key again for every token and rebuilds the modulus' Montgomery constants
/// with it: a sixth of an RS256 verification (docs/benchmarks.md). The parsed key keeps them.
pub struct VerifyingKey {
    algorithm: SigningAlgorithm,
    key: ParsedPublicKey,
}

impl VerifyingKey {
    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// Whether `signature` is this key's JWS signature of `message` (RFC 7518 §3).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey").field("algorithm", &self.algorithm).finish()
    }
}

impl PublicJwk {
    /// The key parsed for verifying, for the algorithm the JWK names (`alg`), never the
    /// token's.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let rejected = |why: &str| KeyError::Rejected(format!("public key {}: {why}", self.kid));
        let algorithm: SigningAlgorithm = self.alg.parse().map_err(|_| rejected("unknown alg"))?;
        let member = |value: &Option<String>| {
            let value = value.as_deref().ok_or_else(|| rejected("a member is missing"))?;
            URL_SAFE_NO_PAD.decode(value).map_err(|_| rejected("a member is not base64url"))
        };
        let key = match (algorithm, self.kty.as_str()) {
            (SigningAlgorithm::RS256, "RSA") => RsaPublicKeyComponents { n: member(&self.n)?, e: member(&self.e)? }
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256),
            (SigningAlgorithm::ES256, "EC") => {
                // An uncompressed SEC1 point: 0x04 || x || y.
                let point = [vec![4], member(&self.x)?, member(&self.y)?].concat();
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            (SigningAlgorithm::EdDSA, "OKP") => ParsedPublicKey::new(&signature::ED25519, member(&self.x)?),
            _ => return Err(rejected("its kty does not fit its alg")),
        }
        .map_err(|e| rejected(&e.to_string()))?;
        Ok(VerifyingKey { algorithm, key })
    }
}

/// A freshly generated key: the private part as PKCS#8 DER (to be sealed) and its JWK.
pub struct GeneratedKey {
    pub algorithm: SigningAlgorithm,
    pub pkcs8: Vec<u8>,
    pub jwk: PublicJwk,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey").field("kid", &self.jwk.kid).field("pkcs8", &"<hidden>").finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generation,
    #[error("the stored private key was rejected: {0}")]
    Rejected(String),
}

pub fn generate_key(algorithm: SigningAlgorithm) -> Result<GeneratedKey, KeyError> {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    let pkcs8 = match algorithm {
        SigningAlgorithm::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generation)?;
            AsDer::<Pkcs8V1Der>::as_der(&pair).map_err(|_| KeyError::Generation)?.as_ref().to_vec()
        }
        SigningAlgorithm::ES256 => EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
        SigningAlgorithm::EdDSA => Ed25519KeyPair::generate()
            .and_then(|pair| pair.to_pkcs8())
            .map_err(|_| KeyError::Generation)?
            .as_ref()
            .to_vec(),
    };
    let pair = KeyPair::from_pkcs8(algorithm, &pkcs8)?;
    let jwk = pair.public_jwk(algorithm);
    Ok(GeneratedKey { algorithm, pkcs8, jwk })
}

/// A parsed private key, kept in memory so that signing does not re-parse it.
pub enum KeyPair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl KeyPair {
    pub fn from_pkcs8(algorithm: SigningAlgorithm, der: &[u8]) -> Result<Self, KeyError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| KeyError::Rejected(e.to_string());
        Ok(match algorithm {
            SigningAlgorithm::RS256 => Self::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
            SigningAlgorithm::ES256 => Self::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(rejected)?,
            ),
            SigningAlgorithm::EdDSA => Self::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
        })
    }

    /// The JWS signature of `message` (RFC 7518 §3: PKCS#1 v1.5 for RS256, r||s for ES256).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .expect("an RSA signature into a modulus-sized buffer cannot fail");
                signature
            }
            Self::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .expect("ECDSA signing with a valid key cannot fail")
                .as_ref()
                .to_vec(),
            Self::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    fn public_jwk(&self, algorithm: SigningAlgorithm) -> PublicJwk {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = PublicJwk {
            kty: String::new(),
            kid: String::new(),
            key_use: "sig".into(),
            alg: algorithm.as_str().into(),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
        };
        // RFC 7638 §3.2: the required members only, in lexicographic order, no spaces.
        let thumbprint_input = match self {
            Self::Rsa(pair) => {
                let public = pair.public_key();
                let n = b64(public.modulus().big_endian_without_leading_zero());
                let e = b64(public.exponent().big_endian_without_leading_zero());
                let input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                (jwk.kty, jwk.n, jwk.e) = ("RSA".into(), Some(n), Some(e));
                input
            }
            Self::Ecdsa(pair) => {
                // An uncompressed SEC1 point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                (jwk.kty, jwk.crv, jwk.x, jwk.y) = ("EC".into(), Some("P-256".into()), Some(x), Some(y));
                input
            }
            Self::Ed25519(pair) => {
                let x = b64(pair.public_key().as_ref());
                let input = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                (jwk.kty, jwk.crv, jwk.x) = ("OKP".into(), Some("Ed25519".into()), Some(x));
                input
            }
        };
        jwk.kid = b64(digest::digest(&digest::SHA256, thumbprint_input.as_bytes()).as_ref());
        jwk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_key_that_reloads_to_the_same_jwk() {
        for algorithm in SigningAlgorithm::ALL {
            let key = generate_key(algorithm).unwrap();
            let reloaded = KeyPair::from_pkcs8(algorithm, &key.pkcs8).unwrap();
            assert_eq!(reloaded.public_jwk(algorithm), key.jwk, "{algorithm}");
            assert_eq!(key.jwk.alg, algorithm.as_str());
        }
    }

    #[test]
    fn signatures_verify_with_the_published_jwk() {
        for algorithm in SigningAlgorithm::ALL {
            let key = generate_key(algorithm).unwrap();
            let pair = KeyPair::from_pkcs8(algorithm, &key.pkcs8).unwrap();
            let signature = URL_SAFE_NO_PAD.encode(pair.sign(b"header.payload"));
            let decoding = key.jwk.decoding_key().unwrap();
            let valid =
                jsonwebtoken::crypto::verify(&signature, b"header.payload", &decoding, algorithm.jsonwebtoken())
                    .unwrap();
            assert!(valid, "{algorithm}");
            let parsed = key.jwk.verifying_key().unwrap();
            let raw = pair.sign(b"header.payload");
            assert_eq!(parsed.algorithm(), algorithm);
            assert!(parsed.verifies(b"header.payload", &raw), "{algorithm}");
            assert!(!parsed.verifies(b"header.payloaD", &raw), "{algorithm}");
        }
    }

    /// A JWK whose `alg` names another kind of key is no key: the algorithm is never
    /// taken from anything but the key itself.
    #[test]
    fn a_jwk_whose_alg_and_kty_disagree_is_refused() {
        let mut jwk = generate_key(SigningAlgorithm::ES256).unwrap().jwk;
        jwk.alg = "RS256".into();
        assert!(jwk.verifying_key().is_err());
        jwk.alg = "HS256".into();
        assert!(jwk.verifying_key().is_err());
    }

    #[test]
    fn rsa_kid_is_the_rfc7638_thumbprint_of_the_rfc_example_key() {
        // RFC 7638 §3.1: the example key's thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let input = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, input.as_bytes()).as_ref());
        assert_eq!(kid, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
