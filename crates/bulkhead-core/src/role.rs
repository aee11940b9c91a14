//! What an API key may do inside its one tenant. Roles are ordered: each includes the rights of
//! the ones below it, so a check is a single comparison.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Read records, query, list collections and audit events.
    Read,
    /// `Read` plus writing records and creating or deleting collections.
    Write,
    /// `Write` plus managing the tenant's API keys.
    TenantAdmin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Read, Role::Write, Role::TenantAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "READ",
            Role::Write => "WRITE",
            Role::TenantAdmin => "TENANT_ADMIN",
        }
    }

    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| CoreError::InvalidId {
                kind: "role",
                value: s.to_owned(),
                reason: "expected READ, WRITE or TENANT_ADMIN",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_rights() {
        assert!(Role::TenantAdmin.allows(Role::Write));
        assert!(Role::Write.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write));
        assert!(!Role::Write.allows(Role::TenantAdmin));
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("read".parse::<Role>().is_err());
    }
}
