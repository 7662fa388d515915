//! "Forgot your password?" end to end, through a real SMTP conversation with a mail sink
//! started by the test: the mail arrives, its link works once, and everything the old
//! password opened is dead afterwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::Locator;
use secrecy::SecretString;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::authorize::{location, unescape};
use crate::browser::{browser, click, screenshot, wait_for_text, wait_for_url};
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_with};
use crate::login::{EMAIL, PASSWORD, csrf_token, sign_in};
use crate::second_factors::{second_step, set_up_app, signed_in};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// An SMTP server that accepts every message and keeps it: enough of RFC 5321 for lettre.
#[derive(Clone, Default)]
pub(crate) struct MailSink {
    messages: Arc<Mutex<Vec<String>>>,
}

impl MailSink {
    async fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let sink = Self::default();
        let kept = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(kept.clone().converse(stream));
            }
        });
        (sink, url)
    }

    async fn converse(self, stream: tokio::net::TcpStream) {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 sink\r\n",
                "DATA" => {
                    write.write_all(b"354 end with .\r\n").await.unwrap();
                    let mut message = String::new();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line == "." {
                            break;
                        }
                        message.push_str(line.strip_prefix('.').unwrap_or(&line));
                        message.push('\n');
                    }
                    self.messages.lock().unwrap().push(message);
                    b"250 kept\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    return;
                }
                _ => b"250 ok\r\n",
            };
            write.write_all(reply).await.unwrap();
        }
    }

    fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// The next message, once it has arrived (mail goes out after the page answers).
    pub(crate) async fn message(&self, index: usize) -> String {
        for _ in 0..100 {
            if let Some(message) = self.messages.lock().unwrap().get(index) {
                return message.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail #{index} arrived");
    }
}

/// The reset link in a mail (quoted-printable may fold long lines with `=`).
fn link_in(message: &str) -> String {
    let unfolded = message.replace("=\n", "").replace("=3D", "=");
    let path = unfolded.find("/login/reset?token=").expect("a reset link in the mail");
    let start = unfolded[..path].rfind("http://").unwrap();
    unfolded[start..].split_whitespace().next().unwrap().to_owned()
}

pub(crate) async fn app_with_mail(backend: Backend) -> (TestApp, MailSink) {
    let (sink, url) = MailSink::start().await;
    let app = spawn_app_with(TestDb::new(&backend), |settings| {
        settings.smtp_url = Some(SecretString::from(url));
        settings.mail_from = Some("Latchkey <id@example.com>".into());
    })
    .await;
    (app, sink)
}

async fn ask_for_link(app: &TestApp, email: &str) -> reqwest::Response {
    let browser = app.browser();
    let page = browser.get(app.url("/login/forgot")).send().await.unwrap().text().await.unwrap();
    browser
        .post(app.url("/login/forgot"))
        .form(&[("csrf_token", csrf_token(&page).as_str()), ("email", email), ("return_to", "/account")])
        .send()
        .await
        .unwrap()
}

async fn choose_password(app: &TestApp, link: &str, password: &str, code: Option<&str>) -> reqwest::Response {
    let path = link.split_once("/login/reset").map(|(_, rest)| format!("/login/reset{rest}")).unwrap();
    let browser = app.browser();
    let page = browser.get(app.url(&path)).send().await.unwrap();
    let status = page.status();
    let html = page.text().await.unwrap();
    if status != 200 {
        return browser.get(app.url(&path)).send().await.unwrap();
    }
    let token = unescape(html.split(r#"name="token" value=""#).nth(1).unwrap().split('"').next().unwrap());
    let mut form = vec![
        ("csrf_token", csrf_token(&html)),
        ("token", token),
        ("new_password", password.to_owned()),
        ("confirm_password", password.to_owned()),
    ];
    if let Some(code) = code {
        form.push(("code", code.to_owned()));
    }
    browser.post(app.url("/login/reset")).form(&form).send().await.unwrap()
}

async fn a_mailed_link_sets_a_new_password_once_and_ends_everything_else(backend: Backend) {
    let (app, sink) = app_with_mail(backend).await;
    let grant = crate::refresh::grant(&app, &["read", "offline_access"]).await;
    let old_session = signed_in(&app, EMAIL).await;

    // Act: ask, then use the link.
    let asked = ask_for_link(&app, EMAIL).await;
    assert_eq!(asked.status(), 200);
    let answer = asked.text().await.unwrap();
    assert!(answer.contains("If an account uses that address"), "{answer}");
    let mail = sink.message(0).await;
    assert!(mail.contains("To: ada@example.com") && mail.contains("Reset your Latchkey password"), "{mail}");
    let link = link_in(&mail);
    assert!(link.starts_with(&app.url("/login/reset?token=")), "{link}");
    let set = choose_password(&app, &link, NEW_PASSWORD, None).await;
    assert_eq!(set.status(), 303);
    assert_eq!(location(&set), "/login?reset=1");

    // Assert: the link is spent, the new password signs in, the old one and everything it
    // opened are dead.
    let again = choose_password(&app, &link, "yet another passphrase", None).await;
    assert_eq!(again.status(), 404);
    assert!(again.text().await.unwrap().contains("This link does not work"));
    assert_eq!(sign_in(&app, &app.browser(), EMAIL, PASSWORD, "/account").await.status(), 401);
    assert_eq!(sign_in(&app, &app.browser(), EMAIL, NEW_PASSWORD, "/account").await.status(), 303);
    assert_eq!(old_session.get(app.url("/account")).send().await.unwrap().status(), 303, "signed out");
    let refreshed = crate::refresh::refresh(&app, &grant.client_id, &grant.refresh_token, None).await;
    assert_eq!(refreshed.status(), 400, "the refresh token died with the password");
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(refreshed["error"], "invalid_grant");
    let actions = app.audit_actions();
    assert!(actions.contains(&("user.password_reset_requested".into(), "success".into())));
    assert!(actions.contains(&("user.password_reset".into(), "success".into())));
}

async fn an_unknown_address_gets_the_same_page_and_no_mail(backend: Backend) {
    let (app, sink) = app_with_mail(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let unknown = ask_for_link(&app, "nobody@example.com").await;
    assert_eq!(unknown.status(), 200);
    let unknown = unknown.text().await.unwrap();
    let known = ask_for_link(&app, EMAIL).await.text().await.unwrap();
    let strip = |html: &str| html.split(r#"name="csrf_token""#).next().unwrap().to_owned();
    assert_eq!(strip(&unknown), strip(&known), "the same page either way");
    sink.message(0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1, "one mail, to the account that exists");
}

async fn links_are_throttled_per_account_and_bad_links_get_a_page(backend: Backend) {
    let (app, sink) = app_with_mail(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(ask_for_link(&app, EMAIL).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    sink.message(2).await;
    // A made-up token, and one for a link that has expired.
    let made_up = app.browser().get(app.url("/login/reset?token=nope")).send().await.unwrap();
    assert_eq!(made_up.status(), 404);
    let link = link_in(&sink.message(0).await);
    {
        use diesel::prelude::*;
        use latchkey::db::schema::password_resets;
        let mut conn = app.pool.get().unwrap();
        let past = latchkey::db::now() - chrono::TimeDelta::minutes(31);
        diesel::update(password_resets::table).set(password_resets::expires_at.eq(past)).execute(&mut *conn).unwrap();
    }
    assert_eq!(choose_password(&app, &link, NEW_PASSWORD, None).await.status(), 404, "expired");
}

async fn with_a_second_factor_the_link_alone_is_not_enough(backend: Backend) {
    let (app, sink) = app_with_mail(backend).await;
    app.create_user(EMAIL, PASSWORD);
    let (phone, codes) = set_up_app(&app, &signed_in(&app, EMAIL).await).await;
    ask_for_link(&app, EMAIL).await;
    let link = link_in(&sink.message(0).await);

    let without = choose_password(&app, &link, NEW_PASSWORD, Some("")).await;
    assert_eq!(without.status(), 400);
    assert!(without.text().await.unwrap().contains("That code is not right."));
    let with_code = choose_password(&app, &link, NEW_PASSWORD, Some(&codes[0])).await;
    assert_eq!(location(&with_code), "/login?reset=1");
    // The second factor stays: the new password still asks for it.
    let browser = app.browser();
    let response = sign_in(&app, &browser, EMAIL, NEW_PASSWORD, "/account").await;
    let second = location(&response);
    assert!(second.starts_with("/login/second-factor"), "{second}");
    assert_eq!(second_step(&app, &browser, &second, &phone.next_code()).await.status(), 303);
}

/// Without SMTP the mail is written to the log, with a warning, and its link works: trying
/// Latchkey out needs no mail server. A real `latchkey serve`, its log read from a file.
async fn without_smtp_the_link_is_in_the_log(backend: Backend) {
    use crate::process::{Instance, free_port, latchkey_with_input, migrated};
    let db = TestDb::new(&backend);
    let key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &key);
    let created = latchkey_with_input(&db, &key, &["user", "create", "--email", EMAIL, "--password-stdin"], PASSWORD);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("latchkey.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = Instance::start_logging(&db, &key, free_port(), &[], log.into());

    let url = |path: &str| crate::helpers::Served::url(&server, path);
    let browser = crate::helpers::browser();
    let page = browser.get(url("/login/forgot")).send().await.unwrap().text().await.unwrap();
    let asked = browser
        .post(url("/login/forgot"))
        .form(&[("csrf_token", csrf_token(&page).as_str()), ("email", EMAIL)])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 200);

    let mut logged = String::new();
    for _ in 0..100 {
        logged = std::fs::read_to_string(&log_path).unwrap();
        if logged.contains("/login/reset?token=") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logged.contains("no SMTP server is configured"), "{logged}");
    let link = link_in(&logged.replace("\\n", " "));
    let path = link.split_once("/login/reset").map(|(_, rest)| format!("/login/reset{rest}")).unwrap();
    let form = browser.get(url(&path)).send().await.unwrap();
    assert_eq!(form.status(), 200, "the logged link works");
}

crate::on_both_backends!(
    a_mailed_link_sets_a_new_password_once_and_ends_everything_else,
    an_unknown_address_gets_the_same_page_and_no_mail,
    links_are_throttled_per_account_and_bad_links_get_a_page,
    with_a_second_factor_the_link_alone_is_not_enough,
    without_smtp_the_link_is_in_the_log
);

/// The pages, as a person meets them.
#[tokio::test]
async fn resetting_a_password_works_in_chromium() {
    let Some((_driver, chromium)) = browser().await else { return };
    let (app, sink) = app_with_mail(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD);
    chromium.goto(&app.url("/login")).await.unwrap();
    click(&chromium, "a[href^='/login/forgot']").await;
    wait_for_text(&chromium, "Reset your password").await;
    chromium.find(Locator::Id("email")).await.unwrap().send_keys(EMAIL).await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_text(&chromium, "a link to choose a new password is on its way").await;
    screenshot(&chromium, "forgot-password-sent").await;
    let link = link_in(&sink.message(0).await);
    chromium.goto(&link).await.unwrap();
    wait_for_text(&chromium, "Choose a new password").await;
    chromium.find(Locator::Id("new_password")).await.unwrap().send_keys(NEW_PASSWORD).await.unwrap();
    chromium.find(Locator::Id("confirm_password")).await.unwrap().send_keys("not the same").await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_text(&chromium, "The new passwords do not match.").await;
    screenshot(&chromium, "reset-password-refused").await;
    chromium.find(Locator::Id("new_password")).await.unwrap().send_keys(NEW_PASSWORD).await.unwrap();
    chromium.find(Locator::Id("confirm_password")).await.unwrap().send_keys(NEW_PASSWORD).await.unwrap();
    click(&chromium, "button[type=submit]").await;
    wait_for_url(&chromium, &app.url("/login")).await;
    wait_for_text(&chromium, "Your password is changed").await;
    screenshot(&chromium, "reset-password-done").await;
}
