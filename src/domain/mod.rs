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
mod return_to;
mod scopes;
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
pub use return_to::ReturnTo;
pub use scopes::{ScopeError, Scopes};
pub use uri::{RedirectUri, ResourceUri, UriError};
pub use user_code::UserCode;
pub use whole_number::{optional_whole_number, whole_number};
