//! What an outside security review probed, each finding reproduced as it was found: these
//! tests failed before the fixes they guard (docs/security.md maps them).

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestDb, spawn_app, spawn_app_with};
use crate::login::{EMAIL, PASSWORD, sign_in};

const SHARED: &str = "https://shared.example.com";

/// A token signed with an HS256 API's shared secret by someone who holds it, not Latchkey.
fn forge(secret: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

async fn tokens_forged_with_an_hs256_secret_are_not_latchkeys_own(backend: Backend) {
    // Arrange: a user, an HS256 API whose secret its operators hold, and a token they sign
    // naming the user with identity scopes.
    let app = spawn_app(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    let api = app.create_api(SHARED, &["read"], "HS256");
    let secret = api.secret.clone().unwrap();
    let introspector = app.create_client(&["client_credentials"], &["read"], &[SHARED]);
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": app.issuer(), "sub": user.id, "aud": SHARED, "scope": "openid email read",
        "exp": now + 600, "iat": now, "jti": uuid::Uuid::new_v4().to_string(), "client_id": introspector.client_id,
    });
    let forged = forge(&secret, &api.id, &claims);
    // A genuine token's jti, copied onto claims of the forger's choosing.
    let genuine = app.client_credentials_token(&introspector, "read").await;
    let genuine_claims: Value = jsonwebtoken::dangerous::insecure_decode(&genuine).unwrap().claims;
    let mut widened = genuine_claims.clone();
    widened["sub"] = json!(user.id);
    widened["scope"] = json!("openid email read");
    let copied_jti = forge(&secret, &api.id, &widened);

    // Act
    let userinfo = app.http.get(app.url("/oauth2/userinfo")).bearer_auth(&forged).send().await.unwrap();
    let introspected = app.introspect(&forged, &introspector).await;
    let with_copied_jti = app.introspect(&copied_jti, &introspector).await;
    let real = app.introspect(&genuine, &introspector).await;

    // Assert
    assert_eq!(userinfo.status(), 401);
    assert!(userinfo.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert_eq!(introspected, json!({ "active": false }));
    assert_eq!(with_copied_jti, json!({ "active": false }));
    assert_eq!(real["active"], true, "tokens Latchkey issued still introspect");
    assert_eq!(real["jti"], genuine_claims["jti"]);
}

async fn tokens_not_yet_valid_or_with_critical_extensions_are_refused(backend: Backend) {
    // Arrange: Latchkey's own RS256 key is out of reach, so the HS256 path stands for every
    // verification; each token is otherwise one Latchkey issued, re-signed.
    let app = spawn_app(backend).await;
    app.create_api(SHARED, &["read"], "HS256");
    let client = app.create_client(&["client_credentials"], &["read"], &[SHARED]);
    let genuine = app.client_credentials_token(&client, "read").await;
    let (header, claims) = {
        let data = jsonwebtoken::dangerous::insecure_decode::<Value>(&genuine).unwrap();
        (data.header, data.claims)
    };
    let api_secret = {
        let mut conn = app.pool.get().unwrap();
        let api = latchkey::db::apis::find_api(&mut conn, header.kid.as_deref().unwrap()).unwrap().unwrap();
        app.state.sealer.open(api.secret_sealed.as_deref().unwrap(), &latchkey::db::apis::Api::seal_context(&api.id))
    }
    .unwrap();
    let resign = |header: &Header, claims: &Value| {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(&api_secret)).unwrap()
    };
    let mut early = claims.clone();
    early["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
    let mut critical = header.clone();
    critical.crit = Some(vec!["urn:example:unknown".into()]);

    // Act
    let resigned = app.introspect(&resign(&header, &claims), &client).await;
    let not_yet_valid = app.introspect(&resign(&header, &early), &client).await;
    let with_crit = app.introspect(&resign(&critical, &claims), &client).await;

    // Assert
    assert_eq!(resigned["active"], true, "the control: the same token re-signed is still Latchkey's");
    assert_eq!(not_yet_valid, json!({ "active": false }));
    assert_eq!(with_crit, json!({ "active": false }));
}

async fn after_sign_in_the_browser_only_goes_to_a_local_path(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let hostile = ["/\t/evil.example/", "/\n/evil.example/", "/\r\nSet-Cookie: x=1", "//evil.example/", "/ /x"];

    for return_to in hostile {
        // Act: a sign-in carrying it, and the sign-in page asked for it while signed in.
        let browser = app.browser();
        let signed_in = sign_in(&app, &browser, EMAIL, PASSWORD, return_to).await;
        let page = browser.get(app.url("/login")).query(&[("return_to", return_to)]).send().await.unwrap();

        // Assert
        assert_eq!(signed_in.status(), 303, "{return_to:?}");
        assert_eq!(signed_in.headers()["location"], "/dashboard", "{return_to:?}");
        assert_eq!(page.status(), 303, "{return_to:?}");
        assert_eq!(page.headers()["location"], "/dashboard", "{return_to:?}");
    }
}

/// URIs that must never be registered: each smuggles, scripts or leaks something.
const HOSTILE_REDIRECTS: &[&str] = &[
    "https://app.example.com/cb http://evil.example/steal",
    "https://app.example.com/cb\thttp://evil.example/steal",
    "https://app.example.com/cb\nhttp://evil.example/steal",
    "javascript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "https://user:pass@app.example.com/cb",
];

async fn a_redirect_uri_is_one_uri_of_a_safe_scheme_everywhere_it_is_registered(backend: Backend) {
    // Arrange: a client to update, and the three doors a URI comes in by.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let client = crate::management::ok(
        &app,
        "POST",
        "/clients",
        &owner,
        Some(json!({ "name": "App", "grant_types": ["authorization_code"], "redirect_uris": ["https://app.example.com/cb"] })),
    )
    .await;
    let path = format!("/clients/{}", client["client_id"].as_str().unwrap());

    for hostile in HOSTILE_REDIRECTS {
        // Act
        let created = app
            .api(
                "POST",
                "/clients",
                &owner,
                Some(json!({ "name": "x", "grant_types": ["authorization_code"], "redirect_uris": [hostile] })),
            )
            .await;
        let redirect = app.api("PATCH", &path, &owner, Some(json!({ "redirect_uris": [hostile] }))).await;
        let after_logout =
            app.api("PATCH", &path, &owner, Some(json!({ "post_logout_redirect_uris": [hostile] }))).await;
        let registered = app
            .http
            .post(app.url("/oauth2/register"))
            .bearer_auth(&owner)
            .json(&json!({ "client_name": "x", "redirect_uris": [hostile] }))
            .send()
            .await
            .unwrap();

        // Assert
        for (door, (status, body)) in [("create", created), ("update", redirect), ("post-logout", after_logout)] {
            assert_eq!(status, 400, "{door} {hostile:?}: {body}");
            assert_eq!(body["error"], "invalid_request", "{door} {hostile:?}");
        }
        assert_eq!(registered.status(), 400, "registration {hostile:?}");
        let body: Value = registered.json().await.unwrap();
        assert_eq!(body["error"], "invalid_redirect_uri", "registration {hostile:?}");
    }
    let stored = crate::management::ok(&app, "GET", &path, &owner, None).await;
    assert_eq!(stored["redirect_uris"], json!(["https://app.example.com/cb"]));
    assert_eq!(stored["post_logout_redirect_uris"], json!([]));
}

