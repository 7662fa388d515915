//! Rate limits per API key and per client (INTERFACE §5).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A key's service tier: its hourly quota and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 1,000 requests an hour, bursts of 50.
    Free,
    /// 10,000 requests an hour, bursts of 200.
    Pro,
    /// No hourly cap, bursts of 1,000.
    Enterprise,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::Enterprise => "enterprise",
        }
    }
}

impl FromStr for Tier {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        [Self::Free, Self::Pro, Self::Enterprise]
            .into_iter()
            .find(|t| t.as_str() == value)
            .ok_or_else(|| format!("unknown tier `{value}` (expected free, pro or enterprise)"))
    }
}
