//! A tenant's API keys, reached only through its handle: a key operation can't name another
//! tenant's keys (the tenant is the handle's), and it runs inside the handle's guard, so a key
//! can't be created for a tenant whose deletion has begun and outlive it.

use bulkhead_core::KeyId;

use crate::api_keys::ApiKeyRecord;
use crate::error::Result;
use crate::tenant::TenantHandle;

impl TenantHandle {
    /// Stores a new key of this tenant, bound to its current incarnation (whatever tenant and
    /// incarnation `record` names). A tenant holds at most `max_api_keys_per_tenant` keys,
    /// revoked ones included.
    pub fn create_api_key(&self, mut record: ApiKeyRecord) -> Result<ApiKeyRecord> {
        let _g = self.enter()?;
        record.tenant = self.id();
        self.state.services.registry.create_api_key(record)
    }

    /// This tenant's keys, ordered by id.
    pub fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let _g = self.enter()?;
        Ok(self.state.services.registry.list_api_keys(&self.id()))
    }

    /// Marks one of this tenant's keys revoked; it fails authentication from then on.
    pub fn revoke_api_key(&self, key_id: &KeyId) -> Result<ApiKeyRecord> {
        let _g = self.enter()?;
        self.state
            .services
            .registry
            .revoke_api_key(&self.id(), key_id)
    }
}
