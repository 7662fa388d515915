//! Wiring: the one place where state, routes and middleware come together.
//!
//! Floor: entry (docs/architecture.md); the only module that names every HTTP family.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::web;
use actix_web::{App, HttpServer};
use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::crypto::MasterKeyRing;
use crate::db;
use crate::db::changes::Changes;
use crate::domain::SigningAlgorithm;
use crate::http::not_found;
use crate::manage::signing_keys::ensure_active_key;
use crate::metrics::Metrics;
use crate::passwords::{PasswordHasher, Passwords};
use crate::ratelimit::RateLimiter;
use crate::state::{AppState, Caches};
use crate::tls::Certificate;
use crate::tokens::{IssuanceProof, KeySet, KeyStore};

/// Connections the kernel queues before they are accepted (as actix's own default).
const LISTEN_BACKLOG: i32 = 1024;

/// The port, bound but not yet listening (with `SO_REUSEADDR`, as std's `bind` sets it).
fn bind(address: std::net::SocketAddr) -> anyhow::Result<socket2::Socket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into()).with_context(|| format!("could not listen on {address}"))?;
    Ok(socket)
}

/// How long a stopping server waits for requests in flight.
pub const SHUTDOWN_GRACE_SECS: u64 = 30;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    setup_link: Option<String>,
    /// Served when `tls_cert_file` is set; reloaded on SIGHUP.
    certificate: Option<Arc<Certificate>>,
}

impl Application {
    /// Binds the port (which names the issuer when none is configured), opens the database
    /// (applying migrations), makes the first signing key if there is none, registers the
    /// management API, and only then listens: a connection is never taken before the state
    /// to answer it exists. Nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        crate::memory::return_large_blocks_when_freed();
        let (ring, is_dev_key) =
            MasterKeyRing::configured_or_dev(settings.master_key.as_ref(), &settings.previous_master_keys)?;
        if is_dev_key {
            tracing::warn!(
                file = crate::crypto::DEV_MASTER_KEY_FILE,
                "LATCHKEY_MASTER_KEY is not set: using a development master key kept in a file in the \
                 working directory. Anyone who reads that file can open the signing keys and forge every \
                 token. Set LATCHKEY_MASTER_KEY (`openssl rand -base64 32`) before going to production."
            );
        }
        let (hasher, sealer) = (ring.token_hasher(), ring.sealer());
        let issuance = IssuanceProof::new(ring.issuance_hasher());

        let certificate =
            settings.tls.as_ref().map(Certificate::load).transpose().context("could not load the TLS certificate")?;
        let socket = bind(settings.bind)?;
        let address = socket.local_addr()?.as_socket().context("the socket has an IP address")?;
        let issuer = settings.issuer_at(address);

        let target = settings.database.clone();
        let pool_size = settings.database_pool_size;
        let init_sealer = sealer.clone();
        let setup_hasher = hasher.clone();
        let (api_issuer, default_ttl) = (issuer.clone(), settings.access_token_ttl_secs);
        let (pool, keys, setup_token) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let pool = db::build_server_pool(&target, pool_size)?;
            let mut conn = pool.get().context("could not get a database connection")?;
            // Before anything is hashed or sealed: the database says which key is current.
            let master_key = crate::manage::master_keys::adopt(&mut conn, &ring, db::now())
                .context("the master key does not open this database")?;
            tracing::info!(%master_key, held = ring.ids().len(), "new hashes and seals use this master key");
            if let Some(kid) = ensure_active_key(&mut conn, &init_sealer, SigningAlgorithm::RS256, db::now())? {
                tracing::info!(%kid, "generated the first RS256 signing key");
            }
            let keys = KeySet::load(&mut conn, &init_sealer, db::now())?;
            crate::manage::apis::ensure_management_api(&mut conn, &api_issuer, default_ttl)
                .context("could not register the management API")?;
            crate::manage::clients::ensure_cli_client(&mut conn, &api_issuer.management_api_audience())
                .context("could not register the command line's client")?;
            let setup_token = crate::manage::setup::offer_setup(&mut conn, &setup_hasher)?;
            Ok((pool, keys, setup_token))
        })
        .await
        .context("start-up was interrupted")??;

        let changes = Arc::new(Changes::new(settings.cache_max_age));
        let metrics = Metrics::default();
        let pool = pool.recording_in(changes.clone());

        let limiter = match &settings.redis_url {
            Some(url) => RateLimiter::with_redis(url.expose_secret()).await?,
            None => RateLimiter::in_process(),
        };

        let passkeys = crate::manage::passkeys::relying_party(&issuer)?;
        if passkeys.is_none() {
            tracing::warn!(%issuer, "passkeys are off: WebAuthn needs the issuer's host to be a domain name, not an address");
        }
        let state = web::Data::new(AppState {
            passkeys,
            pool,
            metadata: crate::oauth::discovery::metadata_document(&issuer),
            openapi: std::sync::OnceLock::new(),
            issuer: issuer.clone(),
            hasher,
            sealer,
            issuance,
            keys: Arc::new(KeyStore::new(keys)),
            settings: settings.clone(),
            passwords: Passwords::for_this_machine(PasswordHasher::new()),
            mailer: crate::mail::Mailer::from_settings(&settings)?,
            limiter,
            remote_jwks: crate::remote_jwks::RemoteJwks::new(settings.jwks_uri_allow_private),
            caches: Caches::new(&changes, &metrics),
            metrics,
            touches: Default::default(),
        });
        socket.listen(LISTEN_BACKLOG).with_context(|| format!("could not listen on {}", settings.bind))?;
        let listener = TcpListener::from(socket);
        tracing::info!(%issuer, database = %settings.database.describe(), %address, tls = certificate.is_some(), "Latchkey is listening");
        // The one secret Latchkey ever logs, by design: whoever reads the first start's log
        // is its operator. It works once, for a day, and only while nobody has an account.
        let setup_link =
            setup_token.map(|token| issuer.endpoint(&format!("{}?token={token}", crate::manage::setup::SETUP_PATH)));
        if let Some(link) = &setup_link {
            tracing::info!(
                "nobody has an account yet: open {link} to create the owner account (the link works once, for 24 hours)"
            );
        }

        let app_state = state.clone();
        let serves_tls = certificate.is_some();
        let server = HttpServer::new(move || {
            let mut headers = DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("Referrer-Policy", "no-referrer"));
            if serves_tls {
                headers = headers.add(("Strict-Transport-Security", crate::tls::STRICT_TRANSPORT_SECURITY));
            }
            App::new()
                .app_data(app_state.clone())
                .wrap(headers)
                .wrap(from_fn(crate::http::head_as_get))
                .wrap(from_fn(count_requests))
                .wrap(from_fn(crate::telemetry::request_context))
                .configure(crate::oauth::configure)
                .configure(crate::health::configure)
                .configure(crate::web::configure)
                .configure(crate::management::configure)
                .default_service(web::to(not_found))
        });
        // With TLS there is no plain-HTTP port: a plain request to this one fails its handshake.
        let mut server = match &certificate {
            Some(certificate) => server.listen_rustls_0_23(listener, certificate.server_config()?)?,
            None => server.listen(listener)?,
        }
        // SIGTERM (and SIGINT) stop taking connections and let requests in flight finish,
        // for at most this long; a load balancer has usually drained the instance by then.
        .shutdown_timeout(SHUTDOWN_GRACE_SECS);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        Ok(Self { port: address.port(), server: server.run(), state, setup_link, certificate })
    }

    /// The first-start link this start logged, when nobody had an account.
    pub fn setup_link(&self) -> Option<&str> {
        self.setup_link.as_deref()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM drain in-flight requests),
    /// reloading signing keys, pruning expired revocations and, when serving TLS, rereading
    /// the certificate on SIGHUP meanwhile.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(self.state.clone()));
        let hearing =
            tokio::spawn(crate::changefeed::hear(self.state.settings.clone(), self.state.pool.changes().clone()));
        let noting = tokio::spawn(write_noted_key_uses(self.state.clone()));
        let reloading = self.certificate.map(|certificate| tokio::spawn(crate::tls::reload_on_hangup(certificate)));
        let result = self.server.await;
        for task in [Some(housekeeping), Some(hearing), Some(noting), reloading].into_iter().flatten() {
            task.abort();
        }
        // The uses noted in the last second are not lost with the process.
        crate::apikeys::authenticate::write_noted_uses(&self.state).await;
        result
    }
}

