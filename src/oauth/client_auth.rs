//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic`, `client_secret_post` (RFC 6749 §2.3.1), `client_secret_jwt` and
//! `private_key_jwt` (RFC 7523 §2.2, verified in `principal::client_jwt`), and `none` for
//! public clients (RFC 7591 §2). A client may use exactly one method per request.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use super::error::OAuthError;
use super::params::OAuthParams;
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::crypto::TokenHasher;
use crate::db::DbConnection;
use crate::db::clients::{Client, find_client};
use crate::principal::client_jwt::{self, ASSERTION_TYPE, Expectations};
use crate::ratelimit::FailureBudget;
use crate::state::AppState;

/// RFC 7523 §3: an assertion authenticating a client is short-lived.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT the client signed (`client_secret_jwt` or `private_key_jwt`, as registered).
    ClientAssertion,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientAssertion => "client_assertion",
            Self::None => "none",
        }
    }
}

/// What the request claims, before any of it is checked.
#[derive(Debug)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<SecretString>,
    /// A client assertion (RFC 7523 §2.2).
    pub assertion: Option<SecretString>,
    pub method: AuthMethod,
}

/// RFC 6749 §2.3.1: the id and secret are form-encoded before the Basic encoding.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

fn basic_credentials(value: &header::HeaderValue) -> Result<(String, SecretString), OAuthError> {
    let malformed = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client("unsupported authentication scheme; use Basic"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).filter(|id| !id.is_empty()).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    Ok((id, SecretString::from(secret)))
}

/// Reads the credentials the client presents, refusing mixed or missing ones.
pub fn presented_client(req: &HttpRequest, params: &OAuthParams) -> Result<PresentedClient, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let assertion_type = params.get("client_assertion_type")?;
    let assertion = params.get("client_assertion")?;
    if assertion_type.is_some() || assertion.is_some() {
        if req.headers().contains_key(header::AUTHORIZATION) || body_secret.is_some() {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        if assertion_type != Some(ASSERTION_TYPE) {
            return Err(OAuthError::invalid_client(format!("client_assertion_type must be {ASSERTION_TYPE}")));
        }
        let assertion = assertion.ok_or_else(|| OAuthError::invalid_client("client_assertion is missing"))?;
        let client_id = client_jwt::claimed_issuer(assertion)
            .ok_or_else(|| OAuthError::invalid_client("client_assertion is not a JWT with an iss"))?;
        if body_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request("`client_id` differs from the assertion's issuer"));
        }
        return Ok(PresentedClient {
            client_id,
            secret: None,
            assertion: Some(SecretString::from(assertion.to_owned())),
            method: AuthMethod::ClientAssertion,
        });
    }
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let (client_id, secret) = basic_credentials(value)?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        if body_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request("`client_id` differs from the authenticated client"));
        }
        return Ok(PresentedClient {
            client_id,
            secret: Some(secret),
            assertion: None,
            method: AuthMethod::ClientSecretBasic,
        });
    }
    match (body_id, body_secret) {
        (Some(id), Some(secret)) => Ok(PresentedClient {
            client_id: id.to_owned(),
            secret: Some(SecretString::from(secret.to_owned())),
            assertion: None,
            method: AuthMethod::ClientSecretPost,
        }),
        (Some(id), None) => {
            Ok(PresentedClient { client_id: id.to_owned(), secret: None, assertion: None, method: AuthMethod::None })
        }
        (None, _) => Err(OAuthError::invalid_client("client authentication is required")),
    }
}

/// Why authentication failed; recorded in the audit log, never told to the client.
fn check(client: &Client, presented: &PresentedClient, hasher: &TokenHasher) -> Result<(), &'static str> {
    if client.signs_assertions() {
        // Its JWTs are checked apart (`authenticate_assertion_then`); nothing else will do.
        return Err("a client registered for JWT authentication presented a secret");
    }
    match (&presented.secret, client.is_public()) {
        (None, true) => Ok(()),
        (Some(_), true) => Err("secret presented for a public client"),
        (None, false) => Err("no secret presented for a confidential client"),
        (Some(secret), false) => {
            let now = crate::db::now();
            let mut matched = false;
            // Check every candidate so the time taken does not tell which one matched.
            for stored in client.valid_secret_hashes(now) {
                matched |= hasher.verify(secret.expose_secret(), stored);
            }
            if matched { Ok(()) } else { Err("wrong secret") }
        }
    }
}

// Built once and moved once, out of the blocking call: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Authentication<T> {
    Succeeded(Client, Result<T, OAuthError>),
    Failed(&'static str),
}

/// Finds and authenticates the client; failures are audited and answered `invalid_client`.
/// A client in the cache whose secret matches needs no trip to the database.
pub async fn authenticate_client(
    state: &AppState,
    req: &HttpRequest,
    presented: PresentedClient,
) -> Result<Client, OAuthError> {
    if let Some(client) = cached_client(state, &presented) {
        return Ok(Client::clone(&client));
    }
    authenticate_in_database_then(state, req, presented, |_, _| Ok(())).await.map(|(client, ())| client)
}

