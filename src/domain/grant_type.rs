use std::fmt;
use std::str::FromStr;

/// The grants Latchkey knows (RFC 6749 §4, RFC 8693).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    TokenExchange,
    /// RFC 7523 §2.1: a JWT the client signed, exchanged for an access token.
    JwtBearer,
    /// RFC 8628 §3.4: a device polls with its device code while a person approves.
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 6] = [
        Self::AuthorizationCode,
        Self::ClientCredentials,
        Self::RefreshToken,
        Self::TokenExchange,
        Self::JwtBearer,
        Self::DeviceCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }
}

impl FromStr for GrantType {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|grant| grant.as_str() == value)
            .ok_or_else(|| format!("unknown grant type `{value}`"))
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// In the OpenAPI document: one of [`GrantType::ALL`], spelled as on the wire.
impl utoipa::PartialSchema for GrantType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::ALL.map(Self::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for GrantType {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_round_trips_through_its_wire_name() {
        for grant in GrantType::ALL {
            assert_eq!(grant.as_str().parse::<GrantType>().unwrap(), grant);
        }
        assert!("password".parse::<GrantType>().is_err());
    }
}
