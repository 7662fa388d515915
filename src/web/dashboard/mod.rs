//! The dashboard: what a signed-in person manages in the browser, through the same
//! `manage::` calls as the management API and with the same reach as their personal key
//! ([`SignedInUser`]), so that the two never disagree. Every page is server-rendered and
//! works without JavaScript; every form carries a CSRF token; a new secret is shown once
//! ([`secret`]).

pub mod api_keys;
pub mod apis;
pub mod apps;
pub mod audit_log;
pub mod overview;
pub mod secret;
pub mod signing_keys;
pub mod teams;
pub mod users;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use super::csrf::{self, CsrfToken};
use super::form::sentence;
use super::pages::error_page;
use super::session::signed_in;
use crate::access::{Reach, Resource};
use crate::audit::Origin;
use crate::db::DbConnection;
use crate::db::users::User;
use crate::error::AppError;
use crate::manage::{Caller, SignedInUser, run_as};
use crate::state::AppState;

/// Where a signed-in person lands.
pub const HOME: &str = "/dashboard";

/// The parts of the dashboard, as the navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    ApiKeys,
    Apps,
    Apis,
    Teams,
    Users,
    AuditLog,
    SigningKeys,
    Account,
}

impl Section {
    const ALL: [Section; 9] = [
        Self::Overview,
        Self::ApiKeys,
        Self::Apps,
        Self::Apis,
        Self::Teams,
        Self::Users,
        Self::AuditLog,
        Self::SigningKeys,
        Self::Account,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Overview => "Overview",
            Self::ApiKeys => "API keys",
            Self::Apps => "OAuth apps",
            Self::Apis => "APIs",
            Self::Teams => "Teams",
            Self::Users => "Users",
            Self::AuditLog => "Audit log",
            Self::SigningKeys => "Signing keys",
            Self::Account => "Account",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Self::Overview => HOME,
            Self::ApiKeys => api_keys::LIST,
            Self::Apps => apps::LIST,
            Self::Apis => apis::LIST,
            Self::Teams => teams::LIST,
            Self::Users => users::LIST,
            Self::AuditLog => audit_log::PATH,
            Self::SigningKeys => signing_keys::LIST,
            Self::Account => "/account",
        }
    }

    /// The part a dashboard path belongs to.
    pub fn of_path(path: &str) -> Self {
        Self::ALL.into_iter().find(|s| *s != Self::Overview && path.starts_with(s.href())).unwrap_or(Self::Overview)
    }

    /// Whether the person may see anything in this part: it is listed only then.
    fn visible_to(self, reach: &Reach) -> bool {
        match self {
            Self::Overview | Self::Account => true,
            Self::ApiKeys => sees_any(reach, Resource::ApiKeys),
            Self::Apps => sees_any(reach, Resource::Clients),
            Self::Apis => sees_any(reach, Resource::Apis),
            Self::Teams => sees_any(reach, Resource::Teams) || reach.check_create(Resource::Teams, None).is_ok(),
            // Everyone sees themselves; the list is for those who see others.
            Self::Users => reach.can(Resource::Users, crate::access::Action::Read),
            Self::AuditLog => sees_any(reach, Resource::AuditLog),
            Self::SigningKeys => sees_any(reach, Resource::SigningKeys),
        }
    }
}

/// Whether `reach` lists any of `resource`: all of it, a team's, or the person's own.
pub fn sees_any(reach: &Reach, resource: Resource) -> bool {
    reach.listing(resource).is_ok_and(|listing| listing.all || !listing.teams.is_empty() || listing.user.is_some())
}

pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// What every dashboard page shows around its content.
pub struct Shell {
    pub user_name: String,
    pub nav: Vec<NavItem>,
    pub csrf_token: String,
}

/// A signed-in person on a dashboard page: as an extractor, a handler that takes one runs
/// only for someone signed in; anyone else is sent to sign in and brought back.
pub struct Visitor {
    pub user: User,
    pub acting: SignedInUser,
    state: web::Data<AppState>,
    origin: Origin,
    csrf_cookie: Option<actix_web::cookie::Cookie<'static>>,
    csrf_token: String,
}

impl Visitor {
    async fn of(req: &HttpRequest) -> Result<Self, PageError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("the application state is missing")))?;
        let Some((user, acting)) = signed_in(req, &state).await? else {
            let here = match req.uri().path_and_query() {
                Some(here) if req.method() == actix_web::http::Method::GET => here.as_str().to_owned(),
                _ => HOME.to_owned(),
            };
            return Err(PageError::SignIn(super::pages::sign_in_then(&here)));
        };
        let CsrfToken { form_value, cookie } = csrf::issue(req, &state);
        Ok(Self { user, acting, state, origin: Origin::of(req), csrf_cookie: cookie, csrf_token: form_value })
    }

    pub fn reach(&self) -> &Reach {
        self.acting.reach()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs `f` as this person, on the blocking pool: the one way pages reach `manage`.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConnection, &Caller<'_>, &AppState) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        run_as(&self.state, self.acting.clone(), self.origin.clone(), f).await
    }

    /// The frame of a page in `section`.
    pub fn shell(&self, section: Section) -> Shell {
        let nav = Section::ALL
            .into_iter()
            .filter(|s| s.visible_to(self.reach()))
            .map(|s| NavItem { label: s.label(), href: s.href(), current: s == section })
            .collect();
        Shell { user_name: self.user.display_name().to_owned(), nav, csrf_token: self.csrf_token.clone() }
    }

    /// A rendered dashboard page, with the CSRF cookie when the browser had none.
    pub fn page(&self, status: StatusCode, template: &impl askama::Template) -> PageResult {
        Ok(super::pages::form_page(status, self.csrf_cookie.clone(), template)?)
    }
}

