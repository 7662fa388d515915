//! Passwords people choose: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane),
//! stored as PHC strings so that the parameters can be raised later without a migration.
//! Never used for server-generated secrets (see `crypto`).
//!
//! Each check holds 19 MiB and a core for tens of milliseconds, and anyone can ask for one
//! by posting the sign-in form. [`Passwords`] is the server's only door to that work: a few
//! checks at once (one per core), a short queue, and past it a refusal the caller answers
//! with 503 and `Retry-After`, so that a flood costs neither the machine's memory nor the
//! database pool (the work runs outside any database trip).
//!
//! Floor: leaves (docs/architecture.md); names only `crypto`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::random_bytes;

/// OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Long enough to resist guessing (NIST SP 800-63B §3.1.1.2), short enough to bound the
/// work one request can ask for.
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 1024;

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// Verified against when the account does not exist, so that an unknown email costs
    /// the same time as a wrong password.
    decoy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHasher(argon2id)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("the password must be at most {MAX_LENGTH} characters")]
    TooLong,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    pub fn new() -> Self {
        let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("OWASP's argon2 parameters are valid");
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self { argon2, decoy: String::new() };
        hasher.decoy = hasher.hash_unchecked(&crate::crypto::random_token::<16>());
        hasher
    }

    pub fn validate(password: &str) -> Result<(), PasswordError> {
        match password.chars().count() {
            n if n < MIN_LENGTH => Err(PasswordError::TooShort),
            n if n > MAX_LENGTH => Err(PasswordError::TooLong),
            _ => Ok(()),
        }
    }

    /// The PHC string of a validated password (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub fn hash(&self, password: &str) -> Result<PasswordHash, PasswordError> {
        Self::validate(password)?;
        Ok(PasswordHash(self.hash_unchecked(password)))
    }

    fn hash_unchecked(&self, password: &str) -> String {
        let salt = random_bytes::<16>();
        self.argon2
            .hash_password_with_salt(password.as_bytes(), &salt)
            .expect("argon2id with a 16-byte salt and valid parameters cannot fail")
            .to_string()
    }

    /// Whether `password` matches `stored`; `None` (no such account, or no password set)
    /// spends the same effort and answers false.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        if password.len() > MAX_LENGTH * 4 {
            return false;
        }
        match stored {
            Some(stored) => self.argon2.verify_password(password.as_bytes(), stored).is_ok(),
            None => {
                let _ = self.argon2.verify_password(password.as_bytes(), self.decoy.as_str());
                false
            }
        }
    }
}

/// A password as stored: the PHC string of a password that passed [`PasswordHasher::validate`].
/// Only hashing makes one, so whatever takes it cannot be handed a password in the clear.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<hidden>)")
    }
}

/// Every password check is busy and the queue is full: ask the caller to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks are in progress; try again in a second")]
pub struct Busy;

/// The bounded door to password work (see the module comment).
pub struct Passwords {
    hasher: Arc<PasswordHasher>,
    running: tokio::sync::Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("available", &self.running.available_permits())
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

/// Takes a place in the queue, and gives it back however the wait ends (the request may
/// be dropped while it waits).
struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Passwords {
    /// At most `parallel` checks at once and `max_waiting` more in line.
    pub fn new(hasher: PasswordHasher, parallel: usize, max_waiting: usize) -> Self {
        Self {
            hasher: Arc::new(hasher),
            running: tokio::sync::Semaphore::new(parallel.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// One check per core, and a queue of eight per core: at about 25 ms a check, the last
    /// in line waits a quarter of a second.
    pub fn for_this_machine(hasher: PasswordHasher) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::new(hasher, cores, 8 * cores)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let _permit = match self.running.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(Busy);
                }
                let _in_queue = InQueue(&self.waiting);
                self.running.acquire().await.map_err(|_| Busy)?
            }
        };
        let hasher = self.hasher.clone();
        // The permit is held until the work is done, even if the request goes away meanwhile:
        // the blocking thread cannot be stopped, so its memory still counts.
        tokio::task::spawn_blocking(move || work(&hasher)).await.map_err(|_| Busy)
    }

    /// [`PasswordHasher::verify`], bounded.
    pub async fn verify(&self, password: SecretString, stored: Option<String>) -> Result<bool, Busy> {
        self.run(move |hasher| hasher.verify(password.expose_secret(), stored.as_deref())).await
    }

    /// [`PasswordHasher::hash`], bounded; a password too short or too long costs nothing.
    pub async fn hash(&self, password: SecretString) -> Result<Result<PasswordHash, PasswordError>, Busy> {
        if let Err(invalid) = PasswordHasher::validate(password.expose_secret()) {
            return Ok(Err(invalid));
        }
        self.run(move |hasher| hasher.hash(password.expose_secret())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new();
        let stored = hasher.hash("correct horse battery").unwrap().as_str().to_owned();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(hasher.verify("correct horse battery", Some(&stored)));
        assert!(!hasher.verify("correct horse battery!", Some(&stored)));
        assert_ne!(hasher.hash("correct horse battery").unwrap().as_str(), stored, "salted");
    }

    #[test]
    fn unknown_accounts_and_garbage_hashes_never_verify() {
        let hasher = PasswordHasher::new();
        assert!(!hasher.verify("anything at all", None));
        assert!(!hasher.verify("anything at all", Some("not a phc string")));
    }

    #[test]
    fn length_limits_are_enforced() {
        assert_eq!(PasswordHasher::validate("short"), Err(PasswordError::TooShort));
        assert_eq!(PasswordHasher::validate(&"x".repeat(MAX_LENGTH + 1)), Err(PasswordError::TooLong));
        assert!(PasswordHasher::validate("eight ch").is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_past_the_running_and_waiting_ones_are_refused_at_once() {
        // One check at a time and one in line; a check is running.
        let passwords = Arc::new(Passwords::new(PasswordHasher::new(), 1, 1));
        let running = passwords.running.try_acquire().unwrap();
        let in_line = {
            let passwords = passwords.clone();
            tokio::spawn(async move { passwords.verify(SecretString::from("guess guess"), None).await })
        };
        while passwords.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }

        let refused = passwords.verify(SecretString::from("guess guess"), None).await;
        drop(running);

        assert_eq!(refused, Err(Busy));
        assert_eq!(in_line.await.unwrap(), Ok(false), "the one in line is checked when its turn comes");
        assert_eq!(passwords.waiting.load(Ordering::Acquire), 0, "the queue is empty again");
    }

    #[tokio::test]
    async fn a_request_that_goes_away_while_waiting_leaves_the_queue() {
        let passwords = Passwords::new(PasswordHasher::new(), 1, 1);
        let running = passwords.running.try_acquire().unwrap();

        let gave_up = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            passwords.verify(SecretString::from("guess guess"), None),
        )
        .await;
        drop(running);

        assert!(gave_up.is_err(), "it was still waiting");
        assert_eq!(passwords.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn invalid_passwords_are_refused_without_hashing() {
        let passwords = Passwords::new(PasswordHasher::new(), 1, 0);
        let _busy = passwords.running.acquire().await.unwrap();

        // No permit is free and no one may wait, yet the answer is the validation error.
        assert_eq!(
            passwords.hash(SecretString::from("short")).await.map(|r| r.err()),
            Ok(Some(PasswordError::TooShort))
        );
    }
}
