//! The management API's resources, driven over HTTP with API keys (INTERFACE §5).

use serde_json::{Value, json};

use crate::helpers::{API, Backend, TestApp, spawn_app};
use crate::login::{EMAIL, PASSWORD};

/// The body of a successful call, or a panic naming what went wrong.
pub async fn ok(app: &TestApp, method: &str, path: &str, key: &str, body: Option<Value>) -> Value {
    let (status, body) = app.api(method, path, key, body).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {body}");
    body
}

async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    app.http
        .post(app.url("/oauth2/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("resource", API)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn clients_are_created_read_updated_rotated_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.owner_key();
    ok(&app, "POST", "/apis", &key, Some(json!({ "audience": API, "scopes": ["read", "write"] }))).await;

    // Create: the secret is in this answer and nowhere else.
    let (status, created) = app
        .api(
            "POST",
            "/clients",
            &key,
            Some(json!({ "name": "Billing", "grant_types": ["client_credentials"], "scopes": ["read"], "audiences": [API] })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let first_secret = created["client_secret"].as_str().unwrap().to_owned();
    let fetched = ok(&app, "GET", &format!("/clients/{id}"), &key, None).await;
    assert_eq!(fetched["name"], "Billing");
    assert!(fetched.get("client_secret").is_none(), "{fetched}");
    assert_eq!(fetched["refresh_retry_window_secs"], 30, "retries on by default");
    let listed = ok(&app, "GET", "/clients", &key, None).await;
    let own: Vec<&Value> = listed["data"].as_array().unwrap().iter().filter(|c| c["built_in"] == false).collect();
    assert_eq!(own.len(), 1, "{listed}");
    assert!(!listed.to_string().contains(&first_secret));

    // Update, and a bad update refused in the documented format.
    let updated = ok(
        &app,
        "PATCH",
        &format!("/clients/{id}"),
        &key,
        Some(json!({ "name": "Billing v2", "scopes": ["read", "write"] })),
    )
    .await;
    assert_eq!((updated["name"].as_str(), updated["scope"].as_str()), (Some("Billing v2"), Some("read write")));
    let off = ok(&app, "PATCH", &format!("/clients/{id}"), &key, Some(json!({ "refresh_retry_window_secs": 0 }))).await;
    assert_eq!(off["refresh_retry_window_secs"], 0);
    let (status, error) =
        app.api("PATCH", &format!("/clients/{id}"), &key, Some(json!({ "refresh_retry_window_secs": 301 }))).await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_request")), "{error}");
    let (status, error) = app
        .api("PATCH", &format!("/clients/{id}"), &key, Some(json!({ "redirect_uris": ["http://evil.example/cb"] })))
        .await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_request")), "{error}");
    let (status, error) = app.api("PATCH", &format!("/clients/{id}"), &key, Some(json!({ "colour": "red" }))).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_request")),
        "unknown fields are refused: {error}"
    );

    // Rotate with a grace period: both secrets work; rotate again at once: only the newest.
    let rotated =
        ok(&app, "POST", &format!("/clients/{id}/rotate-secret"), &key, Some(json!({ "grace_period_secs": 3600 })))
            .await;
    let second_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");
    assert_eq!(client_credentials(&app, &id, &first_secret).await, 200, "the old secret works during the grace period");
    assert_eq!(client_credentials(&app, &id, &second_secret).await, 200);
    let rotated = ok(&app, "POST", &format!("/clients/{id}/rotate-secret"), &key, None).await;
    let third_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(client_credentials(&app, &id, &first_secret).await, 401);
    assert_eq!(client_credentials(&app, &id, &second_secret).await, 401, "no grace asked: the old secret dies at once");
    assert_eq!(client_credentials(&app, &id, &third_secret).await, 200);
    let rotated = ok(&app, "POST", &format!("/clients/{id}/rotate-secret"), &key, Some(Value::Null)).await;
    assert_eq!(client_credentials(&app, &id, &third_secret).await, 401, "a null body is no body: no grace");
    assert_eq!(client_credentials(&app, &id, rotated["client_secret"].as_str().unwrap()).await, 200);
    let (status, error) = app
        .api("POST", &format!("/clients/{id}/rotate-secret"), &key, Some(json!({ "grace_period_secs": 9_999_999 })))
        .await;
    assert_eq!((status, error["error"].as_str()), (400, Some("invalid_request")));

    // Delete: gone from the API and from the token endpoint.
    let (status, _) = app.api("DELETE", &format!("/clients/{id}"), &key, None).await;
    assert_eq!(status, 204);
    let (status, error) = app.api("GET", &format!("/clients/{id}"), &key, None).await;
    assert_eq!((status, error["error"].as_str()), (404, Some("not_found")));
    assert_eq!(client_credentials(&app, &id, &third_secret).await, 401);

    let actions: Vec<String> = app.audit_actions().into_iter().map(|(action, _)| action).collect();
    for expected in ["client.created", "client.updated", "client.secret_rotated", "client.deleted"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} is audited: {actions:?}");
    }
}

async fn apis_show_their_secret_once_and_cannot_be_deleted_while_in_use(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.owner_key();

    let (status, created) = app
        .api("POST", "/apis", &key, Some(json!({ "audience": API, "scopes": ["read"], "signing_alg": "HS256" })))
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().expect("the HS256 secret, once").to_owned();
    let fetched = ok(&app, "GET", &format!("/apis/{id}"), &key, None).await;
    assert!(fetched.get("secret").is_none() && !fetched.to_string().contains(&secret), "{fetched}");
    let updated = ok(&app, "PATCH", &format!("/apis/{id}"), &key, Some(json!({ "token_lifetime_secs": 600 }))).await;
    assert_eq!(updated["token_lifetime_secs"], 600);
    let (status, _) = app.api("POST", "/apis", &key, Some(json!({ "audience": API }))).await;
    assert_eq!(status, 409, "one API per audience");
    let (status, _) =
        app.api("POST", "/apis", &key, Some(json!({ "audience": "https://x.example", "signing_alg": "none" }))).await;
    assert_eq!(status, 400);
    ok(
        &app,
        "POST",
        "/clients",
        &key,
        Some(json!({ "name": "c", "grant_types": ["client_credentials"], "audiences": [API] })),
    )
    .await;

    let (status, error) = app.api("DELETE", &format!("/apis/{id}"), &key, None).await;

    assert_eq!((status, error["error"].as_str()), (409, Some("conflict")), "{error}");
    let other = ok(&app, "POST", "/apis", &key, Some(json!({ "audience": "https://unused.example.com" }))).await;
    let (status, _) = app.api("DELETE", &format!("/apis/{}", other["id"].as_str().unwrap()), &key, None).await;
    assert_eq!(status, 204);
}

async fn the_user_lifecycle_governs_personal_keys_only(backend: Backend) {
    // Arrange: a user with a personal key made on the account page, in a team they admin,
    // who made a team key with it.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let user = ok(&app, "POST", "/users", &owner, Some(json!({ "email": EMAIL, "password": PASSWORD }))).await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let team = ok(&app, "POST", "/teams", &owner, Some(json!({ "name": "Payments" }))).await;
    let team_id = team["id"].as_str().unwrap().to_owned();
    ok(&app, "PUT", &format!("/teams/{team_id}/members/{user_id}"), &owner, Some(json!({ "role": "admin" }))).await;
    let personal = app.personal_key_from_account_page(EMAIL, PASSWORD).await;
    let team_key = ok(
        &app,
        "POST",
        "/api-keys",
        &personal,
        Some(json!({ "kind": "team", "name": "deploys", "team_id": team_id, "team_role": "editor" })),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = |key: String| {
        let app = &app;
        async move { app.api("GET", "/users/me", &key, None).await }
    };
    let team_reach = |key: String| {
        let (app, path) = (&app, format!("/teams/{team_id}"));
        async move { app.api("GET", &path, &key, None).await.0 }
    };
    let (status, body) = me(personal.clone()).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(user_id.as_str())));

    // Deactivate: the personal key stops, the team key does not.
    ok(&app, "POST", &format!("/users/{user_id}/deactivate"), &owner, None).await;
    let (status, body) = me(personal.clone()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_api_key")));
    assert_eq!(team_reach(team_key.clone()).await, 200);

    // Reactivate: it works again.
    ok(&app, "POST", &format!("/users/{user_id}/reactivate"), &owner, None).await;
    assert_eq!(me(personal.clone()).await.0, 200);

    // Delete, then invite the same email back: a new user, and the old key stays dead.
    let (status, _) = app.api("DELETE", &format!("/users/{user_id}"), &owner, None).await;
    assert_eq!(status, 204);
    assert_eq!(me(personal.clone()).await.0, 401);
    let (status, invited) = app.api("POST", "/users/invitations", &owner, Some(json!({ "email": EMAIL }))).await;
    assert_eq!(status, 201, "{invited}");
    assert_ne!(invited["user"]["id"].as_str(), Some(user_id.as_str()));
    assert_eq!(invited["user"]["status"], "invited");
    assert!(invited["invitation_url"].as_str().unwrap().contains("/invitation?token="));
    assert_eq!(me(personal.clone()).await.0, 401, "a re-invited email does not revive the old user's key");
    assert_eq!(team_reach(team_key.clone()).await, 200, "other kinds outlive their creator");
    let (status, _) = app.api("GET", &format!("/users/{user_id}"), &owner, None).await;
    assert_eq!(status, 404, "a deleted user is gone from the API");
    let actions: Vec<String> = app.audit_actions().into_iter().map(|(action, _)| action).collect();
    for expected in ["user.created", "user.deactivated", "user.reactivated", "user.deleted", "user.invited"] {
        assert!(actions.iter().any(|a| a == expected), "{expected}: {actions:?}");
    }
}

async fn keys_are_shown_once_and_rotate_with_a_grace_period(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let (status, created) = app
        .api(
            "POST",
            "/api-keys",
            &owner,
            Some(json!({ "kind": "restricted", "name": "ci", "permissions": ["clients:read"], "tier": "free" })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let first = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(first.starts_with("rk_test_"), "{first}");
    assert_eq!(created["permissions"], json!(["clients:read"]));

    // Lists show the prefix and last four only, and when the key was last used.
    assert_eq!(app.api("GET", "/clients", &first, None).await.0, 200);
    let listed = ok(&app, "GET", "/api-keys", &owner, None).await;
    assert!(!listed.to_string().contains(&first[12..]), "the key is never listed: {listed}");
    let entry = listed["data"].as_array().unwrap().iter().find(|k| k["id"] == id.as_str()).unwrap().clone();
    assert_eq!(entry["prefix"], &first[..12]);
    assert_eq!(entry["last_four"], &first[first.len() - 4..]);
    assert!(entry["last_used_at"].is_string() && entry["last_used_ip"] == "127.0.0.1", "{entry}");
    assert_eq!(entry["tier"], "free");

    // Rotate with a grace period: both work; rotate the new one at once: it dies.
    let rotated =
        ok(&app, "POST", &format!("/api-keys/{id}/rotate"), &owner, Some(json!({ "grace_period_secs": 600 }))).await;
    let second = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(
        (rotated["kind"].as_str(), rotated["permissions"].clone()),
        (Some("restricted"), json!(["clients:read"]))
    );
    assert_eq!(app.api("GET", "/clients", &first, None).await.0, 200, "the old key works during the grace period");
    assert_eq!(app.api("GET", "/clients", &second, None).await.0, 200);
    let second_id = rotated["id"].as_str().unwrap().to_owned();
    let third = ok(&app, "POST", &format!("/api-keys/{second_id}/rotate"), &owner, None).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.api("GET", "/clients", &second, None).await.0, 401, "no grace: revoked at once");
    assert_eq!(app.api("GET", "/clients", &third, None).await.0, 200);

    // Delete: the key stops at once and leaves the list.
    let third_id = ok(&app, "GET", "/api-keys/current", &third, None).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.api("DELETE", &format!("/api-keys/{third_id}"), &owner, None).await.0, 204);
    assert_eq!(app.api("GET", "/clients", &third, None).await.0, 401);
    let listed = ok(&app, "GET", "/api-keys", &owner, None).await;
    assert!(listed["data"].as_array().unwrap().iter().all(|k| k["id"] != third_id.as_str()));
    let actions: Vec<String> = app.audit_actions().into_iter().map(|(action, _)| action).collect();
    assert!(actions.iter().any(|a| a == "api_key.rotated") && actions.iter().any(|a| a == "api_key.deleted"));
}

async fn the_audit_log_is_paginated_and_needs_its_permission(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    for n in 0..5 {
        ok(&app, "POST", "/teams", &owner, Some(json!({ "name": format!("team {n}") }))).await;
    }
    let without = ok(
        &app,
        "POST",
        "/api-keys",
        &owner,
        Some(json!({ "kind": "service", "name": "etl", "permissions": ["clients:read"] })),
    )
    .await;
    let with = ok(
        &app,
        "POST",
        "/api-keys",
        &owner,
        Some(json!({ "kind": "service", "name": "siem", "permissions": ["AUDIT_LOG_READ"] })),
    )
    .await;
    let reader = with["key"].as_str().unwrap();
    assert_eq!(with["permissions"], json!(["audit_log:read"]));
    let _ = app.api("GET", "/clients", "sk_test_not_a_key", None).await;

    let (status, error) = app.api("GET", "/audit-log", without["key"].as_str().unwrap(), None).await;
    assert_eq!((status, error["error"].as_str()), (403, Some("forbidden")), "{error}");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/audit-log?limit=2&cursor={cursor}"),
            None => "/audit-log?limit=2".to_owned(),
        };
        let page = ok(&app, "GET", &path, reader, None).await;
        let events = page["data"].as_array().unwrap();
        assert!(events.len() <= 2);
        seen.extend(
            events.iter().map(|e| (e["id"].as_str().unwrap().to_owned(), e["action"].as_str().unwrap().to_owned())),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), seen.len(), "no event appears twice across pages");
    assert_eq!(seen.iter().filter(|(_, action)| action == "team.created").count(), 5);
    assert!(seen.iter().any(|(_, action)| action == "api_key.authentication_failed"));
    let created = ok(&app, "GET", "/audit-log?action=team.created&limit=1", reader, None).await;
    let event = &created["data"][0];
    assert_eq!(event["actor_type"], "api_key", "{event}");
    assert!(event["request_id"].is_string() && event["ip"] == "127.0.0.1", "{event}");
    let blank = ok(&app, "GET", "/audit-log?limit=1&cursor=&action=&target_id=", reader, None).await;
    let first = ok(&app, "GET", "/audit-log?limit=1", reader, None).await;
    assert_eq!(blank["data"], first["data"], "empty query values are absent ones");
    let (status, _) = app.api("GET", "/audit-log?cursor=bogus", reader, None).await;
    assert_eq!(status, 400);
    let (status, _) = app.api("GET", "/audit-log?limit=0", reader, None).await;
    assert_eq!(status, 400);
}

