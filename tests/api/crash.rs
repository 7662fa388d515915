//! A crash: the server is killed with SIGKILL while it rotates refresh tokens under load,
//! then started again on the same database. No refresh token a client received is lost:
//! each was stored before it was sent, each that the client still holds works once, and the
//! families are intact (every used token has exactly one successor, no family has two live
//! tokens, none was revoked by mistake). A rotation whose answer died with the server is
//! retried after the restart and gets the successor stored before the crash.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use latchkey::db::DbConnection;
use latchkey::db::refresh_tokens::{RefreshToken, find_refresh_token};
use latchkey::db::schema::refresh_tokens;
use serde_json::Value;

use crate::authorize::{exchange, obtain_code_for};
use crate::helpers::{Backend, Served, TestDb};
use crate::process::{Instance, free_port, register_browser_app};
use crate::refresh::refresh;

/// Refresh chains rotated as fast as the server answers until it is killed.
const BUSY_CHAINS: usize = 4;
/// Chains that rotate a few times, then hold their newest token until after the restart.
const IDLE_CHAINS: usize = 2;
/// Successful refreshes before the kill, so that it lands in the middle of the load.
const REFRESHES_BEFORE_KILL: usize = 200;

/// What one client saw of its chain: every refresh token it received, oldest first, and
/// whether it presented the newest and got no answer.
struct Chain {
    received: Vec<String>,
    answer_lost: bool,
}

