//! Settings: defaults in code, overridden by `latchkey.toml`, overridden by `LATCHKEY_*`
//! environment variables (INTERFACE §1). Everything is validated here, once, so that the
//! rest of the server works with parsed values and a bad configuration stops the start
//! with a message that names the setting.
//!
//! Floor: leaves (docs/architecture.md); names only `domain` and `crypto`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::Issuer;

/// Every key a `LATCHKEY_*` variable may set; other `LATCHKEY_*` variables (such as
/// `LATCHKEY_TEST_POSTGRES_URL`) belong to other tools and are ignored.
const KEYS: &[&str] = &[
    "database_url",
    "database_pool_size",
    "bind",
    "issuer",
    "environment",
    "master_key",
    "previous_master_keys",
    "rate_limit_per_hour",
    "rate_limit_burst",
    "failed_auth_per_hour",
    "failed_auth_burst",
    "redis_url",
    "access_token_ttl_secs",
    "key_refresh_secs",
    "cache_max_age_secs",
    "workers",
    "log_format",
    "jwks_uri_allow_private",
    "smtp_url",
    "mail_from",
    "tls_cert_file",
    "tls_key_file",
];

/// Settings whose values `latchkey config` never prints: keys and URLs that may hold a
/// password.
const SECRET_KEYS: &[&str] = &["master_key", "previous_master_keys", "redis_url", "smtp_url"];

/// The layers, lowest first: defaults in code, the file (if it exists), the environment.
fn layers(config_file: &Path) -> Figment {
    Figment::from(Serialized::defaults(RawSettings::default()))
        .merge(Toml::file(config_file))
        .merge(Env::prefixed("LATCHKEY_").only(KEYS))
}

/// An optional setting left out: figment keeps it as an empty value.
fn is_unset(value: &figment::value::Value) -> bool {
    matches!(value, figment::value::Value::Empty(..))
}

/// One setting as `latchkey config` shows it.
#[derive(Debug, Serialize)]
pub struct SettingSource {
    pub setting: &'static str,
    /// The effective value; `unset`, or `(set, not shown)` for a secret.
    pub value: String,
    /// `default`, `file PATH` or `environment LATCHKEY_…`.
    pub from: String,
}

/// The configuration as written by the operator, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    database_url: String,
    database_pool_size: u32,
    bind: String,
    issuer: Option<String>,
    environment: String,
    master_key: Option<String>,
    /// Comma-separated: keys a rotation replaced, kept for what they hashed and sealed.
    previous_master_keys: Option<String>,
    rate_limit_per_hour: u64,
    rate_limit_burst: u64,
    failed_auth_per_hour: u64,
    failed_auth_burst: u64,
    redis_url: Option<String>,
    access_token_ttl_secs: i64,
    key_refresh_secs: u64,
    cache_max_age_secs: u64,
    workers: Option<usize>,
    log_format: String,
    jwks_uri_allow_private: bool,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
}

/// Connections a server keeps at most to its database unless configured otherwise.
pub const DEFAULT_DATABASE_POOL_SIZE: u32 = 10;

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://latchkey.db".into(),
            database_pool_size: DEFAULT_DATABASE_POOL_SIZE,
            bind: "127.0.0.1:8080".into(),
            issuer: None,
            environment: "test".into(),
            master_key: None,
            previous_master_keys: None,
            rate_limit_per_hour: 10_000,
            rate_limit_burst: 200,
            failed_auth_per_hour: 300,
            failed_auth_burst: 30,
            redis_url: None,
            access_token_ttl_secs: 3600,
            key_refresh_secs: 30,
            cache_max_age_secs: 60,
            workers: None,
            log_format: "text".into(),
            jwks_uri_allow_private: false,
            smtp_url: None,
            mail_from: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

/// Which API keys a deployment accepts (INTERFACE §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the data lives. SQLite and PostgreSQL run the same code.
#[derive(Clone)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(SecretString),
}

