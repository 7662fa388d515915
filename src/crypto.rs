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
//! A process may hold several master keys (`MasterKeyRing`) so that the key can be rotated
//! without downtime: new hashes, tags and seals use the current key; what was made under an
//! older one is still found, verified and opened. Keyed hashes cannot be recomputed under a
//! new key (the secrets are not stored), so an old key stays for as long as what it hashed
//! must keep working; sealed rows are re-sealed (`manage::master_keys`).
//!
//! Floor: leaves (docs/architecture.md); names nothing of the app.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{aead, hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use subtle::{Choice, ConstantTimeEq};

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

    /// The key's public name: a fingerprint under its own derived key, so that nothing
    /// about the key can be learnt from it. Shown by `latchkey config`, recorded in the
    /// database (`master_keys`) and named in every refusal.
    pub fn id(&self) -> MasterKeyId {
        let fingerprint = self.derive(b"key id");
        MasterKeyId(fingerprint[..6].iter().fold(String::from("mk_"), |mut id, byte| {
            id.push_str(&format!("{byte:02x}"));
            id
        }))
    }

    /// A ring of this key alone.
    pub fn ring(&self) -> Arc<MasterKeyRing> {
        MasterKeyRing::of(vec![DerivedKeys::of(self)])
    }

    /// The token hasher of a ring of this key alone (tests and tools).
    pub fn token_hasher(&self) -> TokenHasher {
        self.ring().token_hasher()
    }

    /// The issuance hasher of a ring of this key alone (tests and tools).
    pub fn issuance_hasher(&self) -> TokenHasher {
        self.ring().issuance_hasher()
    }

    /// The sealer of a ring of this key alone (tests and tools).
    pub fn sealer(&self) -> Sealer {
        self.ring().sealer()
    }
}

/// A master key's public name, `mk_` and twelve hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct MasterKeyId(String);

impl MasterKeyId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one master key is used as, derived once.
struct DerivedKeys {
    id: MasterKeyId,
    token_hash: hmac::Key,
    issuance: hmac::Key,
    sealing: aead::LessSafeKey,
}

impl DerivedKeys {
    fn of(key: &MasterKey) -> Self {
        let sealing =
            aead::UnboundKey::new(&aead::AES_256_GCM, &key.derive(b"sealing")).expect("32 bytes is an AES-256 key");
        Self {
            id: key.id(),
            token_hash: hmac::Key::new(hmac::HMAC_SHA256, &key.derive(b"token hash")),
            // A key of its own, so that a tag can never double as a stored hash or the reverse.
            issuance: hmac::Key::new(hmac::HMAC_SHA256, &key.derive(b"access token issuance")),
            sealing: aead::LessSafeKey::new(sealing),
        }
    }
}

/// Every master key this process holds: the configured one (`LATCHKEY_MASTER_KEY`) first,
/// then the previous ones. One of them is current, used for everything new; which one is
/// the database's to say (`manage::master_keys`), so that instances restarted with a new
/// key keep writing with the old one until the rotation, and agree with those not yet
/// restarted. Until told, the configured key is current.
pub struct MasterKeyRing {
    keys: Vec<DerivedKeys>,
    current: AtomicUsize,
}

impl fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeyRing").field("ids", &self.ids()).field("current", self.current_id()).finish()
    }
}

impl MasterKeyRing {
    /// The configured key and the previous ones; a key given twice is held once.
    pub fn new(configured: &MasterKey, previous: &[MasterKey]) -> Arc<Self> {
        let mut keys: Vec<DerivedKeys> = Vec::with_capacity(1 + previous.len());
        for key in std::iter::once(configured).chain(previous) {
            let derived = DerivedKeys::of(key);
            if !keys.iter().any(|held| held.id == derived.id) {
                keys.push(derived);
            }
        }
        Self::of(keys)
    }

    fn of(keys: Vec<DerivedKeys>) -> Arc<Self> {
        Arc::new(Self { keys, current: AtomicUsize::new(0) })
    }

    /// The configured keys, or the development key file (see `MasterKey::configured_or_dev`)
    /// with no previous keys; `true` in the second case.
    pub fn configured_or_dev(
        configured: Option<&SecretString>,
        previous: &[SecretString],
    ) -> Result<(Arc<Self>, bool), MasterKeyError> {
        let (key, is_dev) = MasterKey::configured_or_dev(configured)?;
        let previous =
            previous.iter().map(|key| MasterKey::parse(key.expose_secret())).collect::<Result<Vec<_>, _>>()?;
        Ok((Self::new(&key, &previous), is_dev))
    }

