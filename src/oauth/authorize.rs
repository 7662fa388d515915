//! The authorization endpoint (RFC 6749 §4.1.1) for the code flow, with PKCE (RFC 7636,
//! S256 only) and issuer identification in the response (RFC 9207).
//!
//! RFC 6749 §4.1.2.1: when the client or redirect URI is unknown, the user sees an error
//! page and is never redirected; any later error goes back to the client's registered
//! redirect URI with `error` and `state`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::TimeDelta;

use super::params::OAuthParams;
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::crypto::random_token;
use crate::db::DbConnection;
use crate::db::apis::find_api_by_audience;
use crate::db::authorization_codes::{NewAuthorizationCode, insert_code};
use crate::db::clients::{Client, find_client};
use crate::db::consents::{ConsentGrant, find_consent, save_consent};
use crate::db::users::User;
use crate::domain::{CodeChallenge, GrantType, RedirectUri, ResourceUri, Scopes};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::csrf::{self, CsrfToken};
use crate::web::pages::{error_page, form_page_leading_to};
use crate::web::session::current_user;

/// RFC 9700 §4.5 recommends codes live briefly; one minute covers any real redirect.
pub const CODE_LIFETIME: TimeDelta = TimeDelta::seconds(60);

/// Scopes Latchkey itself understands, beyond those of the APIs.
pub const IDENTITY_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A request whose every parameter has been checked against the client's registration.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Client,
    pub redirect_uri: RedirectUri,
    /// Whether the request named `redirect_uri` (the token request must then repeat it).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub scope: Scopes,
    /// The API the access token is for, or the issuer itself (for userinfo).
    pub audience: String,
    pub code_challenge: Option<CodeChallenge>,
    pub nonce: Option<String>,
    pub prompt_none: bool,
    pub prompt_consent: bool,
}

#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI is not established: show a page, never redirect.
    Page(String),
    /// Back to the client with an RFC 6749 §4.1.2.1 error.
    Redirect { redirect_uri: String, state: Option<String>, error: &'static str, description: String },
}

