//! Tenant management with the server's admin token: the operator's handle, kept apart from
//! [`crate::TenantClient`] so application code never needs the admin token.

use std::time::Duration;

use bulkhead_core::{Role, TenantId, TenantName};
use bulkhead_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;

use crate::connection::{Connection, Credential};
use crate::error::{ClientError, Result};
use crate::keys;
use crate::pages;
use crate::types::CreatedKey;

/// Tenants fetched per page.
const LIST_PAGE: i32 = 1000;

/// Settings of a new tenant; `None` keeps the server's default.
#[derive(Debug, Clone, Default)]
pub struct TenantOptions {
    pub quota: Option<pb::Quota>,
    pub rate_limit: Option<pb::RateLimit>,
    pub audit_retention: Option<Duration>,
    /// The longest lifetime of the tenant's end-user tokens (at most a day, the default).
    pub max_token_lifetime: Option<Duration>,
    /// The tenant's share of the server (requests in flight, open streams, engine threads).
    pub share: Option<pb::ServerShare>,
}

/// A change to a tenant's settings: only the `Some` fields are changed, each on its own (the
/// request's field mask names each one, so an unset limit is never reset). 0 means unlimited.
#[derive(Debug, Clone, Default)]
pub struct TenantUpdate {
    pub max_collections: Option<u64>,
    pub max_records: Option<u64>,
    pub max_stored_bytes: Option<u64>,
    pub requests_per_second: Option<f64>,
    pub burst: Option<u64>,
    pub write_bytes_per_second: Option<u64>,
    /// Zero restores the server's default retention.
    pub audit_retention: Option<Duration>,
    /// Zero lifts the bound to the server's ceiling (a day).
    pub max_token_lifetime: Option<Duration>,
    /// The tenant's share of the server; zero in these restores the server's setting.
    pub requests_in_flight: Option<u64>,
    pub open_streams: Option<u64>,
    pub engine_threads: Option<u64>,
    pub write_bytes_in_flight: Option<u64>,
}

impl TenantUpdate {
    /// A new tenant's settings from the same fields: the limits not given are unlimited.
    pub fn to_options(&self) -> TenantOptions {
        let (tenant, paths) = self.to_wire(String::new());
        let given = |prefix: &str| paths.iter().any(|p| p.starts_with(prefix));
        TenantOptions {
            quota: tenant.quota.filter(|_| given("quota.")),
            rate_limit: tenant.rate_limit.filter(|_| given("rate_limit.")),
            audit_retention: self.audit_retention,
            max_token_lifetime: self.max_token_lifetime,
            share: tenant.share.filter(|_| given("share.")),
        }
    }

    /// The request's tenant fields and the mask paths naming exactly the fields given.
    fn to_wire(&self, name: String) -> (pb::Tenant, Vec<String>) {
        let mut paths = Vec::new();
        let mut quota = pb::Quota::default();
        let mut rate = pb::RateLimit::default();
        let mut share = pb::ServerShare::default();
        let mut set = |given: bool, path: &str| {
            if given {
                paths.push(path.to_owned());
            }
            given
        };
        if set(self.max_collections.is_some(), "quota.max_collections") {
            quota.max_collections = wire_i64(self.max_collections);
        }
        if set(self.max_records.is_some(), "quota.max_records") {
            quota.max_records = wire_i64(self.max_records);
        }
        if set(self.max_stored_bytes.is_some(), "quota.max_stored_bytes") {
            quota.max_stored_bytes = wire_i64(self.max_stored_bytes);
        }
        if set(
            self.requests_per_second.is_some(),
            "rate_limit.requests_per_second",
        ) {
            rate.requests_per_second = self.requests_per_second.unwrap_or_default();
        }
        if set(self.burst.is_some(), "rate_limit.burst") {
            rate.burst = wire_i64(self.burst);
        }
        if set(
            self.write_bytes_per_second.is_some(),
            "rate_limit.write_bytes_per_second",
        ) {
            rate.write_bytes_per_second = wire_i64(self.write_bytes_per_second);
        }
        if set(
            self.requests_in_flight.is_some(),
            "share.requests_in_flight",
        ) {
            share.requests_in_flight = wire_i64(self.requests_in_flight);
        }
        if set(self.open_streams.is_some(), "share.open_streams") {
            share.open_streams = wire_i64(self.open_streams);
        }
        if set(self.engine_threads.is_some(), "share.engine_threads") {
            share.engine_threads = wire_i64(self.engine_threads);
        }
        if set(
            self.write_bytes_in_flight.is_some(),
            "share.write_bytes_in_flight",
        ) {
            share.write_bytes_in_flight = wire_i64(self.write_bytes_in_flight);
        }
        let mut audit_retention_seconds = 0;
        if set(self.audit_retention.is_some(), "audit_retention_seconds") {
            audit_retention_seconds = self.audit_retention.map_or(0, |d| d.as_secs() as i64);
        }
        let mut max_token_lifetime_seconds = 0;
        if set(
            self.max_token_lifetime.is_some(),
            "max_token_lifetime_seconds",
        ) {
            max_token_lifetime_seconds = self.max_token_lifetime.map_or(0, |d| d.as_secs() as i64);
        }
        let tenant = pb::Tenant {
            name,
            quota: Some(quota),
            rate_limit: Some(rate),
            share: Some(share),
            audit_retention_seconds,
            max_token_lifetime_seconds,
            ..Default::default()
        };
        (tenant, paths)
    }
}

