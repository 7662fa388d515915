//! The connect flow: a tool asks for an API key through the device flow
//! (`requested_token_type` = Latchkey's API-key type), the person chooses the key's kind and
//! reach at `/device`, and the tool receives the key once. Then `latchkey login` and
//! `logout`, which are that flow run by Latchkey's own command line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::Locator;
use oauth2::basic::BasicClient;
use oauth2::{ClientId, DeviceAuthorizationUrl, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl};
use serde_json::{Value, json};

use crate::authorize::query_param;
use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
use crate::helpers::{API, Backend, TestApp, post_form, spawn_app};
use crate::login::{EMAIL, PASSWORD, csrf_token, sign_in};

const API_KEY_TYPE: &str = "urn:latchkey:params:oauth:token-type:api-key";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const CLI_CLIENT: &str = "latchkey-cli";

/// A person with `role` (`owner` or `member`); their id.
fn person(app: &TestApp, email: &str, role: &str) -> String {
    let mut conn = app.pool.get().unwrap();
    let registration = latchkey::manage::users::UserRegistration {
        email: email.into(),
        name: Some("Grace Hopper".into()),
        password: latchkey::passwords::PasswordHasher::new().hash(PASSWORD).unwrap(),
        role: Some(role.into()),
    };
    latchkey::manage::users::register_user(&mut conn, &latchkey::manage::Caller::system(), registration).unwrap().id
}

