//! Signing-key lifecycle: the first key, rotation, how long a retired key stays published
//! (until every token it signed has expired), and withdrawing a key that leaked.

use anyhow::Context;
use chrono::{NaiveDateTime, TimeDelta};
use serde::Serialize;

use super::Caller;
use crate::access::{Action, Resource};
use crate::audit::{self, Context as AuditContext};
use crate::crypto::Sealer;
use crate::db::DbConnection;
use crate::db::apis::max_token_lifetime_secs;
use crate::db::signing_keys::{
    NewSigningKey, SigningKeyRow, count_active_keys, find_key, insert_and_activate_key, set_publish_until,
};
use crate::domain::SigningAlgorithm;
use crate::error::AppError;
use crate::tokens::keys::generate_key;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    pub kid: String,
    #[schema(value_type = String, example = "RS256")]
    pub algorithm: SigningAlgorithm,
    /// How many keys stopped signing.
    pub retired: usize,
    /// Until when the retired keys stay in the JWKS.
    pub retired_published_until: chrono::DateTime<chrono::Utc>,
}

/// How long a retired key must stay published: the longest token lifetime anything can
/// be issued with, plus two reload intervals for instances that have not yet switched.
pub fn retirement_window(
    conn: &mut DbConnection,
    default_ttl_secs: i64,
    key_refresh_secs: u64,
) -> anyhow::Result<TimeDelta> {
    let longest_api = max_token_lifetime_secs(conn).context("could not read API token lifetimes")?;
    let longest = longest_api.unwrap_or(0).max(default_ttl_secs);
    let refresh = i64::try_from(key_refresh_secs).unwrap_or(i64::MAX / 4);
    Ok(TimeDelta::seconds(longest.saturating_add(refresh.saturating_mul(2))))
}

/// A key generated and sealed, not yet stored. Made before any transaction: RSA
/// generation takes long enough to matter to every other writer waiting on SQLite's lock.
struct PreparedKey {
    kid: String,
    algorithm: SigningAlgorithm,
    sealed: Vec<u8>,
    jwk: String,
}

fn prepare_key(sealer: &Sealer, algorithm: SigningAlgorithm) -> anyhow::Result<PreparedKey> {
    let key = generate_key(algorithm)?;
    let sealed = sealer.seal(&key.pkcs8, &SigningKeyRow::seal_context(&key.jwk.kid));
    let jwk = serde_json::to_string(&key.jwk).context("could not serialise the public key")?;
    Ok(PreparedKey { kid: key.jwk.kid, algorithm, sealed, jwk })
}

/// Stores `key` as the one that signs, retiring the previous (published until
/// `publish_until`), and audits it; inside the caller's transaction. Answers how many
/// keys stopped signing.
fn store_key(
    conn: &mut DbConnection,
    key: &PreparedKey,
    audit_context: &AuditContext<'_>,
    publish_until: NaiveDateTime,
    now: NaiveDateTime,
) -> diesel::QueryResult<usize> {
    let new_key = NewSigningKey {
        kid: &key.kid,
        algorithm: key.algorithm.as_str(),
        private_key_sealed: &key.sealed,
        public_jwk: &key.jwk,
        created_at: now,
    };
    let retired = insert_and_activate_key(conn, &new_key, publish_until)?;
    audit::record(
        conn,
        &audit_context
            .change("signing_key.rotated")
            .target("signing_key", &key.kid)
            .details(serde_json::json!({ "algorithm": key.algorithm.as_str(), "retired": retired })),
    )?;
    Ok(retired)
}

/// Generates a key of `algorithm`, makes it the one that signs, and retires the previous.
pub fn rotate_key(
    conn: &mut DbConnection,
    sealer: &Sealer,
    audit_context: &AuditContext<'_>,
    algorithm: SigningAlgorithm,
    window: TimeDelta,
    now: NaiveDateTime,
) -> anyhow::Result<RotatedKey> {
    let key = prepare_key(sealer, algorithm)?;
    let publish_until = now + window;
    let retired = crate::db::write_transaction(conn, |conn| store_key(conn, &key, audit_context, publish_until, now))
        .context("could not store the new signing key")?;
    Ok(RotatedKey { kid: key.kid, algorithm, retired, retired_published_until: crate::db::utc(publish_until) })
}

