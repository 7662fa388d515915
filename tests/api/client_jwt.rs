//! JWTs clients sign themselves (RFC 7523): `client_secret_jwt` and `private_key_jwt` at the
//! token, introspection and revocation endpoints; the JWT-bearer grant with the guides' JWT;
//! the guides' JWT directly on the management API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey::domain::SigningAlgorithm;
use serde_json::{Value, json};

use crate::helpers::{API, Backend, TestApp, spawn_app};
use crate::on_both_backends;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// HS256 with the client secret, as `jwt.sign(payload, CLIENT_SECRET, {algorithm: 'HS256'})`.
fn hs256(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

/// A client registered through the API with `body` on top of client credentials on [`API`].
async fn register(app: &TestApp, owner: &str, extra: Value) -> Value {
    let mut body =
        json!({ "name": "Signer", "grant_types": ["client_credentials"], "scopes": ["read"], "audiences": [API] });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, client) = app.api("POST", "/clients", owner, Some(body)).await;
    assert_eq!(status, 201, "{client}");
    client
}

fn assertion_claims(client_id: &str, aud: &str) -> Value {
    json!({ "iss": client_id, "sub": client_id, "aud": aud, "iat": now(), "exp": now() + 60,
            "jti": uuid::Uuid::new_v4().to_string() })
}

async fn token_with_assertion(app: &TestApp, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "read"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    let response = app.post_form("/oauth2/token", &form, None).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn client_secret_jwt_authenticates_at_the_token_introspection_and_revocation_endpoints(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_api(API, &["read"], "RS256");
    let owner = app.owner_key();
    let client = register(&app, &owner, json!({ "token_endpoint_auth_method": "client_secret_jwt" })).await;
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    assert_eq!(client["token_endpoint_auth_method"], "client_secret_jwt");

    // Act and assert: `aud` the token endpoint, then the issuer.
    let first = hs256(secret, &assertion_claims(id, &app.url("/oauth2/token")));
    let (status, body) = token_with_assertion(&app, &first).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = token_with_assertion(&app, &hs256(secret, &assertion_claims(id, &app.issuer()))).await;
    assert_eq!(status, 200, "{body}");

    // The same assertion twice: refused, saying why.
    let (status, body) = token_with_assertion(&app, &first).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("used before"), "{body}");

    // Introspection and revocation take assertions made for them.
    let introspect = hs256(secret, &assertion_claims(id, &app.url("/oauth2/introspect")));
    let form =
        [("token", token.as_str()), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &introspect)];
    let introspected: Value = app.post_form("/oauth2/introspect", &form, None).await.json().await.unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    let revoke = hs256(secret, &assertion_claims(id, &app.url("/oauth2/revoke")));
    let form = [("token", token.as_str()), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &revoke)];
    assert_eq!(app.post_form("/oauth2/revoke", &form, None).await.status(), 200);

    // The registered method is the only one: the secret itself does not authenticate.
    let basic = app.post_form("/oauth2/token", &[("grant_type", "client_credentials")], Some((id, secret))).await;
    assert_eq!(basic.status(), 401);

    // Metadata says so.
    let metadata: Value =
        app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("client_secret_jwt")) && methods.contains(&json!("private_key_jwt")));
    assert_eq!(
        metadata["token_endpoint_auth_signing_alg_values_supported"],
        json!(["HS256", "RS256", "ES256", "EdDSA"])
    );
}

async fn bad_client_assertions_are_refused_with_the_reason(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_api(API, &["read"], "RS256");
    let owner = app.owner_key();
    let client = register(&app, &owner, json!({ "token_endpoint_auth_method": "client_secret_jwt" })).await;
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let aud = app.url("/oauth2/token");
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = assertion_claims(id, &aud);
        change(&mut claims);
        claims
    };
    let unsigned = |claims: &Value| {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({ "alg": "none" }).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", hs256(secret, &with(&|c| c["exp"] = json!(now() - 60))), "expired"),
        ("living an hour", hs256(secret, &with(&|c| c["exp"] = json!(now() + 3600))), "lives too long"),
        ("future-dated", hs256(secret, &with(&|c| c["iat"] = json!(now() + 600))), "future"),
        ("not yet valid", hs256(secret, &with(&|c| c["nbf"] = json!(now() + 600))), "not valid yet"),
        ("for another server", hs256(secret, &with(&|c| c["aud"] = json!("https://other.example.com"))), "aud"),
        ("without a jti", hs256(secret, &with(&|c| c["jti"] = Value::Null)), "jti"),
        ("naming someone else", hs256(secret, &with(&|c| c["sub"] = json!("someone"))), "sub"),
        ("signed with another secret", hs256("not the secret", &with(&|_| {})), "does not verify"),
        ("alg none", unsigned(&with(&|_| {})), "client authentication failed"),
    ];
    for (name, assertion, reason) in cases {
        // Act
        let (status, body) = token_with_assertion(&app, &assertion).await;

        // Assert
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{name}: {body}");
        assert!(body["error_description"].as_str().unwrap().contains(reason), "{name}: {body}");
    }
    let audited = app.audit_actions().iter().filter(|(action, _)| action == "client.authentication_failed").count();
    assert_eq!(audited, 9, "every refusal is audited");
}