/// Asks for a key as a tool would, without a library: the device authorization response.
async fn ask_for_a_key(app: &TestApp, client_id: &str) -> Value {
    let form = [("client_id", client_id), ("requested_token_type", API_KEY_TYPE)];
    let response = post_form(app, "/oauth2/device_authorization", &form, None).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn poll(app: &TestApp, device_code: &str) -> (u16, Value) {
    let form = [("grant_type", DEVICE_GRANT), ("client_id", CLI_CLIENT), ("device_code", device_code)];
    let response = post_form(app, "/oauth2/token", &form, None).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// A cookie-keeping client signed in as `email`.
async fn signed_in(app: &TestApp, email: &str) -> reqwest::Client {
    let browser = app.browser();
    let response = sign_in(app, &browser, email, PASSWORD, "/").await;
    assert_eq!(response.status(), 303);
    browser
}

async fn page(person: &reqwest::Client, url: &str) -> (u16, String) {
    let response = person.get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn decide(app: &TestApp, person: &reqwest::Client, form: &[(&str, &str)]) -> (u16, String) {
    let response = person.post(app.url("/device/decide")).form(form).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_tool_receives_a_restricted_key_with_exactly_the_permissions_ticked_in_chromium() {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    let owner_id = person(&app, EMAIL, "owner");
    let tool = BasicClient::new(ClientId::new(CLI_CLIENT.into()))
        .set_device_authorization_url(DeviceAuthorizationUrl::new(app.url("/oauth2/device_authorization")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap());

    // The tool asks for a key, with the oauth2 crate, and polls while the person chooses.
    let details: StandardDeviceAuthorizationResponse = tool
        .exchange_device_code()
        .add_extra_param("requested_token_type", API_KEY_TYPE)
        .request_async(&app.http)
        .await
        .expect("a device code");
    let address = details.verification_uri_complete().unwrap().secret().clone();
    let http = app.http.clone();
    let polling = tokio::spawn(async move {
        tool.exchange_device_access_token(&details)
            .request_async(&http, tokio::time::sleep, Some(Duration::from_secs(90)))
            .await
    });
    let mut pages = Vec::new();
    browser.goto(&address).await.unwrap();
    wait_for_url(&browser, &app.url("/login")).await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;
    let text = wait_for_text(&browser, "Latchkey command line asks for an API key").await;
    assert!(text.contains("Tenant owner") && text.contains("Restricted"), "an owner may create every kind: {text}");
    pages.push(browser.source().await.unwrap());
    screenshot(&browser, "connect-kinds").await;
    click(&browser, "a[href$='kind=restricted']").await;
    wait_for_text(&browser, "A restricted key").await;
    browser.find(Locator::Id("name")).await.unwrap().send_keys("deploy bot").await.unwrap();
    click(&browser, "#perm-clients-read").await;
    click(&browser, "#perm-audit_log-read").await;
    browser.find(Locator::Css("#expires option[value='30']")).await.unwrap().click().await.unwrap();
    pages.push(browser.source().await.unwrap());
    screenshot(&browser, "connect-key").await;
    click(&browser, "button[value=allow]").await;
    wait_for_text(&browser, "Key on its way").await;
    pages.push(browser.source().await.unwrap());
    screenshot(&browser, "connect-done").await;

    // The tool's poll ends with the key: restricted, exactly what was ticked, for 30 days.
    let answer = polling.await.unwrap().expect("the key once the person allowed");
    let key = answer.access_token().secret().clone();
    assert!(key.starts_with("rk_test_"), "a restricted key");
    assert!(answer.refresh_token().is_none());
    let lifetime = answer.expires_in().expect("an expiring key says when").as_secs();
    assert!((29 * 86_400..=30 * 86_400).contains(&lifetime), "{lifetime}");
    let (status, current) = app.api("GET", "/api-keys/current", &key, None).await;
    assert_eq!(status, 200, "{current}");
    assert_eq!(current["kind"], "restricted");
    assert_eq!(current["name"], "deploy bot");
    let mut permissions: Vec<&str> =
        current["permissions"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    permissions.sort_unstable();
    assert_eq!(permissions, ["audit_log:read", "clients:read"], "{current}");
    assert_eq!(current["created_by_user_id"], owner_id.as_str());
    assert_eq!(current["created_through_client_id"], CLI_CLIENT);
    assert_eq!(app.api("GET", "/clients", &key, None).await.0, 200, "clients:read works");
    assert_eq!(app.api("GET", "/users", &key, None).await.0, 403, "nothing that was not ticked");

    // Recorded as made by the person through the tool, and listed like any key.
    let mut conn = app.pool.get().unwrap();
    let events = latchkey::db::audit::list_audit_events(&mut conn, 100).unwrap();
    let created = events.iter().find(|e| e.action == "api_key.created").expect("the creation is audited");
    assert_eq!(created.actor_id.as_deref(), Some(owner_id.as_str()));
    assert_eq!(created.target_id.as_deref(), current["id"].as_str());
    let details: Value = serde_json::from_str(&created.details).unwrap();
    assert_eq!(details["through_client_id"], CLI_CLIENT, "{details}");
    browser.goto(&app.url("/dashboard/api-keys")).await.unwrap();
    let listed = wait_for_text(&browser, "deploy bot").await;
    assert!(listed.contains("by ada@example.com") && listed.contains("through Latchkey command line"), "{listed}");
    screenshot(&browser, "connect-listed").await;
    pages.push(browser.source().await.unwrap());

    // The key was never on a page, nor anywhere but the tool's answer.
    for html in &pages {
        assert!(!html.contains(&key) && !html.contains(&key[8..]), "the key on a page");
    }
    let stored: Vec<String> = diesel::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT device_code_hash || user_code_hash || COALESCE(key_request, '') AS v FROM device_authorizations",
        ),
        &mut *conn,
    )
    .map(|rows: Vec<Row>| rows.into_iter().map(|r| r.v).collect())
    .unwrap();
    assert!(stored.iter().all(|row| !row.contains(&key[8..])), "no key kept with the request");
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

async fn a_member_chooses_only_among_the_kinds_they_may_create(backend: Backend) {
    let app = spawn_app(backend).await;
    let member_id = person(&app, EMAIL, "member");
    let asked = ask_for_a_key(&app, CLI_CLIENT).await;
    let (user_code, device_code) = (asked["user_code"].as_str().unwrap(), asked["device_code"].as_str().unwrap());
    // A link that names a kind keeps it through signing in.
    let visitor = app.browser();
    let to_login = visitor.get(app.url(&format!("/device?user_code={user_code}&kind=personal"))).send().await.unwrap();
    assert_eq!(to_login.status(), 303);
    let login = to_login.headers()["location"].to_str().unwrap();
    let return_to = query_param(&app.url(login), "return_to").unwrap();
    assert_eq!(return_to, format!("/device?user_code={user_code}&kind=personal"));
    let member = signed_in(&app, EMAIL).await;

    // A member may create personal keys only: that is the one kind offered, and its form shows.
    let (status, html) = page(&member, &app.url(&format!("/device?user_code={user_code}"))).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("A personal key"), "{html}");
    assert!(!html.contains("Tenant owner") && !html.contains("value=\"tenant_owner\""), "{html}");
    let (_, html) = page(&member, &app.url(&format!("/device?user_code={user_code}&kind=tenant_owner"))).await;
    assert!(!html.contains("A tenant owner key"), "a kind not on offer is not shown: {html}");

    // A forged form asking for a kind the member may not create is refused, and nothing is decided.
    let token = csrf_token(&html);
    let forged = [
        ("csrf_token", token.as_str()),
        ("user_code", user_code),
        ("decision", "allow"),
        ("kind", "tenant_owner"),
        ("name", "everything"),
    ];
    let (status, html) = decide(&app, &member, &forged).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("Choose a kind of key you may create."), "{html}");
    let restricted = [
        ("csrf_token", token.as_str()),
        ("user_code", user_code),
        ("decision", "allow"),
        ("kind", "restricted"),
        ("name", "sneaky"),
        ("permissions", "users:admin"),
    ];
    assert_eq!(decide(&app, &member, &restricted).await.0, 400);
    assert_eq!(poll(&app, device_code).await.1["error"], "authorization_pending");

    // The name is checked on the page, before the device hears anything.
    let nameless =
        [("csrf_token", token.as_str()), ("user_code", user_code), ("decision", "allow"), ("kind", "personal")];
    let (status, html) = decide(&app, &member, &nameless).await;
    assert_eq!(status, 400);
    assert!(html.contains("name-error"), "{html}");

    // A personal key, then: delivered once, in RFC 8693's shape.
    let personal = [
        ("csrf_token", token.as_str()),
        ("user_code", user_code),
        ("decision", "allow"),
        ("kind", "personal"),
        ("name", "laptop"),
        ("expires", "never"),
    ];
    let (status, html) = decide(&app, &member, &personal).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Key on its way"), "{html}");
    let (status, answer) = poll(&app, device_code).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["issued_token_type"], API_KEY_TYPE);
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer.get("expires_in").is_none() && answer.get("refresh_token").is_none(), "{answer}");
    let key = answer["access_token"].as_str().unwrap();
    assert!(key.starts_with("sk_test_"), "a personal key is an sk_ key");
    let (status, me) = app.api("GET", "/users/me", key, None).await;
    assert_eq!((status, me["id"].as_str()), (200, Some(member_id.as_str())), "{me}");
    let (_, listed) = app.api("GET", "/api-keys", key, None).await;
    assert!(listed["data"].as_array().unwrap().iter().any(|k| k["name"] == "laptop"), "{listed}");
    let (status, again) = poll(&app, device_code).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "delivered once: {again}");
    let (_, html) = page(&member, &app.url("/dashboard/api-keys")).await;
    assert!(html.contains("laptop") && !html.contains(key), "listed, never shown");
}

