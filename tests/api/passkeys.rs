//! Passkeys in headless Chromium with a virtual authenticator (WebDriver's WebAuthn
//! extension, through chromedriver): registering one on the account page, signing in with
//! it and no password, using it after the password, removing it; and what apps receive.
//!
//! WebAuthn scopes credentials to a domain name, so these servers' issuer is
//! `http://localhost:PORT` (browsers treat localhost as a secure context).

use std::sync::Arc;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::authorize::{register_public_client, unescape};
use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app, spawn_app_with};
use crate::login::{EMAIL, PASSWORD, csrf_token};
use crate::second_factors::{code_flow_tokens, payload, signed_in};

/// A server reached at `http://localhost:PORT`, so that browsers offer passkeys.
async fn app_on_localhost(backend: Backend) -> TestApp {
    let port = crate::process::free_port();
    spawn_app_with(TestDb::new(&backend), |settings| {
        settings.bind = ([127, 0, 0, 1], port).into();
        settings.issuer = Some(latchkey::config::parse_issuer(&format!("http://localhost:{port}")).unwrap());
    })
    .await
}

/// A page of the server, as the browser must address it (by name, not by address).
fn page(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.issuer())
}

/// A WebDriver extension command of the session (`/session/{id}/{path}`).
#[derive(Debug)]
struct SessionCommand {
    method: http::Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for SessionCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/{}", session_id.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (self.method.clone(), self.body.as_ref().map(Value::to_string))
    }
}

/// A platform authenticator that keeps discoverable credentials and verifies its user (as
/// a phone's or laptop's screen lock does); returns its id.
async fn add_authenticator(chromium: &Client) -> String {
    let body = json!({
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserConsenting": true,
        "isUserVerified": true,
    });
    let command =
        SessionCommand { method: http::Method::POST, path: "webauthn/authenticator".into(), body: Some(body) };
    let id = chromium.issue_cmd(command).await.expect("chromedriver adds a virtual authenticator");
    id.as_str().expect("an authenticator id").to_owned()
}

/// The credentials the authenticator holds.
async fn credentials(chromium: &Client, authenticator: &str) -> Vec<Value> {
    let path = format!("webauthn/authenticator/{authenticator}/credentials");
    let command = SessionCommand { method: http::Method::GET, path, body: None };
    let listed = chromium.issue_cmd(command).await.unwrap();
    listed.as_array().cloned().unwrap_or_default()
}

/// Runs a DevTools command through chromedriver (`goog/cdp/execute`).
async fn devtools(chromium: &Client, cmd: &str, params: Value) -> Value {
    let body = json!({ "cmd": cmd, "params": params });
    let command = SessionCommand { method: http::Method::POST, path: "goog/cdp/execute".into(), body: Some(body) };
    chromium.issue_cmd(command).await.unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Turns the sign-in page's autofill off until the returned id is given to
/// [`with_autofill`]. A virtual authenticator answers an autofill request at once, where a
/// person would pick from a list: flows that click a button must not race it.
async fn without_autofill(chromium: &Client) -> String {
    let source = "PublicKeyCredential.isConditionalMediationAvailable = async () => false;";
    let added = devtools(chromium, "Page.addScriptToEvaluateOnNewDocument", json!({ "source": source })).await;
    added["identifier"].as_str().expect("a script id").to_owned()
}

async fn with_autofill(chromium: &Client, script: String) {
    devtools(chromium, "Page.removeScriptToEvaluateOnNewDocument", json!({ "identifier": script })).await;
}

async fn type_into(chromium: &Client, id: &str, text: &str) {
    chromium.find(Locator::Id(id)).await.unwrap().send_keys(text).await.unwrap();
}

async fn sign_in_with_password(chromium: &Client, app: &TestApp, return_to: &str) {
    chromium.goto(&page(app, &format!("/login?return_to={return_to}"))).await.unwrap();
    type_into(chromium, "email", EMAIL).await;
    type_into(chromium, "password", PASSWORD).await;
    click(chromium, "form[action='/login'] button[type=submit]").await;
}

async fn sign_out(chromium: &Client, app: &TestApp) {
    chromium.goto(&page(app, "/account")).await.unwrap();
    click(chromium, "form[action='/logout'] button[type=submit]").await;
    wait_for_text(chromium, "You have signed out.").await;
}

/// The session the browser holds, in a client of the test's (same server, by address).
async fn session_of(chromium: &Client, app: &TestApp) -> reqwest::Client {
    let session = chromium.get_named_cookie("latchkey_session").await.expect("a session cookie");
    let jar = Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("latchkey_session={}; Path=/", session.value()), &app.url("/").parse().unwrap());
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_provider(jar).build().unwrap()
}

