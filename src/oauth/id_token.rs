//! OpenID Connect ID tokens (OIDC Core §2): who signed in, for which client, with the
//! client's `nonce`. Signed RS256, the algorithm every relying party supports.

use serde::{Deserialize, Serialize};

use crate::db::users::User;
use crate::domain::SigningAlgorithm;
use crate::domain::{Authentication, Scopes};
use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::jwt;

/// ID tokens are for the client's eyes right after sign-in, not for calling APIs.
pub const ID_TOKEN_LIFETIME_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    /// How the person signed in (OIDC Core §2, RFC 8176).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An ID token for `user`, carrying the claims the granted scopes allow.
pub async fn mint_id_token(
    state: &AppState,
    user: &User,
    client_id: &str,
    scope: &Scopes,
    nonce: Option<String>,
    authentication: &Authentication,
) -> Result<String, AppError> {
    let now = chrono::Utc::now().timestamp();
    let claims = IdTokenClaims {
        iss: state.issuer.to_string(),
        sub: user.id.clone(),
        aud: client_id.to_owned(),
        exp: now + ID_TOKEN_LIFETIME_SECS,
        iat: now,
        auth_time: authentication.auth_time(),
        acr: Some(authentication.methods.acr().to_owned()),
        amr: Some(authentication.methods.amr()),
        nonce,
        email: scope.contains("email").then(|| user.email.clone()),
        name: if scope.contains("profile") { user.name.clone() } else { None },
    };
    let key = state.active_key(SigningAlgorithm::RS256).await?;
    Ok(jwt::sign(&key, "JWT", &claims))
}

/// The claims of an ID token we issued, as an `id_token_hint` (OIDC RP-Initiated Logout
/// §2): signature and issuer checked, expiry not, since hints are often old.
pub fn verify_hint(state: &AppState, token: &str) -> Option<IdTokenClaims> {
    let presented = jwt::PresentedJws::parse(token)?;
    let keys = state.keys.current();
    let key = keys.verifying_key(presented.kid()?)?;
    let mut validation = jsonwebtoken::Validation::new(key.algorithm());
    validation.set_issuer(&[state.issuer.as_str()]);
    validation.validate_exp = false;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    jsonwebtoken::decode::<IdTokenClaims>(token, &key.decoding, &validation).ok().map(|data| data.claims)
}
