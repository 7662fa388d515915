//! The `latchkey` command line, run as a user would (INTERFACE §1).

use crate::helpers::{Backend, TestDb};
use crate::process::{json, latchkey, latchkey_with_input, migrated};

async fn the_bootstrap_commands_print_their_secrets_once_as_json(backend: Backend) {
    // Arrange
    let db = TestDb::new(&backend);
    let key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &key);

    // Act
    let api = json(&latchkey(
        &db,
        &key,
        &[],
        &["api", "create", "--audience", "https://api.example.com", "--scope", "read", "write", "--json"],
    ));
    let hs = json(&latchkey(
        &db,
        &key,
        &[],
        &["api", "create", "--audience", "https://hs.example.com", "--scope", "read", "--alg", "HS256", "--json"],
    ));
    let client = json(&latchkey(
        &db,
        &key,
        &[],
        &[
            "client",
            "create",
            "--name",
            "Reports",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
            "--audience",
            "https://api.example.com",
            "--json",
        ],
    ));
    let public = json(&latchkey(
        &db,
        &key,
        &[],
        &[
            "client",
            "create",
            "--name",
            "SPA",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--public",
            "--refresh-retry-window",
            "5",
            "--json",
        ],
    ));
    let owner = json(&latchkey(
        &db,
        &key,
        &[],
        &["api-key", "create", "--kind", "tenant-owner", "--name", "bootstrap", "--json"],
    ));
    let live_owner = json(&latchkey(
        &db,
        &key,
        &[("LATCHKEY_ENVIRONMENT", "live")],
        &["api-key", "create", "--kind", "tenant-owner", "--name", "prod", "--json"],
    ));

    // Assert
    assert_eq!(api["audience"], "https://api.example.com");
    assert_eq!(api["signing_alg"], "RS256");
    assert!(api.get("secret").is_none());
    assert_eq!(hs["signing_alg"], "HS256");
    assert!(hs["secret"].as_str().is_some_and(|s| s.len() >= 43));
    assert!(client["client_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(client["client_secret"].as_str().is_some_and(|s| s.len() >= 43));
    assert_eq!(client["scope"], "read");
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["token_endpoint_auth_method"], "none");
    assert_eq!(public["refresh_retry_window_secs"], 5);
    assert_eq!(client["refresh_retry_window_secs"], 30);
    let owner_key = owner["key"].as_str().unwrap();
    assert!(owner_key.starts_with("sk_test_"), "{owner_key}");
    assert!(latchkey::apikeys::parse(owner_key).is_ok());
    assert_eq!(owner["kind"], "tenant_owner");
    assert!(owner["id"].as_str().is_some());
    assert!(live_owner["key"].as_str().unwrap().starts_with("sk_live_"));

    // The secrets are stored only as hashes.
    let pool = latchkey::db::build_pool(&db.target(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let stored = latchkey::db::clients::find_client(&mut conn, client["client_id"].as_str().unwrap()).unwrap().unwrap();
    assert_ne!(stored.secret_hash.as_deref(), client["client_secret"].as_str());
    let hasher = latchkey::crypto::MasterKey::parse(&key).unwrap().token_hasher();
    assert!(hasher.verify(client["client_secret"].as_str().unwrap(), stored.secret_hash.as_deref().unwrap()));
    let key_row = latchkey::db::api_keys::find_api_key_by_hash(&mut conn, hasher.hash(owner_key).as_str()).unwrap();
    assert_eq!(key_row.unwrap().last_four, owner_key[owner_key.len() - 4..]);
}

async fn keys_rotate_withdraw_and_list_report_each_keys_state(backend: Backend) {
    let db = TestDb::new(&backend);
    let key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &key);

    let first = json(&latchkey(&db, &key, &[], &["keys", "rotate", "--json"]));
    let second = json(&latchkey(&db, &key, &[], &["keys", "rotate", "--json"]));
    let ec = json(&latchkey(&db, &key, &[], &["keys", "rotate", "--alg", "ES256", "--json"]));
    let first_kid = first["kid"].as_str().unwrap();
    let active_withdrawal = latchkey(&db, &key, &[], &["keys", "withdraw", second["kid"].as_str().unwrap()]);
    let withdrawn = json(&latchkey(&db, &key, &[], &["keys", "withdraw", first_kid, "--json"]));
    let listing = json(&latchkey(&db, &key, &[], &["keys", "list", "--json"]));

    assert_eq!(first["retired"], 0);
    assert_eq!(second["retired"], 1);
    assert_eq!(ec["algorithm"], "ES256");
    assert_eq!(ec["retired"], 0, "rotating one algorithm leaves the others alone");
    let states: Vec<(&str, &str)> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states.len(), 3, "{listing:#}");
    assert!(states.contains(&(second["kid"].as_str().unwrap(), "active")), "{listing:#}");
    assert!(states.contains(&(first_kid, "expired")), "withdrawn: no longer published: {listing:#}");
    assert_eq!(withdrawn["kid"], first_kid);
    assert!(!active_withdrawal.status.success(), "the key that signs is not withdrawn");
    let refusal = String::from_utf8_lossy(&active_withdrawal.stderr);
    assert!(refusal.contains("rotate that algorithm first"), "{refusal}");
}

