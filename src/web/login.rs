//! Signing in and out with email and password.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::pages::{busy_page, error_page, form_page, form_page_leading_to, passkey_page, see_other};
use super::session::{
    ENROLMENT_LIFETIME, PENDING_SIGN_IN_LIFETIME, begin_pending_sign_in, current_user, delete_held_session,
    end_session, held_session, start_session,
};
use super::throttle::{self, SignInSubjects};
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::users::find_user_by_email;
use crate::domain::{RedirectUri, ReturnTo, SignInMethods};
use crate::error::AppError;
use crate::manage::second_factors::{has_second_factor, second_factor_required};
use crate::manage::users::normalize_email;
use crate::oauth::params::OAuthParams;
use crate::state::AppState;

const FORM_LIMIT: usize = 16 * 1024;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    return_to: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// "Forgot your password?", leading back to the same place.
    forgot: String,
    /// Offer "Sign in with a passkey" (the issuer is a domain name).
    passkeys: bool,
}

/// The sign-in form, with the passkey script where passkeys are on.
pub(super) fn show_login(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    return_to: &ReturnTo,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = LoginPage {
        csrf_token: &form_value,
        return_to: return_to.as_str(),
        email,
        error,
        notice,
        forgot: super::password_reset::forgot_then(return_to.as_str()),
        passkeys: state.passkeys.is_some(),
    };
    if page.passkeys { passkey_page(status, cookie, &page) } else { form_page(status, cookie, &page) }
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    csrf_token: &'a str,
    name: &'a str,
    /// The application the browser returns to afterwards (RP-initiated logout).
    client_name: Option<&'a str>,
    hidden: Vec<(&'static str, String)>,
}

/// Where a client asked the browser to go after sign-out, checked against its registration.
struct LogoutReturn {
    client_id: String,
    client_name: String,
    uri: RedirectUri,
    state: Option<String>,
}

impl LogoutReturn {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields =
            vec![("client_id", self.client_id.clone()), ("post_logout_redirect_uri", self.uri.to_string())];
        if let Some(state) = &self.state {
            fields.push(("state", state.clone()));
        }
        fields
    }

    fn redirect(&self) -> HttpResponse {
        let mut url = match url::Url::parse(self.uri.as_str()) {
            Ok(url) => url,
            Err(_) => return see_other("/login?signed_out=1"),
        };
        if let Some(state) = &self.state {
            url.query_pairs_mut().append_pair("state", state);
        }
        see_other(url.as_str())
    }
}

/// OIDC RP-Initiated Logout §3: the URI must be registered for the client, exactly.
fn logout_return(
    conn: &mut crate::db::DbConnection,
    client_id: Option<String>,
    uri: Option<String>,
    state: Option<String>,
) -> Result<Result<Option<LogoutReturn>, &'static str>, AppError> {
    let Some(uri) = uri else {
        return Ok(Ok(None));
    };
    let Some(client_id) = client_id else {
        return Ok(Err("The request does not say which application to return to."));
    };
    let Some(client) = crate::db::clients::find_client(conn, &client_id)? else {
        return Ok(Err("The application that sent you here is not registered with this server."));
    };
    let Some(uri) = client.post_logout_redirect_uris().into_iter().find(|registered| registered.matches(&uri)) else {
        return Ok(Err("The application asked to return you to an address it has not registered."));
    };
    Ok(Ok(Some(LogoutReturn { client_id, client_name: client.name, uri, state })))
}

fn invalid_logout(message: &str) -> HttpResponse {
    error_page(StatusCode::BAD_REQUEST, "This sign-out link is not valid", message)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    signed_out: Option<String>,
    /// Arrived from accepting an invitation.
    welcome: Option<String>,
    /// An app asked for a more recent or a stronger sign-in: the form, even when signed in.
    reauth: Option<String>,
    /// Back from choosing a new password.
    reset: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: SecretString,
    csrf_token: String,
    #[serde(default)]
    return_to: String,
}

pub async fn get_login(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let return_to = ReturnTo::or_default(query.return_to.as_deref(), &state.issuer);
    let signed_in = current_user(&req, &state).await?;
    if signed_in.is_some() && query.reauth.is_none() {
        return Ok(see_other(return_to.as_str()));
    }
    let notice = if query.welcome.is_some() {
        Some("Your password is set. Sign in to continue.")
    } else if query.reset.is_some() {
        Some("Your password is changed, and you were signed out everywhere. Sign in with the new one.")
    } else if query.reauth.is_some() {
        Some("The app you came from asks you to sign in again before it continues.")
    } else {
        query.signed_out.is_some().then_some("You have signed out.")
    };
    let email = signed_in.as_ref().map_or("", |user| user.email.as_str());
    show_login(&req, &state, StatusCode::OK, &return_to, email, None, notice)
}

/// What a right password leads to before the sign-in finishes.
enum NextStep {
    /// The person's second factor.
    SecondFactor,
    /// The owners require a second factor this person has not set up: they set one up.
    Enrolment,
}

