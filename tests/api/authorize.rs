//! The authorization code flow with PKCE: the browser signs in and consents on Latchkey's
//! pages, the `oauth2` crate plays the third-party app.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;

use crate::helpers::{API, Backend, Served, TestApp, post_form, spawn_app, verify_with_jwks};
use crate::login::{EMAIL, PASSWORD, csrf_token, sign_in};

pub const CALLBACK: &str = "https://app.example.com/callback";

/// A public client (PKCE, no secret) allowed `openid profile email read write` on [`API`].
fn public_client(app: &TestApp) -> latchkey::manage::clients::RegisteredClient {
    register_public_client(app, &["authorization_code"], "openid profile email read write")
}

/// A public client with these grants and scopes on [`API`] (which this creates).
pub fn register_public_client(
    app: &TestApp,
    grants: &[&str],
    scopes: &str,
) -> latchkey::manage::clients::RegisteredClient {
    app.create_api(API, &["read", "write"], "RS256");
    let registration = latchkey::manage::clients::ClientRegistration {
        name: "Photo Printer".into(),
        team_id: None,
        token_endpoint_auth_method: None,
        grant_types: grants.iter().map(|g| g.to_string()).collect(),
        scopes: vec![scopes.into()],
        audiences: vec![API.into()],
        redirect_uris: vec![CALLBACK.into()],
        post_logout_redirect_uris: vec![],
        public: true,
        ..Default::default()
    };
    app.register_client(registration)
}

pub fn oauth2_app(
    app: &impl Served,
    client_id: &str,
) -> BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
> {
    BasicClient::new(ClientId::new(client_id.into()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap())
}

pub fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

/// The hidden fields of the consent form, plus the decision.
pub fn consent_form(html: &str, decision: &str, remember: bool) -> Vec<(String, String)> {
    let mut fields = vec![("csrf_token".to_owned(), csrf_token(html)), ("decision".to_owned(), decision.to_owned())];
    for input in html.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = input.split_once('"').unwrap();
        let value = rest.split("value=\"").nth(1).unwrap().split('"').next().unwrap();
        if name != "csrf_token" {
            fields.push((unescape(name), unescape(value)));
        }
    }
    if remember {
        fields.push(("remember".into(), "on".into()));
    }
    fields
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

/// Signs in through the redirect to /login and returns the page the authorization request
/// then shows (the consent page, or a redirect to the client).
pub async fn sign_in_and_authorize(
    app: &impl Served,
    browser: &reqwest::Client,
    authorize_url: &str,
) -> reqwest::Response {
    let to_login = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(to_login.status(), 303);
    let login = location(&to_login);
    assert!(login.starts_with("/login?return_to="), "{login}");
    let return_to = query_param(&app.url(&login), "return_to").unwrap();
    let signed_in = sign_in(app, browser, EMAIL, PASSWORD, &return_to).await;
    assert_eq!(signed_in.status(), 303);
    browser.get(app.url(&location(&signed_in))).send().await.unwrap()
}

pub async fn consent(
    app: &impl Served,
    browser: &reqwest::Client,
    page: reqwest::Response,
    decision: &str,
    remember: bool,
) -> String {
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("form-action 'self' https://app.example.com"), "{policy}");
    let html = page.text().await.unwrap();
    let response =
        browser.post(app.url("/oauth2/authorize")).form(&consent_form(&html, decision, remember)).send().await.unwrap();
    assert_eq!(response.status(), 303);
    location(&response)
}