async fn a_key_is_made_only_if_the_person_may_still_have_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner_id = person(&app, EMAIL, "owner");
    let asked = ask_for_a_key(&app, CLI_CLIENT).await;
    let (user_code, device_code) = (asked["user_code"].as_str().unwrap(), asked["device_code"].as_str().unwrap());
    let owner = signed_in(&app, EMAIL).await;
    let (_, html) = page(&owner, &app.url(&format!("/device?user_code={user_code}&kind=tenant_owner"))).await;
    let token = csrf_token(&html);
    let form = [
        ("csrf_token", token.as_str()),
        ("user_code", user_code),
        ("decision", "allow"),
        ("kind", "tenant_owner"),
        ("name", "break glass"),
    ];
    assert_eq!(decide(&app, &owner, &form).await.0, 200);

    // Between the approval and the collection, the person stops being an owner.
    let second_owner = app.owner_key();
    let (status, body) =
        app.api("PATCH", &format!("/users/{owner_id}"), &second_owner, Some(json!({ "role": "member" }))).await;
    assert_eq!(status, 200, "{body}");
    let (status, refused) = poll(&app, device_code).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")), "{refused}");
    assert!(refused["error_description"].as_str().unwrap().contains("only a tenant owner"), "{refused}");
    let (_, keys) = app.api("GET", "/api-keys", &second_owner, None).await;
    assert!(!keys.to_string().contains("break glass"), "no key was made: {keys}");
}

