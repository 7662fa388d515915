//! Apps that ask for more: `max_age` and `acr_values` at the authorization endpoint, and RFC
//! 9470 step-up in a service built on the `verify` extractor (examples/protected_service.rs).

use actix_web::{App, HttpResponse, web};
use diesel::prelude::*;
use latchkey::verify::Verifier;
use latchkey::verify::actix::{Bearer, BearerError, ProtectedResource};
use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier, Scope};
use serde_json::Value;

use crate::authorize::{consent, exchange, location, oauth2_app, query_param, register_public_client};
use crate::helpers::{API, Backend, TestApp, spawn_app};
use crate::login::{EMAIL, PASSWORD, csrf_token};
use crate::second_factors::{payload, second_step, set_up_app, signed_in};

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/protected_service.rs"]
mod protected_service;

const MFA: &str = "urn:latchkey:acr:mfa";

/// An authorization request for `read write` with `extra` parameters; answers the first
/// response and the verifier to redeem its code with.
async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    extra: &[(&str, &str)],
) -> (reqwest::Response, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let oauth = oauth2_app(app, client_id);
    let mut request = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("read".into()))
        .add_scope(Scope::new("write".into()))
        .set_pkce_challenge(challenge);
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, _) = request.url();
    (browser.get(url.as_str()).send().await.unwrap(), verifier)
}

