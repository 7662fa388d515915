//! Registering OAuth clients.

use std::sync::Arc;

use serde::Serialize;

use chrono::TimeDelta;

use super::Caller;
use crate::access::{Action, Permissions, Resource, Target};
use crate::audit;
use crate::crypto::{Sealer, TokenHasher, random_base62, random_token};
use crate::db::DbConnection;
use crate::db::apis::find_api_by_audience;
use crate::db::changes::Cached;
use crate::db::clients::{
    AUTH_METHOD_NONE, AUTH_METHOD_PRIVATE_KEY_JWT, AUTH_METHOD_SECRET_JWT, Client, ClientChanges, NewClient,
    delete_client as db_delete_client, find_client, insert_client, list_clients as db_list_clients,
    replace_client_secret, update_client as db_update_client,
};
use crate::db::teams::find_team;
use crate::domain::{GrantType, RedirectUri, ResourceUri, Scopes};
use crate::error::AppError;

/// Seconds after a rotation in which a client's retried refresh gets the same answer, unless
/// registered otherwise: long enough for a mobile app's retry after a timeout, short enough
/// that a copied token is still detected at the next rotation.
pub const DEFAULT_REFRESH_RETRY_SECS: i64 = 30;
/// The longest retry window a client may have: the sealed answer lives as long.
pub const MAX_REFRESH_RETRY_SECS: i64 = 300;

/// Latchkey's own command line (`latchkey login`): a public client that may only ask, through
/// the device flow, for an API key a person then chooses and approves. Built in, so that
/// every deployment can be signed in to from a terminal; it holds nothing by itself.
pub const CLI_CLIENT_ID: &str = "latchkey-cli";

/// Registers the command line's client on first start and keeps its one audience, the
/// management API, following the issuer. Safe when several instances start at once.
pub fn ensure_cli_client(conn: &mut DbConnection, management_audience: &str) -> Result<(), AppError> {
    let now = crate::db::now();
    match find_client(conn, CLI_CLIENT_ID)? {
        Some(client) if client.audiences == management_audience => Ok(()),
        Some(_) => Ok(crate::db::clients::set_audiences(conn, CLI_CLIENT_ID, management_audience, now).map(drop)?),
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            crate::db::clients::insert_client_unless_present(
                conn,
                &NewClient {
                    id: &id,
                    tenant_id: crate::db::DEFAULT_TENANT_ID,
                    team_id: None,
                    client_id: CLI_CLIENT_ID,
                    name: "Latchkey command line",
                    secret_hash: None,
                    token_endpoint_auth_method: AUTH_METHOD_NONE,
                    grant_types: GrantType::DeviceCode.as_str(),
                    scopes: "",
                    audiences: management_audience,
                    redirect_uris: "",
                    post_logout_redirect_uris: "",
                    created_at: now,
                    updated_at: now,
                    permissions: "",
                    secret_sealed: None,
                    jwks: None,
                    acts_for_users: false,
                    jwks_uri: None,
                    refresh_retry_secs: 0,
                },
            )?;
            Ok(())
        }
    }
}

fn refuse_built_in(client: &Client) -> Result<(), AppError> {
    if client.client_id == CLI_CLIENT_ID {
        return Err(AppError::Conflict(
            "the command line's client is built in: it can only ask for API keys that a person approves".into(),
        ));
    }
    Ok(())
}

/// What an operator asks for.
#[derive(Debug, Default, Clone)]
pub struct ClientRegistration {
    pub name: String,
    /// The team that owns the client; its members reach it through their role.
    pub team_id: Option<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    /// How a confidential client authenticates: `client_secret_basic` (the default) or
    /// `client_secret_post` (either is accepted), `client_secret_jwt` (HS256 JWTs signed with
    /// its secret, which is then kept sealed) or `private_key_jwt` (JWTs signed with a key of
    /// `jwks`; no secret).
    pub token_endpoint_auth_method: Option<String>,
    /// Tenant permissions of the client's own service principal (what its
    /// client-credentials tokens for the management API may do); only an owner grants them.
    pub permissions: Vec<String>,
    /// A `private_key_jwt` client's public keys (a JWK Set: RSA, P-256 or Ed25519),
    pub jwks: Option<serde_json::Value>,
    /// or where it publishes them (https; fetched, checked and cached when its JWTs arrive).
    pub jwks_uri: Option<String>,
    /// Whether the client may present JWTs naming a user (`sub`), within what that user
    /// consented to; only an owner allows it.
    pub acts_for_users: bool,
    /// Seconds after a rotation in which retrying the refresh returns the same answer
    /// (0 to 300; [`DEFAULT_REFRESH_RETRY_SECS`] when not given; 0 turns retries off).
    pub refresh_retry_window_secs: Option<i64>,
}