async fn an_audience_is_one_uri(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    app.create_api("https://api.example.com", &["read"], "RS256");

    let api = app
        .api(
            "POST",
            "/apis",
            &owner,
            Some(json!({ "audience": "https://a.example.com https://b.example.com", "scopes": ["read"] })),
        )
        .await;
    let client = app
        .api(
            "POST",
            "/clients",
            &owner,
            Some(json!({ "name": "x", "grant_types": ["client_credentials"],
                         "audiences": ["https://api.example.com https://api.example.com"] })),
        )
        .await;

    assert_eq!(api.0, 400, "{}", api.1);
    assert_eq!(client.0, 400, "{}", client.1);
}

/// A burst of three, refilled at one a second: budgets small enough to exhaust.
fn tight(settings: &mut latchkey::config::Settings) {
    settings.rate_limit_per_hour = 3_600;
    settings.rate_limit_burst = 3;
}

fn failed_authentications(app: &crate::helpers::TestApp, action: &str) -> usize {
    app.audit_actions().iter().filter(|(a, outcome)| a == action && outcome == "failure").count()
}

async fn naming_a_client_does_not_spend_its_budget(backend: Backend) {
    // Arrange: a client with a budget of three, and someone who knows only its id.
    let app = spawn_app_with(TestDb::new(&backend), tight).await;
    let victim = app.create_machine_client();
    let form = [("grant_type", "client_credentials"), ("scope", "read")];

    // Act
    let mut impostor = Vec::new();
    for _ in 0..6 {
        let response = app.post_form("/oauth2/token", &form, Some((&victim.client_id, "not the secret"))).await;
        impostor.push(response.status().as_u16());
    }
    let own = app.post_token(&form, &victim).await;

    // Assert: the impostor's failures are its address's, and past them it is refused
    // without being audited; the client's own request goes through.
    assert_eq!(impostor, [401, 401, 401, 429, 429, 429]);
    assert_eq!(own.status(), 200, "the client's budget is untouched");
    assert_eq!(own.headers()["x-ratelimit-remaining"], "2");
    assert_eq!(failed_authentications(&app, "client.authentication_failed"), 3);
}

