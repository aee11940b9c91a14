//! What a tenant handle may do is part of its type, and a handle is opened only from a grant.
//! The tenant boundary is enforced by the handle (it reaches one tenant); these two make the
//! role boundary a compile-time fact too: a handle opened for a READ caller has no `upsert`,
//! and key operations exist only on a key-admin handle, so a handler that calls the wrong
//! method for its role does not compile rather than relying on a check it might skip.
//!
//! A [`Grant`] can't be built outside this crate: only an [`Authority`] issues one, and the
//! engine hands its authority to whoever holds the `Engine` (the server gives the engine to its
//! gate only, so request handlers hold handles, never grants). Grants that are not backed by a
//! caller's credential (the audit trail, activation, maintenance, tests) are spelled out as
//! [`Authority::admin`] with a reason.

use std::marker::PhantomData;

use bulkhead_core::{Role, TenantId};

mod sealed {
    pub trait Sealed {}
}

/// A level of access to one tenant: [`Read`], [`Write`] or [`KeyAdmin`].
pub trait Access: sealed::Sealed + std::fmt::Debug + Clone + Send + Sync + 'static {
    /// The credential role a caller needs for this access.
    const ROLE: Role;
}

/// Access that may change a tenant's data.
pub trait CanWrite: Access {}

/// Reads, queries, lookups and exports.
#[derive(Debug, Clone, Copy)]
pub enum Read {}

/// Everything a READ handle does, plus writes.
#[derive(Debug, Clone, Copy)]
pub enum Write {}

/// Everything a WRITE handle does, plus the tenant's API keys, restores and maintenance.
#[derive(Debug, Clone, Copy)]
pub enum KeyAdmin {}

impl sealed::Sealed for Read {}
impl sealed::Sealed for Write {}
impl sealed::Sealed for KeyAdmin {}

impl Access for Read {
    const ROLE: Role = Role::Read;
}
impl Access for Write {
    const ROLE: Role = Role::Write;
}
impl Access for KeyAdmin {
    const ROLE: Role = Role::TenantAdmin;
}

impl CanWrite for Write {}
impl CanWrite for KeyAdmin {}

/// Permission to open one tenant with access `A`.
#[derive(Debug)]
pub struct Grant<A: Access> {
    tenant: TenantId,
    access: PhantomData<fn() -> A>,
}

impl<A: Access> Grant<A> {
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
}

/// Issues grants. Whoever holds one is the authorizer: it has checked the caller's credential
/// for the tenant and role it grants.
#[derive(Debug, Clone)]
pub struct Authority {
    _only_the_engine_makes_one: (),
}

impl Authority {
    pub(crate) fn new() -> Self {
        Self {
            _only_the_engine_makes_one: (),
        }
    }

    /// A grant for a caller whose credential was checked for `A::ROLE` on `tenant`.
    pub fn grant<A: Access>(&self, tenant: &TenantId) -> Grant<A> {
        Grant {
            tenant: tenant.clone(),
            access: PhantomData,
        }
    }

    /// Full access that no caller's credential backs, with the reason spelled out where it is
    /// taken (the audit trail, activation, maintenance, tests).
    pub fn admin(&self, tenant: &TenantId, reason: &'static str) -> Grant<KeyAdmin> {
        tracing::trace!(tenant = %tenant, reason, "admin grant");
        self.grant(tenant)
    }
}