    /// Every key's id, the configured key's first.
    pub fn ids(&self) -> Vec<MasterKeyId> {
        self.keys.iter().map(|key| key.id.clone()).collect()
    }

    /// The id of `LATCHKEY_MASTER_KEY`, which a rotation makes current.
    pub fn configured_id(&self) -> &MasterKeyId {
        &self.keys[0].id
    }

    pub fn current_id(&self) -> &MasterKeyId {
        &self.current().id
    }

    pub fn holds(&self, id: &str) -> bool {
        self.keys.iter().any(|key| key.id.as_str() == id)
    }

    /// Makes `id` the key for everything new; `false` (and nothing changes) when this ring
    /// does not hold it.
    pub fn use_for_new(&self, id: &str) -> bool {
        match self.keys.iter().position(|key| key.id.as_str() == id) {
            Some(index) => {
                self.current.store(index, Ordering::Release);
                true
            }
            None => false,
        }
    }

    fn current(&self) -> &DerivedKeys {
        &self.keys[self.current.load(Ordering::Acquire)]
    }

    /// The current key first, then the others in ring order.
    fn current_first(&self) -> impl Iterator<Item = &DerivedKeys> {
        let current = self.current.load(Ordering::Acquire);
        std::iter::once(&self.keys[current])
            .chain(self.keys.iter().enumerate().filter(move |(i, _)| *i != current).map(|(_, key)| key))
    }

    pub fn token_hasher(self: &Arc<Self>) -> TokenHasher {
        TokenHasher { ring: self.clone(), purpose: HashPurpose::StoredSecret }
    }

    /// Keys the proof that Latchkey issued an HS256 token (`tokens::issuance`).
    pub fn issuance_hasher(self: &Arc<Self>) -> TokenHasher {
        TokenHasher { ring: self.clone(), purpose: HashPurpose::Issuance }
    }

    pub fn sealer(self: &Arc<Self>) -> Sealer {
        Sealer(self.clone())
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

#[derive(Clone, Copy)]
enum HashPurpose {
    StoredSecret,
    Issuance,
}

/// HMAC-SHA256 under a key derived from each master key of the ring.
#[derive(Clone)]
pub struct TokenHasher {
    ring: Arc<MasterKeyRing>,
    purpose: HashPurpose,
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHasher(<hidden>)")
    }
}

impl TokenHasher {
    fn key<'a>(&self, keys: &'a DerivedKeys) -> &'a hmac::Key {
        match self.purpose {
            HashPurpose::StoredSecret => &keys.token_hash,
            HashPurpose::Issuance => &keys.issuance,
        }
    }

    fn hash_with(&self, keys: &DerivedKeys, secret: &str) -> TokenHash {
        TokenHash(URL_SAFE_NO_PAD.encode(hmac::sign(self.key(keys), secret.as_bytes())))
    }

    /// The hash to store for a new secret: under the current key.
    pub fn hash(&self, secret: &str) -> TokenHash {
        self.hash_with(self.ring.current(), secret)
    }

    /// The hashes a presented secret may be stored under, one per key, the current key's
    /// first: what a lookup tries (`PresentedHashes::find`).
    pub fn presented(&self, secret: &str) -> PresentedHashes {
        PresentedHashes(self.ring.current_first().map(|keys| self.hash_with(keys, secret)).collect())
    }

    /// Whether `secret` hashes to `stored` under any key of the ring, compared in constant
    /// time (every key is tried, whichever matches).
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        let mut matched = Choice::from(0);
        for keys in self.ring.current_first() {
            matched |= self.hash_with(keys, secret).0.as_bytes().ct_eq(stored.as_bytes());
        }
        matched.into()
    }
}

/// The hashes of one presented secret under every master key held, the current key's first.
/// With one key (the usual case) a lookup is one query, as before rotations existed.
#[derive(Clone)]
pub struct PresentedHashes(Vec<TokenHash>);

impl fmt::Debug for PresentedHashes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresentedHashes(<hidden>)")
    }
}

