//! Registering resource servers ("APIs").

use serde::Serialize;

use super::Caller;
use crate::access::{Action, Permission, Resource, Target};
use crate::audit;
use crate::crypto::{Sealer, random_token};
use crate::db::DbConnection;
use crate::db::apis::{
    Api, NewApi, delete_api as db_delete_api, find_api, find_api_by_audience, insert_api, list_apis as db_list_apis,
    update_api as db_update_api,
};
use crate::domain::{ApiSigning, Issuer, SigningAlgorithm};
use crate::domain::{ResourceUri, Scopes};
use crate::error::AppError;

impl Api {
    pub fn signing(&self) -> ApiSigning {
        self.signing_alg.parse().unwrap_or(ApiSigning::Published(SigningAlgorithm::RS256))
    }

    /// Latchkey's own management API, which nobody registered and nobody may change.
    pub fn is_built_in(&self) -> bool {
        self.id == MANAGEMENT_API_ID
    }
}

/// The row that stands for Latchkey's own management API (`/api/v1`), so that clients are
/// registered for it, users consent to it and tokens are issued for it like any API's.
pub const MANAGEMENT_API_ID: &str = "latchkey-management-api";

/// Its scopes: `read`, `write`, `delete`, `admin` and every `<resource>:<action>`, as API
/// key permissions are written (docs/api-keys.md).
pub fn management_scopes() -> Scopes {
    let actions = [Action::Read, Action::Write, Action::Delete, Action::Admin];
    let resources = std::iter::once(None).chain(Resource::ALL.into_iter().map(Some));
    let names: Vec<String> = resources
        .flat_map(|resource| actions.into_iter().map(move |action| Permission { resource, action }.to_string()))
        .collect();
    Scopes::from_tokens(names.iter().map(String::as_str)).expect("permission names are valid scope tokens")
}

/// Registers the management API on first start, and follows the issuer and the scopes if
/// they changed since. Safe when several instances start at once (the insert does nothing
/// if another instance made the row first).
pub fn ensure_management_api(conn: &mut DbConnection, issuer: &Issuer, default_ttl_secs: i64) -> Result<(), AppError> {
    let audience = issuer.management_api_audience();
    let scopes = management_scopes().to_string();
    let now = crate::db::now();
    match find_api(conn, MANAGEMENT_API_ID)? {
        Some(api) if api.audience == audience && api.scopes == scopes => Ok(()),
        Some(_) => {
            crate::db::apis::update_built_in_api(conn, MANAGEMENT_API_ID, &audience, &scopes, now)?;
            Ok(())
        }
        None => {
            // Another instance starting at the same moment may have just made it.
            if let Some(other) = find_api_by_audience(conn, &audience)?.filter(|api| !api.is_built_in()) {
                return Err(AppError::Conflict(format!(
                    "the API `{}` was registered with the audience `{audience}`, which is the management API's own; \
                     give it another audience or delete it",
                    other.id
                )));
            }
            crate::db::apis::insert_api_unless_present(
                conn,
                &NewApi {
                    id: MANAGEMENT_API_ID,
                    tenant_id: crate::db::DEFAULT_TENANT_ID,
                    team_id: None,
                    name: "Latchkey management API",
                    audience: &audience,
                    signing_alg: ApiSigning::Published(SigningAlgorithm::RS256).as_str(),
                    secret_sealed: None,
                    scopes: &scopes,
                    token_lifetime_secs: default_ttl_secs,
                    created_at: now,
                    updated_at: now,
                },
            )?;
            Ok(())
        }
    }
}