async fn failing_addresses_cannot_fill_the_audit_log(backend: Backend) {
    // Arrange: the default limits, forty made-up client ids and forty made-up API keys.
    let app = spawn_app(backend).await;
    let form = [("grant_type", "client_credentials")];
    let made_up_key =
        || latchkey::apikeys::generate(latchkey::apikeys::KeyClass::Secret, latchkey::config::Environment::Test);

    // Act
    let mut token_statuses = Vec::new();
    for _ in 0..40 {
        let client_id = uuid::Uuid::new_v4().to_string();
        token_statuses
            .push(app.post_form("/oauth2/token", &form, Some((&client_id, "secret"))).await.status().as_u16());
    }
    let mut key_statuses = Vec::new();
    for _ in 0..40 {
        key_statuses.push(app.api("GET", "/clients", &made_up_key(), None).await.0);
    }

    // Assert: one budget of failures per address, shared by both doors.
    let refused = |statuses: &[u16], code| statuses.iter().filter(|s| **s == code).count();
    assert_eq!(refused(&token_statuses, 401), 30, "{token_statuses:?}");
    assert_eq!(refused(&token_statuses, 429), 10);
    assert_eq!(key_statuses, [429; 40], "the address's failures are used up");
    assert_eq!(failed_authentications(&app, "client.authentication_failed"), 30);
    assert_eq!(failed_authentications(&app, "api_key.authentication_failed"), 0);
}

async fn a_code_whose_request_named_its_redirect_uri_needs_it_again(backend: Backend) {
    // Arrange: codes from requests that named the redirect URI (as the oauth2 crate does).
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = crate::authorize::register_public_client(&app, &["authorization_code"], "read");
    let (code, verifier) = crate::authorize::obtain_code_for(&app, &client.client_id, &["read"]).await;
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", client.client_id.clone()),
            ("code", code.to_owned()),
            ("code_verifier", verifier.to_owned()),
        ]
    };

    // Act
    let without = app.http.post(app.url("/oauth2/token")).form(&form(&code, &verifier)).send().await.unwrap();
    let (code, verifier) = crate::authorize::obtain_code_for(&app, &client.client_id, &["read"]).await;
    let mut with = form(&code, &verifier);
    with.push(("redirect_uri", crate::authorize::CALLBACK.to_owned()));
    let with = app.http.post(app.url("/oauth2/token")).form(&with).send().await.unwrap();

    // Assert
    assert_eq!(without.status(), 400);
    let body: Value = without.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].as_str().unwrap().contains("redirect_uri is required"), "{body}");
    assert_eq!(with.status(), 200);
}

