//! Access tokens on the management API (INTERFACE §5): a user's token from the
//! authorization-code flow acts as the user within its scopes; a client-credentials token
//! as the client's service principal; bad tokens get RFC 6750 answers in the API's format.

use jsonwebtoken::Algorithm;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RefreshToken, Scope, TokenResponse};
use serde_json::{Value, json};

use crate::authorize::{CALLBACK, consent, oauth2_app, query_param, sign_in_and_authorize};
use crate::helpers::{Backend, TestApp, credentials, spawn_app};
use crate::login::{EMAIL, PASSWORD};
use crate::on_both_backends;

/// Calls the management API with `token` as the bearer credential; the status, the
/// `WWW-Authenticate` challenge and the body.
async fn call(app: &TestApp, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, String, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.http.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = response.text().await.unwrap();
    (status, challenge, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

fn management_audience(app: &TestApp) -> String {
    format!("{}/api/v1", app.issuer())
}

/// A public app (a CLI, say) registered for the management API with `scopes`.
pub(crate) async fn management_app(app: &TestApp, owner: &str, scopes: &str) -> String {
    let body = json!({
        "name": "Ops CLI", "public": true, "grant_types": ["authorization_code", "refresh_token"],
        "scopes": [scopes], "audiences": [management_audience(app)], "redirect_uris": [CALLBACK],
    });
    let (status, registered) = app.api("POST", "/clients", owner, Some(body)).await;
    assert_eq!(status, 201, "{registered}");
    registered["client_id"].as_str().unwrap().to_owned()
}

async fn a_users_token_acts_as_the_user_within_its_scopes(backend: Backend) {
    // Arrange: Ada edits team Payments, which owns one client; another client is nobody's.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let ada = app.create_user(EMAIL, PASSWORD);
    let (_, team) = app.api("POST", "/teams", &owner, Some(json!({ "name": "Payments" }))).await;
    let team_id = team["id"].as_str().unwrap();
    let member = json!({ "role": "editor" });
    app.api("PUT", &format!("/teams/{team_id}/members/{}", ada.id), &owner, Some(member)).await;
    let new_client = |name: &str, team: Option<&str>| json!({ "name": name, "team_id": team, "grant_types": ["client_credentials"] });
    let (_, theirs) = app.api("POST", "/clients", &owner, Some(new_client("Ledger", Some(team_id)))).await;
    let (_, others) = app.api("POST", "/clients", &owner, Some(new_client("Payroll", None))).await;
    let (theirs, others) = (theirs["client_id"].as_str().unwrap(), others["client_id"].as_str().unwrap());
    let cli = management_app(&app, &owner, "read clients:write offline_access").await;

    // Act: Ada lets the CLI read and change clients, through the oauth2 crate.
    let oauth = oauth2_app(&app, &cli);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scopes(["read", "clients:write", "offline_access"].map(|s| Scope::new(s.into())))
        .add_extra_param("resource", management_audience(&app))
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.browser();
    let page = sign_in_and_authorize(&app, &browser, authorize_url.as_str()).await;
    let callback = consent(&app, &browser, page, "approve", false).await;
    let code = query_param(&callback, "code").expect("a code");
    let granted = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("the code is exchanged");
    let token = granted.access_token().secret();

    // Assert: it is Ada, through the CLI.
    let (status, _, me) = call(&app, "GET", "/users/me", token, None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["type"], "user");
    assert_eq!(me["id"], ada.id.as_str());
    assert_eq!(me["through_client"]["client_id"], cli.as_str());
    assert_eq!(me["scope"], "clients:write offline_access read");

    // What Ada reaches, and no more: her team's client; the other stays out of sight.
    let (status, _, listed) = call(&app, "GET", "/clients", token, None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [theirs]);
    assert_eq!(call(&app, "GET", &format!("/clients/{others}"), token, None).await.0, 404);
    assert_eq!(call(&app, "PATCH", &format!("/clients/{others}"), token, Some(json!({ "name": "x" }))).await.0, 404);

    // Her role lets her delete it, but the token only carries clients:write.
    let (status, _, renamed) =
        call(&app, "PATCH", &format!("/clients/{theirs}"), token, Some(json!({ "name": "Ledger 2" }))).await;
    assert_eq!(status, 200, "{renamed}");
    let (status, _, refused) = call(&app, "DELETE", &format!("/clients/{theirs}"), token, None).await;
    assert_eq!(status, 403);
    assert_eq!(refused["error"], "forbidden");
    assert!(refused["request_id"].is_string());
    // A member never reads the audit log, whatever the token's scopes.
    assert_eq!(call(&app, "GET", "/audit-log", token, None).await.0, 403);
    let (_, _, me_again) = call(&app, "GET", "/api-keys/current", token, None).await;
    assert_eq!(me_again["error"], "invalid_request", "a token is not a key: {me_again}");

    // Recorded as Ada, through the CLI.
    let (_, log) = app.api("GET", "/audit-log?action=client.updated", &owner, None).await;
    let entry = &log["data"][0];
    assert_eq!(entry["actor_type"], "user", "{log}");
    assert_eq!(entry["actor_id"], ada.id.as_str());
    assert_eq!(entry["details"]["through_client_id"], cli.as_str(), "{entry}");
    // (The dashboard's audit log says so in words: `dashboard.rs`.)

    // A refreshed token acts the same way.
    let refreshed = oauth
        .exchange_refresh_token(&RefreshToken::new(granted.refresh_token().unwrap().secret().clone()))
        .request_async(&app.http)
        .await
        .expect("the refresh token is exchanged");
    let response =
        app.http.get(app.url("/api/v1/users/me")).bearer_auth(refreshed.access_token().secret()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-ratelimit-remaining"), "rate-limited per user, with the headers");
}

/// A client-credentials token for `audience`, from the token endpoint at the guides' path.
async fn token_for(app: &TestApp, audience: &str, client: (&str, &str), scope: &str) -> String {
    let form = [("grant_type", "client_credentials"), ("scope", scope), ("resource", audience)];
    let response = app.post_form("/oauth/token", &form, Some(client)).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn a_client_credentials_token_acts_as_the_clients_service_principal(backend: Backend) {
    // Arrange: an owner grants a client audit-log reading and client management.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let audience = management_audience(&app);
    let body = json!({
        "name": "Compliance export", "grant_types": ["client_credentials"], "scopes": ["read", "write"],
        "audiences": [audience], "permissions": ["AUDIT_LOG_READ", "clients:write"],
    });
    let (status, client) = app.api("POST", "/clients", &owner, Some(body.clone())).await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(client["permissions"], json!(["audit_log:read", "clients:write"]));
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    // Only an owner grants tenant permissions.
    let restricted = app.restricted_key(&owner, &["clients:admin"]).await;
    let (status, refused) = app.api("POST", "/clients", &restricted, Some(body)).await;
    assert_eq!((status, refused["error"].as_str()), (403, Some("forbidden")), "{refused}");

    let reader = token_for(&app, &audience, (id, secret), "read").await;
    let writer = token_for(&app, &audience, (id, secret), "read write").await;

    // Act and assert: it is the client, with what it was granted, within the token's scopes.
    let (_, _, me) = call(&app, "GET", "/users/me", &reader, None).await;
    assert_eq!((me["type"].as_str(), me["id"].as_str()), (Some("client"), Some(id)), "{me}");
    assert_eq!(call(&app, "GET", "/audit-log", &reader, None).await.0, 200);
    assert_eq!(call(&app, "GET", "/clients", &reader, None).await.0, 200);
    assert_eq!(call(&app, "GET", "/users", &reader, None).await.0, 403, "not granted");
    let new_client = json!({ "name": "Made by a client", "grant_types": ["client_credentials"] });
    assert_eq!(call(&app, "POST", "/clients", &reader, Some(new_client.clone())).await.0, 403, "read only");
    let (status, _, made) = call(&app, "POST", "/clients", &writer, Some(new_client)).await;
    assert_eq!(status, 201, "{made}");

    // Recorded as the client.
    let (_, log) = app.api("GET", "/audit-log?action=client.created", &owner, None).await;
    let entry = log["data"].as_array().unwrap().iter().find(|e| e["target_id"] == made["client_id"]).unwrap();
    assert_eq!((entry["actor_type"].as_str(), entry["actor_id"].as_str()), (Some("client"), Some(id)), "{entry}");

    // Deleting the client ends its tokens.
    app.api("DELETE", &format!("/clients/{id}"), &owner, None).await;
    let (status, _, body) = call(&app, "GET", "/audit-log", &reader, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{body}");
}

/// A Latchkey-signed token with these claims, as a forger holding nothing could not make.
async fn signed(app: &TestApp, claims: Value) -> String {
    let key = app.state.active_key(latchkey::domain::SigningAlgorithm::RS256).await.unwrap();
    latchkey::tokens::jwt::sign(&key, latchkey::tokens::jwt::ACCESS_TOKEN_TYP, &claims)
}

fn unsigned(header: Value, claims: &Value) -> String {
    use base64::Engine;
    let encode = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", encode(&header), encode(claims))
}

async fn bad_tokens_are_refused_in_the_apis_format_with_a_bearer_challenge(backend: Backend) {
    // Arrange: a client allowed the management API, a user, and good claims to spoil.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let audience = management_audience(&app);
    let body = json!({ "name": "Exporter", "grant_types": ["client_credentials"], "scopes": ["read"],
                       "audiences": [audience], "permissions": ["read"] });
    let (_, client) = app.api("POST", "/clients", &owner, Some(body)).await;
    let id = client["client_id"].as_str().unwrap().to_owned();
    let machine = app.create_machine_client();
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "iss": app.issuer(), "sub": id, "aud": audience, "iat": now, "exp": now + 300,
                         "jti": "j-1", "client_id": id, "scope": "read" });
    let good = signed(&app, claims.clone()).await;
    assert_eq!(call(&app, "GET", "/clients", &good, None).await.0, 200, "the unspoilt token works");

    let kid = jsonwebtoken::decode_header(&good).unwrap().kid.unwrap();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 1);
    let mut early = claims.clone();
    early["nbf"] = json!(now + 600);
    let mut other_audience = claims.clone();
    other_audience["aud"] = json!(crate::helpers::API);
    let mut forged = good.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    // HS256 "signed" with the RSA public key anyone can fetch from the JWKS.
    let jwks = app.jwks().await;
    let public = serde_json::to_vec(&jwks.find(&kid).unwrap()).unwrap();
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some(kid.clone()),
            typ: Some("at+jwt".into()),
            ..jsonwebtoken::Header::new(Algorithm::HS256)
        },
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    let revoked = app.client_credentials_token(&machine, "read").await;
    let machine_token = app.client_credentials_token(&machine, "read").await;
    app.post_form("/oauth2/revoke", &[("token", &revoked)], Some(credentials(&machine))).await;
    let mut unknown_client = claims.clone();
    unknown_client["client_id"] = json!("nobody");
    unknown_client["sub"] = json!("nobody");
    let mut gone_user = claims.clone();
    gone_user["sub"] = json!("no-such-user");

    let cases = [
        ("expired", signed(&app, expired).await, "token_expired"),
        ("not yet valid", signed(&app, early).await, "invalid_token"),
        ("for another API", signed(&app, other_audience).await, "invalid_token"),
        ("a token Latchkey issued for another API", machine_token, "invalid_token"),
        ("badly signed", forged, "invalid_token"),
        ("alg none", unsigned(json!({ "alg": "none", "typ": "at+jwt", "kid": kid }), &claims), "invalid_token"),
        ("HS256 with the public key", confused, "invalid_token"),
        ("unknown kid", unsigned(json!({ "alg": "RS256", "typ": "at+jwt", "kid": "nope" }), &claims), "invalid_token"),
        ("revoked", revoked, "invalid_token"),
        ("of a client that does not exist", signed(&app, unknown_client).await, "invalid_token"),
        ("of a user who does not exist", signed(&app, gone_user).await, "invalid_token"),
    ];
    for (name, token, code) in cases {
        // Act
        let (status, challenge, body) = call(&app, "GET", "/clients", &token, None).await;

        // Assert
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"], code, "{name}: {body}");
        assert!(body["request_id"].is_string() && body["message"].is_string(), "{name}: {body}");
        assert!(
            challenge.starts_with(r#"Bearer realm="latchkey", error="invalid_token", error_description=""#),
            "{name}: {challenge}"
        );
        assert!(challenge.contains(r#"resource_metadata=""#), "{name}: {challenge}");
    }
    let failures =
        app.audit_actions().iter().filter(|(action, _)| action == "access_token.authentication_failed").count();
    assert_eq!(failures, 11, "every refused token is audited");
}

async fn a_deactivated_users_tokens_stop_at_once(backend: Backend) {
    // Arrange: Ada's token, made for the management API.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let ada = app.create_user(EMAIL, PASSWORD);
    let cli = management_app(&app, &owner, "read").await;
    let (code, verifier) = crate::authorize::obtain_code_for(&app, &cli, &["read"]).await;
    let granted: Value = crate::authorize::exchange(&app, &cli, &code, &verifier).await.json().await.unwrap();
    let token = granted["access_token"].as_str().unwrap();
    assert_eq!(call(&app, "GET", "/users/me", token, None).await.0, 200);

    // Act
    let (status, _) = app.api("POST", &format!("/users/{}/deactivate", ada.id), &owner, None).await;
    assert_eq!(status, 200);

    // Assert
    let (status, _, body) = call(&app, "GET", "/users/me", token, None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{body}");
}

async fn the_management_api_is_a_built_in_api_clients_find_described(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let audience = management_audience(&app);

    // Listed among the APIs, never changed or deleted.
    let (_, apis) = app.api("GET", "/apis", &owner, None).await;
    let built_in = apis["data"].as_array().unwrap().iter().find(|api| api["audience"] == audience.as_str()).unwrap();
    assert_eq!(built_in["built_in"], true);
    assert_eq!(built_in["signing_alg"], "RS256");
    for scope in ["read", "write", "delete", "admin", "clients:read", "audit_log:read", "api_keys:admin"] {
        assert!(built_in["scope"].as_str().unwrap().split(' ').any(|s| s == scope), "{scope}: {built_in}");
    }
    let path = format!("/apis/{}", built_in["id"].as_str().unwrap());
    assert_eq!(app.api("PATCH", &path, &owner, Some(json!({ "name": "Mine" }))).await.0, 409);
    assert_eq!(app.api("DELETE", &path, &owner, None).await.0, 409);

    // Authorization server metadata names it (RFC 9728 §4); its own metadata says the rest.
    let metadata: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["protected_resources"], json!([audience]));
    let resource: Value = app
        .http
        .get(app.url("/.well-known/oauth-protected-resource/api/v1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["resource"], audience.as_str());
    assert_eq!(resource["authorization_servers"], json!([app.issuer()]));
    assert_eq!(resource["bearer_methods_supported"], json!(["header"]));
    assert!(resource["scopes_supported"].as_array().unwrap().contains(&json!("audit_log:read")));

    // The OpenAPI document offers both ways in, with this deployment's real endpoints.
    let document: Value = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let flows = &schemes["oauth2"]["flows"];
    assert_eq!(flows["authorizationCode"]["authorizationUrl"], app.url("/oauth2/authorize"));
    assert_eq!(flows["authorizationCode"]["tokenUrl"], app.url("/oauth2/token"));
    assert_eq!(flows["clientCredentials"]["tokenUrl"], app.url("/oauth2/token"));
    assert!(flows["clientCredentials"]["scopes"]["clients:write"].is_string(), "{flows}");
    assert!(document["security"].as_array().unwrap().iter().any(|s| s.get("oauth2").is_some()));

    // An API key is its own credential here: it is not exchanged for a token of this API.
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", owner.as_str()),
        ("subject_token_type", "urn:latchkey:params:oauth:token-type:api-key"),
        ("resource", audience.as_str()),
    ];
    let response = app.post_form("/oauth2/token", &form, None).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_target");
}

async fn a_users_tokens_share_one_rate_limit_bucket(backend: Backend) {
    // Arrange: five requests at once, then one a minute; Ada's two tokens from two sign-ins.
    let db = crate::helpers::TestDb::new(&backend);
    let app = crate::helpers::spawn_app_with(db, |settings| {
        settings.rate_limit_per_hour = 60;
        settings.rate_limit_burst = 5;
    })
    .await;
    let owner = app.owner_key();
    app.create_user(EMAIL, PASSWORD);
    let cli = management_app(&app, &owner, "read clients:write").await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let (code, verifier) = crate::authorize::obtain_code_for(&app, &cli, &["read", "clients:write"]).await;
        let granted: Value = crate::authorize::exchange(&app, &cli, &code, &verifier).await.json().await.unwrap();
        tokens.push(granted["access_token"].as_str().unwrap().to_owned());
    }
    let remaining =
        |response: &reqwest::Response| response.headers()["x-ratelimit-remaining"].to_str().unwrap().to_owned();

    // Act: three requests with the first token, then two with the second.
    let mut seen = Vec::new();
    for token in [&tokens[0], &tokens[0], &tokens[0], &tokens[1], &tokens[1]] {
        let response = app.http.get(app.url("/api/v1/users/me")).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        seen.push(remaining(&response));
    }
    let refused = app.http.get(app.url("/api/v1/users/me")).bearer_auth(&tokens[1]).send().await.unwrap();

    // Assert: one bucket for Ada, whichever token; then 429 in the API's words.
    assert_eq!(seen, ["4", "3", "2", "1", "0"]);
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "rate_limit_exceeded");
    assert!(body["message"].as_str().unwrap().starts_with("Rate limit exceeded. Try again in "), "{body}");

    // A client's own tokens spend the client's bucket, not Ada's: the one its requests at the
    // token endpoint spend too, so token, call, token, call leave 3, then 1.
    let audience = management_audience(&app);
    let body = json!({ "name": "Exporter", "grant_types": ["client_credentials"], "scopes": ["read"],
                       "audiences": [audience], "permissions": ["read"] });
    let (_, client) = app.api("POST", "/clients", &owner, Some(body)).await;
    let machine = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let mut seen = Vec::new();
    for _ in 0..2 {
        let token = token_for(&app, &audience, machine, "read").await;
        let response = app.http.get(app.url("/api/v1/users/me")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        seen.push(remaining(&response));
    }
    assert_eq!(seen, ["3", "1"]);
}

on_both_backends!(
    a_users_tokens_share_one_rate_limit_bucket,
    a_users_token_acts_as_the_user_within_its_scopes,
    a_client_credentials_token_acts_as_the_clients_service_principal,
    bad_tokens_are_refused_in_the_apis_format_with_a_bearer_challenge,
    a_deactivated_users_tokens_stop_at_once,
    the_management_api_is_a_built_in_api_clients_find_described,
);