async fn requests_for_a_key_are_checked_when_made(backend: Backend) {
    let app = spawn_app(backend).await;
    let ask = |form: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = post_form(app, "/oauth2/device_authorization", &form, None).await;
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    // Only a client registered for the management API may ask for its keys.
    app.create_api(API, &["read"], "RS256");
    let other = app
        .register_client(latchkey::manage::clients::ClientRegistration {
            name: "Some tool".into(),
            grant_types: vec![DEVICE_GRANT.into()],
            scopes: vec!["read".into()],
            audiences: vec![API.into()],
            public: true,
            ..Default::default()
        })
        .client_id
        .clone();
    let (status, body) = ask(vec![("client_id", other.clone()), ("requested_token_type", API_KEY_TYPE.into())]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");
    let (status, body) = ask(vec![
        ("client_id", CLI_CLIENT.into()),
        ("requested_token_type", API_KEY_TYPE.into()),
        ("scope", "read".into()),
    ])
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "the person chooses: {body}");
    let (status, body) = ask(vec![
        ("client_id", CLI_CLIENT.into()),
        ("requested_token_type", "urn:ietf:params:oauth:token-type:saml2".into()),
    ])
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    // The command line's client asks for keys and nothing else.
    let (status, body) = ask(vec![("client_id", CLI_CLIENT.into()), ("scope", "read".into())]).await;
    assert_eq!(status, 400, "{body}");

    // It is built in: listed, but neither changed nor deleted.
    let owner = app.owner_key();
    let (_, clients) = app.api("GET", "/clients", &owner, None).await;
    assert!(clients["data"].as_array().unwrap().iter().any(|c| c["client_id"] == CLI_CLIENT), "{clients}");
    assert_eq!(app.api("DELETE", &format!("/clients/{CLI_CLIENT}"), &owner, None).await.0, 409);
    let renamed = Some(json!({ "grant_types": ["client_credentials"] }));
    assert_eq!(app.api("PATCH", &format!("/clients/{CLI_CLIENT}"), &owner, renamed).await.0, 409);
}

crate::on_both_backends!(
    a_web_tool_gets_a_key_through_the_code_flow_and_a_replayed_code_revokes_it,
    a_member_chooses_only_among_the_kinds_they_may_create,
    a_key_is_made_only_if_the_person_may_still_have_it,
    requests_for_a_key_are_checked_when_made,
);

/// `latchkey ARGS` as a person at a terminal runs it: their own configuration directory, no
/// database, the server named by `--server`.
fn cli(config_home: &std::path::Path) -> Command {
    let binary = std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned());
    let mut command = Command::new(binary);
    command
        .current_dir(config_home)
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .env_remove("LATCHKEY_CREDENTIALS")
        .env_remove("LATCHKEY_SERVER")
        .env_remove("LATCHKEY_DATABASE_URL")
        .env("RUST_LOG", "warn");
    command
}

fn json_of(output: &std::process::Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed ({}): {stderr}", output.status);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("no JSON ({e}); stderr: {stderr}"))
}

