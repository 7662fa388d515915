//! The authorization endpoint as a person meets it (`/oauth2/authorize`): the redirect to
//! sign in, the consent page with its remember checkbox, the posted decision (CSRF-checked),
//! and the error pages. What the request means and what to do with it is the protocol's
//! ([`crate::oauth::authorize`]); this module only carries out its [`Decision`].

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::csrf::{self, CsrfToken};
use super::key_form::{self, KeyChoice, KeyDraft, KeyForm};
use super::pages::{error_page, form_page_leading_to, page_response, render, see_other, sign_in_then};
use super::session::current_sign_in;
use crate::audit::Origin;
use crate::db::users::User;
use crate::domain::Scopes;
use crate::error::AppError;
use crate::oauth::AUTHORIZE_PATH;
use crate::oauth::authorize::{self, Approval, AuthorizationRequest, Decision, login_required};
use crate::oauth::params::OAuthParams;
use crate::state::AppState;

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
    /// A connect-flow request: the key to choose instead of scopes.
    connect: Option<KeyChoice>,
    form_action: &'static str,
    allow_value: &'static str,
    recipient: &'static str,
}

/// The page asking `user` to allow or deny `request`. The request's own parameters ride in
/// hidden fields, to be checked again when the form comes back; a connect-flow request's
/// page also offers the key (`draft`).
fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    request: &AuthorizationRequest,
    user: &User,
    params: &OAuthParams,
    draft: Option<KeyDraft>,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let hidden: Vec<(String, String)> = params
        .pairs()
        .filter(|(name, _)| !matches!(*name, "csrf_token" | "decision" | "remember"))
        .filter(|(name, _)| !key_form::FIELDS.contains(name))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    let fix = draft.as_ref().is_some_and(KeyDraft::has_errors);
    let connect = draft.map(|draft| {
        let mut here = url::form_urlencoded::Serializer::new(String::new());
        here.extend_pairs(hidden.iter());
        draft.choice(state.settings.environment, format!("{AUTHORIZE_PATH}?{}&kind=", here.finish()))
    });
    let page = ConsentPage {
        client_name: &request.client.name,
        user_name: user.display_name(),
        scopes: scopes_for_people(&request.scope),
        hidden,
        csrf_token: &form_value,
        connect,
        form_action: AUTHORIZE_PATH,
        allow_value: "approve",
        recipient: "application",
    };
    let mut response = form_page_leading_to(cookie, &page, &request.redirect_uri)?;
    if fix {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// The consent page for `request`: for a connect-flow request, with the kinds of key the
/// person may create (`kind`, from the page's address, chosen).
async fn ask(
    req: &HttpRequest,
    state: &AppState,
    request: &AuthorizationRequest,
    user: &User,
    params: &OAuthParams,
) -> Result<HttpResponse, AppError> {
    let draft = if request.wants_api_key {
        let (person, origin) = (user.clone(), Origin::of(req));
        let offer = crate::db::run(&state.pool, move |conn| key_form::offer_to(conn, &person, &origin)).await?;
        Some(KeyDraft::new(offer, params.get("kind").ok().flatten()))
    } else {
        None
    };
    consent_page(req, state, request, user, params, draft)
}

#[derive(Template)]
#[template(path = "second_factor_needed.html")]
struct SecondFactorNeededPage<'a> {
    client_name: &'a str,
}

/// A decision that needs no page of its own.
fn carry_out(decision: Decision, req: &HttpRequest) -> HttpResponse {
    match decision {
        Decision::Issue { location } | Decision::RedirectError { location } => see_other(&location),
        Decision::NeedsLogin => see_other(&sign_in_then(&format!("{AUTHORIZE_PATH}?{}", req.query_string()))),
        Decision::NeedsFreshSignIn => {
            let again = sign_in_then(&format!("{AUTHORIZE_PATH}?{}", req.query_string()));
            see_other(&format!("{again}&reauth=1"))
        }
        Decision::NeedsSecondFactorSetUp { client_name } => {
            match render(&SecondFactorNeededPage { client_name: &client_name }) {
                Ok(body) => page_response(StatusCode::FORBIDDEN).body(body),
                Err(error) => error.error_response(),
            }
        }
        Decision::PageError(message) => error_page(StatusCode::BAD_REQUEST, "This sign-in link is not valid", &message),
        // Callers render the consent page themselves; a decision asking for it here has
        // nowhere else to go.
        Decision::NeedsConsent { .. } => {
            error_page(StatusCode::BAD_REQUEST, "Cannot continue", "Go back to the application and start again.")
        }
    }
}

#[tracing::instrument(name = "authorize", skip_all)]
pub async fn get_authorize(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Ok(params) = OAuthParams::from_query(req.query_string()) else {
        return Ok(error_page(StatusCode::BAD_REQUEST, "This sign-in link is not valid", "The link is malformed."));
    };
    let sign_in = current_sign_in(&req, &state).await?;
    match authorize::decide(&state, params, sign_in).await? {
        (Decision::NeedsConsent { request, user }, params) => ask(&req, &state, &request, &user, &params).await,
        (decision, _) => Ok(carry_out(decision, &req)),
    }
}

/// What the person chose on the consent page.
enum ConsentDecision {
    Approve { remember: bool },
    Deny,
}

impl ConsentDecision {
    fn from_form(params: &OAuthParams) -> Option<Self> {
        let remember = params.get("remember").ok().flatten().is_some();
        match params.get("decision").ok().flatten() {
            Some("approve") => Some(Self::Approve { remember }),
            Some("deny") => Some(Self::Deny),
            _ => None,
        }
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
    let choice = ConsentDecision::from_form(&params);
    // A connect-flow page posts the key's fields beside the request's own parameters.
    let key: KeyForm = serde_html_form::from_bytes(&body).unwrap_or_default();
    let params = params.without(&key_form::FIELDS);
    if !csrf::verify(&req, &state, &submitted_csrf) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back to the application and start again.",
        ));
    }
    let (request, params) = authorize::validate(&state, params).await?;
    let request = match request {
        Ok(request) => request,
        Err(error) => return Ok(carry_out(error.into_decision(&issuer), &req)),
    };
    let Some(sign_in) = current_sign_in(&req, &state).await? else {
        return Ok(carry_out(login_required(&request).into_decision(&issuer), &req));
    };
    // Checked again: the form carries max_age and acr_values, and the sign-in may have aged
    // since the page was shown. The client starts again, as after signing out.
    if authorize::shortfall(&request, &sign_in.authentication, crate::db::now()).is_some() {
        return Ok(carry_out(login_required(&request).into_decision(&issuer), &req));
    }
    let user = sign_in.user.clone();
    let decision = match choice {
        Some(ConsentDecision::Approve { .. }) if request.wants_api_key => {
            let (person, origin) = (user.clone(), Origin::of(&req));
            let vetted =
                crate::db::run(&state.pool, move |conn| key_form::vet_choice(conn, &person, &origin, key)).await?;
            match vetted {
                Ok(chosen) => authorize::approve(&state, request, sign_in, Approval::Key(chosen)).await?,
                Err(draft) => return consent_page(&req, &state, &request, &user, &params, Some(draft)),
            }
        }
        Some(ConsentDecision::Approve { remember }) => {
            authorize::approve(&state, request, sign_in, Approval::Tokens { remember }).await?
        }
        Some(ConsentDecision::Deny) => authorize::deny(&state, request, user).await?,
        None => return Ok(error_page(StatusCode::BAD_REQUEST, "Cannot continue", "Choose Allow or Deny.")),
    };
    Ok(carry_out(decision, &req))
}
