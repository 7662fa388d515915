//! Load on the two grants people's apps use: the authorization code exchange (with PKCE)
//! and the refresh (with rotation). Codes and refresh tokens work once, so wrk cannot
//! replay one request: this starts Latchkey in-process on a fresh SQLite database, seeds
//! single-use codes and refresh tokens directly, and has wrk send each one once.
//!
//! cargo bench --bench grants            # needs wrk (apt-get install -y wrk); ~40 s
//! DURATION=8 CONNECTIONS=4 SEED=60000 cargo bench --bench grants
//! DB=postgres cargo bench --bench grants # a fresh database on LATCHKEY_TEST_POSTGRES_URL's server
//! ALG=HS256 SEED=150000 cargo bench --bench grants   # HS256 tokens: the grants without RS256's cost
//! ROWS=code,refresh cargo bench --bench grants   # some rows: code, refresh, retries, twice
//! POOL=16 DB=postgres cargo bench --bench grants # the server's pool (database_pool_size)
//! ANALYZE=1 cargo bench --bench grants           # the SQLite database analysed after seeding

use std::io::Write;
use std::process::Command;

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::config::{DatabaseTarget, Settings};
use latchkey::db::authorization_codes::{NewAuthorizationCode, insert_code};
use latchkey::db::refresh_tokens::FamilyMember;
use latchkey::manage;
use latchkey::oauth::refresh::store_refresh_token;
use latchkey::startup::Application;

