//! Authenticating an API key: the key arrives as `Authorization: Bearer <key>` or
//! `X-User-Token: <key>`; its checksum is checked before any lookup, its environment against
//! the deployment's, then one keyed-hash lookup finds it. Failures are written to the audit
//! log (without the key) until the address has used up its failed authentications. Refusals
//! are a [`KeyRefusal`]; each caller (the management API, token exchange, registration,
//! introspection) answers them in its own format.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::access::{Permissions, Reach};
use crate::audit::{self, Actor, AuditEntry, Context, Outcome};
use crate::db::DbConnection;
use crate::db::api_keys::{ApiKeyRow, KeyOwner, Touch, find_api_key_with_owner, touch_api_key, touch_api_keys};
use crate::db::teams::memberships;
use crate::db::users::{ROLE_OWNER, STATUS_ACTIVE};
use crate::domain::ApiKeyKind;
use crate::error::AppError;
use crate::ratelimit::FailureBudget;
use crate::state::{AppState, KnownKey};

pub const USER_TOKEN_HEADER: &str = "x-user-token";

/// How often a key's `last_used_at` (and address) is written: reads should not each pay
/// for a write.
const TOUCH_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// A request authenticated by a live API key, with everything the key reaches.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    pub key: ApiKeyRow,
    pub reach: Reach,
}

impl ApiKeyAuth {
    /// Who the key's actions are recorded as: its user, its service account, or itself.
    pub fn actor(&self) -> Actor<'_> {
        match (self.key.key_kind(), &self.key.user_id, &self.key.service_account_id) {
            (Some(ApiKeyKind::Personal), Some(user), _) => Actor::User(user),
            (Some(ApiKeyKind::Service), _, Some(account)) => Actor::ServiceAccount(account),
            _ => Actor::ApiKey(&self.key.id),
        }
    }

    /// The audit context of a change made with this key during `req`.
    pub fn audit<'a>(&'a self, ip: Option<&'a str>, request_id: &'a str) -> Context<'a> {
        let actor = self.actor();
        let via_key = (!matches!(actor, Actor::ApiKey(_))).then_some(self.key.id.as_str());
        Context { via_key, ..Context::of(actor, ip, Some(request_id)) }
    }
}

/// Whether a stored key works now, by itself and its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Live,
    Revoked,
    Expired,
    /// A personal key acts as its user, so it lives only while the user is active.
    OwnerNotActive,
}

impl Standing {
    pub fn of(key: &ApiKeyRow, owner: &KeyOwner, now: chrono::NaiveDateTime) -> Self {
        if key.revoked_at.is_some_and(|at| at <= now) {
            Self::Revoked
        } else if key.expires_at.is_some_and(|at| at <= now) {
            Self::Expired
        } else if key.key_kind() == Some(ApiKeyKind::Personal) && owner.user_status.as_deref() != Some(STATUS_ACTIVE) {
            Self::OwnerNotActive
        } else {
            Self::Live
        }
    }
}

/// What a key reaches, from its kind and owner.
pub fn load_reach(conn: &mut DbConnection, key: &ApiKeyRow, owner: &KeyOwner) -> diesel::QueryResult<Reach> {
    Ok(match key.key_kind() {
        Some(ApiKeyKind::TenantOwner) => Reach::owner(),
        Some(ApiKeyKind::Service) => Reach {
            tenant: Permissions::from_stored(owner.service_permissions.as_deref().unwrap_or("")),
            ..Reach::default()
        },
        Some(ApiKeyKind::Restricted) => {
            Reach { tenant: Permissions::from_stored(&key.permissions), ..Reach::default() }
        }
        Some(ApiKeyKind::Team) => Reach {
            teams: key
                .team_id
                .iter()
                .zip(key.team_role.as_deref().and_then(|r| r.parse().ok()))
                .map(|(team, role)| (team.clone(), role))
                .collect(),
            ..Reach::default()
        },
        Some(ApiKeyKind::Personal) => match &key.user_id {
            Some(user) => {
                let is_owner = owner.user_role.as_deref() == Some(ROLE_OWNER);
                let memberships = if is_owner { Vec::new() } else { memberships(conn, user)? };
                Reach::of_person(user, is_owner, memberships)
            }
            None => Reach::default(),
        },
        None => Reach::default(),
    })
}

/// The key as presented, from either header.
pub fn presented_key(req: &HttpRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_owned());
    let user_token = || req.headers().get(USER_TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
    bearer.or_else(user_token).filter(|key| !key.is_empty())
}

/// Why a presented key was refused, as its caller tells it.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefusal {
    /// Malformed, of the other environment, unknown, revoked, or its user is not active.
    #[error("{0}")]
    Invalid(String),
    #[error("the API key has expired")]
    Expired,
    /// The caller's address has used up its failed authentications: not audited, not checked.
    #[error("too many refused keys from this address; try again in {retry_after} s")]
    TooManyFailures { retry_after: u64 },
    /// The key could not be checked (the database failed): no fault of the caller's.
    #[error(transparent)]
    Unchecked(#[from] AppError),
}

/// A refusal as the audit log and the metrics record it.
struct Refusal {
    refusal: KeyRefusal,
    reason: &'static str,
    key_id: Option<String>,
}

impl Refusal {
    fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self { refusal: KeyRefusal::Invalid(message.into()), reason, key_id: None }
    }
}

