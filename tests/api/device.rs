//! The device authorization grant (RFC 8628): the `oauth2` crate as the device, headless
//! Chromium (or a cookie-keeping HTTP client) as the person approving at `/device`.

use std::time::Duration;

use diesel::prelude::*;
use fantoccini::Locator;
use oauth2::basic::BasicClient;
use oauth2::{ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl};
use serde_json::Value;

use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
use crate::helpers::{API, Backend, TestApp, TestDb, post_form, spawn_app, spawn_app_with, verify_with_jwks};
use crate::login::{EMAIL, PASSWORD, csrf_token, sign_in};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public client for a command-line tool with `grants`, on [`API`] (created by the first).
fn cli_app(app: &TestApp, grants: &[&str]) -> String {
    let mut conn = app.pool.get().unwrap();
    if latchkey::db::apis::find_api_by_audience(&mut conn, API).unwrap().is_none() {
        app.create_api(API, &["read", "write"], "RS256");
    }
    let registration = latchkey::manage::clients::ClientRegistration {
        name: "Deploy CLI".into(),
        grant_types: grants.iter().map(|g| g.to_string()).collect(),
        scopes: vec!["openid read write offline_access".into()],
        audiences: vec![API.into()],
        redirect_uris: vec![crate::authorize::CALLBACK.into()],
        public: true,
        ..Default::default()
    };
    app.register_client(registration).client_id.clone()
}

