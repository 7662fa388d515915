//! Refresh tokens: issued for offline_access, rotated on every use, a retry within the
//! window gets the same answer, any other reuse revokes the family, a refresh never widens
//! scope.

use serde_json::Value;

use crate::authorize::{exchange, obtain_code_for, register_public_client};
use crate::helpers::{Backend, Served, TestApp, post_form, spawn_app};
use crate::login::{EMAIL, PASSWORD};

pub struct Grant {
    pub client_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// A signed-in user's grant to a public client with `scopes` (offline_access included).
pub async fn grant(app: &TestApp, scopes: &[&str]) -> Grant {
    app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(app, &["authorization_code", "refresh_token"], "read write offline_access");
    let (code, verifier) = obtain_code_for(app, &client.client_id, scopes).await;
    let response = exchange(app, &client.client_id, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    Grant {
        client_id: client.client_id.clone(),
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["refresh_token"].as_str().expect("offline_access yields a refresh token").to_owned(),
    }
}

pub async fn refresh(
    app: &impl Served,
    client_id: &str,
    refresh_token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("client_id", client_id), ("refresh_token", refresh_token)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    post_form(app, "/oauth2/token", &form, None).await
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap_or_default().to_owned())
}

async fn every_refresh_returns_a_new_refresh_token(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;

    // Act
    let first: Value = refresh(&app, &grant.client_id, &grant.refresh_token, None).await.json().await.unwrap();
    let second_token = first["refresh_token"].as_str().unwrap().to_owned();
    let second: Value = refresh(&app, &grant.client_id, &second_token, None).await.json().await.unwrap();

    // Assert
    assert_ne!(second_token, grant.refresh_token);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(first["scope"], "offline_access read");
    assert_ne!(first["access_token"], grant.access_token);
    assert_eq!(first["token_type"], "Bearer");
}

async fn reusing_a_retired_refresh_token_revokes_the_whole_family(backend: Backend) {
    // Arrange: the app rotates twice, so the first token is retired and its successor used.
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;
    let introspector = app.create_client(&["client_credentials"], &[], &[]);
    let second: Value = refresh(&app, &grant.client_id, &grant.refresh_token, None).await.json().await.unwrap();
    let second = second["refresh_token"].as_str().unwrap();
    let rotated: Value = refresh(&app, &grant.client_id, second, None).await.json().await.unwrap();
    let newest = rotated["refresh_token"].as_str().unwrap().to_owned();
    let newest_access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.introspect(&newest_access, &introspector).await["active"], true);

    // Act: someone presents the first token, inside the retry window but after the app
    // moved on: a copy, not a retry.
    let reuse = refresh(&app, &grant.client_id, &grant.refresh_token, None).await;

    // Assert: refused, and the newest token and every access token of the family are dead.
    assert_eq!(error_of(reuse).await, (400, "invalid_grant".into()));
    assert_eq!(error_of(refresh(&app, &grant.client_id, &newest, None).await).await, (400, "invalid_grant".into()));
    assert_eq!(app.introspect(&newest_access, &introspector).await["active"], false);
    assert_eq!(app.introspect(&grant.access_token, &introspector).await["active"], false);
    assert_eq!(app.introspect(&newest, &introspector).await["active"], false);
    assert!(app.audit_actions().contains(&("refresh_token.reused".into(), "failure".into())));
}

/// How many tokens the family of `token` holds.
fn family_size(app: &TestApp, token: &str) -> i64 {
    use diesel::prelude::*;
    use latchkey::db::schema::refresh_tokens;
    let mut conn = app.pool.get().unwrap();
    let stored = latchkey::db::refresh_tokens::find_refresh_token(&mut conn, app.state.hasher.hash(token).as_str())
        .unwrap()
        .expect("stored");
    refresh_tokens::table.filter(refresh_tokens::family_id.eq(stored.family_id)).count().get_result(&mut *conn).unwrap()
}

