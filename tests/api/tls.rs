//! Latchkey serving TLS itself (`tls_cert_file`, `tls_key_file`): the `oauth2` crate gets a
//! token over HTTPS and HTTP/2, plain HTTP is refused, HSTS is sent, and a SIGHUP with new
//! files changes what new connections see while open ones go on.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use reqwest::Version;
use serde_json::Value;

use crate::helpers::{Backend, TestDb};
use crate::process::{Instance, free_port, latchkey, migrated, register_api_and_machine_client};

/// A self-signed certificate for localhost and 127.0.0.1, made by openssl: `(cert, key)` PEM.
fn self_signed(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={name}"), "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server's own certificate, not a CA's (webpki refuses a CA certificate as a server's).
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(made.status.success(), "{made:?}");
    (std::fs::read_to_string(cert).unwrap(), std::fs::read_to_string(key).unwrap())
}

/// A client that trusts `cert` only.
fn trusting(cert: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Writes the serving files as a deploy hook would: the new file renamed over the old.
fn install(dir: &Path, (cert, key): &(String, String)) {
    for (name, text) in [("serving.crt", cert), ("serving.key", key)] {
        std::fs::write(dir.join(format!("{name}.new")), text).unwrap();
        std::fs::rename(dir.join(format!("{name}.new")), dir.join(name)).unwrap();
    }
}

#[tokio::test]
async fn latchkey_serves_https_and_http2_and_reloads_its_certificate_on_sighup() {
    let db = TestDb::new(&Backend::Sqlite);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    migrated(&db, &master_key);
    let (client_id, client_secret) = register_api_and_machine_client(&db, &master_key);
    let dir = tempfile::tempdir().unwrap();
    let first = self_signed(dir.path(), "first");
    let second = self_signed(dir.path(), "second");
    install(dir.path(), &first);
    let (cert_file, key_file) = (dir.path().join("serving.crt"), dir.path().join("serving.key"));
    let port = free_port();
    let env = [
        ("LATCHKEY_TLS_CERT_FILE", cert_file.to_str().unwrap()),
        ("LATCHKEY_TLS_KEY_FILE", key_file.to_str().unwrap()),
        ("LATCHKEY_ISSUER", &format!("https://localhost:{port}")),
    ];
    let server = Instance::start(&db, &master_key, port, &env);
    let url = |path: &str| format!("https://localhost:{port}{path}");

    // The oauth2 crate, over HTTPS; HTTP/2 through ALPN, HTTP/1.1 for clients that ask for it.
    let old_connection = trusting(&first.0);
    let oauth = BasicClient::new(ClientId::new(client_id))
        .set_client_secret(ClientSecret::new(client_secret))
        .set_token_uri(TokenUrl::new(url("/oauth2/token")).unwrap());
    let token = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&old_connection)
        .await
        .expect("a token over HTTPS");
    assert_eq!(token.token_type().as_ref(), "bearer");
    let metadata = old_connection.get(url("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(metadata.version(), Version::HTTP_2);
    assert_eq!(metadata.headers()["strict-transport-security"], "max-age=31536000");
    let metadata: Value = metadata.json().await.unwrap();
    assert_eq!(metadata["token_endpoint"], url("/oauth2/token"));
    let http1 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(first.0.as_bytes()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let response = http1.get(url("/healthz")).send().await.unwrap();
    assert_eq!((response.status().as_u16(), response.version()), (200, Version::HTTP_11));

    // No plain HTTP beside it.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || plain.is_ok_and(|response| !response.status().is_success()), "plain HTTP is refused");

    // The container's and service manager's health check speaks TLS too.
    let bind = format!("127.0.0.1:{port}");
    let health = latchkey(&db, &master_key, &[env[0], env[1], ("LATCHKEY_BIND", &bind)], &["healthcheck"]);
    assert!(health.status.success(), "{health:?}");

    // SIGHUP with new files: new connections get the new certificate, the open one goes on.
    install(dir.path(), &second);
    let hangup = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    assert!(hangup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while trusting(&second.0).get(url("/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the new certificate is not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(trusting(&first.0).get(url("/healthz")).send().await.is_err(), "new connections no longer see the old one");
    let still = old_connection.get(url("/healthz")).send().await.expect("the connection open before goes on");
    assert_eq!(still.status(), 200);

    // A reload that cannot read its files keeps the certificate in use.
    std::fs::write(&cert_file, "not a certificate").unwrap();
    Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = trusting(&second.0).get(url("/healthz")).send().await.expect("still serving the second certificate");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unusable_certificate_files_stop_the_start_with_the_file_named() {
    let db = TestDb::new(&Backend::Sqlite);
    let master_key = latchkey::crypto::MasterKey::generate().encode();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = self_signed(dir.path(), "mine");
    let (_, other_key) = self_signed(dir.path(), "other");
    let (cert_file, key_file, garbage) =
        (dir.path().join("mine.crt"), dir.path().join("other.key"), dir.path().join("garbage.pem"));
    std::fs::write(&garbage, "nothing here").unwrap();
    assert!(!cert.is_empty() && !other_key.is_empty());
    for (cert, key, expected) in [
        (&cert_file, &key_file, "is not the key of the certificate"),
        (&garbage, &key_file, "tls_cert_file"),
        (&cert_file, &garbage, "tls_key_file"),
    ] {
        let env = [
            ("LATCHKEY_TLS_CERT_FILE", cert.to_str().unwrap()),
            ("LATCHKEY_TLS_KEY_FILE", key.to_str().unwrap()),
            ("LATCHKEY_BIND", "127.0.0.1:0"),
        ];
        let output = latchkey(&db, &master_key, &env, &["serve"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("could not load the TLS certificate") && stderr.contains(expected),
            "{expected}: {stderr}"
        );
    }
}
