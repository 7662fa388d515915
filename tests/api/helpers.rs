//! Starting the real application on a random port with a fresh database, and one helper
//! per endpoint.

use std::sync::LazyLock;

use actix_web::web;
use diesel::connection::SimpleConnection;
use latchkey::config::{DatabaseTarget, Settings};
use latchkey::db::{self, DbPool};
use latchkey::domain::ApiSigning;
use latchkey::domain::SigningAlgorithm;
use latchkey::manage;
use latchkey::manage::apis::{ApiRegistration, RegisteredApi};
use latchkey::manage::clients::{ClientRegistration, RegisteredClient};
use latchkey::startup::Application;
use latchkey::state::AppState;
use serde_json::{Value, json};
use tempfile::TempDir;

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        latchkey::telemetry::init_tracing(latchkey::config::LogFormat::Text);
    }
});

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The server URL from `LATCHKEY_TEST_POSTGRES_URL`; each test makes its own database.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL, when CI (or a developer) provides one.
    pub fn postgres() -> Option<Self> {
        std::env::var("LATCHKEY_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty()).map(Self::Postgres)
    }
}

/// Generates `sqlite` and `postgres` variants of async tests written as
/// `async fn name(backend: Backend)`. The PostgreSQL variant passes trivially, saying so,
/// when no server is configured.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    match $crate::helpers::Backend::postgres() {
                        Some(backend) => super::$name(backend).await,
                        None => eprintln!("LATCHKEY_TEST_POSTGRES_URL is not set: PostgreSQL not tested"),
                    }
                }
            )*
        }
    };
}

/// A database of its own, removed when the test ends.
pub struct TestDb {
    target: DatabaseTarget,
    url: String,
    _dir: Option<TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    pub fn new(backend: &Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
                Self { target: DatabaseTarget::parse(&url).unwrap(), url, _dir: Some(dir), postgres: None }
            }
            Backend::Postgres(server_url) => {
                let name = format!("latchkey_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = latchkey::db::establish_postgres(server_url).expect("PostgreSQL is reachable");
                admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("a test database");
                let mut url = url::Url::parse(server_url).expect("LATCHKEY_TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                let url = url.to_string();
                Self {
                    target: DatabaseTarget::parse(&url).unwrap(),
                    url,
                    _dir: None,
                    postgres: Some((server_url.clone(), name)),
                }
            }
        }
    }

    /// Another handle on the same database, as a restarted server would open it; only the
    /// original removes it.
    pub fn reuse(other: &TestDb) -> Self {
        Self { target: other.target.clone(), url: other.url.clone(), _dir: None, postgres: None }
    }

    pub fn target(&self) -> DatabaseTarget {
        self.target.clone()
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server_url, name)) = &self.postgres
            && let Ok(mut admin) = latchkey::db::establish_postgres(server_url)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub pool: DbPool,
    pub state: web::Data<AppState>,
    pub db: TestDb,
    /// The first-start link the server logged (there is nobody yet in a fresh database).
    pub setup_link: Option<String>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let db = TestDb::new(&backend);
    spawn_app_with(db, |_| {}).await
}

/// Starts a server on `db` with test settings adjusted by `configure`.
pub async fn spawn_app_with(db: TestDb, configure: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TRACING);
    let mut settings = Settings::for_tests(db.target());
    configure(&mut settings);
    let app = Application::build(settings).await.expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let setup_link = app.setup_link().map(str::to_owned);
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { address, http, pool: state.pool.clone(), state, db, setup_link }
}

pub const API: &str = "https://api.example.com";

/// A running Latchkey reached over HTTP: in this test process, or in a process of its own.
pub trait Served {
    fn url(&self, path: &str) -> String;
    /// A client that does not follow redirects.
    fn http(&self) -> &reqwest::Client;
}

impl Served for TestApp {
    fn url(&self, path: &str) -> String {
        TestApp::url(self, path)
    }

    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// A client that behaves like a browser: keeps cookies, does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap()
}

