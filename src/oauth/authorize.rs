//! The authorization endpoint's protocol (RFC 6749 §4.1.1) for the code flow, with PKCE
//! (RFC 7636, S256 only) and issuer identification in the response (RFC 9207). It checks a
//! request and decides what happens to it ([`Decision`]); the pages a person sees (consent,
//! errors) and the form they post are `web::consent`'s.
//!
//! RFC 6749 §4.1.2.1: when the client or redirect URI is unknown, the user sees an error
//! page and is never redirected; any later error goes back to the client's registered
//! redirect URI with `error` and `state`.

use chrono::TimeDelta;

use super::connect::{keep_choice, key_audience, wants_api_key};
use super::params::OAuthParams;
use super::token_exchange::API_KEY_TOKEN_TYPE;
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::crypto::{TokenHasher, random_token};
use crate::db::DbConnection;
use crate::db::apis::find_api_by_audience;
use crate::db::authorization_codes::{NewAuthorizationCode, insert_code};
use crate::db::clients::{Client, find_client};
use crate::db::users::User;
use crate::domain::{
    ACR_VALUES_SUPPORTED, Authentication, CodeChallenge, GrantType, Issuer, RedirectUri, ResourceUri, Scopes,
};
use crate::error::AppError;
use crate::manage::api_keys::KeyRequest;
use crate::manage::consents::{is_remembered, record_approval};
use crate::state::AppState;

/// RFC 9700 §4.5 recommends codes live briefly; one minute covers any real redirect.
pub const CODE_LIFETIME: TimeDelta = TimeDelta::seconds(60);

/// Scopes Latchkey itself understands, beyond those of the APIs.
pub const IDENTITY_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// A live sign-in at the authorization endpoint: who, and how and when (what id and access
/// tokens report as `amr`, `acr` and `auth_time`).
#[derive(Debug, Clone)]
pub struct SignIn {
    pub user: User,
    pub authentication: Authentication,
}

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
    /// The connect flow: the client asks for an API key the person chooses, not for tokens.
    pub wants_api_key: bool,
    /// OIDC `max_age`: a sign-in older than this many seconds must be made again.
    pub max_age: Option<i64>,
    /// OIDC `acr_values` Latchkey knows, in the client's order of preference: the sign-in
    /// must meet one of them (RFC 9470's step-up). Unknown values are ignored.
    pub acr_values: Vec<String>,
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
    issuer: &Issuer,
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
    let max_age = match one("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(seconds)) if seconds >= 0 => Some(seconds),
        Some(_) => return back("invalid_request", "max_age must be a whole number of seconds".into()),
    };
    let acr_values: Vec<String> = one("acr_values")
        .unwrap_or_default()
        .split(' ')
        .filter(|value| ACR_VALUES_SUPPORTED.contains(value))
        .map(str::to_owned)
        .collect();
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
    let wants_api_key = match wants_api_key(one("requested_token_type")) {
        Ok(wants) => wants,
        Err(description) => return back("invalid_request", description),
    };
    let (scope, audience) = if wants_api_key {
        match key_audience(&client, scope, resource, issuer) {
            Ok(audience) => (Scopes::default(), audience),
            Err(refusal) => return back(refusal.error, refusal.description),
        }
    } else {
        let Some(scope) = scope else {
            return back("invalid_scope", "scope is required".into());
        };
        match resolve_target(conn, &client, scope, resource, issuer.as_str())? {
            Ok(target) => target,
            Err(refusal) => return back(refusal.error, refusal.description),
        }
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
        wants_api_key,
        max_age,
        acr_values,
    }))
}

/// Why a request's scope or resource was refused: an RFC 6749 error code and what to fix.
#[derive(Debug)]
pub struct TargetRefusal {
    pub error: &'static str,
    pub description: String,
}

/// The same refusal at an endpoint that answers in JSON (the device authorization endpoint).
impl From<TargetRefusal> for super::error::OAuthError {
    fn from(refusal: TargetRefusal) -> Self {
        match refusal.error {
            "invalid_target" => Self::invalid_target(refusal.description),
            "unauthorized_client" => Self::unauthorized_client(refusal.description),
            _ => Self::invalid_scope(refusal.description),
        }
    }
}