async fn the_code_flow_with_pkce_gives_the_app_tokens_for_the_signed_in_user(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let oauth = oauth2_app(&app, &client.client_id);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.browser();

    // Act: sign in, see the consent page, allow.
    let page = sign_in_and_authorize(&app, &browser, authorize_url.as_str()).await;
    let html_check = page.headers()["x-frame-options"].to_str().unwrap().to_owned();
    let callback = consent(&app, &browser, page, "approve", false).await;
    let code = query_param(&callback, "code").expect("a code");
    let token = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("the code is exchanged");

    // Assert
    assert_eq!(html_check, "DENY");
    assert!(callback.starts_with(CALLBACK));
    assert_eq!(query_param(&callback, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(query_param(&callback, "iss").as_deref(), Some(app.issuer().as_str()), "RFC 9207");
    let claims = verify_with_jwks(token.access_token().secret(), &app.jwks().await, &app.issuer(), API).unwrap();
    assert_eq!(claims["sub"], user.id);
    assert_eq!(claims["client_id"], client.client_id);
    assert_eq!(claims["scope"], "read");
    assert!(token.refresh_token().is_none(), "no offline_access, no refresh token");
}

async fn an_id_token_names_the_user_and_carries_the_nonce(backend: Backend) {
    // Arrange: a confidential client this time, authenticating with its secret.
    let app = spawn_app(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    app.create_api(API, &["read"], "RS256");
    let client = {
        let registration = latchkey::manage::clients::ClientRegistration {
            name: "Web App".into(),
            team_id: None,
            token_endpoint_auth_method: None,
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["openid profile email read".into()],
            audiences: vec![API.into()],
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            public: false,
            ..Default::default()
        };
        app.register_client(registration)
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, _) = oauth2_app(&app, &client.client_id)
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_extra_param("nonce", "n-0S6_WzA2Mj")
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.browser();
    let page = sign_in_and_authorize(&app, &browser, authorize_url.as_str()).await;
    let callback = consent(&app, &browser, page, "approve", false).await;
    let code = query_param(&callback, "code").unwrap();

    // Act
    let response = app
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.secret()),
            ],
            Some(crate::helpers::credentials(&client)),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let id_token = body["id_token"].as_str().expect("an id_token for the openid scope");
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwks = app.jwks().await;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&client.client_id]);
    validation.set_issuer(&[app.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation).expect("the id token verifies").claims;
    assert_eq!(claims["sub"], user.id);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["email"], EMAIL);
    assert_eq!(claims["name"], "Ada Lovelace");
    assert!(claims["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
    // An id token for another audience does not validate.
    let mut wrong = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    wrong.set_audience(&["someone-else"]);
    assert!(jsonwebtoken::decode::<Value>(id_token, &key, &wrong).is_err());
}

async fn denying_sends_access_denied_back_with_the_state(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = oauth2_app(&app, &client.client_id)
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.browser();

    let page = sign_in_and_authorize(&app, &browser, authorize_url.as_str()).await;
    let callback = consent(&app, &browser, page, "deny", false).await;

    assert_eq!(query_param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&callback, "state").as_deref(), Some(state.secret().as_str()));
    assert!(query_param(&callback, "code").is_none());
}

async fn a_remembered_decision_skips_the_page_until_a_new_scope_is_asked(backend: Backend) {
    // Arrange: allow `read`, remembering it.
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let oauth = oauth2_app(&app, &client.client_id);
    let url_for = |scopes: &[&str]| {
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let mut request = oauth.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge);
        for scope in scopes {
            request = request.add_scope(Scope::new((*scope).into()));
        }
        request.url().0.to_string()
    };
    let browser = app.browser();
    let page = sign_in_and_authorize(&app, &browser, &url_for(&["read"])).await;
    consent(&app, &browser, page, "approve", true).await;

    // Act
    let again = browser.get(url_for(&["read"])).send().await.unwrap();
    let wider = browser.get(url_for(&["read", "write"])).send().await.unwrap();

    // Assert: straight back with a code; a new scope asks again.
    assert_eq!(again.status(), 303, "remembered");
    assert!(query_param(&location(&again), "code").is_some());
    assert_eq!(wider.status(), 200);
    assert!(wider.text().await.unwrap().contains("Create and change your data"));
}

async fn an_unknown_client_or_redirect_uri_gets_a_page_and_never_a_redirect(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = public_client(&app);
    let base = app.url("/oauth2/authorize");
    let cases = [
        format!("{base}?response_type=code&client_id=nobody&redirect_uri={CALLBACK}&scope=read"),
        format!(
            "{base}?response_type=code&client_id={}&redirect_uri=https://evil.example.com/cb&scope=read",
            client.client_id
        ),
        format!("{base}?response_type=code&client_id={}&redirect_uri={CALLBACK}/extra&scope=read", client.client_id),
        format!("{base}?response_type=code&scope=read"),
    ];
    for url in cases {
        let response = app.browser().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{url}");
        assert!(response.headers().get("location").is_none(), "{url} redirected");
        assert!(response.text().await.unwrap().contains("This sign-in link is not valid"));
    }
}

