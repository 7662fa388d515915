//! The account page: who is signed in, the apps the user let in (with a way to withdraw
//! each), personal API keys, changing the password, and where the user is signed in.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{self, CsrfToken};
use super::form::PageForm;
use super::pages::{busy_page, error_page, form_page};
use super::session::{current_sign_in, current_user, held_session, signed_in};
use super::throttle::{self, SignInSubjects};
use crate::audit::{self, Actor, AuditEntry, Origin, Outcome};
use crate::db::consents::{Consent, delete_consent, list_consents_for_user};
use crate::db::refresh_tokens::revoke_families_of_user_client;
use crate::db::sessions::list_sessions_for_user;
use crate::db::users::User;
use crate::domain::Scopes;
use crate::domain::{ApiKeyKind, Authentication};
use crate::error::AppError;
use crate::manage::api_keys::{self, KeyRequest};
use crate::manage::second_factors;
use crate::manage::{SignedInUser, run_as};
use crate::passwords::PasswordHasher;
use crate::state::AppState;

struct AppAccess {
    client_id: String,
    client_name: String,
    scopes: Vec<String>,
    since: String,
}

struct SignIn {
    started: String,
    address: String,
    browser: String,
    current: bool,
}

struct PersonalKey {
    id: String,
    name: String,
    shown_as: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    name: &'a str,
    email: &'a str,
    member_since: String,
    apps: Vec<AppAccess>,
    sessions: Vec<SignIn>,
    keys: Vec<PersonalKey>,
    /// A key just created: shown on this one page and never again.
    new_key: Option<&'a str>,
    csrf_token: &'a str,
    notice: Option<&'a str>,
    /// Why the password was not changed.
    password_error: Option<&'a str>,
    factors: FactorsView,
    /// Why a second factor was not changed.
    factor_error: Option<&'a str>,
    /// This browser signed in with two factors moments ago: the current password may be
    /// left out of a password change.
    recent_second_factor: bool,
}

/// How long a sign-in with two factors stands in for the current password when changing
/// it: someone who signs in with a passkey may not remember the password at all.
const RECENT_SECOND_FACTOR: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

fn is_recent_second_factor(amr: &str, signed_in_at: chrono::NaiveDateTime) -> bool {
    Authentication::from_stored(Some(amr), signed_in_at).is_recent_multi_factor(crate::db::now(), RECENT_SECOND_FACTOR)
}

/// The two-step sign-in and passkey sections.
struct FactorsView {
    /// Since when an authenticator app is on, and when it was last used; `None` when off.
    app: Option<(String, String)>,
    /// An app set up halfway (its page can be opened again).
    app_being_set_up: bool,
    recovery_codes_left: i64,
    passkeys: Vec<PasskeyView>,
    /// This server can register passkeys (its issuer is a domain name).
    passkeys_offered: bool,
}

impl FactorsView {
    /// Signing in with the password takes a second factor.
    fn on(&self) -> bool {
        self.app.is_some() || !self.passkeys.is_empty()
    }
}

struct PasskeyView {
    id: String,
    name: String,
    added: String,
    last_used: String,
}

fn last_used(at: Option<chrono::NaiveDateTime>) -> String {
    at.map_or_else(|| "never used".to_owned(), |at| format!("last used {}", date(at)))
}

#[derive(Deserialize)]
pub struct AccountQuery {
    revoked: Option<String>,
    key_deleted: Option<String>,
    password_changed: Option<String>,
    totp_added: Option<String>,
    totp_removed: Option<String>,
    passkey_added: Option<String>,
    passkey_removed: Option<String>,
    /// Signed in with a recovery code, and few are left.
    recovery_codes_left: Option<u8>,
}

/// "Firefox on Windows" rather than a user-agent string: enough to recognise a device.
pub fn describe_user_agent(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown browser".into();
    };
    let browser = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari")]
        .into_iter()
        .find(|(marker, _)| ua.contains(marker))
        .map_or("A browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

fn date(at: chrono::NaiveDateTime) -> String {
    at.format("%-d %B %Y").to_string()
}

fn to_login() -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, "/login?return_to=/account")).finish()
}

/// `GET /`: a signed-in person's dashboard, or the sign-in page leading there. Never the
/// JSON 404 a browser would otherwise show.
pub async fn get_home(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let home = super::dashboard::HOME;
    Ok(match current_user(&req, &state).await? {
        Some(_) => HttpResponse::SeeOther().insert_header((header::LOCATION, home)).finish(),
        None => HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/login?return_to={home}"))).finish(),
    })
}

