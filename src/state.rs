//! `AppState`: what every handler may use, shared by all workers (the "shared" floor:
//! handlers depend on it, never on `startup`, which only builds and wires it).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use actix_web::web::Bytes;

use crate::access::Reach;
use crate::config::Settings;
use crate::crypto::{MasterKeyRing, Sealer, TokenHasher};
use crate::db::api_keys::{ApiKeyRow, KeyOwner, PendingTouches};
use crate::db::apis::Api;
use crate::db::changes::{Cached, Changes, Table, Tables};
use crate::db::clients::Client;
use crate::db::{self, DbPool};
use crate::domain::Issuer;
use crate::domain::SigningAlgorithm;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::passwords::Passwords;
use crate::ratelimit::RateLimiter;
use crate::tokens::keyset::ActiveKey;
use crate::tokens::{IssuanceProof, KeySet, KeyStore};

/// What every handler may use, shared by all workers.
pub struct AppState {
    pub pool: DbPool,
    pub issuer: Issuer,
    pub hasher: TokenHasher,
    pub sealer: Sealer,
    /// Tags the HS256 tokens Latchkey issues, so that its own endpoints know them.
    pub issuance: IssuanceProof,
    pub keys: Arc<KeyStore>,
    pub metadata: Bytes,
    /// The management API's OpenAPI document, with this deployment's endpoints: made when
    /// first asked for, as few servers are, rather than at every start.
    pub openapi: std::sync::OnceLock<Bytes>,
    pub settings: Settings,
    pub passwords: Passwords,
    pub limiter: RateLimiter,
    /// The key sets `private_key_jwt` clients publish at a `jwks_uri`, fetched and cached.
    pub remote_jwks: crate::remote_jwks::RemoteJwks,
    pub metrics: Metrics,
    /// Sends mail (password-reset links), or logs it when no SMTP server is configured.
    pub mailer: crate::mail::Mailer,
    /// The WebAuthn relying party for passkeys; `None` when the issuer's host is an IP
    /// address, for which browsers offer no passkeys.
    pub passkeys: Option<webauthn_rs::Webauthn>,
    /// What every request reads, kept while the database still says it.
    pub caches: Caches,
    /// Uses of API keys found in the cache, written each second.
    pub touches: PendingTouches,
}

/// The rows every request reads, kept between requests (`db::changes` says for how long).
/// Keys are what the request presents; none holds a secret in the clear.
#[derive(Debug)]
pub struct Caches {
    /// Live API keys, by the keyed hash of the presented key under the current master key.
    pub api_keys: Cached<String, KnownKey>,
    /// Clients by `client_id`, with their secrets' hashes.
    pub clients: Cached<String, Client>,
    /// APIs by audience; shared with the user grants' work on the blocking pool.
    pub apis: Arc<Cached<String, Api>>,
    /// APIs by id: an HS256 token's `kid` names its API, whose sealed secret checks it.
    pub apis_by_id: Cached<String, Api>,
    /// Whether the access token with this `jti` is revoked, as introspection asks.
    pub revocations: Cached<String, bool>,
}

/// How many of each are kept: more than a deployment's busy clients and keys, little memory.
const CACHE_CAPACITY: usize = 4096;

impl Caches {
    pub fn new(changes: &Arc<Changes>, metrics: &Metrics) -> Self {
        fn cache<V>(changes: &Arc<Changes>, metrics: &Metrics, name: &'static str, on: &[Table]) -> Cached<String, V> {
            Cached::new(changes.clone(), Tables::of(on), CACHE_CAPACITY).counted_in(metrics.cache_lookups(name))
        }
        let key_tables = [Table::ApiKeys, Table::Users, Table::ServiceAccounts, Table::Teams];
        Self {
            api_keys: cache(changes, metrics, "api_keys", &key_tables),
            clients: cache(changes, metrics, "clients", &[Table::Clients]),
            apis: Arc::new(cache(changes, metrics, "apis", &[Table::Apis])),
            apis_by_id: cache(changes, metrics, "apis_by_id", &[Table::Apis]),
            revocations: cache(changes, metrics, "revocations", &[Table::RevokedTokens]),
        }
    }
}

