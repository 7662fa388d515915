//! OAuth apps (clients) in the dashboard: the list, registering one (its secret shown
//! once), editing, rotating the secret with a grace period, deleting, and who has let it
//! in. Each action is `manage::clients`' own call, made as the signed-in person.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use chrono::{TimeDelta, Utc};
use serde::Deserialize;

use super::secret::{NewSecret, show_once};
use super::{Section, Shell, Visitor, date, refusal_page, see_other};
use crate::access::Action;
use crate::audit::Origin;
use crate::db::DbConnection;
use crate::domain::GrantType;
use crate::error::AppError;
use crate::manage::clients::{self, ClientRegistration, ClientUpdate, ClientView, MAX_SECRET_GRACE};
use crate::manage::{Caller, apis, consents, run_as};
use crate::state::AppState;

pub const LIST: &str = "/dashboard/apps";

fn grant_label(grant: GrantType) -> &'static str {
    match grant {
        GrantType::AuthorizationCode => "Authorization code (people sign in)",
        GrantType::RefreshToken => "Refresh token",
        GrantType::ClientCredentials => "Client credentials (the app acts as itself)",
        GrantType::TokenExchange => "Token exchange (API key for a JWT)",
    }
}

struct AppRow {
    client_id: String,
    name: String,
    public: bool,
    grants: String,
    team: String,
    created: String,
    may_write: bool,
    may_delete: bool,
}

#[derive(Template)]
#[template(path = "dashboard/apps.html")]
struct ListPage {
    shell: Shell,
    notice: Option<&'static str>,
    apps: Vec<AppRow>,
    may_create: bool,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn team_names(conn: &mut DbConnection) -> Result<HashMap<String, String>, AppError> {
    Ok(crate::db::teams::list_teams(conn, None)?.into_iter().map(|t| (t.id, t.name)).collect())
}

async fn visitor_or_login(req: &HttpRequest, state: &AppState) -> Result<Result<Visitor, HttpResponse>, AppError> {
    Visitor::of(req, state).await
}

pub async fn get_list(
    req: HttpRequest,
    query: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let loaded = run_as(&state, visitor.acting.clone(), Origin::of(&req), |conn, caller, _| {
        let apps = clients::list_clients(conn, caller)?;
        let teams = team_names(conn)?;
        let (tenant_wide, homes) = clients::homes_for_new_clients(conn, caller)?;
        let rows: Vec<AppRow> = apps
            .iter()
            .map(|app| AppRow {
                client_id: app.client_id.clone(),
                name: app.name.clone(),
                public: app.token_endpoint_auth_method == "none",
                grants: app.grant_types.join(", "),
                team: app.team_id.as_ref().and_then(|t| teams.get(t)).cloned().unwrap_or_else(|| "—".into()),
                created: date(Some(app.created_at)),
                may_write: clients::may(caller, app, Action::Write),
                may_delete: clients::may(caller, app, Action::Delete),
            })
            .collect();
        Ok((rows, tenant_wide || !homes.is_empty()))
    })
    .await;
    let (apps, may_create) = match loaded {
        Ok(loaded) => loaded,
        Err(refused) => return refusal_page(refused),
    };
    let notice = match query.done.as_deref() {
        Some("created") => Some("The app was registered."),
        Some("updated") => Some("The app was saved."),
        Some("deleted") => Some("The app was deleted. Its tokens no longer work."),
        _ => None,
    };
    visitor.page(StatusCode::OK, &ListPage { shell: visitor.shell(Section::Apps), notice, apps, may_create })
}

// ---------------------------------------------------------------- registering and editing

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "dashboard/app_form.html")]
struct FormPage {
    shell: Shell,
    /// `None` when registering.
    client_id: Option<String>,
    name: String,
    homes: Vec<Choice>,
    public: bool,
    grants: Vec<Choice>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: String,
    apis: Vec<Choice>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct AppForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    client_type: String,
    #[serde(default)]
    grant_types: Vec<String>,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    audiences: Vec<String>,
}

impl AppForm {
    fn from_view(view: &ClientView) -> Self {
        Self {
            csrf_token: String::new(),
            name: view.name.clone(),
            team_id: view.team_id.clone().unwrap_or_default(),
            client_type: if view.token_endpoint_auth_method == "none" { "public" } else { "confidential" }.into(),
            grant_types: view.grant_types.clone(),
            redirect_uris: view.redirect_uris.join("\n"),
            post_logout_redirect_uris: view.post_logout_redirect_uris.join("\n"),
            scopes: view.scope.clone(),
            audiences: view.audiences.clone(),
        }
    }

