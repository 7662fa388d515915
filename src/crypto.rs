//! The master key and what is derived from it.
//!
//! Keys come out of `LATCHKEY_MASTER_KEY` by HKDF-SHA256, one per purpose, so that no use
//! can be turned against another:
//! - a keyed hash (HMAC-SHA256) for server-generated secrets: client secrets, API keys,
//!   authorization codes, refresh tokens. They carry 170+ bits of entropy, so a fast keyed
//!   hash is as safe as a slow one, and a stolen database alone cannot confirm a guess.
//!   argon2id is for passwords that people choose, never on the token path.
//! - an AEAD key (AES-256-GCM) that seals what the server must read back: private signing
//!   keys and HS256 shared secrets.
//! - a second HMAC key that tags the HS256 access tokens Latchkey issues (`tokens::issuance`).
//!
//! Floor: leaves (docs/architecture.md); names nothing of the app.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{aead, hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use subtle::ConstantTimeEq;

const MASTER_KEY_LEN: usize = 32;

/// Where a development master key is kept when none is configured.
pub const DEV_MASTER_KEY_FILE: &str = "latchkey-dev-master.key";

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("the master key must be 32 bytes, base64 or hex encoded (e.g. `openssl rand -base64 32`)")]
    Malformed,
    #[error("could not read or write {path}: {source}")]
    File { path: String, source: std::io::Error },
}

/// The root secret. Never logged, never stored in the database.
pub struct MasterKey(SecretBox<[u8; MASTER_KEY_LEN]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<hidden>)")
    }
}

impl MasterKey {
    /// Accepts 32 bytes as standard or URL-safe base64 (padded or not) or as hex.
    pub fn parse(encoded: &str) -> Result<Self, MasterKeyError> {
        let encoded = encoded.trim();
        let bytes = if encoded.len() == 2 * MASTER_KEY_LEN && encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..MASTER_KEY_LEN)
                .map(|i| u8::from_str_radix(&encoded[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| MasterKeyError::Malformed)?
        } else {
            STANDARD
                .decode(encoded)
                .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')))
                .map_err(|_| MasterKeyError::Malformed)?
        };
        let key: [u8; MASTER_KEY_LEN] = bytes.try_into().map_err(|_| MasterKeyError::Malformed)?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    pub fn generate() -> Self {
        Self(SecretBox::new(Box::new(random_bytes::<MASTER_KEY_LEN>())))
    }

    /// Standard base64, the form `parse` reads back.
    pub fn encode(&self) -> String {
        STANDARD.encode(self.0.expose_secret())
    }

    /// The configured key, or the development key file beside the working directory,
    /// created on first use. The caller warns loudly in the second case.
    pub fn configured_or_dev(configured: Option<&SecretString>) -> Result<(Self, bool), MasterKeyError> {
        match configured {
            Some(value) => Ok((Self::parse(value.expose_secret())?, false)),
            None => Ok((Self::load_or_create_dev_file(Path::new(DEV_MASTER_KEY_FILE))?, true)),
        }
    }

    fn load_or_create_dev_file(path: &Path) -> Result<Self, MasterKeyError> {
        let file_error = |source| MasterKeyError::File { path: path.display().to_string(), source };
        match fs::read_to_string(path) {
            Ok(contents) => Self::parse(&contents),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(file_error)?;
                writeln!(file, "{}", key.encode()).map_err(file_error)?;
                Ok(key)
            }
            Err(e) => Err(file_error(e)),
        }
    }

    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"latchkey master key v1");
        let prk = salt.extract(self.0.expose_secret());
        let info = [purpose];
        let okm = prk.expand(&info, hkdf::HKDF_SHA256).expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut out = [0u8; 32];
        okm.fill(&mut out).expect("the output buffer matches the requested length");
        out
    }

    pub fn token_hasher(&self) -> TokenHasher {
        TokenHasher(hmac::Key::new(hmac::HMAC_SHA256, &self.derive(b"token hash")))
    }

    /// Keys the proof that Latchkey issued an HS256 token (`tokens::issuance`): a key of its
    /// own, so that a tag can never double as a stored hash or the reverse.
    pub fn issuance_hasher(&self) -> TokenHasher {
        TokenHasher(hmac::Key::new(hmac::HMAC_SHA256, &self.derive(b"access token issuance")))
    }

    pub fn sealer(&self) -> Sealer {
        let key =
            aead::UnboundKey::new(&aead::AES_256_GCM, &self.derive(b"sealing")).expect("32 bytes is an AES-256 key");
        Sealer::from_key(aead::LessSafeKey::new(key))
    }
}

