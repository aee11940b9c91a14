//! Who a request is from, once authenticated: the admin, or a caller bound to exactly one
//! tenant with one role. Its own module so that every way of authenticating (API keys, signed
//! tokens) produces the same value without depending on each other.

use bulkhead_core::{Role, TenantId};

use crate::end_user::EndUser;

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
    /// The key id, `jwt:<subject>` for an identity provider's token, `user:<subject>` for a
    /// tenant's end-user token: what audit events and logs show.
    pub name: String,
    /// Set for a tenant's end-user token: whom it speaks for and what it may reach.
    pub end_user: Option<EndUser>,
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