/// Checks an authorization request (from a blocking context: it reads the client and API).
pub fn validate_request(
    conn: &mut DbConnection,
    params: &OAuthParams,
    issuer: &str,
) -> Result<Result<AuthorizationRequest, AuthorizeError>, AppError> {
    let page = |message: &str| Ok(Err(AuthorizeError::Page(message.to_owned())));
    let Ok(Some(client_id)) = params.get("client_id") else {
        return page("The request does not say which application is asking (client_id is missing or repeated).");
    };
    let Some(client) = find_client(conn, client_id)? else {
        return page("The application that sent you here is not registered with this server.");
    };
    let mut registered = client.redirect_uris();
    let redirect_uri_given = matches!(params.get("redirect_uri"), Ok(Some(_)));
    let redirect_uri = match params.get("redirect_uri") {
        Err(_) => return page("The request repeats redirect_uri."),
        // RFC 9700 §4.1.3: exact string comparison, nothing looser.
        Ok(Some(uri)) => match registered.into_iter().find(|r| r.matches(uri)) {
            Some(registered) => registered,
            None => return page("The application asked to return you to an address it has not registered."),
        },
        Ok(None) if registered.len() == 1 => registered.remove(0),
        Ok(None) => return page("The request does not say where to return you (redirect_uri is missing)."),
    };

    // From here on the redirect URI is the client's own: errors go back to it.
    let state = params.get("state").ok().flatten().map(str::to_owned);
    let back = |error: &'static str, description: String| {
        Ok(Err(AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_string(),
            state: state.clone(),
            error,
            description,
        }))
    };
    if let Some(name) = params.repeated() {
        return back("invalid_request", format!("`{name}` must not be repeated"));
    }
    // Nothing is repeated, so each parameter has at most one value.
    let one = |name: &str| params.get(name).ok().flatten();
    let (response_type, scope, resource, nonce) = (one("response_type"), one("scope"), one("resource"), one("nonce"));
    let (challenge, method) = (one("code_challenge"), one("code_challenge_method"));
    let prompt = one("prompt");
    if response_type != Some("code") {
        return back("unsupported_response_type", "only response_type=code is supported".into());
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return back("unauthorized_client", "this client may not use the authorization code grant".into());
    }
    let code_challenge = match challenge {
        Some(challenge) => match CodeChallenge::parse(challenge, method) {
            Ok(challenge) => Some(challenge),
            Err(e) => return back("invalid_request", e.to_string()),
        },
        None if client.is_public() => {
            return back(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
            );
        }
        None if method.is_some() => {
            return back("invalid_request", "code_challenge_method without code_challenge".into());
        }
        None => None,
    };
    let Some(scope) = scope else {
        return back("invalid_scope", "scope is required".into());
    };
    let scope = match Scopes::parse(scope) {
        Ok(scope) if !scope.is_empty() => scope,
        Ok(_) => return back("invalid_scope", "scope is required".into()),
        Err(e) => return back("invalid_scope", e.to_string()),
    };
    let allowed = client.allowed_scopes();
    if !scope.is_subset(&allowed) {
        return back("invalid_scope", format!("not allowed for this client: {}", scope.not_in(&allowed).join(" ")));
    }

    // A request for identity scopes alone is for Latchkey itself (userinfo), whatever API
    // the client uses by default: a token for an API is refused at userinfo.
    let identity = Scopes::from_tokens(IDENTITY_SCOPES.iter().copied()).unwrap_or_default();
    let for_latchkey = resource.is_none() && scope.is_subset(&identity);
    let audience = match resource.or_else(|| client.audiences().next()).filter(|_| !for_latchkey) {
        Some(asked) => {
            let Ok(uri) = ResourceUri::parse(asked) else {
                return back("invalid_target", format!("`{asked}` is not an absolute URI"));
            };
            if !client.audiences().any(|a| a == uri.as_str()) {
                return back("invalid_target", format!("this client may not request tokens for `{uri}`"));
            }
            let Some(api) = find_api_by_audience(conn, uri.as_str())? else {
                return back("invalid_target", format!("no API has the audience `{uri}`"));
            };
            let api_scopes = api.scopes();
            let unknown: Vec<&str> =
                scope.iter().filter(|s| !identity.contains(s) && !api_scopes.contains(s)).collect();
            if !unknown.is_empty() {
                return back("invalid_scope", format!("the API does not define: {}", unknown.join(" ")));
            }
            uri.to_string()
        }
        None => issuer.to_owned(),
    };
    let prompts: Vec<&str> = prompt.unwrap_or_default().split(' ').filter(|p| !p.is_empty()).collect();
    Ok(Ok(AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_given,
        state,
        scope,
        audience,
        code_challenge,
        nonce: nonce.map(str::to_owned),
        prompt_none: prompts.contains(&"none"),
        prompt_consent: prompts.contains(&"consent"),
    }))
}

/// The client's redirect URI with `params`, `state` and `iss` (RFC 9207) appended.
fn redirect_to_client(redirect_uri: &str, state: Option<&str>, issuer: &str, params: &[(&str, &str)]) -> HttpResponse {
    let location = match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in params {
                    query.append_pair(name, value);
                }
                if let Some(state) = state {
                    query.append_pair("state", state);
                }
                query.append_pair("iss", issuer);
            }
            url.to_string()
        }
        // Registered URIs were parsed when registered; this cannot happen.
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "Cannot continue", "The return address is invalid."),
    };
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

fn respond_error(error: AuthorizeError, issuer: &str) -> HttpResponse {
    match error {
        AuthorizeError::Page(message) => {
            error_page(StatusCode::BAD_REQUEST, "This sign-in link is not valid", &message)
        }
        AuthorizeError::Redirect { redirect_uri, state, error, description } => redirect_to_client(
            &redirect_uri,
            state.as_deref(),
            issuer,
            &[("error", error), ("error_description", &description)],
        ),
    }
}

/// Issues a code for `user` (from a blocking context) and returns it.
fn issue_code(
    conn: &mut DbConnection,
    state: &AppState,
    request: &AuthorizationRequest,
    user: &User,
) -> Result<String, AppError> {
    let code = random_token::<32>();
    let now = crate::db::now();
    insert_code(
        conn,
        &NewAuthorizationCode {
            code_hash: state.hasher.hash(&code).as_str(),
            client_id: &request.client.client_id,
            user_id: &user.id,
            redirect_uri: request.redirect_uri.as_str(),
            scope: &request.scope.to_string(),
            audience: &request.audience,
            code_challenge: request.code_challenge.as_ref().map(CodeChallenge::as_str),
            nonce: request.nonce.as_deref(),
            auth_time: now,
            created_at: now,
            expires_at: now + CODE_LIFETIME,
            redirect_uri_given: request.redirect_uri_given,
        },
    )?;
    Ok(code)
}

