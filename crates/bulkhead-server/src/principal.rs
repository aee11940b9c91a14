//! Who a request is from, once authenticated: the admin, or a caller bound to exactly one
//! tenant with one role. Its own module so that every way of authenticating (API keys, signed
//! tokens) produces the same value without depending on each other.

use bulkhead_core::{Role, TenantId};

/// The authenticated caller of one request. Passed explicitly; never stored beyond the request.
#[derive(Debug, Clone)]
pub enum Principal {
    Admin,
    Tenant(TenantCaller),
}

/// A caller that may act on one tenant only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCaller {
    pub tenant: TenantId,
    pub role: Role,
    /// The key id, or `jwt:<subject>` for a token: what audit events and logs show.
    pub name: String,
}

impl Principal {
    /// How audit events and logs name the caller.
    pub fn audit_name(&self) -> String {
        match self {
            Principal::Admin => "admin".to_owned(),
            Principal::Tenant(c) => c.name.clone(),
        }
    }
}