#[tokio::test]
async fn latchkey_login_then_manages_the_server_through_its_api_and_logout_revokes_the_key() {
    let app = spawn_app(Backend::Sqlite).await;
    person(&app, EMAIL, "owner");
    let home = tempfile::tempdir().unwrap();
    let server = app.url("");

    // Before signing in, a remote command says what to do.
    let output = cli(home.path()).args(["client", "list", "--server", &server]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("latchkey login --server"), "{output:?}");

    // `latchkey login` shows where to go and waits; the person approves in the browser.
    let mut login = cli(home.path())
        .args(["login", "--server", &server, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = login.stderr.take().unwrap();
    let instructions = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("Waiting") {
                break;
            }
        }
        seen
    })
    .await
    .unwrap();
    let address = instructions
        .split_whitespace()
        .find(|word| word.contains("/device?user_code="))
        .unwrap_or_else(|| panic!("the address to open: {instructions}"));
    assert!(address.ends_with("&kind=personal"), "the page opens on a personal key: {address}");
    let owner = signed_in(&app, EMAIL).await;
    let (status, html) = page(&owner, address).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("A personal key"), "{html}");
    let user_code = query_param(address, "user_code").unwrap();
    let user_code = user_code.as_str();
    let token = csrf_token(&html);
    let form = [
        ("csrf_token", token.as_str()),
        ("user_code", user_code),
        ("decision", "allow"),
        ("kind", "personal"),
        ("name", "terminal"),
    ];
    assert_eq!(decide(&app, &owner, &form).await.0, 200);
    let output = tokio::task::spawn_blocking(move || login.wait_with_output()).await.unwrap().unwrap();
    let signed_in = json_of(&output);
    assert_eq!(signed_in["kind"], "personal");
    assert_eq!(signed_in["name"], "terminal");
    assert_eq!(signed_in["server"], server);

    // The key is kept in the user's configuration directory, readable by them only, and never printed.
    let file = home.path().join("latchkey").join("credentials.json");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let key = kept["servers"][&server]["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_test_"));
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains(&key)
            && !String::from_utf8_lossy(&output.stderr).contains(&key)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // Management commands now act on the server through its API: --server or LATCHKEY_SERVER.
    let created = cli(home.path())
        .args(["client", "create", "--server", &server, "--name", "Reports", "--grant-type", "client_credentials"])
        .arg("--json")
        .output()
        .unwrap();
    let created = json_of(&created);
    assert!(created["client_secret"].as_str().is_some(), "{created}");
    let listed = cli(home.path()).args(["client", "list", "--json"]).env("LATCHKEY_SERVER", &server).output().unwrap();
    let listed = json_of(&listed);
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"Reports") && names.contains(&"Latchkey command line"), "{listed}");
    assert!(listed.as_array().unwrap().iter().all(|c| c.get("client_secret").is_none()));
    let mut conn = app.pool.get().unwrap();
    let events = latchkey::db::audit::list_audit_events(&mut conn, 100).unwrap();
    let registered = events.iter().find(|e| e.action == "client.created").expect("audited");
    assert!(
        registered.details.contains(&kept["servers"][&server]["key_id"].as_str().unwrap().to_owned()),
        "as the key"
    );

    // `latchkey logout` revokes the key on the server and forgets it here.
    let output = cli(home.path()).args(["logout", "--server", &server, "--json"]).output().unwrap();
    let signed_out = json_of(&output);
    assert_eq!(signed_out["revoked"], true);
    assert!(!file.exists(), "nothing kept");
    assert_eq!(app.api("GET", "/users/me", &key, None).await.0, 401, "revoked on the server");
    let output = cli(home.path()).args(["logout", "--server", &server]).output().unwrap();
    assert!(!output.status.success() && String::from_utf8_lossy(&output.stderr).contains("not signed in"));
}

/// A web tool: a confidential client with the code flow, registered for the management API.
fn web_tool(app: &TestApp) -> latchkey::manage::clients::RegisteredClient {
    app.register_client(latchkey::manage::clients::ClientRegistration {
        name: "Dashboard Sync".into(),
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["read".into()],
        audiences: vec![format!("{}/api/v1", app.issuer())],
        redirect_uris: vec![crate::authorize::CALLBACK.into()],
        ..Default::default()
    })
}

