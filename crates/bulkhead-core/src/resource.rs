//! Resource names: the only way a request says which tenant it is about. The grammar is strict
//! and has exactly one spelling per resource (no empty, extra or `..` segments, no
//! percent-decoding, no case folding), so a name can never be read as two different tenants.

use std::fmt;
use std::str::FromStr;

use crate::error::{CoreError, Result};
use crate::ids::{CollectionId, KeyId, TenantId};

const TENANTS: &str = "tenants";
const COLLECTIONS: &str = "collections";
const KEYS: &str = "keys";
const CACHES: &str = "caches";

/// Splits `name` into exactly `N` segments, or fails with `expected` as the explanation.
fn segments<'a, const N: usize>(name: &'a str, expected: &'static str) -> Result<[&'a str; N]> {
    let invalid = || CoreError::InvalidResourceName {
        name: name.to_owned(),
        expected,
    };
    let mut parts = name.split('/');
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next().ok_or_else(invalid)?;
    }
    if parts.next().is_some() {
        return Err(invalid());
    }
    Ok(out)
}

fn literal(name: &str, segment: &str, want: &str, expected: &'static str) -> Result<()> {
    if segment == want {
        Ok(())
    } else {
        Err(CoreError::InvalidResourceName {
            name: name.to_owned(),
            expected,
        })
    }
}

/// `tenants/{tenant}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName {
    pub tenant: TenantId,
}

impl TenantName {
    const SHAPE: &'static str = "tenants/{tenant}";
}

impl FromStr for TenantName {
    type Err = CoreError;

    fn from_str(name: &str) -> Result<Self> {
        let [t, tenant] = segments::<2>(name, Self::SHAPE)?;
        literal(name, t, TENANTS, Self::SHAPE)?;
        Ok(Self {
            tenant: tenant.parse()?,
        })
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TENANTS}/{}", self.tenant)
    }
}

/// `tenants/{tenant}/collections/{collection}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectionName {
    pub tenant: TenantId,
    pub collection: CollectionId,
}

impl CollectionName {
    const SHAPE: &'static str = "tenants/{tenant}/collections/{collection}";
}

impl FromStr for CollectionName {
    type Err = CoreError;

    fn from_str(name: &str) -> Result<Self> {
        let [t, tenant, c, collection] = segments::<4>(name, Self::SHAPE)?;
        literal(name, t, TENANTS, Self::SHAPE)?;
        literal(name, c, COLLECTIONS, Self::SHAPE)?;
        Ok(Self {
            tenant: tenant.parse()?,
            collection: collection.parse()?,
        })
    }
}

impl fmt::Display for CollectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TENANTS}/{}/{COLLECTIONS}/{}",
            self.tenant, self.collection
        )
    }
}

/// `tenants/{tenant}/keys/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyName {
    pub tenant: TenantId,
    pub key: KeyId,
}

impl KeyName {
    const SHAPE: &'static str = "tenants/{tenant}/keys/{key}";
}

impl FromStr for KeyName {
    type Err = CoreError;

    fn from_str(name: &str) -> Result<Self> {
        let [t, tenant, k, key] = segments::<4>(name, Self::SHAPE)?;
        literal(name, t, TENANTS, Self::SHAPE)?;
        literal(name, k, KEYS, Self::SHAPE)?;
        Ok(Self {
            tenant: tenant.parse()?,
            key: key.parse()?,
        })
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TENANTS}/{}/{KEYS}/{}", self.tenant, self.key)
    }
}

/// `tenants/{tenant}/caches/{cache}`: a semantic cache, stored as the tenant's collection of
/// the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheName {
    pub tenant: TenantId,
    pub cache: CollectionId,
}

impl CacheName {
    const SHAPE: &'static str = "tenants/{tenant}/caches/{cache}";

    /// The collection that holds the cache.
    pub fn collection(&self) -> CollectionName {
        CollectionName {
            tenant: self.tenant.clone(),
            collection: self.cache.clone(),
        }
    }
}

impl FromStr for CacheName {
    type Err = CoreError;

    fn from_str(name: &str) -> Result<Self> {
        let [t, tenant, c, cache] = segments::<4>(name, Self::SHAPE)?;
        literal(name, t, TENANTS, Self::SHAPE)?;
        literal(name, c, CACHES, Self::SHAPE)?;
        Ok(Self {
            tenant: tenant.parse()?,
            cache: cache.parse()?,
        })
    }
}

