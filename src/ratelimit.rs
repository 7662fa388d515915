//! Rate limits per API key and per client (INTERFACE §5).
//!
//! Floor: core (docs/architecture.md); names settings only.

use std::collections::HashMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::Settings;

/// A key's service tier: its hourly quota and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 1,000 requests an hour, bursts of 50.
    Free,
    /// 10,000 requests an hour, bursts of 200.
    Pro,
    /// No hourly cap, bursts of 1,000.
    Enterprise,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [Self::Free, Self::Pro, Self::Enterprise]
            .into_iter()
            .find(|t| t.as_str() == value)
            .ok_or_else(|| format!("unknown tier `{value}` (expected free, pro or enterprise)"))
    }
}

/// How fast a caller may go: a steady rate and a burst above it. The check is GCRA (the
/// generic cell rate algorithm, a token bucket kept as one timestamp per caller): up to
/// `burst` requests at once, refilled at `per_hour` an hour, or `burst` a second when
/// there is no hourly cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_hour: Option<u64>,
    pub burst: u64,
}

const MICROS_PER_SECOND: i64 = 1_000_000;

impl Limits {
    /// The deployment's limits for a key without a tier and for clients
    /// (`LATCHKEY_RATE_LIMIT_PER_HOUR`, `LATCHKEY_RATE_LIMIT_BURST`).
    pub fn configured(settings: &Settings) -> Self {
        Self { per_hour: Some(settings.rate_limit_per_hour), burst: settings.rate_limit_burst }
    }

    /// What failed authentications (client secrets, API keys) from one address may cost:
    /// by default 30 at once, then one every 12 seconds. Plenty for a misconfigured
    /// deployment to notice its error, too few for guessing, and a bound on the audit rows
    /// one address can write. Never looser than the deployment's own limits.
    pub fn failed_authentications(settings: &Settings) -> Self {
        Self {
            per_hour: Some(settings.failed_auth_per_hour.min(settings.rate_limit_per_hour)),
            burst: settings.failed_auth_burst.min(settings.rate_limit_burst),
        }
    }

    pub fn of_tier(tier: Tier) -> Self {
        match tier {
            Tier::Free => Self { per_hour: Some(1_000), burst: 50 },
            Tier::Pro => Self { per_hour: Some(10_000), burst: 200 },
            Tier::Enterprise => Self { per_hour: None, burst: 1_000 },
        }
    }

    /// The time one request "costs", in microseconds.
    fn interval(self) -> i64 {
        let (per, window) = match self.per_hour {
            Some(per_hour) => (per_hour, 3_600 * MICROS_PER_SECOND),
            None => (self.burst, MICROS_PER_SECOND),
        };
        (window / i64::try_from(per.max(1)).unwrap_or(i64::MAX)).max(1)
    }

    /// How far ahead of now the bucket may run: the burst.
    fn tolerance(self) -> i64 {
        self.interval().saturating_mul(i64::try_from(self.burst.max(1)).unwrap_or(i64::MAX) - 1)
    }

    /// `X-RateLimit-Policy`: the quota, its window in seconds, and the burst.
    pub fn policy(self) -> String {
        match self.per_hour {
            Some(per_hour) => format!("{per_hour};w=3600;burst={}", self.burst),
            None => format!("{};w=1;burst={}", self.burst, self.burst),
        }
    }
}

/// What a 429 says, in the words our users' guides quote.
pub fn exceeded_message(retry_after: u64) -> String {
    let unit = if retry_after == 1 { "second" } else { "seconds" };
    format!("Rate limit exceeded. Try again in {retry_after} {unit}.")
}

