//! Tenant management with the server's admin token: the operator's handle, kept apart from
//! [`crate::TenantClient`] so application code never needs the admin token.

use std::time::Duration;

use bulkhead_core::{Role, TenantId, TenantName};
use bulkhead_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;

use crate::connection::{Connection, Credential};
use crate::error::Result;
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
}

/// A change to a tenant's settings: only the `Some` fields are changed.
pub type TenantUpdate = TenantOptions;

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
        let mut paths = Vec::new();
        let mut wire = pb::Tenant {
            name: tenant_name(tenant)?,
            ..Default::default()
        };
        if let Some(q) = update.quota {
            wire.quota = Some(q);
            paths.push("quota".to_owned());
        }
        if let Some(r) = update.rate_limit {
            wire.rate_limit = Some(r);
            paths.push("rate_limit".to_owned());
        }
        if let Some(d) = update.audit_retention {
            wire.audit_retention_seconds = d.as_secs() as i64;
            paths.push("audit_retention_seconds".to_owned());
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
