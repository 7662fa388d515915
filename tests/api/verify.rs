//! The verification library (`features = ["verify", "actix"]`) against a running Latchkey.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, test as actix_test, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::domain::SigningAlgorithm;
use latchkey::verify::actix::{Bearer, BearerError, ProtectedResource};
use latchkey::verify::{Introspector, Verifier, VerifyError};
use serde_json::{Value, json};

use crate::helpers::{API, Backend, TestApp, spawn_app};

async fn verifier(app: &TestApp) -> Verifier {
    Verifier::discover(&app.issuer(), API).await.expect("discovery works")
}

/// A token signed by the server's current RS256 key, with the claims and `typ` given.
fn signed(app: &TestApp, typ: &str, claims: Value) -> String {
    let keys = app.state.keys.current();
    let key = keys.active(SigningAlgorithm::RS256).expect("an RS256 key");
    latchkey::tokens::jwt::sign(key, typ, &claims)
}

fn claims(app: &TestApp, change: impl FnOnce(&mut Value)) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({ "iss": app.issuer(), "aud": API, "sub": "svc", "client_id": "svc", "scope": "read",
                             "iat": now, "exp": now + 300, "jti": "j" });
    change(&mut claims);
    claims
}

/// How often the server has answered its JWKS, from its own metrics.
async fn jwks_fetches(app: &TestApp) -> u64 {
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(r#"latchkey_http_requests_total{method="GET",route="/.well-known/jwks.json""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn the_verifier_accepts_good_tokens_and_refuses_every_forgery(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let verifier = verifier(&app).await;
    let good = app.client_credentials_token(&client, "read write").await;
    let parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let kid = jsonwebtoken::decode_header(&good).unwrap().kid.unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    signature[5] ^= 1;
    let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    let jwks = app.jwks().await;
    let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwks.find(&kid).unwrap().algorithm else { panic!() };
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    hs_header.typ = Some("at+jwt".into());
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims(&app, |_| {}),
        &jsonwebtoken::EncodingKey::from_secret(&URL_SAFE_NO_PAD.decode(&rsa.n).unwrap()),
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, String, VerifyError)> = vec![
        ("expired", signed(&app, "at+jwt", claims(&app, |c| c["exp"] = (now - 120).into())), VerifyError::Expired),
        (
            "not yet valid",
            signed(&app, "at+jwt", claims(&app, |c| c["nbf"] = (now + 600).into())),
            VerifyError::NotYetValid,
        ),
        (
            "wrong issuer",
            signed(&app, "at+jwt", claims(&app, |c| c["iss"] = "https://evil.example".into())),
            VerifyError::WrongIssuer,
        ),
        (
            "wrong audience",
            signed(&app, "at+jwt", claims(&app, |c| c["aud"] = "https://other.example".into())),
            VerifyError::WrongAudience,
        ),
        ("an id token's typ", signed(&app, "JWT", claims(&app, |_| {})), VerifyError::NotAnAccessToken),
        (
            "tampered signature",
            format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&signature)),
            VerifyError::BadSignature,
        ),
        // jsonwebtoken knows no `none`: such a header does not even parse.
        ("alg none", format!("{none_header}.{}.", parts[1]), VerifyError::Malformed),
        ("HS256 keyed with the RSA public key", confused, VerifyError::AlgorithmNotAllowed),
        ("not a JWT", "hello".to_owned(), VerifyError::Malformed),
    ];

    // Act and assert
    let token = verifier.verify(&good).await.expect("a genuine token verifies");
    assert_eq!(token.scopes, ["read", "write"]);
    assert_eq!(token.client_id.as_deref(), Some(client.client_id.as_str()));
    assert!(token.has_scope("write") && !token.has_scope("delete"));
    for (name, forged, expected) in cases {
        assert_eq!(verifier.verify(&forged).await.err(), Some(expected), "{name}");
    }
    let tolerant = Verifier::discover(&app.issuer(), API).await.unwrap().leeway(300);
    let just_expired = signed(&app, "at+jwt", claims(&app, |c| c["exp"] = (now - 120).into()));
    assert!(tolerant.verify(&just_expired).await.is_ok(), "the leeway is configurable");
}

