//! Slows password guessing: sign-in attempts are counted per account, and failures per
//! client address, on the rate limiter, so that with Redis every instance sees the same
//! counts. Unknown emails are counted like known ones, so the limit reveals nothing about
//! which accounts exist. A success clears the account's count.

use std::time::Duration;

use crate::crypto::TokenHasher;
use crate::ratelimit::{Limits, RateLimiter};

/// Five attempts at once, then one more every three minutes.
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
}

/// Lets an attempt go on to the password check, or answers `Err(wait)`. The attempt is
/// counted against the account now, before the slow check, so that guesses sent in
/// parallel cannot all pass on one count; the address is only looked at, since many
/// people may rightly sign in from one address.
pub async fn admit(limiter: &RateLimiter, subjects: &SignInSubjects) -> Result<(), Duration> {
    let address = limiter.peek(&subjects.address, ADDRESS_LIMITS).await;
    if !address.allowed {
        return Err(Duration::from_secs(address.retry_after));
    }
    let account = limiter.check(&subjects.account, ACCOUNT_LIMITS).await;
    if !account.allowed {
        return Err(Duration::from_secs(account.retry_after));
    }
    Ok(())
}

/// Counts a failed attempt against the address (the account counted it on admission).
pub async fn record_failure(limiter: &RateLimiter, subjects: &SignInSubjects) {
    limiter.check(&subjects.address, ADDRESS_LIMITS).await;
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
            assert!(admit(&limiter, &ada).await.is_ok());
            record_failure(&limiter, &ada).await;
        }

        let from_elsewhere = SignInSubjects::new(&hasher, "ada@example.com", "10.0.0.2");
        let wait = admit(&limiter, &from_elsewhere).await.unwrap_err();
        assert!((Duration::from_secs(170)..=Duration::from_secs(180)).contains(&wait), "{wait:?}");
        let bob = SignInSubjects::new(&hasher, "bob@example.com", "10.0.0.1");
        assert!(admit(&limiter, &bob).await.is_ok(), "other accounts are unaffected");
    }

    #[tokio::test]
    async fn guesses_in_parallel_are_counted_before_any_of_them_fails() {
        let limiter = RateLimiter::in_process();
        let ada = subjects("ada@example.com", "10.0.0.1");

        // Eight admissions before any password check has failed: guesses sent together.
        let mut admitted = 0;
        for _ in 0..8 {
            admitted += u64::from(admit(&limiter, &ada).await.is_ok());
        }

        assert_eq!(admitted, ACCOUNT_LIMITS.burst);
    }

    #[tokio::test]
    async fn an_address_is_refused_after_many_accounts_fail_from_it() {
        let hasher = MasterKey::generate().token_hasher();
        let limiter = RateLimiter::in_process();
        for i in 0..ADDRESS_LIMITS.burst {
            record_failure(&limiter, &SignInSubjects::new(&hasher, &format!("user{i}@example.com"), "10.0.0.9")).await;
        }

        assert!(admit(&limiter, &SignInSubjects::new(&hasher, "fresh@example.com", "10.0.0.9")).await.is_err());
        assert!(admit(&limiter, &SignInSubjects::new(&hasher, "fresh@example.com", "10.0.0.8")).await.is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_account_count_but_not_the_address() {
        let limiter = RateLimiter::in_process();
        let ada = subjects("ada@example.com", "10.0.0.1");
        for _ in 0..ACCOUNT_LIMITS.burst {
            admit(&limiter, &ada).await.unwrap();
            record_failure(&limiter, &ada).await;
        }

        clear(&limiter, &ada).await;

        assert!(admit(&limiter, &ada).await.is_ok());
        let address = limiter.peek(&ada.address, ADDRESS_LIMITS).await;
        assert_eq!(address.remaining, ADDRESS_LIMITS.burst - ACCOUNT_LIMITS.burst - 1);
    }

    #[test]
    fn no_email_or_address_appears_in_a_bucket_name() {
        let subjects = subjects("ada@example.com", "10.0.0.1");
        for name in [&subjects.account, &subjects.address] {
            assert!(!name.contains("ada") && !name.contains("10.0.0.1"), "{name}");
        }
    }
}
