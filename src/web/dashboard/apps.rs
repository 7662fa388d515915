//! OAuth apps (clients) in the dashboard: the list, registering one (its secret shown
//! once), editing, rotating the secret with a grace period, deleting, and who has let it
//! in. Each action is `manage::clients`' own call, made as the signed-in person.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{self};
use askama::Template;
use serde::Deserialize;

use super::secret::{NewSecret, show_once};
use super::{Choice, PageResult, Section, Shell, Visitor, chosen_grace, date, grace_choices, see_other, stops_after};
use crate::access::{Action, Resource};
use crate::db::DbConnection;
use crate::domain::GrantType;
use crate::error::AppError;
use crate::manage::clients::{self, ClientRegistration, ClientUpdate, ClientView, MAX_SECRET_GRACE};
use crate::manage::{Caller, apis, consents, teams};
use crate::web::form::{FieldError, PageForm};

pub const LIST: &str = "/dashboard/apps";

fn grant_label(grant: GrantType) -> &'static str {
    match grant {
        GrantType::AuthorizationCode => "Authorization code (people sign in)",
        GrantType::RefreshToken => "Refresh token",
        GrantType::ClientCredentials => "Client credentials (the app acts as itself)",
        GrantType::TokenExchange => "Token exchange (API key for a JWT)",
        GrantType::JwtBearer => "JWT bearer (a JWT the app signs; needs JWT client authentication)",
        GrantType::DeviceCode => "Device code (a CLI or TV; people approve at /device)",
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
    built_in: bool,
}

#[derive(Template)]
#[template(path = "dashboard/apps.html")]
struct ListPage {
    shell: Shell,
    notice: Option<&'static str>,
    apps: Vec<AppRow>,
    /// Whether any app besides the built-in one is listed.
    has_own: bool,
    may_create: bool,
    next_page: Option<String>,
    first_page: bool,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
    cursor: Option<String>,
}

/// Apps on a page of the list.
const PAGE: i64 = 50;

fn team_names(conn: &mut DbConnection) -> Result<HashMap<String, String>, AppError> {
    Ok(crate::db::teams::list_teams(conn, None)?.into_iter().map(|t| (t.id, t.name)).collect())
}

pub async fn get_list(visitor: Visitor, query: web::Query<ListQuery>) -> PageResult {
    let cursor = query.cursor.clone().filter(|c| !c.is_empty());
    let first_page = cursor.is_some();
    let (apps, may_create, next) = visitor
        .run(move |conn, caller, _| {
            let (apps, next) = clients::page_of_clients(conn, caller, cursor.as_deref(), PAGE)?;
            let teams = team_names(conn)?;
            let (tenant_wide, homes) = teams::homes_for(conn, caller, Resource::Clients)?;
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
                    built_in: app.built_in,
                })
                .collect();
            Ok((rows, tenant_wide || !homes.is_empty(), next))
        })
        .await?;
    let notice = match query.done.as_deref() {
        Some("created") => Some("The app was registered."),
        Some("updated") => Some("The app was saved."),
        Some("deleted") => Some("The app was deleted. Its tokens no longer work."),
        _ => None,
    };
    let next_page =
        next.map(|next| format!("{LIST}?{}", serde_html_form::to_string([("cursor", next)]).unwrap_or_default()));
    let has_own = apps.iter().any(|app| !app.built_in);
    let page =
        ListPage { shell: visitor.shell(Section::Apps), notice, apps, has_own, may_create, next_page, first_page };
    visitor.page(StatusCode::OK, &page)
}

// ---------------------------------------------------------------- registering and editing

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
    error: Option<FieldError>,
}

