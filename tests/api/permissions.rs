//! Who reaches what: each kind of key against each resource and action (INTERFACE §5).
//! Out of reach answers 404; visible but not permitted answers 403.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::{API, Backend, TestApp, spawn_app};
use crate::login::{EMAIL, PASSWORD};
use crate::management::ok;

/// The keys of the matrix, by name.
struct Fixture {
    keys: HashMap<&'static str, String>,
    alpha_client: String,
    beta_client: String,
    tenant_client: String,
    api_id: String,
    member_id: String,
    other_user_id: String,
    alpha: String,
    beta: String,
}

async fn create_client(app: &TestApp, key: &str, name: &str, team: Option<&str>) -> String {
    let body = json!({ "name": name, "team_id": team, "grant_types": ["client_credentials"], "audiences": [API] });
    ok(app, "POST", "/clients", key, Some(body)).await["client_id"].as_str().unwrap().to_owned()
}

async fn key(app: &TestApp, owner: &str, body: Value) -> String {
    ok(app, "POST", "/api-keys", owner, Some(body)).await["key"].as_str().unwrap().to_owned()
}

async fn arrange(app: &TestApp) -> Fixture {
    let owner = app.owner_key();
    let api_id = ok(app, "POST", "/apis", &owner, Some(json!({ "audience": API, "scopes": ["read"] }))).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alpha =
        ok(app, "POST", "/teams", &owner, Some(json!({ "name": "alpha" }))).await["id"].as_str().unwrap().to_owned();
    let beta =
        ok(app, "POST", "/teams", &owner, Some(json!({ "name": "beta" }))).await["id"].as_str().unwrap().to_owned();
    let alpha_client = create_client(app, &owner, "alpha app", Some(&alpha)).await;
    let beta_client = create_client(app, &owner, "beta app", Some(&beta)).await;
    let tenant_client = create_client(app, &owner, "tenant app", None).await;
    let member = ok(app, "POST", "/users", &owner, Some(json!({ "email": EMAIL, "password": PASSWORD }))).await;
    let member_id = member["id"].as_str().unwrap().to_owned();
    let other =
        ok(app, "POST", "/users", &owner, Some(json!({ "email": "bob@example.com", "password": PASSWORD }))).await;
    ok(app, "PUT", &format!("/teams/{alpha}/members/{member_id}"), &owner, Some(json!({ "role": "viewer" }))).await;
    let mut keys = HashMap::new();
    keys.insert("personal", app.personal_key_from_account_page(EMAIL, PASSWORD).await);
    let team_key = |role: &str| json!({ "kind": "team", "name": role, "team_id": alpha, "team_role": role });
    keys.insert("team viewer", key(app, &owner, team_key("viewer")).await);
    keys.insert("team editor", key(app, &owner, team_key("editor")).await);
    keys.insert("team admin", key(app, &owner, team_key("admin")).await);
    let restricted = |p: &[&str]| json!({ "kind": "restricted", "name": "r", "permissions": p });
    keys.insert("rk clients:read", key(app, &owner, restricted(&["clients:read"])).await);
    keys.insert("rk read", key(app, &owner, restricted(&["read"])).await);
    let service = json!({ "kind": "service", "name": "siem", "permissions": ["AUDIT_LOG_READ"] });
    keys.insert("service audit", key(app, &owner, service).await);
    keys.insert("owner", owner);
    Fixture {
        keys,
        alpha_client,
        beta_client,
        tenant_client,
        api_id,
        member_id,
        other_user_id: other["id"].as_str().unwrap().to_owned(),
        alpha,
        beta,
    }
}