impl PartialEq for DatabaseTarget {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Sqlite(a), Self::Sqlite(b)) => a == b,
            (Self::Postgres(a), Self::Postgres(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl fmt::Debug for DatabaseTarget {
    // A PostgreSQL URL may carry a password: show only the backend.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(_) => f.write_str("postgres://<redacted>"),
        }
    }
}

impl DatabaseTarget {
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path == ":memory:" {
                // Every pooled connection would see its own empty database.
                return Err(invalid("database_url", "SQLite needs a file path, e.g. sqlite://latchkey.db"));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if cfg!(feature = "postgres") {
                return Ok(Self::Postgres(SecretString::from(url.to_owned())));
            }
            return Err(invalid("database_url", "this build has no PostgreSQL support (feature `postgres`)"));
        }
        Err(invalid("database_url", "expected sqlite://PATH or postgres://…"))
    }

    /// A description safe for logs.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
}

/// Validated settings, passed into `Application::build`; never a global.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseTarget,
    pub database_pool_size: u32,
    pub bind: SocketAddr,
    /// `None` means `http://<bound address>`, resolved once the port is known.
    pub issuer: Option<Issuer>,
    pub environment: Environment,
    pub master_key: Option<SecretString>,
    /// Master keys a rotation replaced (`latchkey master-key rotate`): still accepted for
    /// what they hashed and sealed, never used for anything new.
    pub previous_master_keys: Vec<SecretString>,
    pub rate_limit_per_hour: u64,
    pub rate_limit_burst: u64,
    /// Failed authentications (client secrets, API keys) one caller address may make: the
    /// steady rate, and the burst above it.
    pub failed_auth_per_hour: u64,
    pub failed_auth_burst: u64,
    pub redis_url: Option<SecretString>,
    pub access_token_ttl_secs: i64,
    pub key_refresh_secs: u64,
    /// How long API keys, clients, APIs and revocations read from the database may be used
    /// again without asking it, while other instances' changes reach this one (PostgreSQL, or
    /// Redis); one second at most while they do not. Zero turns the caches off.
    pub cache_max_age: std::time::Duration,
    pub workers: Option<usize>,
    pub log_format: LogFormat,
    /// Where mail goes out (password-reset links); `None` writes it to the log instead.
    pub smtp_url: Option<SecretString>,
    /// The sender of that mail.
    pub mail_from: Option<String>,
    /// Whether a client's `jwks_uri` may point at a loopback or private address (and then be
    /// plain http): for a key server on the operator's own network, or development.
    pub jwks_uri_allow_private: bool,
    /// Serve TLS with this certificate chain and private key (PEM files) instead of plain
    /// HTTP; both or neither.
    pub tls: Option<TlsFiles>,
}

