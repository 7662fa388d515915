//! Rate limits per API key and per client (INTERFACE §5): headers on every response, 429
//! with `Retry-After` past the limit, and one budget across instances through Redis.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, credentials, spawn_app_with};
use crate::management::ok;

/// A burst of three, refilled at one a second.
fn tight(settings: &mut latchkey::config::Settings) {
    settings.rate_limit_per_hour = 3_600;
    settings.rate_limit_burst = 3;
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers.get(name).unwrap_or_else(|| panic!("{name} is set")).to_str().unwrap().to_owned()
}

async fn get(app: &TestApp, key: &str) -> reqwest::Response {
    app.http.get(app.url("/api/v1/api-keys/current")).bearer_auth(key).send().await.unwrap()
}

async fn api_responses_carry_the_limit_and_429_comes_past_it(backend: Backend) {
    // Arrange
    let app = spawn_app_with(TestDb::new(&backend), tight).await;
    let key = app.owner_key();

    // Act
    let mut responses = Vec::new();
    for _ in 0..4 {
        responses.push(get(&app, &key).await);
    }

    // Assert
    let remaining: Vec<String> = responses.iter().map(|r| header(r.headers(), "x-ratelimit-remaining")).collect();
    assert_eq!(remaining, ["2", "1", "0", "0"]);
    for response in &responses[..3] {
        assert_eq!(response.status(), 200);
        assert_eq!(header(response.headers(), "x-ratelimit-limit"), "3600", "the hourly quota");
        assert_eq!(header(response.headers(), "x-ratelimit-policy"), "3600;w=3600;burst=3");
        let reset: i64 = header(response.headers(), "x-ratelimit-reset").parse().unwrap();
        assert!(reset >= chrono::Utc::now().timestamp(), "the reset time is ahead");
    }
    let refused = responses.pop().unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = header(refused.headers(), "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "rate_limit_exceeded");
    assert_eq!(
        body["message"],
        format!("Rate limit exceeded. Try again in {retry_after} second{}.", if retry_after == 1 { "" } else { "s" })
    );
    assert!(body["request_id"].is_string());
}

async fn a_tier_sets_a_keys_limits_and_refused_keys_count_against_the_address(backend: Backend) {
    let app = spawn_app_with(TestDb::new(&backend), tight).await;
    let owner = app.owner_key();
    let free = ok(
        &app,
        "POST",
        "/api-keys",
        &owner,
        Some(json!({ "kind": "restricted", "name": "f", "permissions": ["read"], "tier": "free" })),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = get(&app, &free).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(response.headers(), "x-ratelimit-limit"),
        "1000",
        "a free key's hourly limit, as the guides show"
    );
    assert_eq!(header(response.headers(), "x-ratelimit-policy"), "1000;w=3600;burst=50");
    // Guessing keys from one address is limited like any caller.
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let response = get(&app, "sk_test_guess").await;
            assert!(response.headers().contains_key("x-ratelimit-remaining"), "a 401 carries the headers too");
            statuses.push(response.status().as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [401, 401, 401, 429]);
    assert_eq!(get(&app, &owner).await.status(), 200, "a key has its own budget");
}

async fn the_token_endpoint_limits_each_client(backend: Backend) {
    let app = spawn_app_with(TestDb::new(&backend), tight).await;
    let first = app.create_machine_client();
    let second = app.create_client(&["client_credentials"], &["read"], &[crate::helpers::API]);
    let token = |client: &latchkey::manage::clients::RegisteredClient| {
        let (id, secret) = credentials(client);
        app.http
            .post(app.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("resource", crate::helpers::API)])
            .send()
    };

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = token(&first).await.unwrap();
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
        statuses.push(response.status().as_u16());
    }
    let refused = token(&first).await.unwrap();

    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "rate_limit_exceeded", "{body}");
    assert!(body["error_description"].is_string());
    assert_eq!(token(&second).await.unwrap().status(), 200, "another client has its own budget");
    let unreadable = app
        .http
        .post(app.url("/oauth2/token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(unreadable.status(), 400);
    assert!(unreadable.headers().contains_key("x-ratelimit-remaining"), "an unreadable body is counted too");
}

/// Two instances on one database and one Redis share each key's budget.
async fn limits_hold_across_instances_through_redis(backend: Backend) {
    let Ok(redis) = std::env::var("LATCHKEY_TEST_REDIS_URL") else {
        eprintln!("LATCHKEY_TEST_REDIS_URL is not set: shared limits not tested");
        return;
    };
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let with_redis = |settings: &mut latchkey::config::Settings| {
        tight(settings);
        settings.redis_url = Some(redis.clone().into());
        settings.master_key = Some(master_key.clone().into());
    };
    let first = spawn_app_with(TestDb::new(&backend), with_redis).await;
    let second = spawn_app_with(TestDb::reuse(&first.db), with_redis).await;
    assert!(first.state.limiter.is_shared());
    let key = first.owner_key();

    let statuses = [
        get(&first, &key).await.status().as_u16(),
        get(&second, &key).await.status().as_u16(),
        get(&first, &key).await.status().as_u16(),
        get(&second, &key).await.status().as_u16(),
    ];

    assert_eq!(statuses, [200, 200, 200, 429], "three in the burst, wherever they land");
}

/// Failed sign-ins count on one budget too: guesses spread over two instances are
/// refused as soon as they would be on one.
async fn sign_in_failures_count_across_instances_through_redis(backend: Backend) {
    use crate::login::{PASSWORD, sign_in};
    let Ok(redis) = std::env::var("LATCHKEY_TEST_REDIS_URL") else {
        eprintln!("LATCHKEY_TEST_REDIS_URL is not set: shared sign-in throttling not tested");
        return;
    };
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let with_redis = |settings: &mut latchkey::config::Settings| {
        settings.redis_url = Some(redis.clone().into());
        settings.master_key = Some(master_key.clone().into());
    };
    let first = spawn_app_with(TestDb::new(&backend), with_redis).await;
    let second = spawn_app_with(TestDb::reuse(&first.db), with_redis).await;
    // Unique per run: the shared Redis outlives the test's database.
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    first.create_user(&email, PASSWORD);

    let mut statuses = Vec::new();
    for app in [&first, &second].into_iter().cycle().take(latchkey::web::throttle::ACCOUNT_LIMITS.burst as usize) {
        statuses.push(sign_in(app, &app.browser(), &email, "wrong password", "/").await.status().as_u16());
    }
    let on_first = sign_in(&first, &first.browser(), &email, PASSWORD, "/").await.status();
    let on_second = sign_in(&second, &second.browser(), &email, PASSWORD, "/").await.status();

    assert_eq!(statuses, [401; 5]);
    assert_eq!((on_first.as_u16(), on_second.as_u16()), (429, 429), "five failures in all, wherever they landed");
}

/// A configured Redis that cannot be reached stops start-up with a clear message rather
/// than leaving limits silently per instance.
#[tokio::test]
async fn an_unreachable_redis_is_reported_at_start_up() {
    let db = TestDb::new(&Backend::Sqlite);
    let mut settings = latchkey::config::Settings::for_tests(db.target());
    settings.redis_url = Some("redis://127.0.0.1:1".to_owned().into());

    let error = latchkey::startup::Application::build(settings).await.err().expect("start-up fails");

    assert!(format!("{error:#}").contains("could not connect to Redis"), "{error:#}");
}

crate::on_both_backends!(
    api_responses_carry_the_limit_and_429_comes_past_it,
    a_tier_sets_a_keys_limits_and_refused_keys_count_against_the_address,
    the_token_endpoint_limits_each_client,
    limits_hold_across_instances_through_redis,
    sign_in_failures_count_across_instances_through_redis,
);
