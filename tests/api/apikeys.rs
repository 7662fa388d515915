//! API-key authentication of the management API (INTERFACE §5).

use diesel::prelude::*;
use latchkey::apikeys::{self, KeyClass};
use latchkey::config::Environment;
use latchkey::db::schema::{api_keys, users};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, spawn_app};

fn tenant_owner_key(app: &TestApp) -> String {
    let mut conn = app.pool.get().unwrap();
    latchkey::manage::api_keys::create_tenant_owner_key(&mut conn, &app.state.hasher, Environment::Test, "ops")
        .unwrap()
        .key
}

/// A personal key for `user_id`, stored as the management API will store it.
fn personal_key(app: &TestApp, user_id: &str) -> String {
    let key = apikeys::generate(KeyClass::Secret, Environment::Test);
    let mut conn = app.pool.get().unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    latchkey::db::api_keys::insert_api_key(
        &mut conn,
        &latchkey::db::api_keys::NewApiKey {
            id: &id,
            tenant_id: latchkey::db::DEFAULT_TENANT_ID,
            kind: "personal",
            name: "laptop",
            environment: "test",
            key_hash: app.state.hasher.hash(&key).as_str(),
            display_prefix: &apikeys::display_prefix(&key),
            last_four: &apikeys::last_four(&key),
            user_id: Some(user_id),
            created_by_user_id: Some(user_id),
            service_account_id: None,
            team_id: None,
            team_role: None,
            permissions: "",
            tier: None,
            expires_at: None,
            created_at: latchkey::db::now(),
            created_through_client_id: None,
        },
    )
    .unwrap();
    key
}