async fn a_web_tool_gets_a_key_through_the_code_flow_and_a_replayed_code_revokes_it(backend: Backend) {
    use oauth2::{AuthUrl, AuthorizationCode, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl};

    use crate::authorize::{CALLBACK, consent_form, location, sign_in_and_authorize};

    let app = spawn_app(backend).await;
    person(&app, EMAIL, "owner");
    let registered = web_tool(&app);
    let tool = BasicClient::new(ClientId::new(registered.client_id.clone()))
        .set_client_secret(ClientSecret::new(registered.client_secret.clone().unwrap()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = tool
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("requested_token_type", API_KEY_TYPE)
        .set_pkce_challenge(challenge)
        .url();

    // The consent page offers the kinds of key; the person picks restricted and ticks two.
    let browser = app.browser();
    let page = sign_in_and_authorize(&app, &browser, url.as_str()).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Dashboard Sync</span> asks for an API key") && html.contains("Which kind of key?"),
        "{html}"
    );
    assert!(!html.contains("Remember this decision"), "a key is chosen each time");
    let link = html
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap().replace("&#38;", "&").replace("&amp;", "&"))
        .find(|href| href.ends_with("kind=restricted"))
        .expect("a link for restricted keys");
    let html = browser.get(app.url(&link)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("A restricted key"), "{html}");
    let mut form = consent_form(&html, "approve", false);
    form.extend([
        ("name".to_owned(), "sync".to_owned()),
        ("permissions".to_owned(), "clients:read".to_owned()),
        ("permissions".to_owned(), "teams:read".to_owned()),
        ("expires".to_owned(), "90".to_owned()),
    ]);
    let decided = browser.post(app.url("/oauth2/authorize")).form(&form).send().await.unwrap();
    assert_eq!(decided.status(), 303, "{}", decided.text().await.unwrap());
    let back = location(&decided);
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.secret().as_str()));
    let code = query_param(&back, "code").expect("a code");

    // The tool exchanges the code, with its secret and the PKCE verifier, for the key.
    let answer = tool
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("the key");
    let key = answer.access_token().secret().clone();
    assert!(key.starts_with("rk_test_"));
    let (_, current) = app.api("GET", "/api-keys/current", &key, None).await;
    let mut permissions: Vec<&str> =
        current["permissions"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    permissions.sort_unstable();
    assert_eq!(permissions, ["clients:read", "teams:read"], "{current}");

    // The code works once; a replay is theft, and the key it made stops working.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", registered.client_id.as_str()),
        ("client_secret", registered.client_secret.as_deref().unwrap()),
    ];
    let replay = post_form(&app, "/oauth2/token", &form, None).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(app.api("GET", "/api-keys/current", &key, None).await.0, 401, "revoked by the replay");

    // prompt=none cannot give a key: a person must choose it.
    let (url, _) = tool
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("requested_token_type", API_KEY_TYPE)
        .add_extra_param("prompt", "none")
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();
    let silent = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(query_param(&location(&silent), "error").as_deref(), Some("consent_required"));
}

#[tokio::test]
async fn the_code_flow_consent_page_offers_the_key_in_chromium() {
    use oauth2::{AuthUrl, CsrfToken, PkceCodeChallenge, RedirectUrl};

    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    person(&app, EMAIL, "member");
    let registered = web_tool(&app);
    let (url, _) = BasicClient::new(ClientId::new(registered.client_id.clone()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_redirect_uri(RedirectUrl::new(crate::authorize::CALLBACK.into()).unwrap())
        .authorize_url(CsrfToken::new_random)
        .add_extra_param("requested_token_type", API_KEY_TYPE)
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();
    browser.goto(url.as_str()).await.unwrap();
    wait_for_url(&browser, &app.url("/login")).await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;
    // A member may create personal keys only: the one kind, its form at once.
    wait_for_text(&browser, "A personal key").await;
    screenshot(&browser, "connect-consent").await;
    browser.find(Locator::Id("name")).await.unwrap().send_keys("sync").await.unwrap();
    click(&browser, "button[value=approve]").await;
    let back = wait_for_url(&browser, crate::authorize::CALLBACK).await;
    assert!(back.query_pairs().any(|(name, _)| name == "code"), "{back}");
}