impl FromRequest for Visitor {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Visitor::of(&req).await })
    }
}

/// What a dashboard handler answers.
pub type PageResult = Result<HttpResponse, PageError>;

/// Why a dashboard page is not the one asked for, as a page: not signed in (to sign-in and
/// back), or a refusal from `manage`: 404 for what is outside the person's reach, 403 for
/// what they see but may not do, 409 for a change that cannot happen now, 400 for input that
/// has no form to go back to. Anything else is not the person's doing: logged, and a 500 or
/// 503 page with the request id.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not signed in")]
    SignIn(String),
    #[error(transparent)]
    Refused(#[from] AppError),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn(_) => StatusCode::SEE_OTHER,
            Self::Refused(error) => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::SignIn(location) => see_other(location),
            Self::Refused(AppError::NotFound) => not_found_page(),
            Self::Refused(AppError::Forbidden(message)) => error_page(status, "Not allowed", &sentence(message)),
            Self::Refused(AppError::Conflict(message) | AppError::BadRequest(message)) => {
                error_page(status, "Not done", &sentence(message))
            }
            Self::Refused(AppError::Busy(busy)) => super::pages::busy_page(*busy),
            Self::Refused(other) => {
                other.log();
                let message = format!(
                    "Something went wrong on our side. If it goes on, give this request id to whoever runs Latchkey: {}.",
                    crate::telemetry::current_request_id()
                );
                error_page(status, "Something went wrong", &message)
            }
        }
    }
}

pub fn not_found_page() -> HttpResponse {
    error_page(StatusCode::NOT_FOUND, "Not found", "There is nothing here, or nothing you may see.")
}

pub use crate::web::form::Choice;

/// How long a rotated-out key or secret may keep working, as rotation forms offer it.
const GRACES: [(i64, &str); 4] = [(0, "Now"), (3600, "In 1 hour"), (86_400, "In 24 hours"), (604_800, "In 7 days")];

/// The grace periods to choose from, an hour unless said otherwise.
pub fn grace_choices() -> Vec<Choice> {
    GRACES
        .into_iter()
        .map(|(secs, label)| Choice { value: secs.to_string(), label: label.into(), selected: secs == 3600 })
        .collect()
}

/// The grace period a rotation form chose, up to `max`.
pub fn chosen_grace(value: &str, max: chrono::TimeDelta) -> Result<chrono::TimeDelta, AppError> {
    match value.trim().parse::<i64>().map(chrono::TimeDelta::seconds) {
        Ok(grace) if grace >= chrono::TimeDelta::zero() && grace <= max => Ok(grace),
        _ => Err(AppError::BadRequest("choose one of the offered grace periods".into())),
    }
}

/// When a rotated-out key or secret stops working, for the page that shows its successor.
pub fn stops_after(grace: chrono::TimeDelta) -> String {
    if grace.is_zero() { "Now".to_owned() } else { moment(chrono::Utc::now() + grace) }
}

/// "3 December 2026, 14:05 UTC".
pub fn moment(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %B %Y, %H:%M UTC").to_string()
}

/// After a change: back to a list, with a notice the list shows.
pub use super::pages::see_other;

/// "3 December 2026"; "—" for never.
pub fn date(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), |at| at.format("%-d %b %Y").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::TeamRole;

    #[test]
    fn a_member_without_teams_sees_their_keys_and_an_owner_everything() {
        let member = Reach::of_person("u1", false, []);
        assert!(Section::ApiKeys.visible_to(&member));
        let nobody = Reach::default();
        assert!(!Section::ApiKeys.visible_to(&nobody));
        assert!(Section::Account.visible_to(&nobody));
        let viewer = Reach::of_person("u2", false, [("t1".to_owned(), TeamRole::Viewer.as_str().to_owned())]);
        assert!(sees_any(&viewer, Resource::Clients) && !sees_any(&viewer, Resource::AuditLog));
        assert!(sees_any(&Reach::of_person("u3", true, []), Resource::AuditLog));
    }

    #[test]
    fn a_path_belongs_to_its_section() {
        assert_eq!(Section::of_path("/dashboard/api-keys?done=created"), Section::ApiKeys);
        assert_eq!(Section::of_path("/dashboard/apis?done=created"), Section::Apis);
        assert_eq!(Section::of_path("/dashboard/apps/abc"), Section::Apps);
        assert_eq!(Section::of_path("/dashboard/users"), Section::Users);
        assert_eq!(Section::of_path("/dashboard"), Section::Overview);
        assert_eq!(Section::of_path("/elsewhere"), Section::Overview);
    }
}
