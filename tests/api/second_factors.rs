//! Two-step sign-in: an authenticator app (RFC 6238) and recovery codes, from setting them
//! up on the account page to what apps receive as `amr` and `acr`.

use fantoccini::Locator;
use oauth2::{CsrfToken, PkceCodeChallenge, Scope};
use serde_json::Value;
use totp_rs::{Builder, Secret, Totp};

use crate::authorize::{consent, exchange, location, oauth2_app, query_param, register_public_client};
use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
use crate::helpers::{Backend, TestApp, spawn_app};
use crate::login::{EMAIL, PASSWORD, csrf_token, set_cookie, sign_in};

/// The person's phone: the secret the setup page showed, as an authenticator app keeps it.
pub(crate) struct Phone {
    app: Totp,
    key: String,
}

impl Phone {
    pub(crate) fn from_page(html: &str) -> Self {
        let marker = r#"id="totp-secret">"#;
        let start = html.find(marker).expect("the setup page shows the key") + marker.len();
        let typed: String = html[start..].split('<').next().unwrap().chars().filter(|c| !c.is_whitespace()).collect();
        let secret = Secret::try_from_base32(&typed).expect("a base32 key");
        Self { app: Builder::new().with_secret(secret).build().expect("RFC 6238 parameters"), key: typed }
    }

    pub(crate) fn code(&self) -> String {
        self.app.generate_current().to_string()
    }

    /// The code of the next time step, which the server's one step of leeway accepts now:
    /// what a phone whose clock runs a little ahead shows. A sign-in right after the code
    /// that confirmed the app needs it, as each step's code is accepted once.
    pub(crate) fn next_code(&self) -> String {
        self.app.generate(chrono::Utc::now().timestamp() as u64 + 30).to_string()
    }

    /// Six digits no step near now accepts.
    fn wrong_code(&self) -> String {
        let now = chrono::Utc::now().timestamp() as u64;
        let near: Vec<String> = (0..5).map(|i| self.app.generate(now + i * 30 - 60).to_string()).collect();
        (0..).map(|n: u32| format!("{:06}", 314_159 + n)).find(|code| !near.contains(code)).unwrap()
    }
}

pub(crate) async fn signed_in(app: &TestApp, email: &str) -> reqwest::Client {
    let browser = app.browser();
    let response = sign_in(app, &browser, email, PASSWORD, "/account").await;
    assert_eq!(response.status(), 303, "{email} signs in");
    assert!(set_cookie(response.headers(), "latchkey_session").is_some());
    browser
}

async fn account_form(
    app: &TestApp,
    browser: &reqwest::Client,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let token = csrf_token(&page);
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    browser.post(app.url(action)).form(&form).send().await.unwrap()
}