async fn get(app: &TestApp, path: &str, header: Header) -> reqwest::Response {
    let mut request = app.http.get(app.url(path));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// A request header, or none.
type Header = Option<(&'static str, String)>;

fn bearer(key: &str) -> Header {
    Some(("authorization", format!("Bearer {key}")))
}

async fn a_tenant_owner_key_works_in_either_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = tenant_owner_key(&app);

    let via_bearer = get(&app, "/api/v1/api-keys/current", bearer(&key)).await;
    let via_user_token = get(&app, "/api/v1/api-keys/current", Some(("x-user-token", key.clone()))).await;
    let me = get(&app, "/api/v1/users/me", bearer(&key)).await;

    assert_eq!(via_bearer.status(), 200);
    let body: Value = via_bearer.json().await.unwrap();
    assert_eq!(body["kind"], "tenant_owner");
    assert_eq!(body["permissions"], serde_json::json!(["*"]));
    assert_eq!(body["prefix"], &key[..12]);
    assert_eq!(body["last_four"], &key[key.len() - 4..]);
    assert!(!body.to_string().contains(&key[12..]), "the key itself is never returned");
    assert_eq!(via_user_token.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["type"], "api_key");
    assert_eq!(me["id"], body["id"]);
    let mut conn = app.pool.get().unwrap();
    let used: Option<chrono::NaiveDateTime> = api_keys::table.select(api_keys::last_used_at).first(&mut *conn).unwrap();
    assert!(used.is_some(), "last_used_at is recorded");
}

async fn bad_keys_are_refused_with_the_documented_codes(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let revoked = tenant_owner_key(&app);
    let expired = tenant_owner_key(&app);
    {
        let mut conn = app.pool.get().unwrap();
        let now = latchkey::db::now();
        let hash = |k: &str| app.state.hasher.hash(k).into_string();
        diesel::update(api_keys::table.filter(api_keys::key_hash.eq(hash(&revoked))))
            .set(api_keys::revoked_at.eq(now))
            .execute(&mut *conn)
            .unwrap();
        diesel::update(api_keys::table.filter(api_keys::key_hash.eq(hash(&expired))))
            .set(api_keys::expires_at.eq(now - chrono::TimeDelta::seconds(1)))
            .execute(&mut *conn)
            .unwrap();
    }
    let live_key = apikeys::generate(KeyClass::Secret, Environment::Live);
    let unknown = apikeys::generate(KeyClass::Secret, Environment::Test);
    let mut typo = tenant_owner_key(&app);
    typo.replace_range(20..21, if &typo[20..21] == "A" { "B" } else { "A" });
    let cases: Vec<(&str, Header, &str)> = vec![
        ("no key", None, "missing_api_key"),
        ("empty bearer", Some(("authorization", "Bearer ".into())), "missing_api_key"),
        ("not a key", bearer("hello"), "invalid_api_key"),
        ("mistyped key", bearer(&typo), "invalid_api_key"),
        ("live key on a test deployment", bearer(&live_key), "invalid_api_key"),
        ("unknown key", bearer(&unknown), "invalid_api_key"),
        ("revoked key", bearer(&revoked), "invalid_api_key"),
        ("expired key", bearer(&expired), "token_expired"),
    ];

    for (name, header, code) in cases {
        // Act
        let response = get(&app, "/api/v1/api-keys/current", header).await;

        // Assert
        assert_eq!(response.status(), 401, "{name}");
        // RFC 6750 §3.1: no error code without a credential; RFC 9728 §5.1: where to learn more.
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        let expected = if code == "missing_api_key" {
            r#"Bearer realm="latchkey", resource_metadata=""#
        } else {
            r#"Bearer realm="latchkey", error="invalid_token", error_description=""#
        };
        assert!(challenge.starts_with(expected), "{name}: {challenge}");
        assert!(challenge.ends_with(r#"/.well-known/oauth-protected-resource/api/v1""#), "{name}: {challenge}");
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{name}: {body}");
        assert_eq!(body["request_id"], request_id.as_str(), "{name}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}");
        if name == "live key on a test deployment" {
            assert!(body["message"].as_str().unwrap().contains("accepts test keys only"), "{body}");
        }
    }
    let failures = app.audit_actions().iter().filter(|(a, _)| a == "api_key.authentication_failed").count();
    assert_eq!(failures, 6, "every refused key is audited (a missing key is not an attempt)");
}

async fn a_personal_key_lives_and_dies_with_its_user(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let user = app.create_user("ada@example.com", "correct horse battery staple");
    let key = personal_key(&app, &user.id);
    let set_status = |status: &str| {
        let mut conn = app.pool.get().unwrap();
        // Written by hand, not by the storage layer: say so, as its writers do, so that the
        // server's caches drop the key's owner.
        latchkey::db::changes::wrote(latchkey::db::changes::Table::Users);
        diesel::update(users::table.find(&user.id)).set(users::status.eq(status)).execute(&mut *conn).unwrap();
    };
    let status = || async { get(&app, "/api/v1/users/me", bearer(&key)).await.status().as_u16() };

    // Act and assert, step by step.
    let me: Value = get(&app, "/api/v1/users/me", bearer(&key)).await.json().await.unwrap();
    assert_eq!((me["type"].as_str(), me["id"].as_str()), (Some("user"), Some(user.id.as_str())));
    set_status("deactivated");
    assert_eq!(status().await, 401, "deactivated");
    set_status("active");
    assert_eq!(status().await, 200, "reactivated");
    set_status("deleted");
    assert_eq!(status().await, 401, "deleted");
    app.create_user("ada@example.com", "a new password for ada");
    assert_eq!(status().await, 401, "the same email invited back is a new user");
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const API_KEY_TYPE: &str = "urn:latchkey:params:oauth:token-type:api-key";

async fn exchange(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![("grant_type", TOKEN_EXCHANGE), ("subject_token", key), ("subject_token_type", API_KEY_TYPE)];
    form.extend_from_slice(extra);
    app.post_form("/oauth2/token", &form, None).await
}

async fn an_api_key_is_exchanged_for_a_short_lived_jwt(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_api(crate::helpers::API, &["read", "write"], "RS256");
    let key = tenant_owner_key(&app);

    // Act
    let full = exchange(&app, &key, &[("resource", crate::helpers::API)]).await;
    let narrowed = exchange(&app, &key, &[("resource", crate::helpers::API), ("scope", "read")]).await;

    // Assert
    assert_eq!(full.status(), 200);
    let body: Value = full.json().await.unwrap();
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() <= 900, "short-lived");
    let token = body["access_token"].as_str().unwrap();
    let claims =
        crate::helpers::verify_with_jwks(token, &app.jwks().await, &app.issuer(), crate::helpers::API).unwrap();
    assert_eq!(claims["scope"], "read write");
    let current: Value = get(&app, "/api/v1/api-keys/current", bearer(&key)).await.json().await.unwrap();
    assert_eq!(claims["sub"], current["id"], "the key acts as itself");
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(narrowed["scope"], "read");
    assert!(app.audit_actions().contains(&("api_key.exchanged".into(), "success".into())));
}

/// A token exchange that must fail, and how.
struct BadExchange {
    name: &'static str,
    extra: Vec<(&'static str, &'static str)>,
    subject: String,
    error: &'static str,
}

async fn a_bad_exchange_gets_the_rfc_8693_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_api(crate::helpers::API, &["read"], "RS256");
    let key = tenant_owner_key(&app);
    let live = apikeys::generate(KeyClass::Secret, Environment::Live);
    let api = crate::helpers::API;
    let case = |name, extra: Vec<(&'static str, &'static str)>, subject: &str, error| BadExchange {
        name,
        extra,
        subject: subject.to_owned(),
        error,
    };
    let cases = vec![
        case("a key from the other environment", vec![("resource", api)], &live, "invalid_request"),
        case("not a key", vec![("resource", api)], "not-a-key", "invalid_request"),
        case("no API named", vec![], &key, "invalid_target"),
        case("unknown API", vec![("resource", "https://nowhere.example.com")], &key, "invalid_target"),
        case("scope beyond the API", vec![("resource", api), ("scope", "admin")], &key, "invalid_scope"),
        case("an actor token", vec![("resource", api), ("actor_token", "x")], &key, "invalid_request"),
    ];
    for BadExchange { name, extra, subject, error } in cases {
        let response = exchange(&app, &subject, &extra).await;
        assert_eq!(response.status(), 400, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{name}: {body}");
    }
    let wrong_type = app
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &key),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("resource", api),
            ],
            None,
        )
        .await;
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

async fn introspection_reports_api_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = tenant_owner_key(&app);
    let introspector = app.create_client(&["client_credentials"], &[], &[]);

    let active = app.introspect(&key, &introspector).await;
    {
        let mut conn = app.pool.get().unwrap();
        latchkey::db::changes::wrote(latchkey::db::changes::Table::ApiKeys);
        diesel::update(api_keys::table).set(api_keys::revoked_at.eq(latchkey::db::now())).execute(&mut *conn).unwrap();
    }
    let revoked = app.introspect(&key, &introspector).await;

    assert_eq!(active["active"], true);
    assert_eq!(active["token_type"], "api_key");
    assert_eq!(active["kind"], "tenant_owner");
    assert_eq!(active["scope"], "*");
    assert_eq!(revoked, serde_json::json!({ "active": false }));
}