impl fmt::Display for CacheName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TENANTS}/{}/{CACHES}/{}", self.tenant, self.cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_well_formed_names() {
        let c: CollectionName = "tenants/acme/collections/docs".parse().unwrap();
        assert_eq!(c.tenant.as_str(), "acme");
        assert_eq!(c.collection.as_str(), "docs");
        let t: TenantName = "tenants/acme".parse().unwrap();
        assert_eq!(t.tenant.as_str(), "acme");
        let k: KeyName = "tenants/acme/keys/k1".parse().unwrap();
        assert_eq!(k.key.as_str(), "k1");
        let cache: CacheName = "tenants/acme/caches/answers".parse().unwrap();
        assert_eq!(
            cache.collection().to_string(),
            "tenants/acme/collections/answers"
        );
        assert!(
            "tenants/acme/collections/answers"
                .parse::<CacheName>()
                .is_err()
        );
        assert!(
            "tenants/acme/caches/answers"
                .parse::<CollectionName>()
                .is_err()
        );
    }

    #[test]
    fn rejects_malformed_names() {
        let bad = [
            "",
            "tenants",
            "tenants/",
            "tenants//collections/docs",
            "tenants/acme/",
            "/tenants/acme",
            "tenants/acme/collections",
            "tenants/acme/collections/",
            "tenants/acme/collections/docs/",
            "tenants/acme/collections/docs/extra",
            "tenants/../collections/docs",
            "tenants/acme/../collections/docs",
            "tenants/Acme/collections/docs",
            "Tenants/acme/collections/docs",
            "tenants/acme%2fother/collections/docs",
            "tenants/acme/Collections/docs",
            "tenants/аcme/collections/docs",
            "tenants/acme /collections/docs",
            "tenants/acme\0/collections/docs",
            "tenants/acme/keys/docs",
        ];
        for name in bad {
            assert!(name.parse::<CollectionName>().is_err(), "{name:?} accepted");
        }
        assert!(
            "tenants/acme/collections/docs"
                .parse::<TenantName>()
                .is_err()
        );
        assert!("tenants/acme/collections/k".parse::<KeyName>().is_err());
    }

    fn name_like() -> impl Strategy<Value = String> {
        // Mostly near-misses of the real grammar, plus arbitrary unicode.
        let segment = prop_oneof![
            Just("tenants".to_owned()),
            Just("collections".to_owned()),
            Just("caches".to_owned()),
            Just("..".to_owned()),
            Just(String::new()),
            "[a-z0-9_-]{1,8}",
            "[A-Za-z0-9_%./ -]{0,6}",
            "\\PC{0,4}",
        ];
        prop::collection::vec(segment, 0..6).prop_map(|s| s.join("/"))
    }

    proptest! {
        #[test]
        fn every_string_names_exactly_one_tenant_or_none(name in name_like()) {
            let as_tenant = name.parse::<TenantName>();
            let as_collection = name.parse::<CollectionName>();
            let as_cache = name.parse::<CacheName>();
            // The grammars are disjoint: no string is two kinds of resource.
            let kinds = [as_tenant.is_ok(), as_collection.is_ok(), as_cache.is_ok()];
            prop_assert!(kinds.iter().filter(|k| **k).count() <= 1);
            if let Ok(c) = as_cache {
                prop_assert_eq!(c.to_string(), name.clone());
                prop_assert_eq!(name.split('/').nth(1), Some(c.tenant.as_str()));
            }
            if let Ok(t) = as_tenant {
                prop_assert_eq!(t.to_string(), name.clone());
                prop_assert_eq!(name.split('/').nth(1), Some(t.tenant.as_str()));
            }
            if let Ok(c) = as_collection {
                // One spelling per resource: the parse prints back to the very same string.
                prop_assert_eq!(c.to_string(), name.clone());
                prop_assert_eq!(name.split('/').nth(1), Some(c.tenant.as_str()));
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(name in "\\PC*") {
            let _ = name.parse::<CollectionName>();
            let _ = name.parse::<TenantName>();
            let _ = name.parse::<KeyName>();
            let _ = name.parse::<CacheName>();
        }

        #[test]
        fn valid_names_round_trip(t in "[a-z0-9][a-z0-9_-]{0,62}", c in "[a-z0-9][a-z0-9_-]{0,62}") {
            let name = format!("tenants/{t}/collections/{c}");
            let parsed: CollectionName = name.parse().unwrap();
            prop_assert_eq!(parsed.tenant.as_str(), t.as_str());
            prop_assert_eq!(parsed.to_string(), name);
        }
    }
}
