//! Device authorization requests (RFC 8628): the device code the device polls with and the
//! user code a person types, both as keyed hashes, with what the person decided.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::device_authorizations;

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_APPROVED: &str = "approved";
pub const STATUS_DENIED: &str = "denied";
pub const STATUS_REDEEMED: &str = "redeemed";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = device_authorizations)]
pub struct DeviceAuthorization {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: String,
    pub scope: String,
    pub audience: String,
    pub requested_from: Option<String>,
    pub requested_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub interval_secs: i64,
    pub last_polled_at: Option<NaiveDateTime>,
    pub status: String,
    pub user_id: Option<String>,
    pub auth_time: Option<NaiveDateTime>,
    pub decided_at: Option<NaiveDateTime>,
    /// RFC 8693's `requested_token_type`, when the device asked for something other than
    /// tokens: an API key (the connect flow).
    pub requested_token_type: Option<String>,
    /// The key the person chose for it (JSON), when they allowed it: made at redemption.
    pub key_request: Option<String>,
    /// How the person who decided had signed in (RFC 8176 methods), as of `auth_time`.
    pub amr: Option<String>,
}

/// Stores a new request; `false` if its user code is already taken by another.
pub fn insert_device_authorization(conn: &mut DbConnection, request: &DeviceAuthorization) -> QueryResult<bool> {
    super::first_insert(diesel::insert_into(device_authorizations::table).values(request).execute(conn))
}

pub fn find_by_device_code(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<DeviceAuthorization>> {
    device_authorizations::table.find(hash).select(DeviceAuthorization::as_select()).get_result(conn).optional()
}

pub fn find_by_user_code(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<DeviceAuthorization>> {
    device_authorizations::table
        .filter(device_authorizations::user_code_hash.eq(hash))
        .select(DeviceAuthorization::as_select())
        .get_result(conn)
        .optional()
}

/// A person's decision on a request.
pub struct Decision<'a> {
    pub status: &'a str,
    pub user_id: &'a str,
    pub auth_time: NaiveDateTime,
    pub amr: &'a str,
    /// The key chosen for a connect-flow request.
    pub key_request: Option<&'a str>,
}

/// Records the person's decision on a pending, unexpired request; `false` if it was no
/// longer pending (decided in another tab) or has expired.
pub fn decide(
    conn: &mut DbConnection,
    user_code_hash: &str,
    decision: &Decision<'_>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        device_authorizations::table
            .filter(device_authorizations::user_code_hash.eq(user_code_hash))
            .filter(device_authorizations::status.eq(STATUS_PENDING))
            .filter(device_authorizations::expires_at.gt(now)),
    )
    .set((
        device_authorizations::status.eq(decision.status),
        device_authorizations::user_id.eq(decision.user_id),
        device_authorizations::auth_time.eq(decision.auth_time),
        device_authorizations::amr.eq(decision.amr),
        device_authorizations::decided_at.eq(now),
        device_authorizations::key_request.eq(decision.key_request),
    ))
    .execute(conn)
    .map(|rows| rows == 1)
}

/// Records a poll, with the interval the device must keep from now on.
pub fn record_poll(conn: &mut DbConnection, hash: &str, interval_secs: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(device_authorizations::table.find(hash))
        .set((device_authorizations::last_polled_at.eq(now), device_authorizations::interval_secs.eq(interval_secs)))
        .execute(conn)
        .map(drop)
}

/// Marks an approved request redeemed; of concurrent polls exactly one gets `true`.
pub fn redeem(conn: &mut DbConnection, hash: &str, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        device_authorizations::table
            .find(hash)
            .filter(device_authorizations::status.eq(STATUS_APPROVED))
            .filter(device_authorizations::expires_at.gt(now)),
    )
    .set((
        device_authorizations::status.eq(STATUS_REDEEMED),
        device_authorizations::last_polled_at.eq(now),
        // The choice has served its purpose once the key exists.
        device_authorizations::key_request.eq(None::<String>),
    ))
    .execute(conn)
    .map(|rows| rows == 1)
}

/// Forgets requests that expired: a device polling with one is told `expired_token` for
/// as long as the row lasts, then that the code is unknown.
pub fn prune_expired_device_authorizations(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(device_authorizations::table.filter(device_authorizations::expires_at.le(before))).execute(conn)
}
