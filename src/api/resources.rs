//! The management API's resources: clients, APIs, users, teams, API keys, consents, signing
//! keys and the audit log. Each handler parses its input and calls one `manage` function.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::TimeDelta;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::call;
use super::error::ApiError;
use crate::access::TeamRole;
use crate::apikeys::extractor::ApiKeyAuth;
use crate::manage::apis::{ApiRegistration, ApiSigning, ApiUpdate};
use crate::manage::clients::{ClientRegistration, ClientUpdate};
use crate::manage::users::{Invitation, Lifecycle, UserRegistration, UserUpdate};
use crate::manage::{api_keys, apis, audit, clients, consents, keys, teams, users};
use crate::startup::{AppState, routes};
use crate::tokens::SigningAlgorithm;

type Data = web::Data<AppState>;
type Reply = Result<HttpResponse, ApiError>;

/// A collection: `{"data": [...]}`, so that fields can be added beside it later.
#[derive(Serialize)]
struct List<T> {
    data: Vec<T>,
}

fn list<T: Serialize>(data: Vec<T>) -> HttpResponse {
    HttpResponse::Ok().json(List { data })
}

fn no_content(_: ()) -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// How long a replaced secret or key keeps working.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotation {
    #[serde(default)]
    grace_period_secs: i64,
}

impl Rotation {
    fn grace(body: Option<web::Json<Rotation>>) -> TimeDelta {
        TimeDelta::seconds(body.map(|b| b.grace_period_secs).unwrap_or(0))
    }
}

// ---- clients ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    name: String,
    team_id: Option<String>,
    grant_types: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (a browser or native app) has no secret and must use PKCE.
    #[serde(default)]
    public: bool,
}

