//! Slows password guessing: failed sign-ins are counted per account and per client
//! address in fixed windows. Unknown emails are counted like known ones, so the limit
//! reveals nothing about which accounts exist. In-process; instances do not share counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per window before further attempts are refused.
pub const ACCOUNT_LIMIT: u32 = 5;
pub const ADDRESS_LIMIT: u32 = 50;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Bounds the memory an attacker can make us spend on counters.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Account(String),
    Address(String),
}

impl ThrottleKey {
    fn limit(&self) -> u32 {
        match self {
            Self::Account(_) => ACCOUNT_LIMIT,
            Self::Address(_) => ADDRESS_LIMIT,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    windows: Mutex<HashMap<ThrottleKey, Window>>,
}

impl LoginThrottle {
    /// `Err(wait)` when any key has used up its failures in the current window.
    pub fn check(&self, keys: &[ThrottleKey], now: Instant) -> Result<(), Duration> {
        let windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let wait = keys
            .iter()
            .filter_map(|key| {
                let window = windows.get(key)?;
                let elapsed = now.saturating_duration_since(window.started);
                (elapsed < WINDOW && window.failures >= key.limit()).then(|| WINDOW - elapsed)
            })
            .max();
        wait.map_or(Ok(()), Err)
    }

    pub fn record_failure(&self, keys: &[ThrottleKey], now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() >= MAX_ENTRIES {
            windows.retain(|_, window| now.saturating_duration_since(window.started) < WINDOW);
        }
        for key in keys {
            let window = windows.entry(key.clone()).or_insert(Window { started: now, failures: 0 });
            if now.saturating_duration_since(window.started) >= WINDOW {
                *window = Window { started: now, failures: 0 };
            }
            window.failures = window.failures.saturating_add(1);
        }
    }

    /// A successful sign-in clears the account's count (not the address's).
    pub fn clear(&self, key: &ThrottleKey) {
        self.windows.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(account: &str, address: &str) -> Vec<ThrottleKey> {
        vec![ThrottleKey::Account(account.into()), ThrottleKey::Address(address.into())]
    }

    #[test]
    fn an_account_is_refused_after_its_limit_until_the_window_ends() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..ACCOUNT_LIMIT {
            assert!(throttle.check(&keys("ada@example.com", "10.0.0.1"), start).is_ok());
            throttle.record_failure(&keys("ada@example.com", "10.0.0.1"), start);
        }
        let wait = throttle.check(&keys("ada@example.com", "10.0.0.2"), start).unwrap_err();
        assert_eq!(wait, WINDOW);
        assert!(throttle.check(&keys("bob@example.com", "10.0.0.1"), start).is_ok(), "other accounts unaffected");
        assert!(throttle.check(&keys("ada@example.com", "10.0.0.1"), start + WINDOW).is_ok());
    }

    #[test]
    fn an_address_is_refused_after_many_accounts_fail_from_it() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for i in 0..ADDRESS_LIMIT {
            throttle.record_failure(&keys(&format!("user{i}@example.com"), "10.0.0.9"), now);
        }
        assert!(throttle.check(&keys("fresh@example.com", "10.0.0.9"), now).is_err());
        assert!(throttle.check(&keys("fresh@example.com", "10.0.0.8"), now).is_ok());
    }

    #[test]
    fn success_clears_the_account_count() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..ACCOUNT_LIMIT - 1 {
            throttle.record_failure(&keys("ada@example.com", "10.0.0.1"), now);
        }
        throttle.clear(&ThrottleKey::Account("ada@example.com".into()));
        throttle.record_failure(&keys("ada@example.com", "10.0.0.1"), now);
        assert!(throttle.check(&keys("ada@example.com", "10.0.0.1"), now).is_ok());
    }
}
