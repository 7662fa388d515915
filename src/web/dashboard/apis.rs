//! APIs (resource servers) in the dashboard: the list, registering one (an HS256 secret
//! shown once), editing its name, scopes and token lifetime, and deleting it. Each action is
//! `manage::apis`' own call, made as the signed-in person.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::web::{self};
use askama::Template;
use serde::Deserialize;

use super::secret::{NewSecret, show_once};
use super::{Choice, PageResult, Section, Shell, Visitor, date, see_other};
use crate::access::{Action, Resource};
use crate::domain::ApiSigning;
use crate::error::AppError;
use crate::manage::apis::{self, ApiRegistration, ApiUpdate, ApiView};
use crate::manage::teams;
use crate::state::AppState;
use crate::web::form::{FieldError, PageForm};

pub const LIST: &str = "/dashboard/apis";

const ALGORITHMS: [(&str, &str); 4] = [
    ("RS256", "RS256: services verify against the JWKS (the usual choice)"),
    ("ES256", "ES256: as RS256, smaller tokens"),
    ("EdDSA", "EdDSA (Ed25519): as RS256, smallest tokens"),
    ("HS256", "HS256: a secret shared with this API only (shown once)"),
];

struct ApiRow {
    id: String,
    name: String,
    audience: String,
    scopes: String,
    signing: String,
    lifetime: String,
    team: String,
    created: String,
    may_write: bool,
    may_delete: bool,
    built_in: bool,
}

#[derive(Template)]
#[template(path = "dashboard/apis.html")]
struct ListPage {
    shell: Shell,
    notice: Option<&'static str>,
    apis: Vec<ApiRow>,
    /// Whether any API besides the built-in one is in reach.
    has_own: bool,
    may_create: bool,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn lifetime(secs: i64) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

pub async fn get_list(visitor: Visitor, query: web::Query<DoneQuery>) -> PageResult {
    let (apis, may_create) = visitor
        .run(|conn, caller, _| {
            let names: HashMap<String, String> =
                crate::db::teams::list_teams(conn, None)?.into_iter().map(|t| (t.id, t.name)).collect();
            let rows = apis::list_apis(conn, caller)?
                .iter()
                .map(|api| ApiRow {
                    id: api.id.clone(),
                    name: api.name.clone(),
                    audience: api.audience.clone(),
                    scopes: match api.scope.as_str() {
                        // Thirty-six of them: say what they are rather than list them.
                        _ if api.built_in => {
                            "read, write, delete, admin, and <resource>:<action> as for API keys".into()
                        }
                        "" => "—".into(),
                        scope => scope.to_owned(),
                    },
                    signing: api.signing_alg.clone(),
                    lifetime: lifetime(api.token_lifetime_secs),
                    team: api.team_id.as_ref().and_then(|t| names.get(t)).cloned().unwrap_or_else(|| "—".into()),
                    created: date(Some(api.created_at)),
                    may_write: apis::may(caller, api, Action::Write),
                    may_delete: apis::may(caller, api, Action::Delete),
                    built_in: api.built_in,
                })
                .collect::<Vec<_>>();
            let (tenant_wide, homes) = teams::homes_for(conn, caller, Resource::Apis)?;
            Ok((rows, tenant_wide || !homes.is_empty()))
        })
        .await?;
    let notice = match query.done.as_deref() {
        Some("created") => Some("The API was registered."),
        Some("updated") => Some("The API was saved."),
        Some("deleted") => Some("The API was deleted."),
        _ => None,
    };
    let has_own = apis.iter().any(|api| !api.built_in);
    visitor.page(StatusCode::OK, &ListPage { shell: visitor.shell(Section::Apis), notice, apis, has_own, may_create })
}

#[derive(Template)]
#[template(path = "dashboard/api_form.html")]
struct FormPage {
    shell: Shell,
    /// Set when editing.
    id: Option<String>,
    name: String,
    audience: String,
    scopes: String,
    lifetime_secs: String,
    /// The signing algorithm, as the form says it.
    signing: String,
    homes: Vec<Choice>,
    algorithms: Vec<Choice>,
    error: Option<FieldError>,
}

#[derive(Deserialize, Default)]
pub struct ApiForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    signing_alg: String,
    #[serde(default)]
    token_lifetime_secs: String,
}