const API: &str = "https://api.example.com";
const CALLBACK: &str = "https://app.example.com/callback";
const VERIFIER: &str = "bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const LUA: &str = r#"
local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
local prefix = os.getenv("BODY_PREFIX")
local i = 0
request = function()
  i = i + 1
  -- Past the last seeded token every request fails, and shows in the errors column: seed more.
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, prefix .. (tokens[i] or "exhausted"))
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
"#;

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed (apt-get install -y wrk): nothing measured");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let (duration, connections, seed) = (env_or("DURATION", 8), env_or("CONNECTIONS", 4), env_or("SEED", 60_000));
    let algorithm = std::env::var("ALG").unwrap_or_else(|_| "RS256".into());
    let dir = tempfile::tempdir().unwrap();
    let database = Database::create(&dir);
    let target = DatabaseTarget::parse(&database.url).unwrap();
    // One client sends every request: its rate limit is not what is measured. The pool is
    // a served instance's, not a test's smaller one: on PostgreSQL it bounds the commits in
    // flight.
    let settings = Settings {
        workers: Some(2),
        database_pool_size: env_or("POOL", latchkey::config::DEFAULT_DATABASE_POOL_SIZE as usize) as u32,
        rate_limit_per_hour: 1_000_000_000,
        rate_limit_burst: 1_000_000_000,
        ..Settings::for_tests(target)
    };
    let app = Application::build(settings).await.unwrap();
    let port = app.port();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());

    // An API, public clients (retries on, as by default, and off), a user: what a real
    // sign-in would have produced.
    let (client_id, no_retries_id, user_id) = {
        let mut conn = state.pool.get().unwrap();
        let api = manage::apis::ApiRegistration {
            team_id: None,
            name: None,
            audience: API.into(),
            scopes: vec!["read".into()],
            signing: algorithm.parse().unwrap(),
            token_lifetime_secs: None,
        };
        manage::apis::register_api(&mut conn, &state.sealer, &manage::Caller::system(), api, 3600).unwrap();
        let client = |name: &str, retry_window: i64| manage::clients::ClientRegistration {
            name: name.into(),
            team_id: None,
            token_endpoint_auth_method: None,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scopes: vec!["read offline_access".into()],
            audiences: vec![API.into()],
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            public: true,
            refresh_retry_window_secs: Some(retry_window),
            ..Default::default()
        };
        let mut register = |registration| {
            let system = manage::Caller::system();
            manage::clients::register_client(&mut conn, &state.hasher, &state.sealer, &system, registration)
                .unwrap()
                .client_id
                .clone()
        };
        let (client, no_retries) = (register(client("bench", 30)), register(client("bench, no retries", 0)));
        let user = manage::users::UserRegistration {
            email: "bench@example.com".into(),
            name: None,
            password: latchkey::passwords::PasswordHasher::new().hash("bench password").unwrap(),
            role: None,
        };
        let user = manage::users::register_user(&mut conn, &manage::Caller::system(), user).unwrap();
        (client, no_retries, user.id)
    };

    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, VERIFIER.as_bytes()));
    let seed_codes = || {
        let mut conn = state.pool.get().unwrap();
        let now = latchkey::db::now();
        let mut codes = Vec::with_capacity(seed);
        diesel::Connection::transaction(&mut *conn, |conn| -> diesel::QueryResult<()> {
            for i in 0..seed {
                let code = format!("bench-code-{i}-{}", latchkey::crypto::random_token::<16>());
                insert_code(
                    conn,
                    &NewAuthorizationCode {
                        code_hash: state.hasher.hash(&code).as_str(),
                        client_id: &client_id,
                        user_id: &user_id,
                        redirect_uri: CALLBACK,
                        scope: "read",
                        audience: API,
                        code_challenge: Some(&challenge),
                        nonce: None,
                        auth_time: now,
                        created_at: now,
                        expires_at: now + chrono::TimeDelta::minutes(10),
                        redirect_uri_given: true,
                        requested_token_type: None,
                        key_request: None,
                        amr: Some("pwd"),
                    },
                )?;
                codes.push(code);
            }
            Ok(())
        })
        .unwrap();
        codes
    };
    let seed_refresh_tokens = |client_id: &str| {
        let mut conn = state.pool.get().unwrap();
        let now = latchkey::db::now();
        let mut tokens = Vec::with_capacity(seed);
        diesel::Connection::transaction(&mut *conn, |conn| -> diesel::QueryResult<()> {
            for _ in 0..seed {
                let family = uuid::Uuid::new_v4().to_string();
                let jti = uuid::Uuid::new_v4().to_string();
                let member = FamilyMember {
                    family_id: &family,
                    parent_id: None,
                    client_id,
                    user_id: &user_id,
                    scope: "offline_access read",
                    audience: API,
                    auth_code_hash: None,
                    access_token_jti: &jti,
                    access_token_expires_at: now + chrono::TimeDelta::hours(1),
                    expires_at: now + chrono::TimeDelta::days(30),
                    amr: Some("pwd"),
                    auth_time: Some(now),
                };
                tokens.push(store_refresh_token(conn, &state.hasher, &member, now)?);
            }
            Ok(())
        })
        .unwrap();
        tokens
    };

    println!("database: {}", database.label);
    println!("| grant | conns | req/s | p50 ms | p99 ms | server CPU | RSS MiB | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let code_prefix = format!(
        "grant_type=authorization_code&client_id={client_id}&code_verifier={VERIFIER}&redirect_uri={}&code=",
        url::form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
    );
    let rows = std::env::var("ROWS").unwrap_or_else(|_| "code,refresh,retries,twice".into());
    let wanted = |row: &str| rows.split(',').any(|r| r.trim() == row);
    // After a bulk seed the database does what the load makes it do (PostgreSQL's autovacuum
    // and its writing out of the new rows, SQLite's checkpoint of them) before wrk starts, not
    // in the measured seconds: steady state is what is measured. pgbench vacuums before its
    // runs for the same reason. One statement each: PostgreSQL runs no VACUUM in a batch.
    let settle = || {
        use diesel::connection::SimpleConnection;
        let mut conn = state.pool.get().unwrap();
        let statements: &[&str] = match (&database.postgres, std::env::var("ANALYZE").as_deref()) {
            (Some(_), _) => &["VACUUM ANALYZE", "CHECKPOINT"],
            // As an operator's ANALYZE or `PRAGMA optimize` leaves a database (see .cargo/config.toml).
            (None, Ok("1")) => &["ANALYZE", "PRAGMA wal_checkpoint(PASSIVE)"],
            (None, _) => &["PRAGMA wal_checkpoint(PASSIVE)"],
        };
        for statement in statements {
            // CHECKPOINT needs a superuser or pg_checkpoint's role; without it, say so and go on.
            if let Err(e) = conn.batch_execute(statement) {
                eprintln!("{statement}: {e}; measuring without it");
            }
        }
    };
    // Seeding blocks this runtime's one thread; the server runs on its own workers.
    if wanted("code") {
        let codes = seed_codes();
        settle();
        let name = format!("authorization_code (PKCE, {algorithm})");
        drive(&name, port, &code_prefix, &codes, duration, connections);
    }
    let refresh_prefix = |client_id: &str| format!("grant_type=refresh_token&client_id={client_id}&refresh_token=");
    if wanted("refresh") {
        let tokens = seed_refresh_tokens(&no_retries_id);
        settle();
        let name = format!("refresh_token (rotation, {algorithm}), retries off");
        drive(&name, port, &refresh_prefix(&no_retries_id), &tokens, duration, connections);
    }
    if wanted("retries") {
        let tokens = seed_refresh_tokens(&client_id);
        settle();
        let name = format!("refresh_token (rotation, {algorithm}), 30 s retry window");
        drive(&name, port, &refresh_prefix(&client_id), &tokens, duration, connections);
    }
    if wanted("twice") {
        // Every token twice in a row: half the requests are retries, most of them concurrent
        // with the rotation they repeat (the next connection sends the twin at once).
        let twice: Vec<String> = seed_refresh_tokens(&client_id).into_iter().flat_map(|t| [t.clone(), t]).collect();
        settle();
        let name = "refresh_token, every token sent twice (half retries)";
        drive(name, port, &refresh_prefix(&client_id), &twice, duration, connections);
    }
}