/// A client as the management API shows it: never a secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub grant_types: Vec<String>,
    pub scope: String,
    pub audiences: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: String,
    /// What the client's own tokens for the management API may do (`AUDIT_LOG_READ`,
    /// `clients:read` …), within their scopes.
    pub permissions: Vec<String>,
    /// A `private_key_jwt` client's public keys,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// or where it publishes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Whether the client may present JWTs that name a user.
    pub acts_for_users: bool,
    /// Seconds after a rotation in which a retried refresh gets the same answer (0: never).
    pub refresh_retry_window_secs: i64,
    /// Until when the secret replaced by the last rotation still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Latchkey's own command-line client (`latchkey-cli`), which nobody may change.
    pub built_in: bool,
}

impl ClientView {
    /// Whether the client may use refresh tokens (and so has a retry window that matters).
    pub fn refreshes(&self) -> bool {
        self.grant_types.iter().any(|grant| grant == GrantType::RefreshToken.as_str())
    }
}

fn words(stored: &str) -> Vec<String> {
    stored.split(' ').filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

impl From<&Client> for ClientView {
    fn from(client: &Client) -> Self {
        let now = crate::db::now();
        Self {
            client_id: client.client_id.clone(),
            name: client.name.clone(),
            team_id: client.team_id.clone(),
            grant_types: words(&client.grant_types),
            scope: client.scopes.clone(),
            audiences: words(&client.audiences),
            redirect_uris: words(&client.redirect_uris),
            post_logout_redirect_uris: words(&client.post_logout_redirect_uris),
            token_endpoint_auth_method: client.token_endpoint_auth_method.clone(),
            permissions: Permissions::from_stored(&client.permissions).names(),
            jwks: client.jwks.as_deref().and_then(|jwks| serde_json::from_str(jwks).ok()),
            jwks_uri: client.jwks_uri.clone(),
            acts_for_users: client.acts_for_users,
            refresh_retry_window_secs: client.refresh_retry_secs,
            previous_secret_expires_at: client.previous_secret_expires_at.filter(|at| *at > now).map(crate::db::utc),
            created_at: crate::db::utc(client.created_at),
            updated_at: crate::db::utc(client.updated_at),
            built_in: client.client_id == CLI_CLIENT_ID,
        }
    }
}

/// The registered client, with its secret: the only time the secret exists in the clear.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisteredClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl std::ops::Deref for RegisteredClient {
    type Target = ClientView;

    fn deref(&self) -> &ClientView {
        &self.client
    }
}

impl std::fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client", &self.client)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

/// A registration's settings, checked and in stored form.
struct ValidSettings {
    name: String,
    grant_types: String,
    scopes: String,
    audiences: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    permissions: String,
    auth_method: &'static str,
    jwks: Option<String>,
    jwks_uri: Option<String>,
    refresh_retry_secs: i64,
}