    fn lines(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }
}

/// What the form offers: where the app may live, and the APIs it may ask tokens for.
struct Offer {
    tenant_wide: bool,
    teams: Vec<(String, String)>,
    apis: Vec<(String, String)>,
}

fn offer(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Offer, AppError> {
    let (tenant_wide, teams) = clients::homes_for_new_clients(conn, caller)?;
    // Naming an API takes seeing it; someone who sees none registers apps without one.
    let apis = match apis::list_apis(conn, caller) {
        Ok(apis) => apis,
        Err(AppError::Forbidden(_)) => Vec::new(),
        Err(other) => return Err(other),
    };
    Ok(Offer { tenant_wide, teams, apis: apis.into_iter().map(|a| (a.audience, a.name)).collect() })
}

fn form_page(
    visitor: &Visitor,
    offer: &Offer,
    client_id: Option<String>,
    form: &AppForm,
    error: Option<String>,
) -> FormPage {
    let mut homes: Vec<Choice> = Vec::new();
    if offer.tenant_wide {
        homes.push(Choice {
            value: String::new(),
            label: "No team (tenant-wide)".into(),
            selected: form.team_id.is_empty(),
        });
    }
    homes.extend(offer.teams.iter().map(|(id, name)| Choice {
        value: id.clone(),
        label: name.clone(),
        selected: form.team_id == *id,
    }));
    FormPage {
        shell: visitor.shell(Section::Apps),
        client_id,
        name: form.name.clone(),
        homes,
        public: form.client_type == "public",
        grants: GrantType::ALL
            .into_iter()
            .map(|g| Choice {
                value: g.as_str().into(),
                label: grant_label(g).into(),
                selected: form.grant_types.iter().any(|s| s == g.as_str()),
            })
            .collect(),
        redirect_uris: form.redirect_uris.clone(),
        post_logout_redirect_uris: form.post_logout_redirect_uris.clone(),
        scopes: form.scopes.clone(),
        apis: offer
            .apis
            .iter()
            .map(|(audience, name)| Choice {
                value: audience.clone(),
                label: format!("{name} ({audience})"),
                selected: form.audiences.contains(audience),
            })
            .collect(),
        error,
    }
}

pub async fn get_new(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let offer = run_as(&state, visitor.acting.clone(), Origin::of(&req), |conn, caller, _| offer(conn, caller)).await?;
    if !offer.tenant_wide && offer.teams.is_empty() {
        return refusal_page(AppError::Forbidden("you may not register OAuth apps".into()));
    }
    let form = AppForm {
        client_type: "confidential".into(),
        grant_types: vec![GrantType::AuthorizationCode.as_str().into(), GrantType::RefreshToken.as_str().into()],
        scopes: "openid profile email".into(),
        ..AppForm::default()
    };
    visitor.page(StatusCode::OK, &form_page(&visitor, &offer, None, &form, None))
}

pub async fn post_create(
    req: HttpRequest,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = match crate::web::account::read_form::<AppForm>(&req, payload, &state, |f| &f.csrf_token).await {
        Ok(form) => form,
        Err(page) => return Ok(page),
    };
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let registration = ClientRegistration {
        name: form.name.clone(),
        team_id: Some(form.team_id.trim().to_owned()).filter(|t| !t.is_empty()),
        grant_types: form.grant_types.clone(),
        scopes: vec![form.scopes.clone()],
        audiences: form.audiences.clone(),
        redirect_uris: AppForm::lines(&form.redirect_uris),
        post_logout_redirect_uris: AppForm::lines(&form.post_logout_redirect_uris),
        public: form.client_type == "public",
        token_endpoint_auth_method: None,
    };
    let (offer, registered) = run_as(&state, visitor.acting.clone(), Origin::of(&req), move |conn, caller, state| {
        let offer = offer(conn, caller)?;
        Ok((offer, clients::register_client(conn, &state.hasher, caller, registration)))
    })
    .await?;
    match registered {
        Ok(app) => match &app.client_secret {
            Some(secret) => {
                let secret = NewSecret::new(
                    "Your new OAuth app",
                    "Client secret",
                    secret.clone(),
                    vec![("Name".into(), app.name.clone()), ("Client ID".into(), app.client_id.clone())],
                    &format!("{LIST}/{}", app.client_id),
                );
                show_once(&state, &visitor, &secret)
            }
            None => Ok(see_other(&format!("{LIST}/{}?done=created", app.client_id))),
        },
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            let page = form_page(&visitor, &offer, None, &form, Some(super::sentence(&message)));
            visitor.page(StatusCode::BAD_REQUEST, &page)
        }
        Err(refused) => refusal_page(refused),
    }
}