/// Approves on the consent page and redeems the code: the token response.
async fn approve_and_redeem(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    page: reqwest::Response,
    verifier: PkceCodeVerifier,
) -> Value {
    let callback = consent(app, browser, page, "approve", false).await;
    let code = query_param(&callback, "code").expect("a code");
    let response = exchange(app, client_id, &code, verifier.secret()).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Follows a redirect to the sign-in page asked for again (`reauth=1`): the form shows
/// though the browser is signed in, and the password is checked anew. Answers where it
/// leads.
async fn sign_in_again(app: &TestApp, browser: &reqwest::Client, to_login: &reqwest::Response) -> String {
    assert_eq!(to_login.status(), 303);
    let login = location(to_login);
    assert!(login.starts_with("/login?return_to=") && login.ends_with("&reauth=1"), "{login}");
    let page = browser.get(app.url(&login)).send().await.unwrap();
    assert_eq!(page.status(), 200, "the form, though signed in");
    let html = page.text().await.unwrap();
    assert!(html.contains("asks you to sign in again"), "{html}");
    let return_to = query_param(&app.url(&login), "return_to").unwrap();
    let signed_in = browser
        .post(app.url("/login"))
        .form(&[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("csrf_token", &csrf_token(&html)),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    location(&signed_in)
}

/// The example service, served over HTTP on a free port and trusting the test server for
/// [`API`], with one more route that wants a sign-in of at most five minutes ago. Answers
/// its address.
async fn orders_service(app: &TestApp) -> String {
    async fn recent(token: Bearer) -> Result<HttpResponse, BearerError> {
        token.max_age(300)?;
        Ok(HttpResponse::Ok().finish())
    }
    let verifier = Verifier::discover(&app.issuer(), API).await.expect("discovery works");
    let resource = ProtectedResource::new(verifier, API, &["read", "write"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = actix_web::HttpServer::new(move || {
        App::new()
            .configure(|cfg| resource.configure(cfg))
            .configure(protected_service::routes)
            .route("/recent", web::get().to(recent))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    address
}

/// Calls the service: the status and the `WWW-Authenticate` challenge, if any.
async fn call(service: &str, method: reqwest::Method, path: &str, token: &str) -> (u16, String) {
    let response =
        reqwest::Client::new().request(method, format!("{service}{path}")).bearer_auth(token).send().await.unwrap();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (response.status().as_u16(), challenge)
}

async fn a_password_only_token_steps_up_to_two_factors_for_the_example_service(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code"], "openid read write");
    let service = orders_service(&app).await;
    let browser = signed_in(&app, EMAIL).await;

    // A password-only token reads, and is sent to step up for deleting.
    let (page, verifier) = authorize(&app, &browser, &client.client_id, &[]).await;
    let weak = approve_and_redeem(&app, &browser, &client.client_id, page, verifier).await;
    let weak = weak["access_token"].as_str().unwrap();
    assert_eq!(call(&service, Method::GET, "/orders", weak).await.0, 200);
    let (status, header) = call(&service, Method::DELETE, "/orders/42", weak).await;
    assert_eq!(status, 401);
    assert!(header.contains(r#"error="insufficient_user_authentication""#), "{header}");
    assert!(header.contains(&format!(r#"acr_values="{MFA}""#)), "{header}");

    // Without a second factor to add, the person is told to set one up; the app is not
    // given a weaker sign-in than it asked for.
    let (page, _) = authorize(&app, &browser, &client.client_id, &[("acr_values", MFA)]).await;
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(html.contains("Two-step sign-in needed") && html.contains("/account#two-step"), "{html}");
    let (silent, _) = authorize(&app, &browser, &client.client_id, &[("acr_values", MFA), ("prompt", "none")]).await;
    assert_eq!(query_param(&location(&silent), "error").as_deref(), Some("login_required"));

    // With an authenticator app: the password again, then the code, then the app's token.
    let (phone, _) = set_up_app(&app, &browser).await;
    let (to_login, verifier) = authorize(&app, &browser, &client.client_id, &[("acr_values", MFA)]).await;
    let second = sign_in_again(&app, &browser, &to_login).await;
    assert!(second.starts_with("/login/second-factor?"), "{second}");
    let back = second_step(&app, &browser, &second, &phone.next_code()).await;
    assert_eq!(back.status(), 303);
    let page = browser.get(app.url(&location(&back))).send().await.unwrap();
    let strong = approve_and_redeem(&app, &browser, &client.client_id, page, verifier).await;
    assert_eq!(payload(strong["id_token"].as_str().unwrap())["acr"], MFA);
    let strong = strong["access_token"].as_str().unwrap();
    assert_eq!(call(&service, Method::DELETE, "/orders/42", strong).await.0, 200);

    // The sign-in the browser had before was replaced, not left behind.
    assert_eq!(browser_sessions(&app), 1);
}

fn browser_sessions(app: &TestApp) -> i64 {
    use latchkey::db::schema::sessions;
    let mut conn = app.pool.get().unwrap();
    sessions::table.count().get_result(&mut *conn).unwrap()
}

/// Moves every session's start an hour back, as if the person signed in then.
fn age_sessions(app: &TestApp) {
    use latchkey::db::schema::sessions;
    let mut conn = app.pool.get().unwrap();
    let hour_ago = latchkey::db::now() - chrono::TimeDelta::hours(1);
    diesel::update(sessions::table).set(sessions::created_at.eq(hour_ago)).execute(&mut *conn).unwrap();
}

async fn an_old_sign_in_is_made_again_for_max_age(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code"], "openid read write");
    let service = orders_service(&app).await;
    let browser = signed_in(&app, EMAIL).await;
    age_sessions(&app);

    // Without max_age the hour-old sign-in does, and its tokens say when it was.
    let (page, verifier) = authorize(&app, &browser, &client.client_id, &[]).await;
    let old = approve_and_redeem(&app, &browser, &client.client_id, page, verifier).await;
    let auth_time = payload(old["id_token"].as_str().unwrap())["auth_time"].as_i64().unwrap();
    assert!(auth_time <= chrono::Utc::now().timestamp() - 3500, "{auth_time}");
    let old = old["access_token"].as_str().unwrap();
    let (status, header) = call(&service, reqwest::Method::GET, "/recent", old).await;
    assert_eq!(status, 401);
    assert!(
        header.contains(r#"error="insufficient_user_authentication""#) && header.contains("max_age=300"),
        "{header}"
    );

    // With max_age, it is not enough; prompt=none cannot ask, so the app hears why.
    let (silent, _) = authorize(&app, &browser, &client.client_id, &[("max_age", "600"), ("prompt", "none")]).await;
    assert_eq!(query_param(&location(&silent), "error").as_deref(), Some("login_required"));
    let (bad, _) = authorize(&app, &browser, &client.client_id, &[("max_age", "soon")]).await;
    assert_eq!(query_param(&location(&bad), "error").as_deref(), Some("invalid_request"));
    let (to_login, verifier) = authorize(&app, &browser, &client.client_id, &[("max_age", "600")]).await;
    let back = sign_in_again(&app, &browser, &to_login).await;
    assert!(back.starts_with("/oauth2/authorize?"), "{back}");
    // Even max_age=0 is met by the sign-in it just asked for.
    let page = browser.get(app.url(&back.replace("max_age=600", "max_age=0"))).send().await.unwrap();
    assert_eq!(page.status(), 200, "the consent page, not another sign-in");
    let fresh = approve_and_redeem(&app, &browser, &client.client_id, page, verifier).await;
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(call(&service, reqwest::Method::GET, "/recent", fresh).await.0, 200);
}

crate::on_both_backends!(
    a_password_only_token_steps_up_to_two_factors_for_the_example_service,
    an_old_sign_in_is_made_again_for_max_age
);

#[test]
fn the_verifier_names_the_classes_the_server_issues() {
    assert_eq!(latchkey::verify::ACR_PASSWORD, latchkey::domain::ACR_PASSWORD);
    assert_eq!(latchkey::verify::ACR_MULTI_FACTOR, latchkey::domain::ACR_MULTI_FACTOR);
}

/// The two pages an app's demands lead to, as a person sees them.
#[tokio::test]
async fn the_pages_of_a_demanding_app_in_chromium() {
    use fantoccini::Locator;

    use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
    let Some((_driver, chromium)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code"], "openid read write");
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let oauth = oauth2_app(&app, &client.client_id);
    let (url, _) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .add_extra_param("acr_values", MFA)
        .set_pkce_challenge(challenge)
        .url();
    chromium.goto(url.as_str()).await.unwrap();
    wait_for_url(&chromium, &app.url("/login")).await;
    chromium.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    chromium.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_text(&chromium, "Two-step sign-in needed").await;
    screenshot(&chromium, "second-factor-needed").await;
    chromium.goto(&app.url("/login?return_to=/account&reauth=1")).await.unwrap();
    wait_for_text(&chromium, "asks you to sign in again").await;
    screenshot(&chromium, "login-again").await;
}
