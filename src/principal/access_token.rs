//! A JWT presented to the management API as a bearer credential, told apart by `iss`:
//!
//! - an access token Latchkey issued (RFC 9068): it counts only if Latchkey signed it with
//!   one of its own keys for the management API's audience, it has not expired or been
//!   revoked (checked in the database on every request, so a revocation holds on every
//!   instance at once), and its client, and its user for a user's token, still exist and are
//!   active;
//! - a JWT a registered client signed itself, as the guides show (`iss` the client, `aud` the
//!   management API, at most an hour long): checked against the client's sealed secret or
//!   registered keys ([`client_jwt`]); the client must be registered for the management API.
//!
//! What it may do is what its holder reaches, narrowed by its scopes
//! ([`Reach::limited_to`]): a user's token reaches what the user does; a client's own token
//! (`sub` is the client) what an owner granted the client's service principal.

use actix_web::HttpRequest;
use jsonwebtoken::errors::ErrorKind;

use super::client_jwt::{self, Expectations, KeyMaterial};
use super::{Refusal, client_reach, person_reach};
use crate::access::{Permissions, Reach};
use crate::audit::{self, Actor, AuditEntry, Origin, Outcome};
use crate::db::DbConnection;
use crate::db::clients::{Client, find_client};
use crate::db::revoked_tokens::is_revoked;
use crate::db::users::{User, find_user};
use crate::error::AppError;
use crate::ratelimit::FailureBudget;
use crate::state::AppState;
use crate::tokens::AccessTokenClaims;
use crate::tokens::jwt::{self, TokenKey};

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
    let Some(presented) = jwt::PresentedJws::parse(token) else {
        return Ok(Err(Refused::invalid("malformed", NOT_OURS)));
    };
    let Some(kid) = presented.kid() else {
        return Ok(Err(Refused::invalid("malformed", NOT_OURS)));
    };
    let keys = state.keys_knowing(kid).await?;
    Ok(verify_with(&keys, kid, &presented, state.issuer.as_str(), audience))
}

fn verify_with(
    keys: &crate::tokens::KeySet,
    kid: &str,
    presented: &jwt::PresentedJws<'_>,
    issuer: &str,
    audience: &str,
) -> Result<AccessTokenClaims, Refused> {
    // The algorithm is the key's own: `alg: none`, or HS256 "signed" with a public key,
    // never verifies. HS256 tokens belong to APIs that share a secret, never to this one.
    let Some(key) = keys.verifying_key(kid) else {
        return Err(Refused::invalid("unknown key", NOT_OURS));
    };
    let claims = presented.verify_access_token(TokenKey::Published(&key.parsed), issuer).map_err(|e| {
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
        (TokenHolder::Client, client_reach(&client))
    } else {
        let Some(user) = find_user(conn, &claims.sub)?.filter(User::is_active) else {
            return Ok(Err(Refused::invalid("owner not active", "the access token's user is not active").of(&claims)));
        };
        (TokenHolder::User(user.id.clone()), person_reach(conn, &user)?)
    };
    Ok(Ok(TokenPrincipal { holder, client_name: client.name, reach: reach.limited_to(limit), claims }))
}

/// Where checking a token stands after the first trip to the database. Built once and
/// moved once, out of the blocking call: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Step {
    Done(Result<TokenPrincipal, Refused>),
    /// A client's JWT whose keys are at its `jwks_uri`: fetched between two trips.
    FetchKeys(Client),
}

/// Audits a refusal while the caller's address may still be audited.
fn record_refusal(
    conn: &mut DbConnection,
    verdict: &Result<TokenPrincipal, Refused>,
    audit_refusal: bool,
    origin: &Origin,
) -> Result<(), AppError> {
    let Err(refused) = verdict else { return Ok(()) };
    if !audit_refusal {
        return Ok(());
    }
    let mut entry = AuditEntry::new(Actor::Anonymous, "access_token.authentication_failed", Outcome::Failure)
        .from_request(origin.ip.as_deref(), Some(&origin.request_id))
        .details(serde_json::json!({ "reason": refused.reason }));
    if let Some(jti) = &refused.jti {
        entry = entry.target("access_token", jti);
    }
    Ok(audit::record(conn, &entry)?)
}

/// The longest a client's own JWT may live on the management API, as the guides sign it.
const MAX_CLIENT_JWT_LIFETIME_SECS: i64 = 3600;