async fn other_request_errors_go_back_to_the_client_with_the_state(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let base =
        format!("{}?client_id={}&redirect_uri={CALLBACK}&state=xyz", app.url("/oauth2/authorize"), client.client_id);
    let cases = [
        (
            "plain PKCE",
            format!("{base}&response_type=code&scope=read&code_challenge={challenge}&code_challenge_method=plain"),
            "invalid_request",
        ),
        ("no PKCE for a public client", format!("{base}&response_type=code&scope=read"), "invalid_request"),
        (
            "malformed challenge",
            format!("{base}&response_type=code&scope=read&code_challenge=abc&code_challenge_method=S256"),
            "invalid_request",
        ),
        (
            "implicit flow",
            format!("{base}&response_type=token&scope=read&code_challenge={challenge}&code_challenge_method=S256"),
            "unsupported_response_type",
        ),
        (
            "scope not allowed",
            format!("{base}&response_type=code&scope=admin&code_challenge={challenge}&code_challenge_method=S256"),
            "invalid_scope",
        ),
        (
            "no scope",
            format!("{base}&response_type=code&code_challenge={challenge}&code_challenge_method=S256"),
            "invalid_scope",
        ),
        (
            "repeated parameter",
            format!(
                "{base}&response_type=code&scope=read&scope=write&code_challenge={challenge}&code_challenge_method=S256"
            ),
            "invalid_request",
        ),
    ];
    for (name, url, error) in cases {
        let response = app.browser().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 303, "{name}");
        let callback = location(&response);
        assert!(callback.starts_with(CALLBACK), "{name}: {callback}");
        assert_eq!(query_param(&callback, "error").as_deref(), Some(error), "{name}");
        assert_eq!(query_param(&callback, "state").as_deref(), Some("xyz"), "{name}");
        assert_eq!(query_param(&callback, "iss").as_deref(), Some(app.issuer().as_str()), "{name}");
    }
}

/// Runs the flow up to the code for a public client; returns the code and its verifier.
async fn obtain_code(app: &TestApp, client_id: &str) -> (String, String) {
    obtain_code_for(app, client_id, &["read"]).await
}

/// Signs in, consents to `scopes` and returns the code and its PKCE verifier.
pub async fn obtain_code_for(app: &impl Served, client_id: &str, scopes: &[&str]) -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let oauth = oauth2_app(app, client_id);
    let mut request = oauth.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).into()));
    }
    let (authorize_url, _) = request.url();
    let browser = crate::helpers::browser();
    let page = sign_in_and_authorize(app, &browser, authorize_url.as_str()).await;
    let callback = consent(app, &browser, page, "approve", false).await;
    (query_param(&callback, "code").unwrap(), verifier.secret().clone())
}

pub async fn exchange(app: &impl Served, client_id: &str, code: &str, verifier: &str) -> reqwest::Response {
    post_form(
        app,
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", CALLBACK),
        ],
        None,
    )
    .await
}

async fn a_replayed_code_is_refused_and_its_access_token_revoked(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let introspector = app.create_client(&["client_credentials"], &[], &[]);
    let (code, verifier) = obtain_code(&app, &client.client_id).await;
    let first: Value = exchange(&app, &client.client_id, &code, &verifier).await.json().await.unwrap();
    let access_token = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.introspect(&access_token, &introspector).await["active"], true);

    // Act
    let replay = exchange(&app, &client.client_id, &code, &verifier).await;

    // Assert
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(app.introspect(&access_token, &introspector).await["active"], false);
}

async fn a_code_is_bound_to_its_verifier_client_redirect_uri_and_lifetime(backend: Backend) {
    use diesel::prelude::*;
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let other = {
        let registration = latchkey::manage::clients::ClientRegistration {
            name: "Other".into(),
            team_id: None,
            token_endpoint_auth_method: None,
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["read".into()],
            audiences: vec![],
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec![],
            public: true,
            ..Default::default()
        };
        app.register_client(registration)
    };

    let (code, verifier) = obtain_code(&app, &client.client_id).await;
    let wrong_verifier = exchange(&app, &client.client_id, &code, &format!("{verifier}x")).await;
    let (code, verifier) = obtain_code(&app, &client.client_id).await;
    let other_client = exchange(&app, &other.client_id, &code, &verifier).await;
    let (code, verifier) = obtain_code(&app, &client.client_id).await;
    let wrong_redirect = app
        .post_form(
            "/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &client.client_id),
                ("code", &code),
                ("code_verifier", &verifier),
                ("redirect_uri", "https://app.example.com/other"),
            ],
            None,
        )
        .await;
    let (code, verifier) = obtain_code(&app, &client.client_id).await;
    {
        use latchkey::db::schema::authorization_codes;
        let mut conn = app.pool.get().unwrap();
        let hash = app.state.hasher.hash(&code).into_string();
        diesel::update(authorization_codes::table.find(hash))
            .set(authorization_codes::expires_at.eq(latchkey::db::now() - chrono::TimeDelta::seconds(1)))
            .execute(&mut *conn)
            .unwrap();
    }
    let expired = exchange(&app, &client.client_id, &code, &verifier).await;
    let unknown = exchange(&app, &client.client_id, "no-such-code", &verifier).await;

    for (name, response) in [
        ("wrong verifier", wrong_verifier),
        ("another client", other_client),
        ("other redirect_uri", wrong_redirect),
        ("expired", expired),
        ("unknown", unknown),
    ] {
        assert_eq!(response.status(), 400, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{name}: {body}");
    }
}