fn validate(conn: &mut DbConnection, registration: &ClientRegistration) -> Result<ValidSettings, AppError> {
    let name = super::clean_name(&registration.name, "client")?;
    let mut grants = Vec::new();
    for grant in &registration.grant_types {
        let grant: GrantType = grant.parse().map_err(|e: String| bad(e))?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if grants.is_empty() {
        return Err(bad("a client needs at least one grant type"));
    }
    if registration.public {
        // A public client has no secret, so nothing would authenticate these grants.
        for grant in [GrantType::ClientCredentials, GrantType::TokenExchange, GrantType::JwtBearer] {
            if grants.contains(&grant) {
                return Err(bad(format!("a public client cannot use the {grant} grant")));
            }
        }
    }
    for uri in registration.redirect_uris.iter().chain(&registration.post_logout_redirect_uris) {
        RedirectUri::parse(uri).map_err(|e| bad(format!("redirect URI: {e}")))?;
    }
    if grants.contains(&GrantType::AuthorizationCode) && registration.redirect_uris.is_empty() {
        return Err(bad("the authorization_code grant needs at least one redirect URI"));
    }
    let scopes = Scopes::from_tokens(registration.scopes.iter().map(String::as_str)).map_err(|e| bad(e.to_string()))?;
    let mut audiences: Vec<String> = Vec::new();
    for audience in &registration.audiences {
        let audience = ResourceUri::parse(audience).map_err(|e| bad(format!("audience: {e}")))?;
        if find_api_by_audience(conn, audience.as_str())?.is_none() {
            return Err(bad(format!("no API has the audience `{audience}`; register it first")));
        }
        if !audiences.iter().any(|a| a == audience.as_str()) {
            audiences.push(audience.to_string());
        }
    }
    let unique = |uris: &[String]| {
        let mut out: Vec<&str> = Vec::new();
        for uri in uris {
            if !out.contains(&uri.as_str()) {
                out.push(uri);
            }
        }
        out.join(" ")
    };
    let permissions = Permissions::parse_list(&registration.permissions).map_err(|e| bad(e.to_string()))?;
    if registration.public && !permissions.is_empty() {
        return Err(bad("a public client has no service principal: it cannot hold tenant permissions"));
    }
    let auth_method = match (registration.public, registration.token_endpoint_auth_method.as_deref()) {
        (true, None | Some(AUTH_METHOD_NONE)) => AUTH_METHOD_NONE,
        (true, Some(other)) => {
            return Err(bad(format!("a public client has no credentials: it cannot use `{other}`")));
        }
        (false, None | Some("client_secret_basic")) => "client_secret_basic",
        (false, Some("client_secret_post")) => "client_secret_post",
        (false, Some(AUTH_METHOD_SECRET_JWT)) => AUTH_METHOD_SECRET_JWT,
        (false, Some(AUTH_METHOD_PRIVATE_KEY_JWT)) => AUTH_METHOD_PRIVATE_KEY_JWT,
        (false, Some(other)) => {
            return Err(bad(format!(
                "unknown token_endpoint_auth_method `{other}` (expected client_secret_basic, client_secret_post, \
                 client_secret_jwt or private_key_jwt)"
            )));
        }
    };
    let (jwks, jwks_uri) = match (&registration.jwks, &registration.jwks_uri, auth_method) {
        (Some(jwks), None, AUTH_METHOD_PRIVATE_KEY_JWT) => {
            crate::principal::client_jwt::parse_jwks(jwks).map_err(bad)?;
            (Some(jwks.to_string()), None)
        }
        // The form is checked here; whether the address may be reached, where it resolves,
        // each time the keys are fetched (`remote_jwks`).
        (None, Some(uri), AUTH_METHOD_PRIVATE_KEY_JWT) => {
            (None, Some(crate::remote_jwks::check_uri(uri, true).map_err(bad)?.to_string()))
        }
        (Some(_), Some(_), _) => return Err(bad("give jwks or jwks_uri, not both")),
        (None, None, AUTH_METHOD_PRIVATE_KEY_JWT) => {
            return Err(bad(
                "a private_key_jwt client needs jwks (its public keys) or jwks_uri (where it publishes them)",
            ));
        }
        (Some(_), _, _) | (_, Some(_), _) => return Err(bad("jwks and jwks_uri are for private_key_jwt clients only")),
        (None, None, _) => (None, None),
    };
    if grants.contains(&GrantType::JwtBearer)
        && !matches!(auth_method, AUTH_METHOD_SECRET_JWT | AUTH_METHOD_PRIVATE_KEY_JWT)
    {
        return Err(bad(format!(
            "the {} grant takes JWTs the client signs: register it with token_endpoint_auth_method \
             client_secret_jwt or private_key_jwt",
            GrantType::JwtBearer
        )));
    }
    if registration.acts_for_users && registration.public {
        return Err(bad("a public client cannot sign JWTs, so it cannot act for users with them"));
    }
    let refresh_retry_secs = registration.refresh_retry_window_secs.unwrap_or(DEFAULT_REFRESH_RETRY_SECS);
    if !(0..=MAX_REFRESH_RETRY_SECS).contains(&refresh_retry_secs) {
        return Err(bad(format!(
            "refresh_retry_window_secs must be between 0 (no retries) and {MAX_REFRESH_RETRY_SECS} seconds"
        )));
    }
    Ok(ValidSettings {
        auth_method,
        jwks,
        jwks_uri,
        permissions: permissions.to_stored(),
        name,
        grant_types: grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" "),
        scopes: scopes.to_string(),
        audiences: audiences.join(" "),
        redirect_uris: unique(&registration.redirect_uris),
        post_logout_redirect_uris: unique(&registration.post_logout_redirect_uris),
        refresh_retry_secs,
    })
}