async fn each_kind_of_key_reaches_exactly_what_it_should(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let f = arrange(&app).await;
    let (a, b, t) = (&f.alpha_client, &f.beta_client, &f.tenant_client);
    let rename = || Some(json!({ "name": "renamed" }));
    let in_alpha = || Some(json!({ "name": "new", "team_id": f.alpha, "grant_types": ["client_credentials"] }));
    let in_beta = || Some(json!({ "name": "new", "team_id": f.beta, "grant_types": ["client_credentials"] }));
    #[rustfmt::skip]
    let matrix: Vec<(&str, &str, String, Option<Value>, u16)> = vec![
        // A tenant owner reaches everything.
        ("owner", "GET", format!("/clients/{b}"), None, 200),
        ("owner", "PATCH", format!("/clients/{t}"), rename(), 200),
        ("owner", "GET", "/audit-log".into(), None, 200),
        ("owner", "GET", "/signing-keys".into(), None, 200),
        ("owner", "GET", format!("/users/{}", f.other_user_id), None, 200),
        // A team key reaches its team's things with its role, and nothing else exists.
        ("team viewer", "GET", format!("/clients/{a}"), None, 200),
        ("team viewer", "PATCH", format!("/clients/{a}"), rename(), 403),
        ("team viewer", "DELETE", format!("/clients/{a}"), None, 403),
        ("team viewer", "GET", format!("/clients/{b}"), None, 404),
        ("team viewer", "GET", format!("/clients/{t}"), None, 404),
        ("team viewer", "POST", "/clients".into(), in_alpha(), 403),
        ("team viewer", "GET", format!("/teams/{}/members", f.alpha), None, 200),
        ("team viewer", "GET", format!("/teams/{}", f.beta), None, 404),
        ("team viewer", "GET", "/audit-log".into(), None, 403),
        ("team viewer", "GET", "/users".into(), None, 403),
        ("team viewer", "GET", "/signing-keys".into(), None, 403),
        ("team viewer", "POST", "/signing-keys/any-kid/withdraw".into(), None, 403),
        ("team editor", "PATCH", format!("/clients/{a}"), rename(), 200),
        ("team editor", "POST", "/clients".into(), in_alpha(), 201),
        ("team editor", "POST", "/clients".into(), in_beta(), 404),
        ("team editor", "PUT", format!("/teams/{}/members/{}", f.alpha, f.other_user_id), Some(json!({ "role": "viewer" })), 403),
        ("team admin", "PUT", format!("/teams/{}/members/{}", f.alpha, f.other_user_id), Some(json!({ "role": "viewer" })), 200),
        ("team admin", "POST", "/api-keys".into(), Some(json!({ "kind": "team", "name": "x", "team_id": f.alpha, "team_role": "viewer" })), 201),
        ("team admin", "POST", "/api-keys".into(), Some(json!({ "kind": "team", "name": "x", "team_id": f.beta, "team_role": "viewer" })), 404),
        ("team admin", "POST", "/api-keys".into(), Some(json!({ "kind": "tenant_owner", "name": "x" })), 403),
        // A restricted key holds its listed permissions, tenant-wide.
        ("rk clients:read", "GET", format!("/clients/{b}"), None, 200),
        ("rk clients:read", "GET", "/clients".into(), None, 200),
        ("rk clients:read", "PATCH", format!("/clients/{b}"), rename(), 403),
        ("rk clients:read", "DELETE", format!("/clients/{b}"), None, 403),
        ("rk clients:read", "GET", format!("/apis/{}", f.api_id), None, 404),
        ("rk clients:read", "GET", "/apis".into(), None, 403),
        ("rk clients:read", "GET", "/audit-log".into(), None, 403),
        ("rk clients:read", "POST", "/api-keys".into(), Some(json!({ "kind": "restricted", "name": "x", "permissions": ["clients:read"] })), 403),
        ("rk read", "GET", format!("/apis/{}", f.api_id), None, 200),
        ("rk read", "GET", "/audit-log".into(), None, 200),
        ("rk read", "GET", "/signing-keys".into(), None, 200),
        ("rk read", "POST", "/signing-keys/rotate".into(), None, 403),
        ("rk read", "POST", "/signing-keys/any-kid/withdraw".into(), None, 403),
        ("rk read", "PATCH", format!("/apis/{}", f.api_id), Some(json!({ "name": "x" })), 403),
        ("rk read", "POST", "/teams".into(), Some(json!({ "name": "gamma" })), 403),
        // A service key acts with its account's tenant permissions.
        ("service audit", "GET", "/audit-log".into(), None, 200),
        ("service audit", "GET", format!("/clients/{a}"), None, 404),
        ("service audit", "GET", "/clients".into(), None, 403),
        // A personal key reaches what its user reaches: their teams, their own record.
        ("personal", "GET", format!("/clients/{a}"), None, 200),
        ("personal", "PATCH", format!("/clients/{a}"), rename(), 403),
        ("personal", "GET", format!("/clients/{b}"), None, 404),
        ("personal", "GET", format!("/users/{}", f.member_id), None, 200),
        ("personal", "GET", format!("/users/{}", f.other_user_id), None, 404),
        ("personal", "POST", format!("/users/{}/deactivate", f.other_user_id), None, 404),
        ("personal", "GET", "/audit-log".into(), None, 403),
        ("personal", "POST", "/api-keys".into(), Some(json!({ "kind": "personal", "name": "second laptop" })), 201),
        ("owner", "POST", "/api-keys".into(), Some(json!({ "kind": "personal", "name": "for someone" })), 403),
        // Deletions last: they change what later rows would see.
        ("team editor", "DELETE", format!("/clients/{a}"), None, 204),
        ("owner", "DELETE", format!("/clients/{b}"), None, 204),
    ];

    for (name, method, path, body, expected) in matrix {
        // Act
        let (status, answer) = app.api(method, &path, &f.keys[name], body).await;

        // Assert
        assert_eq!(status, expected, "{name}: {method} {path} → {answer}");
        let code = match expected {
            403 => Some("forbidden"),
            404 => Some("not_found"),
            _ => None,
        };
        if let Some(code) = code {
            assert_eq!(answer["error"], code, "{name}: {method} {path}");
        }
    }
}

