//! Owners requiring a second factor of everyone: the policy through the API and the
//! dashboard, a password sign-in that must set one up before it finishes, and the rules
//! that keep the policy from being undone (a password alone never adds a factor to an
//! account that has one; nobody removes their last factor while it is required).

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::authorize::{location, register_public_client};
use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
use crate::helpers::{Backend, TestApp, spawn_app};
use crate::login::{EMAIL, PASSWORD, csrf_token, set_cookie};
use crate::second_factors::{Phone, code_flow_tokens, password_step, payload, recovery_codes, set_up_app, signed_in};

async fn require_second_factor(app: &TestApp, required: bool) {
    let body = json!({ "second_factor_required": required });
    let (status, policy) = app.api("PUT", "/sign-in-policy", &app.owner_key(), Some(body)).await;
    assert_eq!((status, &policy["second_factor_required"]), (200, &json!(required)), "{policy}");
}

async fn only_owners_set_the_policy_and_it_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let owner = app.owner_key();
    let (status, policy) = app.api("GET", "/sign-in-policy", &owner, None).await;
    assert_eq!((status, policy), (200, json!({ "second_factor_required": false })));

    let members_key = app.personal_key_from_account_page(EMAIL, PASSWORD).await;
    let body = json!({ "second_factor_required": true });
    let (status, refused) = app.api("PUT", "/sign-in-policy", &members_key, Some(body.clone())).await;
    assert_eq!((status, refused["error"].as_str()), (403, Some("forbidden")), "{refused}");
    let (status, refused) = app.api("PUT", "/sign-in-policy", &owner, Some(json!({ "required": true }))).await;
    assert_eq!(status, 400, "an unknown field is refused: {refused}");

    require_second_factor(&app, true).await;
    let (_, policy) = app.api("GET", "/sign-in-policy", &owner, None).await;
    assert_eq!(policy["second_factor_required"], true);
    require_second_factor(&app, true).await;
    let changes = app.audit_actions().into_iter().filter(|(a, _)| a == "tenant.sign_in_policy_changed").count();
    assert_eq!(changes, 1, "setting what is already set changes nothing");
}

/// The enrolment page's form posts, with its CSRF token.
async fn enrol_form(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = browser.get(app.url(page)).send().await.unwrap().text().await.unwrap();
    let token = csrf_token(&html);
    let mut form = vec![("csrf_token", token.as_str()), ("return_to", "/account")];
    form.extend_from_slice(fields);
    browser.post(app.url(action)).form(&form).send().await.unwrap()
}

async fn a_password_sign_in_sets_up_a_second_factor_before_it_finishes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code"], "openid read offline_access");
    require_second_factor(&app, true).await;

    let (browser, next) = password_step(&app, EMAIL, "/account").await;
    assert_eq!(next, "/login/enrol?return_to=%2Faccount");
    let account = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303, "not signed in yet");
    let page = browser.get(app.url(&next)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Set up two-step sign-in") && page.contains(EMAIL), "{page}");

    let setup = enrol_form(&app, &browser, &next, "/login/enrol/totp", &[]).await;
    assert_eq!(setup.status(), 200);
    let html = setup.text().await.unwrap();
    assert!(html.contains(r#"action="/login/enrol/totp/confirm""#), "the setup posts back to the sign-in");
    let phone = Phone::from_page(&html);
    let wrong = enrol_form(&app, &browser, &next, "/login/enrol/totp/confirm", &[("code", "000000")]).await;
    assert_eq!(wrong.status(), 400, "a wrong first code shows the setup again");
    let done = enrol_form(&app, &browser, &next, "/login/enrol/totp/confirm", &[("code", &phone.code())]).await;
    assert_eq!(done.status(), 200);
    assert!(set_cookie(done.headers(), "latchkey_session").is_some(), "signed in with the codes page");
    let html = done.text().await.unwrap();
    assert_eq!(recovery_codes(&html).len(), 10);
    assert!(html.contains(r#"href="/account""#), "then on to where the sign-in was going");

    let tokens = code_flow_tokens(&app, &browser, &client.client_id).await;
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]), "{claims}");
    let accepted = app.audit_actions().into_iter().any(|(a, _)| a == "user.password_accepted");
    assert!(accepted, "the password step is audited");

    // Next time, the app's code like anyone else's.
    let (_, next) = password_step(&app, EMAIL, "/account").await;
    assert!(next.starts_with("/login/second-factor"), "{next}");
}

async fn a_password_alone_never_adds_a_factor_to_an_account_that_has_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    set_up_app(&app, &signed_in(&app, EMAIL).await).await;
    require_second_factor(&app, true).await;

    // Halfway through a sign-in (the password, not the code), the enrolment pages refuse.
    let (browser, next) = password_step(&app, EMAIL, "/account").await;
    assert!(next.starts_with("/login/second-factor"), "{next}");
    let setup = enrol_form(&app, &browser, &next, "/login/enrol/totp", &[]).await;
    assert_eq!(setup.status(), 409);
    assert!(setup.text().await.unwrap().contains("You have a second factor already"));
    let confirm = enrol_form(&app, &browser, &next, "/login/enrol/totp/confirm", &[("code", "123456")]).await;
    assert_eq!(confirm.status(), 409);
    assert!(set_cookie(confirm.headers(), "latchkey_session").is_none());

    // Without a pending sign-in, back to the sign-in page.
    let stranger = app.browser();
    let html = stranger.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let posted = stranger
        .post(app.url("/login/enrol/totp"))
        .form(&[("csrf_token", csrf_token(&html).as_str()), ("return_to", "/account")])
        .send()
        .await
        .unwrap();
    assert_eq!((posted.status().as_u16(), location(&posted)), (303, "/login?return_to=%2Faccount".to_owned()));
}

