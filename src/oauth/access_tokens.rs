//! Minting and inspecting our JWT access tokens (RFC 9068).

use jsonwebtoken::{Algorithm, DecodingKey};

use super::error::OAuthError;
use crate::db::apis::{Api, find_api, find_api_by_audience};
use crate::db::revoked_tokens::is_revoked;
use crate::db::users::{User, find_user};
use crate::domain::Scopes;
use crate::error::AppError;
use crate::manage::apis::ApiSigning;
use crate::startup::AppState;
use crate::tokens::jwt::{self, ACCESS_TOKEN_TYP};
use crate::tokens::{AccessTokenClaims, SigningAlgorithm};

pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: i64,
    pub claims: AccessTokenClaims,
}

/// What a user's grant mints tokens for, as stored with the grant (code or refresh token).
pub struct GrantTarget {
    pub user: User,
    pub api: Option<Api>,
    pub lifetime_secs: i64,
}

impl GrantTarget {
    pub fn audience(&self) -> TokenAudience<'_> {
        self.api.as_ref().map_or(TokenAudience::Issuer, TokenAudience::Api)
    }
}

/// Loads a grant's user and API (from a blocking context): the user must still be active
/// and the API must still exist; `audience` equal to the issuer means Latchkey itself.
pub fn load_grant_target(
    conn: &mut crate::db::DbConnection,
    user_id: &str,
    audience: &str,
    issuer: &str,
    default_ttl_secs: i64,
) -> Result<GrantTarget, OAuthError> {
    let Some(user) = find_user(conn, user_id)?.filter(User::is_active) else {
        return Err(OAuthError::invalid_grant("the user is no longer active"));
    };
    let api = if audience == issuer {
        None
    } else {
        let api = find_api_by_audience(conn, audience)?;
        Some(api.ok_or_else(|| OAuthError::invalid_grant("the API no longer exists"))?)
    };
    let lifetime_secs = api.as_ref().map_or(default_ttl_secs, |api| api.token_lifetime_secs);
    Ok(GrantTarget { user, api, lifetime_secs })
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
    /// Seconds an access token for this audience lives.
    pub fn lifetime_secs(&self, state: &AppState) -> i64 {
        match self {
            Self::Api(api) => api.token_lifetime_secs,
            Self::Issuer => state.settings.access_token_ttl_secs,
        }
    }
}

/// Signs an access token with the given `jti`, as its audience asks: with the tenant's key
/// of the API's algorithm, HS256 with the API's shared secret, or RS256 for ourselves.
pub async fn mint_access_token(
    state: &AppState,
    audience: TokenAudience<'_>,
    subject: &str,
    client_id: &str,
    scope: &Scopes,
    jti: String,
) -> Result<IssuedAccessToken, AppError> {
    let now = chrono::Utc::now().timestamp();
    let lifetime = audience.lifetime_secs(state);
    let claims = AccessTokenClaims {
        iss: state.issuer.to_string(),
        sub: subject.to_owned(),
        aud: match audience {
            TokenAudience::Api(api) => api.audience.clone(),
            TokenAudience::Issuer => state.issuer.to_string(),
        },
        exp: now + lifetime,
        iat: now,
        jti,
        client_id: client_id.to_owned(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
    };
    let token = match audience {
        TokenAudience::Api(api) if api.signing() == ApiSigning::SharedSecret => {
            jwt::sign_hs256(&shared_secret(state, api)?, &api.id, ACCESS_TOKEN_TYP, &claims)
        }
        TokenAudience::Api(api) => {
            let algorithm = match api.signing() {
                ApiSigning::Published(algorithm) => algorithm,
                ApiSigning::SharedSecret => SigningAlgorithm::RS256,
            };
            jwt::sign(&*state.active_key(algorithm).await?, ACCESS_TOKEN_TYP, &claims)
        }
        TokenAudience::Issuer => {
            jwt::sign(&*state.active_key(SigningAlgorithm::RS256).await?, ACCESS_TOKEN_TYP, &claims)
        }
    };
    Ok(IssuedAccessToken { token, expires_in: lifetime, claims })
}

fn shared_secret(state: &AppState, api: &Api) -> Result<Vec<u8>, AppError> {
    let sealed = api.secret_sealed.as_deref().ok_or_else(|| anyhow::anyhow!("HS256 API {} has no secret", api.id))?;
    state
        .sealer
        .open(sealed, &Api::seal_context(&api.id))
        .map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context(format!("the secret of API {}", api.id))))
}

/// What a presented access token is, for introspection and revocation.
#[derive(Debug)]
pub enum AccessTokenStatus {
    /// Signed by us, unexpired, not revoked.
    Active(AccessTokenClaims),
    /// Ours, but revoked.
    Revoked(AccessTokenClaims),
    /// Not a token we issued, or expired.
    Unknown,
}

/// Verifies a token as its issuer: the key is chosen by `kid`, and the algorithm is the
/// key's own — an `alg: none` or an HS256 token "signed" with a public key never verifies.
pub async fn inspect_access_token(state: &AppState, token: &str) -> Result<AccessTokenStatus, AppError> {
    let Some(header) = jwt::peek_header(token) else {
        return Ok(AccessTokenStatus::Unknown);
    };
    let Some(kid) = header.kid else {
        return Ok(AccessTokenStatus::Unknown);
    };
    let issuer = state.issuer.to_string();
    let verified = if header.alg == Algorithm::HS256 {
        let lookup = kid.clone();
        let api = crate::db::run(&state.pool, move |conn| Ok(find_api(conn, &lookup)?)).await?;
        match api.filter(|api| api.signing() == ApiSigning::SharedSecret) {
            Some(api) => {
                let key = DecodingKey::from_secret(&shared_secret(state, &api)?);
                jwt::verify_access_token(token, Algorithm::HS256, &key, &issuer)
                    .ok()
                    .filter(|claims| claims.aud == api.audience)
            }
            None => None,
        }
    } else {
        let keys = state.keys_knowing(&kid).await?;
        keys.verifying_key(&kid).and_then(|(alg, key)| jwt::verify_access_token(token, alg, key, &issuer).ok())
    };
    let Some(claims) = verified else {
        return Ok(AccessTokenStatus::Unknown);
    };
    let jti = claims.jti.clone();
    let revoked = crate::db::run(&state.pool, move |conn| Ok(is_revoked(conn, &jti)?)).await?;
    Ok(if revoked { AccessTokenStatus::Revoked(claims) } else { AccessTokenStatus::Active(claims) })
}

impl AppState {
    /// The key that signs for `algorithm`. A key made since the last reload (by the CLI
    /// or another instance) is picked up here rather than failing the request.
    pub async fn active_key(
        &self,
        algorithm: SigningAlgorithm,
    ) -> Result<std::sync::Arc<crate::tokens::keyset::ActiveKey>, AppError> {
        if let Some(key) = self.keys.current().active(algorithm) {
            return Ok(key.clone());
        }
        self.reload_keys().await?;
        self.keys
            .current()
            .active(algorithm)
            .cloned()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("there is no active {algorithm} signing key")))
    }
}
