//! The sign-in pages in a real browser: headless Chromium through chromedriver, with the
//! `oauth2` crate as the app. Runs where `chromium` and `chromedriver` are installed (CI
//! installs them and sets LATCHKEY_REQUIRE_BROWSER=1, so that a missing browser fails
//! there instead of skipping). Screenshots at desktop and phone widths land in
//! target/screenshots/ for people to look at.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl,
};

use crate::helpers::{API, Backend, TestApp, spawn_app, verify_with_jwks};
use crate::login::{EMAIL, PASSWORD};

/// A chromedriver of this test's own, with the Chromium it starts, stopped when dropped.
/// Both run in a process group of their own, so that dropping takes the browser down too
/// (killing chromedriver alone would leave Chromium running), and the browser profile lives
/// in a directory that goes with them.
pub(crate) struct Driver {
    process: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.process.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group that
            // chromedriver leads (process_group(0) below); it touches no memory.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn chromedriver_path() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].into_iter().map(PathBuf::from).find(|p| p.exists())
}

/// A headless Chromium session, or `None` (with a note) where none is installed.
pub(crate) async fn browser() -> Option<(Driver, Client)> {
    let Some(chromedriver) = chromedriver_path() else {
        assert!(std::env::var_os("LATCHKEY_REQUIRE_BROWSER").is_none(), "chromedriver is required but not installed");
        eprintln!("chromedriver is not installed: browser test skipped");
        return None;
    };
    let port = crate::process::free_port();
    // Chromium's profile and the scratch directories it makes for itself, all in here.
    let profile = tempfile::tempdir().unwrap();
    let process = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .env("TMPDIR", profile.path())
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let user_data_dir = format!("--user-data-dir={}", profile.path().display());
    let driver = Driver { process, port, _profile: profile };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-quic", "--window-size=1280,900", user_data_dir
            ]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{}", driver.port);
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone()).capabilities(capabilities.clone()).connect(&url).await {
            Ok(client) => return Some((driver, client)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("chromedriver did not answer");
}

pub(crate) async fn screenshot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    for (label, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        client.set_window_size(width, height).await.unwrap();
        let png = client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
    }
    client.set_window_size(1280, 900).await.unwrap();
    // Chromium lays the page out again after the resize: a click before that could land
    // where its target was at 390 px.
    let settled = "const done = arguments[0]; \
        (function wait() { if (window.innerWidth === 1280) { requestAnimationFrame(() => requestAnimationFrame(done)); } \
        else { setTimeout(wait, 10); } })();";
    client.execute_async(settled, vec![]).await.unwrap();
}

/// A public client whose redirect URI is a loopback address on Latchkey itself, so that
/// the browser lands somewhere real and the test reads the code from the address bar.
fn loopback_app(app: &TestApp) -> (String, String) {
    app.create_api(API, &["read", "write"], "RS256");
    let callback = app.url("/test-callback");
    let registration = latchkey::manage::clients::ClientRegistration {
        name: "Photo Printer".into(),
        team_id: None,
        token_endpoint_auth_method: None,
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid read write offline_access".into()],
        audiences: vec![API.into()],
        redirect_uris: vec![callback.clone()],
        post_logout_redirect_uris: vec![],
        public: true,
        ..Default::default()
    };
    let client = app.register_client(registration);
    (client.client_id.clone(), callback)
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

pub(crate) async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap_or_else(|_| panic!("{css} on the page")).click().await.unwrap();
}

/// How many times the waits below look, 50 ms apart: 15 s, for a sign-in's password hash
/// on a machine that is also compiling (they return as soon as the page is there).
const PATIENCE: usize = 300;