/// Asks for a device code as a device would, without a library.
async fn start(app: &TestApp, client_id: &str, scope: &str) -> Value {
    let response =
        post_form(app, "/oauth2/device_authorization", &[("client_id", client_id), ("scope", scope)], None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, Value) {
    let form = [("grant_type", DEVICE_GRANT), ("client_id", client_id), ("device_code", device_code)];
    let response = post_form(app, "/oauth2/token", &form, None).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A signed-in person's answer at `/device`, through the pages as a browser posts them.
async fn answer(app: &TestApp, person: &reqwest::Client, user_code: &str, decision: &str) -> String {
    let page = person.get(app.url(&format!("/device?user_code={user_code}"))).send().await.unwrap();
    let status = page.status();
    let page = page.text().await.unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Deploy CLI"), "{page}");
    let form = [("csrf_token", csrf_token(&page)), ("user_code", user_code.into()), ("decision", decision.into())];
    person.post(app.url("/device/decide")).form(&form).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn the_oauth2_crate_gets_tokens_while_a_person_approves_in_chromium() {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    let client_id = cli_app(&app, &[DEVICE_GRANT, "refresh_token"]);
    let device = BasicClient::new(ClientId::new(client_id.clone()))
        .set_device_authorization_url(DeviceAuthorizationUrl::new(app.url("/oauth2/device_authorization")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap());

    // The device asks, and shows the person the code and the address.
    let details: StandardDeviceAuthorizationResponse = device
        .exchange_device_code()
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .request_async(&app.http)
        .await
        .expect("a device code");
    let user_code = details.user_code().secret().clone();
    assert!(
        user_code.len() == 9
            && user_code.chars().enumerate().all(|(i, c)| if i == 4 {
                c == '-'
            } else {
                "BCDFGHJKLMNPQRSTVWXZ".contains(c)
            }),
        "{user_code}"
    );
    assert_eq!(details.verification_uri().as_str(), app.url("/device"));
    let complete = details.verification_uri_complete().expect("the address with the code").secret().clone();
    assert_eq!(complete, app.url(&format!("/device?user_code={user_code}")));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    assert_eq!(details.interval(), Duration::from_secs(5));

    // It polls, as the crate does, while the person goes to the address on another screen.
    let http = app.http.clone();
    let polling = tokio::spawn(async move {
        device
            .exchange_device_access_token(&details)
            .request_async(&http, tokio::time::sleep, Some(Duration::from_secs(90)))
            .await
    });
    browser.goto(&app.url("/device")).await.unwrap();
    wait_for_url(&browser, &app.url("/login")).await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "Enter the code your device").await;
    screenshot(&browser, "device").await;
    // Typed carelessly: lower case, no dash.
    let typed = user_code.replace('-', "").to_lowercase();
    browser.find(Locator::Id("user_code")).await.unwrap().send_keys(&typed).await.unwrap();
    click(&browser, "button[type=submit]").await;
    let text = wait_for_text(&browser, "Deploy CLI wants to access your account").await;
    assert!(text.contains(&user_code), "the code to compare with the device's: {text}");
    assert!(text.contains("127.0.0.1"), "where the request came from: {text}");
    assert!(text.contains("Read your data") && text.contains("Keep access when you are not using the app"));
    screenshot(&browser, "device-confirm").await;
    click(&browser, "button[value=allow]").await;
    wait_for_text(&browser, "Device connected").await;
    screenshot(&browser, "device-done").await;

    // The device's poll ends with the tokens.
    let token = polling.await.unwrap().expect("tokens once the person allowed");
    verify_with_jwks(token.access_token().secret(), &app.jwks().await, &app.issuer(), API).unwrap();
    assert!(token.refresh_token().is_some(), "offline_access with the refresh grant");
    let refreshed = post_form(
        &app,
        "/oauth2/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", token.refresh_token().unwrap().secret()),
        ],
        None,
    )
    .await;
    assert_eq!(refreshed.status(), 200);

    // The QR code of the address, drawn by the server, for a device that shows images.
    browser.goto(&app.url(&format!("/device/qr?user_code={user_code}"))).await.unwrap();
    screenshot(&browser, "device-qr").await;
    let qr = app.http.get(app.url(&format!("/device/qr?user_code={user_code}"))).send().await.unwrap();
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    let expected = qrcode::QrCode::with_error_correction_level(complete.as_bytes(), qrcode::EcLevel::M)
        .unwrap()
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    assert_eq!(qr.text().await.unwrap(), expected, "the QR code holds verification_uri_complete");
    let not_a_code = app.http.get(app.url("/device/qr?user_code=https://evil.example")).send().await.unwrap();
    assert_eq!(not_a_code.status(), 400, "it draws nothing but this server's /device address");
}

async fn polling_says_wait_slow_down_denied_expired_and_gives_tokens_once(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client_id = cli_app(&app, &[DEVICE_GRANT]);
    let person = app.browser();
    sign_in(&app, &person, EMAIL, PASSWORD, "/account").await;
    let denied = start(&app, &client_id, "read").await;
    let (device_code, user_code) = (denied["device_code"].as_str().unwrap(), denied["user_code"].as_str().unwrap());

    // Before the person decides: wait; too soon: slow down, by 5 more seconds.
    let (status, pending) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, pending["error"].as_str()), (400, Some("authorization_pending")), "{pending}");
    let (status, slow) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, slow["error"].as_str()), (400, Some("slow_down")), "{slow}");
    assert!(slow["error_description"].as_str().unwrap().contains("10 seconds"), "{slow}");

    // Denied.
    let page = answer(&app, &person, user_code, "deny").await;
    assert!(page.contains("Request denied"), "{page}");
    let (status, refused) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("access_denied")), "{refused}");
    let again = person.get(app.url(&format!("/device?user_code={user_code}"))).send().await.unwrap();
    assert_eq!(again.status(), 400, "decided once: the code no longer leads anywhere");

    // Allowed: tokens once; the code is then spent; another client cannot use it.
    let allowed = start(&app, &client_id, "openid read").await;
    let (device_code, user_code) = (allowed["device_code"].as_str().unwrap(), allowed["user_code"].as_str().unwrap());
    let other = cli_app(&app, &[DEVICE_GRANT]);
    assert!(answer(&app, &person, user_code, "allow").await.contains("Device connected"));
    let (status, stolen) = poll(&app, &other, device_code).await;
    assert_eq!((status, stolen["error"].as_str()), (400, Some("invalid_grant")), "{stolen}");
    let (status, tokens) = poll(&app, &client_id, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid read");
    assert!(tokens["id_token"].is_string() && tokens.get("refresh_token").is_none(), "{tokens}");
    let (status, spent) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, spent["error"].as_str()), (400, Some("invalid_grant")), "{spent}");

    // Expired.
    let expiring = start(&app, &client_id, "read").await;
    let device_code = expiring["device_code"].as_str().unwrap();
    {
        use latchkey::db::schema::device_authorizations::dsl::*;
        let mut conn = app.pool.get().unwrap();
        diesel::update(device_authorizations.filter(device_code_hash.eq(app.state.hasher.hash(device_code).as_str())))
            .set(expires_at.eq(latchkey::db::now() - chrono::TimeDelta::seconds(1)))
            .execute(&mut *conn)
            .unwrap();
    }
    let (status, expired) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, expired["error"].as_str()), (400, Some("expired_token")), "{expired}");

    // The person's decisions are in the audit log; the allowed app is on their account page.
    let actions = app.audit_actions();
    assert!(actions.contains(&("device.approved".into(), "success".into())), "{actions:?}");
    assert!(actions.contains(&("device.denied".into(), "success".into())), "{actions:?}");
    let account = person.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("Deploy CLI"));
}