async fn create_client(req: HttpRequest, state: Data, auth: ApiKeyAuth, body: web::Json<NewClient>) -> Reply {
    let body = body.into_inner();
    let registration = ClientRegistration {
        name: body.name,
        team_id: body.team_id,
        grant_types: body.grant_types,
        scopes: body.scopes,
        audiences: body.audiences,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        public: body.public,
    };
    let created = call(&req, &state, auth, move |conn, caller, state| {
        clients::register_client(conn, &state.hasher, caller, registration)
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

async fn list_clients(req: HttpRequest, state: Data, auth: ApiKeyAuth) -> Reply {
    call(&req, &state, auth, |conn, caller, _| clients::list_clients(conn, caller)).await.map(list)
}

async fn get_client(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    let client = call(&req, &state, auth, move |conn, caller, _| clients::get_client(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(client))
}

async fn update_client(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    id: web::Path<String>,
    body: web::Json<ClientUpdate>,
) -> Reply {
    let update = body.into_inner();
    let client =
        call(&req, &state, auth, move |conn, caller, _| clients::update_client(conn, caller, &id, update)).await?;
    Ok(HttpResponse::Ok().json(client))
}

async fn delete_client(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| clients::delete_client(conn, caller, &id)).await.map(no_content)
}

async fn rotate_client_secret(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    id: web::Path<String>,
    body: Option<web::Json<Rotation>>,
) -> Reply {
    let grace = Rotation::grace(body);
    let rotated = call(&req, &state, auth, move |conn, caller, state| {
        clients::rotate_client_secret(conn, &state.hasher, caller, &id, grace)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

// ---- APIs ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApi {
    name: Option<String>,
    team_id: Option<String>,
    audience: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// RS256 (default), ES256, EdDSA, or HS256 with a secret shared with this API.
    signing_alg: Option<String>,
    token_lifetime_secs: Option<i64>,
}

async fn create_api(req: HttpRequest, state: Data, auth: ApiKeyAuth, body: web::Json<NewApi>) -> Reply {
    let body = body.into_inner();
    let signing: ApiSigning = body.signing_alg.as_deref().unwrap_or("RS256").parse().map_err(ApiError::invalid)?;
    let registration = ApiRegistration {
        name: body.name,
        team_id: body.team_id,
        audience: body.audience,
        scopes: body.scopes,
        signing,
        token_lifetime_secs: body.token_lifetime_secs,
    };
    let created = call(&req, &state, auth, move |conn, caller, state| {
        apis::register_api(conn, &state.sealer, caller, registration, state.settings.access_token_ttl_secs)
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

async fn list_apis(req: HttpRequest, state: Data, auth: ApiKeyAuth) -> Reply {
    call(&req, &state, auth, |conn, caller, _| apis::list_apis(conn, caller)).await.map(list)
}

async fn get_api(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    let api = call(&req, &state, auth, move |conn, caller, _| apis::get_api(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(api))
}

async fn update_api(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    id: web::Path<String>,
    body: web::Json<ApiUpdate>,
) -> Reply {
    let update = body.into_inner();
    let api = call(&req, &state, auth, move |conn, caller, _| apis::update_api(conn, caller, &id, update)).await?;
    Ok(HttpResponse::Ok().json(api))
}

async fn delete_api(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| apis::delete_api(conn, caller, &id)).await.map(no_content)
}

// ---- users ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    name: Option<String>,
    password: SecretString,
    role: Option<String>,
}

async fn create_user(req: HttpRequest, state: Data, auth: ApiKeyAuth, body: web::Json<NewUser>) -> Reply {
    let body = body.into_inner();
    let registration =
        UserRegistration { email: body.email, name: body.name, password: body.password, role: body.role };
    let user = call(&req, &state, auth, move |conn, caller, state| {
        users::register_user(conn, &state.passwords, caller, registration)
    })
    .await?;
    Ok(HttpResponse::Created().json(user))
}

async fn invite_user(req: HttpRequest, state: Data, auth: ApiKeyAuth, body: web::Json<Invitation>) -> Reply {
    let invitation = body.into_inner();
    let invited = call(&req, &state, auth, move |conn, caller, state| {
        users::invite_user(conn, &state.hasher, &state.issuer, caller, invitation)
    })
    .await?;
    Ok(HttpResponse::Created().json(invited))
}

async fn list_users(req: HttpRequest, state: Data, auth: ApiKeyAuth) -> Reply {
    call(&req, &state, auth, |conn, caller, _| users::list_users(conn, caller)).await.map(list)
}

async fn get_user(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    let user = call(&req, &state, auth, move |conn, caller, _| users::get_user(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn update_user(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    id: web::Path<String>,
    body: web::Json<UserUpdate>,
) -> Reply {
    let update = body.into_inner();
    let user = call(&req, &state, auth, move |conn, caller, _| users::update_user(conn, caller, &id, update)).await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn change_user(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: String, change: Lifecycle) -> Reply {
    let user =
        call(&req, &state, auth, move |conn, caller, _| users::change_lifecycle(conn, caller, &id, change)).await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn deactivate_user(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    change_user(req, state, auth, id.into_inner(), Lifecycle::Deactivate).await
}

async fn reactivate_user(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    change_user(req, state, auth, id.into_inner(), Lifecycle::Reactivate).await
}

async fn delete_user(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    change_user(req, state, auth, id.into_inner(), Lifecycle::Delete).await.map(|_| HttpResponse::NoContent().finish())
}

// ---- teams ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamBody {
    name: String,
}

async fn create_team(req: HttpRequest, state: Data, auth: ApiKeyAuth, body: web::Json<TeamBody>) -> Reply {
    let name = body.into_inner().name;
    let team = call(&req, &state, auth, move |conn, caller, _| teams::create_team(conn, caller, &name)).await?;
    Ok(HttpResponse::Created().json(team))
}

async fn list_teams(req: HttpRequest, state: Data, auth: ApiKeyAuth) -> Reply {
    call(&req, &state, auth, |conn, caller, _| teams::list_teams(conn, caller)).await.map(list)
}

async fn get_team(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    let team = call(&req, &state, auth, move |conn, caller, _| teams::get_team(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(team))
}

async fn rename_team(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    id: web::Path<String>,
    body: web::Json<TeamBody>,
) -> Reply {
    let name = body.into_inner().name;
    let team = call(&req, &state, auth, move |conn, caller, _| teams::rename(conn, caller, &id, &name)).await?;
    Ok(HttpResponse::Ok().json(team))
}

async fn delete_team(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| teams::delete_team(conn, caller, &id)).await.map(no_content)
}

async fn list_members(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| teams::members(conn, caller, &id)).await.map(list)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    role: TeamRole,
}

async fn put_member(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    path: web::Path<(String, String)>,
    body: web::Json<MemberBody>,
) -> Reply {
    let (team, user) = path.into_inner();
    let role = body.role;
    call(&req, &state, auth, move |conn, caller, _| teams::set_member(conn, caller, &team, &user, role)).await.map(list)
}

async fn remove_member(req: HttpRequest, state: Data, auth: ApiKeyAuth, path: web::Path<(String, String)>) -> Reply {
    let (team, user) = path.into_inner();
    call(&req, &state, auth, move |conn, caller, _| teams::remove_member(conn, caller, &team, &user))
        .await
        .map(no_content)
}

// ---- API keys ----

async fn create_api_key(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    body: web::Json<api_keys::KeyRequest>,
) -> Reply {
    let request = body.into_inner();
    let created = call(&req, &state, auth, move |conn, caller, state| {
        api_keys::create_key(conn, &state.hasher, state.settings.environment, caller, request)
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

async fn list_api_keys(req: HttpRequest, state: Data, auth: ApiKeyAuth) -> Reply {
    call(&req, &state, auth, |conn, caller, _| api_keys::list_keys(conn, caller)).await.map(list)
}

async fn get_api_key(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    let key = call(&req, &state, auth, move |conn, caller, _| api_keys::get_key(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(key))
}

async fn rotate_api_key(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    id: web::Path<String>,
    body: Option<web::Json<Rotation>>,
) -> Reply {
    let grace = Rotation::grace(body);
    let rotated = call(&req, &state, auth, move |conn, caller, state| {
        api_keys::rotate_key(conn, &state.hasher, state.settings.environment, caller, &id, grace)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

async fn delete_api_key(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| api_keys::delete_key(conn, caller, &id)).await.map(no_content)
}

// ---- consents ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentQuery {
    user_id: Option<String>,
}

async fn list_consents(req: HttpRequest, state: Data, auth: ApiKeyAuth, query: web::Query<ConsentQuery>) -> Reply {
    let user = query.into_inner().user_id;
    call(&req, &state, auth, move |conn, caller, _| consents::list_consents(conn, caller, user.as_deref()))
        .await
        .map(list)
}

async fn revoke_consent(req: HttpRequest, state: Data, auth: ApiKeyAuth, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| consents::revoke_consent(conn, caller, &id)).await.map(no_content)
}

// ---- signing keys ----

async fn list_signing_keys(req: HttpRequest, state: Data, auth: ApiKeyAuth) -> Reply {
    call(&req, &state, auth, |conn, caller, _| keys::list_signing_keys(conn, caller)).await.map(list)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRotation {
    algorithm: Option<String>,
}

async fn rotate_signing_key(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    body: Option<web::Json<KeyRotation>>,
) -> Reply {
    let algorithm: SigningAlgorithm = match body.and_then(|b| b.into_inner().algorithm) {
        Some(name) => name.parse().map_err(|_| {
            ApiError::invalid(format!("unknown signing algorithm `{name}` (expected RS256, ES256 or EdDSA)"))
        })?,
        None => SigningAlgorithm::RS256,
    };
    let rotated = call(&req, &state, auth, move |conn, caller, state| {
        let settings = &state.settings;
        keys::rotate_signing_key(
            conn,
            &state.sealer,
            caller,
            algorithm,
            settings.access_token_ttl_secs,
            settings.key_refresh_secs,
        )
    })
    .await?;
    // This instance signs with the new key at once; the others within `key_refresh_secs`.
    state.reload_keys().await?;
    Ok(HttpResponse::Created().json(rotated))
}

// ---- audit log ----

async fn list_audit_log(
    req: HttpRequest,
    state: Data,
    auth: ApiKeyAuth,
    query: web::Query<audit::AuditQuery>,
) -> Reply {
    let query = query.into_inner();
    let page = call(&req, &state, auth, move |conn, caller, _| audit::list(conn, caller, query)).await?;
    Ok(HttpResponse::Ok().json(page))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    use Method as M;
    cfg.service(routes(
        "/clients",
        vec![(M::GET, web::get().to(list_clients)), (M::POST, web::post().to(create_client))],
    ))
    .service(routes(
        "/clients/{client_id}",
        vec![
            (M::GET, web::get().to(get_client)),
            (M::PATCH, web::patch().to(update_client)),
            (M::DELETE, web::delete().to(delete_client)),
        ],
    ))
    .service(routes("/clients/{client_id}/rotate-secret", vec![(M::POST, web::post().to(rotate_client_secret))]))
    .service(routes("/apis", vec![(M::GET, web::get().to(list_apis)), (M::POST, web::post().to(create_api))]))
    .service(routes(
        "/apis/{id}",
        vec![
            (M::GET, web::get().to(get_api)),
            (M::PATCH, web::patch().to(update_api)),
            (M::DELETE, web::delete().to(delete_api)),
        ],
    ))
    .service(routes("/users", vec![(M::GET, web::get().to(list_users)), (M::POST, web::post().to(create_user))]))
    .service(routes("/users/invitations", vec![(M::POST, web::post().to(invite_user))]))
    .service(routes(
        "/users/{id}",
        vec![
            (M::GET, web::get().to(get_user)),
            (M::PATCH, web::patch().to(update_user)),
            (M::DELETE, web::delete().to(delete_user)),
        ],
    ))
    .service(routes("/users/{id}/deactivate", vec![(M::POST, web::post().to(deactivate_user))]))
    .service(routes("/users/{id}/reactivate", vec![(M::POST, web::post().to(reactivate_user))]))
    .service(routes("/teams", vec![(M::GET, web::get().to(list_teams)), (M::POST, web::post().to(create_team))]))
    .service(routes(
        "/teams/{id}",
        vec![
            (M::GET, web::get().to(get_team)),
            (M::PATCH, web::patch().to(rename_team)),
            (M::DELETE, web::delete().to(delete_team)),
        ],
    ))
    .service(routes("/teams/{id}/members", vec![(M::GET, web::get().to(list_members))]))
    .service(routes(
        "/teams/{id}/members/{user_id}",
        vec![(M::PUT, web::put().to(put_member)), (M::DELETE, web::delete().to(remove_member))],
    ))
    .service(routes(
        "/api-keys",
        vec![(M::GET, web::get().to(list_api_keys)), (M::POST, web::post().to(create_api_key))],
    ))
    .service(routes(
        "/api-keys/{id}",
        vec![(M::GET, web::get().to(get_api_key)), (M::DELETE, web::delete().to(delete_api_key))],
    ))
    .service(routes("/api-keys/{id}/rotate", vec![(M::POST, web::post().to(rotate_api_key))]))
    .service(routes("/consents", vec![(M::GET, web::get().to(list_consents))]))
    .service(routes("/consents/{id}", vec![(M::DELETE, web::delete().to(revoke_consent))]))
    .service(routes("/signing-keys", vec![(M::GET, web::get().to(list_signing_keys))]))
    .service(routes("/signing-keys/rotate", vec![(M::POST, web::post().to(rotate_signing_key))]))
    .service(routes("/audit-log", vec![(M::GET, web::get().to(list_audit_log))]));
}
