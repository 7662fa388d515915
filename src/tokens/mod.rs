//! Tokens: signing keys and their rotation, the published key set, and JWTs (RFC 9068).
//!
//! Floor: core (docs/architecture.md); names storage and leaves only.

pub mod issuance;
pub mod jwt;
pub mod keys;
pub mod keyset;

pub use issuance::IssuanceProof;
pub use jwt::AccessTokenClaims;
pub use keyset::{KeySet, KeyStore};