/// Who a caller is, for limits by address: its IP, or for IPv6 its /64, the block one
/// subscriber is usually given, so that rotating addresses within it buys nothing.
pub fn caller_address(ip: Option<std::net::IpAddr>) -> String {
    match ip {
        Some(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(std::net::IpAddr::V6(v6)) => v6.to_canonical().to_string(),
        Some(ip) => ip.to_string(),
        None => "unknown".to_owned(),
    }
}

/// Failed authentications from one caller address, counted apart from any budget. Looked at
/// before an authentication, so that once an address has used up its failures its further
/// failures write no audit rows and are answered 429; a caller there whose credentials are
/// good is not refused for its neighbours' failures.
pub struct FailureBudget<'a> {
    limiter: &'a RateLimiter,
    subject: String,
    limits: Limits,
}

impl<'a> FailureBudget<'a> {
    /// The budget of `ip`, under the deployment's [`Limits::failed_authentications`].
    pub fn of(limiter: &'a RateLimiter, ip: Option<std::net::IpAddr>, settings: &Settings) -> Self {
        let limits = Limits::failed_authentications(settings);
        Self { limiter, subject: format!("failures:{}", caller_address(ip)), limits }
    }

    /// Whether the address may try now, counting nothing.
    pub async fn allows(&self) -> Decision {
        self.limiter.peek(&self.subject, self.limits).await
    }

    /// Counts one failure.
    pub async fn spend(&self) -> Decision {
        self.limiter.check(&self.subject, self.limits).await
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limits: Limits,
    /// Requests that could be made right now.
    pub remaining: u64,
    /// When the bucket is full again (Unix seconds).
    pub reset_at: i64,
    /// When to try again, for a refused request (seconds, at least 1).
    pub retry_after: u64,
}

/// GCRA on a stored theoretical arrival time: returns the decision and the new time to
/// store (unchanged when refused).
fn decide(limits: Limits, stored: Option<i64>, now: i64) -> (Decision, Option<i64>) {
    let (interval, tolerance) = (limits.interval(), limits.tolerance());
    let tat = stored.unwrap_or(now).max(now);
    let seconds_up = |micros: i64| (micros + MICROS_PER_SECOND - 1).div_euclid(MICROS_PER_SECOND);
    if tat - now > tolerance {
        let decision = Decision {
            allowed: false,
            limits,
            remaining: 0,
            reset_at: seconds_up(tat),
            retry_after: u64::try_from(seconds_up(tat - now - tolerance)).unwrap_or(1).max(1),
        };
        return (decision, None);
    }
    let new_tat = tat + interval;
    let room = (tolerance + interval - (new_tat - now)) / interval;
    let decision = Decision {
        allowed: true,
        limits,
        remaining: u64::try_from(room).unwrap_or(0),
        reset_at: seconds_up(new_tat),
        retry_after: 0,
    };
    (decision, Some(new_tat))
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Bounds what a flood of made-up client ids can make one process remember.
const MAX_LOCAL_BUCKETS: usize = 100_000;

/// Forgets full buckets and, if that is not enough, the fuller half: those are the callers
/// who lose least by starting afresh.
fn shrink(buckets: &mut HashMap<String, i64>, now: i64) {
    buckets.retain(|_, tat| *tat > now);
    if buckets.len() >= MAX_LOCAL_BUCKETS {
        let mut times: Vec<i64> = buckets.values().copied().collect();
        let middle = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(middle);
        let median = *median;
        buckets.retain(|_, tat| *tat > median);
    }
}

/// Keeps the buckets: in this process, or in Redis so that several instances share them.
pub struct RateLimiter {
    local: std::sync::Mutex<HashMap<String, i64>>,
    redis: Option<redis::aio::ConnectionManager>,
    script: redis::Script,
}

/// The same GCRA step as [`decide`], atomically in Redis on Redis's clock; with ARGV[3]
/// `0` it only looks, with `2` it gives one request back. Returns whether allowed, the
/// arrival time it was decided on, and Redis's now (microseconds), from which [`decide`]
/// rebuilds the decision.
const GCRA_SCRIPT: &str = r#"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if ARGV[3] == '2' then
  local back = tat - interval
  if back <= now then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], back, 'PX', math.ceil((back - now) / 1000) + 1000)
  end
  return {1, back, now}