/// Checks a presented key: checksum, environment, then the stored key, its expiry and its
/// owner. Also used by token exchange, dynamic registration and introspection.
///
/// Refusals count against the caller's address ([`FailureBudget`]) and are audited; once the
/// address has used up its failures, further refusals are answered 429 and not audited, so
/// that guessing cannot fill the audit log. A good key is never refused for that.
///
/// A live key found in the cache ([`crate::state::Caches`]) is answered without a trip to
/// the database: its expiry and revocation time are checked against the clock here, and
/// its use is noted for [`write_noted_uses`]. Anything else goes to the database, which
/// alone refuses (and audits) a key.
pub async fn authenticate_key(
    req: &HttpRequest,
    state: &AppState,
    presented: String,
) -> Result<ApiKeyAuth, KeyRefusal> {
    let ip = req.peer_addr().map(|addr| addr.ip().to_string());
    let accepted = state.settings.environment;
    let refusal = match crate::apikeys::parse(&presented) {
        Err(e) => Err(Refusal::invalid("malformed", format!("this is not a valid API key: {e}"))),
        Ok(parsed) if parsed.environment != accepted => Err(Refusal::invalid(
            "wrong environment",
            format!(
                "this is a {} key; this deployment accepts {accepted} keys only (sk_{accepted}_… or rk_{accepted}_…)",
                parsed.environment
            ),
        )),
        Ok(_) => Ok(state.hasher.presented(&presented)),
    };
    if let Ok(hashes) = &refusal
        && let Some(known) = state.caches.api_keys.get(hashes.current())
    {
        let now = crate::db::now();
        if Standing::of(&known.key, &known.owner, now) == Standing::Live {
            if known.should_note_use(now, TOUCH_INTERVAL) {
                state.touches.note(&known.key.id, Touch { ip, at: now });
            }
            return Ok(ApiKeyAuth { key: known.key.clone(), reach: known.reach.clone() });
        }
    }
    let cache_key = refusal.as_ref().ok().map(|hashes| hashes.current().to_owned());
    let read = state.caches.api_keys.start_read();
    let failures = FailureBudget::of(&state.limiter, req.peer_addr().map(|a| a.ip()), &state.settings);
    let audit_refusal = failures.allows().await.allowed;
    let request_id = crate::telemetry::current_request_id();
    let outcome = crate::db::run(&state.pool, move |conn| -> Result<Result<Arc<KnownKey>, Refusal>, AppError> {
        let now = crate::db::now();
        let verdict = match refusal {
            Err(refusal) => Err(refusal),
            Ok(key_hashes) => match key_hashes.find(|hash| find_api_key_with_owner(conn, hash))? {
                None => Err(Refusal::invalid("unknown", "the API key is unknown or has been revoked")),
                Some((key, owner)) => match Standing::of(&key, &owner, now) {
                    Standing::Revoked => Err(Refusal {
                        key_id: Some(key.id),
                        ..Refusal::invalid("revoked", "the API key is unknown or has been revoked")
                    }),
                    Standing::Expired => {
                        Err(Refusal { refusal: KeyRefusal::Expired, reason: "expired", key_id: Some(key.id) })
                    }
                    Standing::OwnerNotActive => Err(Refusal {
                        key_id: Some(key.id),
                        ..Refusal::invalid("owner not active", "the API key's user is not active")
                    }),
                    Standing::Live => {
                        let mut key = key;
                        // Even an UPDATE that matches nothing takes SQLite's write lock: look first.
                        if key.last_used_at.is_none_or(|at| at < now - TOUCH_INTERVAL) {
                            touch_api_key(conn, &key.id, ip.as_deref(), now, TOUCH_INTERVAL)?;
                            key.last_used_at = Some(now);
                        }
                        let reach = load_reach(conn, &key, &owner)?;
                        Ok(Arc::new(KnownKey::new(key, owner, reach)))
                    }
                },
            },
        };
        if let (Err(refusal), true) = (&verdict, audit_refusal) {
            let mut entry = AuditEntry::new(Actor::Anonymous, "api_key.authentication_failed", Outcome::Failure)
                .from_request(ip.as_deref(), Some(&request_id))
                .details(serde_json::json!({ "reason": refusal.reason }));
            if let Some(id) = &refusal.key_id {
                entry = entry.target("api_key", id);
            }
            audit::record(conn, &entry)?;
        }
        Ok(verdict)
    })
    .await?;
    match outcome {
        Ok(known) => {
            let auth = ApiKeyAuth { key: known.key.clone(), reach: known.reach.clone() };
            if let Some(cache_key) = cache_key {
                state.caches.api_keys.insert(cache_key, known, read);
            }
            Ok(auth)
        }
        Err(refusal) => {
            let counted = failures.spend().await;
            state.metrics.authentication_failed("api_key", refusal.reason);
            tracing::info!(reason = refusal.reason, "API key refused");
            if audit_refusal {
                Err(refusal.refusal)
            } else {
                Err(KeyRefusal::TooManyFailures { retry_after: counted.retry_after.max(1) })
            }
        }
    }
}

/// Writes the uses of keys authenticated from the cache since the last call, in one
/// transaction. Called each second and when the server stops.
pub async fn write_noted_uses(state: &AppState) {
    let touches = state.touches.take();
    if touches.is_empty() {
        return;
    }
    let written = crate::db::run(&state.pool, move |conn| Ok(touch_api_keys(conn, &touches, TOUCH_INTERVAL)?)).await;
    if let Err(error) = written {
        tracing::warn!(error = ?error, "could not record when API keys were last used");
    }
}