/// Waits for the page (after a click, the next page) to show `expected`; tolerates the
/// old page's nodes going stale mid-navigation.
pub(crate) async fn wait_for_text(client: &Client, expected: &str) -> String {
    let mut last = String::new();
    for _ in 0..PATIENCE {
        if let Ok(body) = client.find(Locator::Css("body")).await
            && let Ok(text) = body.text().await
        {
            if text.contains(expected) {
                return text;
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never showed {expected:?}; it showed: {last}");
}

/// Waits until the browser is at a URL starting with `prefix`.
pub(crate) async fn wait_for_url(client: &Client, prefix: &str) -> url::Url {
    wait_for_url_where(client, prefix, |url| url.as_str().starts_with(prefix)).await
}

/// Waits until the browser is at a URL that `wanted` accepts (`what` says which, if it never is).
pub(crate) async fn wait_for_url_where(client: &Client, what: &str, wanted: impl Fn(&url::Url) -> bool) -> url::Url {
    let mut last = None;
    for _ in 0..PATIENCE {
        if let Ok(url) = client.current_url().await {
            if wanted(&url) {
                return url;
            }
            last = Some(url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = match client.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    panic!("the browser never reached {what}; it stayed at {last:?}, showing: {page}");
}

#[tokio::test]
async fn a_person_signs_in_consents_and_later_withdraws_the_app_in_chromium() {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    let (client_id, callback) = loopback_app(&app);
    let oauth = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(callback.clone()).unwrap());
    let authorize = |scopes: &[&str]| {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = oauth.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge);
        for scope in scopes {
            request = request.add_scope(Scope::new((*scope).into()));
        }
        let (url, state) = request.url();
        (url.to_string(), state, verifier)
    };

    // Sign in on the login page the authorization request leads to.
    let (url, state, verifier) = authorize(&["read", "offline_access"]);
    browser.goto(&url).await.unwrap();
    assert!(browser.current_url().await.unwrap().path() == "/login");
    screenshot(&browser, "login").await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;

    // The consent page names the app and the scopes in words; remember and allow.
    let text = wait_for_text(&browser, "Photo Printer wants to access your account").await;
    assert!(text.contains("Read your data") && text.contains("Keep access when you are not using the app"));
    screenshot(&browser, "consent").await;
    click(&browser, "#remember").await;
    click(&browser, "button[value=approve]").await;

    // Back at the app with a code, which the oauth2 crate exchanges.
    let landed = wait_for_url(&browser, &callback).await;
    assert_eq!(query_param(&landed, "state").as_deref(), Some(state.secret().as_str()));
    let token = oauth
        .exchange_code(AuthorizationCode::new(query_param(&landed, "code").unwrap()))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("the code is exchanged");
    verify_with_jwks(token.access_token().secret(), &app.jwks().await, &app.issuer(), API).unwrap();
    let refresh_token = token.refresh_token().expect("offline_access").secret().clone();

    // The remembered decision: straight back to the app, no page.
    let (url, _, _) = authorize(&["read"]);
    browser.goto(&url).await.unwrap();
    wait_for_url(&browser, &callback).await;

    // The account page lists the app; withdrawing it kills its refresh token.
    browser.goto(&app.url("/account")).await.unwrap();
    wait_for_text(&browser, "Photo Printer").await;
    screenshot(&browser, "account").await;
    click(&browser, ".apps button[type=submit]").await;
    let text = wait_for_text(&browser, "Access withdrawn").await;
    assert!(!text.contains("Photo Printer"), "{text}");
    let refreshed = app
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("client_id", &client_id), ("refresh_token", &refresh_token)],
            None,
        )
        .await;
    assert_eq!(refreshed.status(), 400);

    // And the next request asks again.
    let (url, _, _) = authorize(&["read"]);
    browser.goto(&url).await.unwrap();
    wait_for_text(&browser, "wants to access your account").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn denying_in_chromium_returns_access_denied_to_the_app() {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    let (client_id, callback) = loopback_app(&app);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = BasicClient::new(ClientId::new(client_id))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_redirect_uri(RedirectUrl::new(callback.clone()).unwrap())
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();

    browser.goto(url.as_str()).await.unwrap();
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys("wrong password").await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "The email or password is incorrect.").await;
    screenshot(&browser, "login-error").await;
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "wants to access your account").await;
    click(&browser, "button[value=deny]").await;

    let landed = wait_for_url(&browser, &callback).await;
    assert_eq!(query_param(&landed, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&landed, "state").as_deref(), Some(state.secret().as_str()));
    browser.close().await.unwrap();
}
