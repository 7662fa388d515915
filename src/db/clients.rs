//! Registered OAuth clients.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::changes::{Table, wrote};
use super::schema::clients;
use crate::domain::{GrantType, RedirectUri, Scopes};

/// `token_endpoint_auth_method` of a public client (RFC 7591 §2).
pub const AUTH_METHOD_NONE: &str = "none";
/// RFC 7523 §2.2: a JWT signed (HS256) with the client's secret.
pub const AUTH_METHOD_SECRET_JWT: &str = "client_secret_jwt";
/// RFC 7523 §2.2: a JWT signed with one of the client's registered keys.
pub const AUTH_METHOD_PRIVATE_KEY_JWT: &str = "private_key_jwt";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = clients)]
pub struct Client {
    pub id: String,
    pub tenant_id: String,
    pub team_id: Option<String>,
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    pub token_endpoint_auth_method: String,
    pub grant_types: String,
    pub scopes: String,
    pub audiences: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The tenant permissions of the client's own service principal, granted by an owner.
    pub permissions: String,
    /// A `client_secret_jwt` client's secret, sealed under the master key.
    pub secret_sealed: Option<Vec<u8>>,
    /// A `private_key_jwt` client's public keys: a JWK Set.
    pub jwks: Option<String>,
    /// Whether an owner let the client present JWTs that name a user.
    pub acts_for_users: bool,
    /// Or where a `private_key_jwt` client publishes its public keys.
    pub jwks_uri: Option<String>,
    /// Seconds after a rotation in which a retried refresh gets the same answer; 0: never.
    pub refresh_retry_secs: i64,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AUTH_METHOD_NONE
    }

    /// Whether the client authenticates with a JWT it signs (RFC 7523).
    pub fn signs_assertions(&self) -> bool {
        matches!(self.token_endpoint_auth_method.as_str(), AUTH_METHOD_SECRET_JWT | AUTH_METHOD_PRIVATE_KEY_JWT)
    }

    /// The associated data that binds a sealed secret to this client's row.
    pub fn seal_context(id: &str) -> String {
        format!("clients/{id}")
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.split(' ').any(|g| g == grant.as_str())
    }

    /// The scopes this client may be granted; stored values were validated on write.
    pub fn allowed_scopes(&self) -> Scopes {
        Scopes::parse(&self.scopes).unwrap_or_default()
    }

    /// Where this client may have the browser sent after authorization.
    pub fn redirect_uris(&self) -> Vec<RedirectUri> {
        stored_uris(&self.redirect_uris)
    }

    /// Where this client may have the browser sent after sign-out (RP-initiated logout).
    pub fn post_logout_redirect_uris(&self) -> Vec<RedirectUri> {
        stored_uris(&self.post_logout_redirect_uris)
    }

    /// The audiences this client may request, its default first.
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.audiences.split(' ').filter(|a| !a.is_empty())
    }

    /// The secret hashes that authenticate this client now: the current one, and the
    /// previous one while a rotation's grace period lasts.
    pub fn valid_secret_hashes(&self, now: NaiveDateTime) -> impl Iterator<Item = &str> {
        let previous = match self.previous_secret_expires_at {
            Some(until) if until > now => self.previous_secret_hash.as_deref(),
            _ => None,
        };
        self.secret_hash.as_deref().into_iter().chain(previous)
    }
}

/// A stored list of URIs: space-separated, since no registered URI can contain a space.
/// Each is checked again as it is read, so that a row written before today's rules (a
/// `javascript:` URI, say) is never followed.
fn stored_uris(stored: &str) -> Vec<RedirectUri> {
    stored.split(' ').filter_map(|u| RedirectUri::parse(u).ok()).collect()
}

#[derive(Debug, Insertable)]
#[diesel(table_name = clients)]
pub struct NewClient<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub team_id: Option<&'a str>,
    pub client_id: &'a str,
    pub name: &'a str,
    pub secret_hash: Option<&'a str>,
    pub token_endpoint_auth_method: &'a str,
    pub grant_types: &'a str,
    pub scopes: &'a str,
    pub audiences: &'a str,
    pub redirect_uris: &'a str,
    pub post_logout_redirect_uris: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub permissions: &'a str,
    pub secret_sealed: Option<&'a [u8]>,
    pub jwks: Option<&'a str>,
    pub acts_for_users: bool,
    pub jwks_uri: Option<&'a str>,
    pub refresh_retry_secs: i64,
}