pub async fn get_edit(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let id = id.into_inner();
    let loaded = run_as(&state, visitor.acting.clone(), Origin::of(&req), move |conn, caller, _| {
        let app = clients::get_client(conn, caller, &id)?;
        if !clients::may(caller, &app, Action::Write) {
            return Err(AppError::Forbidden("you may see this app but not change it".into()));
        }
        Ok((app, offer(conn, caller)?))
    })
    .await;
    match loaded {
        Ok((app, offer)) => {
            let page = form_page(&visitor, &offer, Some(app.client_id.clone()), &AppForm::from_view(&app), None);
            visitor.page(StatusCode::OK, &page)
        }
        Err(refused) => refusal_page(refused),
    }
}

pub async fn post_edit(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = match crate::web::account::read_form::<AppForm>(&req, payload, &state, |f| &f.csrf_token).await {
        Ok(form) => form,
        Err(page) => return Ok(page),
    };
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let id = id.into_inner();
    let update = ClientUpdate {
        name: Some(form.name.clone()),
        grant_types: Some(form.grant_types.clone()),
        scopes: Some(vec![form.scopes.clone()]),
        audiences: Some(form.audiences.clone()),
        redirect_uris: Some(AppForm::lines(&form.redirect_uris)),
        post_logout_redirect_uris: Some(AppForm::lines(&form.post_logout_redirect_uris)),
    };
    let client_id = id.clone();
    let (offer, updated) = run_as(&state, visitor.acting.clone(), Origin::of(&req), move |conn, caller, _| {
        let offer = offer(conn, caller)?;
        Ok((offer, clients::update_client(conn, caller, &client_id, update)))
    })
    .await?;
    match updated {
        Ok(app) => Ok(see_other(&format!("{LIST}/{}?done=updated", app.client_id))),
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            let page = form_page(&visitor, &offer, Some(id), &form, Some(super::sentence(&message)));
            visitor.page(StatusCode::BAD_REQUEST, &page)
        }
        Err(refused) => refusal_page(refused),
    }
}

// ---------------------------------------------------------------- one app

struct ConsentRow {
    email: String,
    scope: String,
    since: String,
}

#[derive(Template)]
#[template(path = "dashboard/app.html")]
struct AppPage {
    shell: Shell,
    notice: Option<&'static str>,
    app: ClientView,
    public: bool,
    team: String,
    previous_secret_until: Option<String>,
    consents: Option<Vec<ConsentRow>>,
    may_write: bool,
    may_delete: bool,
}