enum Attempt {
    SignedIn {
        user_id: String,
        cookie: actix_web::cookie::Cookie<'static>,
    },
    /// The password was right; a second step comes next, on its own page.
    Pending {
        cookie: actix_web::cookie::Cookie<'static>,
        next: NextStep,
    },
    Refused,
}

#[tracing::instrument(name = "login", skip_all)]
pub async fn post_login(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let body = match payload.to_bytes_limited(FORM_LIMIT).await {
        Ok(Ok(body)) => body,
        _ => return Ok(error_page(StatusCode::BAD_REQUEST, "Sign-in failed", "The form could not be read.")),
    };
    let Ok(form) = serde_html_form::from_bytes::<LoginForm>(&body) else {
        return Ok(error_page(StatusCode::BAD_REQUEST, "Sign-in failed", "The form was incomplete. Please try again."));
    };
    let return_to = ReturnTo::or_default(Some(&form.return_to), &state.issuer);
    if !csrf::verify(&req, &state, &form.csrf_token) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back, reload the sign-in page and try again.",
        ));
    }

    // The rule users were created with; a malformed address simply matches no one, and is
    // still checked against the decoy hash and counted by the throttle.
    let email = normalize_email(&form.email).unwrap_or_else(|_| form.email.trim().to_lowercase());
    let address = req.peer_addr().map(|addr| addr.ip().to_string()).unwrap_or_default();
    let throttled = SignInSubjects::new(&state.hasher, &email, &address);
    if let Err(wait) = throttle::admit(&state.limiter, &throttled).await {
        state.metrics.authentication_failed("user", "throttled");
        return Ok(throttle::refused_page(wait));
    }

    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request_id = crate::telemetry::current_request_id();
    let held = held_session(&req, &state);
    let lookup_email = email.clone();
    let user = crate::db::run(&state.pool, move |conn| {
        Ok(find_user_by_email(conn, crate::db::DEFAULT_TENANT_ID, &lookup_email)?)
    })
    .await?;
    // Argon2 runs whether or not the account exists (against a decoy): timing tells
    // nothing. It runs outside the database trip, through the bounded door.
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = match state.passwords.verify(form.password, stored).await {
        Ok(ok) => ok,
        Err(busy) => {
            throttle::not_checked(&state.limiter, &throttled).await;
            state.metrics.authentication_failed("user", "busy");
            return Ok(busy_page(busy));
        }
    };
    let worker_state = state.clone();
    let audit_email = email.clone();
    let attempt = crate::db::run(&state.pool, move |conn| -> Result<Attempt, AppError> {
        match user {
            Some(user) if password_ok && user.is_active() => {
                let next = if has_second_factor(conn, &user.id)? {
                    Some(NextStep::SecondFactor)
                } else if second_factor_required(conn, &user)? {
                    Some(NextStep::Enrolment)
                } else {
                    None
                };
                if let Some(next) = next {
                    let (lifetime, second_factor) = match next {
                        NextStep::SecondFactor => (PENDING_SIGN_IN_LIFETIME, "required"),
                        NextStep::Enrolment => (ENROLMENT_LIFETIME, "to be set up"),
                    };
                    let ip = Some(address.as_str());
                    let cookie =
                        begin_pending_sign_in(conn, &worker_state, &user.id, ip, user_agent.as_deref(), lifetime)?;
                    // Seen in the log, a right password never followed by its second factor
                    // is what a stolen password looks like.
                    let entry = AuditEntry::new(Actor::User(&user.id), "user.password_accepted", Outcome::Success)
                        .target("user", &user.id)
                        .from_request(ip, Some(&request_id))
                        .details(serde_json::json!({ "second_factor": second_factor }));
                    audit::record(conn, &entry)?;
                    return Ok(Attempt::Pending { cookie, next });
                }
                let methods = SignInMethods::password();
                if let Some(held) = &held {
                    delete_held_session(conn, held)?;
                }
                let cookie =
                    start_session(conn, &worker_state, &user.id, &methods, Some(&address), user_agent.as_deref())?;
                let entry = AuditEntry::new(Actor::User(&user.id), "user.signed_in", Outcome::Success)
                    .target("user", &user.id)
                    .from_request(Some(&address), Some(&request_id))
                    .details(serde_json::json!({ "amr": methods.amr() }));
                audit::record(conn, &entry)?;
                Ok(Attempt::SignedIn { user_id: user.id, cookie })
            }
            user => {
                let reason = match &user {
                    None => "unknown email",
                    Some(u) if !u.is_active() => "account not active",
                    Some(_) => "wrong password",
                };
                let target = user.as_ref().map(|u| u.id.as_str()).unwrap_or("");
                let entry = AuditEntry::new(Actor::Anonymous, "user.sign_in_failed", Outcome::Failure)
                    .target("user", target)
                    .from_request(Some(&address), Some(&request_id))
                    .details(serde_json::json!({ "reason": reason, "email": audit_email }));
                audit::record(conn, &entry)?;
                Ok(Attempt::Refused)
            }
        }
    })
    .await?;

    match attempt {
        Attempt::SignedIn { user_id, cookie } => {
            throttle::succeeded(&state.limiter, &throttled).await;
            tracing::info!(%user_id, "signed in");
            let mut response = see_other(return_to.as_str());
            response.add_cookie(&cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(response)
        }
        Attempt::Pending { cookie, next } => {
            let page = match next {
                // The throttle's count stays until the second factor is given: a right
                // password must not buy more guesses at the code.
                NextStep::SecondFactor => super::second_factor::page_then(return_to.as_str()),
                // Nothing is left to guess: the password was the whole of the proof.
                NextStep::Enrolment => {
                    throttle::succeeded(&state.limiter, &throttled).await;
                    super::enrolment::page_then(return_to.as_str())
                }
            };
            let mut response = see_other(&page);
            response.add_cookie(&cookie).map_err(|e| AppError::Unexpected(e.into()))?;
            Ok(response)
        }
        Attempt::Refused => {
            state.metrics.authentication_failed("user", "wrong email or password");
            // One message for every cause: it must not reveal which emails exist.
            let error = Some("The email or password is incorrect.");
            show_login(&req, &state, StatusCode::UNAUTHORIZED, &return_to, &email, error, None)
        }
    }
}

