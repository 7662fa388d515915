//! The command line against a running server, as Hydra's CLI works against its admin API:
//! `latchkey login --server URL` gets an API key through the device and connect flows (the
//! person chooses the key in the browser), keeps it in the user's configuration directory
//! (mode 0600), and management commands given `--server` (or `LATCHKEY_SERVER`) then go
//! through the management API with it. `latchkey logout` revokes the key and forgets it.
//!
//! The key is the only thing kept, it is never printed, and it is sent to nothing but the
//! server it came from.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, RequestTokenError, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manage::clients::CLI_CLIENT_ID;
use crate::oauth::token_exchange::API_KEY_TOKEN_TYPE;

/// Overrides where keys are kept (a file path), for scripts and tests.
pub const CREDENTIALS_ENV: &str = "LATCHKEY_CREDENTIALS";

/// A server's address as people type it (`https://auth.example.com`), without a trailing
/// slash: the key kept for it is looked up by exactly this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ServerUrl {
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(value.trim())
            .with_context(|| format!("`{value}` is not a server address such as https://auth.example.com"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            bail!("`{value}` is not an http(s) server address");
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            bail!("`{value}` should be the server's address alone, without query, fragment or user");
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// Whether a key sent here crosses a network in the clear: plain http to anything but
    /// this machine.
    pub fn is_cleartext(&self) -> bool {
        let Ok(url) = url::Url::parse(&self.0) else { return true };
        let local = match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        url.scheme() == "http" && !local
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key kept for one server.
#[derive(Clone, Serialize, Deserialize)]
pub struct SavedKey {
    pub key_id: String,
    pub kind: String,
    pub name: String,
    pub key: String,
    pub saved_at: DateTime<Utc>,
}

impl std::fmt::Debug for SavedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedKey").field("key_id", &self.key_id).field("kind", &self.kind).finish_non_exhaustive()
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    servers: BTreeMap<String, SavedKey>,
}

/// `credentials.json` in Latchkey's configuration directory (`$XDG_CONFIG_HOME/latchkey` on
/// Linux, `~/Library/Application Support/latchkey` on macOS), or [`CREDENTIALS_ENV`].
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn default_location() -> anyhow::Result<Self> {
        if let Some(path) = std::env::var_os(CREDENTIALS_ENV).filter(|p| !p.is_empty()) {
            return Ok(Self::at(path.into()));
        }
        let dir = dirs::config_dir()
            .context("this system has no configuration directory; set LATCHKEY_CREDENTIALS to a file path")?;
        Ok(Self::at(dir.join("latchkey").join("credentials.json")))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> anyhow::Result<Stored> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a Latchkey credentials file", self.path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Stored::default()),
            Err(error) => Err(error).with_context(|| format!("could not read {}", self.path.display())),
        }
    }

    /// Replaces the file in one step, readable by its owner only: a new file is written
    /// beside it with mode 0600 and renamed over it. No servers left: no file.
    fn write(&self, stored: &Stored) -> anyhow::Result<()> {
        if stored.servers.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    Err(error).with_context(|| format!("could not remove {}", self.path.display()))
                }
                _ => Ok(()),
            };
        }
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let next = self.path.with_extension("json.new");
        let text = serde_json::to_string_pretty(stored)?;
        let mut file = private_file(&next).with_context(|| format!("could not write {}", next.display()))?;
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all())?;
        std::fs::rename(&next, &self.path).with_context(|| format!("could not write {}", self.path.display()))
    }

    pub fn get(&self, server: &ServerUrl) -> anyhow::Result<Option<SavedKey>> {
        Ok(self.read()?.servers.remove(server.as_str()))
    }

    pub fn save(&self, server: &ServerUrl, key: SavedKey) -> anyhow::Result<()> {
        let mut stored = self.read()?;
        stored.servers.insert(server.as_str().to_owned(), key);
        self.write(&stored)
    }

    /// Forgets the key for `server`; the one it held, if any.
    pub fn forget(&self, server: &ServerUrl) -> anyhow::Result<Option<SavedKey>> {
        let mut stored = self.read()?;
        let removed = stored.servers.remove(server.as_str());
        if removed.is_some() {
            self.write(&stored)?;
        }
        Ok(removed)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("could not create {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

/// Runs one command's requests to completion.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the HTTP client")?
        .block_on(work)
}

/// No redirects: a key is sent to the server it belongs to and nowhere else.
fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey-cli/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .build()
        .context("could not start the HTTP client")
}

