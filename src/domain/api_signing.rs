//! How tokens are signed: the asymmetric algorithms of Latchkey's published keys, and for
//! each API, one of those or a secret it shares (HS256).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Asymmetric JWS algorithms a signing key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str() == value)
            .ok_or_else(|| format!("unknown signing algorithm `{value}` (expected RS256, ES256 or EdDSA)"))
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an API's access tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiSigning {
    /// With the tenant's published key of this algorithm (verifiable from the JWKS).
    Published(SigningAlgorithm),
    /// HS256 with a secret shared with this API alone.
    SharedSecret,
}

impl ApiSigning {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published(alg) => alg.as_str(),
            Self::SharedSecret => "HS256",
        }
    }
}

impl FromStr for ApiSigning {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value == "HS256" {
            return Ok(Self::SharedSecret);
        }
        value
            .parse()
            .map(Self::Published)
            .map_err(|_| format!("unknown signing algorithm `{value}` (expected RS256, ES256, EdDSA or HS256)"))
    }
}
