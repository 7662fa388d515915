//! The kinds of API key (INTERFACE §5), as stored and as the API spells them.

use serde::{Deserialize, Serialize};

/// The kinds of key (INTERFACE §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyKind {
    /// Acts as its user, and lives only while the user is active.
    Personal,
    /// Acts as a service account, with its tenant permissions.
    Service,
    /// Acts in one team, with a team role.
    Team,
    /// Reaches everything in the tenant.
    TenantOwner,
    /// Carries an explicit subset of permissions (`rk_`).
    Restricted,
}

impl ApiKeyKind {
    pub const ALL: [ApiKeyKind; 5] = [Self::Personal, Self::Service, Self::Team, Self::TenantOwner, Self::Restricted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Service => "service",
            Self::Team => "team",
            Self::TenantOwner => "tenant_owner",
            Self::Restricted => "restricted",
        }
    }

    /// The kind a stored row names; `None` for anything this build does not know.
    pub fn from_stored(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_as_stored() {
        for kind in ApiKeyKind::ALL {
            assert_eq!(ApiKeyKind::from_stored(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(ApiKeyKind::from_stored("wizard"), None);
    }
}
