//! Slows password guessing: sign-in attempts are counted per account and per client
//! address, on the rate limiter, so that with Redis every instance sees the same counts.
//! Unknown emails are counted like known ones, so the limit reveals nothing about which
//! accounts exist.
//!
//! Both counts are taken before the password check, so that guesses sent in parallel
//! cannot all pass on one count, and so that a refused attempt costs no hashing at all. A
//! success clears the account's count and gives the address its attempt back: many people
//! may rightly sign in from one address, and only failures should add up there.

use std::time::Duration;

use crate::crypto::TokenHasher;
use crate::ratelimit::{Limits, RateLimiter};

/// Five attempts at once, then one more every three minutes.
pub const ACCOUNT_LIMITS: Limits = Limits { per_hour: Some(20), burst: 5 };
/// Fifty failed (or unfinished) attempts at once from one address, across any accounts,
/// then one every 18 seconds.
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
            address: address_bucket(hasher, address),
        }
    }
}

fn address_bucket(hasher: &TokenHasher, address: &str) -> String {
    format!("signin:address:{}", hasher.hash(address).as_str())
}

/// Passkey challenges for signing in without an email, per address: each is a row kept
/// until it expires, and the sign-in page asks for one as it loads (for autofill).
pub const CHALLENGE_LIMITS: Limits = Limits { per_hour: Some(600), burst: 60 };

/// The address's buckets alone: a passkey sign-in names no account until it is checked.
pub struct AddressSubjects {
    attempts: String,
    challenges: String,
}

impl AddressSubjects {
    pub fn new(hasher: &TokenHasher, address: &str) -> Self {
        Self {
            attempts: address_bucket(hasher, address),
            challenges: format!("passkey:challenge:{}", hasher.hash(address).as_str()),
        }
    }
}

/// Counts a passkey challenge against the address, or answers `Err(wait)`.
pub async fn admit_challenge(limiter: &RateLimiter, subjects: &AddressSubjects) -> Result<(), Duration> {
    let decision = limiter.check(&subjects.challenges, CHALLENGE_LIMITS).await;
    if decision.allowed { Ok(()) } else { Err(Duration::from_secs(decision.retry_after)) }
}

/// Counts a passkey sign-in against the address, as a password attempt counts.
pub async fn admit_address(limiter: &RateLimiter, subjects: &AddressSubjects) -> Result<(), Duration> {
    let decision = limiter.check(&subjects.attempts, ADDRESS_LIMITS).await;
    if decision.allowed { Ok(()) } else { Err(Duration::from_secs(decision.retry_after)) }
}

/// A passkey sign-in succeeded: the address gets this attempt back.
pub async fn address_succeeded(limiter: &RateLimiter, subjects: &AddressSubjects) {
    limiter.refund(&subjects.attempts, ADDRESS_LIMITS).await;
}

/// Counts an attempt against the address and the account and lets it go on to the password
/// check, or answers `Err(wait)`.
pub async fn admit(limiter: &RateLimiter, subjects: &SignInSubjects) -> Result<(), Duration> {
    let address = limiter.check(&subjects.address, ADDRESS_LIMITS).await;
    if !address.allowed {
        return Err(Duration::from_secs(address.retry_after));
    }
    let account = limiter.check(&subjects.account, ACCOUNT_LIMITS).await;
    if !account.allowed {
        return Err(Duration::from_secs(account.retry_after));
    }
    Ok(())
}

/// The page for an attempt [`admit`] refused, with `Retry-After`.
pub fn refused_page(wait: Duration) -> actix_web::HttpResponse {
    use actix_web::http::{StatusCode, header};
    let minutes = wait.as_secs().div_ceil(60);
    let mut response = super::pages::error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in attempts",
        &format!("Wait {minutes} minute(s) before trying again."),
    );
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(wait.as_secs().max(1)));
    response
}

/// A successful sign-in clears the account's count and gives the address back this one
/// attempt, not its earlier failures: one right password must not buy an address fifty
/// more guesses at other accounts.
pub async fn succeeded(limiter: &RateLimiter, subjects: &SignInSubjects) {
    limiter.forget(&subjects.account).await;
    limiter.refund(&subjects.address, ADDRESS_LIMITS).await;
}