async fn a_rotation_is_picked_up_and_a_kid_flood_is_limited(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let verifier = verifier(&app).await.min_refetch_interval(Duration::from_secs(60));
    let old = app.client_credentials_token(&client, "read").await;
    verifier.verify(&old).await.unwrap();

    // Act: a new key signs; the verifier has never seen it.
    app.rotate_key(SigningAlgorithm::RS256).await;
    let new = app.client_credentials_token(&client, "read").await;
    let before = jwks_fetches(&app).await;
    let verified_new = verifier.verify(&new).await;
    // Then forged kids, many of them.
    let mut forged_results = Vec::new();
    for n in 0..20 {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(format!("forged-{n}"));
        header.typ = Some("at+jwt".into());
        let payload = old.split('.').nth(1).unwrap();
        let head = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        forged_results.push(verifier.verify(&format!("{head}.{payload}.c2ln")).await);
    }
    let after = jwks_fetches(&app).await;

    // Assert
    assert!(verified_new.is_ok(), "the unknown kid made the verifier refetch: {verified_new:?}");
    assert!(verifier.verify(&old).await.is_ok(), "tokens of the retired key still verify until they expire");
    assert!(forged_results.iter().all(|r| r.as_ref().err() == Some(&VerifyError::UnknownKey)));
    assert_eq!(after - before, 1, "one refetch for the rotation, none for twenty forged kids");
}

async fn a_shared_secret_verifier_takes_hs256_with_its_secret_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.create_api("https://hs.example.com", &["read"], "HS256");
    let rs = app.create_machine_client();
    let client = app.create_client(&["client_credentials"], &["read"], &["https://hs.example.com"]);
    let (id, secret) = crate::helpers::credentials(&client);
    let response: Value = app
        .post_form(
            "/oauth2/token",
            &[("grant_type", "client_credentials"), ("resource", "https://hs.example.com")],
            Some((id, secret)),
        )
        .await
        .json()
        .await
        .unwrap();
    let hs_token = response["access_token"].as_str().unwrap();
    let shared = api.secret.as_deref().unwrap().as_bytes();

    let verifier = Verifier::with_shared_secret(&app.issuer(), "https://hs.example.com", shared);
    let other_secret = Verifier::with_shared_secret(&app.issuer(), "https://hs.example.com", b"not the secret");

    assert!(verifier.verify(hs_token).await.is_ok());
    assert_eq!(other_secret.verify(hs_token).await.err(), Some(VerifyError::BadSignature));
    // The same token re-signed with an extension marked critical (RFC 7515 §4.1.11).
    let data = jsonwebtoken::dangerous::insecure_decode::<Value>(hs_token).unwrap();
    let mut critical = data.header;
    critical.crit = Some(vec!["exp".into()]);
    let critical = jsonwebtoken::encode(&critical, &data.claims, &jsonwebtoken::EncodingKey::from_secret(shared));
    assert_eq!(verifier.verify(&critical.unwrap()).await.err(), Some(VerifyError::UnsupportedCritical));
    let rs_token = app.client_credentials_token(&rs, "read").await;
    assert_eq!(verifier.verify(&rs_token).await.err(), Some(VerifyError::AlgorithmNotAllowed));

    // A fixed JWKS, for services that cannot reach the issuer: its keys, and no others.
    let fixed = Verifier::with_jwks(&app.issuer(), API, &app.jwks().await);
    assert!(fixed.verify(&rs_token).await.is_ok());
    app.rotate_key(SigningAlgorithm::RS256).await;
    let after_rotation = app.client_credentials_token(&rs, "read").await;
    assert_eq!(fixed.verify(&after_rotation).await.err(), Some(VerifyError::UnknownKey), "never refetched");
}

/// An issuer whose JWKS the test controls: its body, its `Cache-Control`, whether it fails.
#[derive(Default)]
struct StubIssuer {
    url: String,
    jwks: Mutex<Value>,
    cache_control: Mutex<String>,
    failing: AtomicBool,
    fetches: AtomicU64,
}