/// Where the TLS certificate chain and its private key are (PEM), read at start and on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Settings {
    /// The issuer of a server listening at `address`: the configured one, or that address
    /// (https when serving TLS).
    pub fn issuer_at(&self, address: SocketAddr) -> Issuer {
        self.issuer.clone().unwrap_or_else(|| {
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            let url = Url::parse(&format!("{scheme}://{address}")).expect("a socket address makes a valid URL");
            Issuer::from_url(&url)
        })
    }

    /// A secret setting as `latchkey config` shows it: that it is set and, for master keys,
    /// their ids (fingerprints, which is how rotations and refusals name them).
    fn redacted(&self, setting: &str) -> String {
        let id = |key: &SecretString| crate::crypto::MasterKey::parse(key.expose_secret()).ok().map(|key| key.id());
        match setting {
            "master_key" => match self.master_key.as_ref().and_then(id) {
                Some(id) => format!("(set, not shown; id {id})"),
                None => "(set, not shown)".to_owned(),
            },
            "previous_master_keys" => {
                let ids: Vec<String> =
                    self.previous_master_keys.iter().filter_map(id).map(|id| id.to_string()).collect();
                format!("(set, not shown; ids {})", ids.join(", "))
            }
            _ => "(set, not shown)".to_owned(),
        }
    }

    /// Reads `config_file` (when it exists) and the `LATCHKEY_*` environment.
    pub fn load(config_file: &Path) -> Result<Self, ConfigError> {
        let raw: RawSettings = layers(config_file).extract().map_err(Box::new)?;
        Self::validate(raw)
    }

    /// Every setting's effective value and where it came from (`latchkey config`). Secrets
    /// are never shown, only whether they are set; a PostgreSQL URL shows its backend only.
    pub fn explain(&self, config_file: &Path) -> Vec<SettingSource> {
        let figment = layers(config_file);
        KEYS.iter()
            .map(|&setting| {
                let value = match figment.find_value(setting).ok().filter(|value| !is_unset(value)) {
                    None => "unset".to_owned(),
                    Some(_) if SECRET_KEYS.contains(&setting) => self.redacted(setting),
                    Some(_) if setting == "database_url" => self.database.describe(),
                    Some(value) => match serde_json::to_value(&value) {
                        Ok(serde_json::Value::String(text)) => text,
                        Ok(other) => other.to_string(),
                        Err(_) => "(unreadable)".to_owned(),
                    },
                };
                let from = match figment.find_metadata(setting) {
                    Some(metadata) => match metadata.source.as_ref().and_then(|source| source.file_path()) {
                        Some(path) => format!("file {}", path.display()),
                        None if metadata.name.contains("environment") => {
                            format!("environment LATCHKEY_{}", setting.to_uppercase())
                        }
                        None => "default".to_owned(),
                    },
                    None => "default".to_owned(),
                };
                SettingSource { setting, value, from }
            })
            .collect()
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let database = DatabaseTarget::parse(&raw.database_url)?;
        if raw.database_pool_size == 0 {
            return Err(invalid("database_pool_size", "must be at least 1"));
        }
        let bind: SocketAddr = raw
            .bind
            .parse()
            .map_err(|_| invalid("bind", format!("`{}` is not an address such as 127.0.0.1:8080", raw.bind)))?;
        let issuer = raw.issuer.as_deref().map(parse_issuer).transpose()?;
        let environment = match raw.environment.as_str() {
            "live" => Environment::Live,
            "test" => Environment::Test,
            other => return Err(invalid("environment", format!("`{other}` is neither `live` nor `test`"))),
        };
        match &raw.master_key {
            Some(key) => {
                crate::crypto::MasterKey::parse(key).map_err(|e| invalid("master_key", e.to_string()))?;
            }
            // The development key sits in a file beside the process: whoever reads it can
            // forge every token. Fine for trying Latchkey out, never for live keys.
            None if environment == Environment::Live => {
                return Err(invalid(
                    "master_key",
                    "is required when environment is `live`; the development key is for trying Latchkey out \
                     (set LATCHKEY_MASTER_KEY, e.g. from `openssl rand -base64 32`)",
                ));
            }
            None => {}
        }
        let previous_master_keys: Vec<SecretString> = match &raw.previous_master_keys {
            Some(_) if raw.master_key.is_none() => {
                return Err(invalid(
                    "previous_master_keys",
                    "needs master_key: the previous keys are kept beside the current one, which must be set",
                ));
            }
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .enumerate()
                .map(|(i, key)| {
                    crate::crypto::MasterKey::parse(key)
                        .map(|_| SecretString::from(key.to_owned()))
                        .map_err(|e| invalid("previous_master_keys", format!("key {} of the list: {e}", i + 1)))
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        if !(60..=86_400).contains(&raw.access_token_ttl_secs) {
            return Err(invalid("access_token_ttl_secs", "must be between 60 and 86400 seconds"));
        }
        if raw.key_refresh_secs == 0 || raw.key_refresh_secs > 3600 {
            return Err(invalid("key_refresh_secs", "must be between 1 and 3600 seconds"));
        }
        if raw.cache_max_age_secs > 3600 {
            return Err(invalid("cache_max_age_secs", "must be between 0 (no caching) and 3600 seconds"));
        }
        if raw.failed_auth_per_hour == 0 || raw.failed_auth_burst == 0 {
            return Err(invalid(
                if raw.failed_auth_burst == 0 { "failed_auth_burst" } else { "failed_auth_per_hour" },
                "must be at least 1",
            ));
        }
        if raw.workers == Some(0) {
            return Err(invalid("workers", "must be at least 1"));
        }
        if let Some(url) = &raw.redis_url {
            // Parsed only (no connection yet); the URL may hold a password, so it is not echoed.
            redis::Client::open(url.as_str())
                .map_err(|_| invalid("redis_url", "is not a Redis URL such as redis://127.0.0.1:6379"))?;
        }
        let smtp_url = raw.smtp_url.as_deref().map(parse_smtp_url).transpose()?;
        let mail_from = match (&smtp_url, raw.mail_from) {
            (_, Some(from)) if from.parse::<lettre::message::Mailbox>().is_err() => {
                return Err(invalid(
                    "mail_from",
                    format!("`{from}` is not an address such as Latchkey <id@example.com>"),
                ));
            }
            (Some(_), None) => {
                return Err(invalid("mail_from", "is required with smtp_url: the address mail is sent from"));
            }
            (_, from) => from,
        };
        let tls = match (raw.tls_cert_file, raw.tls_key_file) {
            (Some(cert_file), Some(key_file)) => {
                for (key, file) in [("tls_cert_file", &cert_file), ("tls_key_file", &key_file)] {
                    if !file.is_file() {
                        return Err(invalid(key, format!("{} is not a readable file", file.display())));
                    }
                }
                Some(TlsFiles { cert_file, key_file })
            }
            (Some(_), None) => return Err(invalid("tls_key_file", "is required with tls_cert_file")),
            (None, Some(_)) => return Err(invalid("tls_cert_file", "is required with tls_key_file")),
            (None, None) => None,
        };
        let log_format = match raw.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid("log_format", format!("`{other}` is neither `text` nor `json`"))),
        };
        Ok(Self {
            database,
            database_pool_size: raw.database_pool_size,
            bind,
            issuer,
            environment,
            master_key: raw.master_key.map(SecretString::from),
            previous_master_keys,
            rate_limit_per_hour: raw.rate_limit_per_hour,
            rate_limit_burst: raw.rate_limit_burst,
            failed_auth_per_hour: raw.failed_auth_per_hour,
            failed_auth_burst: raw.failed_auth_burst,
            redis_url: raw.redis_url.map(SecretString::from),
            access_token_ttl_secs: raw.access_token_ttl_secs,
            key_refresh_secs: raw.key_refresh_secs,
            cache_max_age: std::time::Duration::from_secs(raw.cache_max_age_secs),
            workers: raw.workers,
            log_format,
            jwks_uri_allow_private: raw.jwks_uri_allow_private,
            smtp_url,
            mail_from,
            tls,
        })
    }

    /// Settings for a test server: random port, the given database, a fixed master key.
    pub fn for_tests(database: DatabaseTarget) -> Self {
        Self {
            database,
            database_pool_size: 4,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            issuer: None,
            environment: Environment::Test,
            master_key: Some(SecretString::from(crate::crypto::MasterKey::generate().encode())),
            previous_master_keys: Vec::new(),
            rate_limit_per_hour: 10_000,
            rate_limit_burst: 200,
            failed_auth_per_hour: 300,
            failed_auth_burst: 30,
            redis_url: None,
            access_token_ttl_secs: 3600,
            key_refresh_secs: 30,
            cache_max_age: std::time::Duration::from_secs(60),
            workers: Some(1),
            log_format: LogFormat::Text,
            jwks_uri_allow_private: false,
            smtp_url: None,
            mail_from: None,
            tls: None,
        }
    }
}