/// Checks the scope a client asks for and finds the audience its tokens will be for: the
/// API named by `resource` (RFC 8707), else the client's first API, else Latchkey itself
/// when only identity scopes are asked for. Shared by the authorization and device
/// authorization endpoints.
pub fn resolve_target(
    conn: &mut DbConnection,
    client: &Client,
    scope: &str,
    resource: Option<&str>,
    issuer: &str,
) -> Result<Result<(Scopes, String), TargetRefusal>, AppError> {
    let refuse = |error: &'static str, description: String| Ok(Err(TargetRefusal { error, description }));
    let scope = match Scopes::parse(scope) {
        Ok(scope) if !scope.is_empty() => scope,
        Ok(_) => return refuse("invalid_scope", "scope is required".into()),
        Err(e) => return refuse("invalid_scope", e.to_string()),
    };
    let allowed = client.allowed_scopes();
    if !scope.is_subset(&allowed) {
        return refuse("invalid_scope", format!("not allowed for this client: {}", scope.not_in(&allowed).join(" ")));
    }

    // A request for identity scopes alone is for Latchkey itself (userinfo), whatever API
    // the client uses by default: a token for an API is refused at userinfo.
    let identity = Scopes::from_tokens(IDENTITY_SCOPES.iter().copied()).unwrap_or_default();
    let for_latchkey = resource.is_none() && scope.is_subset(&identity);
    let audience = match resource.or_else(|| client.audiences().next()).filter(|_| !for_latchkey) {
        Some(asked) => {
            let Ok(uri) = ResourceUri::parse(asked) else {
                return refuse("invalid_target", format!("`{asked}` is not an absolute URI"));
            };
            if !client.audiences().any(|a| a == uri.as_str()) {
                return refuse("invalid_target", format!("this client may not request tokens for `{uri}`"));
            }
            let Some(api) = find_api_by_audience(conn, uri.as_str())? else {
                return refuse("invalid_target", format!("no API has the audience `{uri}`"));
            };
            let api_scopes = api.scopes();
            let unknown: Vec<&str> =
                scope.iter().filter(|s| !identity.contains(s) && !api_scopes.contains(s)).collect();
            if !unknown.is_empty() {
                return refuse("invalid_scope", format!("the API does not define: {}", unknown.join(" ")));
            }
            uri.to_string()
        }
        None => issuer.to_owned(),
    };
    Ok(Ok((scope, audience)))
}

/// What becomes of an authorization request, for the page layer to carry out.
#[derive(Debug)]
pub enum Decision {
    /// A code was issued: the browser goes to `location`, back at the client.
    Issue { location: String },
    /// The person must allow or deny on the consent page.
    NeedsConsent { request: Box<AuthorizationRequest>, user: Box<User> },
    /// Nobody is signed in: sign in, then come back to the same request.
    NeedsLogin,
    /// The browser's sign-in is too old for `max_age`, or too weak for `acr_values` and the
    /// person has a second factor to add: sign in again (then with it), and come back.
    NeedsFreshSignIn,
    /// The request asks for a second factor the person has not set up.
    NeedsSecondFactorSetUp { client_name: String },
    /// Back to the client with an RFC 6749 §4.1.2.1 error, at `location`.
    RedirectError { location: String },
    /// The client or its redirect URI is not established: a page, never a redirect.
    PageError(String),
}

impl AuthorizeError {
    /// The decision this error makes: a page, or a redirect carrying it.
    pub fn into_decision(self, issuer: &str) -> Decision {
        match self {
            Self::Page(message) => Decision::PageError(message),
            Self::Redirect { redirect_uri, state, error, description } => redirect_to_client(
                &redirect_uri,
                state.as_deref(),
                issuer,
                &[("error", error), ("error_description", &description)],
            )
            .map_or_else(Decision::PageError, |location| Decision::RedirectError { location }),
        }
    }
}

/// The client's redirect URI with `params`, `state` and `iss` (RFC 9207) appended.
fn redirect_to_client(
    redirect_uri: &str,
    state: Option<&str>,
    issuer: &str,
    params: &[(&str, &str)],
) -> Result<String, String> {
    // Registered URIs were parsed when registered; failing here cannot happen.
    let mut url = url::Url::parse(redirect_uri).map_err(|_| "The return address is invalid.".to_owned())?;
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
    Ok(url.to_string())
}

/// Back to the client with `error`, keeping its `state`.
fn back_to_client(request: &AuthorizationRequest, error: &'static str, description: &str) -> AuthorizeError {
    AuthorizeError::Redirect {
        redirect_uri: request.redirect_uri.to_string(),
        state: request.state.clone(),
        error,
        description: description.to_owned(),
    }
}