/// The client from the cache, if it is there and `presented` authenticates it. Anything
/// else (not cached, a wrong secret, a JWT) is decided by the database, which alone
/// refuses and audits.
fn cached_client(state: &AppState, presented: &PresentedClient) -> Option<Arc<Client>> {
    if presented.assertion.is_some() {
        return None;
    }
    let client = state.caches.clients.get(presented.client_id.as_str())?;
    check(&client, presented, &state.hasher).is_ok().then_some(client)
}

/// Authenticates the client, then runs `then` with it in the same trip to the blocking
/// pool: a token request costs one hop, not one per query. `then` runs only for an
/// authenticated client; a failure is audited in that trip too.
pub async fn authenticate_client_then<T, F>(
    state: &AppState,
    req: &HttpRequest,
    presented: PresentedClient,
    then: F,
) -> Result<(Client, T), OAuthError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &Client) -> Result<T, OAuthError> + Send + 'static,
{
    if let Some(client) = cached_client(state, &presented) {
        let client = Client::clone(&client);
        let (client, result) = crate::db::run(&state.pool, move |conn| {
            let result = then(conn, &client);
            Ok((client, result))
        })
        .await?;
        return result.map(|value| (client, value));
    }
    authenticate_in_database_then(state, req, presented, then).await
}

/// As [`authenticate_client_then`], for a client the cache could not authenticate: the
/// database finds it (and keeps it in the cache), or refuses and audits.
async fn authenticate_in_database_then<T, F>(
    state: &AppState,
    req: &HttpRequest,
    presented: PresentedClient,
    then: F,
) -> Result<(Client, T), OAuthError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &Client) -> Result<T, OAuthError> + Send + 'static,
{
    // Failures count against the caller's address; past its budget they are no longer
    // audited, so that one address cannot fill the audit log.
    let failures = FailureBudget::of(&state.limiter, req.peer_addr().map(|a| a.ip()), &state.settings);
    let audit_failure = failures.allows().await.allowed;
    if presented.assertion.is_some() {
        return authenticate_assertion_then(state, req, presented, then, failures, audit_failure).await;
    }
    let read = state.caches.clients.start_read();
    let hasher = state.hasher.clone();
    let ip = req.peer_addr().map(|addr| addr.ip().to_string());
    let request_id = crate::telemetry::current_request_id();
    let (client_id, method) = (presented.client_id.clone(), presented.method);
    let outcome = crate::db::run(&state.pool, move |conn| {
        let failure = match find_client(conn, &presented.client_id)? {
            None => "unknown client",
            Some(client) => match check(&client, &presented, &hasher) {
                Ok(()) => {
                    let result = then(conn, &client);
                    return Ok(Authentication::Succeeded(client, result));
                }
                Err(reason) => reason,
            },
        };
        if audit_failure {
            record_failure(conn, &presented.client_id, presented.method, failure, ip.as_deref(), &request_id)?;
        }
        Ok(Authentication::Failed(failure))
    })
    .await?;
    match outcome {
        Authentication::Succeeded(client, result) => {
            state.caches.clients.insert(client.client_id.clone(), Arc::new(client.clone()), read);
            result.map(|value| (client, value))
        }
        Authentication::Failed(reason) => {
            Err(answer_failure(state, &client_id, method, reason, failures, audit_failure).await)
        }
    }
}

/// The audit entry of a failed client authentication: who was named, how, why; never what
/// was presented.
fn record_failure(
    conn: &mut DbConnection,
    client_id: &str,
    method: AuthMethod,
    reason: &str,
    ip: Option<&str>,
    request_id: &str,
) -> diesel::QueryResult<()> {
    let entry = AuditEntry::new(Actor::Anonymous, "client.authentication_failed", Outcome::Failure)
        .target("client", client_id)
        .from_request(ip, Some(request_id))
        .details(serde_json::json!({ "reason": reason, "method": method.as_str() }));
    audit::record(conn, &entry)
}

/// A failed authentication, once audited: counted against the address and answered
/// `invalid_client` (429 past the address's budget) — with the reason for a JWT, whose
/// signer learns nothing about the secret from "expired" or "aud".
async fn answer_failure(
    state: &AppState,
    client_id: &str,
    method: AuthMethod,
    reason: &'static str,
    failures: FailureBudget<'_>,
    audit_failure: bool,
) -> OAuthError {
    let counted = failures.spend().await;
    state.metrics.authentication_failed("client", reason);
    tracing::info!(%client_id, method = method.as_str(), reason, "client authentication failed");
    if !audit_failure {
        return OAuthError::rate_limited(counted.retry_after.max(1));
    }
    OAuthError::invalid_client(match method {
        AuthMethod::ClientAssertion => format!("client authentication failed: {reason}"),
        _ => "client authentication failed".to_owned(),
    })
}