async fn a_retry_within_the_window_gets_the_same_answer_and_nothing_else_does(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "write", "offline_access"]).await;
    let first = refresh(&app, &grant.client_id, &grant.refresh_token, None).await;
    assert_eq!(first.status(), 200);
    let first = first.bytes().await.unwrap();

    // Act: the app did not hear the answer and asks again; then asks for something else.
    let retried = refresh(&app, &grant.client_id, &grant.refresh_token, None).await;
    assert_eq!(retried.status(), 200);
    let retried = retried.bytes().await.unwrap();
    let other_request = refresh(&app, &grant.client_id, &grant.refresh_token, Some("read")).await;

    // Assert: the same bytes, one successor; a different request is a reuse.
    assert_eq!(retried, first, "byte for byte: the same access and refresh token");
    let answer: Value = serde_json::from_slice(&first).unwrap();
    let successor = answer["refresh_token"].as_str().unwrap();
    assert_eq!(family_size(&app, successor), 2, "the grant's token and one successor");
    assert_eq!(error_of(other_request).await, (400, "invalid_grant".into()));
    assert_eq!(
        error_of(refresh(&app, &grant.client_id, successor, None).await).await,
        (400, "invalid_grant".into()),
        "the reuse revoked the family"
    );
}

async fn a_retry_must_authenticate_as_the_rotation_did(backend: Backend) {
    // Arrange: a confidential app's grant, rotated with HTTP Basic.
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    app.create_api(crate::helpers::API, &["read"], "RS256");
    let client = app.register_client(latchkey::manage::clients::ClientRegistration {
        name: "Server app".into(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["read offline_access".into()],
        audiences: vec![crate::helpers::API.into()],
        redirect_uris: vec![crate::authorize::CALLBACK.into()],
        ..Default::default()
    });
    let (id, secret) = (client.client_id.as_str(), client.client_secret.as_deref().unwrap());
    let (code, verifier) = obtain_code_for(&app, id, &["read", "offline_access"]).await;
    let exchange_form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", crate::authorize::CALLBACK),
    ];
    let granted: Value = app.post_form("/oauth2/token", &exchange_form, Some((id, secret))).await.json().await.unwrap();
    let token = granted["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let rotated = app.post_form("/oauth2/token", &form, Some((id, secret))).await;
    assert_eq!(rotated.status(), 200);
    let successor = rotated.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned();

    // Act: the "retry" sends the secret in the body instead.
    let posted = [form[0], form[1], ("client_id", id), ("client_secret", secret)];
    let other_way = app.post_form("/oauth2/token", &posted, None).await;

    // Assert
    assert_eq!(error_of(other_way).await, (400, "invalid_grant".into()));
    let after = app.post_form("/oauth2/token", &[form[0], ("refresh_token", &successor)], Some((id, secret))).await;
    assert_eq!(error_of(after).await, (400, "invalid_grant".into()), "the family is revoked");
}

async fn with_the_window_off_or_past_a_reuse_revokes_the_family(backend: Backend) {
    // Arrange: two apps, one with retries off and one with a one-second window.
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;
    let update = |secs: i64| latchkey::manage::clients::ClientUpdate {
        refresh_retry_window_secs: Some(secs),
        ..Default::default()
    };
    // Each change on a connection of its own: what a connection wrote is announced to the
    // server's caches when it goes back to the pool.
    let update_client = |secs| {
        let mut conn = app.pool.get().unwrap();
        let caller = latchkey::manage::Caller::system();
        latchkey::manage::clients::update_client(&mut conn, &caller, &grant.client_id, update(secs)).unwrap()
    };
    let view = update_client(0);
    assert_eq!(view.refresh_retry_window_secs, 0);
    let off: Value = refresh(&app, &grant.client_id, &grant.refresh_token, None).await.json().await.unwrap();
    let off_successor = off["refresh_token"].as_str().unwrap().to_owned();

    // Act and assert: with retries off, the first repeat revokes.
    let repeated = refresh(&app, &grant.client_id, &grant.refresh_token, None).await;
    assert_eq!(error_of(repeated).await, (400, "invalid_grant".into()));
    assert_eq!(error_of(refresh(&app, &grant.client_id, &off_successor, None).await).await.0, 400);

    // A one-second window, and a repeat two seconds later.
    update_client(1);
    let mut conn = app.pool.get().unwrap();
    let (code, verifier) = obtain_code_for(&app, &grant.client_id, &["read", "offline_access"]).await;
    let granted: Value = exchange(&app, &grant.client_id, &code, &verifier).await.json().await.unwrap();
    let token = granted["refresh_token"].as_str().unwrap();
    let rotated: Value = refresh(&app, &grant.client_id, token, None).await.json().await.unwrap();
    let kept = |conn: &mut latchkey::db::DbConnection| {
        latchkey::db::refresh_tokens::find_refresh_token(conn, app.state.hasher.hash(token).as_str()).unwrap().unwrap()
    };
    let sealed = kept(&mut conn).retry_answer_sealed.expect("the answer is kept for the window");
    let successor = rotated["refresh_token"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(successor), "sealed, not in the clear");
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    // Housekeeping erases what was kept past its window.
    let erased = latchkey::db::refresh_tokens::erase_expired_retry_answers(&mut conn, latchkey::db::now()).unwrap();
    assert!(erased >= 1);
    assert!(kept(&mut conn).retry_answer_sealed.is_none() && kept(&mut conn).retry_until.is_none());
    let late = refresh(&app, &grant.client_id, token, None).await;
    assert_eq!(error_of(late).await, (400, "invalid_grant".into()));
    assert_eq!(error_of(refresh(&app, &grant.client_id, successor, None).await).await.0, 400);
}

async fn a_refresh_may_narrow_the_scope_but_never_widen_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "write", "offline_access"]).await;

    let narrowed = refresh(&app, &grant.client_id, &grant.refresh_token, Some("read")).await;
    assert_eq!(narrowed.status(), 200);
    let narrowed: Value = narrowed.json().await.unwrap();
    assert_eq!(narrowed["scope"], "read");
    // The refresh token keeps the grant's scope (RFC 6749 §6): write may be asked again.
    let next = narrowed["refresh_token"].as_str().unwrap();
    let again: Value = refresh(&app, &grant.client_id, next, Some("read write")).await.json().await.unwrap();
    assert_eq!(again["scope"], "read write");
    let widened = refresh(&app, &grant.client_id, again["refresh_token"].as_str().unwrap(), Some("read delete")).await;
    assert_eq!(error_of(widened).await, (400, "invalid_scope".into()));
}

