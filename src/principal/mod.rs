//! Who a management-API request acts for, from the credential it presents (INTERFACE §5):
//! an API key ([`crate::apikeys`]), or a JWT ([`access_token`]): an access token Latchkey
//! issued for the management API's own audience, or one a registered client signed
//! ([`client_jwt`]). A user's token acts as the user within its scopes; a client's own, as
//! the client's service principal.
//!
//! Floor: credential (beside `apikeys`, which it names); names no HTTP family. Refusals are a
//! [`Refusal`]; the management API words them in its own format.

pub mod access_token;
pub mod client_jwt;

use actix_web::HttpRequest;

use crate::access::Reach;
use crate::apikeys::authenticate::{ApiKeyAuth, KeyRefusal, authenticate_key};
use crate::audit::{Actor, Context};
use crate::error::AppError;
use crate::ratelimit::{Limits, Tier};
use crate::state::AppState;
pub use access_token::{TokenHolder, TokenPrincipal};

/// The caller of a management-API request.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant, reason = "one per request, moved once onto the worker")]
pub enum Principal {
    Key(ApiKeyAuth),
    Token(TokenPrincipal),
}

impl Principal {
    pub fn reach(&self) -> &Reach {
        match self {
            Self::Key(auth) => &auth.reach,
            Self::Token(token) => &token.reach,
        }
    }

    /// How its changes are recorded: a key's user, service account or the key itself; a
    /// token's user "through" its client, or the client.
    pub fn audit<'a>(&'a self, ip: Option<&'a str>, request_id: &'a str) -> Context<'a> {
        match self {
            Self::Key(auth) => auth.audit(ip, request_id),
            Self::Token(token) => match &token.holder {
                TokenHolder::User(user) => Context {
                    via_client: Some(token.claims.client_id.as_str()),
                    ..Context::of(Actor::User(user), ip, Some(request_id))
                },
                TokenHolder::Client => Context::of(Actor::Client(&token.claims.client_id), ip, Some(request_id)),
            },
        }
    }

    /// The rate-limit bucket: per key, per user for a user's tokens (whichever client holds
    /// them), per client for a client's own.
    pub fn rate_limit_subject(&self) -> String {
        match self {
            Self::Key(auth) => format!("key:{}", auth.key.id),
            Self::Token(TokenPrincipal { holder: TokenHolder::User(user), .. }) => format!("user:{user}"),
            Self::Token(token) => format!("client:{}", token.claims.client_id),
        }
    }

    /// A key's tier, or the deployment's defaults.
    pub fn limits(&self, defaults: Limits) -> Limits {
        match self {
            Self::Key(auth) => {
                auth.key.tier.as_deref().and_then(|t| t.parse::<Tier>().ok()).map_or(defaults, Limits::of_tier)
            }
            Self::Token(_) => defaults,
        }
    }
}

/// Why a presented credential was refused, as the management API tells it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// A malformed, unknown, revoked or out-of-environment API key, or one whose user is not active.
    #[error("{0}")]
    InvalidKey(String),
    /// A token that is not Latchkey's, not for the management API, revoked, or whose user
    /// or client is gone.
    #[error("{0}")]
    InvalidToken(String),
    /// An expired key or token: the caller should get a new one.
    #[error("{0}")]
    Expired(String),
    /// The caller's address has used up its failed authentications: not audited, not checked.
    #[error("too many refused credentials from this address; try again in {retry_after} s")]
    TooManyFailures { retry_after: u64 },
    /// The credential could not be checked (the database failed): no fault of the caller's.
    #[error(transparent)]
    Unchecked(#[from] AppError),
}

impl From<KeyRefusal> for Refusal {
    fn from(refusal: KeyRefusal) -> Self {
        match refusal {
            KeyRefusal::Invalid(message) => Self::InvalidKey(message),
            KeyRefusal::Expired => Self::Expired(refusal.to_string()),
            KeyRefusal::TooManyFailures { retry_after } => Self::TooManyFailures { retry_after },
            KeyRefusal::Unchecked(error) => Self::Unchecked(error),
        }
    }
}

/// A person's reach as it stands now: an owner reaches everything; a member their own things
/// and, through their roles, their teams' ([`Reach::of_person`]). Signed in, or through a
/// token: the pages, the API and every credential agree.
pub fn person_reach(conn: &mut crate::db::DbConnection, user: &crate::db::users::User) -> diesel::QueryResult<Reach> {
    let is_owner = user.role == crate::db::users::ROLE_OWNER;
    let memberships = if is_owner { Vec::new() } else { crate::db::teams::memberships(conn, &user.id)? };
    Ok(Reach::of_person(&user.id, is_owner, memberships))
}

/// A client's own service principal: the tenant permissions an owner granted it.
pub fn client_reach(client: &crate::db::clients::Client) -> Reach {
    Reach { tenant: crate::access::Permissions::from_stored(&client.permissions), ..Reach::default() }
}

/// A compact JWS has three dot-separated parts; an API key has none.
fn looks_like_a_jwt(credential: &str) -> bool {
    credential.bytes().filter(|&b| b == b'.').count() == 2
}

/// Authenticates whatever was presented: a JWT as an access token, anything else as an API key.
pub async fn authenticate(req: &HttpRequest, state: &AppState, presented: String) -> Result<Principal, Refusal> {
    if looks_like_a_jwt(&presented) {
        access_token::authenticate_token(req, state, &presented).await.map(Principal::Token)
    } else {
        authenticate_key(req, state, presented).await.map(Principal::Key).map_err(Refusal::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwts_and_keys_are_told_apart_by_shape() {
        assert!(looks_like_a_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(looks_like_a_jwt("a.b."));
        assert!(!looks_like_a_jwt("sk_live_4eC39HqLyjWDarjtT1zdp7dc"));
        assert!(!looks_like_a_jwt("rk_test_abc.def"));
        assert!(!looks_like_a_jwt("a.b.c.d"));
    }
}