/// A JWT the client signed: the client, its key, then whom it speaks for.
fn load_client_jwt_principal(
    conn: &mut DbConnection,
    client: Client,
    material: &KeyMaterial,
    token: &str,
    audience: &str,
) -> Result<Result<TokenPrincipal, Refused>, AppError> {
    let refused = |reason: &'static str| Refused::invalid(reason, reason);
    if !client.audiences().any(|a| a == audience) {
        return Ok(Err(refused("the JWT's client is not registered for the management API")));
    }
    let expect =
        Expectations { audiences: &[audience], max_lifetime_secs: MAX_CLIENT_JWT_LIFETIME_SECS, require_jti: false };
    let now = chrono::Utc::now().timestamp();
    let claims = match client_jwt::verify(token, &client, material, expect, now) {
        Ok(claims) => claims,
        Err(reason) => return Ok(Err(Refused { expired: reason == client_jwt::EXPIRED, ..refused(reason) })),
    };
    let speaker = match client_jwt::speaks_for(conn, &client, &claims.sub, audience)? {
        Ok(speaker) => speaker,
        Err(reason) => return Ok(Err(refused(reason))),
    };
    let reach = match &speaker.user {
        None => client_reach(&client),
        Some(user) => person_reach(conn, user)?,
    };
    let scope = speaker.scopes.to_string();
    let claims = AccessTokenClaims {
        iss: client.client_id.clone(),
        sub: claims.sub,
        aud: audience.to_owned(),
        exp: claims.exp,
        iat: claims.iat.unwrap_or(now),
        jti: claims.jti.unwrap_or_default(),
        client_id: client.client_id.clone(),
        scope: Some(scope),
        auth_time: None,
        acr: None,
        amr: None,
        nbf: None,
    };
    let limit = Permissions::from_scopes(speaker.scopes.iter());
    Ok(Ok(TokenPrincipal { holder: speaker.holder, client_name: client.name, reach: reach.limited_to(limit), claims }))
}

/// Checks a presented JWT: an access token Latchkey issued, or one a client signed.
/// Refusals count against the caller's address ([`FailureBudget`]) and are audited as
/// API-key refusals are, until the address has used up its failures.
pub async fn authenticate_token(req: &HttpRequest, state: &AppState, token: &str) -> Result<TokenPrincipal, Refusal> {
    let failures = FailureBudget::of(&state.limiter, req.peer_addr().map(|a| a.ip()), &state.settings);
    let audit_refusal = failures.allows().await.allowed;
    let audience = state.issuer.management_api_audience();
    // Latchkey's own tokens are checked before the database; a client's need its row first.
    let issued_by_latchkey = client_jwt::claimed_issuer(token).as_deref() == Some(state.issuer.as_str());
    let verified = if issued_by_latchkey { Some(verify_signature(state, token, &audience).await?) } else { None };
    let origin = Origin::of(req);
    let (sealer, owned) = (state.sealer.clone(), token.to_owned());
    let (audit_origin, audit_audience) = (origin.clone(), audience.clone());
    // One trip: a client's JWT needs no second one unless its keys are at a jwks_uri.
    let step = crate::db::run(&state.pool, move |conn| -> Result<Step, AppError> {
        let verdict = match verified {
            Some(Ok(claims)) => load_principal(conn, claims)?,
            Some(Err(refused)) => Err(refused),
            None => {
                match client_jwt::claimed_issuer(&owned).map(|iss| find_client(conn, &iss)).transpose()?.flatten() {
                    None => Err(Refused::invalid("unknown issuer", NOT_OURS)),
                    Some(client) => match client_jwt::local_key_material(&sealer, &client)? {
                        None => return Ok(Step::FetchKeys(client)),
                        Some(Err(reason)) => Err(Refused::invalid(reason, reason)),
                        Some(Ok(material)) => {
                            load_client_jwt_principal(conn, client, &material, &owned, &audit_audience)?
                        }
                    },
                }
            }
        };
        record_refusal(conn, &verdict, audit_refusal, &audit_origin)?;
        Ok(Step::Done(verdict))
    })
    .await?;
    let outcome = match step {
        Step::Done(verdict) => verdict,
        Step::FetchKeys(client) => {
            let material = client_jwt::resolve_key_material(state, &client, token).await?;
            let owned = token.to_owned();
            crate::db::run(&state.pool, move |conn| {
                let verdict = match material {
                    Ok(material) => load_client_jwt_principal(conn, client, &material, &owned, &audience)?,
                    Err(reason) => Err(Refused::invalid(reason, reason)),
                };
                record_refusal(conn, &verdict, audit_refusal, &origin)?;
                Ok(verdict)
            })
            .await?
        }
    };
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