#[derive(Deserialize, Default)]
pub struct AppForm {
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
    let (tenant_wide, teams) = teams::homes_for(conn, caller, Resource::Clients)?;
    // Naming an API takes seeing it; someone who sees none registers apps without one.
    let mut apis = match apis::list_apis(conn, caller) {
        Ok(apis) => apis,
        Err(AppError::Forbidden(_)) => Vec::new(),
        Err(other) => return Err(other),
    };
    // Apps are mostly for the tenant's own APIs: Latchkey's own comes last.
    apis.sort_by_key(|api| api.built_in);
    Ok(Offer { tenant_wide, teams, apis: apis.into_iter().map(|a| (a.audience, a.name)).collect() })
}

/// Which field a refusal of the app's settings is about.
const FIELDS: [(&str, &str); 7] = [
    ("sign-out", "post_logout_redirect_uris"),
    ("redirect uri", "redirect_uris"),
    ("grant", "grant_types"),
    ("audience", "audiences"),
    ("scope", "scopes"),
    ("name", "name"),
    ("team", "team_id"),
];

fn form_page(
    visitor: &Visitor,
    offer: &Offer,
    client_id: Option<String>,
    form: &AppForm,
    error: Option<&str>,
) -> FormPage {
    let error = error.map(|message| FieldError::place(message, &FIELDS));
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

pub async fn get_new(visitor: Visitor) -> PageResult {
    let offer = visitor.run(|conn, caller, _| offer(conn, caller)).await?;
    if !offer.tenant_wide && offer.teams.is_empty() {
        return Err(AppError::Forbidden("you may not register OAuth apps".into()).into());
    }
    let form = AppForm {
        client_type: "confidential".into(),
        grant_types: vec![GrantType::AuthorizationCode.as_str().into(), GrantType::RefreshToken.as_str().into()],
        scopes: "openid profile email".into(),
        ..AppForm::default()
    };
    visitor.page(StatusCode::OK, &form_page(&visitor, &offer, None, &form, None))
}

pub async fn post_create(visitor: Visitor, form: PageForm<AppForm>) -> PageResult {
    let form = form.into_inner();
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
        ..ClientRegistration::default()
    };
    let (offer, registered) = visitor
        .run(move |conn, caller, state| {
            let offer = offer(conn, caller)?;
            Ok((offer, clients::register_client(conn, &state.hasher, &state.sealer, caller, registration)))
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
                show_once(&visitor, &secret)
            }
            None => Ok(see_other(&format!("{LIST}/{}?done=created", app.client_id))),
        },
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            let page = form_page(&visitor, &offer, None, &form, Some(&message));
            visitor.page(StatusCode::BAD_REQUEST, &page)
        }
        Err(refused) => Err(refused.into()),
    }
}

pub async fn get_edit(visitor: Visitor, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let (app, offer) = visitor
        .run(move |conn, caller, _| {
            let app = clients::get_client(conn, caller, &id)?;
            if !clients::may(caller, &app, Action::Write) {
                return Err(AppError::Forbidden("you may see this app but not change it".into()));
            }
            Ok((app, offer(conn, caller)?))
        })
        .await?;
    let page = form_page(&visitor, &offer, Some(app.client_id.clone()), &AppForm::from_view(&app), None);
    visitor.page(StatusCode::OK, &page)
}

