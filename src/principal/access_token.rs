//! An access token presented to the management API (RFC 6750 bearer use of an RFC 9068
//! token). It counts only if Latchkey signed it with one of its own keys for the management
//! API's audience, it has not expired or been revoked (checked in the database on every
//! request, so a revocation holds on every instance at once), and its client, and its user
//! for a user's token, still exist and are active.
//!
//! What it may do is what its holder reaches, narrowed by its scopes
//! ([`Reach::limited_to`]): a user's token reaches what the user does; a client-credentials
//! token (`sub` is the client) what an owner granted the client's service principal.

use actix_web::HttpRequest;
use jsonwebtoken::errors::ErrorKind;

use super::Refusal;
use crate::access::{Permissions, Reach};
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::DbConnection;
use crate::db::clients::find_client;
use crate::db::revoked_tokens::is_revoked;
use crate::db::users::{ROLE_OWNER, User, find_user};
use crate::error::AppError;
use crate::ratelimit::FailureBudget;
use crate::state::AppState;
use crate::tokens::AccessTokenClaims;
use crate::tokens::jwt;

/// Whom a token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenHolder {
    /// The user (`sub`) who granted the token to its client.
    User(String),
    /// The client itself (client credentials: `sub` is `client_id`).
    Client,
}

/// A request authenticated by an access token.
#[derive(Debug, Clone)]
pub struct TokenPrincipal {
    pub claims: AccessTokenClaims,
    pub holder: TokenHolder,
    pub client_name: String,
    pub reach: Reach,
}

/// Why a token was refused: the reason the audit log and the metrics record, and the
/// sentence the caller reads (which never says which part of a signature was wrong).
struct Refused {
    reason: &'static str,
    message: &'static str,
    expired: bool,
    jti: Option<String>,
}

impl Refused {
    fn invalid(reason: &'static str, message: &'static str) -> Self {
        Self { reason, message, expired: false, jti: None }
    }

    fn of(mut self, claims: &AccessTokenClaims) -> Self {
        self.jti = Some(claims.jti.clone());
        self
    }
}

const NOT_OURS: &str = "the access token is not one Latchkey issued for the management API: it is malformed, badly signed, or for another audience";

/// The claims of a token Latchkey signed for `audience`, checked without the database
/// (unless the key set must be reloaded for an unknown `kid`).
async fn verify_signature(
    state: &AppState,
    token: &str,
    audience: &str,
) -> Result<Result<AccessTokenClaims, Refused>, AppError> {
    let Some(kid) = jwt::peek_header(token).and_then(|header| header.kid) else {
        return Ok(Err(Refused::invalid("malformed", NOT_OURS)));
    };
    let keys = state.keys_knowing(&kid).await?;
    Ok(verify_with(&keys, &kid, token, state.issuer.as_str(), audience))
}

fn verify_with(
    keys: &crate::tokens::KeySet,
    kid: &str,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<AccessTokenClaims, Refused> {
    // The algorithm is the key's own: `alg: none`, or HS256 "signed" with a public key,
    // never verifies. HS256 tokens belong to APIs that share a secret, never to this one.
    let Some((algorithm, key)) = keys.verifying_key(kid) else {
        return Err(Refused::invalid("unknown key", NOT_OURS));
    };
    let claims = jwt::verify_access_token(token, algorithm, key, issuer).map_err(|e| {
        if matches!(e.kind(), ErrorKind::ExpiredSignature) {
            Refused {
                expired: true,
                ..Refused::invalid("expired", "the access token has expired; get a new one (refresh it, or ask again)")
            }
        } else {
            Refused::invalid("bad signature or claims", NOT_OURS)
        }
    })?;
    if claims.aud != audience {
        return Err(Refused::invalid("wrong audience", NOT_OURS).of(&claims));
    }
    Ok(claims)
}

/// The token's holder and reach, as they stand now.
fn load_principal(
    conn: &mut DbConnection,
    claims: AccessTokenClaims,
) -> Result<Result<TokenPrincipal, Refused>, AppError> {
    if is_revoked(conn, &claims.jti)? {
        return Ok(Err(Refused::invalid("revoked", "the access token has been revoked").of(&claims)));
    }
    let Some(client) = find_client(conn, &claims.client_id)? else {
        return Ok(Err(Refused::invalid("client gone", "the access token's client no longer exists").of(&claims)));
    };
    let limit = Permissions::from_scopes(claims.scope.as_deref().unwrap_or_default().split(' '));
    let (holder, reach) = if claims.sub == claims.client_id {
        let reach = Reach { tenant: Permissions::from_stored(&client.permissions), ..Reach::default() };
        (TokenHolder::Client, reach)
    } else {
        let Some(user) = find_user(conn, &claims.sub)?.filter(User::is_active) else {
            return Ok(Err(Refused::invalid("owner not active", "the access token's user is not active").of(&claims)));
        };
        let is_owner = user.role == ROLE_OWNER;
        let memberships = if is_owner { Vec::new() } else { crate::db::teams::memberships(conn, &user.id)? };
        (TokenHolder::User(user.id.clone()), Reach::of_person(&user.id, is_owner, memberships))
    };
    Ok(Ok(TokenPrincipal { holder, client_name: client.name, reach: reach.limited_to(limit), claims }))
}

/// Checks a presented access token. Refusals count against the caller's address
/// ([`FailureBudget`]) and are audited as API-key refusals are, until the address has used
/// up its failures.
pub async fn authenticate_token(req: &HttpRequest, state: &AppState, token: &str) -> Result<TokenPrincipal, Refusal> {
    let failures = FailureBudget::of(&state.limiter, req.peer_addr().map(|a| a.ip()), &state.settings);
    let audit_refusal = failures.allows().await.allowed;
    let audience = state.issuer.management_api_audience();
    let verified = verify_signature(state, token, &audience).await?;
    let ip = req.peer_addr().map(|addr| addr.ip().to_string());
    let request_id = crate::telemetry::current_request_id();
    let outcome = crate::db::run(&state.pool, move |conn| -> Result<Result<TokenPrincipal, Refused>, AppError> {
        let verdict = match verified {
            Ok(claims) => load_principal(conn, claims)?,
            Err(refused) => Err(refused),
        };
        if let (Err(refused), true) = (&verdict, audit_refusal) {
            let mut entry = AuditEntry::new(Actor::Anonymous, "access_token.authentication_failed", Outcome::Failure)
                .from_request(ip.as_deref(), Some(&request_id))
                .details(serde_json::json!({ "reason": refused.reason }));
            if let Some(jti) = &refused.jti {
                entry = entry.target("access_token", jti);
            }
            audit::record(conn, &entry)?;
        }
        Ok(verdict)
    })
    .await?;
    let refused = match outcome {
        Ok(principal) => return Ok(principal),
        Err(refused) => refused,
    };
    let counted = failures.spend().await;
    state.metrics.authentication_failed("access_token", refused.reason);
    tracing::info!(reason = refused.reason, "access token refused");
    if !audit_refusal {
        return Err(Refusal::TooManyFailures { retry_after: counted.retry_after.max(1) });
    }
    Err(if refused.expired {
        Refusal::Expired(refused.message.to_owned())
    } else {
        Refusal::InvalidToken(refused.message.to_owned())
    })
}