async fn exchanged_tokens_carry_each_kinds_permissions_as_scopes(backend: Backend) {
    // Arrange: an API with read, write and delete, and keys of three kinds.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    app.create_api(crate::helpers::API, &["read", "write", "delete"], "RS256");
    let team = crate::management::ok(&app, "POST", "/teams", &owner, Some(serde_json::json!({ "name": "t" }))).await;
    let mut keys = Vec::new();
    for request in [
        serde_json::json!({ "kind": "restricted", "name": "r", "permissions": ["read", "clients:write"] }),
        serde_json::json!({ "kind": "team", "name": "t", "team_id": team["id"], "team_role": "editor" }),
        serde_json::json!({ "kind": "service", "name": "s", "permissions": ["AUDIT_LOG_READ"] }),
    ] {
        keys.push(
            crate::management::ok(&app, "POST", "/api-keys", &owner, Some(request)).await["key"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }

    // Act
    let team_key = introspect_with_new_client(&app, &keys[1]).await;
    let service_key = introspect_with_new_client(&app, &keys[2]).await;
    let mut scopes = Vec::new();
    for key in &keys {
        let body: Value = exchange(&app, key, &[("resource", crate::helpers::API)]).await.json().await.unwrap();
        scopes.push(body["scope"].clone());
    }
    let widened = exchange(&app, &keys[0], &[("resource", crate::helpers::API), ("scope", "write")]).await;

    // Assert
    assert_eq!(scopes[0], "read", "a restricted key's permissions that the API defines");
    assert_eq!(scopes[1], "delete read write", "a team editor's actions");
    assert_eq!(scopes[2], Value::Null, "none of the service account's permissions is a scope of this API");
    assert_eq!(widened.status(), 400);
    assert_eq!(widened.json::<Value>().await.unwrap()["error"], "invalid_scope");
    assert_eq!((team_key["team_id"].clone(), team_key["team_role"].as_str()), (team["id"].clone(), Some("editor")));
    assert!(service_key["service_account_id"].is_string(), "{service_key}");
    assert_eq!(service_key["scope"], "audit_log:read");
}

/// Introspects `token` as a freshly registered confidential client.
async fn introspect_with_new_client(app: &TestApp, token: &str) -> Value {
    let client = app.create_client(&["client_credentials"], &[], &[]);
    app.introspect(token, &client).await
}

async fn any_key_may_give_itself_up_but_the_last_owner_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = tenant_owner_key(&app);
    // A key that may do nothing with keys still revokes itself.
    let reader = app.restricted_key(&owner, &["clients:read"]).await;
    let (_, current) = app.api("GET", "/api-keys/current", &reader, None).await;
    assert_eq!(app.api("DELETE", "/api-keys/current", &reader, None).await.0, 204);
    assert_eq!(app.api("GET", "/clients", &reader, None).await.0, 401, "it stopped working at once");
    let mut conn = app.pool.get().unwrap();
    let events = latchkey::db::audit::list_audit_events(&mut conn, 100).unwrap();
    let given_up = events.iter().find(|e| e.action == "api_key.deleted").expect("audited");
    assert_eq!(given_up.target_id.as_deref(), current["id"].as_str());
    assert!(given_up.details.contains("itself"), "{}", given_up.details);

    // The tenant's last owner credential stays: nobody could manage the tenant without it.
    let (status, refused) = app.api("DELETE", "/api-keys/current", &owner, None).await;
    assert_eq!((status, refused["error"].as_str()), (409, Some("conflict")), "{refused}");
    assert_eq!(app.api("GET", "/api-keys/current", &owner, None).await.0, 200);
}

crate::on_both_backends!(
    any_key_may_give_itself_up_but_the_last_owner_key,
    exchanged_tokens_carry_each_kinds_permissions_as_scopes,
    an_api_key_is_exchanged_for_a_short_lived_jwt,
    a_bad_exchange_gets_the_rfc_8693_error,
    introspection_reports_api_keys,
    a_tenant_owner_key_works_in_either_header,
    bad_keys_are_refused_with_the_documented_codes,
    a_personal_key_lives_and_dies_with_its_user,
);