fn code_redirect(request: &AuthorizationRequest, issuer: &str, code: &str) -> HttpResponse {
    redirect_to_client(request.redirect_uri.as_str(), request.state.as_deref(), issuer, &[("code", code)])
}

/// The order a person reads scopes in: who they are, then what the app may do with their
/// data, then how long it keeps access.
pub fn scopes_for_people(scope: &Scopes) -> Vec<String> {
    let rank = |s: &str| match s {
        "openid" => 0,
        "profile" => 1,
        "email" => 2,
        "offline_access" => 4,
        _ => 3,
    };
    let mut scopes: Vec<&str> = scope.iter().collect();
    scopes.sort_by_key(|s| rank(s));
    scopes.into_iter().map(describe_scope).collect()
}

/// Words a person understands for each scope.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are".into(),
        "profile" => "See your name".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Keep access when you are not using the app".into(),
        "read" => "Read your data".into(),
        "write" => "Create and change your data".into(),
        "delete" => "Delete your data".into(),
        "admin" => "Manage your account's settings and access".into(),
        other => format!("Use the “{other}” permission"),
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    user_name: &'a str,
    scopes: Vec<String>,
    hidden: Vec<(String, String)>,
    csrf_token: &'a str,
}

fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    request: &AuthorizationRequest,
    user: &User,
    params: &OAuthParams,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let hidden: Vec<(String, String)> = params
        .pairs()
        .filter(|(name, _)| !matches!(*name, "csrf_token" | "decision" | "remember"))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let page = ConsentPage {
        client_name: &request.client.name,
        user_name: user.display_name(),
        scopes: scopes_for_people(&request.scope),
        hidden,
        csrf_token: &form_value,
    };
    form_page_leading_to(cookie, &page, &request.redirect_uri)
}

async fn validate(
    state: &AppState,
    params: OAuthParams,
) -> Result<(Result<AuthorizationRequest, AuthorizeError>, OAuthParams), AppError> {
    let issuer = state.issuer.to_string();
    crate::db::run(&state.pool, move |conn| {
        let result = validate_request(conn, &params, &issuer)?;
        Ok((result, params))
    })
    .await
}

/// Whether the user already let this client have every requested scope, for this API: a
/// `read` granted for one API is no consent to another API's `read`.
async fn remembered(state: &AppState, user: &User, request: &AuthorizationRequest) -> Result<bool, AppError> {
    let (user_id, client_id, audience) = (user.id.clone(), request.client.client_id.clone(), request.audience.clone());
    let consent =
        crate::db::run(&state.pool, move |conn| Ok(find_consent(conn, &user_id, &client_id, &audience)?)).await?;
    Ok(consent.is_some_and(|c| c.remembered && request.scope.is_subset(&Scopes::parse(&c.scope).unwrap_or_default())))
}

#[tracing::instrument(name = "authorize", skip_all)]
pub async fn get_authorize(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let issuer = state.issuer.to_string();
    let Ok(params) = OAuthParams::from_query(req.query_string()) else {
        return Ok(error_page(StatusCode::BAD_REQUEST, "This sign-in link is not valid", "The link is malformed."));
    };
    let (request, params) = validate(&state, params).await?;
    let request = match request {
        Ok(request) => request,
        Err(error) => return Ok(respond_error(error, &issuer)),
    };
    let Some(user) = current_user(&req, &state).await? else {
        if request.prompt_none {
            return Ok(respond_error(login_required(&request), &issuer));
        }
        let here = format!("{}?{}", super::AUTHORIZE_PATH, req.query_string());
        let login =
            format!("/login?return_to={}", url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>());
        return Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, login)).finish());
    };
    if !request.prompt_consent && remembered(&state, &user, &request).await? {
        let worker_state = state.clone();
        let (request_for_code, user_for_code) = (request.clone(), user.clone());
        let code =
            crate::db::run(&state.pool, move |conn| issue_code(conn, &worker_state, &request_for_code, &user_for_code))
                .await?;
        return Ok(code_redirect(&request, &issuer, &code));
    }
    if request.prompt_none {
        return Ok(respond_error(
            AuthorizeError::Redirect {
                redirect_uri: request.redirect_uri.to_string(),
                state: request.state.clone(),
                error: "consent_required",
                description: "the user has not consented to these scopes".into(),
            },
            &issuer,
        ));
    }
    consent_page(&req, &state, &request, &user, &params)
}