/// Writes the uses of API keys authenticated from the cache, once a second.
async fn write_noted_key_uses(state: web::Data<AppState>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        crate::apikeys::authenticate::write_noted_uses(&state).await;
    }
}

async fn housekeeping(state: web::Data<AppState>) {
    let period = Duration::from_secs(state.settings.key_refresh_secs);
    // The keys were loaded at start: the first reload is one period away.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        ticker.tick().await;
        ticks += 1;
        if let Err(error) = state.reload_keys().await {
            tracing::warn!(error = ?error, "could not reload the signing keys; keeping the current ones");
        }
        // What a burst (a flood of sign-ins, many connections at once) left free goes back.
        crate::memory::release_free_memory();
        // A refresh's answer is kept for retries only for its window.
        let erased = db::run(&state.pool, |conn| Ok(db::refresh_tokens::erase_expired_retry_answers(conn, db::now())?));
        if let Err(error) = erased.await {
            tracing::warn!(error = ?error, "could not erase the refresh answers kept past their retry window");
        }
        // About every ten minutes, whatever the reload period.
        if ticks.is_multiple_of((600 / state.settings.key_refresh_secs).max(1)) {
            state.limiter.prune();
            let pruned = db::run(&state.pool, |conn| {
                let now = db::now();
                let revocations = db::revoked_tokens::prune_expired_revocations(conn, now)?;
                let assertions = db::used_assertions::prune_used_assertions(conn, now)?;
                // A device polling with an expired code is told so for an hour, then that
                // the code is unknown.
                let devices = db::device_authorizations::prune_expired_device_authorizations(
                    conn,
                    now - chrono::TimeDelta::hours(1),
                )?;
                Ok(revocations
                    + assertions
                    + devices
                    + db::sessions::prune_expired_sessions(conn, now)?
                    + db::pending_sign_ins::prune_expired_pending_sign_ins(conn, now)?
                    + db::password_resets::prune_expired_resets(conn, now)?
                    + db::passkeys::prune_expired_ceremonies(conn, now)?)
            })
            .await;
            match pruned {
                Ok(count) if count > 0 => {
                    tracing::info!(count, "pruned expired revocations, assertions, device requests and sessions")
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = ?error, "could not prune expired revocations, assertions and sessions")
                }
            }
        }
    }
}

/// Counts every request for `/metrics` by method, route pattern and status. Here, with the
/// wiring, because it reads the state; `telemetry` stays below every handler.
async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let response = next.call(req).await?;
    let request = response.request();
    if let Some(state) = request.app_data::<web::Data<AppState>>() {
        let (method, route) = (request.method().as_str(), request.match_pattern());
        state.metrics.observe_request(
            method,
            route.as_deref(),
            response.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(response)
}