async fn invalid_input_fails_with_a_message_and_no_partial_state(backend: Backend) {
    let db = TestDb::new(&backend);
    let key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &key);

    let unknown_audience = latchkey(
        &db,
        &key,
        &[],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--grant-type",
            "client_credentials",
            "--audience",
            "https://nowhere.example.com",
        ],
    );
    let public_machine = latchkey(
        &db,
        &key,
        &[],
        &["client", "create", "--name", "x", "--grant-type", "client_credentials", "--public"],
    );
    let bad_redirect = latchkey(
        &db,
        &key,
        &[],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "http://evil.example.com/cb",
        ],
    );

    for (name, output) in [
        ("unknown audience", unknown_audience),
        ("public machine client", public_machine),
        ("http redirect", bad_redirect),
    ] {
        assert_eq!(output.status.code(), Some(2), "{name}: bad input is bad usage");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("latchkey: "), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

async fn user_create_reads_the_password_from_stdin_and_stores_only_argon2id(backend: Backend) {
    let db = TestDb::new(&backend);
    let key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &key);

    let created = json(&latchkey_with_input(
        &db,
        &key,
        &["user", "create", "--email", "Grace@Example.com", "--name", "Grace Hopper", "--password-stdin", "--json"],
        "a long enough password\n",
    ));
    let too_short =
        latchkey_with_input(&db, &key, &["user", "create", "--email", "x@example.com", "--password-stdin"], "short\n");
    let duplicate = latchkey_with_input(
        &db,
        &key,
        &["user", "create", "--email", "grace@example.com", "--password-stdin"],
        "another long password\n",
    );

    assert_eq!(created["email"], "grace@example.com");
    assert_eq!(created["status"], "active");
    assert_eq!(too_short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&too_short.stderr).contains("at least 8"));
    assert_eq!(duplicate.status.code(), Some(1));
    let pool = latchkey::db::build_pool(&db.target(), 1).unwrap();
    let mut conn = pool.get().unwrap();
    let user = latchkey::db::users::find_user(&mut conn, created["id"].as_str().unwrap()).unwrap().unwrap();
    let stored = user.password_hash.unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
    assert!(latchkey::passwords::PasswordHasher::new().verify("a long enough password", Some(&stored)));
}

#[tokio::test]
async fn a_bad_configuration_names_the_setting_and_exits_2() {
    let db = TestDb::new(&Backend::Sqlite);
    let key = latchkey::crypto::MasterKey::generate().encode();

    for (variable, value) in [
        ("LATCHKEY_ENVIRONMENT", "production"),
        ("LATCHKEY_BIND", "not-an-address"),
        ("LATCHKEY_DATABASE_URL", "mysql://localhost/db"),
        ("LATCHKEY_MASTER_KEY", "short"),
        ("LATCHKEY_ISSUER", "https://id.example.com/?x=1"),
        ("LATCHKEY_SMTP_URL", "smtp://mail.example.com?tls=sometimes"),
        ("LATCHKEY_MAIL_FROM", "Latchkey <not an address>"),
        ("LATCHKEY_REDIS_URL", "redis://:hunter2@[not-a-host"),
        ("LATCHKEY_TLS_KEY_FILE", "/nowhere/key.pem"),
    ] {
        let output = latchkey(&db, &key, &[(variable, value)], &["migrate"]);
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let setting = variable.trim_start_matches("LATCHKEY_").to_lowercase();
        assert!(stderr.contains(&setting), "{variable}: {stderr}");
        assert!(!stderr.contains("hunter2"), "no password echoed: {stderr}");
    }
}