/// Sets up an authenticator app for the signed-in person: the phone, and the recovery codes
/// shown once.
pub(crate) async fn set_up_app(app: &TestApp, browser: &reqwest::Client) -> (Phone, Vec<String>) {
    let setup = account_form(app, browser, "/account/totp", &[("current_password", PASSWORD)]).await;
    assert_eq!(setup.status(), 200);
    assert_eq!(setup.headers()["cache-control"], "no-store", "the page with the secret is not cached");
    let html = setup.text().await.unwrap();
    assert!(html.contains("<svg"), "the QR code is drawn in the page");
    let phone = Phone::from_page(&html);
    let token = csrf_token(&html);
    let confirmed = browser
        .post(app.url("/account/totp/confirm"))
        .form(&[("csrf_token", token.as_str()), ("code", &phone.code())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    (phone, recovery_codes(&confirmed.text().await.unwrap()))
}

pub(crate) fn recovery_codes(html: &str) -> Vec<String> {
    let list =
        html.split(r#"id="recovery-codes""#).nth(1).expect("the codes are listed").split("</ul>").next().unwrap();
    list.split("<code>").skip(1).map(|item| item.split('<').next().unwrap().to_owned()).collect()
}

/// Signs in with the password; answers the browser, now halfway, and where it was sent.
pub(crate) async fn password_step(app: &TestApp, email: &str, return_to: &str) -> (reqwest::Client, String) {
    let browser = app.browser();
    let response = sign_in(app, &browser, email, PASSWORD, return_to).await;
    assert_eq!(response.status(), 303);
    assert!(set_cookie(response.headers(), "latchkey_session").is_none(), "no session before the second factor");
    (browser, location(&response))
}

pub(crate) async fn second_step(app: &TestApp, browser: &reqwest::Client, page: &str, code: &str) -> reqwest::Response {
    let html = browser.get(app.url(page)).send().await.unwrap().text().await.unwrap();
    let return_to = html.split(r#"name="return_to" value=""#).nth(1).unwrap().split('"').next().unwrap();
    let return_to = crate::authorize::unescape(return_to);
    let token = csrf_token(&html);
    browser
        .post(app.url("/login/second-factor"))
        .form(&[("csrf_token", token.as_str()), ("code", code), ("return_to", &return_to)])
        .send()
        .await
        .unwrap()
}

async fn an_authenticator_app_makes_sign_in_ask_for_a_code_once_per_step(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let here = signed_in(&app, EMAIL).await;

    // Setting it up needs the password, then a first code from the app.
    let refused = account_form(&app, &here, "/account/totp", &[("current_password", "not it")]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("The current password is incorrect."));
    let setup = account_form(&app, &here, "/account/totp", &[("current_password", PASSWORD)]).await;
    let html = setup.text().await.unwrap();
    let phone = Phone::from_page(&html);
    let wrong = here
        .post(app.url("/account/totp/confirm"))
        .form(&[("csrf_token", csrf_token(&html).as_str()), ("code", &phone.wrong_code())])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(wrong.text().await.unwrap().contains("That code is not right."));
    // Until confirmed, signing in asks only for the password.
    let browser = app.browser();
    assert!(
        set_cookie(sign_in(&app, &browser, EMAIL, PASSWORD, "/account").await.headers(), "latchkey_session").is_some()
    );
    let page = here.get(app.url("/account/totp")).send().await.unwrap().text().await.unwrap();
    assert_eq!(Phone::from_page(&page).key, phone.key, "the same setup is shown again");
    let confirmed = here
        .post(app.url("/account/totp/confirm"))
        .form(&[("csrf_token", csrf_token(&page).as_str()), ("code", &phone.code())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let codes = recovery_codes(&confirmed.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    let account = here.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("Authenticator app") && account.contains("10 unused"), "{account}");

    // Now the password alone starts no session.
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    assert_eq!(second, "/login/second-factor?return_to=%2Faccount");
    assert_eq!(browser.get(app.url("/account")).send().await.unwrap().status(), 303, "not signed in yet");
    let wrong = second_step(&app, &browser, &second, &phone.wrong_code()).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("That code is not right."));
    let code = phone.next_code();
    let done = second_step(&app, &browser, &second, &code).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account");
    assert!(set_cookie(done.headers(), "latchkey_session").is_some());
    assert_eq!(browser.get(app.url("/account")).send().await.unwrap().status(), 200);

    // The same code again, on another sign-in, is a replay.
    let (again, second) = password_step(&app, EMAIL, "/account").await;
    let replayed = second_step(&app, &again, &second, &code).await;
    assert_eq!(replayed.status(), 401);
    assert!(replayed.text().await.unwrap().contains("That code was used already."));

    let actions = app.audit_actions();
    for expected in [
        ("user.totp_setup_failed", "failure"),
        ("user.totp_enrolled", "success"),
        ("user.password_accepted", "success"),
        ("user.second_factor_failed", "failure"),
        ("user.signed_in", "success"),
    ] {
        assert!(actions.contains(&(expected.0.into(), expected.1.into())), "{expected:?} in {actions:?}");
    }
}

async fn a_recovery_code_signs_in_once_and_only_its_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    app.create_user("grace@example.com", PASSWORD);
    let (_, codes) = set_up_app(&app, &signed_in(&app, EMAIL).await).await;
    let (_, graces_codes) = set_up_app(&app, &signed_in(&app, "grace@example.com").await).await;

    // Ada's code does nothing for Grace.
    let (grace, second) = password_step(&app, "grace@example.com", "/account").await;
    assert_eq!(second_step(&app, &grace, &second, &codes[0]).await.status(), 401);
    assert_eq!(second_step(&app, &grace, &second, &graces_codes[0]).await.status(), 303);

    // Typed loosely, it works once.
    let loosely = codes[0].to_uppercase().replace('-', " ");
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    let done = second_step(&app, &browser, &second, &loosely).await;
    assert_eq!(done.status(), 303);
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    assert_eq!(second_step(&app, &browser, &second, &codes[0]).await.status(), 401);
    assert!(app.audit_actions().contains(&("user.recovery_code_used".into(), "success".into())));

    // New codes: the old ones die, the new ones work.
    let here = signed_in_with_code(&app, &codes[1]).await;
    let account = here.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("8 unused"), "{account}");
    let renewed = account_form(&app, &here, "/account/recovery-codes", &[("current_password", PASSWORD)]).await;
    assert_eq!(renewed.status(), 200);
    let new_codes = recovery_codes(&renewed.text().await.unwrap());
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|code| !codes.contains(code)));
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    assert_eq!(second_step(&app, &browser, &second, &codes[2]).await.status(), 401);
    assert_eq!(second_step(&app, &browser, &second, &new_codes[0]).await.status(), 303);
}

async fn signed_in_with_code(app: &TestApp, code: &str) -> reqwest::Client {
    let (browser, second) = password_step(app, EMAIL, "/account").await;
    assert_eq!(second_step(app, &browser, &second, code).await.status(), 303);
    browser
}

async fn the_last_recovery_codes_send_the_person_to_make_new_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let (_, codes) = set_up_app(&app, &signed_in(&app, EMAIL).await).await;
    for code in &codes[..6] {
        signed_in_with_code(&app, code).await;
    }
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    let done = second_step(&app, &browser, &second, &codes[6]).await;
    assert_eq!(location(&done), "/account?recovery_codes_left=3");
    let page = browser.get(app.url("/account?recovery_codes_left=3")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("3 unused left"), "{page}");
}