impl StubIssuer {
    async fn start(jwks: Value) -> Arc<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stub = Arc::new(StubIssuer { url, jwks: Mutex::new(jwks), ..Default::default() });
        let state = web::Data::from(stub.clone());
        let server = actix_web::HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/.well-known/oauth-authorization-server", web::get().to(Self::metadata))
                .route("/jwks", web::get().to(Self::keys))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        stub
    }

    async fn metadata(stub: web::Data<StubIssuer>) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "issuer": stub.url, "jwks_uri": format!("{}/jwks", stub.url) }))
    }

    async fn keys(stub: web::Data<StubIssuer>) -> HttpResponse {
        stub.fetches.fetch_add(1, Ordering::SeqCst);
        if stub.failing.load(Ordering::SeqCst) {
            return HttpResponse::ServiceUnavailable().finish();
        }
        let cache_control = stub.cache_control.lock().unwrap().clone();
        HttpResponse::Ok().insert_header(("Cache-Control", cache_control)).json(&*stub.jwks.lock().unwrap())
    }

    async fn verifier_caching_for(&self, cache_control: &str) -> Verifier {
        *self.cache_control.lock().unwrap() = cache_control.to_owned();
        Verifier::discover(&self.url, API).await.expect("discovery works")
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn keys_are_trusted_as_long_as_the_jwks_cache_header_says_then_the_issuer_is_believed() {
    // Arrange: the stub publishes the server's keys; its tokens are signed with them.
    let app = spawn_app(Backend::Sqlite).await;
    let jwks: Value = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let stub = StubIssuer::start(jwks).await;
    let token = signed(&app, "at+jwt", claims(&app, |c| c["iss"] = stub.url.clone().into()));
    let brief = stub.verifier_caching_for("public, max-age=1").await;
    let weathering = stub.verifier_caching_for("public, max-age=1").await;
    let lasting = stub.verifier_caching_for("public, max-age=3600").await;
    for verifier in [&brief, &weathering, &lasting] {
        verifier.verify(&token).await.expect("the published key verifies");
    }
    assert_eq!(stub.fetches(), 3, "fresh keys are used without asking again");

    // Act: the keys go stale for the brief caches; the issuer fails, then withdraws the key.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stub.failing.store(true, Ordering::SeqCst);
    let during_outage = weathering.verify(&token).await;
    stub.failing.store(false, Ordering::SeqCst);
    *stub.jwks.lock().unwrap() = json!({ "keys": [] });
    let after_withdrawal = brief.verify(&token).await;
    let from_lasting_cache = lasting.verify(&token).await;

    // Assert
    assert!(during_outage.is_ok(), "an unreachable issuer leaves the known keys in use: {during_outage:?}");
    assert_eq!(after_withdrawal.err(), Some(VerifyError::UnknownKey), "a key no longer published stops verifying");
    assert!(from_lasting_cache.is_ok(), "max-age=3600 is honoured: no refetch yet");
    assert_eq!(stub.fetches(), 5, "one refetch per stale cache, none for the fresh one");
}

async fn orders(token: Bearer) -> Result<HttpResponse, BearerError> {
    token.require_scope("write")?;
    Ok(HttpResponse::Ok().body(token.subject.clone()))
}

async fn the_actix_extractor_answers_per_rfc_6750_and_serves_rfc_9728_metadata(backend: Backend) {
    // Arrange: a microservice protected by the extractor.
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let resource = ProtectedResource::new(verifier(&app).await, API, &["read", "write"]);
    let service = actix_test::init_service(
        App::new().configure(|cfg| resource.configure(cfg)).route("/orders", web::get().to(orders)),
    )
    .await;
    let call = |token: Option<String>| {
        let mut request = actix_test::TestRequest::get().uri("/orders");
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        request.to_request()
    };
    let reader = app.client_credentials_token(&client, "read").await;
    let writer = app.client_credentials_token(&client, "read write").await;

    // Act
    let missing = actix_test::call_service(&service, call(None)).await;
    let invalid = actix_test::call_service(&service, call(Some("not-a-token".into()))).await;
    let too_narrow = actix_test::call_service(&service, call(Some(reader))).await;
    let allowed = actix_test::call_service(&service, call(Some(writer))).await;
    let metadata: Value = actix_test::call_and_read_body_json(
        &service,
        actix_test::TestRequest::get().uri("/.well-known/oauth-protected-resource").to_request(),
    )
    .await;

    // Assert
    let challenge = |response: &actix_web::dev::ServiceResponse| {
        response.headers().get("www-authenticate").unwrap().to_str().unwrap().to_owned()
    };
    let metadata_url = format!("{API}/.well-known/oauth-protected-resource");
    assert_eq!(missing.status(), 401);
    assert_eq!(
        challenge(&missing),
        format!(r#"Bearer resource_metadata="{metadata_url}""#),
        "no error code without a token"
    );
    assert_eq!(invalid.status(), 401);
    assert!(challenge(&invalid).contains(r#"error="invalid_token""#));
    assert_eq!(too_narrow.status(), 403);
    assert!(challenge(&too_narrow).contains(r#"error="insufficient_scope""#));
    assert!(challenge(&too_narrow).contains(r#"scope="write""#));
    assert_eq!(allowed.status(), 200);
    assert_eq!(metadata["resource"], API);
    assert_eq!(metadata["authorization_servers"], json!([app.issuer()]));
    assert_eq!(metadata["scopes_supported"], json!(["read", "write"]));
}

async fn introspection_answers_what_offline_checks_cannot(backend: Backend) {
    // Arrange: a confidential client to introspect with, a restricted API key, a JWT.
    let app = spawn_app(backend).await;
    let client = app.create_machine_client();
    let (id, secret) = crate::helpers::credentials(&client);
    let owner = app.owner_key();
    let key = crate::management::ok(
        &app,
        "POST",
        "/api-keys",
        &owner,
        Some(json!({ "kind": "restricted", "name": "r", "permissions": ["read"] })),
    )
    .await;
    let (api_key, key_id) = (key["key"].as_str().unwrap().to_owned(), key["id"].as_str().unwrap().to_owned());
    let token = app.client_credentials_token(&client, "read").await;
    let discover = || async { Introspector::discover(&app.issuer(), API, id, secret).await.unwrap().accept_api_keys() };
    let cached = discover().await.cache_for(Duration::from_secs(60));
    let uncached = discover().await.cache_for(Duration::ZERO);

    // Act and assert: an API key is active, with its kind and permissions.
    let answer = cached.introspect(&api_key).await.unwrap();
    assert!(answer.active && answer.has_scope("read"));
    assert_eq!((answer.token_type.as_deref(), answer.kind.as_deref()), (Some("api_key"), Some("restricted")));
    // Deleted: the cached answer holds for its period, a fresh question sees it at once.
    let (status, _) = app.api("DELETE", &format!("/api-keys/{key_id}"), &owner, None).await;
    assert_eq!(status, 204);
    assert!(cached.introspect(&api_key).await.unwrap().active, "answers are reused for the cache period");
    assert!(!uncached.introspect(&api_key).await.unwrap().active);
    // A revoked JWT still verifies offline; introspection knows better.
    let revoked = app.post_form("/oauth2/revoke", &[("token", token.as_str())], Some((id, secret))).await;
    assert_eq!(revoked.status(), 200);
    assert!(verifier(&app).await.verify(&token).await.is_ok(), "offline checks cannot see a revocation");
    let answer = uncached.introspect(&token).await.unwrap();
    assert!(!answer.active && !answer.has_scope("read"));
}

async fn the_introspector_takes_only_what_is_meant_for_its_service(backend: Backend) {
    // Arrange: a person's grant on API (access and refresh token), a token for another API,
    // an API key, and a service at API that introspects with its own client.
    let app = spawn_app(backend).await;
    let grant = crate::refresh::grant(&app, &["read", "offline_access"]).await;
    app.create_api("https://other.example.com", &["read"], "RS256");
    let service = app.create_client(&["client_credentials"], &["read"], &[API, "https://other.example.com"]);
    let (id, secret) = crate::helpers::credentials(&service);
    let for_other = app
        .post_token(&[("grant_type", "client_credentials"), ("resource", "https://other.example.com")], &service)
        .await;
    let for_other = for_other.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let api_key = app.owner_key();
    let introspector = Introspector::discover(&app.issuer(), API, id, secret).await.unwrap().cache_for(Duration::ZERO);
    let with_keys = Introspector::discover(&app.issuer(), API, id, secret).await.unwrap().accept_api_keys();

    // Act
    let access = introspector.introspect(&grant.access_token).await.unwrap();
    let refresh = introspector.introspect(&grant.refresh_token).await.unwrap();
    let other = introspector.introspect(&for_other).await.unwrap();
    let key_refused = introspector.introspect(&api_key).await.unwrap();
    let key_accepted = with_keys.introspect(&api_key).await.unwrap();

    // Assert
    assert!(access.active && access.has_scope("read"), "{access:?}");
    assert_eq!(access.aud, [API]);
    assert!(!refresh.active && !refresh.has_scope("read"), "a refresh token is for the token endpoint only");
    assert_eq!(refresh.token_type.as_deref(), Some("refresh_token"));
    assert!(!other.active, "a token for another API");
    assert!(!key_refused.active, "API keys only when accepted");
    assert!(key_accepted.active);
}

crate::on_both_backends!(
    the_introspector_takes_only_what_is_meant_for_its_service,
    introspection_answers_what_offline_checks_cannot,
    the_verifier_accepts_good_tokens_and_refuses_every_forgery,
    a_rotation_is_picked_up_and_a_kid_flood_is_limited,
    a_shared_secret_verifier_takes_hs256_with_its_secret_only,
    the_actix_extractor_answers_per_rfc_6750_and_serves_rfc_9728_metadata,
);