/// Run where there is no database (the wrong directory, a wrong URL), a command says it made
/// one and where (the bootstrap key of INTERFACE §1 comes first on a fresh machine); where
/// there is one, it says which it uses. Never a password.
async fn commands_say_which_database_they_use_and_when_they_made_one(backend: Backend) {
    let db = TestDb::new(&backend);
    let key = latchkey::crypto::MasterKey::generate().encode();

    let fresh = latchkey(&db, &key, &[], &["client", "list", "--json"]);
    assert_eq!(json(&fresh), serde_json::json!([]));
    let stderr = String::from_utf8_lossy(&fresh.stderr);
    assert!(stderr.contains("latchkey: made a new database at"), "{stderr}");
    assert!(stderr.contains("LATCHKEY_DATABASE_URL"), "it says how to point at another: {stderr}");
    match db.target() {
        latchkey::config::DatabaseTarget::Sqlite(path) => {
            assert!(stderr.contains(&path.display().to_string()), "the path is named: {stderr}")
        }
        latchkey::config::DatabaseTarget::Postgres(_) => {
            assert!(stderr.contains("postgres://<redacted>"), "the URL's password is not shown: {stderr}")
        }
    }

    let again = latchkey(&db, &key, &[], &["client", "list", "--json"]);
    assert_eq!(json(&again), serde_json::json!([]));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("latchkey: using the database"), "{stderr}");
    assert!(!stderr.contains("made a new database"), "{stderr}");

    // A command of several steps (a team, then its members) opens the database once.
    let team = json(&latchkey(&db, &key, &[], &["team", "create", "Platform", "--json"]));
    let shown = latchkey(&db, &key, &[], &["team", "show", team["id"].as_str().unwrap(), "--json"]);
    assert_eq!(json(&shown)["members"], serde_json::json!([]));
    let stderr = String::from_utf8_lossy(&shown.stderr);
    assert_eq!(stderr.matches("using the database").count(), 1, "{stderr}");
}

/// A master key other than the database's is refused before anything is written: a client
/// secret hashed under it would never work, a signing key sealed under it would stop the
/// server.
async fn a_master_key_that_does_not_open_the_database_is_refused(backend: Backend) {
    let db = TestDb::new(&backend);
    let key = latchkey::crypto::MasterKey::generate().encode();
    let other = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &key);
    assert!(latchkey(&db, &key, &[], &["keys", "rotate"]).status.success());

    let args = ["client", "create", "--name", "Reports", "--grant-type", "client_credentials", "--json"];
    let refused = latchkey(&db, &other, &[], &args);
    let rotated = latchkey(&db, &other, &[], &["keys", "rotate"]);
    // No master key at all: the development key (made in the scratch directory) is refused too.
    let scratch = tempfile::tempdir().unwrap();
    let without_key = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(scratch.path())
        .env("LATCHKEY_DATABASE_URL", db.url())
        .env_remove("LATCHKEY_MASTER_KEY")
        .env_remove("LATCHKEY_ENVIRONMENT")
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&without_key.stderr).contains("no master key is set here"), "{without_key:?}");

    for output in [refused, rotated, without_key] {
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("the master key does not open this database"), "{stderr}");
        assert!(!stderr.contains(&other), "the key is never printed: {stderr}");
    }
    assert_eq!(json(&latchkey(&db, &key, &[], &["client", "list", "--json"])), serde_json::json!([]));
    let keys = json(&latchkey(&db, &key, &[], &["keys", "list", "--json"]));
    assert_eq!(keys.as_array().unwrap().len(), 1, "nothing was sealed under the other key: {keys}");
}

/// `latchkey config` shows each effective setting and its layer, and no secret.
#[tokio::test]
async fn config_shows_each_setting_and_where_it_came_from_but_no_secret() {
    let db = TestDb::new(&Backend::Sqlite);
    let key = latchkey::crypto::MasterKey::generate().encode();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:9999\"\n").unwrap();
    let redis = "redis://:hunter2@127.0.0.1:6379";
    let file_arg = file.display().to_string();

    let shown = latchkey(&db, &key, &[("LATCHKEY_REDIS_URL", redis)], &["--config", &file_arg, "config", "--json"]);

    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(!stdout.contains(&key) && !stdout.contains("hunter2"), "no secret printed: {stdout}");
    let listed = json(&shown);
    let setting = |name: &str| listed.as_array().unwrap().iter().find(|s| s["setting"] == name).cloned().unwrap();
    assert_eq!(
        setting("bind"),
        serde_json::json!({ "setting": "bind", "value": "127.0.0.1:9999", "from": format!("file {file_arg}") })
    );
    let id = latchkey::crypto::MasterKey::parse(&key).unwrap().id();
    assert_eq!(setting("master_key")["value"], format!("(set, not shown; id {id})"), "the id, never the key");
    assert_eq!(setting("master_key")["from"], "environment LATCHKEY_MASTER_KEY");
    assert_eq!(setting("redis_url")["value"], "(set, not shown)");
    assert_eq!(
        setting("access_token_ttl_secs"),
        serde_json::json!({ "setting": "access_token_ttl_secs", "value": "3600", "from": "default" })
    );
    assert_eq!(setting("smtp_url")["value"], "unset");
}

