//! API key records. Keys are control-plane state of one tenant: stored in the registry under
//! the tenant, looked up by the hash of their secret (the secret itself is never stored), and
//! bound to the tenant's incarnation, so deleting a tenant kills its keys even if a tenant of
//! the same id is created later.

use bulkhead_core::{KeyId, Role, TenantId};
use serde::{Deserialize, Serialize};

/// SHA-256 of a key's secret.
pub type SecretHash = [u8; 32];

/// One API key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub tenant: TenantId,
    pub key_id: KeyId,
    pub role: Role,
    #[serde(with = "hex_hash")]
    pub secret_hash: SecretHash,
    pub description: String,
    pub created_at_ms: u64,
    /// `None`: never expires.
    pub expires_at_ms: Option<u64>,
    pub revoked: bool,
    /// Set by the engine: the tenant incarnation the key was issued for.
    #[serde(default)]
    pub incarnation: u64,
}

impl ApiKeyRecord {
    /// Whether the key may be used at `now_ms`.
    pub fn is_usable(&self, now_ms: u64) -> bool {
        !self.revoked && self.expires_at_ms.is_none_or(|e| now_ms < e)
    }
}

pub(crate) mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out)
            .map_err(|e| D::Error::custom(format!("secret hash must be 64 hex digits: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(revoked: bool, expires_at_ms: Option<u64>) -> ApiKeyRecord {
        ApiKeyRecord {
            tenant: TenantId::new("acme").unwrap(),
            key_id: KeyId::new("k1").unwrap(),
            role: Role::Read,
            secret_hash: [7; 32],
            description: String::new(),
            created_at_ms: 0,
            expires_at_ms,
            revoked,
            incarnation: 1,
        }
    }

    #[test]
    fn a_key_is_usable_until_it_expires_or_is_revoked() {
        assert!(key(false, None).is_usable(u64::MAX));
        assert!(key(false, Some(1_000)).is_usable(999));
        assert!(
            !key(false, Some(1_000)).is_usable(1_000),
            "expiry is exclusive"
        );
        assert!(!key(true, None).is_usable(0));
        assert!(!key(true, Some(1_000)).is_usable(0));
    }

    #[test]
    fn the_secret_hash_is_stored_as_hex_and_read_back_exactly() {
        let mut record = key(false, None);
        record.secret_hash = std::array::from_fn(|i| i as u8 * 8);
        let mut json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json["secret_hash"].as_str().unwrap(),
            (0..32)
                .map(|i| format!("{:02x}", i * 8))
                .collect::<String>()
        );
        assert_eq!(
            serde_json::from_value::<ApiKeyRecord>(json.clone()).unwrap(),
            record
        );
        for bad in ["00".to_owned(), "zz".repeat(32), "0".repeat(65)] {
            json["secret_hash"] = bad.clone().into();
            assert!(
                serde_json::from_value::<ApiKeyRecord>(json.clone()).is_err(),
                "{bad} accepted"
            );
        }
    }
}