/// Which field a refusal of the API's settings is about.
const FIELDS: [(&str, &str); 6] = [
    ("audience", "audience"),
    ("lifetime", "token_lifetime_secs"),
    ("scope", "scopes"),
    ("signing", "signing_alg"),
    ("name", "name"),
    ("team", "team_id"),
];

fn form_page(
    visitor: &Visitor,
    homes: (bool, Vec<(String, String)>),
    id: Option<String>,
    form: &ApiForm,
    error: Option<&str>,
) -> FormPage {
    let error = error.map(|message| FieldError::place(message, &FIELDS));
    let (tenant_wide, teams) = homes;
    let mut choices = Vec::new();
    if tenant_wide {
        choices.push(Choice {
            value: String::new(),
            label: "No team (tenant-wide)".into(),
            selected: form.team_id.is_empty(),
        });
    }
    choices.extend(teams.into_iter().map(|(id, name)| Choice { selected: form.team_id == id, value: id, label: name }));
    FormPage {
        shell: visitor.shell(Section::Apis),
        id,
        name: form.name.clone(),
        audience: form.audience.clone(),
        scopes: form.scopes.clone(),
        lifetime_secs: form.token_lifetime_secs.clone(),
        signing: form.signing_alg.clone(),
        homes: choices,
        algorithms: ALGORITHMS
            .into_iter()
            .map(|(value, label)| Choice {
                value: value.into(),
                label: label.into(),
                selected: form.signing_alg == value,
            })
            .collect(),
        error,
    }
}

/// The lifetime typed, if any: `Err` is the message.
fn lifetime_field(value: &str) -> Result<Option<i64>, AppError> {
    match value.trim() {
        "" => Ok(None),
        value => value
            .parse()
            .map(Some)
            .map_err(|_| AppError::BadRequest("the token lifetime is a number of seconds".into())),
    }
}

pub async fn get_new(visitor: Visitor, state: web::Data<AppState>) -> PageResult {
    let homes = visitor.run(|conn, caller, _| teams::homes_for(conn, caller, Resource::Apis)).await?;
    if !homes.0 && homes.1.is_empty() {
        return Err(AppError::Forbidden("you may not register APIs".into()).into());
    }
    let form = ApiForm {
        signing_alg: "RS256".into(),
        token_lifetime_secs: state.settings.access_token_ttl_secs.to_string(),
        ..ApiForm::default()
    };
    visitor.page(StatusCode::OK, &form_page(&visitor, homes, None, &form, None))
}

pub async fn post_create(visitor: Visitor, form: PageForm<ApiForm>) -> PageResult {
    let form = form.into_inner();
    let parsed = form
        .signing_alg
        .parse::<ApiSigning>()
        .map_err(AppError::BadRequest)
        .and_then(|signing| Ok((signing, lifetime_field(&form.token_lifetime_secs)?)));
    let registration = parsed.map(|(signing, lifetime)| ApiRegistration {
        name: Some(form.name.clone()).filter(|n| !n.trim().is_empty()),
        team_id: Some(form.team_id.trim().to_owned()).filter(|t| !t.is_empty()),
        audience: form.audience.trim().to_owned(),
        scopes: vec![form.scopes.clone()],
        signing,
        token_lifetime_secs: lifetime,
    });
    let (homes, registered) = visitor
        .run(move |conn, caller, state| {
            let homes = teams::homes_for(conn, caller, Resource::Apis)?;
            let registered = registration.and_then(|registration| {
                apis::register_api(conn, &state.sealer, caller, registration, state.settings.access_token_ttl_secs)
            });
            Ok((homes, registered))
        })
        .await?;
    match registered {
        Ok(api) => match &api.secret {
            Some(secret) => {
                let secret = NewSecret::new(
                    "The API's shared secret",
                    "HS256 secret (its UTF-8 bytes are the HMAC key)",
                    secret.clone(),
                    vec![("API".into(), api.name.clone()), ("Audience".into(), api.audience.clone())],
                    &format!("{LIST}?done=created"),
                );
                show_once(&visitor, &secret)
            }
            None => Ok(see_other(&format!("{LIST}?done=created"))),
        },
        Err(AppError::BadRequest(message) | AppError::Conflict(message)) => {
            let page = form_page(&visitor, homes, None, &form, Some(&message));
            visitor.page(StatusCode::BAD_REQUEST, &page)
        }
        Err(refused) => Err(refused.into()),
    }
}