/// A live API key as its last read found it: the row, its owner, what it reaches.
#[derive(Debug)]
pub struct KnownKey {
    pub key: ApiKeyRow,
    pub owner: KeyOwner,
    pub reach: Reach,
    /// When its use was last noted (Unix seconds), so that a busy key is noted once a minute,
    /// not once a request.
    pub last_noted: AtomicI64,
}

impl KnownKey {
    pub fn new(key: ApiKeyRow, owner: KeyOwner, reach: Reach) -> Self {
        let last_noted = key.last_used_at.map_or(0, |at| at.and_utc().timestamp());
        Self { key, owner, reach, last_noted: AtomicI64::new(last_noted) }
    }

    /// Whether a use at `now` should be written: true once per `interval`, to one caller.
    pub fn should_note_use(&self, now: chrono::NaiveDateTime, interval: chrono::TimeDelta) -> bool {
        let now = now.and_utc().timestamp();
        let last = self.last_noted.load(Ordering::Relaxed);
        now - last >= interval.num_seconds()
            && self.last_noted.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

impl AppState {
    /// Rereads the signing keys and which master key is current, so rotations made
    /// elsewhere take effect here.
    pub async fn reload_keys(&self) -> Result<(), AppError> {
        let sealer = self.sealer.clone();
        let generation = self.keys.begin_load();
        let set = db::run(&self.pool, move |conn| {
            follow_master_key(conn, sealer.ring())?;
            Ok(KeySet::load(conn, &sealer, db::now())?)
        })
        .await?;
        self.keys.install(generation, set);
        Ok(())
    }

    /// The key set, reread first if it lacks `kid`: another instance (started at the same
    /// moment, or rotated ahead of our next periodic reload) may already sign with a key
    /// we have not loaded. Rate-limited, so forged kids cost no more than one read a second.
    pub async fn keys_knowing(&self, kid: &str) -> Result<Arc<KeySet>, AppError> {
        let keys = self.keys.current();
        if keys.verifying_key(kid).is_some() || !self.keys.may_reload_for_unknown_kid(std::time::Instant::now()) {
            return Ok(keys);
        }
        self.reload_keys().await?;
        Ok(self.keys.current())
    }

    /// The key that signs for `algorithm`. A key made since the last reload (by the CLI
    /// or another instance) is picked up here rather than failing the request.
    pub async fn active_key(&self, algorithm: SigningAlgorithm) -> Result<Arc<ActiveKey>, AppError> {
        if let Some(key) = self.keys.current().active(algorithm) {
            return Ok(key.clone());
        }
        self.reload_keys().await?;
        self.keys
            .current()
            .active(algorithm)
            .cloned()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("there is no active {algorithm} signing key")))
    }
}

/// Follows a master-key rotation (`latchkey master-key rotate`): from now on everything new
/// is hashed and sealed under the key the database names. A key this process does not hold
/// cannot be followed; it goes on with its current key, which every instance still accepts,
/// and says so at every reload until it is restarted with the new key.
fn follow_master_key(conn: &mut db::DbConnection, ring: &MasterKeyRing) -> diesel::QueryResult<()> {
    let Some(current) = db::master_keys::current_master_key(conn)? else { return Ok(()) };
    if current == ring.current_id().as_str() {
        return Ok(());
    }
    if ring.use_for_new(&current) {
        tracing::info!(master_key = %current, "the master key was rotated: new hashes and seals use it now");
    } else {
        tracing::error!(
            database = %current,
            held = ?ring.ids(),
            "the master key was rotated to one this process does not hold: restart it with that key as \
             LATCHKEY_MASTER_KEY (and this one among LATCHKEY_PREVIOUS_MASTER_KEYS)"
        );
    }
    Ok(())
}
