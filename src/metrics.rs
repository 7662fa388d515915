//! `GET /metrics` in the Prometheus text format: requests by route and status, latency
//! histograms, tokens issued by grant, authentication failures by reason, and the database
//! pool. Labels are routes and fixed words, never ids, so their number stays small and no
//! client, key or user can be read from them.
//!
//! Floor: leaves (docs/architecture.md); counters only; `health` serves them, `startup` feeds them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The connection pool as it stands when metrics are read.
#[derive(Debug, Clone, Copy)]
pub struct PoolReading {
    pub connections: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The matched route pattern (`/api/v1/clients/{client_id}`), or `unmatched`.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    /// What failed to authenticate: `client`, `api_key` or `user`.
    credential: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    /// `hit` (answered from memory) or `miss` (absent, changed or aged: read from the database).
    result: &'static str,
}

/// A cache's lookups, counted where they happen ([`crate::db::changes::Cached`]); unregistered
/// (counted for nobody) unless made by [`Metrics::cache_lookups`].
#[derive(Debug, Clone, Default)]
pub struct CacheLookups {
    pub hits: Counter,
    pub misses: Counter,
}

/// Latency buckets from 100 µs to about 3 s.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    tokens_issued: Family<GrantLabels, Counter>,
    auth_failures: Family<FailureLabels, Counter>,
    cache_lookups: Family<CacheLabels, Counter>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("latchkey");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by method, route and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "Time to the response, by route", latency.clone());
        let tokens_issued = Family::<GrantLabels, Counter>::default();
        registry.register(
            "tokens_issued",
            "Access tokens issued at the token endpoint, by grant",
            tokens_issued.clone(),
        );
        let auth_failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "authentication_failures",
            "Refused clients, API keys and sign-ins, by reason",
            auth_failures.clone(),
        );
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Lookups in the caches of API keys, clients, APIs and revocations, by cache and result",
            cache_lookups.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register("db_pool_connections", "Open database connections", pool_connections.clone());
        let pool_idle = Gauge::default();
        registry.register("db_pool_idle_connections", "Idle database connections", pool_idle.clone());
        let pool_max = Gauge::default();
        registry.register("db_pool_max_connections", "The pool's size limit", pool_max.clone());
        Self {
            registry,
            requests,
            latency,
            tokens_issued,
            auth_failures,
            cache_lookups,
            pool_connections,
            pool_idle,
            pool_max,
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: Option<&str>, status: u16, seconds: f64) {
        let route = route.unwrap_or("unmatched").to_owned();
        self.requests.get_or_create(&RequestLabels { method: method.to_owned(), route: route.clone(), status }).inc();
        self.latency.get_or_create(&RouteLabels { method: method.to_owned(), route }).observe(seconds);
    }

    pub fn token_issued(&self, grant_type: &str) {
        self.tokens_issued.get_or_create(&GrantLabels { grant_type: grant_type.to_owned() }).inc();
    }

    /// `credential` is `client`, `api_key` or `user`; `reason` a fixed word.
    pub fn authentication_failed(&self, credential: &'static str, reason: &'static str) {
        self.auth_failures.get_or_create(&FailureLabels { credential, reason }).inc();
    }

    /// The counters of the cache named `cache`, for it to count its own lookups.
    pub fn cache_lookups(&self, cache: &'static str) -> CacheLookups {
        // One at a time: `get_or_create`'s guard lives to the end of its statement, and a
        // second call in the same statement would wait for it forever.
        let hits = self.cache_lookups.get_or_create(&CacheLabels { cache, result: "hit" }).clone();
        let misses = self.cache_lookups.get_or_create(&CacheLabels { cache, result: "miss" }).clone();
        CacheLookups { hits, misses }
    }

    /// Everything counted so far, with `pool` as it stands, in the OpenMetrics text format.
    pub fn render(&self, pool: PoolReading) -> String {
        self.pool_connections.set(i64::from(pool.connections));
        self.pool_idle.set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max));
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