/// The password was never checked (the server was too busy): the attempt does not count.
pub async fn not_checked(limiter: &RateLimiter, subjects: &SignInSubjects) {
    limiter.refund(&subjects.account, ACCOUNT_LIMITS).await;
    limiter.refund(&subjects.address, ADDRESS_LIMITS).await;
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
        }

        let from_elsewhere = SignInSubjects::new(&hasher, "ada@example.com", "10.0.0.2");
        let wait = admit(&limiter, &from_elsewhere).await.unwrap_err();
        assert!((Duration::from_secs(170)..=Duration::from_secs(180)).contains(&wait), "{wait:?}");
        let bob = SignInSubjects::new(&hasher, "bob@example.com", "10.0.0.1");
        assert!(admit(&limiter, &bob).await.is_ok(), "other accounts are unaffected");
    }

    #[tokio::test]
    async fn guesses_in_parallel_are_counted_before_any_of_them_is_checked() {
        let hasher = MasterKey::generate().token_hasher();
        let limiter = RateLimiter::in_process();

        // Sixty admissions from one address before any password check has ended: guesses
        // sent together, at one account and at many.
        let mut admitted_for_ada = 0;
        let mut admitted_from_address = 0;
        for i in 0..60 {
            admitted_for_ada +=
                u64::from(admit(&limiter, &SignInSubjects::new(&hasher, "ada@example.com", "10.0.0.1")).await.is_ok());
            let other = SignInSubjects::new(&hasher, &format!("user{i}@example.com"), "10.0.0.1");
            admitted_from_address += u64::from(admit(&limiter, &other).await.is_ok());
        }

        assert_eq!(admitted_for_ada, ACCOUNT_LIMITS.burst);
        assert!(admitted_for_ada + admitted_from_address <= ADDRESS_LIMITS.burst, "{admitted_from_address}");
    }

    #[tokio::test]
    async fn an_address_is_refused_after_many_accounts_fail_from_it() {
        let hasher = MasterKey::generate().token_hasher();
        let limiter = RateLimiter::in_process();
        for i in 0..ADDRESS_LIMITS.burst {
            let subjects = SignInSubjects::new(&hasher, &format!("user{i}@example.com"), "10.0.0.9");
            assert!(admit(&limiter, &subjects).await.is_ok());
        }

        assert!(admit(&limiter, &SignInSubjects::new(&hasher, "fresh@example.com", "10.0.0.9")).await.is_err());
        assert!(admit(&limiter, &SignInSubjects::new(&hasher, "fresh@example.com", "10.0.0.8")).await.is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_account_and_costs_the_address_nothing() {
        let limiter = RateLimiter::in_process();
        let ada = subjects("ada@example.com", "10.0.0.1");
        for _ in 0..ACCOUNT_LIMITS.burst - 1 {
            admit(&limiter, &ada).await.unwrap();
        }
        admit(&limiter, &ada).await.unwrap();

        succeeded(&limiter, &ada).await;

        assert_eq!(limiter.peek(&ada.account, ACCOUNT_LIMITS).await.remaining, ACCOUNT_LIMITS.burst - 1, "cleared");
        let address = limiter.peek(&ada.address, ADDRESS_LIMITS).await;
        assert_eq!(address.remaining, ADDRESS_LIMITS.burst - (ACCOUNT_LIMITS.burst - 1) - 1, "the failures stay");
    }

    #[tokio::test]
    async fn an_attempt_never_checked_does_not_count() {
        let limiter = RateLimiter::in_process();
        let ada = subjects("ada@example.com", "10.0.0.1");

        admit(&limiter, &ada).await.unwrap();
        not_checked(&limiter, &ada).await;

        assert_eq!(limiter.peek(&ada.account, ACCOUNT_LIMITS).await.remaining, ACCOUNT_LIMITS.burst - 1);
        assert_eq!(limiter.peek(&ada.address, ADDRESS_LIMITS).await.remaining, ADDRESS_LIMITS.burst - 1);
    }

    #[test]
    fn no_email_or_address_appears_in_a_bucket_name() {
        let subjects = subjects("ada@example.com", "10.0.0.1");
        for name in [&subjects.account, &subjects.address] {
            assert!(!name.contains("ada") && !name.contains("10.0.0.1"), "{name}");
        }
    }
}