pub async fn get_app(
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<DoneQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let id = id.into_inner();
    let loaded = run_as(&state, visitor.acting.clone(), Origin::of(&req), move |conn, caller, _| {
        let app = clients::get_client(conn, caller, &id)?;
        let consents = consents::consents_for_client(conn, caller, &id)?;
        let team = app.team_id.as_ref().and_then(|t| team_names(conn).ok()?.remove(t));
        let (may_write, may_delete) =
            (clients::may(caller, &app, Action::Write), clients::may(caller, &app, Action::Delete));
        Ok((app, consents, team, may_write, may_delete))
    })
    .await;
    let (app, consents, team, may_write, may_delete) = match loaded {
        Ok(loaded) => loaded,
        Err(refused) => return refusal_page(refused),
    };
    let page = AppPage {
        shell: visitor.shell(Section::Apps),
        notice: match query.done.as_deref() {
            Some("created") => Some("The app was registered."),
            Some("updated") => Some("The app was saved."),
            _ => None,
        },
        public: app.token_endpoint_auth_method == "none",
        team: team.unwrap_or_else(|| "No team (tenant-wide)".into()),
        previous_secret_until: app.previous_secret_expires_at.map(|at| at.format("%-d %B %Y, %H:%M UTC").to_string()),
        consents: consents.map(|list| {
            list.into_iter()
                .map(|(email, consent)| ConsentRow {
                    email,
                    scope: consent.scope,
                    since: date(Some(consent.created_at)),
                })
                .collect()
        }),
        may_write,
        may_delete,
        app,
    };
    visitor.page(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- rotating the secret, deleting

#[derive(Template)]
#[template(path = "dashboard/app_confirm.html")]
struct ConfirmPage {
    shell: Shell,
    app: ClientView,
    /// `rotate` or `delete`.
    what: &'static str,
    graces: Vec<Choice>,
}

const GRACES: [(i64, &str); 4] =
    [(0, "Stop the old secret now"), (3600, "In 1 hour"), (86_400, "In 24 hours"), (604_800, "In 7 days")];

async fn confirm(
    req: HttpRequest,
    id: String,
    state: web::Data<AppState>,
    what: &'static str,
    action: Action,
) -> Result<HttpResponse, AppError> {
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let loaded = run_as(&state, visitor.acting.clone(), Origin::of(&req), move |conn, caller, _| {
        let app = clients::get_client(conn, caller, &id)?;
        if !clients::may(caller, &app, action) {
            return Err(AppError::Forbidden(format!("you may see this app but not {what} it")));
        }
        if what == "rotate" && app.token_endpoint_auth_method == "none" {
            return Err(AppError::BadRequest("a public app has no secret to rotate".into()));
        }
        Ok(app)
    })
    .await;
    let app = match loaded {
        Ok(app) => app,
        Err(refused) => return refusal_page(refused),
    };
    let graces = GRACES
        .into_iter()
        .map(|(secs, label)| Choice { value: secs.to_string(), label: label.into(), selected: secs == 3600 })
        .collect();
    visitor.page(StatusCode::OK, &ConfirmPage { shell: visitor.shell(Section::Apps), app, what, graces })
}

pub async fn get_rotate(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    confirm(req, id.into_inner(), state, "rotate", Action::Write).await
}

pub async fn get_delete(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    confirm(req, id.into_inner(), state, "delete", Action::Delete).await
}

#[derive(Deserialize)]
struct RotateForm {
    csrf_token: String,
    grace_secs: String,
}

pub async fn post_rotate(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = match crate::web::account::read_form::<RotateForm>(&req, payload, &state, |f| &f.csrf_token).await {
        Ok(form) => form,
        Err(page) => return Ok(page),
    };
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let grace = match form.grace_secs.trim().parse::<i64>().map(TimeDelta::seconds) {
        Ok(grace) if grace >= TimeDelta::zero() && grace <= MAX_SECRET_GRACE => grace,
        _ => return refusal_page(AppError::BadRequest("choose one of the offered grace periods".into())),
    };
    let id = id.into_inner();
    let rotated = run_as(&state, visitor.acting.clone(), Origin::of(&req), move |conn, caller, state| {
        clients::rotate_client_secret(conn, &state.hasher, caller, &id, grace)
    })
    .await;
    match rotated {
        Ok(app) => {
            let old_stops = if grace.is_zero() {
                "Now".to_owned()
            } else {
                (Utc::now() + grace).format("%-d %B %Y, %H:%M UTC").to_string()
            };
            let secret = NewSecret::new(
                "The new client secret",
                "Client secret",
                app.client_secret.clone().unwrap_or_default(),
                vec![
                    ("App".into(), app.name.clone()),
                    ("Client ID".into(), app.client_id.clone()),
                    ("The old secret stops working".into(), old_stops),
                ],
                &format!("{LIST}/{}", app.client_id),
            );
            show_once(&state, &visitor, &secret)
        }
        Err(refused) => refusal_page(refused),
    }
}

#[derive(Deserialize)]
struct DeleteForm {
    csrf_token: String,
}

pub async fn post_delete(
    req: HttpRequest,
    id: web::Path<String>,
    payload: Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if let Err(page) = crate::web::account::read_form::<DeleteForm>(&req, payload, &state, |f| &f.csrf_token).await {
        return Ok(page);
    }
    let visitor = match visitor_or_login(&req, &state).await? {
        Ok(visitor) => visitor,
        Err(to_login) => return Ok(to_login),
    };
    let id = id.into_inner();
    let deleted = run_as(&state, visitor.acting.clone(), Origin::of(&req), move |conn, caller, _| {
        clients::delete_client(conn, caller, &id)
    })
    .await;
    match deleted {
        Ok(()) => Ok(see_other(&format!("{LIST}?done=deleted"))),
        Err(refused) => refusal_page(refused),
    }
}