/// A compact JWS signed with a private key made in the test.
fn signed_with(key: &latchkey::tokens::keys::GeneratedKey, claims: &Value) -> String {
    let pair = latchkey::tokens::keys::KeyPair::from_pkcs8(key.algorithm, &key.pkcs8).unwrap();
    let header = json!({ "alg": key.algorithm.as_str(), "kid": key.jwk.kid, "typ": "JWT" });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = pair.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn private_key_jwt_verifies_against_the_registered_keys(backend: Backend) {
    // Arrange: a client with an ES256 and an Ed25519 key, made here.
    let app = spawn_app(backend).await;
    app.create_api(API, &["read"], "RS256");
    let owner = app.owner_key();
    let es256 = latchkey::tokens::keys::generate_key(SigningAlgorithm::ES256).unwrap();
    let eddsa = latchkey::tokens::keys::generate_key(SigningAlgorithm::EdDSA).unwrap();
    let unregistered = latchkey::tokens::keys::generate_key(SigningAlgorithm::ES256).unwrap();
    let jwks = json!({ "keys": [es256.jwk, eddsa.jwk] });
    let client = register(&app, &owner, json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks })).await;
    let id = client["client_id"].as_str().unwrap();
    assert!(client.get("client_secret").is_none(), "a private_key_jwt client has no secret: {client}");
    let aud = app.url("/oauth2/token");

    // Act and assert: either key works.
    for key in [&es256, &eddsa] {
        let (status, body) = token_with_assertion(&app, &signed_with(key, &assertion_claims(id, &aud))).await;
        assert_eq!(status, 200, "{:?}: {body}", key.algorithm);
    }
    // A key it never registered, under a registered kid or its own, does not.
    let mut impostor = latchkey::tokens::keys::generate_key(SigningAlgorithm::ES256).unwrap();
    impostor.jwk.kid = es256.jwk.kid.clone();
    for key in [&unregistered, &impostor] {
        let (status, body) = token_with_assertion(&app, &signed_with(key, &assertion_claims(id, &aud))).await;
        assert_eq!(status, 401, "{body}");
    }
    // HS256 "signed" with the client's public key, the classic confusion, does not either.
    let public = serde_json::to_vec(&es256.jwk).unwrap();
    let header = Header { kid: Some(es256.jwk.kid.clone()), ..Header::new(Algorithm::HS256) };
    let confused =
        jsonwebtoken::encode(&header, &assertion_claims(id, &aud), &EncodingKey::from_secret(&public)).unwrap();
    assert_eq!(token_with_assertion(&app, &confused).await.0, 401);

    // Keys with private parts, or of a type Latchkey does not verify, are not registered.
    let mut private = serde_json::to_value(&es256.jwk).unwrap();
    private["d"] = json!("c2VjcmV0");
    for bad in [
        json!({ "keys": [private] }),
        json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0", "kid": "h" }] }),
        json!({ "keys": [] }),
    ] {
        let body = json!({ "name": "x", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": bad });
        let (status, refused) = app.api("POST", "/clients", &owner, Some(body)).await;
        assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_request")), "{refused}");
    }
}

/// The guides' JWT: "payload {iss: CLIENT_ID, sub: 'user_123', aud: '[PRODUCT]_API', iat,
/// exp: iat + 3600}, jwt.sign(payload, CLIENT_SECRET, {algorithm: 'HS256'})".
fn guides_jwt(client_id: &str, secret: &str, sub: &str, aud: &str) -> String {
    let iat = now();
    hs256(secret, &json!({ "iss": client_id, "sub": sub, "aud": aud, "iat": iat, "exp": iat + 3600 }))
}

async fn the_guides_jwt_is_exchanged_by_the_jwt_bearer_grant_and_taken_by_the_management_api(backend: Backend) {
    // Arrange: a client that signs with its secret, registered for an API and for the
    // management API, with audit-log reading for its own principal.
    let app = spawn_app(backend).await;
    app.create_api(API, &["read", "write"], "RS256");
    let owner = app.owner_key();
    let management = format!("{}/api/v1", app.issuer());
    let client = register(
        &app,
        &owner,
        json!({ "grant_types": ["client_credentials", JWT_BEARER], "scopes": ["read"], "audiences": [API, management],
                "token_endpoint_auth_method": "client_secret_jwt", "permissions": ["AUDIT_LOG_READ"] }),
    )
    .await;
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());

    // Act: the JWT for the API, in the grant.
    let (status, body) = jwt_bearer(&app, &guides_jwt(id, secret, id, API), None).await;

    // Assert: an access token for that API, for the client, with what it may have there.
    assert_eq!(status, 200, "{body}");
    let claims =
        crate::helpers::verify_with_jwks(body["access_token"].as_str().unwrap(), &app.jwks().await, &app.issuer(), API)
            .unwrap();
    assert_eq!((claims["sub"].as_str(), claims["client_id"].as_str()), (Some(id), Some(id)));
    assert_eq!(body["scope"], "read");

    // Naming a user: refused, since no owner let this client act for users.
    let (_, user) = app
        .api(
            "POST",
            "/users",
            &owner,
            Some(json!({ "email": "user@example.com", "password": "correct horse battery staple" })),
        )
        .await;
    let user_id = user["id"].as_str().unwrap();
    let (_, refused) = jwt_bearer(&app, &guides_jwt(id, secret, user_id, API), None).await;
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    assert!(refused["error_description"].as_str().unwrap().contains("may not act for users"), "{refused}");

    // The same JWT shape straight on the management API, as the client's principal.
    let direct = guides_jwt(id, secret, id, &management);
    let response = app.http.get(app.url("/api/v1/audit-log")).bearer_auth(&direct).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let me: Value =
        app.http.get(app.url("/api/v1/users/me")).bearer_auth(&direct).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["type"].as_str(), me["id"].as_str()), (Some("client"), Some(id)), "{me}");
    let (status, _, body) = call(&app, "/users", &direct).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")), "not granted: {body}");

    // Signed with another secret, for another audience, or too long-lived: refused.
    let iat = now();
    let cases = [
        ("another secret", guides_jwt(id, "guess", id, &management), "invalid_token"),
        ("for the other API", guides_jwt(id, secret, id, API), "invalid_token"),
        (
            "a day long",
            hs256(secret, &json!({ "iss": id, "sub": id, "aud": management, "iat": iat, "exp": iat + 86_400 })),
            "invalid_token",
        ),
        (
            "expired",
            hs256(secret, &json!({ "iss": id, "sub": id, "aud": management, "iat": iat - 7200, "exp": iat - 3600 })),
            "token_expired",
        ),
    ];
    for (name, jwt, code) in cases {
        let (status, challenge, body) = call(&app, "/audit-log", &jwt).await;
        assert_eq!((status, body["error"].as_str()), (401, Some(code)), "{name}: {body}");
        assert!(challenge.contains(r#"error="invalid_token""#), "{name}: {challenge}");
    }
}

/// The JWT-bearer grant, at the guides' token path.
async fn jwt_bearer(app: &TestApp, assertion: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend(scope.map(|scope| ("scope", scope)));
    let response = app.post_form("/oauth/token", &form, None).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn call(app: &TestApp, path: &str, token: &str) -> (u16, String, Value) {
    let response = app.http.get(app.url(&format!("/api/v1{path}"))).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, challenge, response.json().await.unwrap())
}

async fn a_client_may_act_for_a_user_only_within_what_they_consented_to(backend: Backend) {
    // Arrange: an owner lets a client act for users; Ada consented to it reading the API.
    let app = spawn_app(backend).await;
    app.create_api(API, &["read", "write"], "RS256");
    let owner = app.owner_key();
    let ada = app.create_user(crate::login::EMAIL, crate::login::PASSWORD);
    let client = register(
        &app,
        &owner,
        json!({ "grant_types": ["authorization_code", JWT_BEARER], "scopes": ["read", "write"], "audiences": [API],
                "redirect_uris": [crate::authorize::CALLBACK], "token_endpoint_auth_method": "client_secret_jwt",
                "acts_for_users": true }),
    )
    .await;
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let (_, before) = jwt_bearer(&app, &guides_jwt(id, secret, &ada.id, API), None).await;
    assert_eq!(before["error"], "invalid_grant", "no consent yet: {before}");
    // Ada lets the app read, in the browser, as any person would.
    crate::authorize::obtain_code_for(&app, id, &["read"]).await;

    // Act
    let (_, granted) = jwt_bearer(&app, &guides_jwt(id, secret, &ada.id, API), None).await;
    let (wider_status, wider) = jwt_bearer(&app, &guides_jwt(id, secret, &ada.id, API), Some("read write")).await;

    // Assert: a token for Ada with what she consented to, never more.
    assert_eq!(granted["scope"], "read", "{granted}");
    let claims = crate::helpers::verify_with_jwks(
        granted["access_token"].as_str().unwrap(),
        &app.jwks().await,
        &app.issuer(),
        API,
    )
    .unwrap();
    assert_eq!(claims["sub"], ada.id.as_str());
    assert_eq!((wider_status, wider["error"].as_str()), (400, Some("invalid_scope")), "{wider}");

    // Only an owner lets a client act for users.
    let restricted = app.restricted_key(&owner, &["clients:admin"]).await;
    let change = json!({ "acts_for_users": false });
    let (status, _) = app.api("PATCH", &format!("/clients/{id}"), &restricted, Some(change)).await;
    assert_eq!(status, 403);
}

/// A key server on loopback: `/jwks` serves `keys`, `/big` 100 KiB, `/html` a web page.
async fn key_server(keys: Value) -> String {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let body = keys.to_string();
    let server = HttpServer::new(move || {
        let body = body.clone();
        App::new()
            .route(
                "/jwks",
                web::get().to(move || {
                    let body = body.clone();
                    async move { HttpResponse::Ok().content_type("application/json").body(body) }
                }),
            )
            .route("/big", web::get().to(|| async { HttpResponse::Ok().body(vec![b' '; 100 * 1024]) }))
            .route("/html", web::get().to(|| async { HttpResponse::Ok().body("<html>hello</html>") }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    address
}

async fn register_at(app: &TestApp, owner: &str, uri: String) -> Value {
    register(app, owner, json!({ "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri })).await
}

async fn private_key_jwt_keys_are_fetched_from_a_jwks_uri_only_where_allowed(backend: Backend) {
    // Arrange: a key server on loopback, and two deployments: one that allows private
    // addresses for jwks_uri, one that does not (the default).
    let key = latchkey::tokens::keys::generate_key(SigningAlgorithm::ES256).unwrap();
    let keys = key_server(json!({ "keys": [key.jwk] })).await;
    let allowing = crate::helpers::spawn_app_with(crate::helpers::TestDb::new(&backend), |settings| {
        settings.jwks_uri_allow_private = true;
    })
    .await;
    let strict = spawn_app(backend).await;
    allowing.create_api(API, &["read"], "RS256");
    strict.create_api(API, &["read"], "RS256");

    let allowing_owner = allowing.owner_key();

    // Act and assert: fetched, checked and used where allowed.
    let client = register_at(&allowing, &allowing_owner, format!("{keys}/jwks")).await;
    let id = client["client_id"].as_str().unwrap();
    assert_eq!(client["jwks_uri"], format!("{keys}/jwks"));
    let (status, body) =
        token_with_assertion(&allowing, &signed_with(&key, &assertion_claims(id, &allowing.issuer()))).await;
    assert_eq!(status, 200, "{body}");
    for (path, reason) in
        [("/big", "more than 64 KiB"), ("/html", "did not answer a JWK Set"), ("/nothing", "could not be fetched")]
    {
        let other = register_at(&allowing, &allowing_owner, format!("{keys}{path}")).await;
        let other_id = other["client_id"].as_str().unwrap();
        let (status, body) =
            token_with_assertion(&allowing, &signed_with(&key, &assertion_claims(other_id, &allowing.issuer()))).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error_description"].as_str().unwrap().contains(reason), "{path}: {body}");
    }

    // Refused where not: a loopback address is never fetched.
    let client = register_at(&strict, &strict.owner_key(), format!("{keys}/jwks")).await;
    let id = client["client_id"].as_str().unwrap();
    let (status, body) =
        token_with_assertion(&strict, &signed_with(&key, &assertion_claims(id, &strict.issuer()))).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("not allowed"), "{body}");
    // And a URI that is not http(s), or carries credentials, is not registered at all.
    for bad in ["file:///etc/passwd", "https://user:pw@keys.example.com/jwks"] {
        let owner = strict.owner_key();
        let body = json!({ "name": "x", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": bad });
        assert_eq!(strict.api("POST", "/clients", &owner, Some(body)).await.0, 400, "{bad}");
    }
}

on_both_backends!(
    client_secret_jwt_authenticates_at_the_token_introspection_and_revocation_endpoints,
    bad_client_assertions_are_refused_with_the_reason,
    private_key_jwt_verifies_against_the_registered_keys,
    the_guides_jwt_is_exchanged_by_the_jwt_bearer_grant_and_taken_by_the_management_api,
    a_client_may_act_for_a_user_only_within_what_they_consented_to,
    private_key_jwt_keys_are_fetched_from_a_jwks_uri_only_where_allowed,
);