/// Rotates `first` (forever, or `rounds` times) and counts each success in `done`.
async fn keep_refreshing(
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    first: String,
    rounds: Option<usize>,
    done: Arc<AtomicUsize>,
) -> Chain {
    let mut chain = Chain { received: vec![first], answer_lost: false };
    while rounds.is_none_or(|rounds| chain.received.len() <= rounds) {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", chain.received.last().unwrap()),
        ];
        let answer = match http.post(&token_url).form(&form).send().await {
            Ok(response) => {
                assert_eq!(response.status(), 200, "a refresh under load failed");
                response.json::<Value>().await
            }
            Err(error) => Err(error),
        };
        match answer {
            Ok(body) => chain.received.push(body["refresh_token"].as_str().unwrap().to_owned()),
            // The server died with the request in flight: whether it stored the rotation
            // is unknown to the client.
            Err(_) => {
                chain.answer_lost = true;
                break;
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    chain
}

fn stored(conn: &mut DbConnection, hasher: &latchkey::crypto::TokenHasher, token: &str) -> RefreshToken {
    find_refresh_token(conn, hasher.hash(token).as_str()).unwrap().expect("every token handed out was stored first")
}

/// What became of a chain's newest token.
enum Newest {
    Unused,
    /// Rotated, but the answer died with the server: the successor's stored hash.
    RotatedUnheard {
        successor_hash: String,
    },
}

/// Checks the stored state the crash left behind; answers, per chain, what became of its
/// newest token.
fn check_families(db: &TestDb, master_key: &str, chains: &[Chain]) -> Vec<Newest> {
    let hasher = latchkey::crypto::MasterKey::parse(master_key).unwrap().token_hasher();
    let pool = latchkey::db::build_pool(&db.target(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    if let DbConnection::Sqlite(sqlite) = &mut *conn {
        #[derive(QueryableByName)]
        struct Check {
            #[diesel(sql_type = diesel::sql_types::Text)]
            integrity_check: String,
        }
        let checks: Vec<Check> = diesel::sql_query("PRAGMA integrity_check").load(sqlite).unwrap();
        assert_eq!(checks.iter().map(|c| c.integrity_check.as_str()).collect::<Vec<_>>(), ["ok"]);
    }
    chains
        .iter()
        .map(|chain| {
            let rows: Vec<RefreshToken> =
                chain.received.iter().map(|token| stored(&mut conn, &hasher, token)).collect();
            let family = &rows[0].family_id;
            let members: Vec<RefreshToken> = refresh_tokens::table
                .filter(refresh_tokens::family_id.eq(family))
                .select(RefreshToken::as_select())
                .load(&mut *conn)
                .unwrap();
            assert!(members.iter().all(|m| m.revoked_at.is_none()), "nothing was taken for a reuse");
            for pair in rows.windows(2) {
                assert!(pair[0].used_at.is_some(), "a token the client replaced is used");
                assert_eq!(pair[1].parent_id.as_ref(), Some(&pair[0].id), "each successor names its parent");
            }
            for member in &members {
                let children = members.iter().filter(|m| m.parent_id.as_ref() == Some(&member.id)).count();
                assert_eq!(children, usize::from(member.used_at.is_some()), "a used token has one successor");
            }
            let live = members.iter().filter(|m| m.used_at.is_none()).count();
            assert_eq!(live, 1, "a family has exactly one live token");
            let newest = rows.last().unwrap();
            if newest.used_at.is_none() {
                assert_eq!(members.len(), rows.len());
                return Newest::Unused;
            }
            // Stored and used, but the successor's answer died with the server.
            assert!(chain.answer_lost, "only a token whose answer was lost can be used unknown to its client");
            assert_eq!(members.len(), rows.len() + 1);
            assert!(newest.retry_answer_sealed.is_some(), "its answer was kept with the rotation");
            let successor = members.iter().find(|m| m.parent_id.as_ref() == Some(&newest.id)).unwrap();
            Newest::RotatedUnheard { successor_hash: successor.token_hash.clone() }
        })
        .collect()
}

async fn a_killed_server_loses_no_refresh_token_it_handed_out(backend: Backend) {
    // Arrange: a user's grants to an app, through the real binary.
    let db = TestDb::new(&backend);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let env = [
        ("LATCHKEY_ISSUER", issuer.as_str()),
        ("LATCHKEY_RATE_LIMIT_PER_HOUR", "100000000"),
        ("LATCHKEY_RATE_LIMIT_BURST", "100000"),
    ];
    let client_id = register_browser_app(&db, &master_key);
    let mut server = Instance::start(&db, &master_key, port, &env);
    let mut grants = Vec::new();
    for _ in 0..BUSY_CHAINS + IDLE_CHAINS {
        let (code, verifier) = obtain_code_for(&server, &client_id, &["read", "offline_access"]).await;
        let granted: Value = exchange(&server, &client_id, &code, &verifier).await.json().await.unwrap();
        grants.push(granted["refresh_token"].as_str().unwrap().to_owned());
    }

    // Act: rotate under load, and kill the server in the middle of it.
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = grants
        .into_iter()
        .enumerate()
        .map(|(i, first)| {
            let rounds = (i >= BUSY_CHAINS).then_some(10);
            let (http, url) = (server.http().clone(), server.url("/oauth2/token"));
            tokio::spawn(keep_refreshing(http, url, client_id.clone(), first, rounds, done.clone()))
        })
        .collect();
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < REFRESHES_BEFORE_KILL {
        assert!(started.elapsed() < Duration::from_secs(120), "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let mut chains = Vec::new();
    for task in tasks {
        chains.push(task.await.expect("the client saw only successes and a dead server"));
    }
    assert!(chains.iter().take(BUSY_CHAINS).all(|chain| chain.answer_lost), "the kill landed under load");
    assert!(chains.iter().skip(BUSY_CHAINS).all(|chain| !chain.answer_lost && chain.received.len() == 11));

    // Assert: the stored state, then every chain's newest token on the restarted server.
    let newest_states = check_families(&db, &master_key, &chains);
    assert!(
        newest_states.iter().skip(BUSY_CHAINS).all(|state| matches!(state, Newest::Unused)),
        "idle chains hold a token never presented"
    );
    // Within the retry window (30 s by default) of the rotations the kill cut short.
    let server = Instance::start(&db, &master_key, port, &env);
    let hasher = latchkey::crypto::MasterKey::parse(&master_key).unwrap().token_hasher();
    for (chain, state) in chains.iter().zip(newest_states) {
        let newest = chain.received.last().unwrap();
        let first_use = refresh(&server, &client_id, newest, None).await;
        assert_eq!(first_use.status(), 200, "a token the client holds works");
        let first_use = first_use.bytes().await.unwrap();
        match state {
            Newest::Unused => {
                let again = refresh(&server, &client_id, newest, None).await;
                assert_eq!(again.bytes().await.unwrap(), first_use, "a retry gets the same answer");
            }
            Newest::RotatedUnheard { successor_hash } => {
                // The retry after the crash gets the successor stored before it, not a second.
                let answer: Value = serde_json::from_slice(&first_use).unwrap();
                let successor = answer["refresh_token"].as_str().unwrap();
                assert_eq!(hasher.hash(successor).as_str(), successor_hash);
            }
        }
    }
}

crate::on_both_backends!(a_killed_server_loses_no_refresh_token_it_handed_out);
