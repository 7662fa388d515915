//! `/device`, where a person approves a device (RFC 8628 §3.3): signed in (the same session
//! and sign-in throttling as everywhere), they type or confirm the code, see which app asks,
//! for what, from where and when (device-code phishing sends people a code someone else
//! started), and allow or deny it. `/device/qr` draws the page's address with the code as a
//! QR code, for a device that can show an image. The protocol is `oauth::device`'s.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{StatusCode, header::CACHE_CONTROL};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use super::consent::scopes_for_people;
use super::csrf::{self, CsrfToken};
use super::form::{PageForm, PageForms};
use super::key_form::{self, KeyChoice, KeyDraft, KeyForm};
use super::pages::{error_page, form_page, see_other, sign_in_then};
use super::session::{SignIn, current_sign_in, current_user};
use crate::audit::Origin;
use crate::crypto::TokenHasher;
use crate::db::DbConnection;
use crate::db::users::User;
use crate::domain::{ApiKeyKind, Scopes, UserCode};
use crate::error::AppError;
use crate::oauth::device::{self, DEVICE_PATH, DeviceDecision, PendingRequest};
use crate::ratelimit::{Decision, Limits, caller_address};
use crate::state::AppState;

/// Wrong codes one address may enter: ten at once, then one every minute.
const GUESSES_PER_ADDRESS: Limits = Limits { per_hour: Some(60), burst: 10 };
/// Wrong codes everyone together may enter, so that many addresses cannot search the
/// 2^34.6 codes either: with a thousand requests pending, a day at this rate finds one
/// with a chance of about 1 in 100,000.
const GUESSES_IN_ALL: Limits = Limits { per_hour: Some(10_000), burst: 500 };

#[derive(Template)]
#[template(path = "device.html")]
struct EntryPage<'a> {
    user_name: &'a str,
    csrf_token: &'a str,
    typed: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct ConfirmPage<'a> {
    client_name: &'a str,
    user_name: &'a str,
    user_code: String,
    asked_at: String,
    asked_from: &'a str,
    asked_by: Option<&'a str>,
    scopes: Vec<String>,
    csrf_token: &'a str,
    /// A connect-flow request: the key to choose instead of scopes.
    connect: Option<KeyChoice>,
    hidden: Vec<(String, String)>,
    form_action: &'static str,
    allow_value: &'static str,
    recipient: &'static str,
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DonePage<'a> {
    title: &'a str,
    message: String,
}

#[derive(Deserialize)]
pub struct CodeQuery {
    user_code: Option<String>,
    /// A connect-flow request's chosen kind of key.
    kind: Option<String>,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    user_code: String,
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    decision: String,
}

/// Where the confirmation page posts the person's decision.
pub const DECIDE_PATH: &str = "/device/decide";

/// To the sign-in page, and back here (with the code, if the link carried one) after.
/// A connect-flow link's chosen kind of key (`latchkey login` asks for a personal one) is kept.
fn sign_in_first(code: Option<&UserCode>, kind: Option<&str>) -> HttpResponse {
    let here = match (code, kind.and_then(ApiKeyKind::from_stored)) {
        (Some(code), Some(kind)) => format!("{DEVICE_PATH}?user_code={}&kind={}", code.display(), kind.as_str()),
        (Some(code), None) => format!("{DEVICE_PATH}?user_code={}", code.display()),
        (None, _) => DEVICE_PATH.to_owned(),
    };
    see_other(&sign_in_then(&here))
}

fn entry_page(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    typed: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let page = EntryPage { user_name: user.display_name(), csrf_token: &form_value, typed, error };
    form_page(status, cookie, &page)
}

