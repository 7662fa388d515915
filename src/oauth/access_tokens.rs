//! Minting and inspecting our JWT access tokens (RFC 9068).

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::error::OAuthError;
use crate::crypto::Sealer;
use crate::db::DbConnection;
use crate::db::apis::{Api, find_api, find_api_by_audience};
use crate::db::changes::Cached;
use crate::db::revoked_tokens::is_revoked;
use crate::db::users::User;
use crate::domain::ApiSigning;
use crate::domain::Authentication;
use crate::domain::Scopes;
use crate::domain::SigningAlgorithm;
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::jwt::{self, ACCESS_TOKEN_TYP, TokenKey};
use crate::tokens::keyset::ActiveKey;
use crate::tokens::{AccessTokenClaims, IssuanceProof, KeySet, KeyStore};

pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: i64,
    pub claims: AccessTokenClaims,
}

/// What a user's grant mints tokens for, as stored with the grant (code or refresh token).
pub struct GrantTarget {
    pub user: User,
    pub api: Option<Arc<Api>>,
    pub lifetime_secs: i64,
}

impl GrantTarget {
    pub fn audience(&self) -> TokenAudience<'_> {
        self.api.as_deref().map_or(TokenAudience::Issuer, TokenAudience::Api)
    }
}

/// Checks a grant's user, as read with the grant, and loads its API (from a blocking
/// context): the user must still be active and the API must still exist; `audience` equal
/// to the issuer means Latchkey itself. The API comes from the cache the client-credentials
/// grant fills, read on `conn` when it is not there: one round trip less for every code,
/// refresh and device grant.
fn load_grant_target(
    conn: &mut crate::db::DbConnection,
    apis: &Cached<String, Api>,
    user: User,
    audience: &str,
    issuer: &str,
    default_ttl_secs: i64,
) -> Result<GrantTarget, OAuthError> {
    if !user.is_active() {
        return Err(OAuthError::invalid_grant("the user is no longer active"));
    }
    let api = if audience == issuer {
        None
    } else {
        let api = apis.get_or_read_on(conn, audience, find_api_by_audience)?;
        Some(api.ok_or_else(|| OAuthError::invalid_grant("the API no longer exists"))?)
    };
    let lifetime_secs = api.as_ref().map_or(default_ttl_secs, |api| api.token_lifetime_secs);
    Ok(GrantTarget { user, api, lifetime_secs })
}

/// What a person's grant (a code, a refresh, an approved device) needs in its database trip
/// to check whom and what it mints for, and to draft the access token it records.
#[derive(Clone)]
pub struct GrantDrafter {
    issuer: String,
    proof: IssuanceProof,
    default_ttl_secs: i64,
    apis: Arc<Cached<String, Api>>,
}

impl GrantDrafter {
    pub fn of(state: &AppState) -> Self {
        Self {
            issuer: state.issuer.to_string(),
            proof: state.issuance.clone(),
            default_ttl_secs: state.settings.access_token_ttl_secs,
            apis: state.caches.apis.clone(),
        }
    }

    /// The grant's user and API (as [`load_grant_target`] checks them) and the claims of the
    /// access token for `scope` that `client_id` receives.
    pub fn draft(
        &self,
        conn: &mut crate::db::DbConnection,
        user: User,
        audience: &str,
        client_id: &str,
        scope: &Scopes,
        authentication: Option<&Authentication>,
    ) -> Result<(GrantTarget, AccessTokenClaims), OAuthError> {
        let target = load_grant_target(conn, &self.apis, user, audience, &self.issuer, self.default_ttl_secs)?;
        let claims = draft_access_token(
            &self.issuer,
            &self.proof,
            target.audience(),
            Drafted { lifetime_secs: target.lifetime_secs, subject: &target.user.id, client_id, scope, authentication },
        );
        Ok((target, claims))
    }
}

/// Who an access token is for.
#[derive(Debug, Clone, Copy)]
pub enum TokenAudience<'a> {
    /// A registered API: its algorithm, lifetime and audience.
    Api(&'a Api),
    /// Latchkey itself (userinfo): RS256, the default lifetime.
    Issuer,
}

impl TokenAudience<'_> {
    /// Seconds an access token for this audience lives: the API's own setting, or
    /// `default_ttl_secs` for Latchkey itself.
    pub fn lifetime_secs(&self, default_ttl_secs: i64) -> i64 {
        match self {
            Self::Api(api) => api.token_lifetime_secs,
            Self::Issuer => default_ttl_secs,
        }
    }

    fn shares_a_secret(&self) -> bool {
        matches!(self, Self::Api(api) if api.signing() == ApiSigning::SharedSecret)
    }
}