async fn a_remembered_consent_is_for_one_api(backend: Backend) {
    use crate::authorize::{consent, location, oauth2_app, sign_in_and_authorize};
    use oauth2::{CsrfToken, PkceCodeChallenge, Scope};
    // Arrange: one app, two APIs that both define `read`; the person lets the app read the
    // first and ticks "remember".
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    app.create_api(crate::helpers::API, &["read"], "RS256");
    app.create_api(SHARED, &["read"], "RS256");
    let client = app.register_client(latchkey::manage::clients::ClientRegistration {
        name: "Photo Printer".into(),
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["read".into()],
        audiences: vec![crate::helpers::API.into(), SHARED.into()],
        redirect_uris: vec![crate::authorize::CALLBACK.into()],
        public: true,
        ..Default::default()
    });
    let url_for = |resource: &str| {
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        oauth2_app(&app, &client.client_id)
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read".into()))
            .add_extra_param("resource", resource)
            .set_pkce_challenge(challenge)
            .url()
            .0
            .to_string()
    };
    let browser = app.browser();
    let page = sign_in_and_authorize(&app, &browser, &url_for(crate::helpers::API)).await;
    consent(&app, &browser, page, "approve", true).await;

    // Act
    let same_api = browser.get(url_for(crate::helpers::API)).send().await.unwrap();
    let other_api = browser.get(url_for(SHARED)).send().await.unwrap();

    // Assert
    assert_eq!(same_api.status(), 303, "remembered for the first API");
    assert!(location(&same_api).contains("code="));
    assert_eq!(other_api.status(), 200, "asked again for the second");
    assert!(other_api.text().await.unwrap().contains("wants to access your account"));
}

async fn only_operators_set_a_rate_limit_tier(backend: Backend) {
    // Arrange: a member with a personal key, and the owner.
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    app.create_user(EMAIL, PASSWORD);
    let member = app.personal_key_from_account_page(EMAIL, PASSWORD).await;
    let key = |tier: &str| json!({ "kind": "personal", "name": "mine", "tier": tier });

    // Act
    let own_upgrade = app.api("POST", "/api-keys", &member, Some(key("enterprise"))).await;
    let untiered = app.api("POST", "/api-keys", &member, Some(json!({ "kind": "personal", "name": "mine" }))).await;
    let by_owner = app
        .api(
            "POST",
            "/api-keys",
            &owner,
            Some(json!({ "kind": "restricted", "name": "r", "permissions": ["read"], "tier": "enterprise" })),
        )
        .await;

    // Assert
    assert_eq!(own_upgrade.0, 403, "{}", own_upgrade.1);
    assert!(own_upgrade.1["message"].as_str().unwrap().contains("tier"));
    assert_eq!(untiered.0, 201, "{}", untiered.1);
    assert_eq!(by_owner.0, 201, "{}", by_owner.1);
    assert_eq!(by_owner.1["tier"], "enterprise");
}

async fn the_last_owner_credential_cannot_delete_itself(backend: Backend) {
    // Arrange: the bootstrap key is the tenant's only owner credential.
    let app = spawn_app(backend).await;
    let bootstrap = app.owner_key();
    let id = crate::management::ok(&app, "GET", "/api-keys/current", &bootstrap, None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let alone = app.api("DELETE", &format!("/api-keys/{id}"), &bootstrap, None).await;
    let second = app.owner_key();
    let with_another = app.api("DELETE", &format!("/api-keys/{id}"), &second, None).await;

    // Assert
    assert_eq!(alone.0, 409, "{}", alone.1);
    assert!(alone.1["message"].as_str().unwrap().contains("latchkey api-key create --kind tenant-owner"));
    assert_eq!(with_another.0, 204, "{}", with_another.1);
    let last =
        crate::management::ok(&app, "GET", "/api-keys/current", &second, None).await["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.api("DELETE", &format!("/api-keys/{last}"), &second, None).await.0,
        409,
        "the second is now the last"
    );
}

async fn look_alike_emails_are_one_user_or_none(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let create = |email: &str| json!({ "email": email, "password": "a long enough password" });
    let (status, ada) = app.api("POST", "/users", &owner, Some(create("ada@example.com"))).await;
    assert_eq!(status, 201, "{ada}");

    let full_width = app.api("POST", "/users", &owner, Some(create("ＡＤＡ@ｅｘａｍｐｌｅ.ｃｏｍ"))).await;
    let cyrillic = app.api("POST", "/users", &owner, Some(create("\u{0430}da@example.com"))).await;
    let invisible = app.api("POST", "/users", &owner, Some(create("ad\u{200B}a@example.com"))).await;
    let invited = app.api("POST", "/users/invitations", &owner, Some(json!({ "email": "Ada@Example.com" }))).await;

    assert_eq!(full_width.0, 409, "the same address: {}", full_width.1);
    assert_eq!(cyrillic.0, 400, "{}", cyrillic.1);
    assert_eq!(invisible.0, 400, "{}", invisible.1);
    assert_eq!(invited.0, 409, "{}", invited.1);
}

async fn names_cannot_hide_or_reverse_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.owner_key();
    let spoof = "evil\u{202E}gnp.exe";

    let client = app
        .api("POST", "/clients", &owner, Some(json!({ "name": spoof, "grant_types": ["client_credentials"] })))
        .await;
    let team = app.api("POST", "/teams", &owner, Some(json!({ "name": "ops\u{200B}" }))).await;
    let key = app
        .api(
            "POST",
            "/api-keys",
            &owner,
            Some(json!({ "kind": "restricted", "name": "a\u{2066}b", "permissions": ["read"] })),
        )
        .await;
    let user = app
        .api(
            "POST",
            "/users",
            &owner,
            Some(json!({ "email": "bo@example.com", "name": "Bo\u{0007}", "password": "a long enough password" })),
        )
        .await;
    let emoji = app.api("POST", "/teams", &owner, Some(json!({ "name": "Dev 👩\u{200D}💻" }))).await;

    for (what, (status, body)) in [("client", client), ("team", team), ("key", key), ("user", user)] {
        assert_eq!(status, 400, "{what}: {body}");
        assert!(body["message"].as_str().unwrap().contains("invisible"), "{what}: {body}");
    }
    assert_eq!(emoji.0, 201, "emoji stay welcome: {}", emoji.1);
}