async fn a_client_must_be_registered_for_the_device_grant(backend: Backend) {
    let app = spawn_app(backend).await;
    let client_id = cli_app(&app, &["authorization_code"]);

    let response =
        post_form(&app, "/oauth2/device_authorization", &[("client_id", &client_id), ("scope", "read")], None).await;
    let unknown_scope =
        post_form(&app, "/oauth2/device_authorization", &[("client_id", &client_id), ("scope", "launch")], None).await;

    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unauthorized_client");
    assert_eq!(unknown_scope.status(), 400);
    let unknown_client = post_form(&app, "/oauth2/device_authorization", &[("client_id", "nobody")], None).await;
    assert_eq!(unknown_client.status(), 401);
}

async fn guessing_user_codes_is_throttled(backend: Backend) {
    // Arrange: a real request, and a signed-in person who types wrong codes.
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client_id = cli_app(&app, &[DEVICE_GRANT]);
    let real = start(&app, &client_id, "read").await;
    let person = app.browser();
    sign_in(&app, &person, EMAIL, PASSWORD, "/account").await;
    let page = person.get(app.url("/device")).send().await.unwrap().text().await.unwrap();
    let token = csrf_token(&page);

    // Act: ten wrong codes, typed or posted straight to the decision, then the right one.
    let mut statuses = Vec::new();
    for guess in 0..11 {
        let code = format!("BBBB-BB{}", ["BB", "BC", "BD", "BF", "BG", "BH", "BJ", "BK", "BL", "BM", "BN"][guess]);
        let (path, form) = if guess % 2 == 0 {
            ("/device", vec![("csrf_token", token.as_str()), ("user_code", code.as_str())])
        } else {
            ("/device/decide", vec![("csrf_token", token.as_str()), ("user_code", &code), ("decision", "allow")])
        };
        statuses.push(person.post(app.url(path)).form(&form).send().await.unwrap().status().as_u16());
    }
    let user_code = real["user_code"].as_str().unwrap();
    let form = [("csrf_token", token.as_str()), ("user_code", user_code)];
    let right = person.post(app.url("/device")).form(&form).send().await.unwrap();
    let form = [("csrf_token", token.as_str()), ("user_code", user_code), ("decision", "allow")];
    let right_decision = person.post(app.url("/device/decide")).form(&form).send().await.unwrap();

    // Assert: each wrong code said so; then the address waits, even with the right code, and
    // nothing was approved.
    assert_eq!(statuses[..10], [400, 200, 400, 200, 400, 200, 400, 200, 400, 200]);
    assert_eq!(statuses[10], 429);
    assert_eq!(right.status(), 429);
    assert!(right.headers().contains_key("retry-after"));
    assert!(right.text().await.unwrap().contains("Too many wrong codes"));
    assert_eq!(right_decision.status(), 429);
    let (status, pending) = poll(&app, &client_id, real["device_code"].as_str().unwrap()).await;
    assert_eq!((status, pending["error"].as_str()), (400, Some("authorization_pending")));
}

/// A public CLI's polls are answered `authorization_pending` or `slow_down` while the person
/// decides: answers, not failures, so they do not spend the address's failure budget, and a
/// mistyped secret from the same address afterwards is still answered, not refused.
async fn waiting_polls_are_not_failed_authentications(backend: Backend) {
    let app = spawn_app_with(TestDb::new(&backend), |settings| {
        settings.failed_auth_burst = 2;
        settings.failed_auth_per_hour = 2;
    })
    .await;
    let client_id = cli_app(&app, &[DEVICE_GRANT]);
    let started = start(&app, &client_id, "read").await;

    let mut answers = Vec::new();
    for _ in 0..5 {
        let (status, body) = poll(&app, &client_id, started["device_code"].as_str().unwrap()).await;
        answers.push((status, body["error"].as_str().unwrap_or_default().to_owned()));
    }

    assert_eq!(answers[0], (400, "authorization_pending".to_owned()));
    assert!(answers[1..].iter().all(|a| *a == (400, "slow_down".to_owned())), "{answers:?}");
    let machine = app.create_client(&["client_credentials"], &[], &[]);
    let form = [("grant_type", "client_credentials")];
    let wrong_secret = post_form(&app, "/oauth2/token", &form, Some((&machine.client_id, "not the secret"))).await;
    assert_eq!(wrong_secret.status(), 401, "the failure budget is untouched by the polls");
}

crate::on_both_backends!(
    waiting_polls_are_not_failed_authentications,
    polling_says_wait_slow_down_denied_expired_and_gives_tokens_once,
    a_client_must_be_registered_for_the_device_grant,
    guessing_user_codes_is_throttled,
);
