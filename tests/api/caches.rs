//! The caches of API keys, clients, APIs and revocations never outlive a change: a revoked
//! API key, a deactivated user's personal key, a client's replaced secret, a deleted client,
//! a revoked access token and the tokens of a deleted API that shared a secret (HS256) stop
//! working at once on the instance that made the change, and
//! within a second on every other (PostgreSQL's `NOTIFY`; Redis between instances on one
//! SQLite file) — with the caches' age set to ten minutes, so that only the announcement can
//! explain it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{API, Backend, Served, TestDb, management_api, personal_key_from_account_page, spawn_app_with};
use crate::login::{EMAIL, PASSWORD};
use crate::process::{Instance, free_port, json, latchkey};

/// Longer than any test: an entry that stops being used did not age out.
const MAX_AGE_SECS: u64 = 600;

/// An API whose tokens are HS256, signed with the secret it shares with Latchkey.
const SHARED_API: &str = "https://shared.example.com";

/// The caches the tests expect hits in.
const CACHES: [&str; 5] = ["api_keys", "clients", "apis", "apis_by_id", "revocations"];

async fn made(server: &impl Served, method: &str, path: &str, key: &str, body: Value) -> Value {
    let (status, answer) = management_api(server, method, path, key, Some(body)).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

/// Whether `key` authenticates at `server` (401 otherwise; anything else is a failure).
async fn key_works(server: &impl Served, key: &str) -> bool {
    match management_api(server, "GET", "/api-keys/current", key, None).await {
        (200, _) => true,
        (401, _) => false,
        (status, body) => panic!("the key was neither accepted nor refused: {status} {body}"),
    }
}

/// Whether the client gets a token by client credentials at `server`.
async fn client_works(server: &impl Served, (id, secret): (&str, &str)) -> bool {
    let response = server
        .http()
        .post(server.url("/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("resource", API)])
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        200 => true,
        401 => false,
        status => panic!("the client was neither accepted nor refused: {status} {}", response.text().await.unwrap()),
    }
}

/// Whether introspection at `server` says `token` is active.
async fn token_active(server: &impl Served, token: &str, (id, secret): (&str, &str)) -> bool {
    let response = server
        .http()
        .post(server.url("/oauth2/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["active"] == true
}

/// The credentials a change must stop, made through the management API.
struct Credentials {
    revoked_key: (String, String),
    personal_key: String,
    user_id: String,
    rotated_client: (String, String),
    deleted_client: (String, String),
    /// A client that introspects and revokes its own access token.
    introspector: (String, String),
    access_token: String,
    /// An HS256 token the deleted client got for [`SHARED_API`], which is deleted after it.
    shared_token: String,
    shared_api_id: String,
}

impl Credentials {
    async fn make(server: &impl Served, owner: &str) -> Self {
        made(server, "POST", "/apis", owner, json!({ "audience": API, "scopes": ["read"] })).await;
        let shared_api = made(
            server,
            "POST",
            "/apis",
            owner,
            json!({ "audience": SHARED_API, "scopes": ["read"], "signing_alg": "HS256" }),
        )
        .await;
        let mut clients = Vec::new();
        for (name, audiences) in [("Reports", vec![API]), ("Billing", vec![API, SHARED_API]), ("Gateway", vec![API])] {
            let body = json!({
                "name": name, "grant_types": ["client_credentials"], "scopes": ["read"], "audiences": audiences,
            });
            let client = made(server, "POST", "/clients", owner, body).await;
            clients
                .push((client["client_id"].as_str().unwrap().into(), client["client_secret"].as_str().unwrap().into()));
        }
        let body = json!({ "kind": "restricted", "name": "reader", "permissions": ["clients:read"] });
        let key = made(server, "POST", "/api-keys", owner, body).await;
        let user = made(server, "POST", "/users", owner, json!({ "email": EMAIL, "password": PASSWORD })).await;
        let introspector: (String, String) = clients.pop().unwrap();
        let deleted_client = clients.pop().unwrap();
        let token_for = |(id, secret): &(String, String), resource: &'static str| {
            let request = server
                .http()
                .post(server.url("/oauth2/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("resource", resource)]);
            async move { request.send().await.unwrap().json::<Value>().await.unwrap()["access_token"].clone() }
        };
        let access_token = token_for(&introspector, API).await;
        let shared_token = token_for(&deleted_client, SHARED_API).await;
        Self {
            access_token: access_token.as_str().unwrap().into(),
            shared_token: shared_token.as_str().unwrap().into(),
            shared_api_id: shared_api["id"].as_str().unwrap().into(),
            introspector,
            revoked_key: (key["id"].as_str().unwrap().into(), key["key"].as_str().unwrap().into()),
            personal_key: personal_key_from_account_page(server, EMAIL, PASSWORD).await,
            user_id: user["id"].as_str().unwrap().into(),
            rotated_client: clients.pop().unwrap(),
            deleted_client,
        }
    }

    /// Uses each credential twice at `server`, so that it is cached there.
    async fn use_all(&self, server: &impl Served) {
        for _ in 0..2 {
            assert!(key_works(server, &self.revoked_key.1).await);
            assert!(key_works(server, &self.personal_key).await);
            assert!(client_works(server, pair(&self.rotated_client)).await);
            assert!(client_works(server, pair(&self.deleted_client)).await);
            assert!(token_active(server, &self.access_token, pair(&self.introspector)).await);
            assert!(token_active(server, &self.shared_token, pair(&self.introspector)).await);
        }
    }

    /// Revokes the key, deactivates the user, replaces the secret (the old one stops at
    /// once), deletes the other client and then the HS256 API only it used, and revokes the
    /// access token, at `server`; answers the new secret.
    async fn change_all(&self, server: &impl Served, owner: &str) -> String {
        let (key_id, client_id) = (&self.revoked_key.0, &self.rotated_client.0);
        assert_eq!(management_api(server, "DELETE", &format!("/api-keys/{key_id}"), owner, None).await.0, 204);
        made(server, "POST", &format!("/users/{}/deactivate", self.user_id), owner, json!({})).await;
        let rotated = made(
            server,
            "POST",
            &format!("/clients/{client_id}/rotate-secret"),
            owner,
            json!({ "grace_period_secs": 0 }),
        )
        .await;
        assert_eq!(
            management_api(server, "DELETE", &format!("/clients/{}", self.deleted_client.0), owner, None).await.0,
            204
        );
        assert_eq!(
            management_api(server, "DELETE", &format!("/apis/{}", self.shared_api_id), owner, None).await.0,
            204
        );
        let revoked = server
            .http()
            .post(server.url("/oauth2/revoke"))
            .basic_auth(&self.introspector.0, Some(&self.introspector.1))
            .form(&[("token", self.access_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 200);
        rotated["client_secret"].as_str().unwrap().to_owned()
    }

    /// Which of them still work at `server`, by name.
    async fn still_working(&self, server: &impl Served) -> Vec<&'static str> {
        let mut working = Vec::new();
        if key_works(server, &self.revoked_key.1).await {
            working.push("revoked API key");
        }
        if key_works(server, &self.personal_key).await {
            working.push("deactivated user's personal key");
        }
        if client_works(server, pair(&self.rotated_client)).await {
            working.push("replaced client secret");
        }
        if client_works(server, pair(&self.deleted_client)).await {
            working.push("deleted client");
        }
        if token_active(server, &self.access_token, pair(&self.introspector)).await {
            working.push("revoked access token");
        }
        if token_active(server, &self.shared_token, pair(&self.introspector)).await {
            working.push("token of a deleted HS256 API");
        }
        working
    }
}

fn pair((id, secret): &(String, String)) -> (&str, &str) {
    (id, secret)
}

async fn a_change_stops_cached_credentials_at_once(backend: Backend) {
    // Arrange: everything used, so cached, with entries that would live ten minutes.
    let app = cached_app(&backend).await;
    let owner = app.owner_key();
    let credentials = Credentials::make(&app, &owner).await;
    let hits_before = cache_hits(&app).await;
    credentials.use_all(&app).await;
    // The second use of each was answered from memory: what the changes below must undo.
    let hits = cache_hits(&app).await;
    for cache in CACHES {
        assert!(hits[cache] > hits_before[cache], "no hit in the {cache} cache: {hits:?}");
    }

    // Act
    let new_secret = credentials.change_all(&app, &owner).await;

    // Assert: the very next request is refused.
    assert_eq!(credentials.still_working(&app).await, Vec::<&str>::new());
    assert!(client_works(&app, (&credentials.rotated_client.0, &new_secret)).await, "the new secret works");
}

/// A server on `backend` whose cache entries would live ten minutes, once it hears the other
/// instances: finding the channel drops everything cached, which must not fall between a
/// read and the one after it that the tests count as a hit.
async fn cached_app(backend: &Backend) -> crate::helpers::TestApp {
    let app = spawn_app_with(TestDb::new(backend), |settings| {
        settings.cache_max_age = Duration::from_secs(MAX_AGE_SECS);
    })
    .await;
    if matches!(backend, Backend::Postgres(_)) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !app.state.pool.changes().is_hearing() {
            assert!(Instant::now() < deadline, "the server never listened on PostgreSQL");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    app
}

/// How often each cache at `server` answered from memory, from its `/metrics`.
async fn cache_hits(server: &impl Served) -> std::collections::HashMap<String, u64> {
    let text = server.http().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let mut hits = std::collections::HashMap::new();
    for cache in CACHES {
        let line = format!(r#"latchkey_cache_lookups_total{{cache="{cache}",result="hit"}} "#);
        let count = text.lines().find_map(|l| l.strip_prefix(line.as_str())).map_or(0, |n| n.parse().unwrap());
        hits.insert(cache.to_owned(), count);
    }
    hits
}

/// `GET /api/v1/clients/{id}` answers from the client cache (filled by the token endpoint or
/// an earlier read) with no trip to the database, but exactly as the database would: only
/// to a caller who may read the client, and as it is since its last change.
async fn a_kept_client_is_shown_as_it_now_is_to_whom_may_read_it(backend: Backend) {
    // Arrange: a client of the Payments team, read (so kept) by the tenant owner; a team
    // key for Payments and one for Billing.
    let app = cached_app(&backend).await;
    let owner = app.owner_key();
    let mut team_keys = Vec::new();
    for name in ["Payments", "Billing"] {
        let team = made(&app, "POST", "/teams", &owner, json!({ "name": name })).await;
        let body = json!({ "kind": "team", "name": name, "team_id": team["id"], "team_role": "viewer" });
        team_keys.push((team["id"].clone(), made(&app, "POST", "/api-keys", &owner, body).await["key"].clone()));
    }
    let [(payments, payments_key), (_, billing_key)] = <[_; 2]>::try_from(team_keys).unwrap();
    let body = json!({
        "name": "Ledger", "team_id": payments, "grant_types": ["client_credentials"], "scopes": [],
    });
    let id = made(&app, "POST", "/clients", &owner, body).await["client_id"].as_str().unwrap().to_owned();
    let path = format!("/clients/{id}");
    let hits_before = cache_hits(&app).await["clients"];
    for _ in 0..2 {
        assert_eq!(management_api(&app, "GET", &path, &owner, None).await.0, 200);
    }
    assert_eq!(cache_hits(&app).await["clients"], hits_before + 1, "the second read came from the cache");

    // Act
    let (billing_status, billing_body) = management_api(&app, "GET", &path, billing_key.as_str().unwrap(), None).await;
    let (payments_status, _) = management_api(&app, "GET", &path, payments_key.as_str().unwrap(), None).await;
    made(&app, "PATCH", &path, &owner, json!({ "name": "General ledger" })).await;
    let (_, renamed) = management_api(&app, "GET", &path, payments_key.as_str().unwrap(), None).await;

    // Assert: out of reach is "not found", as from the database; the rename shows at once.
    assert_eq!((billing_status, billing_body["error"].as_str()), (404, Some("not_found")), "{billing_body}");
    assert_eq!(payments_status, 200);
    assert_eq!(renamed["name"], "General ledger");
    assert_eq!(cache_hits(&app).await["clients"], hits_before + 3, "the two team reads before the rename were hits");
}

/// A change made by a command, in another process, with the caches as full as above.
async fn a_command_line_change_stops_a_cached_key(backend: Backend) {
    // Arrange
    let db = TestDb::new(&backend);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let app = spawn_app_with(TestDb::reuse(&db), |settings| {
        settings.cache_max_age = Duration::from_secs(MAX_AGE_SECS);
        settings.master_key = Some(master_key.clone().into());
    })
    .await;
    let owner = app.owner_key();
    let body = json!({ "kind": "restricted", "name": "reader", "permissions": ["clients:read"] });
    let key = made(&app, "POST", "/api-keys", &owner, body).await;
    let (id, key) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());
    assert!(key_works(&app, key).await && key_works(&app, key).await);

    // Act
    json(&latchkey(&db, &master_key, &[], &["api-key", "delete", id, "--json"]));

    // Assert: on PostgreSQL the command's NOTIFY reaches the server; on SQLite without
    // Redis nothing can, and the entry's one-second age is the bound.
    let refused_within = refused_within(|| key_works(&app, key)).await;
    assert!(refused_within < Duration::from_millis(1500), "still accepted after {refused_within:?}");
}

async fn a_refresh_takes_its_api_from_the_cache_and_an_api_change_at_once(backend: Backend) {
    use latchkey::manage::apis::{ApiUpdate, update_api};

    // Arrange: a person's grant for an API; its code exchange read the API into the cache.
    let app = cached_app(&backend).await;
    let grant = crate::refresh::grant(&app, &["read", "offline_access"]).await;
    let expires_in = |body: &Value| body["expires_in"].as_i64().expect("expires_in");
    let hits_before = cache_hits(&app).await["apis"];
    let response = crate::refresh::refresh(&app, &grant.client_id, &grant.refresh_token, None).await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.unwrap();
    assert_eq!(expires_in(&first), 3600);
    assert!(cache_hits(&app).await["apis"] > hits_before, "the refresh read its API from the database");

    // Act: the API's tokens now live ten minutes.
    {
        let mut conn = app.pool.get().unwrap();
        let api = latchkey::db::apis::find_api_by_audience(&mut conn, API).unwrap().expect("the API");
        let update = ApiUpdate { name: None, scopes: None, token_lifetime_secs: Some(600) };
        update_api(&mut conn, &latchkey::manage::Caller::system(), &api.id, update).unwrap();
    }

    // Assert: the very next refresh mints for the API as it now is.
    let next = first["refresh_token"].as_str().unwrap();
    let response = crate::refresh::refresh(&app, &grant.client_id, next, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(expires_in(&response.json().await.unwrap()), 600);
}

/// How long until `works` says no, asking every 25 ms (well within the key's rate limit)
/// for at most 3 s.
async fn refused_within<F: std::future::Future<Output = bool>>(mut works: impl FnMut() -> F) -> Duration {
    let start = Instant::now();
    while works().await {
        assert!(start.elapsed() < Duration::from_secs(3), "never refused");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    start.elapsed()
}

crate::on_both_backends!(
    a_refresh_takes_its_api_from_the_cache_and_an_api_change_at_once,
    a_change_stops_cached_credentials_at_once,
    a_kept_client_is_shown_as_it_now_is_to_whom_may_read_it,
    a_command_line_change_stops_a_cached_key
);

/// Two `latchkey serve` processes on `db` behind one issuer (as behind a load balancer), with
/// `env` on top of long-lived cache entries.
fn two_instances(db: &TestDb, master_key: &str, env: &[(&str, &str)]) -> (Instance, Instance) {
    let port_a = free_port();
    let port_b = std::iter::repeat_with(free_port).find(|port| *port != port_a).unwrap();
    let (max_age, issuer) = (MAX_AGE_SECS.to_string(), format!("http://127.0.0.1:{port_a}"));
    let mut shared = vec![("LATCHKEY_CACHE_MAX_AGE_SECS", max_age.as_str()), ("LATCHKEY_ISSUER", issuer.as_str())];
    // The refusals these tests provoke count against 127.0.0.1's failure budget, which is
    // kept in Redis and so shared with every test (and test run) that uses it: out of reach.
    shared.extend_from_slice(&[
        ("LATCHKEY_RATE_LIMIT_PER_HOUR", "100000000"),
        ("LATCHKEY_RATE_LIMIT_BURST", "1000000"),
        ("LATCHKEY_FAILED_AUTH_PER_HOUR", "100000000"),
        ("LATCHKEY_FAILED_AUTH_BURST", "1000000"),
    ]);
    shared.extend_from_slice(env);
    let a = Instance::start(db, master_key, port_a, &shared);
    let b = Instance::start(db, master_key, port_b, &shared);
    (a, b)
}

/// Everything cached on both instances, changed through `a`: refused at once there, and
/// within a second on `b`.
async fn changes_reach_the_other_instance(db: &TestDb, master_key: &str, a: &Instance, b: &Instance) {
    let owner = json(&latchkey(
        db,
        master_key,
        &[],
        &["api-key", "create", "--kind", "tenant-owner", "--name", "ops", "--json"],
    ));
    let owner = owner["key"].as_str().unwrap();
    let credentials = Credentials::make(a, owner).await;
    credentials.use_all(a).await;
    credentials.use_all(b).await;
    // The listeners hear within a poll (20 ms); give the second instance's a moment to be up.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let changed = Instant::now();
    credentials.change_all(a, owner).await;
    let changes_took = changed.elapsed();

    assert_eq!(credentials.still_working(a).await, Vec::<&str>::new(), "at once where the change was made");
    let mut working = credentials.still_working(b).await;
    while !working.is_empty() {
        assert!(
            changed.elapsed() < changes_took + Duration::from_secs(1),
            "still working on the other instance after {:?}: {working:?}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
        working = credentials.still_working(b).await;
    }
}

/// Two instances on one PostgreSQL database (with Redis configured for their rate limits,
/// as in production): the database carries the announcements.
#[tokio::test]
async fn on_postgresql_a_change_reaches_every_instance_within_a_second() {
    let Some(Backend::Postgres(server)) = Backend::postgres() else {
        eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: several instances not tested");
        return;
    };
    let redis = std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let db = TestDb::new(&Backend::Postgres(server));
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let (a, b) = two_instances(&db, &master_key, &[("LATCHKEY_REDIS_URL", &redis)]);
    changes_reach_the_other_instance(&db, &master_key, &a, &b).await;
}

/// Two instances on one SQLite file: only Redis can carry the announcements.
#[tokio::test]
async fn on_sqlite_with_redis_a_change_reaches_every_instance_within_a_second() {
    let Ok(redis) = std::env::var("LATCHKEY_TEST_REDIS_URL") else {
        eprintln!("LATCHKEY_TEST_REDIS_URL is not set: instances sharing SQLite through Redis not tested");
        return;
    };
    let db = TestDb::new(&Backend::Sqlite);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    crate::process::migrated(&db, &master_key);
    let (a, b) = two_instances(&db, &master_key, &[("LATCHKEY_REDIS_URL", &redis)]);
    changes_reach_the_other_instance(&db, &master_key, &a, &b).await;
}