/// The management API of one server, as the holder of a key.
struct Api {
    server: ServerUrl,
    key: String,
    http: reqwest::Client,
    /// Whether `key` is the one `latchkey login` kept (a refusal then says to sign in again).
    kept: bool,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Option<Value>> {
        let url = self.server.endpoint(&format!("/api/v1{path}"));
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response =
            request.send().await.with_context(|| format!("could not reach {} ({method} {path})", self.server))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            if text.is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} answered {method} {path} with something other than JSON", self.server));
        }
        let (code, message) = match serde_json::from_str::<Value>(&text) {
            Ok(body) => (
                body["error"].as_str().unwrap_or("error").to_owned(),
                body["message"].as_str().unwrap_or("no message").to_owned(),
            ),
            Err(_) => ("error".to_owned(), format!("HTTP {status}")),
        };
        let hint = if status == StatusCode::UNAUTHORIZED && self.kept {
            format!("\nthe kept key no longer works: run `latchkey login --server {}` again", self.server)
        } else {
            String::new()
        };
        let refusal =
            format!("{} refused {method} {path}: {message} ({code}, HTTP {}){hint}", self.server, status.as_u16());
        Err(match status {
            StatusCode::NOT_FOUND => super::Failure::NotFound(refusal).into(),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => super::Failure::Invalid(refusal).into(),
            _ => anyhow!(refusal),
        })
    }
}

/// A server the command line is signed in to.
pub struct Remote {
    api: Api,
}

impl Remote {
    /// The key kept for `server`, or an error saying how to get one.
    pub fn signed_in(server: &ServerUrl, store: &CredentialStore) -> anyhow::Result<Self> {
        let saved = store
            .get(server)?
            .ok_or_else(|| anyhow!("not signed in to {server}: run `latchkey login --server {server}` first"))?;
        Ok(Self { api: Api { server: server.clone(), key: saved.key, http: http_client()?, kept: true } })
    }

    /// One management API request (`path` under `/api/v1`); its JSON answer, `Null` for none.
    pub fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        block_on(async { Ok(self.api.call(method, path, body.as_ref()).await?.unwrap_or(Value::Null)) })
    }

    /// What the server says of `key` when it is presented to it (`GET /api-keys/current`),
    /// sent to this server only, as the kept key is.
    pub fn inspect(&self, key: &str) -> anyhow::Result<Value> {
        let api =
            Api { server: self.api.server.clone(), key: key.to_owned(), http: self.api.http.clone(), kept: false };
        block_on(async { Ok(api.call(Method::GET, "/api-keys/current", None).await?.unwrap_or(Value::Null)) })
    }
}

/// What `latchkey login` reports (never the key).
#[derive(Debug, Serialize)]
pub struct SignedIn {
    pub server: String,
    pub key_id: String,
    pub kind: String,
    pub name: String,
    pub shown_as: String,
    pub credentials: PathBuf,
}

#[derive(Deserialize)]
struct Metadata {
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
}

/// Asks `server` for an API key through the device and connect flows, waits while the person
/// chooses and approves it in the browser (the page offers `kind` first), and keeps it. A key
/// kept from before is revoked once the new one works. `tell` shows the person where to go.
pub fn login(
    server: &ServerUrl,
    kind: &str,
    client_id: Option<&str>,
    store: &CredentialStore,
    tell: impl Fn(&str),
) -> anyhow::Result<SignedIn> {
    if server.is_cleartext() {
        tell(&format!("Warning: {server} is not https: the key will cross the network in the clear."));
    }
    let http = http_client()?;
    block_on(async {
        let metadata: Metadata = http
            .get(server.endpoint("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("could not read {server}'s metadata: is it a Latchkey server?"))?
            .json()
            .await
            .with_context(|| format!("{server}'s metadata is not JSON"))?;
        let device_endpoint =
            metadata.device_authorization_endpoint.ok_or_else(|| anyhow!("{server} does not offer the device flow"))?;
        let client = BasicClient::new(ClientId::new(client_id.unwrap_or(CLI_CLIENT_ID).to_owned()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::new(metadata.token_endpoint).context("the token endpoint is not a URL")?)
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(device_endpoint).context("the device endpoint is not a URL")?,
            );
        let details: StandardDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_extra_param("requested_token_type", API_KEY_TOKEN_TYPE)
            .request_async(&http)
            .await
            .map_err(|e| refused(server, "the sign-in request", e))?;
        // The page's own `kind` parameter opens it on that kind's form.
        let page = details.verification_uri_complete().map_or_else(
            || details.verification_uri().to_string(),
            |complete| format!("{}&kind={kind}", complete.secret()),
        );
        tell(&format!(
            "To sign in, open this page in a browser:\n\n    {page}\n\n\
             Check that it shows the code {code}, choose the key, and allow it. Waiting…",
            code = details.user_code().secret()
        ));
        let answer = client
            .exchange_device_access_token(&details)
            .request_async(&http, tokio::time::sleep, Some(details.expires_in()))
            .await
            .map_err(|e| refused(server, "the sign-in", e))?;
        let api = Api { server: server.clone(), key: answer.access_token().secret().to_owned(), http, kept: true };
        let current = api
            .call(Method::GET, "/api-keys/current", None)
            .await?
            .ok_or_else(|| anyhow!("{server} did not describe the key it issued"))?;
        let text = |field: &str| current[field].as_str().unwrap_or_default().to_owned();
        let saved = SavedKey {
            key_id: text("id"),
            kind: text("kind"),
            name: text("name"),
            key: api.key.clone(),
            saved_at: Utc::now(),
        };
        let signed_in = SignedIn {
            server: server.to_string(),
            key_id: saved.key_id.clone(),
            kind: saved.kind.clone(),
            name: saved.name.clone(),
            shown_as: format!("{}…{}", text("prefix"), text("last_four")),
            credentials: store.path().to_owned(),
        };
        let previous = store.get(server)?;
        store.save(server, saved)?;
        if let Some(previous) = previous.filter(|p| p.key_id != signed_in.key_id) {
            let old = Api { key: previous.key, ..api };
            if let Err(error) = old.call(Method::DELETE, "/api-keys/current", None).await {
                tell(&format!("The key kept from before ({}) was not revoked: {error:#}", previous.key_id));
            }
        }
        Ok(signed_in)
    })
}

/// Words a failed OAuth request as the server put it.
fn refused<RE: std::error::Error + Send + Sync + 'static, T: oauth2::ErrorResponse + Send + Sync + 'static>(
    server: &ServerUrl,
    what: &str,
    error: RequestTokenError<RE, T>,
) -> anyhow::Error {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let text = serde_json::to_value(&response).unwrap_or_default();
            let code = text["error"].as_str().unwrap_or("error").to_owned();
            match text["error_description"].as_str() {
                Some(description) => anyhow!("{server} refused {what}: {description} ({code})"),
                None => anyhow!("{server} refused {what} ({code})"),
            }
        }
        other => anyhow::Error::new(other).context(format!("{what} at {server} failed")),
    }
}

