//! Values parsed once at the edge and trusted afterwards.
//!
//! Floor: leaves (docs/architecture.md); names nothing of the app.

mod api_key_kind;
mod api_signing;
mod email;
mod grant_type;
mod issuer;
mod name;
mod pkce;
mod recovery_code;
mod return_to;
mod scopes;
mod sign_in;
mod uri;
mod user_code;
mod whole_number;

pub use api_key_kind::ApiKeyKind;
pub use api_signing::{ApiSigning, SigningAlgorithm};
pub use email::{Email, EmailError};
pub use grant_type::GrantType;
pub use issuer::Issuer;
pub use name::{DisplayName, MAX_NAME_CHARS, NameError, OptionalDisplayName};
pub use pkce::{CodeChallenge, PkceError};
pub use recovery_code::RecoveryCode;
pub use return_to::ReturnTo;
pub use scopes::{ScopeError, Scopes};
pub use sign_in::{ACR_MULTI_FACTOR, ACR_PASSWORD, ACR_VALUES_SUPPORTED, Authentication, SignInMethod, SignInMethods};
pub use uri::{RedirectUri, ResourceUri, UriError};
pub use user_code::UserCode;
pub use whole_number::{optional_whole_number, whole_number};