pub async fn post_edit(visitor: Visitor, id: web::Path<String>, form: PageForm<AppForm>) -> PageResult {
    let form = form.into_inner();
    let id = id.into_inner();
    let update = ClientUpdate {
        name: Some(form.name.clone()),
        grant_types: Some(form.grant_types.clone()),
        scopes: Some(vec![form.scopes.clone()]),
        audiences: Some(form.audiences.clone()),
        redirect_uris: Some(AppForm::lines(&form.redirect_uris)),
        post_logout_redirect_uris: Some(AppForm::lines(&form.post_logout_redirect_uris)),
        ..ClientUpdate::default()
    };
    let client_id = id.clone();
    let (offer, updated) = visitor
        .run(move |conn, caller, _| {
            let offer = offer(conn, caller)?;
            Ok((offer, clients::update_client(conn, caller, &client_id, update)))
        })
        .await?;
    match updated {
        Ok(app) => Ok(see_other(&format!("{LIST}/{}?done=updated", app.client_id))),
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            let page = form_page(&visitor, &offer, Some(id), &form, Some(&message));
            visitor.page(StatusCode::BAD_REQUEST, &page)
        }
        Err(refused) => Err(refused.into()),
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

pub async fn get_app(visitor: Visitor, id: web::Path<String>, query: web::Query<DoneQuery>) -> PageResult {
    let id = id.into_inner();
    let (app, consents, team, may_write, may_delete) = visitor
        .run(move |conn, caller, _| {
            let app = clients::get_client(conn, caller, &id)?;
            let consents = consents::consents_for_client(conn, caller, &id)?;
            let team = match &app.team_id {
                Some(team) => team_names(conn)?.remove(team),
                None => None,
            };
            let (may_write, may_delete) =
                (clients::may(caller, &app, Action::Write), clients::may(caller, &app, Action::Delete));
            Ok((app, consents, team, may_write, may_delete))
        })
        .await?;
    let page = AppPage {
        shell: visitor.shell(Section::Apps),
        notice: match query.done.as_deref() {
            Some("created") => Some("The app was registered."),
            Some("updated") => Some("The app was saved."),
            _ => None,
        },
        public: app.token_endpoint_auth_method == "none",
        team: team.unwrap_or_else(|| "No team (tenant-wide)".into()),
        previous_secret_until: app.previous_secret_expires_at.map(super::moment),
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

async fn confirm(visitor: Visitor, id: String, what: &'static str, action: Action) -> PageResult {
    let app = visitor
        .run(move |conn, caller, _| {
            let app = clients::get_client(conn, caller, &id)?;
            if !clients::may(caller, &app, action) {
                return Err(AppError::Forbidden(format!("you may see this app but not {what} it")));
            }
            if what == "rotate" && app.token_endpoint_auth_method == "none" {
                return Err(AppError::BadRequest("a public app has no secret to rotate".into()));
            }
            Ok(app)
        })
        .await?;
    let graces = grace_choices();
    visitor.page(StatusCode::OK, &ConfirmPage { shell: visitor.shell(Section::Apps), app, what, graces })
}

pub async fn get_rotate(visitor: Visitor, id: web::Path<String>) -> PageResult {
    confirm(visitor, id.into_inner(), "rotate", Action::Write).await
}

pub async fn get_delete(visitor: Visitor, id: web::Path<String>) -> PageResult {
    confirm(visitor, id.into_inner(), "delete", Action::Delete).await
}

#[derive(Deserialize)]
pub struct RotateForm {
    grace_secs: String,
}

pub async fn post_rotate(visitor: Visitor, id: web::Path<String>, form: PageForm<RotateForm>) -> PageResult {
    let form = form.into_inner();
    let grace = chosen_grace(&form.grace_secs, MAX_SECRET_GRACE)?;
    let id = id.into_inner();
    let rotated = visitor
        .run(move |conn, caller, state| {
            clients::rotate_client_secret(conn, &state.hasher, &state.sealer, caller, &id, grace)
        })
        .await;
    match rotated {
        Ok(app) => {
            let secret = NewSecret::new(
                "The new client secret",
                "Client secret",
                app.client_secret.clone().unwrap_or_default(),
                vec![
                    ("App".into(), app.name.clone()),
                    ("Client ID".into(), app.client_id.clone()),
                    ("The old secret stops working".into(), stops_after(grace)),
                ],
                &format!("{LIST}/{}", app.client_id),
            );
            show_once(&visitor, &secret)
        }
        Err(refused) => Err(refused.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn post_delete(visitor: Visitor, id: web::Path<String>, _form: PageForm<DeleteForm>) -> PageResult {
    let id = id.into_inner();
    visitor.run(move |conn, caller, _| clients::delete_client(conn, caller, &id)).await?;
    Ok(see_other(&format!("{LIST}?done=deleted")))
}