/// What `latchkey logout` did.
#[derive(Debug, Serialize)]
pub struct SignedOut {
    pub server: String,
    pub key_id: String,
    /// Whether the server revoked the key (or it had already stopped working there).
    pub revoked: bool,
}

/// Revokes the key kept for `server` there, and forgets it here. The key is forgotten even
/// when the server cannot be reached; the error then says which key to revoke by hand.
pub fn logout(server: &ServerUrl, store: &CredentialStore) -> anyhow::Result<SignedOut> {
    let saved = store.forget(server)?.ok_or_else(|| anyhow!("not signed in to {server}"))?;
    let key_id = saved.key_id.clone();
    let api = Api { server: server.clone(), key: saved.key, http: http_client()?, kept: true };
    let revoked = block_on(async {
        let answer = api.http.delete(server.endpoint("/api/v1/api-keys/current")).bearer_auth(&api.key).send().await;
        Ok(match answer {
            // 401: it had already stopped working (revoked, expired, or its user gone).
            Ok(response) if response.status().is_success() || response.status() == StatusCode::UNAUTHORIZED => Ok(()),
            Ok(response) => {
                let status = response.status();
                let body: Value = response.json().await.unwrap_or_default();
                Err(format!("{} (HTTP {})", body["message"].as_str().unwrap_or("no reason given"), status.as_u16()))
            }
            Err(error) => Err(format!("could not reach it: {error}")),
        })
    })?;
    match revoked {
        Ok(()) => Ok(SignedOut { server: server.to_string(), key_id, revoked: true }),
        Err(why) => Err(anyhow!(
            "forgot the key here, but {server} did not revoke it: {why}\n\
             revoke key {key_id} in the dashboard ({server}/dashboard/api-keys)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_kept_without_a_trailing_slash() {
        assert_eq!(ServerUrl::parse("https://auth.example.com/").unwrap().as_str(), "https://auth.example.com");
        assert_eq!(ServerUrl::parse(" http://127.0.0.1:8080 ").unwrap().as_str(), "http://127.0.0.1:8080");
        assert_eq!(ServerUrl::parse("https://example.com/auth/").unwrap().as_str(), "https://example.com/auth");
        for bad in ["auth.example.com", "ftp://example.com", "https://example.com/?x=1", "https://u@example.com"] {
            assert!(ServerUrl::parse(bad).is_err(), "{bad}");
        }
        let cleartext = |url: &str| ServerUrl::parse(url).unwrap().is_cleartext();
        assert!(cleartext("http://auth.example.com") && cleartext("http://10.0.0.5:8080"));
        assert!(!cleartext("https://auth.example.com") && !cleartext("http://127.0.0.1:8080"));
        assert!(!cleartext("http://localhost:8080") && !cleartext("http://[::1]:8080"));
    }

    #[test]
    fn keys_are_kept_per_server_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::at(dir.path().join("nested").join("credentials.json"));
        let (one, two) = (ServerUrl::parse("http://one").unwrap(), ServerUrl::parse("http://two").unwrap());
        let key = |id: &str| SavedKey {
            key_id: id.into(),
            kind: "personal".into(),
            name: "laptop".into(),
            key: format!("sk_test_{id}"),
            saved_at: Utc::now(),
        };
        assert!(store.get(&one).unwrap().is_none());
        store.save(&one, key("a")).unwrap();
        store.save(&two, key("b")).unwrap();
        assert_eq!(store.get(&one).unwrap().unwrap().key, "sk_test_a");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{:?}", store.get(&two).unwrap()).contains("sk_test_b"), "Debug hides the key");
        assert_eq!(store.forget(&one).unwrap().unwrap().key_id, "a");
        assert!(store.get(&one).unwrap().is_none() && store.get(&two).unwrap().is_some());
        store.forget(&two).unwrap();
        assert!(!store.path().exists(), "no servers left, no file");
    }
}
