//! A tenant's end-user token verification keys, reached only through its key-admin handle: a
//! key operation can't name another tenant's keys (the tenant is the handle's), and it runs
//! inside the handle's guard, so a key can't be registered for a tenant being deleted.

use bulkhead_core::KeyId;

use crate::error::Result;
use crate::tenant::TenantHandle;
use crate::verification_keys::VerificationKeyRecord;

impl TenantHandle {
    /// Registers a key of this tenant, bound to its current incarnation (whatever tenant and
    /// incarnation `record` names).
    pub fn add_verification_key(
        &self,
        mut record: VerificationKeyRecord,
    ) -> Result<VerificationKeyRecord> {
        let _g = self.enter()?;
        record.tenant = self.id();
        self.state.services.registry.add_verification_key(record)
    }

    /// This tenant's verification keys, ordered by id.
    pub fn list_verification_keys(&self) -> Result<Vec<VerificationKeyRecord>> {
        let _g = self.enter()?;
        Ok(self
            .state
            .services
            .registry
            .list_verification_keys(&self.id()))
    }

    /// Marks one of this tenant's verification keys revoked.
    pub fn revoke_verification_key(&self, key_id: &KeyId) -> Result<VerificationKeyRecord> {
        let _g = self.enter()?;
        self.state
            .services
            .registry
            .revoke_verification_key(&self.id(), key_id)
    }
}