/// The team a new thing is to belong to must exist (the caller's reach was checked first,
/// so this reveals nothing the caller may not see).
pub(crate) fn existing_team(conn: &mut DbConnection, team: Option<&str>) -> Result<(), AppError> {
    match team {
        Some(team) if find_team(conn, team)?.is_none() => Err(bad(format!("there is no team `{team}`"))),
        _ => Ok(()),
    }
}

pub fn register_client(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    sealer: &Sealer,
    caller: &Caller<'_>,
    registration: ClientRegistration,
) -> Result<RegisteredClient, AppError> {
    caller.check_create(Resource::Clients, registration.team_id.as_deref())?;
    existing_team(conn, registration.team_id.as_deref())?;
    let settings = validate(conn, &registration)?;
    if !settings.permissions.is_empty() {
        caller.require_owner("grant a client tenant permissions")?;
    }
    if registration.acts_for_users {
        caller.require_owner("let a client act for users")?;
    }
    let client_id = random_base62(24);
    let id = uuid::Uuid::new_v4().to_string();
    let auth_method = settings.auth_method;
    // A private_key_jwt client proves itself with its keys alone.
    let secret = (!registration.public && auth_method != AUTH_METHOD_PRIVATE_KEY_JWT).then(random_token::<32>);
    let secret_hash = secret.as_deref().map(|s| hasher.hash(s));
    let sealed = secret
        .as_deref()
        .filter(|_| auth_method == AUTH_METHOD_SECRET_JWT)
        .map(|s| sealer.seal(s.as_bytes(), &Client::seal_context(&id)));
    let now = crate::db::now();
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        insert_client(
            conn,
            &NewClient {
                id: &id,
                tenant_id: crate::db::DEFAULT_TENANT_ID,
                team_id: registration.team_id.as_deref(),
                client_id: &client_id,
                name: &settings.name,
                secret_hash: secret_hash.as_ref().map(|h| h.as_str()),
                token_endpoint_auth_method: auth_method,
                grant_types: &settings.grant_types,
                scopes: &settings.scopes,
                audiences: &settings.audiences,
                redirect_uris: &settings.redirect_uris,
                post_logout_redirect_uris: &settings.post_logout_redirect_uris,
                created_at: now,
                updated_at: now,
                permissions: &settings.permissions,
                secret_sealed: sealed.as_deref(),
                jwks: settings.jwks.as_deref(),
                acts_for_users: registration.acts_for_users,
                jwks_uri: settings.jwks_uri.as_deref(),
                refresh_retry_secs: settings.refresh_retry_secs,
            },
        )?;
        audit::record(
            conn,
            &caller
                .audit
                .change("client.created")
                .target("client", &client_id)
                .details(serde_json::json!({ "name": settings.name, "grant_types": settings.grant_types })),
        )?;
        Ok(())
    })?;
    let client = find_client(conn, &client_id)?.ok_or(AppError::NotFound)?;
    Ok(RegisteredClient { client: ClientView::from(&client), client_secret: secret })
}

/// The client, if the caller may do `action` to it (404 when it is out of reach).
fn client_for(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    client_id: &str,
    action: Action,
) -> Result<Client, AppError> {
    let client = find_client(conn, client_id)?.ok_or(AppError::NotFound)?;
    caller.check(client_target(&client), action)?;
    Ok(client)
}

/// Whether the caller may do `action` to the client (for showing only the buttons that work).
pub fn may(caller: &Caller<'_>, client: &ClientView, action: Action) -> bool {
    (action == Action::Read || !client.built_in)
        && caller.check(Target::of(Resource::Clients).in_team(client.team_id.as_deref()), action).is_ok()
}

pub fn get_client(conn: &mut DbConnection, caller: &Caller<'_>, client_id: &str) -> Result<ClientView, AppError> {
    client_for(conn, caller, client_id, Action::Read).map(|c| ClientView::from(&c))
}