fn login_required(request: &AuthorizationRequest) -> AuthorizeError {
    AuthorizeError::Redirect {
        redirect_uri: request.redirect_uri.to_string(),
        state: request.state.clone(),
        error: "login_required",
        description: "the user is not signed in".into(),
    }
}

/// The consent decision. Every hidden field is validated again: nothing in the form is
/// trusted because the server rendered it.
#[tracing::instrument(name = "consent", skip_all)]
pub async fn post_authorize(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let issuer = state.issuer.to_string();
    let body = match payload.to_bytes_limited(64 * 1024).await {
        Ok(Ok(body)) => body,
        _ => return Ok(error_page(StatusCode::BAD_REQUEST, "Cannot continue", "The form could not be read.")),
    };
    let Ok(params) = OAuthParams::parse(Some("application/x-www-form-urlencoded"), &body) else {
        return Ok(error_page(StatusCode::BAD_REQUEST, "Cannot continue", "The form could not be read."));
    };
    let submitted_csrf = params.get("csrf_token").ok().flatten().unwrap_or_default().to_owned();
    let decision = params.get("decision").ok().flatten().unwrap_or_default().to_owned();
    let remember = params.get("remember").ok().flatten().is_some();
    if !csrf::verify(&req, &state, &submitted_csrf) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back to the application and start again.",
        ));
    }
    let (request, _) = validate(&state, params).await?;
    let request = match request {
        Ok(request) => request,
        Err(error) => return Ok(respond_error(error, &issuer)),
    };
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(respond_error(login_required(&request), &issuer));
    };
    let request_id = crate::telemetry::current_request_id();
    match decision.as_str() {
        "approve" => {
            let worker_state = state.clone();
            let (request_for_code, user_for_code) = (request.clone(), user.clone());
            let code = crate::db::run(&state.pool, move |conn| {
                let (request, user) = (request_for_code, user_for_code);
                // Every approval is recorded (the account page lists it); the checkbox
                // decides whether the next request skips the page.
                let previous = find_consent(conn, &user.id, &request.client.client_id, &request.audience)?;
                let mut scopes: Vec<String> = request.scope.iter().map(str::to_owned).collect();
                if let Some(previous) = previous {
                    scopes.extend(previous.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
                }
                let merged = Scopes::from_tokens(scopes.iter().map(String::as_str)).unwrap_or_default();
                let grant = ConsentGrant {
                    user_id: &user.id,
                    client_id: &request.client.client_id,
                    audience: &request.audience,
                    scope: &merged.to_string(),
                    remembered: remember,
                };
                save_consent(conn, &grant, crate::db::now())?;
                let entry = AuditEntry::new(Actor::User(&user.id), "consent.granted", Outcome::Success)
                    .target("client", &request.client.client_id)
                    .from_request(None, Some(&request_id))
                    .details(serde_json::json!({
                        "scope": request.scope.to_string(),
                        "audience": request.audience,
                        "remembered": remember,
                    }));
                audit::record(conn, &entry)?;
                issue_code(conn, &worker_state, &request, &user)
            })
            .await?;
            Ok(code_redirect(&request, &issuer, &code))
        }
        "deny" => {
            let (user_id, client_id) = (user.id.clone(), request.client.client_id.clone());
            crate::db::run(&state.pool, move |conn| {
                let entry = AuditEntry::new(Actor::User(&user_id), "consent.denied", Outcome::Success)
                    .target("client", &client_id)
                    .from_request(None, Some(&request_id));
                Ok(audit::record(conn, &entry)?)
            })
            .await?;
            Ok(respond_error(
                AuthorizeError::Redirect {
                    redirect_uri: request.redirect_uri.to_string(),
                    state: request.state,
                    error: "access_denied",
                    description: "the user denied the request".into(),
                },
                &issuer,
            ))
        }
        _ => Ok(error_page(StatusCode::BAD_REQUEST, "Cannot continue", "Choose Allow or Deny.")),
    }
}