/// What an access token is about to say, besides its issuer and audience.
pub struct Drafted<'a> {
    pub lifetime_secs: i64,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub scope: &'a Scopes,
    /// A person's sign-in, for the tokens of their grants; `None` for a client's own.
    pub authentication: Option<&'a Authentication>,
}

/// The claims of an access token about to be issued, with a fresh `jti`; an HS256 token's
/// `jti` carries the proof that Latchkey issued it. Pure and cheap, so that grants which
/// record the token (a code or refresh token remembers its `jti`, to revoke it on replay)
/// draft it inside their transaction and sign it after, outside the database trip.
pub fn draft_access_token(
    issuer: &str,
    proof: &IssuanceProof,
    audience: TokenAudience<'_>,
    drafted: Drafted<'_>,
) -> AccessTokenClaims {
    let Drafted { lifetime_secs, subject, client_id, scope, authentication } = drafted;
    let now = chrono::Utc::now().timestamp();
    let mut claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: subject.to_owned(),
        aud: match audience {
            TokenAudience::Api(api) => api.audience.clone(),
            TokenAudience::Issuer => issuer.to_owned(),
        },
        exp: now + lifetime_secs,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client_id.to_owned(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
        auth_time: authentication.map(Authentication::auth_time),
        acr: authentication.map(|a| a.methods.acr().to_owned()),
        amr: authentication.map(|a| a.methods.amr()),
        nbf: None,
    };
    if audience.shares_a_secret() {
        proof.seal(&mut claims);
    }
    claims
}

/// What signs a token for an audience, found before signing so that signing itself is
/// the same in async and blocking contexts.
enum SigningMaterial {
    /// An HS256 API's shared secret; the API's id is the token's `kid`.
    SharedSecret { secret: Vec<u8>, api_id: String },
    /// One of the tenant's keys: of the API's algorithm, or RS256 for Latchkey itself.
    Key(Arc<ActiveKey>),
}

/// The algorithm of the tenant key that signs for `audience`; `None` for an API that
/// shares a secret.
fn key_algorithm(audience: TokenAudience<'_>) -> Option<SigningAlgorithm> {
    match audience {
        TokenAudience::Api(api) => match api.signing() {
            ApiSigning::SharedSecret => None,
            ApiSigning::Published(algorithm) => Some(algorithm),
        },
        TokenAudience::Issuer => Some(SigningAlgorithm::RS256),
    }
}

fn sign_with(material: &SigningMaterial, claims: AccessTokenClaims) -> IssuedAccessToken {
    let token = match material {
        SigningMaterial::SharedSecret { secret, api_id } => jwt::sign_hs256(secret, api_id, ACCESS_TOKEN_TYP, &claims),
        SigningMaterial::Key(key) => jwt::sign(key, ACCESS_TOKEN_TYP, &claims),
    };
    IssuedAccessToken { token, expires_in: claims.exp - claims.iat, claims }
}

fn shared_secret_of(audience: TokenAudience<'_>, sealer: &Sealer) -> Result<SigningMaterial, AppError> {
    let TokenAudience::Api(api) = audience else {
        return Err(AppError::Unexpected(anyhow::anyhow!("Latchkey's own tokens are never HS256")));
    };
    Ok(SigningMaterial::SharedSecret { secret: shared_secret(sealer, api)?, api_id: api.id.clone() })
}

/// Signs drafted claims as their audience asks: HS256 with the API's shared secret, the
/// tenant's key of the API's algorithm, or RS256 for Latchkey itself.
pub async fn sign_access_token(
    state: &AppState,
    audience: TokenAudience<'_>,
    claims: AccessTokenClaims,
) -> Result<IssuedAccessToken, AppError> {
    let material = match key_algorithm(audience) {
        Some(algorithm) => SigningMaterial::Key(state.active_key(algorithm).await?),
        None => shared_secret_of(audience, &state.sealer)?,
    };
    Ok(sign_with(&material, claims))
}

/// Signs access tokens from a blocking context, with the database connection at hand: for
/// a grant whose answer is stored in the same transaction as what it records (a refresh's
/// answer is kept for its retries), so the token must exist before the commit.
#[derive(Clone)]
pub struct BlockingSigner {
    keys: Arc<KeyStore>,
    sealer: Sealer,
}

impl BlockingSigner {
    pub fn of(state: &AppState) -> Self {
        Self { keys: state.keys.clone(), sealer: state.sealer.clone() }
    }

    pub fn sign(
        &self,
        conn: &mut DbConnection,
        audience: TokenAudience<'_>,
        claims: AccessTokenClaims,
    ) -> Result<IssuedAccessToken, AppError> {
        let material = match key_algorithm(audience) {
            Some(algorithm) => SigningMaterial::Key(self.active_key(conn, algorithm)?),
            None => shared_secret_of(audience, &self.sealer)?,
        };
        Ok(sign_with(&material, claims))
    }