/// The client as [`get_client`] shows it, from `clients` (what the token endpoint and earlier
/// reads keep) when it holds it: no database. `None` when it does not.
pub fn get_kept_client(
    clients: &Cached<String, Client>,
    caller: &Caller<'_>,
    client_id: &str,
) -> Option<Result<ClientView, AppError>> {
    let client = clients.get(client_id)?;
    Some(caller.check(client_target(&client), Action::Read).map(|()| ClientView::from(&*client)))
}

/// As [`get_client`], keeping the row in `clients` for the next read, whoever asks next.
pub fn get_client_keeping(
    conn: &mut DbConnection,
    clients: &Cached<String, Client>,
    caller: &Caller<'_>,
    client_id: &str,
) -> Result<ClientView, AppError> {
    let read = clients.start_read();
    let client = Arc::new(find_client(conn, client_id)?.ok_or(AppError::NotFound)?);
    clients.insert(client_id.to_owned(), client.clone(), read);
    caller.check(client_target(&client), Action::Read)?;
    Ok(ClientView::from(&*client))
}

fn client_target(client: &Client) -> Target<'_> {
    Target::of(Resource::Clients).in_team(client.team_id.as_deref())
}

pub fn list_clients(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<ClientView>, AppError> {
    let listing = caller.listing(Resource::Clients)?;
    let teams = (!listing.all).then_some(listing.teams.as_slice());
    Ok(db_list_clients(conn, teams)?.iter().map(ClientView::from).collect())
}

/// A page of the clients the caller reaches, newest first, and where the next page starts.
pub fn page_of_clients(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<(Vec<ClientView>, Option<String>), AppError> {
    let listing = caller.listing(Resource::Clients)?;
    let teams = (!listing.all).then_some(listing.teams.as_slice());
    let after = match cursor {
        Some(cursor) => Some(super::cursor::decode(cursor).ok_or_else(|| bad("the cursor is not valid"))?),
        None => None,
    };
    let mut rows =
        crate::db::clients::page_of_clients(conn, teams, after.as_ref().map(|(at, id)| (*at, id.as_str())), limit + 1)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more { rows.last().map(|c| super::cursor::encode(c.created_at, &c.id)) } else { None };
    Ok((rows.iter().map(ClientView::from).collect(), next))
}

/// What an update may change; what is left out stays as it is.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdate {
    #[schema(value_type = Option<crate::domain::DisplayName>)]
    pub name: Option<String>,
    #[schema(value_type = Option<Vec<crate::domain::GrantType>>, min_items = 1)]
    pub grant_types: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<crate::domain::Scopes>>)]
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Tenant permissions of the client's own service principal; only an owner changes them.
    pub permissions: Option<Vec<String>>,
    /// A `private_key_jwt` client's public keys: replacing them is how its keys rotate.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Or where it publishes them (replaces `jwks`).
    pub jwks_uri: Option<String>,
    /// Whether the client may present JWTs naming a user; only an owner changes it.
    pub acts_for_users: Option<bool>,
    /// Seconds after a rotation in which a retried refresh gets the same answer (0 to 300;
    /// 0 turns retries off).
    #[schema(minimum = 0, maximum = 300)]
    pub refresh_retry_window_secs: Option<i64>,
}