fn confirm_page(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    code: &UserCode,
    pending: &PendingRequest,
    draft: Option<KeyDraft>,
) -> Result<HttpResponse, AppError> {
    let CsrfToken { form_value, cookie } = csrf::issue(req, state);
    let request = &pending.request;
    let status = match &draft {
        Some(draft) if draft.has_errors() => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let page = ConfirmPage {
        client_name: &pending.client.name,
        user_name: user.display_name(),
        user_code: code.display(),
        asked_at: request.created_at.format("%Y-%m-%d %H:%M").to_string(),
        asked_from: request.requested_from.as_deref().unwrap_or("an unknown address"),
        asked_by: request.requested_by.as_deref(),
        scopes: scopes_for_people(&Scopes::parse(&request.scope).unwrap_or_default()),
        csrf_token: &form_value,
        connect: draft.map(|draft| {
            draft.choice(state.settings.environment, format!("{DEVICE_PATH}?user_code={}&kind=", code.display()))
        }),
        hidden: vec![("user_code".to_owned(), code.display())],
        form_action: DECIDE_PATH,
        allow_value: "allow",
        recipient: "device",
    };
    form_page(status, cookie, &page)
}

/// The budgets a wrong code spends: the address's and everyone's.
fn guess_budgets(req: &HttpRequest) -> [(String, Limits); 2] {
    let address = caller_address(req.peer_addr().map(|a| a.ip()));
    [(format!("device-code:{address}"), GUESSES_PER_ADDRESS), ("device-code:*".to_owned(), GUESSES_IN_ALL)]
}

/// The refusal, if this address or everyone together has used up the wrong codes allowed.
async fn guessing_refused(req: &HttpRequest, state: &AppState) -> Option<Decision> {
    for (subject, limits) in guess_budgets(req) {
        let decision = state.limiter.peek(&subject, limits).await;
        if !decision.allowed {
            return Some(decision);
        }
    }
    None
}

/// A code that led nowhere: it counts against both budgets.
async fn spend_a_guess(req: &HttpRequest, state: &AppState) {
    for (subject, limits) in guess_budgets(req) {
        state.limiter.check(&subject, limits).await;
    }
}

/// Looks `typed` up, within the guessing budgets: the confirmation page for a pending
/// request, else the entry page saying why not.
async fn look_up(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    typed: &str,
    kind: Option<String>,
) -> Result<HttpResponse, AppError> {
    if let Some(refusal) = guessing_refused(req, state).await {
        return too_many_guesses(req, state, user, typed, &refusal);
    }
    let pending = match UserCode::parse(typed) {
        Some(code) => {
            let (hasher, lookup, person, origin) = (state.hasher.clone(), code.clone(), user.clone(), Origin::of(req));
            crate::db::run(&state.pool, move |conn| {
                let Some(pending) = device::find_pending(conn, &hasher, &lookup)? else { return Ok(None) };
                let draft = if pending.wants_api_key() {
                    Some(KeyDraft::new(key_form::offer_to(conn, &person, &origin)?, kind.as_deref()))
                } else {
                    None
                };
                Ok(Some((pending, draft)))
            })
            .await?
            .map(|found| (code, found))
        }
        None => None,
    };
    match pending {
        Some((code, (pending, draft))) => confirm_page(req, state, user, &code, &pending, draft),
        None => {
            spend_a_guess(req, state).await;
            let error = "That code is not valid, or it has expired. Check the code on your device.".to_owned();
            entry_page(req, state, user, typed, Some(error), StatusCode::BAD_REQUEST)
        }
    }
}

fn too_many_guesses(
    req: &HttpRequest,
    state: &AppState,
    user: &User,
    typed: &str,
    decision: &Decision,
) -> Result<HttpResponse, AppError> {
    let error = format!("Too many wrong codes. Try again in {} seconds.", decision.retry_after.max(1));
    let mut response = entry_page(req, state, user, typed, Some(error), StatusCode::TOO_MANY_REQUESTS)?;
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(decision.retry_after.max(1)));
    Ok(response)
}

/// `GET /device`, or `/device?user_code=…` from the device's link or QR code.
pub async fn get_device(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CodeQuery>,
) -> Result<HttpResponse, AppError> {
    let CodeQuery { user_code, kind } = query.into_inner();
    let typed = user_code.unwrap_or_default();
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(sign_in_first(UserCode::parse(&typed).as_ref(), kind.as_deref()));
    };
    if typed.is_empty() {
        return entry_page(&req, &state, &user, "", None, StatusCode::OK);
    }
    look_up(&req, &state, &user, &typed, kind).await
}

/// `POST /device`: the code a person typed.
pub async fn post_device(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: PageForm<CodeForm>,
) -> Result<HttpResponse, AppError> {
    let typed = form.into_inner().user_code;
    let Some(user) = current_user(&req, &state).await? else {
        return Ok(sign_in_first(UserCode::parse(&typed).as_ref(), None));
    };
    look_up(&req, &state, &user, &typed, None).await
}

/// What deciding came to.
enum Decided {
    /// Recorded; `None` if the request was no longer pending.
    Recorded(Option<PendingRequest>),
    /// The chosen key cannot be had as chosen: the form again, with what to fix.
    FixKey(PendingRequest, Box<KeyDraft>),
}