async fn a_hundred_concurrent_refreshes_of_one_token_get_one_identical_answer(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;

    // Act: tabs, retries and a flaky network, all at once.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let request = app.http.post(app.url("/oauth2/token")).form(&[
            ("grant_type", "refresh_token"),
            ("client_id", grant.client_id.as_str()),
            ("refresh_token", grant.refresh_token.as_str()),
        ]);
        requests.spawn(async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap())
        });
    }
    let answers = requests.join_all().await;

    // Assert: every one 200 with the same bytes, and exactly one successor stored.
    assert!(answers.iter().all(|(status, _)| *status == 200), "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    assert!(answers.iter().all(|(_, body)| *body == answers[0].1), "byte-identical answers");
    let answer: Value = serde_json::from_slice(&answers[0].1).unwrap();
    assert_eq!(family_size(&app, answer["refresh_token"].as_str().unwrap()), 2);
    let next = refresh(&app, &grant.client_id, answer["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(next.status(), 200, "the one successor works");
}

async fn refresh_tokens_introspect_and_revoking_one_ends_its_grant(backend: Backend) {
    // Arrange
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;
    let introspector = app.create_client(&["client_credentials"], &[], &[]);
    let before = app.introspect(&grant.refresh_token, &introspector).await;

    // Act: the public client revokes its own refresh token (RFC 7009).
    let revoked = app
        .post_form("/oauth2/revoke", &[("token", &grant.refresh_token), ("client_id", &grant.client_id)], None)
        .await;

    // Assert
    assert_eq!(before["active"], true);
    assert_eq!(before["token_type"], "refresh_token");
    assert_eq!(before["client_id"], grant.client_id);
    assert_eq!(before["scope"], "offline_access read");
    assert_eq!(revoked.status(), 200);
    assert_eq!(app.introspect(&grant.refresh_token, &introspector).await["active"], false);
    assert_eq!(
        app.introspect(&grant.access_token, &introspector).await["active"],
        false,
        "the grant's access token too"
    );
    assert_eq!(
        error_of(refresh(&app, &grant.client_id, &grant.refresh_token, None).await).await,
        (400, "invalid_grant".into())
    );
}

async fn replaying_the_code_revokes_the_refresh_tokens_it_produced(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code", "refresh_token"], "read offline_access");
    let (code, verifier) = obtain_code_for(&app, &client.client_id, &["read", "offline_access"]).await;
    let first: Value = exchange(&app, &client.client_id, &code, &verifier).await.json().await.unwrap();

    let replay = exchange(&app, &client.client_id, &code, &verifier).await;

    assert_eq!(error_of(replay).await, (400, "invalid_grant".into()));
    let refresh_token = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        error_of(refresh(&app, &client.client_id, refresh_token, None).await).await,
        (400, "invalid_grant".into())
    );
}

async fn withdrawing_an_app_on_the_account_page_revokes_its_tokens(backend: Backend) {
    // Arrange: the app holds a grant; the user signs in again in another browser.
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;
    let introspector = app.create_client(&["client_credentials"], &[], &[]);
    let browser = app.browser();
    crate::login::sign_in(&app, &browser, EMAIL, PASSWORD, "/account").await;
    let account = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(account.contains("Photo Printer"), "the app is listed even though the decision was not remembered");
    assert!(account.contains("Keep access when you are not using the app"));
    assert!(account.contains("(this browser)"));
    assert_eq!(account.matches("<li>\n    <div>").count(), 2, "two sessions: the flow's and this one");

    // Act
    let revoked = browser
        .post(app.url("/account/consents/revoke"))
        .form(&[("csrf_token", crate::login::csrf_token(&account)), ("client_id", grant.client_id.clone())])
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(revoked.status(), 303);
    assert_eq!(revoked.headers()["location"], "/account?revoked=1");
    let after = browser.get(app.url("/account?revoked=1")).send().await.unwrap().text().await.unwrap();
    assert!(!after.contains("Photo Printer"));
    assert!(after.contains("Access withdrawn"));
    assert_eq!(
        error_of(refresh(&app, &grant.client_id, &grant.refresh_token, None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(app.introspect(&grant.access_token, &introspector).await["active"], false);
    assert!(app.audit_actions().contains(&("consent.revoked".into(), "success".into())));
}

/// RFC 9700 §4.14.2: a refresh token is bound to the client it was issued to.
async fn a_refresh_token_works_only_for_its_client(backend: Backend) {
    // Arrange: a grant to one app, and a second public app that obtained its token.
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;
    let other = app.register_client(latchkey::manage::clients::ClientRegistration {
        name: "Another app".into(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["read offline_access".into()],
        audiences: vec![crate::helpers::API.into()],
        redirect_uris: vec![crate::authorize::CALLBACK.into()],
        public: true,
        ..Default::default()
    });

    // Act
    let stolen = refresh(&app, &other.client_id, &grant.refresh_token, None).await;
    let own = refresh(&app, &grant.client_id, &grant.refresh_token, None).await;

    // Assert: refused, and the rightful client keeps its grant.
    assert_eq!(error_of(stolen).await, (400, "invalid_grant".into()));
    assert_eq!(own.status(), 200);
}

async fn a_rotation_stores_its_successor_whole_and_happens_once(backend: Backend) {
    use latchkey::db::refresh_tokens::{NewRefreshToken, RetryAnswer, find_refresh_token, rotate_refresh_token};

    // Arrange: a stored token of a real grant, and a successor differing from it in every
    // field it may (PostgreSQL writes the successor from a statement of its own).
    let app = spawn_app(backend).await;
    let grant = grant(&app, &["read", "offline_access"]).await;
    let mut conn = app.pool.get().unwrap();
    let current_hash = app.state.hasher.hash(&grant.refresh_token);
    let current = find_refresh_token(&mut conn, current_hash.as_str()).unwrap().expect("stored");
    let now = latchkey::db::now();
    let later = now + chrono::TimeDelta::minutes(5);
    let member = latchkey::db::refresh_tokens::FamilyMember {
        family_id: &current.family_id,
        parent_id: Some(&current.id),
        client_id: &current.client_id,
        user_id: &current.user_id,
        scope: "read",
        audience: &current.audience,
        auth_code_hash: Some("a code's hash"),
        access_token_jti: "the successor's jti",
        access_token_expires_at: later,
        expires_at: current.expires_at,
        amr: Some("pwd otp"),
        auth_time: Some(now - chrono::TimeDelta::minutes(1)),
    };
    let successor = NewRefreshToken { id: "successor id", token_hash: "the successor's hash", created_at: now, member };
    let retry = RetryAnswer { sealed: b"sealed answer", until: later };

    // Act: the rotation once the token has expired, then in time, then again.
    let past_expiry = current.expires_at + chrono::TimeDelta::seconds(1);
    let expired = rotate_refresh_token(&mut conn, current_hash.as_str(), past_expiry, None, &successor).unwrap();
    let first = rotate_refresh_token(&mut conn, current_hash.as_str(), now, Some(retry), &successor).unwrap();
    let again = NewRefreshToken { id: "second successor", token_hash: "another hash", ..successor };
    let second = rotate_refresh_token(&mut conn, current_hash.as_str(), now, Some(retry), &again).unwrap();

    // Assert: one rotation; the old token retired with its retry answer, the successor whole.
    assert!(!expired, "an expired token does not rotate");
    assert!(first && !second, "a token rotates once: {first}, {second}");
    let retired = find_refresh_token(&mut conn, current_hash.as_str()).unwrap().unwrap();
    assert_eq!(retired.used_at, Some(now));
    assert_eq!(retired.retry_answer_sealed.as_deref(), Some(&b"sealed answer"[..]));
    assert_eq!(retired.retry_until, Some(later));
    let stored = find_refresh_token(&mut conn, "the successor's hash").unwrap().expect("the successor is stored");
    let expected = (
        "successor id",
        current.family_id.as_str(),
        Some(current.id.as_str()),
        current.client_id.as_str(),
        current.user_id.as_str(),
        "read",
        current.audience.as_str(),
        Some("a code's hash"),
        "the successor's jti",
        (later, now, current.expires_at),
        (Some("pwd otp"), Some(now - chrono::TimeDelta::minutes(1))),
    );
    let found = (
        stored.id.as_str(),
        stored.family_id.as_str(),
        stored.parent_id.as_deref(),
        stored.client_id.as_str(),
        stored.user_id.as_str(),
        stored.scope.as_str(),
        stored.audience.as_str(),
        stored.auth_code_hash.as_deref(),
        stored.access_token_jti.as_str(),
        (stored.access_token_expires_at, stored.created_at, stored.expires_at),
        (stored.amr.as_deref(), stored.auth_time),
    );
    assert_eq!(found, expected);
    assert!(stored.is_usable(now) && stored.retry_answer_sealed.is_none());
    assert!(find_refresh_token(&mut conn, "another hash").unwrap().is_none(), "no second successor");

    // A revoked token does not rotate either.
    latchkey::db::refresh_tokens::revoke_refresh_family(&mut conn, &current.family_id, now).unwrap();
    let after_revocation = NewRefreshToken { id: "third successor", token_hash: "a third hash", ..again };
    let revoked = rotate_refresh_token(&mut conn, "the successor's hash", now, None, &after_revocation).unwrap();
    assert!(!revoked, "a revoked token does not rotate");
    assert!(find_refresh_token(&mut conn, "a third hash").unwrap().is_none());
}

async fn a_code_redemption_stores_the_first_refresh_token_whole_and_happens_once(backend: Backend) {
    use latchkey::db::authorization_codes::{NewAuthorizationCode, find_code, insert_code, redeem_code};
    use latchkey::db::refresh_tokens::{FamilyMember, NewRefreshToken, find_refresh_token};

    // Arrange: two stored codes of a real client and user, and a first refresh token
    // differing in every field it may (PostgreSQL writes it from a statement of its own).
    let app = spawn_app(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    let client = register_public_client(&app, &["authorization_code", "refresh_token"], "read offline_access");
    let mut conn = app.pool.get().unwrap();
    let now = latchkey::db::now();
    let later = now + chrono::TimeDelta::minutes(5);
    for code_hash in ["the code's hash", "a second code's hash"] {
        let code = NewAuthorizationCode {
            code_hash,
            client_id: &client.client_id,
            user_id: &user.id,
            redirect_uri: crate::authorize::CALLBACK,
            scope: "read offline_access",
            audience: crate::helpers::API,
            code_challenge: None,
            nonce: None,
            auth_time: now,
            created_at: now,
            expires_at: later,
            redirect_uri_given: true,
            requested_token_type: None,
            key_request: None,
            amr: Some("pwd"),
        };
        insert_code(&mut conn, &code).unwrap();
    }
    let member = FamilyMember {
        family_id: "a family",
        parent_id: None,
        client_id: &client.client_id,
        user_id: &user.id,
        scope: "read offline_access",
        audience: crate::helpers::API,
        auth_code_hash: Some("the code's hash"),
        access_token_jti: "the access token's jti",
        access_token_expires_at: later,
        expires_at: now + chrono::TimeDelta::days(30),
        amr: Some("pwd otp"),
        auth_time: Some(now - chrono::TimeDelta::minutes(1)),
    };
    let first = NewRefreshToken { id: "first id", token_hash: "the first token's hash", created_at: now, member };
    let again = NewRefreshToken { id: "second id", token_hash: "another hash", ..first };
    let access = ("the access token's jti", later);

    // Act: the redemption, then again with a refresh token and without one; a second code
    // redeemed twice without one.
    let redeemed = redeem_code(&mut conn, "the code's hash", now, access, Some(&first)).unwrap();
    let with_refresh = redeem_code(&mut conn, "the code's hash", now, access, Some(&again)).unwrap();
    let without = redeem_code(&mut conn, "the code's hash", now, access, None).unwrap();
    let plain = redeem_code(&mut conn, "a second code's hash", now, ("a second jti", later), None).unwrap();
    let plain_again = redeem_code(&mut conn, "a second code's hash", now, ("a third jti", later), None).unwrap();

    // Assert: each code redeemed once, its access token recorded, the refresh token whole.
    assert!(redeemed && !with_refresh && !without, "a code redeems once: {redeemed}, {with_refresh}, {without}");
    assert!(plain && !plain_again, "a code redeems once: {plain}, {plain_again}");
    let code = find_code(&mut conn, "the code's hash").unwrap().unwrap();
    assert_eq!((code.consumed_at, code.access_token_jti.as_deref()), (Some(now), Some("the access token's jti")));
    assert_eq!(code.access_token_expires_at, Some(later));
    let second = find_code(&mut conn, "a second code's hash").unwrap().unwrap();
    assert_eq!((second.consumed_at, second.access_token_jti.as_deref()), (Some(now), Some("a second jti")));
    let stored = find_refresh_token(&mut conn, "the first token's hash").unwrap().expect("the token is stored");
    let expected = (
        ("first id", "a family", None),
        (client.client_id.as_str(), user.id.as_str(), "read offline_access", crate::helpers::API),
        (Some("the code's hash"), "the access token's jti"),
        (later, now, now + chrono::TimeDelta::days(30)),
        (Some("pwd otp"), Some(now - chrono::TimeDelta::minutes(1))),
    );
    let found = (
        (stored.id.as_str(), stored.family_id.as_str(), stored.parent_id.as_deref()),
        (stored.client_id.as_str(), stored.user_id.as_str(), stored.scope.as_str(), stored.audience.as_str()),
        (stored.auth_code_hash.as_deref(), stored.access_token_jti.as_str()),
        (stored.access_token_expires_at, stored.created_at, stored.expires_at),
        (stored.amr.as_deref(), stored.auth_time),
    );
    assert_eq!(found, expected);
    assert!(stored.is_usable(now));
    assert!(find_refresh_token(&mut conn, "another hash").unwrap().is_none(), "no second token");
}

crate::on_both_backends!(
    a_code_redemption_stores_the_first_refresh_token_whole_and_happens_once,
    a_rotation_stores_its_successor_whole_and_happens_once,
    a_refresh_token_works_only_for_its_client,
    withdrawing_an_app_on_the_account_page_revokes_its_tokens,
    every_refresh_returns_a_new_refresh_token,
    reusing_a_retired_refresh_token_revokes_the_whole_family,
    a_refresh_may_narrow_the_scope_but_never_widen_it,
    a_hundred_concurrent_refreshes_of_one_token_get_one_identical_answer,
    a_retry_within_the_window_gets_the_same_answer_and_nothing_else_does,
    a_retry_must_authenticate_as_the_rotation_did,
    with_the_window_off_or_past_a_reuse_revokes_the_family,
    refresh_tokens_introspect_and_revoking_one_ends_its_grant,
    replaying_the_code_revokes_the_refresh_tokens_it_produced,
);