/// The id token of a code flow in the browser's session.
async fn id_token_claims(chromium: &Client, app: &TestApp, client_id: &str) -> Value {
    let tokens = code_flow_tokens(app, &session_of(chromium, app).await, client_id).await;
    payload(tokens["id_token"].as_str().expect("an id token"))
}

/// Registers a passkey named `name` from the account page (signed in already).
async fn add_passkey(chromium: &Client, app: &TestApp, name: &str) {
    chromium.goto(&page(app, "/account#passkeys")).await.unwrap();
    type_into(chromium, "passkey-name", name).await;
    type_into(chromium, "passkey-password", PASSWORD).await;
    click(chromium, "form[action='/account/passkeys'] button[type=submit]").await;
    wait_for_text(chromium, "Create the passkey").await;
}

/// The whole of it as a person does it: register a passkey, sign in with it alone, then
/// with the password and it, then remove it; the id tokens say how each sign-in was made.
async fn passkeys_sign_in_in_chromium(backend: Backend) {
    let Some((_driver, chromium)) = browser().await else { return };
    let app = app_on_localhost(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code"], "openid read offline_access");
    let authenticator = add_authenticator(&chromium).await;
    let no_autofill = without_autofill(&chromium).await;

    sign_in_with_password(&chromium, &app, "/account").await;
    wait_for_text(&chromium, "Hello, Ada Lovelace").await;
    chromium.goto(&page(&app, "/account#passkeys")).await.unwrap();
    screenshot(&chromium, "account-passkeys-none").await;
    add_passkey(&chromium, &app, "Work laptop").await;
    screenshot(&chromium, "passkey-register").await;
    click(&chromium, "[data-passkey-start]").await;
    wait_for_text(&chromium, "Your recovery codes").await;
    let held = credentials(&chromium, &authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "a discoverable credential: {held:?}");
    click(&chromium, "a.button").await;
    chromium.goto(&page(&app, "/account#passkeys")).await.unwrap();
    let text = wait_for_text(&chromium, "Work laptop").await;
    assert!(text.contains("never used"), "{text}");
    screenshot(&chromium, "account-passkeys").await;

    // No email, no password: the passkey names the account.
    sign_out(&chromium, &app).await;
    chromium.goto(&page(&app, "/login?return_to=/account")).await.unwrap();
    wait_for_text(&chromium, "Sign in with a passkey").await;
    screenshot(&chromium, "login-passkey").await;
    click(&chromium, "[data-passkey-start]").await;
    wait_for_url(&chromium, &page(&app, "/account")).await;
    wait_for_text(&chromium, "Hello, Ada Lovelace").await;
    let claims = id_token_claims(&chromium, &app, &client.client_id).await;
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    // Moments after a passkey sign-in, the password may change without the current one.
    chromium.goto(&page(&app, "/account#password-form")).await.unwrap();
    wait_for_text(&chromium, "You signed in with a second factor moments ago").await;
    screenshot(&chromium, "account-password-after-passkey").await;

    // The password, then the passkey as the second step.
    sign_out(&chromium, &app).await;
    sign_in_with_password(&chromium, &app, "/account").await;
    wait_for_text(&chromium, "Use your passkey").await;
    screenshot(&chromium, "second-factor-passkey").await;
    click(&chromium, "[data-passkey-start]").await;
    wait_for_url(&chromium, &page(&app, "/account")).await;
    let claims = id_token_claims(&chromium, &app, &client.client_id).await;
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]), "{claims}");

    // Autofill: the email field offers the passkey as the page loads (a virtual
    // authenticator picks it at once, where a person would pick it from the list).
    sign_out(&chromium, &app).await;
    with_autofill(&chromium, no_autofill).await;
    chromium.goto(&page(&app, "/login?return_to=/account")).await.unwrap();
    wait_for_url(&chromium, &page(&app, "/account")).await;
    let claims = id_token_claims(&chromium, &app, &client.client_id).await;
    assert_eq!(claims["amr"], json!(["hwk", "mfa"]), "{claims}");

    // Removing it takes the password; the last second factor takes the recovery codes along.
    chromium.goto(&page(&app, "/account#passkeys")).await.unwrap();
    click(&chromium, ".passkeys a.secondary").await;
    wait_for_text(&chromium, "Remove the passkey “Work laptop”?").await;
    screenshot(&chromium, "passkey-remove").await;
    type_into(&chromium, "remove-password", PASSWORD).await;
    click(&chromium, "button.danger").await;
    let text = wait_for_text(&chromium, "Passkey removed.").await;
    assert!(!text.contains("Work laptop"), "{text}");
    let actions = app.audit_actions();
    for action in ["user.passkey_added", "user.signed_in", "user.passkey_removed"] {
        assert!(actions.contains(&(action.into(), "success".into())), "{action} in {actions:?}");
    }
    let mut conn = app.pool.get().unwrap();
    let left = latchkey::db::second_factors::count_unused_recovery_codes(&mut conn, &user.id).unwrap();
    assert_eq!(left, 0, "no second factor, no recovery codes");
}

