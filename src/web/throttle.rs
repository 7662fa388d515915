//! Slows password guessing: failed sign-ins are counted per account and per client address
//! on the rate limiter, so that with Redis every instance sees the same counts. Unknown
//! emails are counted like known ones, so the limit reveals nothing about which accounts
//! exist. Only failures count; a success clears the account's count.

use std::time::Duration;

use crate::crypto::TokenHasher;
use crate::ratelimit::{Limits, RateLimiter};

/// Five failures at once, then one more every three minutes.
pub const ACCOUNT_LIMITS: Limits = Limits { per_hour: Some(20), burst: 5 };
/// Fifty failures at once from one address (many accounts), then one every 18 seconds.
pub const ADDRESS_LIMITS: Limits = Limits { per_hour: Some(200), burst: 50 };

/// The buckets an attempt counts against. Emails and addresses enter them only as keyed
/// hashes: the limiter, and Redis, hold no personal data.
pub struct SignInSubjects {
    account: String,
    address: String,
}

impl SignInSubjects {
    pub fn new(hasher: &TokenHasher, email: &str, address: &str) -> Self {
        Self {
            account: format!("signin:account:{}", hasher.hash(email).as_str()),
            address: format!("signin:address:{}", hasher.hash(address).as_str()),
        }
    }

    fn each(&self) -> [(&str, Limits); 2] {
        [(&self.account, ACCOUNT_LIMITS), (&self.address, ADDRESS_LIMITS)]
    }
}

/// `Err(wait)` while the account or the address has no failures left.
pub async fn check(limiter: &RateLimiter, subjects: &SignInSubjects) -> Result<(), Duration> {
    let mut wait = None;
    for (subject, limits) in subjects.each() {
        let decision = limiter.peek(subject, limits).await;
        if !decision.allowed {
            wait = wait.max(Some(decision.retry_after));
        }
    }
    wait.map_or(Ok(()), |seconds| Err(Duration::from_secs(seconds)))
}

pub async fn record_failure(limiter: &RateLimiter, subjects: &SignInSubjects) {
    for (subject, limits) in subjects.each() {
        limiter.check(subject, limits).await;
    }
}

/// A successful sign-in clears the account's count, not the address's: one right password
/// must not buy an address fifty more guesses at other accounts.
pub async fn clear(limiter: &RateLimiter, subjects: &SignInSubjects) {
    limiter.forget(&subjects.account).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;

    fn subjects(email: &str, address: &str) -> SignInSubjects {
        SignInSubjects::new(&MasterKey::generate().token_hasher(), email, address)
    }

    #[tokio::test]
    async fn an_account_is_refused_after_its_failures_and_waits_minutes() {
        let hasher = MasterKey::generate().token_hasher();
        let limiter = RateLimiter::in_process();
        let ada = SignInSubjects::new(&hasher, "ada@example.com", "10.0.0.1");
        for _ in 0..ACCOUNT_LIMITS.burst {
            assert!(check(&limiter, &ada).await.is_ok());
            record_failure(&limiter, &ada).await;
        }

        let from_elsewhere = SignInSubjects::new(&hasher, "ada@example.com", "10.0.0.2");
        let wait = check(&limiter, &from_elsewhere).await.unwrap_err();
        assert!((Duration::from_secs(170)..=Duration::from_secs(180)).contains(&wait), "{wait:?}");
        let bob = SignInSubjects::new(&hasher, "bob@example.com", "10.0.0.1");
        assert!(check(&limiter, &bob).await.is_ok(), "other accounts are unaffected");
    }

    #[tokio::test]
    async fn an_address_is_refused_after_many_accounts_fail_from_it() {
        let hasher = MasterKey::generate().token_hasher();
        let limiter = RateLimiter::in_process();
        for i in 0..ADDRESS_LIMITS.burst {
            record_failure(&limiter, &SignInSubjects::new(&hasher, &format!("user{i}@example.com"), "10.0.0.9")).await;
        }

        assert!(check(&limiter, &SignInSubjects::new(&hasher, "fresh@example.com", "10.0.0.9")).await.is_err());
        assert!(check(&limiter, &SignInSubjects::new(&hasher, "fresh@example.com", "10.0.0.8")).await.is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_account_count_but_not_the_address() {
        let limiter = RateLimiter::in_process();
        let ada = subjects("ada@example.com", "10.0.0.1");
        for _ in 0..ACCOUNT_LIMITS.burst {
            record_failure(&limiter, &ada).await;
        }

        clear(&limiter, &ada).await;

        assert!(check(&limiter, &ada).await.is_ok());
        let address = limiter.peek(&ada.address, ADDRESS_LIMITS).await;
        assert_eq!(address.remaining, ADDRESS_LIMITS.burst - ACCOUNT_LIMITS.burst - 1);
    }

    #[test]
    fn no_email_or_address_appears_in_a_bucket_name() {
        let subjects = subjects("ada@example.com", "10.0.0.1");
        for (name, _) in subjects.each() {
            assert!(!name.contains("ada") && !name.contains("10.0.0.1"), "{name}");
        }
    }
}