/// Makes sure `algorithm` has a key that signs; returns the new kid if one was made. Once,
/// however many instances start together on an empty database: the check is made again
/// under a lock every instance takes (SQLite's write lock; on PostgreSQL an advisory lock
/// held to the end of the transaction), and only the first stores its key.
pub fn ensure_active_key(
    conn: &mut DbConnection,
    sealer: &Sealer,
    algorithm: SigningAlgorithm,
    now: NaiveDateTime,
) -> anyhow::Result<Option<String>> {
    if count_active_keys(conn, algorithm.as_str()).context("could not count signing keys")? > 0 {
        return Ok(None);
    }
    let key = prepare_key(sealer, algorithm)?;
    let stored = crate::db::write_transaction(conn, |conn| {
        crate::db::lock_for_this_transaction(conn, crate::db::FIRST_SIGNING_KEY_LOCK)?;
        if count_active_keys(conn, algorithm.as_str())? > 0 {
            return diesel::QueryResult::Ok(false);
        }
        // Nothing is retired, so how long it would stay published does not matter.
        store_key(conn, &key, &AuditContext::SYSTEM, now, now)?;
        Ok(true)
    })
    .context("could not store the first signing key")?;
    Ok(stored.then_some(key.kid))
}

/// A signing key as operators see it: never the private half.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    pub kid: String,
    pub algorithm: String,
    /// `active` (signs), `retired` (published until `published_until`), or `expired`.
    pub state: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub published_until: Option<chrono::DateTime<chrono::Utc>>,
}

fn view(row: SigningKeyRow, now: NaiveDateTime) -> SigningKeyView {
    SigningKeyView {
        state: match (row.retired_at, row.publish_until) {
            (None, _) => "active",
            (Some(_), Some(until)) if until > now => "retired",
            _ => "expired",
        },
        kid: row.kid,
        algorithm: row.algorithm,
        created_at: crate::db::utc(row.created_at),
        published_until: row.publish_until.map(crate::db::utc),
    }
}

pub fn list_signing_keys(conn: &mut DbConnection, caller: &Caller<'_>) -> Result<Vec<SigningKeyView>, AppError> {
    caller.listing(Resource::SigningKeys)?;
    let now = crate::db::now();
    Ok(crate::db::signing_keys::list_all_keys(conn)?.into_iter().map(|row| view(row, now)).collect())
}

/// Takes a retired key out of the JWKS now rather than when its tokens expire: for a key
/// that leaked. Every token it signed stops verifying, at Latchkey and at services, once they
/// reread the keys. The key that signs cannot be withdrawn; rotating first retires it.
pub fn withdraw_signing_key(
    conn: &mut DbConnection,
    caller: &Caller<'_>,
    kid: &str,
) -> Result<SigningKeyView, AppError> {
    if !caller.reach.can(Resource::SigningKeys, Action::Write) {
        return Err(AppError::Forbidden("withdrawing signing keys takes signing_keys:write".into()));
    }
    crate::db::write_transaction(conn, |conn| -> Result<SigningKeyView, AppError> {
        let mut row = find_key(conn, kid)?.ok_or(AppError::NotFound)?;
        if row.retired_at.is_none() {
            return Err(AppError::Conflict(format!(
                "{kid} is the {} key that signs: rotate that algorithm first, then withdraw this key",
                row.algorithm
            )));
        }
        let now = crate::db::now();
        // Withdrawing twice, or a key already unpublished, changes nothing.
        let until = row.publish_until.map_or(now, |until| until.min(now));
        set_publish_until(conn, kid, until)?;
        row.publish_until = Some(until);
        audit::record(
            conn,
            &caller
                .audit
                .change("signing_key.withdrawn")
                .target("signing_key", kid)
                .details(serde_json::json!({ "algorithm": row.algorithm })),
        )?;
        Ok(view(row, now))
    })
}

/// Rotates the signing key of `algorithm` for a caller with `signing_keys:write`; the
/// retired key stays published as long as `settings` say tokens and key caches live.
pub fn rotate_signing_key(
    conn: &mut DbConnection,
    sealer: &Sealer,
    caller: &Caller<'_>,
    algorithm: SigningAlgorithm,
    settings: &crate::config::Settings,
) -> Result<RotatedKey, AppError> {
    if !caller.reach.can(Resource::SigningKeys, Action::Write) {
        return Err(AppError::Forbidden("rotating signing keys takes signing_keys:write".into()));
    }
    let window = retirement_window(conn, settings.access_token_ttl_secs, settings.key_refresh_secs)?;
    Ok(rotate_key(conn, sealer, &caller.audit, algorithm, window, crate::db::now())?)
}
