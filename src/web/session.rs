//! Server-side sessions. The cookie carries a random id; the database keeps only its keyed
//! hash, so a leaked database cannot be replayed as sessions. A new id on every sign-in
//! rules out session fixation.

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use chrono::TimeDelta;

use crate::crypto::PresentedHashes;
use crate::db::pending_sign_ins::{NewPendingSignIn, PendingSignIn, find_pending_sign_in, insert_pending_sign_in};
use crate::db::sessions::{NewSession, delete_session, find_live_session, insert_session};
use crate::db::users::User;
use crate::domain::{Authentication, SignInMethods};
use crate::error::AppError;
use crate::manage::SignedInUser;
pub use crate::oauth::authorize::SignIn;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "latchkey_session";
/// A sign-in halfway: the password was right, the second factor is to come.
pub const PENDING_SIGN_IN_COOKIE: &str = "latchkey_sign_in";

/// How long the second factor may take after the password.
pub const PENDING_SIGN_IN_LIFETIME: TimeDelta = TimeDelta::minutes(5);
/// How long setting up a first second factor may take after the password (the owners
/// require one): long enough to install an authenticator app.
pub const ENROLMENT_LIFETIME: TimeDelta = TimeDelta::minutes(20);

/// How long a sign-in lasts.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);

/// A cookie as all of ours are: `HttpOnly`, `SameSite=Lax`, path `/`, and `Secure`
/// whenever the issuer is https.
pub fn cookie(state: &AppState, name: &'static str, value: String, max_age: Option<CookieDuration>) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.issuer.is_https())
        .finish();
    if let Some(max_age) = max_age {
        cookie.set_max_age(max_age);
    }
    cookie
}

/// Where a sign-in comes from: what the new session records, and the session the browser
/// held before (which the new one replaces).
pub struct Browser {
    pub origin: crate::audit::Origin,
    pub user_agent: Option<String>,
    pub held: Option<PresentedHashes>,
}

impl Browser {
    pub fn of(req: &HttpRequest, state: &AppState) -> Self {
        Self {
            origin: crate::audit::Origin::of(req),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            held: held_session(req, state),
        }
    }
}

/// The signed-in user, if the session cookie names a live session of an active user.
pub async fn current_user(req: &HttpRequest, state: &AppState) -> Result<Option<User>, AppError> {
    Ok(current_sign_in(req, state).await?.map(|sign_in| sign_in.user))
}

/// The browser's sign-in, if the session cookie names a live session of an active user.
pub async fn current_sign_in(req: &HttpRequest, state: &AppState) -> Result<Option<SignIn>, AppError> {
    let Some(held) = held_session(req, state) else {
        return Ok(None);
    };
    let found =
        crate::db::run(&state.pool, move |conn| Ok(held.find(|hash| find_live_session(conn, hash, crate::db::now()))?))
            .await?;
    Ok(found.map(|(session, user)| SignIn {
        user,
        authentication: Authentication::from_stored(Some(&session.amr), session.created_at),
    }))
}

/// The signed-in user and what they reach, if the session cookie names a live session of
/// an active user: what every dashboard page starts from.
pub async fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Option<(User, SignedInUser)>, AppError> {
    let Some(held) = held_session(req, state) else {
        return Ok(None);
    };
    crate::db::run(&state.pool, move |conn| {
        match held.find(|hash| find_live_session(conn, hash, crate::db::now()))? {
            Some((_, user)) => {
                let acting = SignedInUser::load(conn, &user)?;
                Ok(Some((user, acting)))
            }
            None => Ok(None),
        }
    })
    .await
}

/// Records a new session for `user_id` (from a blocking context) and returns its cookie.
pub fn start_session(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    user_id: &str,
    methods: &SignInMethods,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<Cookie<'static>, AppError> {
    let value = crate::crypto::random_token::<32>();
    let now = crate::db::now();
    let amr = methods.to_string();
    insert_session(
        conn,
        &NewSession {
            id_hash: state.hasher.hash(&value).as_str(),
            user_id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + SESSION_LIFETIME,
            ip,
            user_agent: user_agent.map(|ua| &ua[..ua.len().min(512)]),
            amr: &amr,
        },
    )?;
    let max_age = CookieDuration::seconds(SESSION_LIFETIME.num_seconds());
    Ok(cookie(state, SESSION_COOKIE, value, Some(max_age)))
}

/// The keyed hashes the session cookie the browser holds may be stored under, if it holds
/// one: what the table keys sessions by.
pub fn held_session(req: &HttpRequest, state: &AppState) -> Option<PresentedHashes> {
    req.cookie(SESSION_COOKIE).map(|c| state.hasher.presented(c.value()))
}

/// Ends the session `held` names, whichever key it was stored under.
pub fn delete_held_session(conn: &mut crate::db::DbConnection, held: &PresentedHashes) -> diesel::QueryResult<()> {
    for hash in held.iter() {
        delete_session(conn, hash)?;
    }
    Ok(())
}

/// Records a sign-in whose password was right and whose second factor is to come (from a
/// blocking context), for `lifetime`, and returns the cookie that carries it to the
/// second-factor page (or to setting one up).
pub fn begin_pending_sign_in(
    conn: &mut crate::db::DbConnection,
    state: &AppState,
    user_id: &str,
    ip: Option<&str>,
    user_agent: Option<&str>,
    lifetime: TimeDelta,
) -> Result<Cookie<'static>, AppError> {
    let value = crate::crypto::random_token::<32>();
    let now = crate::db::now();
    insert_pending_sign_in(
        conn,
        &NewPendingSignIn {
            id_hash: state.hasher.hash(&value).as_str(),
            user_id,
            created_at: now,
            expires_at: now + lifetime,
            ip,
            user_agent: user_agent.map(|ua| &ua[..ua.len().min(512)]),
        },
    )?;
    let max_age = CookieDuration::seconds(lifetime.num_seconds());
    Ok(cookie(state, PENDING_SIGN_IN_COOKIE, value, Some(max_age)))
}

/// The browser's pending sign-in, if its cookie names a live one of an active user.
pub async fn pending_sign_in(req: &HttpRequest, state: &AppState) -> Result<Option<(PendingSignIn, User)>, AppError> {
    let Some(value) = req.cookie(PENDING_SIGN_IN_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let held = state.hasher.presented(&value);
    crate::db::run(&state.pool, move |conn| Ok(held.find(|hash| find_pending_sign_in(conn, hash, crate::db::now()))?))
        .await
}

/// The cookie that clears `name`.
pub fn removal(state: &AppState, name: &'static str) -> Cookie<'static> {
    let mut cleared = cookie(state, name, String::new(), Some(CookieDuration::ZERO));
    cleared.make_removal();
    cleared
}

/// Ends the browser's session, if any, and returns the cookie that clears it.
pub async fn end_session(req: &HttpRequest, state: &AppState) -> Result<Cookie<'static>, AppError> {
    if let Some(held) = held_session(req, state) {
        crate::db::run(&state.pool, move |conn| Ok(delete_held_session(conn, &held)?)).await?;
    }
    Ok(removal(state, SESSION_COOKIE))
}
