//! Changing one's password on the account page.

use fantoccini::Locator;

use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
use crate::helpers::{Backend, TestApp, spawn_app};
use crate::login::{EMAIL, PASSWORD, csrf_token, sign_in};

const NEW_PASSWORD: &str = "a much longer passphrase";

async fn signed_in(app: &TestApp, password: &str) -> reqwest::Client {
    let browser = app.browser();
    let response = sign_in(app, &browser, EMAIL, password, "/account").await;
    assert_eq!(response.status(), 303, "signed in with {password:?}");
    browser
}

async fn change(app: &TestApp, browser: &reqwest::Client, current: &str, new: &str, again: &str) -> (u16, String) {
    let page = browser.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let token = csrf_token(&page);
    let form = [
        ("csrf_token", token.as_str()),
        ("current_password", current),
        ("new_password", new),
        ("confirm_password", again),
    ];
    let response = browser.post(app.url("/account/password")).form(&form).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    (status, location.unwrap_or(response.text().await.unwrap()))
}

async fn changing_the_password_ends_every_other_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let here = signed_in(&app, PASSWORD).await;
    let elsewhere = signed_in(&app, PASSWORD).await;

    // What a person must fix is said on the page; nothing changes.
    let (status, page) = change(&app, &here, "not my password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert!(page.contains("The current password is incorrect."), "{page}");
    let (status, page) = change(&app, &here, PASSWORD, NEW_PASSWORD, "something else entirely").await;
    assert_eq!(status, 400);
    assert!(page.contains("The new passwords do not match."), "{page}");
    let (status, page) = change(&app, &here, PASSWORD, "short", "short").await;
    assert_eq!(status, 400);
    assert!(page.contains("at least 8 characters"), "{page}");
    assert!(app.audit_actions().contains(&("user.password_change_failed".into(), "failure".into())));

    // The change: this browser stays signed in, the other is signed out.
    let (status, location) = change(&app, &here, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!((status, location.as_str()), (303, "/account?password_changed=1"));
    let page = here.get(app.url(&location)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You were signed out everywhere else."));
    let elsewhere_now = elsewhere.get(app.url("/account")).send().await.unwrap();
    assert_eq!(elsewhere_now.status(), 303, "the other session ended");
    assert!(app.audit_actions().contains(&("user.password_changed".into(), "success".into())));

    // Only the new password signs in.
    let old = sign_in(&app, &app.browser(), EMAIL, PASSWORD, "/account").await;
    assert_eq!(old.status(), 401);
    signed_in(&app, NEW_PASSWORD).await;
}

async fn wrong_current_passwords_are_throttled_like_sign_ins(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let here = signed_in(&app, PASSWORD).await;
    let mut last = String::new();
    for _ in 0..6 {
        last = change(&app, &here, "guess", NEW_PASSWORD, NEW_PASSWORD).await.1;
    }
    assert!(last.contains("Too many attempts"), "{last}");
    // Even the right password waits now: the budget is the account's.
    let (status, page) = change(&app, &here, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert!(page.contains("Too many attempts"), "{page}");
}

/// Someone who signed in with two factors moments ago may change the password without
/// the current one (they may sign in with a passkey and not remember it); a password-only
/// sign-in, or an older one, may not.
async fn a_recent_second_factor_stands_in_for_the_current_password(backend: Backend) {
    use diesel::prelude::*;
    let app = spawn_app(backend).await;
    let user = app.create_user(EMAIL, PASSWORD);
    let password_only = signed_in(&app, PASSWORD).await;
    let (phone, _) = crate::second_factors::set_up_app(&app, &password_only).await;
    let hint = "You signed in with a second factor moments ago";
    let page = password_only.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains(hint), "a password alone is not a second factor");
    let (status, page) = change(&app, &password_only, "", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 400);
    assert!(page.contains("The current password is incorrect."), "{page}");

    let (both, next) = crate::second_factors::password_step(&app, EMAIL, "/account").await;
    let done = crate::second_factors::second_step(&app, &both, &next, &phone.next_code()).await;
    assert_eq!(done.status(), 303);
    let page = both.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(hint), "the form says the current password may be left out");
    let (status, location) = change(&app, &both, "", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!((status, location.as_str()), (303, "/account?password_changed=1"));
    let audit = app.audit_events_of("user.password_changed");
    assert_eq!(audit[0]["confirmed_by"], "recent second factor", "{audit:?}");
    assert_eq!(sign_in(&app, &app.browser(), EMAIL, PASSWORD, "/account").await.status(), 401, "the old one is gone");

    // Ten minutes on, the current password again.
    {
        use latchkey::db::schema::sessions;
        let mut conn = app.pool.get().unwrap();
        let then = latchkey::db::now() - chrono::TimeDelta::minutes(11);
        diesel::update(sessions::table.filter(sessions::user_id.eq(&user.id)))
            .set(sessions::created_at.eq(then))
            .execute(&mut *conn)
            .unwrap();
    }
    let page = both.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains(hint));
    let (status, _) = change(&app, &both, "", PASSWORD, PASSWORD).await;
    assert_eq!(status, 400);
}

crate::on_both_backends!(
    changing_the_password_ends_every_other_session,
    wrong_current_passwords_are_throttled_like_sign_ins,
    a_recent_second_factor_stands_in_for_the_current_password
);

#[tokio::test]
async fn the_password_form_works_in_chromium() {
    let Some((_driver, browser)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    browser.goto(&app.url("/account")).await.unwrap();
    wait_for_url(&browser, &app.url("/login")).await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    click(&browser, "button[type=submit]").await;
    wait_for_text(&browser, "Change password").await;
    browser.find(Locator::Id("current_password")).await.unwrap().send_keys("wrong password").await.unwrap();
    browser.find(Locator::Id("new_password")).await.unwrap().send_keys(NEW_PASSWORD).await.unwrap();
    browser.find(Locator::Id("confirm_password")).await.unwrap().send_keys(NEW_PASSWORD).await.unwrap();
    click(&browser, "#password-form button[type=submit]").await;
    wait_for_text(&browser, "The current password is incorrect.").await;
    screenshot(&browser, "account-password-refused").await;
    browser.find(Locator::Id("current_password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    browser.find(Locator::Id("new_password")).await.unwrap().send_keys(NEW_PASSWORD).await.unwrap();
    browser.find(Locator::Id("confirm_password")).await.unwrap().send_keys(NEW_PASSWORD).await.unwrap();
    click(&browser, "#password-form button[type=submit]").await;
    wait_for_text(&browser, "Password changed.").await;
    screenshot(&browser, "account-password-changed").await;
}