fn refuse_built_in(api: &Api) -> Result<(), AppError> {
    if api.is_built_in() {
        return Err(AppError::Conflict(
            "the management API is built in: its audience, scopes and lifetime follow Latchkey's own settings".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct ApiRegistration {
    pub name: Option<String>,
    /// The team that owns the API; its members reach it through their role.
    pub team_id: Option<String>,
    pub audience: String,
    pub scopes: Vec<String>,
    pub signing: ApiSigning,
    pub token_lifetime_secs: Option<i64>,
}

/// An API as the management API shows it: never its shared secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiView {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub audience: String,
    pub scope: String,
    pub signing_alg: String,
    pub token_lifetime_secs: i64,
    /// Latchkey's own management API: listed for its audience and scopes, never changed.
    pub built_in: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Api> for ApiView {
    fn from(api: &Api) -> Self {
        Self {
            id: api.id.clone(),
            name: api.name.clone(),
            team_id: api.team_id.clone(),
            audience: api.audience.clone(),
            scope: api.scopes.clone(),
            signing_alg: api.signing_alg.clone(),
            token_lifetime_secs: api.token_lifetime_secs,
            built_in: api.is_built_in(),
            created_at: crate::db::utc(api.created_at),
            updated_at: crate::db::utc(api.updated_at),
        }
    }
}

/// A registered API, with the HS256 shared secret: shown once; its UTF-8 bytes are the
/// HMAC key.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisteredApi {
    #[serde(flatten)]
    pub api: ApiView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::ops::Deref for RegisteredApi {
    type Target = ApiView;

    fn deref(&self) -> &ApiView {
        &self.api
    }
}

impl std::fmt::Debug for RegisteredApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredApi")
            .field("api", &self.api)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

fn check_lifetime(lifetime: i64) -> Result<(), AppError> {
    if (60..=86_400).contains(&lifetime) {
        Ok(())
    } else {
        Err(bad("the token lifetime must be between 60 and 86400 seconds"))
    }
}

pub fn register_api(
    conn: &mut DbConnection,
    sealer: &Sealer,
    caller: &Caller<'_>,
    registration: ApiRegistration,
    default_ttl_secs: i64,
) -> Result<RegisteredApi, AppError> {
    caller.check_create(Resource::Apis, registration.team_id.as_deref())?;
    super::clients::existing_team(conn, registration.team_id.as_deref())?;
    let audience = ResourceUri::parse(&registration.audience).map_err(|e| bad(format!("audience: {e}")))?;
    let scopes = Scopes::from_tokens(registration.scopes.iter().map(String::as_str)).map_err(|e| bad(e.to_string()))?;
    let lifetime = registration.token_lifetime_secs.unwrap_or(default_ttl_secs);
    check_lifetime(lifetime)?;
    let name = match registration.name.as_deref() {
        Some(name) => super::clean_name(name, "API")?,
        None => audience.to_string(),
    };
    if find_api_by_audience(conn, audience.as_str())?.is_some() {
        return Err(AppError::Conflict(format!("an API with the audience `{audience}` already exists")));
    }

    let id = uuid::Uuid::new_v4().to_string();
    let now = crate::db::now();
    let secret = (registration.signing == ApiSigning::SharedSecret).then(random_token::<32>);
    let sealed = secret.as_deref().map(|s| sealer.seal(s.as_bytes(), &Api::seal_context(&id)));
    if let ApiSigning::Published(algorithm) = registration.signing {
        super::signing_keys::ensure_active_key(conn, sealer, algorithm, now)?;
    }
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        insert_api(
            conn,
            &NewApi {
                id: &id,
                tenant_id: crate::db::DEFAULT_TENANT_ID,
                team_id: registration.team_id.as_deref(),
                name: &name,
                audience: audience.as_str(),
                signing_alg: registration.signing.as_str(),
                secret_sealed: sealed.as_deref(),
                scopes: &scopes.to_string(),
                token_lifetime_secs: lifetime,
                created_at: now,
                updated_at: now,
            },
        )?;
        audit::record(
            conn,
            &caller.audit.change("api.created").target("api", &id).details(
                serde_json::json!({ "audience": audience.as_str(), "signing_alg": registration.signing.as_str() }),
            ),
        )?;
        Ok(())
    })?;
    let api = find_api(conn, &id)?.ok_or(AppError::NotFound)?;
    Ok(RegisteredApi { api: ApiView::from(&api), secret })
}

fn api_for(conn: &mut DbConnection, caller: &Caller<'_>, id: &str, action: Action) -> Result<Api, AppError> {
    let api = find_api(conn, id)?.ok_or(AppError::NotFound)?;
    caller.check(Target::of(Resource::Apis).in_team(api.team_id.as_deref()), action)?;
    Ok(api)
}

/// Whether the caller may do `action` to the API (for showing only the buttons that work).
pub fn may(caller: &Caller<'_>, api: &ApiView, action: Action) -> bool {
    (action == Action::Read || !api.built_in)
        && caller.check(Target::of(Resource::Apis).in_team(api.team_id.as_deref()), action).is_ok()
}

pub fn get_api(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<ApiView, AppError> {
    api_for(conn, caller, id, Action::Read).map(|api| ApiView::from(&api))
}

pub fn list_apis(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<ApiView>, AppError> {
    let listing = caller.listing(Resource::Apis)?;
    let teams = (!listing.all).then_some(listing.teams.as_slice());
    Ok(db_list_apis(conn, teams)?.iter().map(ApiView::from).collect())
}

/// What an update may change. The audience and signing are the API's identity to the
/// services that verify its tokens: register a new API to change them.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiUpdate {
    #[schema(value_type = Option<crate::domain::DisplayName>)]
    pub name: Option<String>,
    #[schema(value_type = Option<Vec<crate::domain::Scopes>>)]
    pub scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::domain::optional_whole_number")]
    #[schema(minimum = 60, maximum = 86_400)]
    pub token_lifetime_secs: Option<i64>,
}

pub fn update_api(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    id: &str,
    update: ApiUpdate,
) -> Result<ApiView, AppError> {
    let api = api_for(conn, caller, id, Action::Write)?;
    refuse_built_in(&api)?;
    let name = update.name.as_deref().map(|n| super::clean_name(n, "API")).transpose()?.unwrap_or(api.name);
    let scopes = match &update.scopes {
        Some(scopes) => Scopes::from_tokens(scopes.iter().map(String::as_str)).map_err(|e| bad(e.to_string()))?,
        None => Scopes::parse(&api.scopes).unwrap_or_default(),
    };
    let lifetime = update.token_lifetime_secs.unwrap_or(api.token_lifetime_secs);
    check_lifetime(lifetime)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        db_update_api(conn, id, &name, &scopes.to_string(), lifetime, crate::db::now())?;
        audit::record(conn, &caller.audit.change("api.updated").target("api", id))?;
        Ok(())
    })?;
    get_api(conn, caller, id)
}

pub fn delete_api(conn: &mut DbConnection, caller: &Caller<'_>, id: &str) -> Result<(), AppError> {
    let api = api_for(conn, caller, id, Action::Delete)?;
    refuse_built_in(&api)?;
    let clients = crate::db::clients::list_clients(conn, None)?;
    let in_use = clients.iter().filter(|c| c.audiences().any(|a| a == api.audience)).count();
    if in_use > 0 {
        return Err(AppError::Conflict(format!(
            "{in_use} client(s) may request tokens for this API; remove its audience from them first"
        )));
    }
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        db_delete_api(conn, id)?;
        audit::record(
            conn,
            &caller
                .audit
                .change("api.deleted")
                .target("api", id)
                .details(serde_json::json!({ "audience": api.audience })),
        )?;
        Ok(())
    })
}