/// Asks before signing out, so that a link cannot sign anyone out. Also the OpenID
/// Connect `end_session_endpoint`: a client may name a registered address to return to,
/// identifying itself by `client_id` or an `id_token_hint` it received from us.
pub async fn get_logout(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let Ok(params) = OAuthParams::from_query(req.query_string()) else {
        return Ok(invalid_logout("The link is malformed."));
    };
    let single = |name: &str| params.get(name).map(|v| v.map(str::to_owned));
    let (Ok(hint), Ok(client_id), Ok(uri), Ok(return_state)) =
        (single("id_token_hint"), single("client_id"), single("post_logout_redirect_uri"), single("state"))
    else {
        return Ok(invalid_logout("The link repeats a parameter."));
    };
    let hinted_client = match hint {
        Some(hint) => match crate::oauth::id_token::verify_hint(&state, &hint) {
            Some(claims) => Some(claims.aud),
            None => return Ok(invalid_logout("The id_token_hint was not issued by this server.")),
        },
        None => None,
    };
    if let (Some(named), Some(hinted)) = (&client_id, &hinted_client)
        && named != hinted
    {
        return Ok(invalid_logout("client_id and id_token_hint name different applications."));
    }
    let client_id = client_id.or(hinted_client);
    let destination =
        match crate::db::run(&state.pool, move |conn| logout_return(conn, client_id, uri, return_state)).await? {
            Ok(destination) => destination,
            Err(message) => return Ok(invalid_logout(message)),
        };
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(destination.map_or_else(|| see_other("/login"), |d| d.redirect()));
    };
    let CsrfToken { form_value, cookie } = csrf::issue(&req, &state);
    let page = LogoutPage {
        csrf_token: &form_value,
        name: user.display_name(),
        client_name: destination.as_ref().map(|d| d.client_name.as_str()),
        hidden: destination.as_ref().map(LogoutReturn::fields).unwrap_or_default(),
    };
    match &destination {
        Some(destination) => form_page_leading_to(cookie, &page, &destination.uri),
        None => form_page(StatusCode::OK, cookie, &page),
    }
}

pub async fn post_logout(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let body = payload.to_bytes_limited(FORM_LIMIT).await.ok().and_then(Result::ok).unwrap_or_default();
    let params = OAuthParams::parse(Some("application/x-www-form-urlencoded"), &body).unwrap_or_default();
    let field = |name: &str| params.get(name).ok().flatten().map(str::to_owned);
    if !csrf::verify(&req, &state, &field("csrf_token").unwrap_or_default()) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Go back, reload the page and try again.",
        ));
    }
    let user = current_user(&req, &state).await?;
    let cleared = end_session(&req, &state).await?;
    let request_id = crate::telemetry::current_request_id();
    let (client_id, uri, return_state) = (field("client_id"), field("post_logout_redirect_uri"), field("state"));
    let destination = crate::db::run(&state.pool, move |conn| {
        if let Some(user) = user {
            let entry = AuditEntry::new(Actor::User(&user.id), "user.signed_out", Outcome::Success)
                .target("user", &user.id)
                .from_request(None, Some(&request_id));
            audit::record(conn, &entry)?;
        }
        // Checked again: the hidden fields are the browser's to change.
        Ok(logout_return(conn, client_id, uri, return_state)?.ok().flatten())
    })
    .await?;
    let mut response = destination.map_or_else(|| see_other("/login?signed_out=1"), |d| d.redirect());
    response.add_cookie(&cleared).map_err(|e| AppError::Unexpected(e.into()))?;
    Ok(response)
}
