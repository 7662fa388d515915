//! `GET /api/v1/openapi.json`: the OpenAPI 3 document of the management API, generated
//! from the handlers and types themselves, so it cannot drift from the code.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, AuthorizationCode, ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, Scopes,
    SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};

use super::resources;
use crate::access::{Action, Permission};
use crate::domain::Issuer;
use crate::state::AppState;

/// Every operation takes a key, as a bearer token or in `X-User-Token`.
struct ApiKeySecurity;

impl Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some(
            "An API key (sk_live_…, sk_test_…, rk_live_… or rk_test_…), or an access token Latchkey issued \
             for this API's audience"
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "user_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-User-Token",
                "The same credential, in a header of its own",
            ))),
        );
    }
}

/// What a scope of the management API allows, in words.
fn scope_description(permission: Permission) -> String {
    let what = permission.resource.map_or("everything the caller reaches".to_owned(), |r| r.as_str().replace('_', " "));
    match permission.action {
        Action::Read => format!("see {what}"),
        Action::Write => format!("see, create and change {what}"),
        Action::Delete => format!("see and delete {what}"),
        Action::Admin => format!("do anything to {what}, handing out access included"),
    }
}

/// The OAuth 2.0 scheme, with this deployment's endpoints: a user's token through the
/// authorization-code flow acts as the user; a client's through client credentials as the
/// client's service principal. Either is limited to its scopes.
fn oauth2_scheme(issuer: &Issuer) -> SecurityScheme {
    let scopes = || {
        crate::manage::apis::management_scopes()
            .iter()
            .filter_map(|scope| Some((scope.to_owned(), scope_description(scope.parse().ok()?))))
            .collect::<Scopes>()
    };
    let token_url = issuer.endpoint(crate::oauth::TOKEN_PATH);
    let mut oauth2 = OAuth2::new([
        Flow::AuthorizationCode(AuthorizationCode::with_refresh_url(
            issuer.endpoint(crate::oauth::AUTHORIZE_PATH),
            token_url.clone(),
            scopes(),
            token_url.clone(),
        )),
        Flow::ClientCredentials(ClientCredentials::new(token_url, scopes())),
    ]);
    oauth2.description = Some(format!(
        "Access tokens for the audience `{}`: pass it as `resource` (RFC 8707) and register the client for it.",
        issuer.management_api_audience()
    ));
    SecurityScheme::OAuth2(oauth2)
}

/// The document for a deployment: the generated one, with the OAuth 2.0 scheme's real
/// endpoints. Serialised once, on the first request for it: at start it ran half a MiB of
/// code that stayed resident in every server.
pub fn document(issuer: &Issuer) -> Bytes {
    let mut openapi = ManagementApi::openapi();
    openapi.components.get_or_insert_with(Default::default).add_security_scheme("oauth2", oauth2_scheme(issuer));
    openapi.security.get_or_insert_with(Vec::new).push(SecurityRequirement::new("oauth2", Vec::<String>::new()));
    Bytes::from(openapi.to_json().expect("the OpenAPI document serialises"))
}

/// What any operation may answer whatever it does, added to every one: 401 without a good
/// key, and 429 past a rate limit or, for a refused key, past the address's failed
/// authentications.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("401".into()).or_insert_with(|| error_response("missing, invalid or expired key"));
                responses.entry("429".into()).or_insert_with(|| {
                    error_response("rate limit exceeded, or too many refused keys from this address; see Retry-After")
                });
            }
        }
    }
}

/// The refusals of an operation that takes input and checks permission: 400 and 403 (all
/// as [`ErrorBody`](crate::error::ErrorBody); 401 and 429 every operation has).
pub struct Refusals;

/// [`Refusals`], and 404 for an operation on one thing that may not exist or be out of reach.
pub struct TargetRefusals;

fn error_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{Ref, RefOr, ResponseBuilder, content::ContentBuilder};
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", body).build())
}

impl utoipa::IntoResponses for Refusals {
    fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        [("400", "invalid input"), ("403", "visible but not permitted")]
            .into_iter()
            .map(|(status, description)| (status.to_owned(), error_response(description)))
            .collect()
    }
}

impl utoipa::IntoResponses for TargetRefusals {
    fn responses() -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        let mut responses = Refusals::responses();
        responses.insert("404".to_owned(), error_response("not found or out of reach"));
        responses
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Latchkey management API",
        description = "Clients, APIs, users, teams, API keys, consents, signing keys and the audit log. \
            Errors are `{\"error\", \"message\", \"request_id\"}`; responses carry X-RateLimit-Limit, \
            X-RateLimit-Remaining, X-RateLimit-Reset and X-RateLimit-Policy."
    ),
    modifiers(&ApiKeySecurity, &CommonResponses),
    security(("bearer" = []), ("user_token" = [])),
    paths(
        super::current::get_current_api_key,
        super::current::delete_current_api_key,
        super::current::get_me,
        resources::list_clients,
        resources::create_client,
        resources::get_client,
        resources::update_client,
        resources::delete_client,
        resources::rotate_client_secret,
        resources::list_apis,
        resources::create_api,
        resources::get_api,
        resources::update_api,
        resources::delete_api,
        resources::list_users,
        resources::create_user,
        resources::invite_user,
        resources::get_user,
        resources::update_user,
        resources::deactivate_user,
        resources::reactivate_user,
        resources::reset_second_factors,
        resources::get_sign_in_policy,
        resources::put_sign_in_policy,
        resources::delete_user,
        resources::list_teams,
        resources::create_team,
        resources::get_team,
        resources::rename_team,
        resources::delete_team,
        resources::list_members,
        resources::put_member,
        resources::remove_member,
        resources::list_api_keys,
        resources::create_api_key,
        resources::get_api_key,
        resources::rotate_api_key,
        resources::delete_api_key,
        resources::list_consents,
        resources::revoke_consent,
        resources::list_signing_keys,
        resources::rotate_signing_key,
        resources::withdraw_signing_key,
        resources::list_audit_log,
    )
)]
pub struct ManagementApi;

/// Served to anyone, as it describes no tenant's data.
pub async fn get_openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(state.openapi.get_or_init(|| document(&state.issuer)).clone())
}
