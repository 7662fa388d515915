//! Two `latchkey serve` processes on one PostgreSQL database and one Redis, as behind a
//! load balancer: started together on an empty database; whatever one issues, the other
//! introspects, refreshes and revokes; refresh-reuse detection holds across them; a key
//! rotated by `latchkey keys rotate` is published by both within two reload periods; one
//! rate-limit budget spans both.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::authorize::{exchange, obtain_code_for};
use crate::helpers::{API, Backend, Served, TestDb, post_form};
use crate::process::{Instance, free_port, json, latchkey, register_browser_app, register_machine_client};
use crate::refresh::refresh;

struct TwoInstances {
    a: Instance,
    b: Instance,
    issuer: String,
    master_key: String,
    db: TestDb,
}

/// Two processes sharing a fresh database, a master key and an issuer (the load balancer's
/// address), rereading signing keys every second, with `env` on top.
fn two_instances(server_url: &str, env: &[(&str, &str)]) -> TwoInstances {
    let db = TestDb::new(&Backend::Postgres(server_url.to_owned()));
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let port_a = free_port();
    let port_b = std::iter::repeat_with(free_port).find(|port| *port != port_a).unwrap();
    let issuer = format!("http://127.0.0.1:{port_a}");
    let mut shared = vec![("LATCHKEY_ISSUER", issuer.as_str()), ("LATCHKEY_KEY_REFRESH_SECS", "1")];
    shared.extend_from_slice(env);
    // Started at the same moment: migrations and the first signing key race.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| Instance::start(&db, &master_key, port_a, &shared));
        let b = scope.spawn(|| Instance::start(&db, &master_key, port_b, &shared));
        (a.join().unwrap(), b.join().unwrap())
    });
    TwoInstances { a, b, issuer, master_key, db }
}

fn postgres() -> Option<String> {
    let url = std::env::var("LATCHKEY_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty());
    if url.is_none() {
        eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: several instances not tested");
    }
    url
}

async fn client_credentials(server: &impl Served, (id, secret): (&str, &str)) -> reqwest::Response {
    post_form(server, "/oauth2/token", &[("grant_type", "client_credentials"), ("scope", "read")], Some((id, secret)))
        .await
}

async fn jwks_kids(server: &impl Served) -> Vec<String> {
    let jwks: jsonwebtoken::jwk::JwkSet =
        server.http().get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks.keys.into_iter().filter_map(|key| key.common.key_id).collect()
}

/// Two instances started at the same moment on an empty database make one first signing
/// key between them, and both publish and sign with it.
#[tokio::test]
async fn instances_started_together_make_one_first_signing_key() {
    let Some(server_url) = postgres() else { return };
    let TwoInstances { db, master_key, a, b, .. } = two_instances(&server_url, &[]);

    let keys = json(&latchkey(&db, &master_key, &[], &["keys", "list", "--json"]));

    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["state"], "active");
    let kid = keys[0]["kid"].as_str().unwrap();
    assert_eq!(jwks_kids(&a).await, [kid]);
    assert_eq!(jwks_kids(&b).await, [kid]);
}

