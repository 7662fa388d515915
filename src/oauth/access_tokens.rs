//! Minting and inspecting our JWT access tokens (RFC 9068).

use jsonwebtoken::{Algorithm, DecodingKey};

use crate::db::apis::{Api, find_api};
use crate::db::revoked_tokens::is_revoked;
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

/// Signs an access token for `api`, as that API asks: with the tenant's key of its
/// algorithm, or HS256 with its shared secret.
pub async fn mint_access_token(
    state: &AppState,
    api: &Api,
    subject: &str,
    client_id: &str,
    scope: &Scopes,
) -> Result<IssuedAccessToken, AppError> {
    let now = chrono::Utc::now().timestamp();
    let lifetime = api.token_lifetime_secs;
    let claims = AccessTokenClaims {
        iss: state.issuer.to_string(),
        sub: subject.to_owned(),
        aud: api.audience.clone(),
        exp: now + lifetime,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client_id.to_owned(),
        scope: (!scope.is_empty()).then(|| scope.to_string()),
    };
    let token = match api.signing() {
        ApiSigning::Published(algorithm) => {
            let key = state.active_key(algorithm).await?;
            jwt::sign(&key, ACCESS_TOKEN_TYP, &claims)
        }
        ApiSigning::SharedSecret => jwt::sign_hs256(&shared_secret(state, api)?, &api.id, ACCESS_TOKEN_TYP, &claims),
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
        let keys = state.keys.current();
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