/// A configuration file named on purpose must exist; the default one may be absent.
#[tokio::test]
async fn a_named_configuration_file_that_is_missing_is_an_error() {
    let db = TestDb::new(&Backend::Sqlite);
    let key = latchkey::crypto::MasterKey::generate().encode();

    let by_flag = latchkey(&db, &key, &[], &["--config", "nope.toml", "migrate"]);
    let by_variable = latchkey(&db, &key, &[("LATCHKEY_CONFIG", "nope.toml")], &["migrate"]);
    let by_default = latchkey(&db, &key, &[], &["migrate"]);

    for output in [by_flag, by_variable] {
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("the configuration file nope.toml does not exist"), "{stderr}");
    }
    assert!(by_default.status.success(), "{}", String::from_utf8_lossy(&by_default.stderr));
}

/// A Redis that does not answer at start is named by its address (never its password),
/// and the cause is said once.
#[tokio::test]
async fn an_unreachable_redis_is_named_by_its_address() {
    let db = TestDb::new(&Backend::Sqlite);
    let key = latchkey::crypto::MasterKey::generate().encode();
    let port = crate::process::free_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");

    let output = latchkey(&db, &key, &[("LATCHKEY_REDIS_URL", &url), ("LATCHKEY_BIND", "127.0.0.1:0")], &["serve"]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find(|line| line.starts_with("latchkey: ")).unwrap_or_default();
    assert!(line.contains(&format!("could not connect to Redis at 127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_eq!(line.matches("refused").count(), 1, "the cause once: {line}");
}

#[tokio::test]
async fn help_documents_every_subcommand() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey")).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for subcommand in [
        "serve", "migrate", "config", "client", "api", "keys", "api-key", "user", "team", "consent", "audit", "login",
        "logout",
    ] {
        assert!(help.contains(subcommand), "{subcommand} missing from --help");
    }
}

/// Shell completions and manual pages come from the command definitions alone, so they are
/// made even where the configuration is broken (a packager's build machine).
#[tokio::test]
async fn completions_and_manual_pages_are_generated_even_with_a_bad_configuration() {
    let latchkey = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command.env("LATCHKEY_BIND", "not an address");
        command
    };
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [("bash", "_latchkey()"), ("zsh", "#compdef latchkey"), ("fish", "complete -c latchkey")] {
        let output = latchkey().args(["completions", shell]).output().unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell}");
        assert!(script.contains("rotate-secret") && script.contains("inspect"), "{shell}: every command completes");
        if shell == "bash" {
            let file = dir.path().join("latchkey.bash");
            std::fs::write(&file, &script).unwrap();
            let checked = std::process::Command::new("bash").arg("-n").arg(&file).output().unwrap();
            assert!(checked.status.success(), "bash reads it: {checked:?}");
        }
    }
    let output = latchkey().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "an unknown shell is bad usage");

    let pages = dir.path().join("man1");
    std::fs::create_dir(&pages).unwrap();
    let output = latchkey().args(["man", "--dir", pages.to_str().unwrap()]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    for page in ["latchkey.1", "latchkey-client-update.1", "latchkey-api-key-inspect.1", "latchkey-backup.1"] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap_or_else(|_| panic!("{page} written"));
        assert!(text.contains(".TH "), "{page} is a manual page");
    }
    let single = latchkey().arg("man").output().unwrap();
    assert!(String::from_utf8_lossy(&single.stdout).contains(".SH SUBCOMMANDS"), "latchkey(1) on stdout");
    // groff reads every page without a warning, as man(1) runs it (UTF-8 through preconv).
    if std::process::Command::new("groff").arg("--version").output().is_ok() {
        for page in std::fs::read_dir(&pages).unwrap() {
            let page = page.unwrap().path();
            let rendered =
                std::process::Command::new("groff").args(["-k", "-man", "-ww", "-z"]).arg(&page).output().unwrap();
            assert!(rendered.status.success() && rendered.stderr.is_empty(), "{}: {rendered:?}", page.display());
        }
    }
}

crate::on_both_backends!(
    user_create_reads_the_password_from_stdin_and_stores_only_argon2id,
    the_bootstrap_commands_print_their_secrets_once_as_json,
    keys_rotate_withdraw_and_list_report_each_keys_state,
    invalid_input_fails_with_a_message_and_no_partial_state,
    commands_say_which_database_they_use_and_when_they_made_one,
    a_master_key_that_does_not_open_the_database_is_refused
);