pub fn insert_client(conn: &mut DbConnection, client: &NewClient<'_>) -> QueryResult<()> {
    wrote(Table::Clients);
    diesel::insert_into(clients::table).values(client).execute(conn).map(drop)
}

/// Inserts a built-in client unless another instance made it first.
pub fn insert_client_unless_present(conn: &mut DbConnection, client: &NewClient<'_>) -> QueryResult<bool> {
    wrote(Table::Clients);
    super::first_insert(diesel::insert_into(clients::table).values(client).execute(conn))
}

/// A built-in client follows the deployment's management API audience.
pub fn set_audiences(
    conn: &mut DbConnection,
    client_id: &str,
    audiences: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    wrote(Table::Clients);
    diesel::update(clients::table.filter(clients::client_id.eq(client_id)))
        .set((clients::audiences.eq(audiences), clients::updated_at.eq(now)))
        .execute(conn)
}

pub fn find_client(conn: &mut DbConnection, client_id: &str) -> QueryResult<Option<Client>> {
    clients::table.filter(clients::client_id.eq(client_id)).select(Client::as_select()).get_result(conn).optional()
}

/// Names of clients, by client id.
pub fn client_names(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    clients::table.filter(clients::client_id.eq_any(ids)).select((clients::client_id, clients::name)).load(conn)
}

/// Clients in the tenant, or only those of these teams, by creation.
pub fn list_clients(conn: &mut DbConnection, teams: Option<&[String]>) -> QueryResult<Vec<Client>> {
    let mut query =
        clients::table.order((clients::created_at.asc(), clients::id.asc())).select(Client::as_select()).into_boxed();
    if let Some(teams) = teams {
        query = query.filter(clients::team_id.eq_any(teams));
    }
    query.load(conn)
}

/// A page of clients, newest first: all, or only those of these teams, strictly older than
/// `after` (the previous page's last: its creation time and row id).
pub fn page_of_clients(
    conn: &mut DbConnection,
    teams: Option<&[String]>,
    after: Option<(NaiveDateTime, &str)>,
    limit: i64,
) -> QueryResult<Vec<Client>> {
    let mut query = clients::table
        .filter(clients::tenant_id.eq(super::DEFAULT_TENANT_ID))
        .order((clients::created_at.desc(), clients::id.desc()))
        .select(Client::as_select())
        .limit(limit)
        .into_boxed();
    if let Some(teams) = teams {
        query = query.filter(clients::team_id.eq_any(teams));
    }
    if let Some((at, id)) = after {
        query = query.filter(clients::created_at.lt(at).or(clients::created_at.eq(at).and(clients::id.lt(id))));
    }
    query.load(conn)
}

/// The settings an update may change.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
pub struct ClientChanges<'a> {
    pub name: &'a str,
    pub grant_types: &'a str,
    pub scopes: &'a str,
    pub audiences: &'a str,
    pub redirect_uris: &'a str,
    pub post_logout_redirect_uris: &'a str,
    pub permissions: &'a str,
    pub jwks: Option<&'a str>,
    pub acts_for_users: bool,
    pub jwks_uri: Option<&'a str>,
    pub refresh_retry_secs: i64,
    pub updated_at: NaiveDateTime,
}

pub fn update_client(conn: &mut DbConnection, client_id: &str, changes: &ClientChanges<'_>) -> QueryResult<usize> {
    wrote(Table::Clients);
    diesel::update(clients::table.filter(clients::client_id.eq(client_id))).set(changes).execute(conn)
}

/// Replaces the secret (and, for a `client_secret_jwt` client, its sealed copy); the
/// previous one keeps working until `previous_until`, if given.
pub fn replace_client_secret(
    conn: &mut DbConnection,
    client_id: &str,
    secret_hash: &str,
    secret_sealed: Option<&[u8]>,
    previous: Option<(&str, NaiveDateTime)>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    wrote(Table::Clients);
    diesel::update(clients::table.filter(clients::client_id.eq(client_id)))
        .set((
            clients::secret_hash.eq(secret_hash),
            clients::secret_sealed.eq(secret_sealed),
            clients::previous_secret_hash.eq(previous.map(|(hash, _)| hash)),
            clients::previous_secret_expires_at.eq(previous.map(|(_, until)| until)),
            clients::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Deleting a client deletes its codes, refresh tokens and consents (the schema's cascades).
pub fn delete_client(conn: &mut DbConnection, client_id: &str) -> QueryResult<usize> {
    wrote(Table::Clients);
    diesel::delete(clients::table.filter(clients::client_id.eq(client_id))).execute(conn)
}