async fn the_api_answers_every_bad_request_in_its_format(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.owner_key();
    ok(&app, "POST", "/apis", &key, Some(json!({ "audience": API, "scopes": ["read"] }))).await;
    let client = json!({ "name": "c", "grant_types": ["client_credentials"], "scopes": ["read"], "audiences": [API] });
    let client = ok(&app, "POST", "/clients", &key, Some(client)).await;
    let (client_id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let rotate_secret = format!("/clients/{client_id}/rotate-secret");
    let own_key_id = ok(&app, "GET", "/api-keys/current", &key, None).await["id"].as_str().unwrap().to_owned();
    let rotate_key = format!("/api-keys/{own_key_id}/rotate");
    let keys_before = ok(&app, "GET", "/signing-keys", &key, None).await;
    let team = ok(&app, "POST", "/teams", &key, Some(json!({ "name": "t" }))).await;
    let no_member = format!("/teams/{}/members/no-such-user", team["id"].as_str().unwrap());
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        // A body that is there but wrong is refused, never taken for an absent one.
        ("POST", "/signing-keys/rotate", Some(json!({ "algoritm": "ES256" })), 400, "invalid_request"),
        ("POST", &rotate_secret, Some(json!({ "grace_period": 3600 })), 400, "invalid_request"),
        ("POST", &rotate_key, Some(json!({ "grace": 60 })), 400, "invalid_request"),
        // Out of any clock's range.
        ("POST", &rotate_secret, Some(json!({ "grace_period_secs": i64::MAX - 1 })), 400, "invalid_request"),
        ("POST", &rotate_key, Some(json!({ "grace_period_secs": i64::MIN + 1 })), 400, "invalid_request"),
        ("GET", "/nothing-here", None, 404, "not_found"),
        ("GET", "/clients/no-such-client", None, 404, "not_found"),
        ("PUT", &no_member, Some(json!({ "role": "viewer" })), 404, "not_found"),
        ("PUT", "/clients", None, 405, "method_not_allowed"),
        ("POST", "/clients", Some(json!({ "name": "x" })), 400, "invalid_request"),
        ("POST", "/teams", Some(json!({ "name": "" })), 400, "invalid_request"),
        // serde reads a struct from an array by field order; the API takes objects only.
        ("POST", "/teams", Some(json!(["t2"])), 400, "invalid_request"),
        ("POST", &rotate_key, Some(json!([0])), 400, "invalid_request"),
        // JSON Schema's integers include 60.0, not 60.5.
        ("POST", &rotate_key, Some(json!({ "grace_period_secs": 0.5 })), 400, "invalid_request"),
        ("POST", "/api-keys", Some(json!({ "kind": "wizard", "name": "x" })), 400, "invalid_request"),
        (
            "POST",
            "/api-keys",
            Some(json!({ "kind": "restricted", "name": "x", "permissions": ["fly"] })),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/users",
            Some(json!({ "email": "not-an-email", "password": "long enough password" })),
            400,
            "invalid_request",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let response = {
            let mut request = app
                .http
                .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), app.url(&format!("/api/v1{path}")))
                .bearer_auth(&key);
            if let Some(body) = body {
                request = request.json(&body);
            }
            request.send().await.unwrap()
        };
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{method} {path}: {body}");
        assert_eq!(body["request_id"], request_id.as_str());
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let response = app
        .http
        .post(app.url("/api/v1/teams"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Nothing the refused requests named happened.
    assert_eq!(ok(&app, "GET", "/signing-keys", &app.owner_key(), None).await, keys_before, "no key rotated");
    assert_eq!(client_credentials(&app, client_id, secret).await, 200, "the secret was not replaced");
    assert_eq!(app.api("GET", "/api-keys/current", &key, None).await.0, 200, "the key was not rotated out");
}

async fn an_invited_user_chooses_a_password_once_and_signs_in(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let invited = ok(&app, "POST", "/users/invitations", &owner, Some(json!({ "email": EMAIL, "name": "Ada" }))).await;
    let link = url::Url::parse(invited["invitation_url"].as_str().unwrap()).unwrap();
    let path = format!("{}?{}", link.path(), link.query().unwrap());
    let browser = app.browser();
    let (status, _) =
        app.api("GET", &format!("/users/{}", invited["user"]["id"].as_str().unwrap()), &owner, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        crate::login::sign_in(&app, &browser, EMAIL, PASSWORD, "/account").await.status(),
        401,
        "no password yet"
    );

    // Act: open the link, try a short password, then a good one.
    let page = browser.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(EMAIL) && html.contains(r#"autocomplete="new-password""#));
    let token = link.query_pairs().find(|(k, _)| k == "token").unwrap().1.into_owned();
    let submit = |password: &'static str, csrf: String| {
        let (browser, app, token) = (&browser, &app, token.clone());
        async move {
            browser
                .post(app.url("/invitation"))
                .form(&[("token", token.as_str()), ("password", password), ("csrf_token", csrf.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let short = submit("short", crate::login::csrf_token(&html)).await;
    assert_eq!(short.status(), 400);
    let html = short.text().await.unwrap();
    assert!(html.contains("at least"), "the page says why");
    let accepted = submit(PASSWORD, crate::login::csrf_token(&html)).await;

    // Assert
    assert_eq!(accepted.status(), 303);
    assert_eq!(accepted.headers()["location"], "/login?welcome=1");
    assert_eq!(crate::login::sign_in(&app, &browser, EMAIL, PASSWORD, "/account").await.status(), 303);
    let again = app.browser().get(app.url(&path)).send().await.unwrap();
    assert_eq!(again.status(), 404, "an invitation works once");
    let user = ok(&app, "GET", &format!("/users/{}", invited["user"]["id"].as_str().unwrap()), &owner, None).await;
    assert_eq!(user["status"], "active");
    let forged = app.browser().get(app.url("/invitation?token=not-a-real-token")).send().await.unwrap();
    assert_eq!(forged.status(), 404);
}

/// The document describes every operation the API serves, with its schemas and security.
#[tokio::test]
async fn the_openapi_document_describes_every_operation() {
    let app = spawn_app(Backend::Sqlite).await;
    assert!(app.state.openapi.get().is_none(), "the document is made when first asked for, not at start");

    let response = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let again = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(Some(&again), app.state.openapi.get(), "made once, then served as made");
    let operations = [
        ("get", "/api/v1/api-keys/current"),
        ("delete", "/api/v1/api-keys/current"),
        ("get", "/api/v1/users/me"),
        ("get", "/api/v1/clients"),
        ("post", "/api/v1/clients"),
        ("get", "/api/v1/clients/{client_id}"),
        ("patch", "/api/v1/clients/{client_id}"),
        ("delete", "/api/v1/clients/{client_id}"),
        ("post", "/api/v1/clients/{client_id}/rotate-secret"),
        ("get", "/api/v1/apis"),
        ("post", "/api/v1/apis"),
        ("get", "/api/v1/apis/{id}"),
        ("patch", "/api/v1/apis/{id}"),
        ("delete", "/api/v1/apis/{id}"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("post", "/api/v1/users/invitations"),
        ("get", "/api/v1/users/{id}"),
        ("patch", "/api/v1/users/{id}"),
        ("delete", "/api/v1/users/{id}"),
        ("post", "/api/v1/users/{id}/deactivate"),
        ("post", "/api/v1/users/{id}/reactivate"),
        ("delete", "/api/v1/users/{id}/second-factors"),
        ("get", "/api/v1/sign-in-policy"),
        ("put", "/api/v1/sign-in-policy"),
        ("get", "/api/v1/teams"),
        ("post", "/api/v1/teams"),
        ("get", "/api/v1/teams/{id}"),
        ("patch", "/api/v1/teams/{id}"),
        ("delete", "/api/v1/teams/{id}"),
        ("get", "/api/v1/teams/{id}/members"),
        ("put", "/api/v1/teams/{id}/members/{user_id}"),
        ("delete", "/api/v1/teams/{id}/members/{user_id}"),
        ("get", "/api/v1/api-keys"),
        ("post", "/api/v1/api-keys"),
        ("get", "/api/v1/api-keys/{id}"),
        ("delete", "/api/v1/api-keys/{id}"),
        ("post", "/api/v1/api-keys/{id}/rotate"),
        ("get", "/api/v1/consents"),
        ("delete", "/api/v1/consents/{id}"),
        ("get", "/api/v1/signing-keys"),
        ("post", "/api/v1/signing-keys/rotate"),
        ("post", "/api/v1/signing-keys/{kid}/withdraw"),
        ("get", "/api/v1/audit-log"),
    ];
    let described: usize = document["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(described, operations.len(), "no operation is described twice or invented");
    for (method, path) in operations {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is described");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}");
        assert!(responses.contains_key("401") && responses.contains_key("429"), "{method} {path}: {responses:?}");
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for schema in ["ClientView", "RegisteredClient", "ApiKeyView", "KeyRequest", "AuditPage", "ErrorBody", "TeamRole"] {
        assert!(schemas.contains_key(schema), "{schema} is a component");
    }
    // What the server refuses, the document says: names, scopes and grant types.
    let name = schemas["DisplayName"]["pattern"].as_str().unwrap();
    assert!(name.contains("\\u202E") || name.contains("\\u2028-\\u202E"), "direction overrides are excluded: {name}");
    assert_eq!(schemas["Scopes"]["pattern"], r"^[ !#-\[\]-~]*$");
    assert_eq!(schemas["GrantType"]["enum"].as_array().unwrap().len(), 6);
    assert_eq!(schemas["ClientUpdate"]["properties"]["refresh_retry_window_secs"]["maximum"], 300);
    assert_eq!(schemas["TeamBody"]["properties"]["name"]["$ref"], "#/components/schemas/DisplayName");
    let security = document["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(security["bearer"]["scheme"], "bearer");
    assert_eq!(security["user_token"]["name"], "X-User-Token");
    assert!(
        !document.to_string().contains("client_secret_hash") && !document.to_string().contains("key_hash"),
        "no stored hash is described"
    );
}

async fn changes_are_recorded_as_the_keys_user_or_service_account(backend: Backend) {
    // Arrange: a personal key and a service key allowed to create teams.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let user =
        ok(&app, "POST", "/users", &owner, Some(json!({ "email": EMAIL, "password": PASSWORD, "role": "owner" })))
            .await;
    let personal = app.personal_key_from_account_page(EMAIL, PASSWORD).await;
    let service = ok(
        &app,
        "POST",
        "/api-keys",
        &owner,
        Some(json!({ "kind": "service", "name": "provisioner", "permissions": ["teams:write", "AUDIT_LOG_READ"] })),
    )
    .await;
    let service_key = service["key"].as_str().unwrap();

    // Act
    ok(&app, "POST", "/teams", &personal, Some(json!({ "name": "by a person" }))).await;
    ok(&app, "POST", "/teams", service_key, Some(json!({ "name": "by a service" }))).await;

    // Assert
    let page = ok(&app, "GET", "/audit-log?action=team.created", service_key, None).await;
    let events = page["data"].as_array().unwrap();
    let by = |name: &str| events.iter().find(|e| e["details"]["name"] == name).unwrap().clone();
    let by_person = by("by a person");
    assert_eq!((by_person["actor_type"].as_str(), by_person["actor_id"].clone()), (Some("user"), user["id"].clone()));
    let personal_id = ok(&app, "GET", "/api-keys/current", &personal, None).await["id"].clone();
    assert_eq!(by_person["details"]["api_key_id"], personal_id, "the key used is named beside the user");
    let by_service = by("by a service");
    assert_eq!(by_service["actor_type"], "service_account");
    assert_eq!(by_service["actor_id"], service["service_account_id"]);
    assert_eq!(by_service["details"]["api_key_id"], service["id"]);
}

/// A body sent without its JSON content type is told what to send, in the API's format.
async fn a_body_that_is_not_declared_json_is_told_what_to_send(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .http
        .post(app.url("/api/v1/teams"))
        .bearer_auth(app.owner_key())
        .header("content-type", "text/plain")
        .body(r#"{"name": "Payments"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_request", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("Content-Type: application/json"), "{message}");
}

crate::on_both_backends!(
    a_body_that_is_not_declared_json_is_told_what_to_send,
    changes_are_recorded_as_the_keys_user_or_service_account,
    an_invited_user_chooses_a_password_once_and_signs_in,
    clients_are_created_read_updated_rotated_and_deleted,
    apis_show_their_secret_once_and_cannot_be_deleted_while_in_use,
    the_user_lifecycle_governs_personal_keys_only,
    keys_are_shown_once_and_rotate_with_a_grace_period,
    the_audit_log_is_paginated_and_needs_its_permission,
    the_api_answers_every_bad_request_in_its_format,
);