/// The browser's answer to a sign-in challenge, taken before the page posts it: the script
/// fills the form, and the test keeps what it would have sent.
async fn intercepted_sign_in(chromium: &Client, app: &TestApp) -> (String, String, String) {
    chromium.goto(&page(app, "/login")).await.unwrap();
    wait_for_text(chromium, "Sign in with a passkey").await;
    chromium
        .execute("HTMLFormElement.prototype.submit = function () { window.answer = new FormData(this); };", vec![])
        .await
        .unwrap();
    click(chromium, "[data-passkey-start]").await;
    for _ in 0..100 {
        let answer = chromium
            .execute(
                "return window.answer ? [window.answer.get('csrf_token'), window.answer.get('ceremony'), \
                 window.answer.get('credential')] : null;",
                vec![],
            )
            .await
            .unwrap();
        if let Some(fields) = answer.as_array() {
            let field = |i: usize| fields[i].as_str().unwrap().to_owned();
            return (field(0), field(1), field(2));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the page never posted its answer");
}

/// A challenge is answered once: the same answer posted again is refused with a page, and
/// a tampered or unreadable answer gets a page too, never a server error.
async fn a_passkey_answer_works_once_and_bad_answers_get_a_page(backend: Backend) {
    let Some((_driver, chromium)) = browser().await else { return };
    let app = app_on_localhost(backend).await;
    app.create_user(EMAIL, PASSWORD);
    add_authenticator(&chromium).await;
    without_autofill(&chromium).await;
    sign_in_with_password(&chromium, &app, "/account").await;
    wait_for_text(&chromium, "Hello, Ada Lovelace").await;
    add_passkey(&chromium, &app, "Phone").await;
    click(&chromium, "[data-passkey-start]").await;
    wait_for_text(&chromium, "Your recovery codes").await;
    sign_out(&chromium, &app).await;

    let (csrf, ceremony, credential) = intercepted_sign_in(&chromium, &app).await;
    let csrf_cookie = chromium.get_named_cookie("latchkey_csrf").await.unwrap();
    let post = |ceremony: String, credential: String| {
        let (app_url, csrf, cookie) = (app.url("/login/passkey"), csrf.clone(), csrf_cookie.value().to_owned());
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(app_url)
                .header("cookie", format!("latchkey_csrf={cookie}"))
                .form(&[("csrf_token", csrf.as_str()), ("ceremony", &ceremony), ("credential", &credential)])
                .send()
                .await
                .unwrap()
        }
    };
    let mut tampered: Value = serde_json::from_str(&credential).unwrap();
    tampered["response"]["signature"] = json!("AAAA");
    let refused = post(ceremony.clone(), tampered.to_string()).await;
    assert_eq!(refused.status(), 401);
    assert!(unescape(&refused.text().await.unwrap()).contains("could not be verified"));

    // The tampered attempt spent the challenge: the genuine answer to it is refused too.
    let replayed = post(ceremony, credential.clone()).await;
    assert_eq!(replayed.status(), 401);
    assert!(unescape(&replayed.text().await.unwrap()).contains("expired or was already used"));

    let (_, fresh, genuine) = intercepted_sign_in(&chromium, &app).await;
    let unreadable = post(fresh.clone(), "{\"id\": 1}".into()).await;
    assert_eq!(unreadable.status(), 401);
    assert!(unescape(&unreadable.text().await.unwrap()).contains("could not be read"));
    let (_, fresh, genuine_again) = intercepted_sign_in(&chromium, &app).await;
    let accepted = post(fresh.clone(), genuine_again).await;
    assert_eq!(accepted.status(), 303, "a fresh answer signs in");
    let again = post(fresh, genuine).await;
    assert_eq!(again.status(), 401, "the ceremony was taken");
    let failures = app.audit_actions().into_iter().filter(|(a, _)| a == "user.passkey_failed").count();
    assert_eq!(failures, 4, "every refused answer is audited");
}

async fn a_challenge_needs_the_pages_csrf_token_and_passkeys_need_a_domain_name(backend: Backend) {
    let app = app_on_localhost(backend.clone()).await;
    let browser = app.browser();
    let login = browser.get(app.url("/login")).send().await.unwrap();
    let policy = login.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = login.text().await.unwrap();
    assert!(html.contains("autocomplete=\"username webauthn\""), "the email field offers passkeys");

    let forged = browser.post(app.url("/login/passkey/options")).form(&[("csrf_token", "nope")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let challenge = browser
        .post(app.url("/login/passkey/options"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(challenge.status(), 200);
    assert_eq!(challenge.headers()["cache-control"], "no-store");
    let challenge: Value = challenge.json().await.unwrap();
    assert!(challenge["ceremony"].as_str().is_some_and(|c| c.len() >= 43), "{challenge}");
    let key = &challenge["options"]["publicKey"];
    assert_eq!(key["rpId"], "localhost", "{challenge}");
    assert_eq!(key["userVerification"], "required", "{challenge}");
    assert!(key["allowCredentials"].as_array().is_none_or(Vec::is_empty), "discoverable: {challenge}");

    // Behind an address, not a name: no passkey offered anywhere, and a clear answer.
    let by_address = spawn_app(backend).await;
    let html = by_address.http.get(by_address.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("data-passkey"), "no passkey button");
    let browser = by_address.browser();
    let html = browser.get(by_address.url("/login")).send().await.unwrap().text().await.unwrap();
    let off = browser
        .post(by_address.url("/login/passkey/options"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 404);
    assert_eq!(off.json::<Value>().await.unwrap()["error"], "not_found");
}

async fn adding_a_passkey_takes_the_password_and_a_name(backend: Backend) {
    let app = app_on_localhost(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let browser = signed_in(&app, EMAIL).await;
    let add = |fields: Vec<(&'static str, String)>| {
        let (browser, app) = (&browser, &app);
        async move {
            let html = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
            let mut form = vec![("csrf_token", csrf_token(&html))];
            form.extend(fields);
            browser.post(app.url("/account/passkeys")).form(&form).send().await.unwrap()
        }
    };
    let wrong = add(vec![("name", "Laptop".into()), ("current_password", "not it".into())]).await;
    assert_eq!(wrong.status(), 400);
    let unnamed = add(vec![("name", "  ".into()), ("current_password", PASSWORD.into())]).await;
    assert_eq!(unnamed.status(), 400);
    assert!(unnamed.text().await.unwrap().contains("Give the passkey a name"));

    let started = add(vec![("name", "<Laptop>".into()), ("current_password", PASSWORD.into())]).await;
    assert_eq!(started.status(), 200);
    let policy = started.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = started.text().await.unwrap();
    assert!(html.contains("&#60;Laptop&#62;") || html.contains("&lt;Laptop&gt;"), "the name is escaped");
    let options = html.split(r#"id="passkey-options">"#).nth(1).unwrap().split("</script>").next().unwrap();
    assert!(!options.contains('<'), "nothing in the options can close the script element");
    let options: Value = serde_json::from_str(options).unwrap();
    assert_eq!(options["publicKey"]["user"]["name"], EMAIL);
    assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required");

    // An answer to no challenge of this person's is refused on the account page.
    let html = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let confirm = browser
        .post(app.url("/account/passkeys/confirm"))
        .form(&[("csrf_token", csrf_token(&html).as_str()), ("ceremony", "made-up"), ("credential", "{}")])
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), 400);
    assert!(confirm.text().await.unwrap().contains("expired or was already used"));
    assert!(app.audit_actions().contains(&("user.passkey_registration_failed".into(), "failure".into())));
}

/// With a second factor required of everyone, a person without one makes a passkey as the
/// last step of their password sign-in.
#[tokio::test]
async fn a_first_passkey_is_made_during_sign_in_when_the_owners_require_one() {
    let Some((_driver, chromium)) = browser().await else { return };
    let app = app_on_localhost(Backend::Sqlite).await;
    let user = app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code"], "openid read offline_access");
    let body = json!({ "second_factor_required": true });
    assert_eq!(app.api("PUT", "/sign-in-policy", &app.owner_key(), Some(body)).await.0, 200);
    add_authenticator(&chromium).await;
    without_autofill(&chromium).await;

    sign_in_with_password(&chromium, &app, "/account").await;
    wait_for_text(&chromium, "The owners of this server ask everyone").await;
    type_into(&chromium, "passkey-name", "Phone").await;
    click(&chromium, "form[action='/login/enrol/passkey'] button").await;
    wait_for_text(&chromium, "Create the passkey").await;
    click(&chromium, "[data-passkey-start]").await;
    wait_for_text(&chromium, "Two-step sign-in is on, and you are signed in").await;
    click(&chromium, "a.button").await;
    wait_for_url(&chromium, &page(&app, "/account")).await;
    let claims = id_token_claims(&chromium, &app, &client.client_id).await;
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "mfa"]), "{claims}");
}

crate::on_both_backends!(
    passkeys_sign_in_in_chromium,
    a_passkey_answer_works_once_and_bad_answers_get_a_page,
    a_challenge_needs_the_pages_csrf_token_and_passkeys_need_a_domain_name,
    adding_a_passkey_takes_the_password_and_a_name
);