/// The bench's own database: a SQLite file, or with `DB=postgres` a fresh PostgreSQL
/// database, dropped at the end.
struct Database {
    url: String,
    label: &'static str,
    postgres: Option<(String, String)>,
}

impl Database {
    fn create(dir: &tempfile::TempDir) -> Self {
        if std::env::var("DB").as_deref() != Ok("postgres") {
            let url = format!("sqlite://{}", dir.path().join("bench.db").display());
            return Self { url, label: "SQLite", postgres: None };
        }
        use diesel::connection::SimpleConnection;
        let server = std::env::var("LATCHKEY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("latchkey_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = latchkey::db::establish_postgres(&server).expect("PostgreSQL");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        Self { url: url.to_string(), label: "PostgreSQL", postgres: Some((server, name)) }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        if let Some((server, name)) = &self.postgres
            && let Ok(mut admin) = latchkey::db::establish_postgres(server)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Runs wrk once over `tokens`, one per request, and prints a table row.
fn drive(name: &str, port: u16, body_prefix: &str, tokens: &[String], duration: usize, connections: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (lua, list) = (dir.path().join("grant.lua"), dir.path().join("tokens.txt"));
    std::fs::write(&lua, LUA).unwrap();
    let mut file = std::fs::File::create(&list).unwrap();
    for token in tokens {
        writeln!(file, "{token}").unwrap();
    }
    let cpu_before = process_cpu_seconds();
    let output = Command::new("timeout")
        .args([
            &(duration + 20).to_string(),
            "wrk",
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{duration}s"),
            "--latency",
        ])
        .arg("-s")
        .arg(&lua)
        .arg(format!("http://127.0.0.1:{port}/oauth2/token"))
        .env("TOKENS_FILE", &list)
        .env("BODY_PREFIX", body_prefix)
        .output()
        .expect("wrk runs");
    // While wrk ran, this process did nothing but serve it (wrk is a child, not counted).
    let cpu = (process_cpu_seconds() - cpu_before) / duration as f64;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout.lines().find(|l| l.starts_with("RESULT")).unwrap_or("RESULT (wrk failed)");
    let field = |key: &str| {
        result.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{key}="))).unwrap_or("?").to_owned()
    };
    let errors: u64 = field("errors").parse::<u64>().unwrap_or(0) + field("non2xx").parse::<u64>().unwrap_or(0);
    println!(
        "| {name} | {connections} | {} | {} | {} | {cpu:.2} | {:.1} | {errors} |",
        field("rps"),
        field("p50_ms"),
        field("p99_ms"),
        resident_mib()
    );
}

/// CPU time this process (every thread of the server in it) has used, in seconds.
fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// This process's resident memory: the server, plus what seeding left on the heap.
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}
