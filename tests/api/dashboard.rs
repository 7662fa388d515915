//! The dashboard: the first-start setup link, and API keys made, shown once, rotated and
//! revoked in a real browser; then who sees and makes which keys, over plain HTTP. Each key
//! made in the browser is tried on the management API for exactly the access chosen.

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url, wait_for_url_where};
use crate::helpers::{Backend, TestApp, spawn_app};
use crate::login::{PASSWORD, csrf_token, sign_in};
use crate::on_both_backends;

const OWNER_EMAIL: &str = "grace@example.com";

async fn fill(browser: &Client, id: &str, value: &str) {
    let field = browser.find(Locator::Id(id)).await.unwrap_or_else(|_| panic!("#{id} on the page"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

async fn choose(browser: &Client, select: &str, value: &str) {
    click(browser, &format!("select#{select} option[value=\"{value}\"]")).await;
}

/// Fills the create form for `kind` (already open), submits it, and reads the key the next
/// page shows.
async fn create_key(browser: &Client, app: &TestApp, kind: &str, name: &str, extra: &[&str]) -> String {
    browser.goto(&app.url(&format!("/dashboard/api-keys/new?kind={kind}"))).await.unwrap();
    fill(browser, "name", name).await;
    for css in extra {
        click(browser, css).await;
    }
    click(browser, "form.wide-form button[type=submit]").await;
    wait_for_url(browser, &app.url("/dashboard/secret")).await;
    wait_for_text(browser, "It will not be shown again").await;
    browser.find(Locator::Id("new-secret")).await.unwrap().prop("value").await.unwrap().expect("the key is shown")
}

async fn status(app: &TestApp, method: &str, path: &str, key: &str, body: Option<Value>) -> u16 {
    app.api(method, path, key, body).await.0
}

async fn the_first_person_sets_up_latchkey_and_makes_every_kind_of_key(backend: Backend) {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(backend).await;
    let link = app.setup_link.clone().expect("a fresh database offers a setup link");
    assert!(link.contains("/setup?token="), "{link}");

    // The link opens the setup page; a wrong token does not.
    let forged = app.http.get(app.url("/setup?token=forged")).send().await.unwrap();
    assert_eq!(forged.status(), 404);
    browser.goto(&link).await.unwrap();
    wait_for_text(&browser, "Create the owner account").await;
    screenshot(&browser, "setup").await;
    fill(&browser, "name", "Grace Hopper").await;
    fill(&browser, "email", OWNER_EMAIL).await;
    fill(&browser, "password", "short").await;
    browser.execute("document.getElementById('password').removeAttribute('minlength')", vec![]).await.unwrap();
    click(&browser, "button[type=submit]").await;
    let text = wait_for_text(&browser, "at least").await;
    assert!(text.contains("Set up Latchkey"), "a short password comes back to the form: {text}");
    let by_field = browser.find(Locator::Id("password-error")).await.unwrap().text().await.unwrap();
    assert!(by_field.contains("at least 8 characters"), "the error sits by the password: {by_field}");
    let password = browser.find(Locator::Id("password")).await.unwrap();
    assert_eq!(password.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert_eq!(password.attr("aria-describedby").await.unwrap().as_deref(), Some("password-hint password-error"));
    screenshot(&browser, "setup-error").await;
    assert_eq!(
        browser.find(Locator::Id("email")).await.unwrap().prop("value").await.unwrap().as_deref(),
        Some(OWNER_EMAIL)
    );
    fill(&browser, "password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    wait_for_url(&browser, &app.url("/dashboard")).await;
    wait_for_text(&browser, "Welcome, Grace Hopper").await;
    screenshot(&browser, "dashboard-overview").await;

    // The link worked once; the owner signs out and in again, and lands on the dashboard.
    assert_eq!(app.http.get(&link).send().await.unwrap().status(), 404, "the link works once");
    click(&browser, ".who button[type=submit]").await;
    wait_for_text(&browser, "You have signed out.").await;
    browser.goto(&app.url("/")).await.unwrap();
    wait_for_url(&browser, &app.url("/login")).await;
    fill(&browser, "email", OWNER_EMAIL).await;
    fill(&browser, "password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    wait_for_url(&browser, &app.url("/dashboard")).await;

    let ops = app.owner_key();
    let (_, team) = app.api("POST", "/teams", &ops, Some(json!({ "name": "Payments" }))).await;
    let team_id = team["id"].as_str().unwrap().to_owned();

    // The kind chooser offers all five to an owner.
    browser.goto(&app.url("/dashboard/api-keys/new")).await.unwrap();
    let text = wait_for_text(&browser, "Which kind of key?").await;
    for kind in ["Personal", "Service account", "Team", "Tenant owner", "Restricted"] {
        assert!(text.contains(kind), "{kind} offered: {text}");
    }
    screenshot(&browser, "api-key-kinds").await;

    // A restricted key with two boxes ticked: it does exactly that.
    browser.goto(&app.url("/dashboard/api-keys/new?kind=restricted")).await.unwrap();
    wait_for_text(&browser, "Create a restricted key").await;
    screenshot(&browser, "api-key-new-restricted").await;
    let restricted =
        create_key(&browser, &app, "restricted", "Billing sync", &["#perm-clients-read", "#perm-audit_log-read"]).await;
    assert!(restricted.starts_with("rk_test_"), "{restricted}");
    screenshot(&browser, "api-key-shown-once").await;
    assert_eq!(status(&app, "GET", "/clients", &restricted, None).await, 200);
    assert_eq!(status(&app, "GET", "/audit-log", &restricted, None).await, 200);
    assert_eq!(status(&app, "GET", "/users", &restricted, None).await, 403);
    let client = json!({ "name": "x", "grant_types": ["client_credentials"], "scopes": [], "audiences": [] });
    assert_eq!(status(&app, "POST", "/clients", &restricted, Some(client)).await, 403);
    let (_, current) = app.api("GET", "/api-keys/current", &restricted, None).await;
    assert_eq!(current["permissions"], json!(["clients:read", "audit_log:read"]));

    // Reloading or going back never shows the key again.
    browser.refresh().await.unwrap();
    let text = wait_for_text(&browser, "Nothing to show").await;
    assert!(!text.contains(&restricted));
    browser.back().await.unwrap();
    browser.goto(&app.url("/dashboard/secret")).await.unwrap();
    let text = wait_for_text(&browser, "Nothing to show").await;
    assert!(!text.contains(&restricted));

    // A service key whose new service account may read everything.
    let service = create_key(&browser, &app, "service", "Reporting", &["#perm-read"]).await;
    assert_eq!(status(&app, "GET", "/users", &service, None).await, 200);
    assert_eq!(status(&app, "POST", "/teams", &service, Some(json!({ "name": "No" }))).await, 403);
    // A second key for the same service account: the account's permissions, none of its own.
    let second = create_key(&browser, &app, "service", "Reporting (spare)", &["#account-1"]).await;
    let (_, first_view) = app.api("GET", "/api-keys/current", &service, None).await;
    let (_, second_view) = app.api("GET", "/api-keys/current", &second, None).await;
    assert_eq!(first_view["service_account_id"], second_view["service_account_id"]);
    assert_eq!(status(&app, "GET", "/users", &second, None).await, 200);

    // A team key for Payments as viewer.
    let team_key = create_key(&browser, &app, "team", "Payments CI", &["select#team_role option[value=viewer]"]).await;
    assert_eq!(status(&app, "GET", &format!("/teams/{team_id}"), &team_key, None).await, 200);
    let renamed = Some(json!({ "name": "Renamed" }));
    assert_eq!(status(&app, "PATCH", &format!("/teams/{team_id}"), &team_key, renamed).await, 403);
    assert_eq!(status(&app, "GET", "/users", &team_key, None).await, 403);

    // A tenant-owner key and a personal key reach everything (the owner is an owner).
    let owner_key = create_key(&browser, &app, "tenant_owner", "Break glass", &[]).await;
    assert_eq!(status(&app, "GET", "/signing-keys", &owner_key, None).await, 200);
    let personal = create_key(&browser, &app, "personal", "Laptop", &[]).await;
    let (_, current) = app.api("GET", "/api-keys/current", &personal, None).await;
    assert_eq!(current["kind"], "personal");
    assert_eq!(status(&app, "GET", "/audit-log", &personal, None).await, 200);

    // The list shows all five (and the CLI's) as prefix…last four, never a key.
    browser.goto(&app.url("/dashboard/api-keys")).await.unwrap();
    let text = wait_for_text(&browser, "Billing sync").await;
    for (name, key) in
        [("Billing sync", &restricted), ("Reporting", &service), ("Payments CI", &team_key), ("Laptop", &personal)]
    {
        assert!(text.contains(name), "{name} listed");
        assert!(!text.contains(key.as_str()), "{name}'s key is not shown in the list");
        assert!(text.contains(&key[key.len() - 4..]), "{name}'s last four are shown");
    }
    assert!(text.contains("viewer in Payments"), "{text}");
    screenshot(&browser, "api-keys").await;

    // Filters narrow the list.
    browser.goto(&app.url("/dashboard/api-keys?kind=team")).await.unwrap();
    let text = wait_for_text(&browser, "Payments CI").await;
    assert!(!text.contains("Billing sync"));

    // Revoke the restricted key on its confirmation page: it stops at once.
    browser.goto(&app.url("/dashboard/api-keys?kind=restricted")).await.unwrap();
    wait_for_text(&browser, "Billing sync").await;
    click(&browser, "a.danger-link").await;
    wait_for_text(&browser, "stops working at once").await;
    screenshot(&browser, "api-key-revoke").await;
    click(&browser, "button.danger").await;
    wait_for_text(&browser, "The key was revoked").await;
    assert_eq!(status(&app, "GET", "/clients", &restricted, None).await, 401);

    // Rotate the personal key with no grace: the old one stops, the new one (shown once) works.
    browser.goto(&app.url("/dashboard/api-keys?kind=personal")).await.unwrap();
    wait_for_text(&browser, "Laptop").await;
    click(&browser, ".row-actions a:not(.danger-link)").await;
    wait_for_text(&browser, "The old key stops working").await;
    screenshot(&browser, "api-key-rotate").await;
    choose(&browser, "grace_secs", "0").await;
    click(&browser, "button.primary").await;
    wait_for_url(&browser, &app.url("/dashboard/secret")).await;
    let rotated = browser.find(Locator::Id("new-secret")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert_ne!(rotated, personal);
    assert_eq!(status(&app, "GET", "/api-keys/current", &personal, None).await, 401);
    assert_eq!(status(&app, "GET", "/api-keys/current", &rotated, None).await, 200);

    // Every change is in the audit log with the owner as actor.
    let owner_id = {
        let (_, users) = app.api("GET", "/users", &ops, None).await;
        users["data"].as_array().or(users.as_array()).unwrap().iter().find(|u| u["email"] == OWNER_EMAIL).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (_, log) = app.api("GET", "/audit-log?limit=200", &ops, None).await;
    let by_owner = |action: &str| {
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action && e["actor_id"] == owner_id.as_str())
            .count()
    };
    assert_eq!(by_owner("setup.completed"), 1);
    assert_eq!(by_owner("api_key.created"), 6);
    assert_eq!(by_owner("api_key.deleted"), 1);
    assert_eq!(by_owner("api_key.rotated"), 1);

    // And on the dashboard's audit log, filtered by actor and action, named as people know them.
    browser.goto(&app.url("/dashboard/audit-log")).await.unwrap();
    wait_for_text(&browser, "setup.completed").await;
    screenshot(&browser, "audit-log").await;
    fill(&browser, "actor", OWNER_EMAIL).await;
    fill(&browser, "action", "api_key.deleted").await;
    click(&browser, ".filters button[type=submit]").await;
    // The unfiltered page shows api_key.deleted too: wait for the filtered one.
    wait_for_url_where(&browser, "the filtered audit log", |url| {
        url.query_pairs().any(|(name, value)| name == "action" && value == "api_key.deleted")
    })
    .await;
    let text = wait_for_text(&browser, "api_key.deleted").await;
    assert!(text.contains(OWNER_EMAIL) && text.contains("Billing sync (rk_test_"), "{text}");
    assert!(!text.contains("api_key.created"), "{text}");
    browser.close().await.unwrap();
}

/// A signed-in reqwest client for a new user with `role` in `team` (none: no team).
async fn person(app: &TestApp, email: &str, team: Option<(&str, &str)>, ops: &str) -> reqwest::Client {
    let user = app.create_user(email, PASSWORD);
    if let Some((team, role)) = team {
        let body = json!({ "role": role });
        let (code, _) = app.api("PUT", &format!("/teams/{team}/members/{}", user.id), ops, Some(body)).await;
        assert_eq!(code, 200);
    }
    let client = app.browser();
    assert_eq!(sign_in(app, &client, email, PASSWORD, "/dashboard").await.status(), 303);
    client
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn team_admins_and_members_see_and_make_only_what_they_may(backend: Backend) {
    let app = spawn_app(backend).await;
    let ops = app.owner_key();
    let mut teams = Vec::new();
    for name in ["Payments", "Search"] {
        let (_, team) = app.api("POST", "/teams", &ops, Some(json!({ "name": name }))).await;
        teams.push(team["id"].as_str().unwrap().to_owned());
    }
    let mut team_keys = Vec::new();
    for (team, name) in teams.iter().zip(["payments-ci", "search-ci"]) {
        let body = json!({ "kind": "team", "name": name, "team_id": team, "team_role": "editor" });
        let (code, key) = app.api("POST", "/api-keys", &ops, Some(body)).await;
        assert_eq!(code, 201, "{key}");
        team_keys.push(key["id"].as_str().unwrap().to_owned());
    }

    // A team admin sees their team's keys, not the other team's, and may make team and personal keys.
    let admin = person(&app, "admin@example.com", Some((&teams[0], "admin")), &ops).await;
    let (code, list) = page(&app, &admin, "/dashboard/api-keys").await;
    assert_eq!(code, 200);
    assert!(list.contains("payments-ci") && !list.contains("search-ci"), "{list}");
    let (_, kinds) = page(&app, &admin, "/dashboard/api-keys/new").await;
    assert!(kinds.contains("kind=team") && kinds.contains("kind=personal"), "{kinds}");
    for refused in ["kind=service", "kind=restricted", "kind=tenant_owner"] {
        assert!(!kinds.contains(refused), "{refused} is not offered to a team admin");
    }
    let (code, _) = page(&app, &admin, "/dashboard/api-keys/new?kind=tenant_owner").await;
    assert_eq!(code, 404, "a kind not offered is not there");
    let (_, form) = page(&app, &admin, "/dashboard/api-keys/new?kind=team").await;
    assert!(form.contains("Payments") && !form.contains("Search"), "only their own team is offered");

    // Forcing the other team's key by URL answers the 404 page; their own team's rotates.
    let (code, body) = page(&app, &admin, &format!("/dashboard/api-keys/{}/revoke", team_keys[1])).await;
    assert_eq!(code, 404);
    assert!(body.contains("Not found") && !body.contains("search-ci"));
    let (code, _) = page(&app, &admin, &format!("/dashboard/api-keys/{}/rotate", team_keys[0])).await;
    assert_eq!(code, 200);

    // A viewer of that team sees its key but may not rotate it: the 403 page, and no button.
    let viewer = person(&app, "viewer@example.com", Some((&teams[0], "viewer")), &ops).await;
    let (_, list) = page(&app, &viewer, "/dashboard/api-keys").await;
    assert!(list.contains("payments-ci") && !list.contains("/rotate"), "{list}");
    let (code, body) = page(&app, &viewer, &format!("/dashboard/api-keys/{}/rotate", team_keys[0])).await;
    assert_eq!(code, 403);
    assert!(body.contains("Not allowed"), "{body}");

    // A forged create for the other team is refused as the API would (404: not in reach).
    let token = csrf_token(&form);
    let forged = admin
        .post(app.url("/dashboard/api-keys"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("kind", "team"),
            ("name", "sneaky"),
            ("team_id", &teams[1]),
            ("team_role", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);

    // A member without a team: only personal keys, and only their own in the list.
    let member = person(&app, "member@example.com", None, &ops).await;
    let (_, list) = page(&app, &member, "/dashboard/api-keys").await;
    assert!(!list.contains("payments-ci") && !list.contains("search-ci"));
    let (code, kinds) = page(&app, &member, "/dashboard/api-keys/new").await;
    assert_eq!(code, 200);
    assert!(kinds.contains("Create a personal key"), "a member goes straight to the one kind they may make");
    let (code, _) = page(&app, &member, &format!("/dashboard/api-keys/{}/rotate", team_keys[0])).await;
    assert_eq!(code, 404);
    let (_, overview) = page(&app, &member, "/dashboard").await;
    assert!(overview.contains(">API keys<") && !overview.contains(">Audit log<"), "the nav shows what they may see");
    let (code, _) = page(&app, &member, "/dashboard/audit-log").await;
    assert_eq!(code, 403, "the audit log takes audit_log:read");

    // A bad name comes back next to its field, with the other input kept; no key is made.
    let token = csrf_token(&kinds);
    let response = member
        .post(app.url("/dashboard/api-keys"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("kind", "personal"),
            ("name", "   "),
            ("expires", "date"),
            ("expires_on", "2020-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"id="name-error""#) && body.contains(r#"id="expires-error""#), "{body}");
    assert!(body.contains(r#"value="2020-01-01""#), "the date typed is kept");
    let (_, keys) = app.api("GET", "/api-keys", &ops, None).await;
    assert_eq!(keys["data"].as_array().or(keys.as_array()).unwrap().len(), 3, "the CLI key and two team keys only");

    // Without a session, every dashboard page leads to sign-in and back.
    let (code, _) = page(&app, &app.browser(), "/dashboard/api-keys?kind=team").await;
    assert_eq!(code, 303);
    let response = app.browser().get(app.url("/dashboard/api-keys?kind=team")).send().await.unwrap();
    assert_eq!(response.headers()["location"], "/login?return_to=%2Fdashboard%2Fapi%2Dkeys%3Fkind%3Dteam");
}

/// Registers an app on the dashboard, then the `oauth2` crate signs in through it with the
/// client ID and secret the page showed; rotating the secret shows a new one, once.
async fn an_app_registered_on_the_dashboard_completes_the_code_flow_with_what_the_page_showed(backend: Backend) {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse, TokenUrl,
    };

    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(backend).await;
    app.create_api(crate::helpers::API, &["read", "write"], "RS256");
    let owner_key = owner_in_browser(&app, &browser, "/dashboard/apps").await;
    wait_for_text(&browser, "No OAuth apps of your own yet.").await;
    screenshot(&browser, "apps-built-in").await;

    // Register a confidential app with the code flow, a loopback callback and the API.
    click(&browser, ".page-head a.button").await;
    wait_for_text(&browser, "Register an app").await;
    let callback = app.url("/test-callback");
    fill(&browser, "name", "Photo Printer").await;
    fill(&browser, "redirect_uris", &callback).await;
    fill(&browser, "scopes", "openid read").await;
    click(&browser, "#api-1").await;
    screenshot(&browser, "app-new").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    wait_for_url(&browser, &app.url("/dashboard/secret")).await;
    let text = wait_for_text(&browser, "Client ID").await;
    let secret = browser.find(Locator::Id("new-secret")).await.unwrap().prop("value").await.unwrap().unwrap();
    let client_id = text
        .lines()
        .skip_while(|line| !line.starts_with("Client ID"))
        .nth(1)
        .expect("the client ID follows its label")
        .trim()
        .to_owned();
    screenshot(&browser, "app-secret").await;

    // The oauth2 crate runs the code flow with them; the browser is signed in and consents.
    let oauth = BasicClient::new(ClientId::new(client_id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(callback.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    browser.goto(url.as_str()).await.unwrap();
    wait_for_text(&browser, "Photo Printer wants to access your account").await;
    click(&browser, "button[value=approve]").await;
    let landed = wait_for_url(&browser, &callback).await;
    let code = landed.query_pairs().find(|(name, _)| name == "code").unwrap().1.into_owned();
    let token = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&app.http)
        .await
        .expect("the code is exchanged with the secret the page showed");
    assert!(!token.access_token().secret().is_empty());

    // The app's page lists who let it in, and what an owner granted the app itself;
    // rotating shows a new secret once.
    let grant = json!({ "permissions": ["AUDIT_LOG_READ"], "refresh_retry_window_secs": 10 });
    assert_eq!(app.api("PATCH", &format!("/clients/{client_id}"), &owner_key, Some(grant)).await.0, 200);
    browser.goto(&app.url(&format!("/dashboard/apps/{client_id}"))).await.unwrap();
    let text = wait_for_text(&browser, "Who has let it in").await;
    assert!(text.contains(OWNER_EMAIL), "{text}");
    assert!(text.contains("Its own permissions") && text.contains("audit_log:read"), "{text}");
    assert!(text.contains("The same answer for 10 s after each refresh"), "{text}");
    screenshot(&browser, "app").await;
    browser.goto(&app.url(&format!("/dashboard/apps/{client_id}/rotate"))).await.unwrap();
    wait_for_text(&browser, "The old secret stops working").await;
    choose(&browser, "grace_secs", "0").await;
    click(&browser, "button.primary").await;
    wait_for_url(&browser, &app.url("/dashboard/secret")).await;
    let rotated = browser.find(Locator::Id("new-secret")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert_ne!(rotated, secret);
    let old =
        app.post_form("/oauth2/token", &[("grant_type", "client_credentials")], Some((&client_id, &secret))).await;
    assert_eq!(old.status(), 401, "the old secret stopped at once");

    // Edit it: a bad redirect URI comes back with the error and the rest kept.
    browser.goto(&app.url(&format!("/dashboard/apps/{client_id}/edit"))).await.unwrap();
    fill(&browser, "redirect_uris", "javascript:alert(1)").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    let text = wait_for_text(&browser, "Redirect URI").await;
    assert!(text.contains("Edit “Photo Printer”"), "{text}");
    let next_to_field = browser.find(Locator::Id("redirect_uris-error")).await.unwrap().text().await.unwrap();
    assert!(next_to_field.contains("javascript:alert(1)"), "the error sits by its field: {next_to_field}");
    screenshot(&browser, "app-edit-error").await;
    fill(&browser, "redirect_uris", &callback).await;
    fill(&browser, "name", "Photo Printer Pro").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    wait_for_text(&browser, "The app was saved").await;

    // Delete, behind its confirmation.
    browser.goto(&app.url(&format!("/dashboard/apps/{client_id}/delete"))).await.unwrap();
    wait_for_text(&browser, "cannot be undone").await;
    screenshot(&browser, "app-delete").await;
    click(&browser, "button.danger").await;
    wait_for_text(&browser, "The app was deleted").await;
    let (code, _) = app.api("GET", &format!("/clients/{client_id}"), &owner_key, None).await;
    assert_eq!(code, 404);

    // Each change is in the audit log with the signed-in owner as the actor.
    let (_, log) = app.api("GET", &format!("/audit-log?target_id={client_id}"), &owner_key, None).await;
    let actions: Vec<(&str, &str)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor_type"].as_str().unwrap()))
        .collect();
    for action in ["client.created", "client.secret_rotated", "client.updated", "client.deleted"] {
        assert!(actions.contains(&(action, "user")), "{action} by the owner: {actions:?}");
    }
    browser.close().await.unwrap();
}

/// An owner signed in to the dashboard in Chromium (made through the API, as an operator would).
async fn owner_in_browser(app: &TestApp, browser: &Client, path: &str) -> String {
    let ops = app.owner_key();
    let body = json!({ "email": OWNER_EMAIL, "password": PASSWORD, "role": "owner" });
    let (code, _) = app.api("POST", "/users", &ops, Some(body)).await;
    assert_eq!(code, 201);
    browser.goto(&app.url(path)).await.unwrap();
    fill(browser, "email", OWNER_EMAIL).await;
    fill(browser, "password", PASSWORD).await;
    click(browser, "button[type=submit]").await;
    wait_for_url(browser, &app.url(path)).await;
    ops
}

async fn deactivating_a_user_on_the_dashboard_stops_their_key_at_once(backend: Backend) {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(backend).await;
    let ops = owner_in_browser(&app, &browser, "/dashboard/users").await;
    app.create_user("ada@example.com", PASSWORD);
    let key = app.personal_key_from_account_page("ada@example.com", PASSWORD).await;
    assert_eq!(status(&app, "GET", "/api-keys/current", &key, None).await, 200);

    // Inviting someone who has an account already: the error by the email field.
    browser.goto(&app.url("/dashboard/users/invite")).await.unwrap();
    fill(&browser, "email", "ada@example.com").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    let error = browser.wait().for_element(Locator::Id("email-error")).await.unwrap().text().await.unwrap();
    assert!(error.contains("already exists"), "{error}");

    // Invite someone: the link is shown once and lets them in.
    fill(&browser, "email", "linus@example.com").await;
    screenshot(&browser, "user-invite").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    wait_for_url(&browser, &app.url("/dashboard/secret")).await;
    let link = browser.find(Locator::Id("new-secret")).await.unwrap().prop("value").await.unwrap().unwrap();
    assert!(link.starts_with(&app.url("/invitation?token=")), "{link}");
    assert_eq!(app.http.get(&link).send().await.unwrap().status(), 200, "the link opens the invitation");

    // The role page, and the shown-once page once it has been shown.
    browser.goto(&app.url("/dashboard/secret")).await.unwrap();
    wait_for_text(&browser, "Nothing to show").await;
    screenshot(&browser, "secret-gone").await;

    // Deactivate Ada behind the confirmation that says what happens.
    browser.goto(&app.url("/dashboard/users")).await.unwrap();
    wait_for_text(&browser, "ada@example.com").await;
    screenshot(&browser, "users").await;
    click(&browser, "a[aria-label='Deactivate ada@example.com']").await;
    let text = wait_for_text(&browser, "Deactivate ada@example.com?").await;
    assert!(text.contains("personal API keys stop working at once"), "{text}");
    screenshot(&browser, "user-deactivate").await;
    click(&browser, "button.danger").await;
    wait_for_text(&browser, "The user was deactivated").await;
    assert_eq!(status(&app, "GET", "/api-keys/current", &key, None).await, 401, "at once");

    // Reactivating brings the key back; deleting ends it for good.
    click(&browser, "a[aria-label='Reactivate ada@example.com']").await;
    wait_for_text(&browser, "Reactivate ada@example.com?").await;
    click(&browser, "button.primary").await;
    wait_for_text(&browser, "The user was reactivated").await;
    assert_eq!(status(&app, "GET", "/api-keys/current", &key, None).await, 200);
    click(&browser, "a[aria-label='Change the role of ada@example.com']").await;
    wait_for_text(&browser, "Change the role of ada@example.com").await;
    screenshot(&browser, "user-role").await;
    click(&browser, "#role-owner").await;
    click(&browser, "button.primary").await;
    wait_for_text(&browser, "The role was changed").await;
    let (_, current) = app.api("GET", "/api-keys/current", &key, None).await;
    assert_eq!(current["permissions"], json!(["*"]), "her personal key follows her role: {current}");
    click(&browser, "a[aria-label='Delete ada@example.com']").await;
    wait_for_text(&browser, "Delete ada@example.com?").await;
    click(&browser, "button.danger").await;
    let text = wait_for_text(&browser, "The user was deleted").await;
    assert!(!text.contains("ada@example.com"));
    assert_eq!(status(&app, "GET", "/api-keys/current", &key, None).await, 401);

    // Each change is recorded with the owner as actor.
    let (_, log) = app.api("GET", "/audit-log?target_type=user", &ops, None).await;
    let actions: Vec<(&str, &str)> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor_type"].as_str().unwrap()))
        .collect();
    for action in ["user.invited", "user.deactivated", "user.reactivated", "user.deleted"] {
        assert!(actions.contains(&(action, "user")), "{action} by the owner: {actions:?}");
    }

    // Signing keys: rotate RS256, then withdraw the retired key; the JWKS follows at once.
    let first_kid = app.jwks().await.keys[0].common.key_id.clone().unwrap();
    browser.goto(&app.url("/dashboard/signing-keys")).await.unwrap();
    wait_for_text(&browser, "Signs now").await;
    click(&browser, "a[href='/dashboard/signing-keys/rotate?algorithm=RS256']").await;
    wait_for_text(&browser, "Rotate the RS256 signing key?").await;
    screenshot(&browser, "signing-key-rotate").await;
    click(&browser, "button.primary").await;
    let text = wait_for_text(&browser, "A new key signs now").await;
    assert!(text.contains("Retired, still published"), "{text}");
    screenshot(&browser, "signing-keys").await;
    assert_eq!(app.jwks().await.keys.len(), 2, "the retired key stays published");
    click(&browser, &format!("a[aria-label='Withdraw {first_kid}']")).await;
    wait_for_text(&browser, "stops verifying").await;
    screenshot(&browser, "signing-key-withdraw").await;
    click(&browser, "button.danger").await;
    wait_for_text(&browser, "The key was withdrawn").await;
    let kids: Vec<_> = app.jwks().await.keys.into_iter().filter_map(|k| k.common.key_id).collect();
    assert!(!kids.contains(&first_kid), "{kids:?}");
    browser.close().await.unwrap();
}

async fn apis_and_teams_are_managed_on_the_dashboard(backend: Backend) {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(backend).await;
    let ops = owner_in_browser(&app, &browser, "/dashboard/apis").await;
    wait_for_text(&browser, "No APIs of your own yet").await;

    // An audience with a fragment comes back with the error by its field and the input kept.
    browser.goto(&app.url("/dashboard/apis/new")).await.unwrap();
    fill(&browser, "audience", "https://billing.example.com/#v1").await;
    fill(&browser, "scopes", "read write").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    let error = browser.wait().for_element(Locator::Id("audience-error")).await.unwrap().text().await.unwrap();
    assert!(error.contains("must not contain a fragment"), "{error}");
    let kept = browser.find(Locator::Id("scopes")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("read write"));

    // An HS256 API: the secret the page shows once is the key its tokens are signed with.
    browser.goto(&app.url("/dashboard/apis/new")).await.unwrap();
    fill(&browser, "audience", "https://billing.example.com").await;
    fill(&browser, "name", "Billing").await;
    fill(&browser, "scopes", "read write").await;
    click(&browser, "#alg-HS256").await;
    screenshot(&browser, "api-new").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    wait_for_url(&browser, &app.url("/dashboard/secret")).await;
    let secret = browser.find(Locator::Id("new-secret")).await.unwrap().prop("value").await.unwrap().unwrap();
    let body = json!({ "name": "sync", "grant_types": ["client_credentials"], "scopes": ["read"], "audiences": ["https://billing.example.com"] });
    let (_, client) = app.api("POST", "/clients", &ops, Some(body)).await;
    let (id, client_secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let form = [("grant_type", "client_credentials"), ("scope", "read"), ("resource", "https://billing.example.com")];
    let token: Value = app.post_form("/oauth2/token", &form, Some((id, client_secret))).await.json().await.unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["https://billing.example.com"]);
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::decode::<Value>(token["access_token"].as_str().unwrap(), &key, &validation)
        .expect("the token verifies with the secret the page showed");

    // Edit its lifetime; the list shows it.
    browser.goto(&app.url("/dashboard/apis")).await.unwrap();
    click(&browser, "a[aria-label='Edit Billing']").await;
    fill(&browser, "token_lifetime_secs", "600").await;
    click(&browser, "form.wide-form button[type=submit]").await;
    let text = wait_for_text(&browser, "The API was saved").await;
    assert!(text.contains("10 min"), "{text}");
    screenshot(&browser, "apis").await;

    // Its delete page says what happens.
    browser.goto(&app.url("/dashboard/apis")).await.unwrap();
    click(&browser, "a[aria-label='Delete Billing']").await;
    wait_for_text(&browser, "Latchkey refuses while an OAuth app may still ask tokens for it").await;
    screenshot(&browser, "api-delete").await;
    click(&browser, "button.danger").await;
    wait_for_text(&browser, "remove its audience from them first").await;

    // A team: create, add a member by email, change the role, rename, delete.
    app.create_user("ada@example.com", PASSWORD);
    browser.goto(&app.url("/dashboard/teams")).await.unwrap();
    wait_for_text(&browser, "Create a team").await;
    screenshot(&browser, "teams").await;
    fill(&browser, "name", "Payments").await;
    click(&browser, "form.inline-fields button[type=submit]").await;
    wait_for_text(&browser, "The team was created").await;
    fill(&browser, "email", "ADA@example.com").await;
    click(&browser, "form.inline-fields:not(.compact) button.primary").await;
    let text = wait_for_text(&browser, "The members were changed").await;
    assert!(text.contains("ada@example.com"), "{text}");
    let team_id = browser.current_url().await.unwrap().path().rsplit('/').next().unwrap().to_owned();
    let (_, members) = app.api("GET", &format!("/teams/{team_id}/members"), &ops, None).await;
    let roles: Vec<&str> = members["data"]
        .as_array()
        .or(members.as_array())
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"viewer"), "added as a viewer, the first role offered: {roles:?}");
    screenshot(&browser, "team").await;
    choose(&browser, "role-1", "admin").await;
    click(&browser, "form.compact button").await;
    wait_for_text(&browser, "The members were changed").await;
    let (_, members) = app.api("GET", &format!("/teams/{team_id}/members"), &ops, None).await;
    assert!(members.to_string().contains(r#""role":"admin""#), "{members}");
    fill(&browser, "name", "Payments EU").await;
    click(&browser, "form[action$='/rename'] button").await;
    wait_for_text(&browser, "The team was renamed").await;
    fill(&browser, "email", "nobody@example.com").await;
    click(&browser, "form.inline-fields:not(.compact) button.primary").await;
    wait_for_text(&browser, "Nobody has an account with the email").await;
    browser.goto(&app.url(&format!("/dashboard/teams/{team_id}/delete"))).await.unwrap();
    wait_for_text(&browser, "Its team keys are deleted").await;
    screenshot(&browser, "team-delete").await;
    click(&browser, "button.danger").await;
    wait_for_text(&browser, "The team was deleted").await;
    let (code, _) = app.api("GET", &format!("/teams/{team_id}"), &ops, None).await;
    assert_eq!(code, 404);
    browser.close().await.unwrap();
}

async fn the_audit_log_names_the_app_a_person_acted_through(backend: Backend) {
    // Arrange: Ada, an owner, renames a client with a token she gave a command-line tool.
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(backend).await;
    let ops = owner_in_browser(&app, &browser, "/dashboard").await;
    let ada = json!({ "email": crate::login::EMAIL, "password": PASSWORD, "role": "owner" });
    assert_eq!(status(&app, "POST", "/users", &ops, Some(ada)).await, 201);
    let cli = crate::management_tokens::management_app(&app, &ops, "read clients:write").await;
    let (code, verifier) = crate::authorize::obtain_code_for(&app, &cli, &["clients:write"]).await;
    let granted: Value = crate::authorize::exchange(&app, &cli, &code, &verifier).await.json().await.unwrap();
    let token = granted["access_token"].as_str().unwrap();
    let ledger = json!({ "name": "Ledger", "grant_types": ["client_credentials"] });
    let (_, ledger) = app.api("POST", "/clients", &ops, Some(ledger)).await;
    let ledger = ledger["client_id"].as_str().unwrap();
    let rename = json!({ "name": "Ledger 2" });
    assert_eq!(status(&app, "PATCH", &format!("/clients/{ledger}"), token, Some(rename)).await, 200);

    // Act
    browser.goto(&app.url("/dashboard/audit-log?action=client.updated")).await.unwrap();

    // Assert: the person, and the app she acted through, by name.
    let text = wait_for_text(&browser, "through Ops CLI").await;
    assert!(text.contains(crate::login::EMAIL), "{text}");
    screenshot(&browser, "audit-log-through").await;
}

on_both_backends!(
    the_audit_log_names_the_app_a_person_acted_through,
    the_first_person_sets_up_latchkey_and_makes_every_kind_of_key,
    team_admins_and_members_see_and_make_only_what_they_may,
    deactivating_a_user_on_the_dashboard_stops_their_key_at_once,
    apis_and_teams_are_managed_on_the_dashboard,
    an_app_registered_on_the_dashboard_completes_the_code_flow_with_what_the_page_showed,
);
