//! The real `latchkey` binary in processes of its own, for what servers inside the test
//! process cannot show: several instances side by side, a stop, a crash and a restart.
//! Operators' commands (`latchkey client create` and the rest) set up what the servers
//! then serve, as they would in production.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{Served, TestDb};

/// A port nothing listens on now, for a server started in a process of its own.
///
/// Not one the kernel hands out (`bind` to port 0): those come from the ephemeral range,
/// where every outgoing connection of the tests running alongside takes its local port,
/// so one of them could take it between this call and the server's `bind`. These come
/// from just below that range, each once per test run.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (first, span) = below_the_ephemeral_range();
    // Another test binary of the same run (or another checkout's) starts elsewhere.
    let offset = std::process::id() % span;
    loop {
        let port = u16::try_from(first + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % span).unwrap();
        // Each probe's listener is closed when its call returns, before the next binds.
        let free = |address: &str| TcpListener::bind((address, port)).is_ok();
        if free("0.0.0.0") && free("127.0.0.1") {
            return port;
        }
    }
}

/// The first port and the number of ports of the range just below the kernel's ephemeral one.
fn below_the_ephemeral_range() -> (u32, u32) {
    const SPAN: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let first = ephemeral_low.saturating_sub(SPAN).max(1_024);
    match ephemeral_low.saturating_sub(first) {
        // A kernel whose ephemeral range starts very low: any unprivileged range will do.
        span if span < 1_000 => (20_000, SPAN),
        span => (first, span),
    }
}

/// `latchkey` with `db`, `master_key` and `env`, in a scratch directory of its own.
fn command(db: &TestDb, master_key: &str, env: &[(&str, &str)], dir: &std::path::Path) -> Command {
    // LATCHKEY_TEST_BIN runs these tests against another build (the release one, for the
    // figures in docs/benchmarks.md).
    let binary = std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned());
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .env_remove("LATCHKEY_ENVIRONMENT")
        .env("LATCHKEY_DATABASE_URL", db.url())
        .env("LATCHKEY_MASTER_KEY", master_key)
        .env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs `latchkey ARGS` against `db`, as an operator would.
pub fn latchkey(db: &TestDb, master_key: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    command(db, master_key, env, dir.path()).args(args).output().expect("the binary runs")
}

/// `latchkey migrate` on `db`: the database a server would have made, for the management
/// commands, which never make one.
pub fn migrated(db: &TestDb, master_key: &str) {
    let output = latchkey(db, master_key, &[], &["migrate"]);
    assert!(output.status.success(), "migrate: {}", String::from_utf8_lossy(&output.stderr));
}

/// Runs `latchkey ARGS` with `input` on standard input.
pub fn latchkey_with_input(db: &TestDb, master_key: &str, args: &[&str], input: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(db, master_key, &[], dir.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The JSON a successful `--json` command printed.
pub fn json(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed ({}): {stderr}", output.status);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("no JSON on stdout ({e}): {}\nstderr: {stderr}", String::from_utf8_lossy(&output.stdout))
    })
}

/// One `latchkey serve` process.
pub struct Instance {
    pub child: Child,
    pub port: u16,
    address: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Instance {
    /// Starts serving `db` on `port` with `env` on top of the database and master key, and
    /// waits until it listens.
    pub fn start(db: &TestDb, master_key: &str, port: u16, env: &[(&str, &str)]) -> Self {
        Self::start_logging(db, master_key, port, env, Stdio::null())
    }

    /// As [`Instance::start`], with the log (standard error) going to `log`.
    pub fn start_logging(db: &TestDb, master_key: &str, port: u16, env: &[(&str, &str)], log: Stdio) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = command(db, master_key, env, dir.path())
            .arg("serve")
            .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the binary starts");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut instance = Self { child, port, address: format!("http://127.0.0.1:{port}"), http, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = instance.child.try_wait().unwrap() {
                panic!("the server exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "the server did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        instance
    }

    /// Sends SIGTERM: the graceful stop.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Sends SIGKILL and reaps the process: nothing of it runs on, nothing is flushed.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL is delivered");
        self.child.wait().unwrap();
    }
}

impl Served for Instance {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an operator registers for a browser app, with the command line: the API at
/// [`API`](crate::helpers::API), the user who signs in, and a public client that may keep a
/// refresh token. Answers the client's id.
pub fn register_browser_app(db: &TestDb, master_key: &str) -> String {
    use crate::login::{EMAIL, PASSWORD};
    json(&latchkey(
        db,
        master_key,
        &[],
        &["api", "create", "--audience", crate::helpers::API, "--scope", "read", "write", "--json"],
    ));
    json(&latchkey_with_input(
        db,
        master_key,
        &["user", "create", "--email", EMAIL, "--password-stdin", "--json"],
        &format!("{PASSWORD}\n"),
    ));
    let client = json(&latchkey(
        db,
        master_key,
        &[],
        &[
            "client",
            "create",
            "--name",
            "Photo Printer",
            "--grant-type",
            "authorization_code",
            "refresh_token",
            "--scope",
            "read",
            "offline_access",
            "--audience",
            crate::helpers::API,
            "--redirect-uri",
            "https://app.example.com/callback",
            "--public",
            "--json",
        ],
    ));
    client["client_id"].as_str().unwrap().to_owned()
}

/// The API at [`API`](crate::helpers::API) with `read`, and a machine client for it
/// ([`register_machine_client`]); answers the client's id and secret.
pub fn register_api_and_machine_client(db: &TestDb, master_key: &str) -> (String, String) {
    let api = ["api", "create", "--audience", crate::helpers::API, "--scope", "read", "--json"];
    json(&latchkey(db, master_key, &[], &api));
    register_machine_client(db, master_key)
}

/// A confidential client for client credentials with `read` on [`API`](crate::helpers::API),
/// which must exist; answers its id and secret.
pub fn register_machine_client(db: &TestDb, master_key: &str) -> (String, String) {
    let client = json(&latchkey(
        db,
        master_key,
        &[],
        &[
            "client",
            "create",
            "--name",
            "Reports",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
            "--audience",
            crate::helpers::API,
            "--json",
        ],
    ));
    (client["client_id"].as_str().unwrap().to_owned(), client["client_secret"].as_str().unwrap().to_owned())
}