#[tokio::test]
async fn what_one_process_issues_the_other_honours() {
    let Some(server_url) = postgres() else { return };
    // Arrange: a user's grant through instance A.
    let TwoInstances { db, master_key, a, b, .. } = two_instances(&server_url, &[]);
    let client_id = register_browser_app(&db, &master_key);
    let (machine_id, machine_secret) = register_machine_client(&db, &master_key);
    let machine = (machine_id.as_str(), machine_secret.as_str());
    let (code, verifier) = obtain_code_for(&a, &client_id, &["read", "offline_access"]).await;
    let granted: Value = exchange(&a, &client_id, &code, &verifier).await.json().await.unwrap();
    let access_token = granted["access_token"].as_str().unwrap();
    let refresh_token = granted["refresh_token"].as_str().unwrap();

    // Act and assert: B introspects and refreshes what A issued.
    let introspected: Value =
        post_form(&b, "/oauth2/introspect", &[("token", access_token)], Some(machine)).await.json().await.unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    let refreshed = refresh(&b, &client_id, refresh_token, None).await;
    assert_eq!(refreshed.status(), 200);
    let successor = refreshed.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned();

    // A retry on A gets B's answer; once the app has moved on, the retired token presented
    // to A revokes the family on both.
    let retried = refresh(&a, &client_id, refresh_token, None).await;
    assert_eq!(retried.json::<Value>().await.unwrap()["refresh_token"], successor.as_str());
    let moved_on = refresh(&b, &client_id, &successor, None).await;
    let newest = moved_on.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned();
    let reused = refresh(&a, &client_id, refresh_token, None).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(reused.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(refresh(&b, &client_id, &newest, None).await.status(), 400, "the newest died with its family");

    // A token A issued and B revoked is inactive on A.
    let token: Value = client_credentials(&a, machine).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    assert_eq!(post_form(&b, "/oauth2/revoke", &[("token", token)], Some(machine)).await.status(), 200);
    let introspected: Value =
        post_form(&a, "/oauth2/introspect", &[("token", token)], Some(machine)).await.json().await.unwrap();
    assert_eq!(introspected["active"], false);
}

#[tokio::test]
async fn a_key_rotated_by_the_operator_is_published_and_used_by_both() {
    let Some(server_url) = postgres() else { return };
    // Arrange
    let TwoInstances { db, master_key, issuer, a, b } = two_instances(&server_url, &[]);
    json(&latchkey(&db, &master_key, &[], &["api", "create", "--audience", API, "--scope", "read", "--json"]));
    let (machine_id, machine_secret) = register_machine_client(&db, &master_key);
    let machine = (machine_id.as_str(), machine_secret.as_str());
    let old: Value = client_credentials(&a, machine).await.json().await.unwrap();
    let old_token = old["access_token"].as_str().unwrap().to_owned();

    // Act
    let rotated = json(&latchkey(&db, &master_key, &[], &["keys", "rotate", "--json"]));
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();

    // Assert: both publish the new key within two reload periods (2 s), and sign with it.
    let started = Instant::now();
    for server in [&a, &b] {
        while !jwks_kids(server).await.contains(&new_kid) {
            assert!(started.elapsed() < Duration::from_secs(5), "two reload periods (2 s) and some slack");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for server in [&a, &b] {
        let token: Value = client_credentials(server, machine).await.json().await.unwrap();
        let header = jsonwebtoken::decode_header(token["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()), "every instance signs with the new key");
    }
    let jwks = b.http().get(b.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    crate::helpers::verify_with_jwks(&old_token, &jwks, &issuer, API).expect("tokens of the retired key verify");
}

#[tokio::test]
async fn a_token_revoked_on_one_is_refused_by_the_management_api_of_the_other() {
    let Some(server_url) = postgres() else { return };
    // Arrange: a client granted reading, for the management API, and its token from A.
    let TwoInstances { db, master_key, issuer, a, b } = two_instances(&server_url, &[]);
    let audience = format!("{issuer}/api/v1");
    let args = ["client", "create", "--name", "Exporter", "--grant-type", "client_credentials", "--scope", "read"];
    let tail = ["--audience", audience.as_str(), "--permission", "read", "--json"];
    let client = json(&latchkey(&db, &master_key, &[], &[&args[..], &tail[..]].concat()));
    let machine = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let form = [("grant_type", "client_credentials"), ("scope", "read"), ("resource", audience.as_str())];
    let issued: Value = post_form(&a, "/oauth2/token", &form, Some(machine)).await.json().await.unwrap();
    let token = issued["access_token"].as_str().unwrap();
    let list_on_b = || b.http().get(b.url("/api/v1/clients")).bearer_auth(token).send();
    assert_eq!(list_on_b().await.unwrap().status(), 200, "B takes what A issued");

    // Act
    assert_eq!(post_form(&a, "/oauth2/revoke", &[("token", token)], Some(machine)).await.status(), 200);

    // Assert: refused on B at once, not at the token's expiry.
    let refused = list_on_b().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "invalid_token");
}

#[tokio::test]
async fn a_client_assertion_used_on_one_is_refused_on_the_other() {
    let Some(server_url) = postgres() else { return };
    // Through the database, and through Redis when there is one.
    let redis = std::env::var("LATCHKEY_TEST_REDIS_URL").ok();
    let settings: Vec<Vec<(&str, &str)>> =
        std::iter::once(vec![]).chain(redis.as_deref().map(|url| vec![("LATCHKEY_REDIS_URL", url)])).collect();
    for env in settings {
        // Arrange: a client that signs its assertions with its secret.
        let TwoInstances { db, master_key, a, b, .. } = two_instances(&server_url, &env);
        json(&latchkey(&db, &master_key, &[], &["api", "create", "--audience", API, "--scope", "read", "--json"]));
        let args = ["client", "create", "--name", "Signer", "--grant-type", "client_credentials", "--scope", "read"];
        let tail = ["--audience", API, "--auth-method", "client_secret_jwt", "--json"];
        let client = json(&latchkey(&db, &master_key, &[], &[&args[..], &tail[..]].concat()));
        let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({ "iss": id, "sub": id, "aud": a.url("/oauth2/token"), "iat": now,
                                         "exp": now + 60, "jti": "once" });
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let assertion = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ];

        // Act
        let on_a = post_form(&a, "/oauth2/token", &form, None).await.status();
        let on_b = post_form(&b, "/oauth2/token", &form, None).await;

        // Assert: B knows A took it. (`aud` names A's address, the issuer both share.)
        assert_eq!((on_a.as_u16(), on_b.status().as_u16()), (200, 401), "with {env:?}");
        let refused: Value = on_b.json().await.unwrap();
        assert!(refused["error_description"].as_str().unwrap().contains("used before"), "{refused}");
    }
}

#[tokio::test]
async fn one_rate_limit_budget_spans_both_through_redis() {
    let Some(server_url) = postgres() else { return };
    let Ok(redis) = std::env::var("LATCHKEY_TEST_REDIS_URL") else {
        eprintln!("LATCHKEY_TEST_REDIS_URL is not set: shared limits across processes not tested");
        return;
    };
    // Arrange: one request a second, a burst of three.
    let tight = [
        ("LATCHKEY_REDIS_URL", redis.as_str()),
        ("LATCHKEY_RATE_LIMIT_PER_HOUR", "3600"),
        ("LATCHKEY_RATE_LIMIT_BURST", "3"),
    ];
    let TwoInstances { db, master_key, a, b, .. } = two_instances(&server_url, &tight);
    json(&latchkey(&db, &master_key, &[], &["api", "create", "--audience", API, "--scope", "read", "--json"]));
    let (machine_id, machine_secret) = register_machine_client(&db, &master_key);
    let machine = (machine_id.as_str(), machine_secret.as_str());

    // Act
    let mut statuses = Vec::new();
    for server in [&a, &b, &a, &b] {
        statuses.push(client_credentials(server, machine).await.status().as_u16());
    }

    // Assert
    assert_eq!(statuses, [200, 200, 200, 429], "three in the burst, wherever they land");
}
