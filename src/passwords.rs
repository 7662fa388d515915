//! Passwords people choose: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane),
//! stored as PHC strings so that the parameters can be raised later without a migration.
//! Never used for server-generated secrets (see `crypto`).

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};

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
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        Self::validate(password)?;
        Ok(self.hash_unchecked(password))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new();
        let stored = hasher.hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(hasher.verify("correct horse battery", Some(&stored)));
        assert!(!hasher.verify("correct horse battery!", Some(&stored)));
        assert_ne!(hasher.hash("correct horse battery").unwrap(), stored, "salted");
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
}