/// The keyed hash of a server-generated secret, as stored (base64url, no padding).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<hidden>)")
    }
}

/// HMAC-SHA256 under a key derived from the master key.
#[derive(Clone)]
pub struct TokenHasher(hmac::Key);

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHasher(<hidden>)")
    }
}

impl TokenHasher {
    pub fn hash(&self, secret: &str) -> TokenHash {
        TokenHash(URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, secret.as_bytes())))
    }

    /// Whether `secret` hashes to `stored`, compared in constant time.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        self.hash(secret).0.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened: wrong master key or corrupted row")]
pub struct UnsealError;

/// AES-256-GCM with a random nonce per message; `context` binds the ciphertext to its row
/// (as associated data), so a sealed value copied into another row will not open.
#[derive(Clone)]
pub struct Sealer(std::sync::Arc<aead::LessSafeKey>);

impl Sealer {
    fn from_key(key: aead::LessSafeKey) -> Self {
        Self(std::sync::Arc::new(key))
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(<hidden>)")
    }
}

impl Sealer {
    /// Returns `nonce || ciphertext || tag`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Vec<u8> {
        let nonce_bytes = random_bytes::<{ aead::NONCE_LEN }>();
        let mut in_out = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce_bytes),
                aead::Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&in_out);
        sealed
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, UnsealError> {
        if sealed.len() < aead::NONCE_LEN {
            return Err(UnsealError);
        }
        let (nonce, ciphertext) = sealed.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| UnsealError)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext =
            self.0.open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut in_out).map_err(|_| UnsealError)?;
        Ok(plaintext.to_vec())
    }
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).expect("the system random number generator failed");
    bytes
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from [0-9A-Za-z] (about 5.95 bits each).
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes::<64>() {
            // 248 = 4 * 62: rejecting the top values keeps every character equally likely.
            if byte < 248 && out.len() < len {
                out.push(BASE62[usize::from(byte % 62)] as char);
            }
        }
    }
    out
}

/// A URL-safe secret of `N` random bytes.
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_round_trips_through_base64_and_accepts_hex() {
        let key = MasterKey::generate();
        let again = MasterKey::parse(&key.encode()).unwrap();
        assert_eq!(key.token_hasher().hash("x"), again.token_hasher().hash("x"));
        assert!(MasterKey::parse(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::parse("too short").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([0u8; 16])).is_err());
    }

    #[test]
    fn token_hash_depends_on_the_master_key() {
        let secret = "sk_test_example";
        let a = MasterKey::generate().token_hasher();
        let b = MasterKey::generate().token_hasher();
        assert_ne!(a.hash(secret), b.hash(secret));
        assert!(a.verify(secret, a.hash(secret).as_str()));
        assert!(!a.verify("sk_test_other", a.hash(secret).as_str()));
    }

    #[test]
    fn sealed_data_opens_only_with_its_key_and_context() {
        let key = MasterKey::generate();
        let sealer = key.sealer();
        let sealed = sealer.seal(b"private key", "signing_keys/abc");
        assert_eq!(sealer.open(&sealed, "signing_keys/abc").unwrap(), b"private key");
        assert!(sealer.open(&sealed, "signing_keys/other").is_err());
        assert!(MasterKey::generate().sealer().open(&sealed, "signing_keys/abc").is_err());
        assert!(sealer.open(&sealed[..5], "signing_keys/abc").is_err());
    }

    #[test]
    fn base62_tokens_have_the_requested_length_and_alphabet() {
        let token = random_base62(40);
        assert_eq!(token.len(), 40);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(random_base62(40), token);
    }

    #[test]
    fn the_dev_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.key");
        let first = MasterKey::load_or_create_dev_file(&path).unwrap();
        let second = MasterKey::load_or_create_dev_file(&path).unwrap();
        assert_eq!(first.encode(), second.encode());
    }
}
