//! The management API's resources: clients, APIs, users, teams, API keys, consents, signing
//! keys and the audit log. Each handler parses its input and calls one `manage` function.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::TimeDelta;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::openapi::{Refusals, TargetRefusals};
use super::{Body, OptionalJson, call, read};
use crate::access::TeamRole;
use crate::domain::ApiSigning;
use crate::domain::SigningAlgorithm;
use crate::domain::{DisplayName, GrantType, OptionalDisplayName, Scopes};
use crate::error::{AppError, ErrorBody};
use crate::http::routes;
use crate::manage::api_keys::{ApiKeyView, CreatedApiKey};
use crate::manage::apis::{ApiRegistration, ApiUpdate};
use crate::manage::apis::{ApiView, RegisteredApi};
use crate::manage::audit::AuditPage;
use crate::manage::clients::{ClientRegistration, ClientUpdate};
use crate::manage::clients::{ClientView, RegisteredClient};
use crate::manage::consents::ConsentView;
use crate::manage::second_factors::{self, SignInPolicy};
use crate::manage::signing_keys::{RotatedKey, SigningKeyView};
use crate::manage::teams::{MemberView, TeamView};
use crate::manage::users::{Invitation, Lifecycle, UserRegistration, UserUpdate};
use crate::manage::users::{InvitedUser, UserView};
use crate::manage::{api_keys, apis, audit, clients, consents, signing_keys, teams, users};
use crate::principal::Principal;
use crate::state::AppState;

type Data = web::Data<AppState>;
type Reply = Result<HttpResponse, ApiError>;

/// A collection: `{"data": [...]}`, so that fields can be added beside it later.
#[derive(Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Rotation {
    /// 0 (the old one stops at once) to 604800 (7 days).
    #[serde(default, deserialize_with = "crate::domain::whole_number")]
    #[schema(minimum = 0, maximum = 604_800)]
    grace_period_secs: i64,
}

impl Rotation {
    fn grace(body: OptionalJson<Rotation>) -> TimeDelta {
        let seconds = body.0.map_or(0, |b| b.grace_period_secs);
        // Beyond chrono's range is beyond the longest grace too, which `manage` refuses.
        TimeDelta::try_seconds(seconds).unwrap_or(TimeDelta::MAX)
    }
}

// ---- clients ----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewClient {
    #[schema(value_type = DisplayName)]
    name: String,
    team_id: Option<String>,
    #[schema(min_items = 1, value_type = Vec<GrantType>)]
    grant_types: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Vec<Scopes>)]
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
    /// `client_secret_basic` (default) or `client_secret_post` for a confidential client,
    /// `client_secret_jwt` (HS256 JWTs with its secret, kept sealed) or `private_key_jwt`
    /// (JWTs signed with a key of `jwks`, no secret); `none` for a public one.
    #[schema(pattern = "^(client_secret_basic|client_secret_post|client_secret_jwt|private_key_jwt|none)$")]
    token_endpoint_auth_method: Option<String>,
    /// A private_key_jwt client's public keys: a JWK Set of RSA, P-256 or Ed25519 keys;
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// or the https URL where it publishes them (fetched with a timeout and size limit, cached,
    /// never from a private address unless the operator allows it).
    jwks_uri: Option<String>,
    /// Whether the client may present JWTs that name a user, within what that user
    /// consented to. Only a tenant owner allows it.
    #[serde(default)]
    acts_for_users: bool,
    /// Seconds after a rotation in which a retried refresh (same token, same client, same
    /// request) gets the same answer instead of revoking the grant; 0 turns retries off.
    #[schema(minimum = 0, maximum = 300, default = 30)]
    refresh_retry_window_secs: Option<i64>,
    /// Tenant permissions of the client's own service principal (`AUDIT_LOG_READ`,
    /// `clients:read` …): what its client-credentials tokens for the management API may do,
    /// within their scopes. Only a tenant owner grants them.
    #[serde(default)]
    permissions: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", summary = "Register a client; the secret is in this answer only", request_body = NewClient, responses((status = 201, body = RegisteredClient), TargetRefusals))]