pub async fn get_account(
    req: HttpRequest,
    query: web::Query<AccountQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(to_login());
    };
    let notice = if query.revoked.is_some() {
        Some("Access withdrawn. The app's tokens no longer work.".to_owned())
    } else if query.key_deleted.is_some() {
        Some("API key deleted. It no longer works.".to_owned())
    } else if query.password_changed.is_some() {
        Some("Password changed. You were signed out everywhere else.".to_owned())
    } else if query.totp_added.is_some() {
        Some("Two-step sign-in is on: signing in now asks for a code from your app.".to_owned())
    } else if query.totp_removed.is_some() {
        Some("Authenticator app removed.".to_owned())
    } else if query.passkey_added.is_some() {
        Some("Passkey added: use it to sign in, or as the second step after your password.".to_owned())
    } else if query.passkey_removed.is_some() {
        Some("Passkey removed. It no longer signs you in.".to_owned())
    } else {
        query.recovery_codes_left.map(|left| {
            format!("You signed in with a recovery code; {left} unused left. Make new ones below before they run out.")
        })
    };
    render_account(&req, &state, user, acting, Shown { notice: notice.as_deref(), ..Shown::default() }).await
}

/// What the account page shows besides the account: a notice, a key just created, or why the
/// password was not changed.
#[derive(Default)]
pub(super) struct Shown<'a> {
    pub notice: Option<&'a str>,
    pub new_key: Option<&'a str>,
    pub password_error: Option<&'a str>,
    pub factor_error: Option<&'a str>,
}