async fn wrong_codes_are_throttled_like_wrong_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let (phone, _) = set_up_app(&app, &signed_in(&app, EMAIL).await).await;
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(second_step(&app, &browser, &second, &phone.wrong_code()).await.status().as_u16());
    }
    // The password was one attempt of the account's five; a right password buys no more.
    assert_eq!(statuses, [401, 401, 401, 401, 429]);
    let right = second_step(&app, &browser, &second, &phone.next_code()).await;
    assert_eq!(right.status(), 429, "the right code waits too");
    assert!(right.headers().contains_key("retry-after"));
}

async fn removing_the_app_takes_the_password_and_the_recovery_codes_with_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let here = signed_in(&app, EMAIL).await;
    let (_, codes) = set_up_app(&app, &here).await;
    let refused = account_form(&app, &here, "/account/totp/remove", &[("current_password", "nope")]).await;
    assert_eq!(refused.status(), 400);
    let removed = account_form(&app, &here, "/account/totp/remove", &[("current_password", PASSWORD)]).await;
    assert_eq!(location(&removed), "/account?totp_removed=1");
    assert!(app.audit_actions().contains(&("user.totp_removed".into(), "success".into())));
    // The password alone signs in again; no recovery code is left to renew.
    signed_in(&app, EMAIL).await;
    let renew = account_form(&app, &here, "/account/recovery-codes", &[("current_password", PASSWORD)]).await;
    assert_eq!(renew.status(), 400);
    assert!(renew.text().await.unwrap().contains("Set up an authenticator app first."));
    // The old codes went with the app: a new app comes with new ones, and an old one is wrong.
    let (_, new_codes) = set_up_app(&app, &here).await;
    assert_eq!(new_codes.len(), 10);
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    assert_eq!(second_step(&app, &browser, &second, &codes[0]).await.status(), 401);
}

async fn the_second_factor_page_without_a_password_step_starts_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.browser();
    let page = browser.get(app.url("/login/second-factor?return_to=%2Faccount")).send().await.unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(location(&page), "/login?return_to=%2Faccount");
    let csrf = browser.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let posted = browser
        .post(app.url("/login/second-factor"))
        .form(&[("csrf_token", csrf_token(&csrf).as_str()), ("code", "123456"), ("return_to", "/account")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303);
    assert_eq!(location(&posted), "/login?return_to=%2Faccount");
}