/// A limit as the wire's int64; values past `i64::MAX` saturate (the server refuses nothing
/// that large as a limit, it is unlimited in practice).
fn wire_i64(v: Option<u64>) -> i64 {
    v.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// The admin handle. Made by [`crate::Client::admin`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct AdminClient {
    connection: Connection,
    credential: Credential,
}

fn tenant_name(tenant: &str) -> Result<String> {
    Ok(TenantName {
        tenant: TenantId::new(tenant)?,
    }
    .to_string())
}

impl AdminClient {
    pub(crate) fn new(connection: Connection, credential: Credential) -> Self {
        Self {
            connection,
            credential,
        }
    }

    pub async fn create_tenant(&self, tenant: &str, options: &TenantOptions) -> Result<pb::Tenant> {
        let request = pb::CreateTenantRequest {
            tenant_id: TenantId::new(tenant)?.to_string(),
            quota: options.quota,
            rate_limit: options.rate_limit,
            audit_retention_seconds: options.audit_retention.map_or(0, |d| d.as_secs() as i64),
            max_token_lifetime_seconds: options
                .max_token_lifetime
                .map_or(0, |d| d.as_secs() as i64),
            share: options.share,
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                AdminServiceClient::new(channel).create_tenant(r).await
            })
            .await
    }

    pub async fn tenant(&self, tenant: &str) -> Result<pb::Tenant> {
        let request = pb::GetTenantRequest {
            name: tenant_name(tenant)?,
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                AdminServiceClient::new(channel).get_tenant(r).await
            })
            .await
    }

    /// Every tenant, following pages to the end.
    pub async fn tenants(&self) -> Result<Vec<pb::Tenant>> {
        pages::collect(usize::MAX, |page_token, _| async move {
            let request = pb::ListTenantsRequest {
                page_size: LIST_PAGE,
                page_token,
            };
            let page = self
                .connection
                .call(&self.credential, request, |channel, r| async move {
                    AdminServiceClient::new(channel).list_tenants(r).await
                })
                .await?;
            Ok((page.tenants, page.next_page_token))
        })
        .await
    }

    /// Changes the settings given in `update`; the others stay as they are.
    pub async fn update_tenant(&self, tenant: &str, update: &TenantUpdate) -> Result<pb::Tenant> {
        let (wire, paths) = update.to_wire(tenant_name(tenant)?);
        if paths.is_empty() {
            return Err(ClientError::EmptyUpdate);
        }
        let request = pb::UpdateTenantRequest {
            tenant: Some(wire),
            update_mask: Some(prost_types::FieldMask { paths }),
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                AdminServiceClient::new(channel).update_tenant(r).await
            })
            .await
    }

    /// Deletes the tenant with all its data and keys.
    pub async fn delete_tenant(&self, tenant: &str) -> Result<()> {
        let request = pb::DeleteTenantRequest {
            name: tenant_name(tenant)?,
        };
        self.connection
            .call(&self.credential, request, |channel, r| async move {
                AdminServiceClient::new(channel).delete_tenant(r).await
            })
            .await?;
        Ok(())
    }

    pub async fn create_key(
        &self,
        tenant: &str,
        role: Role,
        ttl: Option<Duration>,
        description: &str,
    ) -> Result<CreatedKey> {
        let tenant = TenantId::new(tenant)?;
        keys::create(
            &self.connection,
            &self.credential,
            &tenant,
            role,
            ttl,
            description,
        )
        .await
    }

    pub async fn keys(&self, tenant: &str) -> Result<Vec<pb::ApiKey>> {
        keys::list(&self.connection, &self.credential, &TenantId::new(tenant)?).await
    }

    pub async fn revoke_key(&self, tenant: &str, key_id: &str) -> Result<()> {
        keys::revoke(
            &self.connection,
            &self.credential,
            &TenantId::new(tenant)?,
            key_id,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_names_each_given_limit_and_creates_only_the_given_groups() {
        let update = TenantUpdate {
            max_records: Some(7),
            burst: Some(u64::MAX),
            ..Default::default()
        };
        let (wire, paths) = update.to_wire("tenants/a".into());
        assert_eq!(paths, ["quota.max_records", "rate_limit.burst"]);
        assert_eq!(wire.quota.unwrap().max_records, 7);
        assert_eq!(wire.rate_limit.unwrap().burst, i64::MAX, "saturates");

        let options = update.to_options();
        assert_eq!(options.quota.unwrap().max_records, 7);
        assert_eq!(options.rate_limit.unwrap().requests_per_second, 0.0);
        let only_retention = TenantUpdate {
            audit_retention: Some(Duration::from_secs(60)),
            ..Default::default()
        }
        .to_options();
        assert!(only_retention.quota.is_none() && only_retention.rate_limit.is_none());

        let lifetime = TenantUpdate {
            max_token_lifetime: Some(Duration::from_secs(900)),
            ..Default::default()
        };
        let (wire, paths) = lifetime.to_wire("tenants/a".into());
        assert_eq!(paths, ["max_token_lifetime_seconds"]);
        assert_eq!(wire.max_token_lifetime_seconds, 900);
        assert_eq!(
            lifetime.to_options().max_token_lifetime,
            Some(Duration::from_secs(900))
        );
    }
}