end
if tat - now > tolerance then return {0, tat, now} end
if ARGV[3] == '1' then
  local new_tat = tat + interval
  redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
end
return {1, tat, now}
"#;

impl RateLimiter {
    pub fn in_process() -> Self {
        Self { local: Default::default(), redis: None, script: redis::Script::new(GCRA_SCRIPT) }
    }

    /// Shares buckets through Redis at `url`; the server must be reachable now.
    pub async fn with_redis(url: &str) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("LATCHKEY_REDIS_URL is not a valid Redis URL")?;
        // Named by its address only: the URL may hold a password.
        let address = client.get_connection_info().addr().to_string();
        // A request waits on Redis at most this long before counting locally instead.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(1)))
            .set_response_timeout(Some(std::time::Duration::from_millis(500)))
            .set_number_of_retries(2);
        // The error once, by its own words: its source repeats them.
        let manager = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|error| anyhow::anyhow!("could not connect to Redis at {address}: {error}"))?;
        Ok(Self { redis: Some(manager), ..Self::in_process() })
    }

    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Counts one request by `subject` (such as `key:<id>` or `client:<client_id>`).
    pub async fn check(&self, subject: &str, limits: Limits) -> Decision {
        self.run(subject, limits, true).await
    }

    /// Whether `subject` could make a request now, without counting one.
    pub async fn peek(&self, subject: &str, limits: Limits) -> Decision {
        self.run(subject, limits, false).await
    }

    /// Gives back one request `subject` was counted for: reserved before work that then
    /// turned out not to count (a sign-in that succeeded, a check that never ran).
    pub async fn refund(&self, subject: &str, limits: Limits) {
        if let Some(redis) = &self.redis {
            let mut conn = redis.clone();
            let refunded: redis::RedisResult<(i64, i64, i64)> = self
                .script
                .key(Self::redis_key(subject))
                .arg(limits.interval())
                .arg(limits.tolerance())
                .arg(2)
                .invoke_async(&mut conn)
                .await;
            match refunded {
                Ok(_) => return,
                Err(error) => tracing::warn!(%error, "Redis is unavailable; a rate-limit request was not given back"),
            }
        }
        let mut buckets = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tat) = buckets.get_mut(subject) {
            *tat -= limits.interval();
            if *tat <= now_micros() {
                buckets.remove(subject);
            }
        }
    }

    /// Gives `subject` a full bucket again.
    pub async fn forget(&self, subject: &str) {
        if let Some(redis) = &self.redis {
            let mut conn = redis.clone();
            let deleted: redis::RedisResult<()> =
                redis::cmd("DEL").arg(Self::redis_key(subject)).query_async(&mut conn).await;
            if let Err(error) = deleted {
                tracing::warn!(%error, "Redis is unavailable; a rate-limit bucket was not reset");
            }
        }
        self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(subject);
    }

    /// Marks `name` as used until `expires_at` (Unix seconds) in Redis, shared by every
    /// instance: `Some(true)` the first time, `Some(false)` after. `None` without Redis, or
    /// while it is unavailable: the caller then asks the database.
    pub async fn first_use(&self, name: &str, expires_at: i64) -> Option<bool> {
        let redis = self.redis.as_ref()?;
        let mut conn = redis.clone();
        let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(format!("latchkey:used:{name}"))
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(expires_at.max(1))
            .query_async(&mut conn)
            .await;
        match set {
            Ok(reply) => Some(reply.is_some()),
            Err(error) => {
                tracing::warn!(%error, "Redis is unavailable; one-time use is checked in the database until it returns");
                None
            }
        }
    }

    fn redis_key(subject: &str) -> String {
        format!("latchkey:ratelimit:{subject}")
    }

    async fn run(&self, subject: &str, limits: Limits, consume: bool) -> Decision {
        if let Some(redis) = &self.redis {
            let mut conn = redis.clone();
            let result: redis::RedisResult<(i64, i64, i64)> = self
                .script
                .key(Self::redis_key(subject))
                .arg(limits.interval())
                .arg(limits.tolerance())
                .arg(u8::from(consume))
                .invoke_async(&mut conn)
                .await;
            match result {
                Ok((_, tat, now)) => return decide(limits, Some(tat), now).0,
                // Limits must not take the server down with Redis: count here until it is back.
                Err(error) => {
                    tracing::warn!(%error, "Redis is unavailable; rate limits are per instance until it returns")
                }
            }
        }
        self.run_locally(subject, limits, now_micros(), consume)
    }

    fn run_locally(&self, subject: &str, limits: Limits, now: i64, consume: bool) -> Decision {
        let mut buckets = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (decision, stored) = decide(limits, buckets.get(subject).copied(), now);
        if let Some(tat) = stored.filter(|_| consume) {
            if buckets.len() >= MAX_LOCAL_BUCKETS && !buckets.contains_key(subject) {
                shrink(&mut buckets, now);
            }
            buckets.insert(subject.to_owned(), tat);
        }
        decision
    }

    /// Forgets buckets that are full again; run now and then so the map stays small.
    pub fn prune(&self) {
        let now = now_micros();
        let mut buckets = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        buckets.retain(|_, tat| *tat > now);
    }
}

