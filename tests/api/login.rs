//! Signing in and out through Latchkey's own pages.

use reqwest::header::{HeaderMap, SET_COOKIE};

use crate::helpers::{Backend, Served, spawn_app, spawn_app_with};

pub const EMAIL: &str = "ada@example.com";
pub const PASSWORD: &str = "correct horse battery staple";

/// The CSRF token a page's form carries.
pub fn csrf_token(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Opens the sign-in page in `browser` and submits the form.
pub async fn sign_in(
    app: &impl Served,
    browser: &reqwest::Client,
    email: &str,
    password: &str,
    return_to: &str,
) -> reqwest::Response {
    let page = browser.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let token = csrf_token(&page);
    browser
        .post(app.url("/login"))
        .form(&[("email", email), ("password", password), ("csrf_token", &token), ("return_to", return_to)])
        .send()
        .await
        .unwrap()
}

async fn the_sign_in_page_carries_a_csrf_token_and_forbids_framing(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.browser().get(app.url("/login")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(headers["cache-control"], "no-store");
    let csrf_cookie = set_cookie(&headers, "latchkey_csrf").expect("a CSRF cookie");
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"), "{csrf_cookie}");
    assert!(!csrf_cookie.contains("Secure"), "plain http issuer: no Secure flag");
    let html = response.text().await.unwrap();
    assert!(!csrf_token(&html).is_empty());
    assert!(html.contains(r#"<label for="email">"#) && html.contains(r#"<label for="password">"#));
}

async fn signing_in_starts_a_session_and_returns_to_the_page_asked_for(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let browser = app.browser();

    // Act
    let response = sign_in(&app, &browser, "  ADA@example.com ", PASSWORD, "/account").await;

    // Assert
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/account");
    let session = set_cookie(response.headers(), "latchkey_session").expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && session.contains("Max-Age="));
    let account = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200);
    let html = account.text().await.unwrap();
    assert!(html.contains(EMAIL) && html.contains("Ada Lovelace"));
    assert!(app.audit_actions().contains(&("user.signed_in".into(), "success".into())));
}

/// A browser at the server's root lands on a page, never on a JSON 404.
async fn the_root_leads_to_the_dashboard_or_to_sign_in(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let browser = app.browser();

    // Act
    let signed_out = browser.get(app.url("/")).send().await.unwrap();
    sign_in(&app, &browser, EMAIL, PASSWORD, "/account").await;
    let signed_in = browser.get(app.url("/")).send().await.unwrap();
    let posted = browser.post(app.url("/")).send().await.unwrap();

    // Assert
    assert_eq!(signed_out.status(), 303);
    assert_eq!(signed_out.headers()["location"], "/login?return_to=/dashboard");
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/dashboard");
    assert_eq!(posted.status(), 405, "only GET");
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);

    let wrong_password = sign_in(&app, &app.browser(), EMAIL, "not the password", "/account").await;
    let unknown_email = sign_in(&app, &app.browser(), "nobody@example.com", PASSWORD, "/account").await;

    for response in [wrong_password, unknown_email] {
        assert_eq!(response.status(), 401);
        assert!(set_cookie(response.headers(), "latchkey_session").is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("The email or password is incorrect."));
    }
    let failures = app.audit_actions().iter().filter(|(action, _)| action == "user.sign_in_failed").count();
    assert_eq!(failures, 2);
}

async fn a_form_without_its_csrf_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let browser = app.browser();
    browser.get(app.url("/login")).send().await.unwrap();

    for token in ["", "forged-token-value-that-is-long-enough-000"] {
        let response = browser
            .post(app.url("/login"))
            .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf_token", token), ("return_to", "/account")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{token:?}");
        assert!(set_cookie(response.headers(), "latchkey_session").is_none());
    }
    // Another browser's valid token does not fit this browser's cookie.
    let other = app.browser();
    let their_token = csrf_token(&other.get(app.url("/login")).send().await.unwrap().text().await.unwrap());
    let response = browser
        .post(app.url("/login"))
        .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf_token", &their_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

async fn an_offsite_return_address_is_ignored(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);

    let response = sign_in(&app, &app.browser(), EMAIL, PASSWORD, "https://evil.example.com/").await;

    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/dashboard");
}

async fn repeated_failures_lock_an_account_whether_or_not_it_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);

    for email in [EMAIL, "nobody@example.com"] {
        for _ in 0..latchkey::web::throttle::ACCOUNT_LIMITS.burst {
            assert_eq!(sign_in(&app, &app.browser(), email, "wrong password", "/").await.status(), 401);
        }
        // Even the right password waits now, so guessing cannot continue.
        let locked = sign_in(&app, &app.browser(), email, PASSWORD, "/").await;
        assert_eq!(locked.status(), 429, "{email}");
        assert!(locked.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
        assert!(set_cookie(locked.headers(), "latchkey_session").is_none());
    }
}

async fn signing_out_ends_the_session_on_the_server(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let browser = app.browser();
    let signed_in = sign_in(&app, &browser, EMAIL, PASSWORD, "/account").await;
    let session = set_cookie(signed_in.headers(), "latchkey_session").unwrap();
    let session_pair = session.split(';').next().unwrap().to_owned();
    let account = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();

    // Act
    let response = browser.post(app.url("/logout")).form(&[("csrf_token", csrf_token(&account))]).send().await.unwrap();

    // Assert
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?signed_out=1");
    let after = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(after.status(), 303, "signed out");
    // The old cookie, replayed by hand, is dead too: the session is gone from the server.
    let replayed = app.http.get(app.url("/account")).header("cookie", session_pair).send().await.unwrap();
    assert_eq!(replayed.status(), 303);
    assert_eq!(replayed.headers()["location"], "/login?return_to=/account");
}

async fn a_deactivated_user_cannot_sign_in(backend: Backend) {
    use diesel::prelude::*;
    let app = spawn_app(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    {
        use latchkey::db::schema::users;
        let mut conn = app.pool.get().unwrap();
        diesel::update(users::table.find(&user.id)).set(users::status.eq("deactivated")).execute(&mut *conn).unwrap();
    }

    let response = sign_in(&app, &app.browser(), EMAIL, PASSWORD, "/account").await;

    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("The email or password is incorrect."));
}

async fn cookies_are_secure_when_the_issuer_is_https(backend: Backend) {
    let issuer = latchkey::config::parse_issuer("https://id.example.com").unwrap();
    let app = spawn_app_with(crate::helpers::TestDb::new(&backend), |s| s.issuer = Some(issuer)).await;

    let response = app.http.get(app.url("/login")).send().await.unwrap();

    let cookie = set_cookie(response.headers(), "latchkey_csrf").unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

async fn the_stylesheet_is_served_with_cache_headers(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.http.get(app.url("/static/style.css")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age"));
}

crate::on_both_backends!(
    the_root_leads_to_the_dashboard_or_to_sign_in,
    the_sign_in_page_carries_a_csrf_token_and_forbids_framing,
    signing_in_starts_a_session_and_returns_to_the_page_asked_for,
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    a_form_without_its_csrf_token_is_refused,
    an_offsite_return_address_is_ignored,
    repeated_failures_lock_an_account_whether_or_not_it_exists,
    signing_out_ends_the_session_on_the_server,
    a_deactivated_user_cannot_sign_in,
    cookies_are_secure_when_the_issuer_is_https,
    the_stylesheet_is_served_with_cache_headers,
);
