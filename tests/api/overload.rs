//! A flood of password work against the real binary: what it may cost the machine.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, Served, TestDb};
use crate::process::{Instance, free_port, json, latchkey};

const MASTER_KEY: &str = "c2lnbmluZy1mbG9vZC10ZXN0LW1hc3Rlci1rZXkhISE=";
const MIB: u64 = 1024 * 1024;
/// How far above its resting allocations the server may stay once the flood is over. The
/// release build's absolute figures (resting, peak, settled RSS) are in docs/benchmarks.md;
/// this test runs the debug build, whose code alone is larger.
const SETTLED_ABOVE_RESTING: u64 = 16 * MIB;
/// What the flood may add to the resting RSS at its peak: an argon2id block (19 MiB) per
/// core at once, plus 700 connections' buffers. Measured from the server's own resting RSS,
/// not as a total: the debug binary's resident code grows with every feature (the unbounded
/// server of before reached 3,300 MiB).
const PEAK_ABOVE_RESTING: u64 = 72 * MIB;

/// A figure from `/proc/<pid>/status`, in bytes: `VmHWM` the peak RSS, `RssAnon` the part
/// of RSS that is memory the process allocated (not the pages of its binary it has run).
fn memory(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server runs");
    let line = status.lines().find(|l| l.starts_with(field)).expect("the field exists");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A browser on its own loopback address (all of 127/8 is this machine), holding the
/// sign-in page's CSRF cookie and token: what a botnet's member would be.
async fn attacker(server: &Instance, n: u8) -> (reqwest::Client, String) {
    let browser = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 1, n)))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let page = browser.get(server.url("/login")).send().await.unwrap().text().await.unwrap();
    (browser, crate::login::csrf_token(&page))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_password_work_is_bounded_and_its_memory_comes_back() {
    // Arrange: a server, an owner key, ten attackers of fifty guesses each, and a prober.
    let db = TestDb::new(&Backend::Sqlite);
    let owner = json(&latchkey(
        &db,
        MASTER_KEY,
        &[],
        &["api-key", "create", "--kind", "tenant-owner", "--name", "ops", "--json"],
    ))["key"]
        .as_str()
        .unwrap()
        .to_owned();
    // Housekeeping (which hands free memory back) every 2 s rather than 30, to settle sooner.
    let server = Arc::new(Instance::start(&db, MASTER_KEY, free_port(), &[("LATCHKEY_KEY_REFRESH_SECS", "2")]));
    let pid = server.child.id();
    let mut attackers = Vec::new();
    for n in 1..=10 {
        attackers.push(attacker(&server, n).await);
    }
    let (resting, resting_rss) = (memory(pid, "RssAnon"), memory(pid, "VmRSS"));
    let flooding = Arc::new(AtomicBool::new(true));
    let (probes, probe_failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let prober = {
        let (server, flooding, probes, failures) =
            (server.clone(), flooding.clone(), probes.clone(), probe_failures.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            while flooding.load(Ordering::Acquire) {
                let answered = http.get(server.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200);
                probes.fetch_add(1, Ordering::AcqRel);
                failures.fetch_add(u64::from(!answered), Ordering::AcqRel);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Act: 500 sign-in attempts and 200 user creations, all at once.
    let mut requests = Vec::new();
    for (a, (browser, token)) in attackers.iter().enumerate() {
        for i in 0..50 {
            let (browser, token, url) = (browser.clone(), token.clone(), server.url("/login"));
            requests.push(tokio::spawn(async move {
                let email = format!("victim{a}-{i}@example.com");
                let form = [("email", email.as_str()), ("password", "wrong password"), ("csrf_token", &token)];
                browser.post(url).form(&form).send().await.unwrap().status().as_u16()
            }));
        }
    }
    for i in 0..200 {
        let (http, url, owner) = (server.http().clone(), server.url("/api/v1/users"), owner.clone());
        requests.push(tokio::spawn(async move {
            let body = json!({ "email": format!("new{i}@example.com"), "password": "a long enough password" });
            http.post(url).bearer_auth(owner).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    flooding.store(false, Ordering::Release);
    prober.await.unwrap();
    let peak = memory(pid, "VmHWM");
    // Idle connections close after the server's keep-alive (5 s); its database connections
    // keep their page caches, a few MiB that are the point of a cache.
    drop(attackers);
    let settle_from = Instant::now();
    let mut settled = memory(pid, "RssAnon");
    while settled >= resting + SETTLED_ABOVE_RESTING && settle_from.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        settled = memory(pid, "RssAnon");
    }

    // Assert
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    eprintln!(
        "RSS at rest {} MiB ({} MiB allocated), peak {} MiB, after {:?} {} MiB ({} MiB allocated); \
         401: {}, 201: {}, 503: {}, 429: {}",
        resting_rss / MIB,
        resting / MIB,
        peak / MIB,
        settle_from.elapsed(),
        memory(pid, "VmRSS") / MIB,
        settled / MIB,
        count(401),
        count(201),
        count(503),
        count(429)
    );
    assert!(statuses.iter().all(|s| [201, 401, 429, 503].contains(s)), "{statuses:?}");
    assert!(count(401) + count(201) > 0, "some work was done");
    assert!(count(503) > 0, "and the rest was refused, not queued without end");
    assert!(peak < resting_rss + PEAK_ABOVE_RESTING, "peak RSS {} MiB", peak / MIB);
    assert!(settled < resting + SETTLED_ABOVE_RESTING, "{} MiB still allocated a minute later", settled / MIB);
    assert!(probes.load(Ordering::Acquire) > 0);
    assert_eq!(probe_failures.load(Ordering::Acquire), 0, "/healthz answered throughout");
}
