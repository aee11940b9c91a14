//! The keys a tenant verifies its end users' tokens with. A tenant's backend mints short-lived
//! tokens for its users, signed with its own Ed25519 private key; the tenant registers the
//! public half here. They are control-plane state of that tenant alone, like its API keys:
//! stored in the registry under the tenant, bound to its incarnation (a deleted and re-created
//! tenant inherits none), looked up by tenant and key id, so a key of one tenant can never be
//! asked to vouch for another.

use std::collections::BTreeMap;

use bulkhead_core::{KeyId, TenantId};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// Most verification keys one tenant may hold, revoked ones included: enough to rotate, few
/// enough that a tenant can't grow the registry every start reads.
pub const MAX_VERIFICATION_KEYS_PER_TENANT: usize = 16;
/// The longest lifetime (`exp` − `iat`) a key may allow its tokens: end-user tokens are
/// meant to be short-lived. An operator may bound a tenant's lower (`max_token_lifetime`).
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;
/// A key's token lifetime when its registration gives none (or its tenant's bound, if lower).
pub(crate) const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 3600;

/// One registered Ed25519 public key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationKeyRecord {
    pub tenant: TenantId,
    pub key_id: KeyId,
    /// The raw 32-byte public key.
    #[serde(with = "crate::api_keys::hex_hash")]
    pub ed25519_public_key: [u8; 32],
    pub description: String,
    /// Tokens this key verifies may live at most this long (`exp` − `iat`), in seconds.
    pub max_token_lifetime_secs: u64,
    pub created_at_ms: u64,
    pub revoked: bool,
    /// Set by the engine: the tenant incarnation the key was registered for.
    #[serde(default)]
    pub incarnation: u64,
}

/// Refuses a token lifetime (`field`, in seconds) outside 1 to `MAX_TOKEN_LIFETIME_SECS`: the
/// one range for a key's lifetime and a tenant's bound.
pub(crate) fn check_token_lifetime(field: &str, secs: u64) -> Result<()> {
    if !(1..=MAX_TOKEN_LIFETIME_SECS).contains(&secs) {
        return Err(EngineError::InvalidArgument(format!(
            "{field} must be between 1 and {MAX_TOKEN_LIFETIME_SECS} seconds, got {secs}"
        )));
    }
    Ok(())
}

impl VerificationKeyRecord {
    pub fn validate(&self) -> Result<()> {
        check_token_lifetime("max_token_lifetime_seconds", self.max_token_lifetime_secs)
    }
}

/// Every tenant's verification keys in memory, by tenant then key id: one tenant's keys are
/// read or dropped without visiting any other tenant's.
#[derive(Debug, Default)]
pub(crate) struct VerificationKeys {
    keys: BTreeMap<TenantId, BTreeMap<KeyId, VerificationKeyRecord>>,
}

impl VerificationKeys {
    pub fn new(records: Vec<VerificationKeyRecord>) -> Self {
        let mut keys = Self::default();
        for r in records {
            keys.put(r);
        }
        keys
    }

    pub fn get(&self, tenant: &TenantId, key_id: &KeyId) -> Option<&VerificationKeyRecord> {
        self.keys.get(tenant)?.get(key_id)
    }

    pub fn put(&mut self, record: VerificationKeyRecord) {
        self.keys
            .entry(record.tenant.clone())
            .or_default()
            .insert(record.key_id.clone(), record);
    }

    /// One tenant's keys, in id order.
    pub fn of_tenant(&self, tenant: &TenantId) -> Vec<VerificationKeyRecord> {
        self.keys
            .get(tenant)
            .map(|keys| keys.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn remove_tenant(&mut self, tenant: &TenantId) {
        self.keys.remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tenant: &str, id: &str) -> VerificationKeyRecord {
        VerificationKeyRecord {
            tenant: TenantId::new(tenant).unwrap(),
            key_id: KeyId::new(id).unwrap(),
            ed25519_public_key: [9; 32],
            description: String::new(),
            max_token_lifetime_secs: 3600,
            created_at_ms: 0,
            revoked: false,
            incarnation: 1,
        }
    }

    #[test]
    fn keys_are_found_only_under_their_own_tenant() {
        let mut keys = VerificationKeys::new(vec![key("a", "k1"), key("b", "k2")]);
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        let k1 = KeyId::new("k1").unwrap();
        assert!(keys.get(&a, &k1).is_some());
        assert!(
            keys.get(&b, &k1).is_none(),
            "a key id names a key of one tenant"
        );
        assert_eq!(keys.of_tenant(&b).len(), 1);
        keys.remove_tenant(&a);
        assert!(keys.get(&a, &k1).is_none());
        assert_eq!(keys.of_tenant(&b).len(), 1);
    }

    #[test]
    fn token_lifetimes_are_bounded() {
        let mut k = key("a", "k1");
        k.validate().unwrap();
        for bad in [0, MAX_TOKEN_LIFETIME_SECS + 1] {
            k.max_token_lifetime_secs = bad;
            assert!(k.validate().is_err(), "{bad}");
        }
        k.max_token_lifetime_secs = MAX_TOKEN_LIFETIME_SECS;
        k.validate().unwrap();
        // The documented bound (api.md): a key may let its tokens live a day, not a second more.
        k.max_token_lifetime_secs = 86_400;
        k.validate().unwrap();
        k.max_token_lifetime_secs = 86_401;
        assert!(k.validate().is_err());
    }

    #[test]
    fn records_round_trip_through_their_stored_form() {
        let k = key("a", "k1");
        let stored = serde_json::to_vec(&k).unwrap();
        assert_eq!(
            serde_json::from_slice::<VerificationKeyRecord>(&stored).unwrap(),
            k
        );
    }
}