/// Posts `form` to `path`, with HTTP Basic client authentication when `basic` is given.
pub async fn post_form(
    server: &impl Served,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = server.http().post(server.url(path)).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.expect("the server answers")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn issuer(&self) -> String {
        self.state.issuer.to_string()
    }

    pub fn create_api(&self, audience: &str, scopes: &[&str], signing: &str) -> RegisteredApi {
        let mut conn = self.pool.get().unwrap();
        let registration = ApiRegistration {
            team_id: None,
            name: None,
            audience: audience.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            signing: signing.parse::<ApiSigning>().unwrap(),
            token_lifetime_secs: None,
        };
        manage::apis::register_api(&mut conn, &self.state.sealer, &manage::Caller::system(), registration, 3600)
            .expect("the API registers")
    }

    pub fn register_client(&self, registration: ClientRegistration) -> RegisteredClient {
        let mut conn = self.pool.get().unwrap();
        manage::clients::register_client(
            &mut conn,
            &self.state.hasher,
            &self.state.sealer,
            &manage::Caller::system(),
            registration,
        )
        .expect("the client registers")
    }

    pub fn create_client(&self, grants: &[&str], scopes: &[&str], audiences: &[&str]) -> RegisteredClient {
        let registration = ClientRegistration {
            name: "Test client".into(),
            team_id: None,
            token_endpoint_auth_method: None,
            grant_types: grants.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            redirect_uris: if grants.contains(&"authorization_code") {
                vec!["https://app.example.com/callback".into()]
            } else {
                vec![]
            },
            post_logout_redirect_uris: vec![],
            public: false,
            ..Default::default()
        };
        self.register_client(registration)
    }

    /// An RS256 API at [`API`] with `read write delete`, and a client allowed `read write` on it.
    pub fn create_machine_client(&self) -> RegisteredClient {
        self.create_api(API, &["read", "write", "delete"], "RS256");
        self.create_client(&["client_credentials"], &["read", "write"], &[API])
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> reqwest::Response {
        post_form(self, path, form, basic).await
    }

    pub async fn post_token(&self, form: &[(&str, &str)], client: &RegisteredClient) -> reqwest::Response {
        self.post_form("/oauth2/token", form, Some(credentials(client))).await
    }

    /// A token for `client` by client credentials; panics unless it is issued.
    pub async fn client_credentials_token(&self, client: &RegisteredClient, scope: &str) -> String {
        let response = self.post_token(&[("grant_type", "client_credentials"), ("scope", scope)], client).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn introspect(&self, token: &str, client: &RegisteredClient) -> Value {
        let response = self.post_form("/oauth2/introspect", &[("token", token)], Some(credentials(client))).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.http.get(self.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap()
    }

    /// Rotates the signing key of `algorithm` as `latchkey keys rotate` does, then makes
    /// this server pick it up without waiting for its periodic reload.
    pub async fn rotate_key(&self, algorithm: SigningAlgorithm) -> String {
        let rotated = {
            let mut conn = self.pool.get().unwrap();
            let window = manage::signing_keys::retirement_window(&mut conn, 3600, 30).unwrap();
            manage::signing_keys::rotate_key(
                &mut conn,
                &self.state.sealer,
                &latchkey::audit::Context::SYSTEM,
                algorithm,
                window,
                db::now(),
            )
            .unwrap()
        };
        self.state.reload_keys().await.unwrap();
        rotated.kid
    }

    /// A user who signs in with `password`.
    pub fn create_user(&self, email: &str, password: &str) -> latchkey::manage::users::RegisteredUser {
        let mut conn = self.pool.get().unwrap();
        let registration = latchkey::manage::users::UserRegistration {
            email: email.into(),
            name: Some("Ada Lovelace".into()),
            password: latchkey::passwords::PasswordHasher::new().hash(password).expect("a valid password"),
            role: None,
        };
        manage::users::register_user(&mut conn, &manage::Caller::system(), registration).expect("the user registers")
    }

    /// A client that behaves like a browser: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        browser()
    }

    /// A tenant-owner key, as `latchkey api-key create --kind tenant-owner` makes one.
    pub fn owner_key(&self) -> String {
        let mut conn = self.pool.get().unwrap();
        let environment = self.state.settings.environment;
        manage::api_keys::create_tenant_owner_key(&mut conn, &self.state.hasher, environment, "ops").unwrap().key
    }

    /// A restricted key with `permissions`, made with `owner`.
    pub async fn restricted_key(&self, owner: &str, permissions: &[&str]) -> String {
        let body = json!({ "kind": "restricted", "name": "restricted", "permissions": permissions });
        let (status, made) = self.api("POST", "/api-keys", owner, Some(body)).await;
        assert_eq!(status, 201, "{made}");
        made["key"].as_str().unwrap().to_owned()
    }

    /// Calls the management API with `key`; answers the status and the JSON body (`null`
    /// when there is none).
    pub async fn api(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        management_api(self, method, path, key, body).await
    }

    /// A personal key made the way a user makes one: signed in, on the account page.
    pub async fn personal_key_from_account_page(&self, email: &str, password: &str) -> String {
        personal_key_from_account_page(self, email, password).await
    }

    pub fn audit_actions(&self) -> Vec<(String, String)> {
        let mut conn = self.pool.get().unwrap();
        db::audit::list_audit_events(&mut conn, 1000)
            .unwrap()
            .into_iter()
            .map(|event| (event.action, event.outcome))
            .collect()
    }

    /// The details of every audit event with this action, newest first.
    pub fn audit_events_of(&self, action: &str) -> Vec<Value> {
        let mut conn = self.pool.get().unwrap();
        db::audit::list_audit_events(&mut conn, 1000)
            .unwrap()
            .into_iter()
            .filter(|event| event.action == action)
            .map(|event| serde_json::from_str(&event.details).unwrap())
            .collect()
    }
}

pub fn credentials(client: &RegisteredClient) -> (&str, &str) {
    (client.client_id.as_str(), client.client_secret.as_deref().expect("a confidential client"))
}

/// Verifies an access token the way a resource server would: key from the JWKS by `kid`,
/// algorithm from the key, audience and issuer checked.
pub fn verify_with_jwks(
    token: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    let kid = header.kid.ok_or(jsonwebtoken::errors::ErrorKind::InvalidToken)?;
    let jwk = jwks.find(&kid).ok_or(jsonwebtoken::errors::ErrorKind::InvalidToken)?;
    let algorithm = match jwk.common.key_algorithm {
        Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => jsonwebtoken::Algorithm::ES256,
        Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA) => jsonwebtoken::Algorithm::EdDSA,
        _ => jsonwebtoken::Algorithm::RS256,
    };
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|data| data.claims)
}

/// A personal key made the way a user makes one: signed in, on the account page.
pub async fn personal_key_from_account_page(server: &impl Served, email: &str, password: &str) -> String {
    let browser = browser();
    let signed_in = crate::login::sign_in(server, &browser, email, password, "/account").await;
    assert_eq!(signed_in.status(), 303, "{email} signs in");
    let page = browser.get(server.url("/account")).send().await.unwrap().text().await.unwrap();
    let token = crate::login::csrf_token(&page);
    let response = browser
        .post(server.url("/account/api-keys"))
        .form(&[("name", "laptop"), ("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store", "the page with the key is not cached");
    let html = response.text().await.unwrap();
    let marker = r#"id="new-key" type="text" readonly value=""#;
    let start = html.find(marker).expect("the new key is shown") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Calls the management API at `server` with `key`; answers the status and the JSON body
/// (`null` when there is none).
pub async fn management_api(
    server: &impl Served,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server.http().request(method, server.url(&format!("/api/v1{path}"))).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}