async fn of_two_concurrent_redemptions_exactly_one_succeeds(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let (code, verifier) = obtain_code(&app, &client.client_id).await;

    let (a, b) = tokio::join!(
        exchange(&app, &client.client_id, &code, &verifier),
        exchange(&app, &client.client_id, &code, &verifier)
    );

    let mut statuses = vec![a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![200, 400]);
}

async fn userinfo_returns_the_claims_the_scopes_allow(backend: Backend) {
    // Arrange: a token with openid email profile (identity scopes alone: for Latchkey
    // itself), one without openid, and one for the client's API.
    let app = spawn_app(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let (code, verifier) = obtain_code_for(&app, &client.client_id, &["openid", "email", "profile"]).await;
    let full: Value = exchange(&app, &client.client_id, &code, &verifier).await.json().await.unwrap();
    let (code, verifier) = obtain_code_for(&app, &client.client_id, &["profile"]).await;
    let no_openid: Value = exchange(&app, &client.client_id, &code, &verifier).await.json().await.unwrap();
    let (code, verifier) = obtain_code_for(&app, &client.client_id, &["openid", "email", "read"]).await;
    let for_the_api: Value = exchange(&app, &client.client_id, &code, &verifier).await.json().await.unwrap();
    let userinfo = |token: Option<String>| {
        let mut request = app.http.get(app.url("/oauth2/userinfo"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // Act
    let ok = userinfo(full["access_token"].as_str().map(str::to_owned)).await.unwrap();
    let forbidden = userinfo(no_openid["access_token"].as_str().map(str::to_owned)).await.unwrap();
    let other_audience = userinfo(for_the_api["access_token"].as_str().map(str::to_owned)).await.unwrap();
    let garbage = userinfo(Some("not-a-token".into())).await.unwrap();
    let missing = userinfo(None).await.unwrap();

    // Assert
    assert_eq!(ok.status(), 200);
    let claims: Value = ok.json().await.unwrap();
    assert_eq!(claims, serde_json::json!({ "sub": user.id, "email": EMAIL, "name": "Ada Lovelace" }));
    assert_eq!(forbidden.status(), 403);
    assert!(forbidden.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="insufficient_scope""#));
    assert_eq!(other_audience.status(), 401, "a token for the API is not for userinfo");
    assert!(other_audience.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    assert_eq!(garbage.status(), 401);
    assert!(garbage.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="invalid_token""#));
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="latchkey""#);
}

async fn without_remembering_the_next_request_asks_again(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = public_client(&app);
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (first_url, _) = oauth2_app(&app, &client.client_id)
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.browser();
    let page = sign_in_and_authorize(&app, &browser, first_url.as_str()).await;
    consent(&app, &browser, page, "approve", false).await;

    let again = browser.get(first_url.as_str()).send().await.unwrap();

    assert_eq!(again.status(), 200, "the consent page again");
    assert!(again.text().await.unwrap().contains("wants to access your account"));
}

async fn rp_initiated_logout_returns_to_a_registered_address_with_the_state(backend: Backend) {
    // Arrange: an app that registered where to land after sign-out, and an id token.
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    app.create_api(API, &["read"], "RS256");
    let client = {
        let registration = latchkey::manage::clients::ClientRegistration {
            name: "Photo Printer".into(),
            team_id: None,
            token_endpoint_auth_method: None,
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["openid read".into()],
            audiences: vec![API.into()],
            redirect_uris: vec![CALLBACK.into()],
            post_logout_redirect_uris: vec!["https://app.example.com/signed-out".into()],
            public: true,
            ..Default::default()
        };
        app.register_client(registration)
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let oauth = oauth2_app(&app, &client.client_id);
    let (url, _) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = app.browser();
    let page = sign_in_and_authorize(&app, &browser, url.as_str()).await;
    let code = query_param(&consent(&app, &browser, page, "approve", false).await, "code").unwrap();
    let tokens: Value = exchange(&app, &client.client_id, &code, verifier.secret()).await.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let logout_url = |uri: &str, hint: &str| {
        let mut url = url::Url::parse(&app.url("/logout")).unwrap();
        url.query_pairs_mut()
            .append_pair("id_token_hint", hint)
            .append_pair("post_logout_redirect_uri", uri)
            .append_pair("state", "abc");
        url.to_string()
    };

    // Act
    let unregistered = browser.get(logout_url("https://evil.example.com/", id_token)).send().await.unwrap();
    let forged =
        browser.get(logout_url("https://app.example.com/signed-out", &format!("{id_token}x"))).send().await.unwrap();
    let confirm = browser.get(logout_url("https://app.example.com/signed-out", id_token)).send().await.unwrap();
    assert_eq!(confirm.status(), 200);
    let policy = confirm.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let html = confirm.text().await.unwrap();
    let mut form = consent_form(&html, "", false);
    form.retain(|(name, _)| name != "decision");
    let signed_out = browser.post(app.url("/logout")).form(&form).send().await.unwrap();

    // Assert
    for response in [unregistered, forged] {
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
    }
    assert!(policy.contains("form-action 'self' https://app.example.com"), "{policy}");
    assert!(html.contains("Afterwards you will return to Photo Printer."));
    assert_eq!(signed_out.status(), 303);
    assert_eq!(location(&signed_out), "https://app.example.com/signed-out?state=abc");
    assert_eq!(browser.get(app.url("/account")).send().await.unwrap().status(), 303, "the session is over");
}

/// RFC 9700 §4.8.2: a confidential client may go without PKCE, but then a code_verifier at
/// the token endpoint means someone injected a code from a flow they started with PKCE.
async fn a_verifier_for_a_code_issued_without_a_challenge_is_a_downgrade(backend: Backend) {
    // Arrange: a confidential client's code obtained without code_challenge.
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    app.create_api(API, &["read"], "RS256");
    let client = app.register_client(latchkey::manage::clients::ClientRegistration {
        name: "Server-side app".into(),
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["read".into()],
        audiences: vec![API.into()],
        redirect_uris: vec![CALLBACK.into()],
        ..Default::default()
    });
    let secret = client.client_secret.clone().expect("a confidential client has a secret");
    let obtain = || async {
        let (url, _) = oauth2_app(&app, &client.client_id)
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read".into()))
            .url();
        let browser = crate::helpers::browser();
        let page = sign_in_and_authorize(&app, &browser, url.as_str()).await;
        assert_eq!(page.headers()["referrer-policy"], "no-referrer", "nothing leaks through Referer");
        query_param(&consent(&app, &browser, page, "approve", false).await, "code").unwrap()
    };
    let redeem = |code: String, verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", CALLBACK.to_owned()),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier.to_owned()));
        }
        app.http.post(app.url("/oauth2/token")).basic_auth(&client.client_id, Some(&secret)).form(&form).send()
    };

    // Act
    let with_verifier = redeem(obtain().await, Some("a-verifier-of-forty-three-characters-or-more-0")).await.unwrap();
    let without = redeem(obtain().await, None).await.unwrap();

    // Assert
    assert_eq!(with_verifier.status(), 400);
    let body: Value = with_verifier.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("no code_challenge"), "{body}");
    assert_eq!(without.status(), 200, "the same client without a verifier gets its tokens");
}

crate::on_both_backends!(
    a_verifier_for_a_code_issued_without_a_challenge_is_a_downgrade,
    rp_initiated_logout_returns_to_a_registered_address_with_the_state,
    without_remembering_the_next_request_asks_again,
    userinfo_returns_the_claims_the_scopes_allow,
    the_code_flow_with_pkce_gives_the_app_tokens_for_the_signed_in_user,
    an_id_token_names_the_user_and_carries_the_nonce,
    denying_sends_access_denied_back_with_the_state,
    a_remembered_decision_skips_the_page_until_a_new_scope_is_asked,
    an_unknown_client_or_redirect_uri_gets_a_page_and_never_a_redirect,
    other_request_errors_go_back_to_the_client_with_the_state,
    a_replayed_code_is_refused_and_its_access_token_revoked,
    a_code_is_bound_to_its_verifier_client_redirect_uri_and_lifetime,
    of_two_concurrent_redemptions_exactly_one_succeeds,
);