    /// As [`AppState::active_key`]: a key made since the last reload (by the CLI or another
    /// instance) is read here, on the connection the caller holds.
    fn active_key(&self, conn: &mut DbConnection, algorithm: SigningAlgorithm) -> Result<Arc<ActiveKey>, AppError> {
        if let Some(key) = self.keys.current().active(algorithm) {
            return Ok(key.clone());
        }
        let generation = self.keys.begin_load();
        self.keys.install(generation, KeySet::load(conn, &self.sealer, crate::db::now())?);
        self.keys
            .current()
            .active(algorithm)
            .cloned()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("there is no active {algorithm} signing key")))
    }
}

/// Drafts and signs an access token that nothing records (client credentials, token
/// exchange); `claims.jti` of the result names it.
pub async fn mint_access_token(
    state: &AppState,
    audience: TokenAudience<'_>,
    subject: &str,
    client_id: &str,
    scope: &Scopes,
) -> Result<IssuedAccessToken, AppError> {
    let lifetime = audience.lifetime_secs(state.settings.access_token_ttl_secs);
    let drafted = Drafted { lifetime_secs: lifetime, subject, client_id, scope, authentication: None };
    let claims = draft_access_token(state.issuer.as_str(), &state.issuance, audience, drafted);
    sign_access_token(state, audience, claims).await
}

fn shared_secret(sealer: &Sealer, api: &Api) -> Result<Vec<u8>, AppError> {
    let sealed = api.secret_sealed.as_deref().ok_or_else(|| anyhow::anyhow!("HS256 API {} has no secret", api.id))?;
    sealer
        .open(sealed, &Api::seal_context(&api.id))
        .map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context(format!("the secret of API {}", api.id))))
}

/// Whose key a verified token was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// One of Latchkey's own asymmetric keys: only Latchkey can have signed it.
    Latchkey,
    /// An API's shared secret, which the API's operators hold too; the token carried
    /// Latchkey's issuance proof, so its claims are exactly what Latchkey issued.
    SharedSecret,
}

/// What a presented access token is, for introspection, revocation and userinfo.
#[derive(Debug)]
pub enum AccessTokenStatus {
    /// Issued by us, unexpired, not revoked.
    Active(AccessTokenClaims, Signer),
    /// Ours, but revoked.
    Revoked(AccessTokenClaims),
    /// Not a token we issued, or expired.
    Unknown,
}

/// Verifies a token as its issuer: the key is chosen by `kid`, and the algorithm is the
/// key's own — an `alg: none` or an HS256 token "signed" with a public key never verifies.
/// An HS256 token counts only with Latchkey's issuance proof: the API's secret alone makes
/// anyone who holds it an issuer of whatever claims they like.
pub async fn inspect_access_token(state: &AppState, token: &str) -> Result<AccessTokenStatus, AppError> {
    let Some(presented) = jwt::PresentedJws::parse(token) else {
        return Ok(AccessTokenStatus::Unknown);
    };
    let Some(kid) = presented.kid() else {
        return Ok(AccessTokenStatus::Unknown);
    };
    let issuer = state.issuer.as_str();
    let verified = if presented.algorithm() == Algorithm::HS256 {
        let api =
            state.caches.apis_by_id.get_or_read(&state.pool, kid.to_owned(), |conn, id| find_api(conn, id)).await?;
        match api.filter(|api| api.signing() == ApiSigning::SharedSecret) {
            Some(api) => {
                // Unsealed for this token only: the cache keeps the secret sealed.
                let secret = shared_secret(&state.sealer, &api)?;
                presented
                    .verify_access_token(TokenKey::SharedSecret(&secret), issuer)
                    .ok()
                    .filter(|claims| claims.aud == api.audience && state.issuance.verify(claims))
                    .map(|claims| (claims, Signer::SharedSecret))
            }
            None => None,
        }
    } else {
        let keys = state.keys_knowing(kid).await?;
        keys.verifying_key(kid)
            .and_then(|key| presented.verify_access_token(TokenKey::Published(&key.parsed), issuer).ok())
            .map(|claims| (claims, Signer::Latchkey))
    };
    let Some((claims, signer)) = verified else {
        return Ok(AccessTokenStatus::Unknown);
    };
    // From the cache while no token has been revoked since: a revocation anywhere drops it.
    let revoked = state
        .caches
        .revocations
        .get_or_read(&state.pool, claims.jti.clone(), |conn, jti| is_revoked(conn, jti).map(Some))
        .await?
        .is_some_and(|revoked| *revoked);
    Ok(if revoked { AccessTokenStatus::Revoked(claims) } else { AccessTokenStatus::Active(claims, signer) })
}