/// Issues a code for `user` (from a blocking context) and returns it; for the connect flow,
/// with the key the person chose (JSON), made when the code is exchanged.
fn issue_code(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    request: &AuthorizationRequest,
    sign_in: &SignIn,
    key_request: Option<&str>,
) -> Result<String, AppError> {
    let code = random_token::<32>();
    let now = crate::db::now();
    let amr = sign_in.authentication.methods.to_string();
    insert_code(
        conn,
        &NewAuthorizationCode {
            code_hash: hasher.hash(&code).as_str(),
            client_id: &request.client.client_id,
            user_id: &sign_in.user.id,
            redirect_uri: request.redirect_uri.as_str(),
            scope: &request.scope.to_string(),
            audience: &request.audience,
            code_challenge: request.code_challenge.as_ref().map(CodeChallenge::as_str),
            nonce: request.nonce.as_deref(),
            auth_time: sign_in.authentication.at,
            created_at: now,
            expires_at: now + CODE_LIFETIME,
            redirect_uri_given: request.redirect_uri_given,
            requested_token_type: request.wants_api_key.then_some(API_KEY_TOKEN_TYPE),
            key_request,
            amr: Some(&amr),
        },
    )?;
    Ok(code)
}

fn issued(request: &AuthorizationRequest, issuer: &str, code: &str) -> Decision {
    redirect_to_client(request.redirect_uri.as_str(), request.state.as_deref(), issuer, &[("code", code)])
        .map_or_else(Decision::PageError, |location| Decision::Issue { location })
}

/// Checks the request's parameters against the client's registration (off the async
/// workers), and gives them back for the consent form to carry.
pub async fn validate(
    state: &AppState,
    params: OAuthParams,
) -> Result<(Result<AuthorizationRequest, AuthorizeError>, OAuthParams), AppError> {
    let issuer = state.issuer.clone();
    crate::db::run(&state.pool, move |conn| {
        let result = validate_request(conn, &params, &issuer)?;
        Ok((result, params))
    })
    .await
}

/// Whether the person already consented to all of `request` and asked to be remembered
/// ([`is_remembered`]).
async fn remembered(state: &AppState, user: &User, request: &AuthorizationRequest) -> Result<bool, AppError> {
    let (user_id, client_id, audience) = (user.id.clone(), request.client.client_id.clone(), request.audience.clone());
    let scope = request.scope.clone();
    crate::db::run(&state.pool, move |conn| is_remembered(conn, &user_id, &client_id, &audience, &scope)).await
}

/// What to do with a request from a browser where `user` is signed in (or nobody is): issue
/// a code at once if the person already consented to all of it, else ask, or refuse when
/// `prompt=none` forbids asking.
pub async fn decide(
    state: &AppState,
    params: OAuthParams,
    sign_in: Option<SignIn>,
) -> Result<(Decision, OAuthParams), AppError> {
    let issuer = state.issuer.to_string();
    let (request, params) = validate(state, params).await?;
    let request = match request {
        Ok(request) => request,
        Err(error) => return Ok((error.into_decision(&issuer), params)),
    };
    let Some(sign_in) = sign_in else {
        if request.prompt_none {
            return Ok((login_required(&request).into_decision(&issuer), params));
        }
        return Ok((Decision::NeedsLogin, params));
    };
    if let Some(shortfall) = shortfall(&request, &sign_in.authentication, crate::db::now()) {
        if request.prompt_none {
            let refusal = back_to_client(&request, "login_required", shortfall.description());
            return Ok((refusal.into_decision(&issuer), params));
        }
        if shortfall == Shortfall::TooWeak {
            let user_id = sign_in.user.id.clone();
            let can_step_up = crate::db::run(&state.pool, move |conn| {
                crate::manage::second_factors::has_second_factor(conn, &user_id)
            })
            .await?;
            if !can_step_up {
                return Ok((Decision::NeedsSecondFactorSetUp { client_name: request.client.name.clone() }, params));
            }
        }
        return Ok((Decision::NeedsFreshSignIn, params));
    }
    // A key is chosen each time: no remembered consent stands for one.
    if !request.prompt_consent && !request.wants_api_key && remembered(state, &sign_in.user, &request).await? {
        let hasher = state.hasher.clone();
        let request_for_code = request.clone();
        let code =
            crate::db::run(&state.pool, move |conn| issue_code(conn, &hasher, &request_for_code, &sign_in, None))
                .await?;
        return Ok((issued(&request, &issuer, &code), params));
    }
    if request.prompt_none {
        let refusal = back_to_client(&request, "consent_required", "the user has not consented to these scopes");
        return Ok((refusal.into_decision(&issuer), params));
    }
    Ok((Decision::NeedsConsent { request: Box::new(request), user: Box::new(sign_in.user) }, params))
}