impl PresentedHashes {
    /// Runs `lookup` with each hash in turn and returns the first thing it finds. Each hash
    /// is an exact-match index lookup, so the secret is never compared byte by byte.
    pub fn find<T, E>(&self, mut lookup: impl FnMut(&str) -> Result<Option<T>, E>) -> Result<Option<T>, E> {
        for hash in &self.0 {
            if let Some(found) = lookup(hash.as_str())? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The hash under the current key: what a cache of found secrets is keyed by (a keyed
    /// hash, so an exact-match map lookup tells no more than the database's index would).
    pub fn current(&self) -> &str {
        self.0[0].as_str()
    }

    /// Every hash, the current key's first.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(TokenHash::as_str)
    }

    /// Whether `stored` is one of them: the presented secret is the one stored.
    pub fn contains(&self, stored: &str) -> bool {
        self.iter().any(|hash| hash == stored)
    }

    /// Whether `check` holds for one of them, tried in turn like `find`: a test of a row,
    /// or a change that reports whether it matched one.
    pub fn any<E>(&self, mut check: impl FnMut(&str) -> Result<bool, E>) -> Result<bool, E> {
        Ok(self.find(|hash| check(hash).map(|held| held.then_some(())))?.is_some())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened: wrong master key or corrupted row")]
pub struct UnsealError;

/// AES-256-GCM with a random nonce per message; `context` binds the ciphertext to its row
/// (as associated data), so a sealed value copied into another row will not open. Seals
/// under the ring's current key; opens under any key it holds.
#[derive(Clone)]
pub struct Sealer(Arc<MasterKeyRing>);

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
            .current()
            .sealing
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
        self.open_noting_key(sealed, context).map(|(plaintext, _)| plaintext)
    }

    /// Opens `sealed` and says under which key it was sealed.
    pub fn open_noting_key(&self, sealed: &[u8], context: &str) -> Result<(Vec<u8>, MasterKeyId), UnsealError> {
        if sealed.len() < aead::NONCE_LEN {
            return Err(UnsealError);
        }
        let (nonce, ciphertext) = sealed.split_at(aead::NONCE_LEN);
        for keys in self.0.current_first() {
            let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| UnsealError)?;
            let mut in_out = ciphertext.to_vec();
            if let Ok(plaintext) = keys.sealing.open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut in_out) {
                return Ok((plaintext.to_vec(), keys.id.clone()));
            }
        }
        Err(UnsealError)
    }

    /// The ring this sealer belongs to.
    pub fn ring(&self) -> &Arc<MasterKeyRing> {
        &self.0
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
    fn a_key_id_names_the_key_and_reveals_nothing_of_it() {
        let key = MasterKey::generate();
        let id = key.id();
        assert_eq!(id, MasterKey::parse(&key.encode()).unwrap().id());
        assert_ne!(id, MasterKey::generate().id());
        assert!(id.as_str().starts_with("mk_") && id.as_str().len() == 15, "{id}");
        assert!(!key.encode().contains(&id.as_str()[3..]));
    }

    #[test]
    fn a_ring_hashes_and_seals_with_the_current_key_and_accepts_every_key() {
        let (old, new) = (MasterKey::generate(), MasterKey::generate());
        let before = old.ring();
        let stored = before.token_hasher().hash("rt_secret");
        let sealed = before.sealer().seal(b"totp", "totp_factors/u1");
        let tag = before.issuance_hasher().hash("claims");

        let ring = MasterKeyRing::new(&new, &[MasterKey::parse(&old.encode()).unwrap()]);
        assert_eq!(ring.ids(), vec![new.id(), old.id()]);
        let (hasher, sealer) = (ring.token_hasher(), ring.sealer());
        // Until the database says otherwise, the configured key is current.
        assert_eq!(hasher.hash("rt_secret"), new.token_hasher().hash("rt_secret"));
        assert!(hasher.verify("rt_secret", stored.as_str()));
        assert!(ring.issuance_hasher().verify("claims", tag.as_str()));
        assert!(!ring.issuance_hasher().verify("claims", stored.as_str()), "purposes stay apart");
        let presented = hasher.presented("rt_secret");
        let found = presented.find(|hash| Ok::<_, ()>((hash == stored.as_str()).then_some("row"))).unwrap();
        assert_eq!(found, Some("row"));
        assert_eq!(sealer.open_noting_key(&sealed, "totp_factors/u1").unwrap(), (b"totp".to_vec(), old.id()));
        let resealed = sealer.seal(b"totp", "totp_factors/u1");
        assert!(old.sealer().open(&resealed, "totp_factors/u1").is_err());

        // Told to use the old key, the same ring writes as the old key did.
        assert!(ring.use_for_new(old.id().as_str()));
        assert_eq!(ring.current_id(), &old.id());
        assert_eq!(hasher.hash("rt_secret"), stored);
        assert!(!ring.use_for_new(MasterKey::generate().id().as_str()));
        assert_eq!(ring.current_id(), &old.id(), "an unknown id changes nothing");
    }

    #[test]
    fn a_key_given_twice_is_held_once() {
        let key = MasterKey::generate();
        let again = MasterKey::parse(&key.encode()).unwrap();
        assert_eq!(MasterKeyRing::new(&key, &[again]).ids(), vec![key.id()]);
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