fn form_of(api: &ApiView) -> ApiForm {
    ApiForm {
        name: api.name.clone(),
        audience: api.audience.clone(),
        team_id: api.team_id.clone().unwrap_or_default(),
        scopes: api.scope.clone(),
        signing_alg: api.signing_alg.clone(),
        token_lifetime_secs: api.token_lifetime_secs.to_string(),
    }
}

pub async fn get_edit(visitor: Visitor, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let loaded = visitor
        .run(move |conn, caller, _| {
            let api = apis::get_api(conn, caller, &id)?;
            if !apis::may(caller, &api, Action::Write) {
                return Err(AppError::Forbidden("you may see this API but not change it".into()));
            }
            Ok(api)
        })
        .await;
    match loaded {
        Ok(api) => {
            let page = form_page(&visitor, (false, Vec::new()), Some(api.id.clone()), &form_of(&api), None);
            visitor.page(StatusCode::OK, &page)
        }
        Err(refused) => Err(refused.into()),
    }
}

pub async fn post_edit(visitor: Visitor, id: web::Path<String>, form: PageForm<ApiForm>) -> PageResult {
    let form = form.into_inner();
    let id = id.into_inner();
    let api_id = id.clone();
    let update = lifetime_field(&form.token_lifetime_secs).map(|lifetime| ApiUpdate {
        name: Some(form.name.clone()),
        scopes: Some(vec![form.scopes.clone()]),
        token_lifetime_secs: lifetime,
    });
    let updated = visitor
        .run(move |conn, caller, _| {
            let current = apis::get_api(conn, caller, &api_id)?;
            Ok((current, update.and_then(|update| apis::update_api(conn, caller, &api_id, update))))
        })
        .await;
    match updated {
        Ok((_, Ok(_))) => Ok(see_other(&format!("{LIST}?done=updated"))),
        Ok((current, Err(AppError::BadRequest(message) | AppError::Conflict(message)))) => {
            // Audience and signing cannot change; show them as they are.
            let form = ApiForm { audience: current.audience, signing_alg: current.signing_alg, ..form };
            let page = form_page(&visitor, (false, Vec::new()), Some(id), &form, Some(&message));
            visitor.page(StatusCode::BAD_REQUEST, &page)
        }
        Ok((_, Err(refused))) | Err(refused) => Err(refused.into()),
    }
}

#[derive(Template)]
#[template(path = "dashboard/api_delete.html")]
struct DeletePage {
    shell: Shell,
    api: ApiView,
}

pub async fn get_delete(visitor: Visitor, id: web::Path<String>) -> PageResult {
    let id = id.into_inner();
    let loaded = visitor
        .run(move |conn, caller, _| {
            let api = apis::get_api(conn, caller, &id)?;
            if !apis::may(caller, &api, Action::Delete) {
                return Err(AppError::Forbidden("you may see this API but not delete it".into()));
            }
            Ok(api)
        })
        .await;
    match loaded {
        Ok(api) => visitor.page(StatusCode::OK, &DeletePage { shell: visitor.shell(Section::Apis), api }),
        Err(refused) => Err(refused.into()),
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {}

pub async fn post_delete(visitor: Visitor, id: web::Path<String>, _form: PageForm<DeleteForm>) -> PageResult {
    let id = id.into_inner();
    visitor.run(move |conn, caller, _| apis::delete_api(conn, caller, &id)).await?;
    Ok(see_other(&format!("{LIST}?done=deleted")))
}