/// Why the browser's sign-in does not do for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    /// Older than the request's `max_age`.
    TooOld,
    /// Meets none of the request's `acr_values`.
    TooWeak,
}

impl Shortfall {
    fn description(self) -> &'static str {
        match self {
            Self::TooOld => "the user's sign-in is older than max_age",
            Self::TooWeak => "the user's sign-in does not meet the requested acr_values",
        }
    }
}

/// A sign-in finished this recently meets any `max_age`: it is the sign-in the request just
/// asked for (with `max_age=0` none could be recent enough once the browser is back).
const FRESH_SIGN_IN: TimeDelta = TimeDelta::seconds(10);

/// Whether `authentication` does for `request`: recent enough for its `max_age`, and strong
/// enough for one of its `acr_values`.
pub fn shortfall(
    request: &AuthorizationRequest,
    authentication: &Authentication,
    now: chrono::NaiveDateTime,
) -> Option<Shortfall> {
    let age = now - authentication.at;
    if let Some(max_age) = request.max_age
        && age > TimeDelta::seconds(max_age)
        && age > FRESH_SIGN_IN
    {
        return Some(Shortfall::TooOld);
    }
    if !request.acr_values.is_empty() && !request.acr_values.iter().any(|acr| authentication.methods.meets(acr)) {
        return Some(Shortfall::TooWeak);
    }
    None
}

/// `prompt=none`, or a consent form posted after signing out: the client must sign the
/// person in again.
pub fn login_required(request: &AuthorizationRequest) -> AuthorizeError {
    back_to_client(request, "login_required", "the user is not signed in")
}

/// What the person allowed: tokens (the consent remembered if they ticked the box), or the
/// API key they chose for a connect-flow request (vetted as them already).
#[derive(Debug)]
pub enum Approval {
    Tokens { remember: bool },
    Key(KeyRequest),
}

/// The person allowed `request`: the consent is recorded, and a code issued. A key is its
/// own record, made when the code is exchanged; no consent stands for it.
pub async fn approve(
    state: &AppState,
    request: AuthorizationRequest,
    sign_in: SignIn,
    approval: Approval,
) -> Result<Decision, AppError> {
    let issuer = state.issuer.to_string();
    let request_id = crate::telemetry::current_request_id();
    let hasher = state.hasher.clone();
    let key_request = match &approval {
        Approval::Key(chosen) if request.wants_api_key => Some(keep_choice(chosen)?),
        Approval::Tokens { .. } if !request.wants_api_key => None,
        _ => return Err(AppError::BadRequest("the approval does not match what the request asks for".into())),
    };
    let remember = matches!(approval, Approval::Tokens { remember: true });
    let request_for_code = request.clone();
    let code = crate::db::run(&state.pool, move |conn| {
        let (request, user) = (request_for_code, &sign_in.user);
        let client_id = &request.client.client_id;
        if !request.wants_api_key {
            record_approval(conn, &user.id, client_id, &request.audience, &request.scope, remember)?;
        }
        let entry = AuditEntry::new(Actor::User(&user.id), "consent.granted", Outcome::Success)
            .target("client", &request.client.client_id)
            .from_request(None, Some(&request_id))
            .details(serde_json::json!({
                "scope": request.scope.to_string(),
                "audience": request.audience,
                "remembered": remember,
                "requested_token_type": request.wants_api_key.then_some(API_KEY_TOKEN_TYPE),
            }));
        audit::record(conn, &entry)?;
        issue_code(conn, &hasher, &request, &sign_in, key_request.as_deref())
    })
    .await?;
    Ok(issued(&request, &issuer, &code))
}

/// The person denied `request`: recorded, and the client told `access_denied`.
pub async fn deny(state: &AppState, request: AuthorizationRequest, user: User) -> Result<Decision, AppError> {
    let request_id = crate::telemetry::current_request_id();
    let (user_id, client_id) = (user.id.clone(), request.client.client_id.clone());
    crate::db::run(&state.pool, move |conn| {
        let entry = AuditEntry::new(Actor::User(&user_id), "consent.denied", Outcome::Success)
            .target("client", &client_id)
            .from_request(None, Some(&request_id));
        Ok(audit::record(conn, &entry)?)
    })
    .await?;
    Ok(back_to_client(&request, "access_denied", "the user denied the request")
        .into_decision(&state.issuer.to_string()))
}