/// Decides (from a blocking context): for a connect-flow request, the chosen key is read and
/// vetted as the person first, so that a refusal comes back to the form rather than to the
/// device; the key itself is made when the device collects it.
fn decide(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    code: &UserCode,
    sign_in: &SignIn,
    allow: bool,
    key: KeyForm,
    origin: &Origin,
) -> Result<Decided, AppError> {
    let user = &sign_in.user;
    let decision = match device::find_pending(conn, hasher, code)? {
        Some(pending) if allow && pending.wants_api_key() => match key_form::vet_choice(conn, user, origin, key)? {
            Ok(chosen) => DeviceDecision::AllowKey(chosen),
            Err(draft) => return Ok(Decided::FixKey(pending, Box::new(draft))),
        },
        _ if allow => DeviceDecision::Allow,
        _ => DeviceDecision::Deny,
    };
    device::decide(conn, hasher, code, user, &sign_in.authentication, decision, origin).map(Decided::Recorded)
}

/// `POST /device/decide`: Allow or Deny, for the code on the confirmation page.
pub async fn post_decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: PageForms<DecisionForm, KeyForm>,
) -> Result<HttpResponse, AppError> {
    let PageForms(form, key) = form;
    let code = UserCode::parse(&form.user_code);
    let Some(sign_in) = current_sign_in(&req, &state).await? else {
        return Ok(sign_in_first(code.as_ref(), None));
    };
    let user = sign_in.user.clone();
    let allow = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return Ok(error_page(StatusCode::BAD_REQUEST, "Cannot continue", "Choose Allow or Deny.")),
    };
    let Some(code) = code else {
        return Ok(error_page(StatusCode::BAD_REQUEST, "Cannot continue", "The form lost its code. Start again."));
    };
    // Deciding names a code too: without the budgets, posting here would be a way to guess
    // codes (and to approve someone else's device into one's own account).
    if let Some(refusal) = guessing_refused(&req, &state).await {
        let wait = refusal.retry_after.max(1);
        let mut page =
            error_page(StatusCode::TOO_MANY_REQUESTS, "Too many wrong codes", &format!("Try again in {wait} seconds."));
        page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(page);
    }
    let (hasher, origin, lookup) = (state.hasher.clone(), Origin::of(&req), code.clone());
    let decided =
        crate::db::run(&state.pool, move |conn| decide(conn, &hasher, &lookup, &sign_in, allow, key, &origin)).await?;
    let decided = match decided {
        Decided::Recorded(decided) => decided,
        Decided::FixKey(pending, draft) => return confirm_page(&req, &state, &user, &code, &pending, Some(*draft)),
    };
    if decided.is_none() {
        spend_a_guess(&req, &state).await;
    }
    let page = match decided {
        None => DonePage {
            title: "This request is over",
            message: "It was already answered, or it expired. Start again on your device if you still need to.".into(),
        },
        Some(pending) if allow && pending.wants_api_key() => DonePage {
            title: "Key on its way",
            message: format!(
                "{} receives the key you chose when it next checks in; it is shown nowhere else. \
                 It is listed with your API keys, where you can revoke it.",
                pending.client.name
            ),
        },
        Some(pending) if allow => DonePage {
            title: "Device connected",
            message: format!("{} now has access. Go back to your device: it continues by itself.", pending.client.name),
        },
        Some(pending) => {
            DonePage { title: "Request denied", message: format!("{} was not given access.", pending.client.name) }
        }
    };
    form_page(StatusCode::OK, None, &page)
}

/// `GET /device/qr?user_code=XXXX-XXXX`: the address to approve that code, as an SVG QR
/// code. It draws only this server's `/device` address with a well-formed code, so it is no
/// general-purpose image generator; it reveals nothing (any code draws).
pub async fn get_qr(state: web::Data<AppState>, query: web::Query<CodeQuery>) -> HttpResponse {
    let Some(code) = query.into_inner().user_code.as_deref().and_then(UserCode::parse) else {
        return error_page(StatusCode::BAD_REQUEST, "No code", "The address needs user_code=XXXX-XXXX.");
    };
    let address = device::verification_uri_complete(&state.issuer, &code);
    match super::pages::qr_svg(&address) {
        Ok(svg) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")))
            .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
            .body(svg),
        Err(error) => error.error_response(),
    }
}
