//! Tenant and collection identifiers. They become RocksDB column-family names and key prefixes,
//! so they are validated once here and never normalised: `Acme` is rejected rather than lowered,
//! which makes it impossible for two spellings to address one partition.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CoreError, Result};

/// Longest identifier: one leading character plus up to 62 more.
pub const MAX_ID_LEN: usize = 63;

/// Checks the rule `[a-z0-9][a-z0-9_-]{0,62}` over raw bytes, so no unicode lookalike,
/// whitespace, separator or percent-escape can pass.
fn validate_id(kind: &'static str, value: &str) -> Result<()> {
    let invalid = |reason| CoreError::InvalidId {
        kind,
        value: value.to_owned(),
        reason,
    };
    let bytes = value.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(invalid("must not be empty"));
    };
    if bytes.len() > MAX_ID_LEN {
        return Err(invalid("must be at most 63 characters"));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(invalid("must start with a lowercase ASCII letter or digit"));
    }
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-';
    if !bytes.iter().all(allowed) {
        return Err(invalid(
            "may contain only lowercase ASCII letters, digits, '_' and '-'",
        ));
    }
    Ok(())
}

macro_rules! validated_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `value`; never alters it.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                validate_id($kind, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = CoreError;

            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

validated_id!(
    /// Names one tenant, i.e. one storage partition.
    TenantId,
    "tenant"
);
validated_id!(
    /// Names one collection inside a tenant.
    CollectionId,
    "collection"
);
validated_id!(
    /// Names one API key inside a tenant.
    KeyId,
    "key"
);
validated_id!(
    /// Names one session (an agent's or a chat's working memory) inside a tenant.
    SessionId,
    "session"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "0", "acme", "acme-corp_2", &"a".repeat(63)] {
            assert_eq!(TenantId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_without_normalising() {
        let bad = [
            "",
            "Acme",
            "-acme",
            "_acme",
            "acme corp",
            "acme/x",
            "acme%2fx",
            "..",
            "a.b",
            "acme\0",
            " acme",
            "acme ",
            "аcme",  // Cyrillic 'а'
            "ａcme", // fullwidth
        ];
        for b in bad {
            assert!(TenantId::new(b).is_err(), "{b:?} accepted");
        }
        assert!(TenantId::new("a".repeat(64)).is_err());
    }

    #[test]
    fn serde_validates() {
        let ok: CollectionId = serde_json::from_str("\"docs\"").unwrap();
        assert_eq!(ok.as_str(), "docs");
        assert!(serde_json::from_str::<CollectionId>("\"Docs\"").is_err());
    }
}
