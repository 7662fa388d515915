//! The key set in memory: one active key per algorithm (parsed once, for signing), the
//! JWKS document (serialised once), and the keys that verify. Reloaded from the database
//! periodically, so a rotation made by the CLI or by another instance is picked up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use anyhow::Context;
use chrono::NaiveDateTime;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::keys::{KeyPair, PublicJwk, VerifyingKey};
use crate::crypto::Sealer;
use crate::db::DbConnection;
use crate::db::signing_keys::{SigningKeyRow, list_published_keys};
use crate::domain::SigningAlgorithm;

/// A key that signs: its private half parsed and held in memory.
pub struct ActiveKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub pair: KeyPair,
}

impl std::fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveKey").field("kid", &self.kid).field("algorithm", &self.algorithm).finish()
    }
}

pub struct KeySet {
    active: HashMap<SigningAlgorithm, Arc<ActiveKey>>,
    verifying: HashMap<String, Verifying>,
    jwks: Bytes,
}

/// A published key as each verifier wants it: parsed once for access tokens (the hot
/// path), as jsonwebtoken's key for ID-token hints.
pub struct Verifying {
    pub parsed: VerifyingKey,
    pub decoding: DecodingKey,
}

impl Verifying {
    /// The only algorithm the key may be used with.
    pub fn algorithm(&self) -> Algorithm {
        self.parsed.algorithm().jsonwebtoken()
    }
}

#[derive(serde::Serialize)]
struct Jwks<'a> {
    keys: &'a [PublicJwk],
}

impl KeySet {
    /// Reads the published keys; unseals only the newest active key of each algorithm.
    pub fn load(conn: &mut DbConnection, sealer: &Sealer, now: NaiveDateTime) -> anyhow::Result<Self> {
        let rows = list_published_keys(conn, now).context("could not read the signing keys")?;
        Self::from_rows(&rows, sealer)
    }

    fn from_rows(rows: &[SigningKeyRow], sealer: &Sealer) -> anyhow::Result<Self> {
        let mut active = HashMap::new();
        let mut verifying = HashMap::new();
        let mut published = Vec::with_capacity(rows.len());
        for row in rows {
            let algorithm: SigningAlgorithm =
                row.algorithm.parse().map_err(anyhow::Error::msg).context("a stored signing key is unusable")?;
            let jwk: PublicJwk = serde_json::from_str(&row.public_jwk)
                .with_context(|| format!("the public JWK of key {} is malformed", row.kid))?;
            let decoding = jwk.decoding_key().with_context(|| format!("key {} cannot verify", row.kid))?;
            let parsed = jwk.verifying_key().with_context(|| format!("key {} cannot verify", row.kid))?;
            anyhow::ensure!(
                parsed.algorithm() == algorithm,
                "the public JWK of key {} is not for {algorithm}",
                row.kid
            );
            verifying.insert(row.kid.clone(), Verifying { parsed, decoding });
            published.push(jwk);
            // Rows come newest first: the first unretired key of an algorithm signs.
            if row.retired_at.is_none() && !active.contains_key(&algorithm) {
                let der = sealer
                    .open(&row.private_key_sealed, &SigningKeyRow::seal_context(&row.kid))
                    .with_context(|| format!("signing key {} cannot be opened with this master key", row.kid))?;
                let pair = KeyPair::from_pkcs8(algorithm, &der)?;
                active.insert(algorithm, Arc::new(ActiveKey { kid: row.kid.clone(), algorithm, pair }));
            }
        }
        let jwks = serde_json::to_vec(&Jwks { keys: &published }).context("could not serialise the JWKS")?;
        Ok(Self { active, verifying, jwks: Bytes::from(jwks) })
    }

    pub fn active(&self, algorithm: SigningAlgorithm) -> Option<&Arc<ActiveKey>> {
        self.active.get(&algorithm)
    }

    /// The verification key for `kid`.
    pub fn verifying_key(&self, kid: &str) -> Option<&Verifying> {
        self.verifying.get(kid)
    }

    /// `{"keys": [...]}`, newest first.
    pub fn jwks_json(&self) -> Bytes {
        self.jwks.clone()
    }
}

/// The current key set, swapped whole on reload; readers never wait on a reload.
///
/// Reloads can overlap (the periodic one, one on a missing key, one after a rotation).
/// Each takes a generation number before it reads the database, and only a set from a
/// later read than the installed one replaces it: a slow reload that started before a
/// rotation cannot put the old keys back.
pub struct KeyStore {
    current: RwLock<(u64, Arc<KeySet>)>,
    next_generation: AtomicU64,
    last_reload_for_unknown_kid: Mutex<Option<Instant>>,
}

/// At most one reload a second for tokens naming a kid we do not hold: enough to catch up
/// with another instance at once, too few for forged kids to load the database.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

impl KeyStore {
    pub fn new(set: KeySet) -> Self {
        Self {
            current: RwLock::new((0, Arc::new(set))),
            next_generation: AtomicU64::new(1),
            last_reload_for_unknown_kid: Mutex::new(None),
        }
    }

    /// Whether a token naming an unknown kid may trigger a reload now; if so, the next
    /// one may only after `UNKNOWN_KID_RELOAD_INTERVAL`.
    pub fn may_reload_for_unknown_kid(&self, now: Instant) -> bool {
        let mut last = self.last_reload_for_unknown_kid.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let allowed = last.is_none_or(|last| now.saturating_duration_since(last) >= UNKNOWN_KID_RELOAD_INTERVAL);
        if allowed {
            *last = Some(now);
        }
        allowed
    }

    pub fn current(&self) -> Arc<KeySet> {
        // A poisoned lock still holds a complete key set: replacing it is one assignment.
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).1.clone()
    }

    /// Call before reading the keys from the database; pass the result to `install`.
    pub fn begin_load(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::SeqCst)
    }

    /// Installs `set` unless a set read later is already installed.
    pub fn install(&self, generation: u64, set: KeySet) {
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if generation > current.0 {
            *current = (generation, Arc::new(set));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_set(marker: &str) -> KeySet {
        KeySet { active: HashMap::new(), verifying: HashMap::new(), jwks: Bytes::from(marker.to_owned()) }
    }

    #[test]
    fn a_reload_that_started_earlier_never_overwrites_a_later_one() {
        let store = KeyStore::new(empty_set("initial"));
        let slow = store.begin_load();
        let fast = store.begin_load();

        store.install(fast, empty_set("after rotation"));
        store.install(slow, empty_set("before rotation"));

        assert_eq!(store.current().jwks_json(), "after rotation");
    }

    #[test]
    fn unknown_kids_trigger_at_most_one_reload_a_second() {
        let store = KeyStore::new(empty_set("initial"));
        let start = Instant::now();

        let allowed: Vec<bool> = [0, 10, 999, 1000, 1500, 2000]
            .into_iter()
            .map(|ms| store.may_reload_for_unknown_kid(start + Duration::from_millis(ms)))
            .collect();

        assert_eq!(allowed, [true, false, false, true, false, true]);
    }
}