/// The tokens of an authorization-code flow in `browser` (signed in already).
pub(crate) async fn code_flow_tokens(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> Value {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _) = oauth2_app(app, client_id)
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let page = browser.get(authorize_url.as_str()).send().await.unwrap();
    let callback = consent(app, browser, page, "approve", false).await;
    let code = query_param(&callback, "code").unwrap();
    let response = exchange(app, client_id, &code, verifier.secret()).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub(crate) fn payload(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn tokens_say_how_the_person_signed_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code", "refresh_token"], "openid read offline_access");
    let introspector = app.create_client(&["client_credentials"], &["read"], &[crate::helpers::API]);

    // A password alone.
    let browser = signed_in(&app, EMAIL).await;
    let tokens = code_flow_tokens(&app, &browser, &client.client_id).await;
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["acr"], "urn:latchkey:acr:pwd");
    let access = payload(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], "urn:latchkey:acr:pwd");
    assert_eq!(access["auth_time"], id["auth_time"]);

    // With the app as well.
    let (phone, _) = set_up_app(&app, &browser).await;
    let (browser, second) = password_step(&app, EMAIL, "/account").await;
    let before = chrono::Utc::now().timestamp();
    assert_eq!(second_step(&app, &browser, &second, &phone.next_code()).await.status(), 303);
    let tokens = code_flow_tokens(&app, &browser, &client.client_id).await;
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["acr"], "urn:latchkey:acr:mfa");
    let auth_time = id["auth_time"].as_i64().unwrap();
    assert!(auth_time >= before - 1, "auth_time is when the person signed in");
    let access_token = tokens["access_token"].as_str().unwrap();
    let access = payload(access_token);
    assert_eq!((access["amr"].clone(), access["acr"].clone()), (id["amr"].clone(), id["acr"].clone()));
    assert_eq!(access["auth_time"], auth_time);
    let introspected = app.introspect(access_token, &introspector).await;
    assert_eq!(introspected["acr"], "urn:latchkey:acr:mfa");
    assert_eq!(introspected["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // A refresh reports the same sign-in, not a new one.
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let introspected = app.introspect(refresh_token, &introspector).await;
    assert_eq!(
        (introspected["acr"].as_str(), introspected["auth_time"].as_i64()),
        (Some("urn:latchkey:acr:mfa"), Some(auth_time))
    );
    let refreshed = app
        .post_form(
            "/oauth2/token",
            &[("grant_type", "refresh_token"), ("client_id", &client.client_id), ("refresh_token", refresh_token)],
            None,
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let access = payload(refreshed["access_token"].as_str().unwrap());
    assert_eq!(access["acr"], "urn:latchkey:acr:mfa");
    assert_eq!(access["auth_time"], auth_time);
}

async fn metadata_lists_the_context_classes(backend: Backend) {
    let app = spawn_app(backend).await;
    let metadata: Value =
        reqwest::get(app.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["acr_values_supported"], serde_json::json!(["urn:latchkey:acr:pwd", "urn:latchkey:acr:mfa"]));
    let claims = metadata["claims_supported"].as_array().unwrap();
    assert!(claims.contains(&"amr".into()) && claims.contains(&"acr".into()));
}

crate::on_both_backends!(
    an_authenticator_app_makes_sign_in_ask_for_a_code_once_per_step,
    a_recovery_code_signs_in_once_and_only_its_owner,
    the_last_recovery_codes_send_the_person_to_make_new_ones,
    wrong_codes_are_throttled_like_wrong_passwords,
    removing_the_app_takes_the_password_and_the_recovery_codes_with_it,
    the_second_factor_page_without_a_password_step_starts_again,
    tokens_say_how_the_person_signed_in,
    metadata_lists_the_context_classes,
    an_owner_resets_a_members_second_factors_and_the_member_is_told
);

/// The whole of it as a person does it, in Chromium: set up the app from the account page,
/// sign out, sign in with the password and a code.
#[tokio::test]
async fn two_step_sign_in_works_in_chromium() {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    browser.goto(&app.url("/account")).await.unwrap();
    wait_for_url(&browser, &app.url("/login")).await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "Two-step sign-in").await;
    browser.goto(&app.url("/account#two-step")).await.unwrap();
    screenshot(&browser, "account-two-step-off").await;
    browser.find(Locator::Id("totp-password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "form[action='/account/totp'] button[type=submit]").await;
    wait_for_text(&browser, "Scan this code").await;
    click(&browser, "details summary").await;
    screenshot(&browser, "totp-setup").await;
    let phone = Phone::from_page(&browser.source().await.unwrap());
    browser.find(Locator::Id("code")).await.unwrap().send_keys(&phone.code()).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "Your recovery codes").await;
    screenshot(&browser, "recovery-codes").await;
    click(&browser, "a.button").await;
    wait_for_text(&browser, "Recovery codes").await;
    browser.goto(&app.url("/account#two-step")).await.unwrap();
    screenshot(&browser, "account-two-step-on").await;

    click(&browser, "form[action='/logout'] button[type=submit]").await;
    wait_for_text(&browser, "You have signed out.").await;
    browser.goto(&app.url("/login?return_to=/account")).await.unwrap();
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "Open your authenticator app").await;
    browser.find(Locator::Id("code")).await.unwrap().send_keys(&phone.wrong_code()).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "That code is not right.").await;
    screenshot(&browser, "second-factor-refused").await;
    browser.find(Locator::Id("code")).await.unwrap().send_keys(&phone.next_code()).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_url(&browser, &app.url("/account")).await;
    wait_for_text(&browser, "Hello, Ada Lovelace").await;
}

