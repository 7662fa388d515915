//! The token endpoint with the client credentials grant, driven by the `oauth2` crate as a
//! third-party app would, and every RFC 6749 §5.2 error path.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use serde_json::Value;

use crate::helpers::{API, Backend, TestApp, credentials, spawn_app, verify_with_jwks};

fn oauth2_client(
    app: &TestApp,
    client: &latchkey::manage::clients::RegisteredClient,
    auth_type: AuthType,
) -> BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_client_secret(ClientSecret::new(client.client_secret.clone().unwrap()))
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap())
        .set_auth_type(auth_type)
}

async fn both_client_authentication_methods_yield_a_token_verifiable_against_the_jwks(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();

    for auth_type in [AuthType::BasicAuth, AuthType::RequestBody] {
        // Act
        let token = oauth2_client(&app, &client, auth_type.clone())
            .exchange_client_credentials()
            .add_scope(Scope::new("read".into()))
            .request_async(&app.http)
            .await
            .expect("a token is issued");

        // Assert
        assert_eq!(token.token_type(), &oauth2::basic::BasicTokenType::Bearer);
        assert_eq!(token.scopes().unwrap(), &vec![Scope::new("read".into())]);
        let lifetime = token.expires_in().unwrap().as_secs();
        assert_eq!(lifetime, 3600);
        let jwt = token.access_token().secret();
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"), "{auth_type:?}");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
        let claims = verify_with_jwks(jwt, &app.jwks().await, &app.issuer(), API).expect("the token verifies");
        assert_eq!(claims["iss"], app.issuer());
        assert_eq!(claims["sub"], client.client_id);
        assert_eq!(claims["client_id"], client.client_id);
        assert_eq!(claims["aud"], API);
        assert_eq!(claims["scope"], "read");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
        assert!(!claims["jti"].as_str().unwrap().is_empty());
    }
}

async fn without_scope_the_token_carries_everything_the_client_and_api_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();

    let response = app.post_token(&[("grant_type", "client_credentials")], &client).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    // The API also defines `delete`, but the client may only have read and write.
    assert_eq!(body["scope"], "read write");
}

async fn a_json_body_works_like_a_form(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();

    let response = app
        .http
        .post(app.url("/oauth2/token"))
        .json(&serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "scope": "write",
            "resource": API,
        }))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "write");
}

async fn tokens_are_minted_for_the_requested_resource_with_its_algorithm(backend: Backend) {
    // Arrange: one API per algorithm, and a client allowed on all of them.
    let app = spawn_app(backend).await;
    let audiences = ["https://rsa.example.com", "https://ec.example.com", "https://ed.example.com"];
    for (audience, alg) in audiences.iter().zip(["RS256", "ES256", "EdDSA"]) {
        app.create_api(audience, &["read"], alg);
    }
    let client = app.create_client(&["client_credentials"], &["read"], &audiences);

    for (audience, alg) in audiences.iter().zip(["RS256", "ES256", "EdDSA"]) {
        // Act
        let response = app.post_token(&[("grant_type", "client_credentials"), ("resource", audience)], &client).await;

        // Assert
        assert_eq!(response.status(), 200, "{audience}");
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(format!("{:?}", jsonwebtoken::decode_header(token).unwrap().alg), alg);
        let claims = verify_with_jwks(token, &app.jwks().await, &app.issuer(), audience).expect("verifies");
        assert_eq!(claims["aud"], *audience);
    }
}

async fn an_hs256_api_gets_tokens_signed_with_its_own_secret_only(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let api = app.create_api("https://shared.example.com", &["read"], "HS256");
    let secret = api.secret.clone().expect("the secret is shown once");
    let client = app.create_client(&["client_credentials"], &["read"], &["https://shared.example.com"]);

    // Act
    let token = app.client_credentials_token(&client, "read").await;

    // Assert
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.kid.as_deref(), Some(api.id.as_str()));
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["https://shared.example.com"]);
    validation.set_issuer(&[app.issuer()]);
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies with the shared secret");
    let wrong = jsonwebtoken::DecodingKey::from_secret(b"some-other-secret-of-32-bytes!!!");
    assert!(jsonwebtoken::decode::<Value>(&token, &wrong, &validation).is_err());
    // The shared secret is nobody else's business: the JWKS has no symmetric key.
    assert!(app.jwks().await.keys.iter().all(|k| k.common.key_id.as_deref() != Some(api.id.as_str())));
}