impl Decision {
    /// `X-RateLimit-Limit` (the burst: the most requests possible at once),
    /// `X-RateLimit-Remaining` (possible right now), `X-RateLimit-Reset` (Unix time when all
    /// are possible again), `X-RateLimit-Policy` (quota, window, burst), and `Retry-After`
    /// on a refusal.
    pub fn write_headers(&self, headers: &mut actix_web::http::header::HeaderMap) {
        use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        // The quota of the caller's tier in its window, as the guides show it (1,000 for a
        // free key); the burst is in the policy.
        set("x-ratelimit-limit", self.limits.per_hour.unwrap_or(self.limits.burst).to_string());
        set("x-ratelimit-remaining", self.remaining.to_string());
        set("x-ratelimit-reset", self.reset_at.to_string());
        set("x-ratelimit-policy", self.limits.policy());
        if !self.allowed {
            headers.insert(RETRY_AFTER, HeaderValue::from(self.retry_after));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREE: Limits = Limits { per_hour: Some(1_000), burst: 50 };

    impl RateLimiter {
        fn check_locally(&self, subject: &str, limits: Limits, now: i64) -> Decision {
            self.run_locally(subject, limits, now, true)
        }
    }

    #[tokio::test]
    async fn peeking_counts_nothing_and_forgetting_refills() {
        let limiter = RateLimiter::in_process();
        let two = Limits { per_hour: Some(1), burst: 2 };
        for _ in 0..5 {
            assert!(limiter.peek("k", two).await.allowed);
        }
        assert!(limiter.check("k", two).await.allowed);
        assert!(limiter.check("k", two).await.allowed);
        assert!(!limiter.peek("k", two).await.allowed, "the bucket is empty");
        assert!(!limiter.check("k", two).await.allowed);

        limiter.forget("k").await;

        assert_eq!(limiter.peek("k", two).await.remaining, 1, "full again: one left after the next");
    }

    #[tokio::test]
    async fn a_refund_gives_back_exactly_one_request() {
        let limiter = RateLimiter::in_process();
        let three = Limits { per_hour: Some(1), burst: 3 };
        for _ in 0..3 {
            assert!(limiter.check("k", three).await.allowed);
        }
        assert!(!limiter.peek("k", three).await.allowed);

        limiter.refund("k", three).await;

        assert!(limiter.check("k", three).await.allowed, "one back");
        assert!(!limiter.check("k", three).await.allowed, "and only one");
        limiter.refund("untouched", three).await;
        assert_eq!(limiter.peek("untouched", three).await.remaining, 2, "nothing to give back: still full");
    }

    #[test]
    fn failures_count_per_address_and_per_ipv6_block() {
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(caller_address(ip("203.0.113.7")), "203.0.113.7");
        assert_eq!(caller_address(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(caller_address(ip("2001:db8:1:2:aaaa::1")), caller_address(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(caller_address(ip("2001:db8:1:2::1")), caller_address(ip("2001:db8:1:3::1")));
        assert_eq!(caller_address(ip("::ffff:203.0.113.7")), "203.0.113.7");
    }

    #[test]
    fn failure_limits_are_never_looser_than_the_deployments() {
        let mut settings = Settings::for_tests(crate::config::DatabaseTarget::parse("sqlite://x.db").unwrap());
        assert_eq!(Limits::failed_authentications(&settings), Limits { per_hour: Some(300), burst: 30 });
        (settings.rate_limit_per_hour, settings.rate_limit_burst) = (60, 3);
        assert_eq!(Limits::failed_authentications(&settings), Limits { per_hour: Some(60), burst: 3 });
        (settings.failed_auth_per_hour, settings.failed_auth_burst) = (10, 2);
        assert_eq!(Limits::failed_authentications(&settings), Limits { per_hour: Some(10), burst: 2 });
    }

    #[test]
    fn a_burst_is_allowed_then_the_steady_rate() {
        let limiter = RateLimiter::in_process();
        let now = 1_700_000_000 * MICROS_PER_SECOND;
        let decisions: Vec<Decision> = (0..51).map(|_| limiter.check_locally("k", FREE, now)).collect();
        assert!(decisions[..50].iter().all(|d| d.allowed));
        assert_eq!(decisions[0].remaining, 49);
        assert_eq!(decisions[49].remaining, 0);
        let refused = &decisions[50];
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, 4, "one request every 3.6 s at 1,000 an hour");
        assert!(!limiter.check_locally("k", FREE, now + 3 * MICROS_PER_SECOND).allowed);
        assert!(limiter.check_locally("k", FREE, now + 4 * MICROS_PER_SECOND).allowed);
        assert!(limiter.check_locally("other", FREE, now).allowed, "buckets are per subject");
    }

    #[test]
    fn enterprise_has_no_hourly_cap_but_a_burst() {
        let limits = Limits::of_tier(Tier::Enterprise);
        let limiter = RateLimiter::in_process();
        let now = 1_700_000_000 * MICROS_PER_SECOND;
        assert!((0..1_000).all(|_| limiter.check_locally("k", limits, now).allowed));
        assert!(!limiter.check_locally("k", limits, now).allowed);
        assert!(limiter.check_locally("k", limits, now + MICROS_PER_SECOND).allowed);
        assert_eq!(limits.policy(), "1000;w=1;burst=1000");
    }

    #[test]
    fn the_local_map_stays_bounded() {
        let now = 1_700_000_000 * MICROS_PER_SECOND;
        let limiter = RateLimiter::in_process();
        for n in 0..=MAX_LOCAL_BUCKETS {
            limiter.check_locally(&n.to_string(), FREE, now + i64::try_from(n).unwrap());
        }
        let buckets = limiter.local.lock().unwrap();
        assert!(buckets.len() <= MAX_LOCAL_BUCKETS / 2 + 1, "{}", buckets.len());
        assert!(buckets.contains_key(&MAX_LOCAL_BUCKETS.to_string()), "the newest caller is kept");
    }

    #[test]
    fn the_reset_time_is_when_the_bucket_is_full_again() {
        let now = 1_700_000_000 * MICROS_PER_SECOND;
        let (decision, _) = decide(FREE, None, now);
        assert_eq!(decision.reset_at, 1_700_000_000 + 4);
        let limiter = RateLimiter::in_process();
        limiter.check_locally("k", FREE, now - 10 * MICROS_PER_SECOND);
        limiter.prune();
        assert!(limiter.local.lock().unwrap().is_empty(), "a full bucket is forgotten");
    }
}