async fn an_owner_resets_a_members_second_factors_and_the_member_is_told(backend: Backend) {
    let (app, sink) = crate::password_reset::app_with_mail(backend).await;
    let member = app.create_user(EMAIL, PASSWORD);
    let members_key = app.personal_key_from_account_page(EMAIL, PASSWORD).await;
    set_up_app(&app, &signed_in(&app, EMAIL).await).await;
    let owner = app.owner_key();
    let path = format!("/users/{}/second-factors", member.id);

    // Only an owner may; the member's own key may not undo their second factor.
    let (status, body) = app.api("DELETE", &path, &members_key, None).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app.api("DELETE", "/users/no-such-user/second-factors", &owner, None).await;
    assert_eq!(status, 404);

    let (status, body) = app.api("DELETE", &path, &owner, None).await;
    assert_eq!(status, 204, "{body}");
    let mail = sink.message(0).await;
    assert!(mail.contains("To: ada@example.com") && mail.contains("Your two-step sign-in was reset"), "{mail}");
    let (status, body) = app.api("DELETE", &path, &owner, None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));
    assert!(app.audit_actions().contains(&("user.second_factors_reset".into(), "success".into())));

    // The password alone signs in again, and the member can set up a new app.
    let browser = signed_in(&app, EMAIL).await;
    let (_, codes) = set_up_app(&app, &browser).await;
    assert_eq!(codes.len(), 10, "new recovery codes with the new app");
}

/// An owner does it from the users page, after a confirmation that says what happens.
#[tokio::test]
async fn an_owner_resets_two_step_sign_in_on_the_dashboard_in_chromium() {
    let Some((_driver, chromium)) = browser().await else { return };
    let (app, sink) = crate::password_reset::app_with_mail(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    set_up_app(&app, &signed_in(&app, EMAIL).await).await;
    let ops = app.owner_key();
    let body = serde_json::json!({ "email": "owner@example.com", "password": PASSWORD, "role": "owner" });
    assert_eq!(app.api("POST", "/users", &ops, Some(body)).await.0, 201);
    chromium.goto(&app.url("/dashboard/users")).await.unwrap();
    chromium.find(Locator::Id("email")).await.unwrap().send_keys("owner@example.com").await.unwrap();
    chromium.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_text(&chromium, "two-step sign-in").await;
    screenshot(&chromium, "dashboard-users-two-step").await;
    click(&chromium, "a[aria-label='Reset the two-step sign-in of ada@example.com']").await;
    wait_for_text(&chromium, "Reset the two-step sign-in of ada@example.com?").await;
    screenshot(&chromium, "dashboard-user-reset-two-step").await;
    click(&chromium, "button.danger").await;
    wait_for_text(&chromium, "Their two-step sign-in was reset").await;
    assert!(sink.message(0).await.contains("Your two-step sign-in was reset"));
    let page = chromium.source().await.unwrap();
    assert!(!page.contains("Reset two-step"), "nothing left to reset");
}