/// A live deployment on the development master key: refused at start, with exit code 2.
#[tokio::test]
async fn a_live_deployment_will_not_start_on_the_development_master_key() {
    let db = TestDb::new(&Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let binary = std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned());

    let output = std::process::Command::new(binary)
        .current_dir(dir.path())
        .env_remove("LATCHKEY_MASTER_KEY")
        .env("LATCHKEY_ENVIRONMENT", "live")
        .env("LATCHKEY_DATABASE_URL", db.url())
        .arg("migrate")
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("master_key") && stderr.contains("live"), "{stderr}");
    assert!(!dir.path().join(latchkey::crypto::DEV_MASTER_KEY_FILE).exists(), "no development key was made");
}

/// Anyone can send bytes that are not HTTP; that must not write ERROR lines an operator is
/// paged for.
#[tokio::test]
async fn malformed_requests_are_not_logged_as_errors() {
    use std::io::{Read, Write};
    // Arrange: the binary, logging at info to a file.
    let db = TestDb::new(&Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let port = crate::process::free_port();
    let binary = std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned());
    let mut server = std::process::Command::new(binary)
        .current_dir(dir.path())
        .env("LATCHKEY_DATABASE_URL", db.url())
        .env("LATCHKEY_MASTER_KEY", latchkey::crypto::MasterKey::generate().encode())
        .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let connect = || loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            break stream;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };

    // Act: a request line that is not HTTP, and a header that is not a header.
    for garbage in ["GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nbad header line\r\n\r\n"] {
        let mut stream = connect();
        stream.write_all(garbage.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    server.kill().unwrap();
    server.wait().unwrap();

    // Assert
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(!written.contains("ERROR"), "{written}");
    assert!(written.contains("a client sent a request that could not be parsed"), "{written}");
}

crate::on_both_backends!(
    look_alike_emails_are_one_user_or_none,
    names_cannot_hide_or_reverse_text,
    only_operators_set_a_rate_limit_tier,
    the_last_owner_credential_cannot_delete_itself,
    a_code_whose_request_named_its_redirect_uri_needs_it_again,
    a_remembered_consent_is_for_one_api,
    naming_a_client_does_not_spend_its_budget,
    failing_addresses_cannot_fill_the_audit_log,
    a_redirect_uri_is_one_uri_of_a_safe_scheme_everywhere_it_is_registered,
    an_audience_is_one_uri,
    after_sign_in_the_browser_only_goes_to_a_local_path,
    tokens_forged_with_an_hs256_secret_are_not_latchkeys_own,
    tokens_not_yet_valid_or_with_critical_extensions_are_refused,
);