pub fn update_client(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    client_id: &str,
    update: ClientUpdate,
) -> Result<ClientView, AppError> {
    let client = client_for(conn, caller, client_id, Action::Write)?;
    refuse_built_in(&client)?;
    let keeps_keys = update.jwks.is_none() && update.jwks_uri.is_none();
    let merged = ClientRegistration {
        name: update.name.unwrap_or_else(|| client.name.clone()),
        team_id: client.team_id.clone(),
        grant_types: update.grant_types.unwrap_or_else(|| words(&client.grant_types)),
        scopes: update.scopes.unwrap_or_else(|| words(&client.scopes)),
        audiences: update.audiences.unwrap_or_else(|| words(&client.audiences)),
        redirect_uris: update.redirect_uris.unwrap_or_else(|| words(&client.redirect_uris)),
        post_logout_redirect_uris: update
            .post_logout_redirect_uris
            .unwrap_or_else(|| words(&client.post_logout_redirect_uris)),
        public: client.is_public(),
        token_endpoint_auth_method: Some(client.token_endpoint_auth_method.clone()),
        permissions: update.permissions.unwrap_or_else(|| words(&client.permissions)),
        // Giving one of jwks and jwks_uri replaces whichever the client had.
        jwks: if keeps_keys {
            client.jwks.as_deref().and_then(|jwks| serde_json::from_str(jwks).ok())
        } else {
            update.jwks
        },
        jwks_uri: if keeps_keys { client.jwks_uri.clone() } else { update.jwks_uri },
        acts_for_users: update.acts_for_users.unwrap_or(client.acts_for_users),
        refresh_retry_window_secs: Some(update.refresh_retry_window_secs.unwrap_or(client.refresh_retry_secs)),
    };
    let settings = validate(conn, &merged)?;
    if settings.permissions != client.permissions {
        caller.require_owner("change a client's tenant permissions")?;
    }
    if merged.acts_for_users != client.acts_for_users {
        caller.require_owner("change whether a client acts for users")?;
    }
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        db_update_client(
            conn,
            client_id,
            &ClientChanges {
                name: &settings.name,
                grant_types: &settings.grant_types,
                scopes: &settings.scopes,
                audiences: &settings.audiences,
                redirect_uris: &settings.redirect_uris,
                post_logout_redirect_uris: &settings.post_logout_redirect_uris,
                permissions: &settings.permissions,
                jwks: settings.jwks.as_deref(),
                acts_for_users: merged.acts_for_users,
                jwks_uri: settings.jwks_uri.as_deref(),
                refresh_retry_secs: settings.refresh_retry_secs,
                updated_at: crate::db::now(),
            },
        )?;
        audit::record(conn, &caller.audit.change("client.updated").target("client", client_id))?;
        Ok(())
    })?;
    get_client(conn, caller, client_id)
}

pub fn delete_client(conn: &mut DbConnection, caller: &Caller<'_>, client_id: &str) -> Result<(), AppError> {
    refuse_built_in(&client_for(conn, caller, client_id, Action::Delete)?)?;
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        db_delete_client(conn, client_id)?;
        audit::record(conn, &caller.audit.change("client.deleted").target("client", client_id))?;
        Ok(())
    })
}

/// The longest a replaced secret may keep working.
pub const MAX_SECRET_GRACE: TimeDelta = TimeDelta::days(7);

/// A new secret for a confidential client. The old one stops working at once, or after
/// `grace` so that deployments can switch without an outage.
pub fn rotate_client_secret(
    conn: &mut DbConnection,
    hasher: &TokenHasher,
    sealer: &Sealer,
    caller: &Caller<'_>,
    client_id: &str,
    grace: TimeDelta,
) -> Result<RegisteredClient, AppError> {
    let client = client_for(conn, caller, client_id, Action::Write)?;
    if client.is_public() {
        return Err(bad("a public client has no secret to rotate"));
    }
    if client.token_endpoint_auth_method == AUTH_METHOD_PRIVATE_KEY_JWT {
        return Err(bad("a private_key_jwt client has no secret: change its jwks (or what its jwks_uri serves)"));
    }
    if grace < TimeDelta::zero() || grace > MAX_SECRET_GRACE {
        return Err(bad("the grace period must be between 0 and 604800 seconds (7 days)"));
    }
    let secret = random_token::<32>();
    let hash = hasher.hash(&secret);
    // HMAC needs the secret itself; the one before it stops at once for JWTs (a grace
    // period covers the hashed secret of Basic and post authentication only).
    let sealed = (client.token_endpoint_auth_method == AUTH_METHOD_SECRET_JWT)
        .then(|| sealer.seal(secret.as_bytes(), &Client::seal_context(&client.id)));
    let now = crate::db::now();
    let previous = client.secret_hash.as_deref().filter(|_| grace > TimeDelta::zero()).map(|old| (old, now + grace));
    crate::db::write_transaction(conn, |conn| -> Result<(), AppError> {
        replace_client_secret(conn, client_id, hash.as_str(), sealed.as_deref(), previous, now)?;
        audit::record(
            conn,
            &caller
                .audit
                .change("client.secret_rotated")
                .target("client", client_id)
                .details(serde_json::json!({ "grace_secs": grace.num_seconds() })),
        )?;
        Ok(())
    })?;
    let client = find_client(conn, client_id)?.ok_or(AppError::NotFound)?;
    Ok(RegisteredClient { client: ClientView::from(&client), client_secret: Some(secret) })
}