pub(super) async fn render_account(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    user: User,
    acting: SignedInUser,
    shown: Shown<'_>,
) -> Result<HttpResponse, AppError> {
    let current = held_session(req, state);
    let user_id = user.id.clone();
    let (consents, sessions, keys, factors) = run_as(state, acting, Origin::of(req), move |conn, caller, _| {
        Ok((
            list_consents_for_user(conn, &user_id)?,
            list_sessions_for_user(conn, &user_id, crate::db::now())?,
            api_keys::list_keys(conn, caller)?,
            second_factors::factors(conn, &user_id)?,
        ))
    })
    .await?;
    let factors = FactorsView {
        app: factors.totp.as_ref().and_then(|app| Some((date(app.confirmed_at?), last_used(app.last_used_at)))),
        app_being_set_up: factors.totp.as_ref().is_some_and(|app| !app.is_confirmed()),
        recovery_codes_left: factors.recovery_codes_left,
        passkeys: factors
            .passkeys
            .into_iter()
            .map(|passkey| PasskeyView {
                added: date(passkey.created_at),
                last_used: last_used(passkey.last_used_at),
                id: passkey.id,
                name: passkey.name,
            })
            .collect(),
        passkeys_offered: state.passkeys.is_some(),
    };
    // One entry per app, whatever APIs its consents are for: access is revoked per app.
    let mut granted: Vec<(Consent, String, Vec<String>)> = Vec::new();
    for (consent, client_name) in consents {
        match granted.iter_mut().find(|(first, _, _)| first.client_id == consent.client_id) {
            Some((first, _, scopes)) => {
                scopes.extend(consent.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
                first.created_at = first.created_at.min(consent.created_at);
            }
            None => {
                let scopes = consent.scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
                granted.push((consent, client_name, scopes));
            }
        }
    }
    let apps = granted
        .into_iter()
        .map(|(consent, client_name, scopes)| AppAccess {
            scopes: super::consent::scopes_for_people(
                &Scopes::from_tokens(scopes.iter().map(String::as_str)).unwrap_or_default(),
            ),
            client_id: consent.client_id,
            client_name,
            since: date(consent.created_at),
        })
        .collect();
    let recent_second_factor = sessions
        .iter()
        .find(|session| current.as_ref().is_some_and(|held| held.contains(&session.id_hash)))
        .is_some_and(|session| is_recent_second_factor(&session.amr, session.created_at));
    let sessions = sessions
        .into_iter()
        .map(|session| SignIn {
            started: session.created_at.format("%-d %B %Y, %H:%M UTC").to_string(),
            address: session.ip.unwrap_or_else(|| "unknown address".into()),
            browser: describe_user_agent(session.user_agent.as_deref()),
            current: current.as_ref().is_some_and(|held| held.contains(&session.id_hash)),
        })
        .collect();
    let keys = keys
        .into_iter()
        // An owner reaches every key; this page is about the person's own.
        .filter(|key| key.key_kind() == Some(ApiKeyKind::Personal) && key.user_id.as_deref() == Some(&user.id))
        .map(|key| PersonalKey {
            shown_as: format!("{}…{}", key.prefix, key.last_four),
            created: date(key.created_at.naive_utc()),
            last_used: key
                .last_used_at
                .map_or_else(|| "never used".to_owned(), |at| format!("last used {}", date(at.naive_utc()))),
            id: key.id,
            name: key.name,
        })
        .collect();
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = AccountPage {
        name: user.display_name(),
        email: &user.email,
        member_since: date(user.created_at),
        apps,
        sessions,
        keys,
        new_key: shown.new_key,
        csrf_token: &form_value,
        notice: shown.notice,
        password_error: shown.password_error,
        factors,
        factor_error: shown.factor_error,
        recent_second_factor,
    };
    let refused = shown.password_error.is_some() || shown.factor_error.is_some();
    let status = if refused { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    form_page(status, cookie, &page)
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    name: String,
}

#[derive(Deserialize)]
pub struct DeleteKeyForm {
    key_id: String,
}

/// Creates a personal key for the signed-in user and shows it, once, on the account page.
pub async fn post_create_key(
    req: HttpRequest,
    form: PageForm<NewKeyForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(to_login());
    };
    let created = run_as(&state, acting.clone(), Origin::of(&req), move |conn, caller, state| {
        api_keys::create_key(conn, &state.hasher, state.settings.environment, caller, KeyRequest::personal(form.name))
    })
    .await;
    match created {
        Ok(created) => {
            let shown = Shown {
                notice: Some("Copy your new key now: it is not shown again."),
                new_key: Some(&created.key),
                ..Shown::default()
            };
            render_account(&req, &state, user, acting, shown).await
        }
        Err(AppError::BadRequest(message)) => {
            Ok(error_page(StatusCode::BAD_REQUEST, "Cannot create the key", &message))
        }
        Err(other) => Err(other),
    }
}

pub async fn post_delete_key(
    req: HttpRequest,
    form: PageForm<DeleteKeyForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let Some((_, acting)) = signed_in(&req, &state).await? else {
        return Ok(to_login());
    };
    let deleted = run_as(&state, acting, Origin::of(&req), move |conn, caller, _| {
        api_keys::delete_key(conn, caller, &form.key_id)
    })
    .await;
    match deleted {
        Ok(()) => Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/account?key_deleted=1")).finish()),
        Err(AppError::NotFound | AppError::Forbidden(_)) => {
            Ok(error_page(StatusCode::NOT_FOUND, "No such key", "That key does not exist or is not yours."))
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// How a password change ended.
enum PasswordChange {
    Changed,
    /// What to fix, shown on the account page.
    Refused(String),
    Busy(crate::passwords::Busy),
}

/// `POST /account/password`: the current password, then the new one twice. A wrong current
/// password costs what a wrong sign-in does (the same throttle, audited); a change ends every
/// other session.
pub async fn post_password(
    req: HttpRequest,
    form: PageForm<PasswordForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some((user, acting)) = signed_in(&req, &state).await? else {
        return Ok(to_login());
    };
    match change_password(&req, &state, &user, form.into_inner()).await? {
        PasswordChange::Changed => {
            Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/account?password_changed=1")).finish())
        }
        PasswordChange::Busy(busy) => Ok(busy_page(busy)),
        PasswordChange::Refused(problem) => {
            let shown = Shown { password_error: Some(&problem), ..Shown::default() };
            render_account(&req, &state, user, acting, shown).await
        }
    }
}

/// How asking for the current password again ended.
pub(super) enum Reauthentication {
    /// Right: the throttle's subjects, to clear once what it guards is done.
    Confirmed(SignInSubjects),
    /// What to tell the person.
    Refused(String),
    Busy(crate::passwords::Busy),
}

/// Asks the signed-in person for their password again before something that would let
/// whoever holds the browser keep the account (a new password, a second factor changed). A
/// wrong one costs what a wrong sign-in does: the same throttle, and an audit row `action`.
pub(super) async fn confirm_password(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    password: String,
    action: &'static str,
) -> Result<Reauthentication, AppError> {
    let address = req.peer_addr().map(|addr| addr.ip().to_string()).unwrap_or_default();
    let throttled = SignInSubjects::new(&state.hasher, &user.email, &address);
    if let Err(wait) = throttle::admit(&state.limiter, &throttled).await {
        let minutes = wait.as_secs().div_ceil(60);
        return Ok(Reauthentication::Refused(format!(
            "Too many attempts. Wait {minutes} minute(s) before trying again."
        )));
    }
    let password_ok = match state.passwords.verify(SecretString::from(password), user.password_hash.clone()).await {
        Ok(ok) => ok,
        Err(busy) => {
            throttle::not_checked(&state.limiter, &throttled).await;
            return Ok(Reauthentication::Busy(busy));
        }
    };
    if !password_ok {
        state.metrics.authentication_failed("user", "wrong password");
        let origin = Origin::of(req);
        let user_id = user.id.clone();
        crate::db::run(&state.pool, move |conn| {
            let entry = audit::Context::of(Actor::User(&user_id), origin.ip.as_deref(), Some(&origin.request_id))
                .entry(action, Outcome::Failure)
                .target("user", &user_id)
                .details(serde_json::json!({ "reason": "wrong current password" }));
            Ok(audit::record(conn, &entry)?)
        })
        .await?;
        return Ok(Reauthentication::Refused("The current password is incorrect.".into()));
    }
    Ok(Reauthentication::Confirmed(throttled))
}

async fn change_password(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    form: PasswordForm,
) -> Result<PasswordChange, AppError> {
    use PasswordChange::{Busy, Changed, Refused};
    if form.new_password != form.confirm_password {
        return Ok(Refused("The new passwords do not match.".into()));
    }
    if let Err(problem) = PasswordHasher::validate(&form.new_password) {
        return Ok(Refused(super::form::sentence(&problem.to_string())));
    }
    let Some(session_hashes) = held_session(req, state) else {
        return Ok(Refused("Your session has ended. Sign in again.".into()));
    };
    // A fresh two-factor sign-in stands in for the current password, when it is left out.
    let recent_second_factor = form.current_password.is_empty()
        && current_sign_in(req, state).await?.is_some_and(|sign_in| {
            sign_in.authentication.is_recent_multi_factor(crate::db::now(), RECENT_SECOND_FACTOR)
        });
    let (throttled, confirmed_by) = if recent_second_factor {
        (None, "recent second factor")
    } else {
        match confirm_password(req, state, user, form.current_password, "user.password_change_failed").await? {
            Reauthentication::Confirmed(throttled) => (Some(throttled), "current password"),
            Reauthentication::Refused(problem) => return Ok(Refused(problem)),
            Reauthentication::Busy(busy) => return Ok(Busy(busy)),
        }
    };
    let origin = Origin::of(req);
    let user_id = user.id.clone();
    let hashed = match state.passwords.hash(SecretString::from(form.new_password)).await {
        Ok(Ok(hashed)) => hashed,
        Ok(Err(problem)) => return Ok(Refused(super::form::sentence(&problem.to_string()))),
        Err(busy) => return Ok(Busy(busy)),
    };
    if let Some(throttled) = throttled {
        throttle::succeeded(&state.limiter, &throttled).await;
    }
    crate::db::run(&state.pool, move |conn| {
        crate::manage::users::change_password(conn, &user_id, &hashed, &session_hashes, confirmed_by, &origin)
    })
    .await?;
    Ok(Changed)
}

#[derive(Deserialize)]
pub struct RevokeForm {
    client_id: String,
}

/// Withdraws a consent: the remembered decision goes, and so does every token the app
/// holds for this user (refresh token families and their access tokens).
pub async fn post_revoke_consent(
    req: HttpRequest,
    form: PageForm<RevokeForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(to_login());
    };
    let request_id = crate::telemetry::current_request_id();
    crate::db::run(&state.pool, move |conn| {
        let now = crate::db::now();
        delete_consent(conn, &user.id, &form.client_id)?;
        let revoked = revoke_families_of_user_client(conn, &user.id, &form.client_id, now)?;
        let entry = AuditEntry::new(Actor::User(&user.id), "consent.revoked", Outcome::Success)
            .target("client", &form.client_id)
            .from_request(None, Some(&request_id))
            .details(serde_json::json!({ "refresh_tokens_revoked": revoked }));
        Ok(audit::record(conn, &entry)?)
    })
    .await?;
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, "/account?revoked=1")).finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_summarised_as_browser_and_system() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_user_agent(Some(chrome)), "Chrome on Linux");
        assert_eq!(describe_user_agent(Some(firefox)), "Firefox on Windows");
        assert_eq!(describe_user_agent(Some(safari)), "Safari on iPhone");
        assert_eq!(describe_user_agent(Some("curl/8.0")), "A browser");
        assert_eq!(describe_user_agent(None), "Unknown browser");
    }
}