/// `smtps://[user:pass@]host[:port]` (TLS), `smtp://…?tls=required` (STARTTLS), or plain
/// `smtp://` for a server on the same machine. The URL may hold a password: kept secret.
fn parse_smtp_url(value: &str) -> Result<SecretString, ConfigError> {
    let url = Url::parse(value).map_err(|_| invalid("smtp_url", "is not a URL such as smtps://user:pass@host"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
        return Err(invalid("smtp_url", "must be smtps://host, smtp://host?tls=required or smtp://host"));
    }
    // What lettre itself refuses (an unknown `tls=` mode, say) is a bad setting too, said now
    // rather than at the first mail.
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(value).map_err(|e| {
        invalid("smtp_url", format!("{e} (the URL itself is not repeated here: it may hold a password)"))
    })?;
    Ok(SecretString::from(value.to_owned()))
}

/// RFC 8414 §2: the issuer is a URL with no query or fragment; tokens carry it verbatim,
/// so a trailing slash is dropped once here rather than compared loosely everywhere.
pub fn parse_issuer(value: &str) -> Result<Issuer, ConfigError> {
    let url = Url::parse(value).map_err(|e| invalid("issuer", format!("`{value}`: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid("issuer", "must be an https (or, for development, http) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("issuer", "must not have a query or fragment (RFC 8414 §2)"));
    }
    Ok(Issuer::from_url(&url))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `latchkey.example.toml` documents every setting, and with its lines uncommented it is a
    /// configuration Latchkey accepts (the master key stays out of files, so it stays out, and
    /// the TLS files are on the operator's machine, not this one).
    #[test]
    fn the_example_file_names_every_setting_and_loads_uncommented() {
        let example = include_str!("../latchkey.example.toml");
        let settings: Vec<(&str, &str)> = example
            .lines()
            .filter_map(|line| line.strip_prefix("# ")?.split_once(" = "))
            .filter(|(key, _)| KEYS.contains(key))
            .collect();
        for key in KEYS {
            assert!(settings.iter().any(|(named, _)| named == key), "{key} is missing from latchkey.example.toml");
        }
        let uncommented: String = settings
            .iter()
            .filter(|(key, _)| !["master_key", "previous_master_keys", "tls_cert_file", "tls_key_file"].contains(key))
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        let raw: RawSettings = Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Toml::string(&uncommented))
            .extract()
            .expect("the example parses");
        assert_eq!(raw.issuer.as_deref(), Some("https://id.example.com"));
        let validated = Settings::validate(raw).expect("the example is a valid configuration");
        assert_eq!(validated.workers, Some(2));
    }

    #[test]
    fn sqlite_urls_accept_both_spellings() {
        assert_eq!(DatabaseTarget::parse("sqlite://a.db").unwrap(), DatabaseTarget::Sqlite("a.db".into()));
        assert_eq!(DatabaseTarget::parse("sqlite:///tmp/a.db").unwrap(), DatabaseTarget::Sqlite("/tmp/a.db".into()));
        assert_eq!(DatabaseTarget::parse("sqlite:a.db").unwrap(), DatabaseTarget::Sqlite("a.db".into()));
    }

    #[test]
    fn unusable_database_urls_are_refused() {
        for url in ["sqlite::memory:", "sqlite://", "mysql://localhost/x", "latchkey.db"] {
            assert!(DatabaseTarget::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn postgres_urls_are_redacted_in_debug_output() {
        let target = DatabaseTarget::parse("postgres://user:hunter2@db/latchkey").unwrap();
        assert!(!format!("{target:?}").contains("hunter2"));
    }

    #[test]
    fn issuer_loses_its_trailing_slash_and_refuses_queries() {
        assert_eq!(parse_issuer("https://id.example.com/").unwrap().as_str(), "https://id.example.com");
        assert_eq!(parse_issuer("https://id.example.com/tenant/").unwrap().as_str(), "https://id.example.com/tenant");
        assert!(parse_issuer("https://id.example.com/?a=b").is_err());
        assert!(parse_issuer("ftp://id.example.com").is_err());
    }

    #[test]
    fn defaults_match_the_documented_interface() {
        let settings = Settings::validate(RawSettings::default()).unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database, DatabaseTarget::Sqlite("latchkey.db".into()));
        assert_eq!(settings.environment, Environment::Test);
        assert_eq!(settings.rate_limit_per_hour, 10_000);
        assert_eq!(settings.rate_limit_burst, 200);
    }

    #[test]
    fn mail_settings_are_checked_and_the_smtp_url_kept_secret() {
        let with = |smtp: Option<&str>, from: Option<&str>| {
            Settings::validate(RawSettings {
                smtp_url: smtp.map(str::to_owned),
                mail_from: from.map(str::to_owned),
                ..RawSettings::default()
            })
        };
        let settings =
            with(Some("smtps://latchkey:hunter2@smtp.example.com"), Some("Latchkey <id@example.com>")).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(with(None, None).unwrap().smtp_url.is_none(), "without SMTP mail is logged");
        let missing_from = with(Some("smtp://127.0.0.1:25"), None).unwrap_err().to_string();
        assert!(missing_from.contains("mail_from"), "{missing_from}");
        for url in ["http://smtp.example.com", "smtp://", "not a url", "smtp://smtp.example.com?tls=sometimes"] {
            let refused = with(Some(url), Some("id@example.com")).unwrap_err().to_string();
            assert!(refused.contains("smtp_url"), "{url}: {refused}");
        }
        let refused = with(Some("smtp://latchkey:hunter2@smtp.example.com?tls=sometimes"), Some("id@example.com"));
        assert!(!refused.unwrap_err().to_string().contains("hunter2"), "the password stays out of the message");
        for from in ["nobody", "Latchkey <not an address>", "a@b@c"] {
            assert!(with(None, Some(from)).unwrap_err().to_string().contains("mail_from"), "{from}");
        }
    }

    #[test]
    fn live_keys_need_a_real_master_key() {
        let live = RawSettings { environment: "live".into(), ..RawSettings::default() };
        let error = Settings::validate(live.clone()).unwrap_err().to_string();
        assert!(error.contains("master_key"), "{error}");
        let configured = RawSettings { master_key: Some(crate::crypto::MasterKey::generate().encode()), ..live };
        assert!(Settings::validate(configured).is_ok());
    }

    #[test]
    fn previous_master_keys_are_a_checked_list_beside_the_master_key() {
        use crate::crypto::MasterKey;
        let (current, old, older) = (MasterKey::generate(), MasterKey::generate(), MasterKey::generate());
        let with = |master: Option<String>, previous: &str| {
            Settings::validate(RawSettings {
                master_key: master,
                previous_master_keys: Some(previous.to_owned()),
                ..RawSettings::default()
            })
        };
        let list = format!("{}, {} ,", old.encode(), older.encode());
        let settings = with(Some(current.encode()), &list).unwrap();
        assert_eq!(settings.previous_master_keys.len(), 2, "spaces and a trailing comma are forgiven");
        assert!(!format!("{settings:?}").contains(&old.encode()), "never in debug output");
        assert_eq!(
            settings.redacted("previous_master_keys"),
            format!("(set, not shown; ids {}, {})", old.id(), older.id())
        );
        assert_eq!(settings.redacted("master_key"), format!("(set, not shown; id {})", current.id()));

        let without_current = with(None, &old.encode()).unwrap_err().to_string();
        assert!(without_current.contains("previous_master_keys") && without_current.contains("needs master_key"));
        let malformed = with(Some(current.encode()), &format!("{},not-a-key", old.encode())).unwrap_err().to_string();
        assert!(malformed.contains("key 2 of the list"), "{malformed}");
        assert!(!malformed.contains(&old.encode()), "no key in the message: {malformed}");
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let raw = RawSettings { environment: "prod".into(), ..RawSettings::default() };
        let error = Settings::validate(raw).unwrap_err().to_string();
        assert!(error.contains("environment"), "{error}");
        // No failed authentication at all would lock out anyone who mistypes a secret once.
        let raw = RawSettings { failed_auth_burst: 0, ..RawSettings::default() };
        assert!(Settings::validate(raw).unwrap_err().to_string().contains("failed_auth_burst"));
        let raw = RawSettings { failed_auth_per_hour: 0, ..RawSettings::default() };
        assert!(Settings::validate(raw).unwrap_err().to_string().contains("failed_auth_per_hour"));
    }
}