async fn create_client(req: HttpRequest, state: Data, auth: Principal, body: Body<NewClient>) -> Reply {
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
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        permissions: body.permissions,
        jwks: body.jwks,
        jwks_uri: body.jwks_uri,
        acts_for_users: body.acts_for_users,
        refresh_retry_window_secs: body.refresh_retry_window_secs,
    };
    let created = call(&req, &state, auth, move |conn, caller, state| {
        clients::register_client(conn, &state.hasher, &state.sealer, caller, registration)
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(get, path = "/api/v1/clients", tag = "clients", summary = "The clients in reach", responses((status = 200, body = List<ClientView>), Refusals))]
async fn list_clients(req: HttpRequest, state: Data, auth: Principal) -> Reply {
    call(&req, &state, auth, |conn, caller, _| clients::list_clients(conn, caller)).await.map(list)
}

#[utoipa::path(get, path = "/api/v1/clients/{client_id}", tag = "clients", summary = "A client (never its secret)", params(("client_id" = String, Path, description = "the OAuth client_id")), responses((status = 200, body = ClientView), TargetRefusals))]
async fn get_client(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    let id = id.into_inner();
    let client =
        read(&req, &state, auth, |caller, state| clients::get_kept_client(&state.caches.clients, caller, &id), {
            let id = id.clone();
            move |conn, caller, state| clients::get_client_keeping(conn, &state.caches.clients, caller, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(client))
}

#[utoipa::path(patch, path = "/api/v1/clients/{client_id}", tag = "clients", summary = "Change a client's settings", params(("client_id" = String, Path, description = "the OAuth client_id")), request_body = ClientUpdate, responses((status = 200, body = ClientView), (status = 409, description = "the built-in command-line client (`latchkey-cli`) cannot be changed", body = ErrorBody), TargetRefusals))]
async fn update_client(
    req: HttpRequest,
    state: Data,
    auth: Principal,
    id: web::Path<String>,
    body: Body<ClientUpdate>,
) -> Reply {
    let update = body.into_inner();
    let client =
        call(&req, &state, auth, move |conn, caller, _| clients::update_client(conn, caller, &id, update)).await?;
    Ok(HttpResponse::Ok().json(client))
}

#[utoipa::path(delete, path = "/api/v1/clients/{client_id}", tag = "clients", summary = "Delete a client with its codes, refresh tokens and consents", params(("client_id" = String, Path, description = "the OAuth client_id")), responses((status = 204), (status = 409, description = "the built-in command-line client (`latchkey-cli`) cannot be deleted", body = ErrorBody), TargetRefusals))]
async fn delete_client(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| clients::delete_client(conn, caller, &id)).await.map(no_content)
}

#[utoipa::path(post, path = "/api/v1/clients/{client_id}/rotate-secret", tag = "clients", summary = "A new secret; the old one works for the grace period", params(("client_id" = String, Path, description = "the OAuth client_id")), request_body = Option<Rotation>, responses((status = 200, body = RegisteredClient), TargetRefusals))]
async fn rotate_client_secret(
    req: HttpRequest,
    state: Data,
    auth: Principal,
    id: web::Path<String>,
    body: OptionalJson<Rotation>,
) -> Reply {
    let grace = Rotation::grace(body);
    let rotated = call(&req, &state, auth, move |conn, caller, state| {
        clients::rotate_client_secret(conn, &state.hasher, &state.sealer, caller, &id, grace)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

// ---- APIs ----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewApi {
    #[schema(value_type = Option<DisplayName>)]
    name: Option<String>,
    team_id: Option<String>,
    /// An absolute URI, conventionally the API's base URL.
    #[schema(format = "uri")]
    audience: String,
    #[serde(default)]
    #[schema(value_type = Vec<Scopes>)]
    scopes: Vec<String>,
    /// RS256 (default), ES256, EdDSA, or HS256 with a secret shared with this API.
    #[schema(pattern = "^(RS256|ES256|EdDSA|HS256)$")]
    signing_alg: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::optional_whole_number")]
    #[schema(minimum = 60, maximum = 86_400)]
    token_lifetime_secs: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/apis", tag = "apis", summary = "Register an API (resource server); an HS256 secret is in this answer only", request_body = NewApi, responses((status = 201, body = RegisteredApi), (status = 409, description = "the audience is taken", body = ErrorBody), TargetRefusals))]
async fn create_api(req: HttpRequest, state: Data, auth: Principal, body: Body<NewApi>) -> Reply {
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

#[utoipa::path(get, path = "/api/v1/apis", tag = "apis", summary = "The APIs in reach", responses((status = 200, body = List<ApiView>), Refusals))]
async fn list_apis(req: HttpRequest, state: Data, auth: Principal) -> Reply {
    call(&req, &state, auth, |conn, caller, _| apis::list_apis(conn, caller)).await.map(list)
}

#[utoipa::path(get, path = "/api/v1/apis/{id}", tag = "apis", summary = "An API", params(("id" = String, Path, description = "the API's id")), responses((status = 200, body = ApiView), TargetRefusals))]
async fn get_api(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    let api = call(&req, &state, auth, move |conn, caller, _| apis::get_api(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(api))
}

#[utoipa::path(patch, path = "/api/v1/apis/{id}", tag = "apis", summary = "Change an API's name, scopes or token lifetime", params(("id" = String, Path, description = "the API's id")), request_body = ApiUpdate, responses((status = 200, body = ApiView), (status = 409, description = "the built-in management API, which follows Latchkey's own settings", body = ErrorBody), TargetRefusals))]
async fn update_api(
    req: HttpRequest,
    state: Data,
    auth: Principal,
    id: web::Path<String>,
    body: Body<ApiUpdate>,
) -> Reply {
    let update = body.into_inner();
    let api = call(&req, &state, auth, move |conn, caller, _| apis::update_api(conn, caller, &id, update)).await?;
    Ok(HttpResponse::Ok().json(api))
}

#[utoipa::path(delete, path = "/api/v1/apis/{id}", tag = "apis", summary = "Delete an API no client uses", params(("id" = String, Path, description = "the API's id")), responses((status = 204), (status = 409, description = "clients still use it, or it is the built-in management API", body = ErrorBody), TargetRefusals))]
async fn delete_api(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| apis::delete_api(conn, caller, &id)).await.map(no_content)
}

// ---- users ----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(value_type = Option<OptionalDisplayName>)]
    name: Option<String>,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024)]
    password: SecretString,
    /// `member` (default) or `owner`.
    #[schema(pattern = "^(member|owner)$")]
    role: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", summary = "Create a user with a password", request_body = NewUser, responses((status = 201, body = UserView), (status = 409, description = "the email is taken", body = ErrorBody), (status = 503, description = "too many passwords being hashed at once; see Retry-After", body = ErrorBody), Refusals))]
async fn create_user(req: HttpRequest, state: Data, auth: Principal, body: Body<NewUser>) -> Reply {
    let body = body.into_inner();
    // Hashed before the database trip, through the bounded door: a flood of creations
    // queues for the hasher instead of holding connections and memory.
    let password =
        state.passwords.hash(body.password).await.map_err(AppError::from)?.map_err(ApiError::invalid_reason)?;
    let registration = UserRegistration { email: body.email, name: body.name, password, role: body.role };
    let user =
        call(&req, &state, auth, move |conn, caller, _| users::register_user(conn, caller, registration)).await?;
    Ok(HttpResponse::Created().json(user))
}

#[utoipa::path(post, path = "/api/v1/users/invitations", tag = "users", summary = "Invite a user; the invitation link is in this answer only", request_body = Invitation, responses((status = 201, body = InvitedUser), (status = 409, description = "the email is taken", body = ErrorBody), Refusals))]
async fn invite_user(req: HttpRequest, state: Data, auth: Principal, body: Body<Invitation>) -> Reply {
    let invitation = body.into_inner();
    let invited = call(&req, &state, auth, move |conn, caller, state| {
        users::invite_user(conn, &state.hasher, &state.issuer, caller, invitation)
    })
    .await?;
    Ok(HttpResponse::Created().json(invited))
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", summary = "The users in reach", responses((status = 200, body = List<UserView>), Refusals))]
async fn list_users(req: HttpRequest, state: Data, auth: Principal) -> Reply {
    call(&req, &state, auth, |conn, caller, _| users::list_users(conn, caller)).await.map(list)
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", summary = "A user", params(("id" = String, Path, description = "the user's id")), responses((status = 200, body = UserView), TargetRefusals))]
async fn get_user(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    let user = call(&req, &state, auth, move |conn, caller, _| users::get_user(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", summary = "Change a user's name or role", params(("id" = String, Path, description = "the user's id")), request_body = UserUpdate, responses((status = 200, body = UserView), (status = 409, description = "the tenant's last owner credential would go", body = ErrorBody), TargetRefusals))]
async fn update_user(
    req: HttpRequest,
    state: Data,
    auth: Principal,
    id: web::Path<String>,
    body: Body<UserUpdate>,
) -> Reply {
    let update = body.into_inner();
    let user = call(&req, &state, auth, move |conn, caller, _| users::update_user(conn, caller, &id, update)).await?;
    Ok(HttpResponse::Ok().json(user))
}

async fn change_user(req: HttpRequest, state: Data, auth: Principal, id: String, change: Lifecycle) -> Reply {
    let user =
        call(&req, &state, auth, move |conn, caller, _| users::change_lifecycle(conn, caller, &id, change)).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", tag = "users", summary = "Sign a user out everywhere and stop their personal keys", params(("id" = String, Path, description = "the user's id")), responses((status = 200, body = UserView), (status = 409, description = "the user is not active, or is the tenant's last active owner", body = ErrorBody), TargetRefusals))]
async fn deactivate_user(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    change_user(req, state, auth, id.into_inner(), Lifecycle::Deactivate).await
}

#[utoipa::path(post, path = "/api/v1/users/{id}/reactivate", tag = "users", summary = "Let a deactivated user back in", params(("id" = String, Path, description = "the user's id")), responses((status = 200, body = UserView), (status = 409, description = "the user is not deactivated", body = ErrorBody), TargetRefusals))]
async fn reactivate_user(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    change_user(req, state, auth, id.into_inner(), Lifecycle::Reactivate).await
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", summary = "Delete a user for good: their personal keys never work again", params(("id" = String, Path, description = "the user's id")), responses((status = 204), (status = 409, description = "the tenant's last owner credential would go", body = ErrorBody), TargetRefusals))]
async fn delete_user(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    change_user(req, state, auth, id.into_inner(), Lifecycle::Delete).await.map(|_| HttpResponse::NoContent().finish())
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/second-factors", tag = "users", summary = "Reset a user's two-step sign-in (owners only): their authenticator app, passkeys and recovery codes stop working, and they are told by email", params(("id" = String, Path, description = "the user's id")), responses((status = 204), (status = 409, description = "the user has no second factor", body = ErrorBody), TargetRefusals))]
async fn reset_second_factors(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    let user = call(&req, &state, auth, move |conn, caller, _| second_factors::reset_for(conn, caller, &id)).await?;
    state.mailer.send_later(second_factors::reset_notice(&state.issuer, &user));
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/sign-in-policy", tag = "users", summary = "The sign-in policy: whether everyone must sign in with a second factor", responses((status = 200, body = SignInPolicy), Refusals))]
async fn get_sign_in_policy(req: HttpRequest, state: Data, auth: Principal) -> Reply {
    let policy = call(&req, &state, auth, |conn, caller, _| second_factors::sign_in_policy(conn, caller)).await?;
    Ok(HttpResponse::Ok().json(policy))
}

#[utoipa::path(put, path = "/api/v1/sign-in-policy", tag = "users", summary = "Require a second factor of everyone, or make it optional (owners only); it binds sign-ins from now on", request_body = SignInPolicy, responses((status = 200, body = SignInPolicy), Refusals))]
async fn put_sign_in_policy(req: HttpRequest, state: Data, auth: Principal, body: Body<SignInPolicy>) -> Reply {
    let policy = body.into_inner();
    let policy =
        call(&req, &state, auth, move |conn, caller, _| second_factors::set_sign_in_policy(conn, caller, policy))
            .await?;
    Ok(HttpResponse::Ok().json(policy))
}

// ---- teams ----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TeamBody {
    #[schema(value_type = DisplayName)]
    name: String,
}

#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", summary = "Create a team", request_body = TeamBody, responses((status = 201, body = TeamView), (status = 409, description = "the name is taken", body = ErrorBody), Refusals))]
async fn create_team(req: HttpRequest, state: Data, auth: Principal, body: Body<TeamBody>) -> Reply {
    let name = body.into_inner().name;
    let team = call(&req, &state, auth, move |conn, caller, _| teams::create_team(conn, caller, &name)).await?;
    Ok(HttpResponse::Created().json(team))
}

#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", summary = "The teams in reach", responses((status = 200, body = List<TeamView>), Refusals))]
async fn list_teams(req: HttpRequest, state: Data, auth: Principal) -> Reply {
    call(&req, &state, auth, |conn, caller, _| teams::list_teams(conn, caller)).await.map(list)
}

#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", summary = "A team", params(("id" = String, Path, description = "the team's id")), responses((status = 200, body = TeamView), TargetRefusals))]
async fn get_team(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    let team = call(&req, &state, auth, move |conn, caller, _| teams::get_team(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(team))
}

#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", summary = "Rename a team", params(("id" = String, Path, description = "the team's id")), request_body = TeamBody, responses((status = 200, body = TeamView), (status = 409, description = "the name is taken", body = ErrorBody), TargetRefusals))]
async fn rename_team(
    req: HttpRequest,
    state: Data,
    auth: Principal,
    id: web::Path<String>,
    body: Body<TeamBody>,
) -> Reply {
    let name = body.into_inner().name;
    let team = call(&req, &state, auth, move |conn, caller, _| teams::rename(conn, caller, &id, &name)).await?;
    Ok(HttpResponse::Ok().json(team))
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "teams", summary = "Delete a team, its memberships and its keys", params(("id" = String, Path, description = "the team's id")), responses((status = 204), TargetRefusals))]
async fn delete_team(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| teams::delete_team(conn, caller, &id)).await.map(no_content)
}

#[utoipa::path(get, path = "/api/v1/teams/{id}/members", tag = "teams", summary = "A team's members and their roles", params(("id" = String, Path, description = "the team's id")), responses((status = 200, body = List<MemberView>), TargetRefusals))]
async fn list_members(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| teams::members(conn, caller, &id)).await.map(list)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    role: TeamRole,
}

#[utoipa::path(put, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", summary = "Add a member or change their role", params(("id" = String, Path, description = "the team's id"), ("user_id" = String, Path, description = "the user's id")), request_body = MemberBody, responses((status = 200, body = List<MemberView>), TargetRefusals))]
async fn put_member(
    req: HttpRequest,
    state: Data,
    auth: Principal,
    path: web::Path<(String, String)>,
    body: Body<MemberBody>,
) -> Reply {
    let (team, user) = path.into_inner();
    let role = body.0.role;
    call(&req, &state, auth, move |conn, caller, _| teams::set_member(conn, caller, &team, &user, role)).await.map(list)
}

#[utoipa::path(delete, path = "/api/v1/teams/{id}/members/{user_id}", tag = "teams", summary = "Remove a member", params(("id" = String, Path, description = "the team's id"), ("user_id" = String, Path, description = "the user's id")), responses((status = 204), TargetRefusals))]
async fn remove_member(req: HttpRequest, state: Data, auth: Principal, path: web::Path<(String, String)>) -> Reply {
    let (team, user) = path.into_inner();
    call(&req, &state, auth, move |conn, caller, _| teams::remove_member(conn, caller, &team, &user))
        .await
        .map(no_content)
}

// ---- API keys ----

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", summary = "Create a key; the key is in this answer only", request_body = api_keys::KeyRequest, responses((status = 201, body = CreatedApiKey), TargetRefusals))]
async fn create_api_key(req: HttpRequest, state: Data, auth: Principal, body: Body<api_keys::KeyRequest>) -> Reply {
    let request = body.into_inner();
    let created = call(&req, &state, auth, move |conn, caller, state| {
        api_keys::create_key(conn, &state.hasher, state.settings.environment, caller, request)
    })
    .await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", summary = "The keys in reach: prefix and last four only", responses((status = 200, body = List<ApiKeyView>), Refusals))]
async fn list_api_keys(req: HttpRequest, state: Data, auth: Principal) -> Reply {
    call(&req, &state, auth, |conn, caller, _| api_keys::list_keys(conn, caller)).await.map(list)
}

#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys", summary = "A key (never the key itself)", params(("id" = String, Path, description = "the key's id")), responses((status = 200, body = ApiKeyView), TargetRefusals))]
async fn get_api_key(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    let key = call(&req, &state, auth, move |conn, caller, _| api_keys::get_key(conn, caller, &id)).await?;
    Ok(HttpResponse::Ok().json(key))
}

#[utoipa::path(post, path = "/api/v1/api-keys/{id}/rotate", tag = "api-keys", summary = "A new key like this one; the old one works for the grace period", params(("id" = String, Path, description = "the key's id")), request_body = Option<Rotation>, responses((status = 200, body = CreatedApiKey), (status = 409, description = "already being rotated out sooner", body = ErrorBody), TargetRefusals))]
async fn rotate_api_key(
    req: HttpRequest,
    state: Data,
    auth: Principal,
    id: web::Path<String>,
    body: OptionalJson<Rotation>,
) -> Reply {
    let grace = Rotation::grace(body);
    let rotated = call(&req, &state, auth, move |conn, caller, state| {
        api_keys::rotate_key(conn, &state.hasher, state.settings.environment, caller, &id, grace)
    })
    .await?;
    Ok(HttpResponse::Ok().json(rotated))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", summary = "Revoke a key at once", params(("id" = String, Path, description = "the key's id")), responses((status = 204), (status = 409, description = "the tenant's last owner credential would go", body = ErrorBody), TargetRefusals))]
async fn delete_api_key(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| api_keys::delete_key(conn, caller, &id)).await.map(no_content)
}

// ---- consents ----

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ConsentQuery {
    user_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/consents", tag = "consents", summary = "The consents in reach", params(ConsentQuery), responses((status = 200, body = List<ConsentView>), Refusals))]
async fn list_consents(req: HttpRequest, state: Data, auth: Principal, query: web::Query<ConsentQuery>) -> Reply {
    let user = query.into_inner().user_id;
    call(&req, &state, auth, move |conn, caller, _| consents::list_consents(conn, caller, user.as_deref()))
        .await
        .map(list)
}

#[utoipa::path(delete, path = "/api/v1/consents/{id}", tag = "consents", summary = "Withdraw a consent and revoke the app's tokens for that user", params(("id" = String, Path, description = "the consent's id")), responses((status = 204), TargetRefusals))]
async fn revoke_consent(req: HttpRequest, state: Data, auth: Principal, id: web::Path<String>) -> Reply {
    call(&req, &state, auth, move |conn, caller, _| consents::revoke_consent(conn, caller, &id)).await.map(no_content)
}

// ---- signing keys ----

#[utoipa::path(get, path = "/api/v1/signing-keys", tag = "signing-keys", summary = "The signing keys: active, retired (still published) and expired", responses((status = 200, body = List<SigningKeyView>), Refusals))]
async fn list_signing_keys(req: HttpRequest, state: Data, auth: Principal) -> Reply {
    call(&req, &state, auth, |conn, caller, _| signing_keys::list_signing_keys(conn, caller)).await.map(list)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyRotation {
    /// RS256 unless said.
    #[schema(pattern = "^(RS256|ES256|EdDSA)$")]
    algorithm: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/signing-keys/rotate", tag = "signing-keys", summary = "Make a new key sign; the old one stays published until its tokens expire", request_body = Option<KeyRotation>, responses((status = 201, body = RotatedKey), Refusals))]
async fn rotate_signing_key(req: HttpRequest, state: Data, auth: Principal, body: OptionalJson<KeyRotation>) -> Reply {
    let algorithm: SigningAlgorithm = match body.0.and_then(|b| b.algorithm) {
        Some(name) => name.parse().map_err(|_| {
            ApiError::invalid(format!("unknown signing algorithm `{name}` (expected RS256, ES256 or EdDSA)"))
        })?,
        None => SigningAlgorithm::RS256,
    };
    let rotated = call(&req, &state, auth, move |conn, caller, state| {
        signing_keys::rotate_signing_key(conn, &state.sealer, caller, algorithm, &state.settings)
    })
    .await?;
    // This instance signs with the new key at once; the others within `key_refresh_secs`.
    state.reload_keys().await?;
    Ok(HttpResponse::Created().json(rotated))
}

#[utoipa::path(post, path = "/api/v1/signing-keys/{kid}/withdraw", tag = "signing-keys", summary = "Take a retired key out of the JWKS now: its tokens stop verifying (for a key that leaked)", params(("kid" = String, Path, description = "the key's kid")), responses((status = 200, body = SigningKeyView), (status = 409, description = "the key signs: rotate first", body = ErrorBody), TargetRefusals))]
async fn withdraw_signing_key(req: HttpRequest, state: Data, auth: Principal, kid: web::Path<String>) -> Reply {
    let withdrawn =
        call(&req, &state, auth, move |conn, caller, _| signing_keys::withdraw_signing_key(conn, caller, &kid)).await?;
    // This instance stops publishing and honouring the key at once; the others within
    // `key_refresh_secs`.
    state.reload_keys().await?;
    Ok(HttpResponse::Ok().json(withdrawn))
}

// ---- audit log ----

#[utoipa::path(get, path = "/api/v1/audit-log", tag = "audit-log", summary = "The audit log, newest first, a page at a time", params(audit::AuditQuery), responses((status = 200, body = AuditPage), Refusals))]
async fn list_audit_log(req: HttpRequest, state: Data, auth: Principal, query: web::Query<audit::AuditQuery>) -> Reply {
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
    .service(routes("/users/{id}/second-factors", vec![(M::DELETE, web::delete().to(reset_second_factors))]))
    .service(routes(
        "/sign-in-policy",
        vec![(M::GET, web::get().to(get_sign_in_policy)), (M::PUT, web::put().to(put_sign_in_policy))],
    ))
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
    .service(routes("/signing-keys/{kid}/withdraw", vec![(M::POST, web::post().to(withdraw_signing_key))]))
    .service(routes("/audit-log", vec![(M::GET, web::get().to(list_audit_log))]));
}