/// A failed JWT authentication: audited (while the address's budget allows) in a trip of
/// its own, then answered as [`answer_failure`] says.
async fn refuse<T>(
    state: &AppState,
    req: &HttpRequest,
    client_id: &str,
    method: AuthMethod,
    reason: &'static str,
    failures: FailureBudget<'_>,
    audit_failure: bool,
) -> Result<T, OAuthError> {
    if audit_failure {
        let ip = req.peer_addr().map(|addr| addr.ip().to_string());
        let request_id = crate::telemetry::current_request_id();
        let client = client_id.to_owned();
        crate::db::run(&state.pool, move |conn| {
            Ok(record_failure(conn, &client, method, reason, ip.as_deref(), &request_id)?)
        })
        .await?;
    }
    Err(answer_failure(state, client_id, method, reason, failures, audit_failure).await)
}

/// RFC 7523 §2.2 / §3: the client's JWT, checked against its registered key or sealed
/// secret; its `aud` the issuer or the endpoint called; its `jti` never accepted twice within
/// its lifetime, on any instance. Then `then`, as for the other methods.
async fn authenticate_assertion_then<T, F>(
    state: &AppState,
    req: &HttpRequest,
    presented: PresentedClient,
    then: F,
    failures: FailureBudget<'_>,
    audit_failure: bool,
) -> Result<(Client, T), OAuthError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &Client) -> Result<T, OAuthError> + Send + 'static,
{
    let assertion = presented.assertion.expect("called with an assertion");
    let client_id = presented.client_id;
    let audiences = [state.issuer.as_str().to_owned(), state.issuer.endpoint(req.path())];
    let lookup = client_id.clone();
    let found = crate::db::run(&state.pool, move |conn| Ok(find_client(conn, &lookup)?)).await?;
    let material = match &found {
        Some(client) => client_jwt::resolve_key_material(state, client, assertion.expose_secret()).await?,
        None => Err("unknown client"),
    };
    let checked = match (found, material) {
        (None, _) => Err("unknown client"),
        (Some(_), Err(reason)) => Err(reason),
        (Some(client), Ok(material)) => {
            let audiences = [audiences[0].as_str(), audiences[1].as_str()];
            let expect = Expectations {
                audiences: &audiences,
                max_lifetime_secs: MAX_ASSERTION_LIFETIME_SECS,
                require_jti: true,
            };
            let now = chrono::Utc::now().timestamp();
            match client_jwt::verify(assertion.expose_secret(), &client, &material, expect, now) {
                Ok(claims) if claims.sub == client.client_id => Ok((client, claims)),
                Ok(_) => Err("the JWT's sub is not the client"),
                Err(reason) => Err(reason),
            }
        }
    };
    let (client, claims) = match checked {
        Ok(pair) => pair,
        Err(reason) => {
            return refuse(state, req, &client_id, AuthMethod::ClientAssertion, reason, failures, audit_failure).await;
        }
    };
    let jti = claims.jti.as_deref().unwrap_or_default();
    if !client_jwt::first_use(state, &client.client_id, jti, claims.exp).await? {
        let reason = "the JWT was used before (jti)";
        return refuse(state, req, &client_id, AuthMethod::ClientAssertion, reason, failures, audit_failure).await;
    }
    let checked = client.clone();
    let result = crate::db::run(&state.pool, move |conn| Ok(then(conn, &checked))).await?;
    result.map(|value| (client, value))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn params(body: &'static str) -> OAuthParams {
        OAuthParams::parse(
            Some("application/x-www-form-urlencoded"),
            &actix_web::web::Bytes::from_static(body.as_bytes()),
        )
        .unwrap()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, basic("my%20client", "a%3Ab+c")))
            .to_http_request();
        let presented = presented_client(&req, &params("")).unwrap();
        assert_eq!(presented.client_id, "my client");
        assert_eq!(presented.secret.unwrap().expose_secret(), "a:b c");
        assert_eq!(presented.method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let req = TestRequest::default().insert_header((header::AUTHORIZATION, basic("c", "s"))).to_http_request();
        let error = presented_client(&req, &params("client_id=c&client_secret=s")).unwrap_err();
        assert_eq!(error.error, super::super::error::OAuthErrorCode::InvalidRequest);
    }

    #[test]
    fn a_body_client_id_without_a_secret_is_a_public_client() {
        let req = TestRequest::default().to_http_request();
        assert_eq!(presented_client(&req, &params("client_id=c")).unwrap().method, AuthMethod::None);
        assert_eq!(
            presented_client(&req, &params("client_id=c&client_secret=s")).unwrap().method,
            AuthMethod::ClientSecretPost
        );
        assert!(presented_client(&req, &params("")).is_err());
    }

    #[test]
    fn other_schemes_and_garbage_are_invalid_client() {
        for value in ["Bearer abc", "Basic !!!", "Basic", &format!("Basic {}", STANDARD.encode("no-colon"))] {
            let req = TestRequest::default().insert_header((header::AUTHORIZATION, value)).to_http_request();
            let error = presented_client(&req, &params("")).unwrap_err();
            assert_eq!(error.error, super::super::error::OAuthErrorCode::InvalidClient, "{value}");
        }
    }
}