async fn forged_tokens_fail_verification(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let token = app.client_credentials_token(&client, "read").await;
    let jwks = app.jwks().await;
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let parts: Vec<&str> = token.split('.').collect();

    // A flipped bit in the signature.
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[10] ^= 0x01;
    let tampered_signature = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&signature));
    // Claims widened after signing.
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = "read write delete admin".into();
    let tampered_claims = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    // `alg: none`, unsigned.
    let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // HS256 "signed" with the RSA public key as the HMAC secret (the algorithm-confusion attack).
    let jwk = jwks.find(&kid).unwrap();
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm else { panic!("an RSA key") };
    let public_key_bytes = URL_SAFE_NO_PAD.decode(&rsa.n).unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    hs_header.typ = Some("at+jwt".into());
    let confused =
        jsonwebtoken::encode(&hs_header, &claims, &jsonwebtoken::EncodingKey::from_secret(&public_key_bytes)).unwrap();

    for (name, forged) in [
        ("tampered signature", &tampered_signature),
        ("tampered claims", &tampered_claims),
        ("alg none", &alg_none),
        ("HS256 with the RSA public key", &confused),
    ] {
        // Assert: a resource server refuses it, and so does introspection.
        assert!(verify_with_jwks(forged, &jwks, &app.issuer(), API).is_err(), "{name} verified");
        let introspection = app.introspect(forged, &client).await;
        assert_eq!(introspection, serde_json::json!({ "active": false }), "{name}");
    }
    assert!(verify_with_jwks(&token, &jwks, &app.issuer(), API).is_ok());
}

/// One bad request and the error it must produce.
struct ErrorCase {
    name: &'static str,
    form: Vec<(&'static str, String)>,
    basic: Option<(String, String)>,
    status: u16,
    error: &'static str,
}

async fn every_error_path_answers_rfc_6749_json_with_the_right_status(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    app.create_api("https://other.example.com", &["read"], "RS256");
    let code_only = app.create_client(&["authorization_code"], &["read"], &[API]);
    let (id, secret) = credentials(&client);
    let good = || Some((id.to_owned(), secret.to_owned()));
    let grant = || ("grant_type", "client_credentials".to_owned());
    let cases = vec![
        ErrorCase { name: "no grant_type", form: vec![], basic: good(), status: 400, error: "invalid_request" },
        ErrorCase {
            name: "unknown grant",
            form: vec![("grant_type", "password".into())],
            basic: good(),
            status: 400,
            error: "unsupported_grant_type",
        },
        ErrorCase {
            name: "no client authentication",
            form: vec![grant()],
            basic: None,
            status: 401,
            error: "invalid_client",
        },
        ErrorCase {
            name: "unknown client",
            form: vec![grant()],
            basic: Some(("no-such-client".into(), secret.into())),
            status: 401,
            error: "invalid_client",
        },
        ErrorCase {
            name: "wrong secret",
            form: vec![grant()],
            basic: Some((id.into(), format!("{secret}x"))),
            status: 401,
            error: "invalid_client",
        },
        ErrorCase {
            name: "a client id without a secret",
            form: vec![grant(), ("client_id", id.into())],
            basic: None,
            status: 401,
            error: "invalid_client",
        },
        ErrorCase {
            name: "two authentication methods",
            form: vec![grant(), ("client_id", id.into()), ("client_secret", secret.into())],
            basic: good(),
            status: 400,
            error: "invalid_request",
        },
        ErrorCase {
            name: "grant not registered for the client",
            form: vec![grant()],
            basic: Some((code_only.client_id.clone(), code_only.client_secret.clone().unwrap())),
            status: 400,
            error: "unauthorized_client",
        },
        ErrorCase {
            name: "scope the API has but the client may not have",
            form: vec![grant(), ("scope", "read delete".into())],
            basic: good(),
            status: 400,
            error: "invalid_scope",
        },
        ErrorCase {
            name: "malformed scope",
            form: vec![grant(), ("scope", "re\"ad".into())],
            basic: good(),
            status: 400,
            error: "invalid_scope",
        },
        ErrorCase {
            name: "resource the client may not request",
            form: vec![grant(), ("resource", "https://other.example.com".into())],
            basic: good(),
            status: 400,
            error: "invalid_target",
        },
        ErrorCase {
            name: "relative resource",
            form: vec![grant(), ("resource", "/orders".into())],
            basic: good(),
            status: 400,
            error: "invalid_target",
        },
        ErrorCase {
            name: "two resources",
            form: vec![grant(), ("resource", API.into()), ("resource", "https://other.example.com".into())],
            basic: good(),
            status: 400,
            error: "invalid_target",
        },
        ErrorCase {
            name: "repeated parameter",
            form: vec![grant(), ("scope", "read".into()), ("scope", "write".into())],
            basic: good(),
            status: 400,
            error: "invalid_request",
        },
    ];

    for case in cases {
        // Act
        let form: Vec<(&str, &str)> = case.form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let basic = case.basic.as_ref().map(|(i, s)| (i.as_str(), s.as_str()));
        let response = app.post_form("/oauth2/token", &form, basic).await;

        // Assert
        assert_eq!(response.status(), case.status, "{}", case.name);
        assert_eq!(response.headers()["cache-control"], "no-store", "{}", case.name);
        assert_eq!(response.headers().get("www-authenticate").is_some(), case.status == 401, "{}", case.name);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], case.error, "{}: {body}", case.name);
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{}", case.name);
    }
}