async fn the_last_second_factor_stays_while_the_policy_requires_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let browser = signed_in(&app, EMAIL).await;
    set_up_app(&app, &browser).await;
    require_second_factor(&app, true).await;
    let html = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let removed = browser
        .post(app.url("/account/totp/remove"))
        .form(&[("csrf_token", csrf_token(&html).as_str()), ("current_password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 400);
    assert!(removed.text().await.unwrap().contains("add another second factor before removing your last one"));
    let (status, policy): (u16, Value) = app.api("GET", "/sign-in-policy", &app.owner_key(), None).await;
    assert_eq!((status, &policy["second_factor_required"]), (200, &json!(true)));

    // Optional again, the app may go.
    require_second_factor(&app, false).await;
    let html = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let removed = browser
        .post(app.url("/account/totp/remove"))
        .form(&[("csrf_token", csrf_token(&html).as_str()), ("current_password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!((removed.status().as_u16(), location(&removed)), (303, "/account?totp_removed=1".to_owned()));
}

/// An owner turns it on from the dashboard; the next person to sign in sets up an app in
/// Chromium before they get in.
#[tokio::test]
async fn the_policy_from_the_dashboard_to_a_members_first_sign_in_in_chromium() {
    let Some((_driver, chromium)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    let owner = json!({ "email": "owner@example.com", "password": PASSWORD, "role": "owner" });
    assert_eq!(app.api("POST", "/users", &app.owner_key(), Some(owner)).await.0, 201);
    chromium.goto(&app.url("/dashboard/users")).await.unwrap();
    chromium.find(Locator::Id("email")).await.unwrap().send_keys("owner@example.com").await.unwrap();
    chromium.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_text(&chromium, "0 of 2 active people have it").await;
    chromium.goto(&app.url("/dashboard/users#policy-heading")).await.unwrap();
    screenshot(&chromium, "dashboard-users-policy-optional").await;
    click(&chromium, "form[action='/dashboard/users/sign-in-policy'] button").await;
    wait_for_text(&chromium, "Two-step sign-in is now required").await;
    chromium.goto(&app.url("/dashboard/users#policy-heading")).await.unwrap();
    screenshot(&chromium, "dashboard-users-policy-required").await;
    click(&chromium, "form[action='/logout'] button[type=submit]").await;
    // The sign-out's own redirect must land first: one still in flight replaced the login
    // page below with a plain one, and the sign-in then went to the dashboard.
    wait_for_text(&chromium, "You have signed out.").await;

    chromium.goto(&app.url("/login?return_to=/account")).await.unwrap();
    chromium.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    chromium.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_text(&chromium, "The owners of this server ask everyone").await;
    screenshot(&chromium, "enrol").await;
    click(&chromium, "form[action='/login/enrol/totp'] button").await;
    wait_for_text(&chromium, "Scan this code").await;
    let phone = Phone::from_page(&chromium.source().await.unwrap());
    chromium.find(Locator::Id("code")).await.unwrap().send_keys(&phone.code()).await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_text(&chromium, "Two-step sign-in is on, and you are signed in").await;
    screenshot(&chromium, "enrol-recovery-codes").await;
    click(&chromium, "a.button").await;
    wait_for_url(&chromium, &app.url("/account")).await;
    wait_for_text(&chromium, "Hello, Ada Lovelace").await;
}

crate::on_both_backends!(
    only_owners_set_the_policy_and_it_is_audited,
    a_password_sign_in_sets_up_a_second_factor_before_it_finishes,
    a_password_alone_never_adds_a_factor_to_an_account_that_has_one,
    the_last_second_factor_stays_while_the_policy_requires_one
);