async fn lists_show_only_what_is_in_reach(backend: Backend) {
    let app = spawn_app(backend).await;
    let f = arrange(&app).await;
    let count = |key: &'static str, path: &'static str| {
        let (app, key) = (&app, f.keys[key].clone());
        async move { ok(app, "GET", path, &key, None).await["data"].as_array().unwrap().len() }
    };

    assert_eq!(count("owner", "/clients").await, 4, "three and the built-in latchkey-cli");
    assert_eq!(count("team viewer", "/clients").await, 1);
    assert_eq!(count("personal", "/clients").await, 1);
    assert_eq!(count("rk clients:read", "/clients").await, 4);
    assert_eq!(count("owner", "/teams").await, 2);
    assert_eq!(count("team viewer", "/teams").await, 1);
    assert_eq!(count("personal", "/users").await, 1, "a member sees themselves");
    assert_eq!(count("owner", "/users").await, 2);
    assert_eq!(count("personal", "/api-keys").await, 4, "a member sees their own key and their team's three");
    assert_eq!(count("team viewer", "/api-keys").await, 3, "a team key sees its team's keys");
    let current = ok(&app, "GET", "/api-keys/current", &f.keys["team editor"], None).await;
    assert_eq!((current["kind"].as_str(), current["team_role"].as_str()), (Some("team"), Some("editor")));
    let me = ok(&app, "GET", "/users/me", &f.keys["service audit"], None).await;
    assert_eq!(me["type"], "service_account", "{me}");
    assert_eq!(me["permissions"], json!(["audit_log:read"]));
    let by_user = ok(&app, "GET", &format!("/audit-log?target_id={}", f.member_id), &f.keys["owner"], None).await;
    assert!(!by_user["data"].as_array().unwrap().is_empty());
}

crate::on_both_backends!(each_kind_of_key_reaches_exactly_what_it_should, lists_show_only_what_is_in_reach);