async fn malformed_bodies_are_invalid_requests_not_server_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let (id, secret) = credentials(&client);
    let huge = "x".repeat(100 * 1024);
    let bodies: Vec<(&str, &str, String)> = vec![
        ("not JSON", "application/json", "{\"grant_type\":".into()),
        ("JSON array", "application/json", "[\"client_credentials\"]".into()),
        ("JSON number", "application/json", "{\"grant_type\": 7}".into()),
        ("unknown content type", "text/plain", "grant_type=client_credentials".into()),
        ("JSON object value", "application/json", "{\"grant_type\": {\"a\": 1}}".into()),
        ("JSON array of numbers", "application/json", "{\"resource\": [1]}".into()),
        ("oversized body", "application/x-www-form-urlencoded", format!("grant_type=client_credentials&pad={huge}")),
    ];
    for (name, content_type, body) in bodies {
        let response = app
            .http
            .post(app.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{name}");
    }
}

async fn the_oauth2_crate_sees_invalid_client_and_invalid_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let mut wrong = client.client_secret.clone().unwrap();
    wrong.push('x');
    let impostor = BasicClient::new(ClientId::new(client.client_id.clone()))
        .set_client_secret(ClientSecret::new(wrong))
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap());

    let error = impostor.exchange_client_credentials().request_async(&app.http).await.unwrap_err();
    let RequestTokenError::ServerResponse(response) = error else { panic!("a server response: {error:?}") };
    assert_eq!(response.error(), &BasicErrorResponseType::InvalidClient);

    let error = oauth2_client(&app, &client, AuthType::BasicAuth)
        .exchange_client_credentials()
        .add_scope(Scope::new("admin".into()))
        .request_async(&app.http)
        .await
        .unwrap_err();
    let RequestTokenError::ServerResponse(response) = error else { panic!("a server response: {error:?}") };
    assert_eq!(response.error(), &BasicErrorResponseType::InvalidScope);
}

async fn failed_client_authentication_is_audited_without_the_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();

    let response = app
        .post_form("/oauth2/token", &[("grant_type", "client_credentials")], Some((&client.client_id, "guess-1234")))
        .await;

    assert_eq!(response.status(), 401);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let mut conn = app.pool.get().unwrap();
    let events = latchkey::db::audit::list_audit_events(&mut conn, 100).unwrap();
    let failure = events.iter().find(|e| e.action == "client.authentication_failed").expect("an audit entry");
    assert_eq!(failure.outcome, "failure");
    assert_eq!(failure.target_id.as_deref(), Some(client.client_id.as_str()));
    assert_eq!(failure.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(failure.ip.as_deref(), Some("127.0.0.1"));
    assert!(!failure.details.contains("guess-1234"));
}

crate::on_both_backends!(
    both_client_authentication_methods_yield_a_token_verifiable_against_the_jwks,
    without_scope_the_token_carries_everything_the_client_and_api_allow,
    a_json_body_works_like_a_form,
    tokens_are_minted_for_the_requested_resource_with_its_algorithm,
    an_hs256_api_gets_tokens_signed_with_its_own_secret_only,
    forged_tokens_fail_verification,
    every_error_path_answers_rfc_6749_json_with_the_right_status,
    malformed_bodies_are_invalid_requests_not_server_errors,
    the_oauth2_crate_sees_invalid_client_and_invalid_scope,
    failed_client_authentication_is_audited_without_the_secret,
);
