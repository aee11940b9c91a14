//! API-key calls, shared by the tenant handle (for TENANT_ADMIN keys) and the admin handle,
//! so both build the same `tenants/{tenant}/keys/...` names.

use std::time::Duration;

use bulkhead_core::{KeyId, KeyName, Role, TenantId, TenantName};
use bulkhead_proto::v1 as pb;
use pb::key_service_client::KeyServiceClient;

use crate::connection::{Connection, Credential};
use crate::error::Result;
use crate::types::CreatedKey;

pub(crate) async fn create(
    connection: &Connection,
    credential: &Credential,
    tenant: &TenantId,
    role: Role,
    ttl: Option<Duration>,
    description: &str,
) -> Result<CreatedKey> {
    let request = pb::CreateApiKeyRequest {
        parent: TenantName {
            tenant: tenant.clone(),
        }
        .to_string(),
        role: bulkhead_wire::role_to_pb(role) as i32,
        ttl_seconds: ttl.map(|t| t.as_secs() as i64),
        description: description.to_owned(),
    };
    let response = connection
        .call(credential, request, |channel, r| async move {
            KeyServiceClient::new(channel).create_api_key(r).await
        })
        .await?;
    Ok(CreatedKey {
        key: response.key.unwrap_or_default(),
        secret: response.secret,
    })
}

pub(crate) async fn list(
    connection: &Connection,
    credential: &Credential,
    tenant: &TenantId,
) -> Result<Vec<pb::ApiKey>> {
    let request = pb::ListApiKeysRequest {
        parent: TenantName {
            tenant: tenant.clone(),
        }
        .to_string(),
    };
    let response = connection
        .call(credential, request, |channel, r| async move {
            KeyServiceClient::new(channel).list_api_keys(r).await
        })
        .await?;
    Ok(response.keys)
}

pub(crate) async fn revoke(
    connection: &Connection,
    credential: &Credential,
    tenant: &TenantId,
    key_id: &str,
) -> Result<()> {
    let request = pb::RevokeApiKeyRequest {
        name: KeyName {
            tenant: tenant.clone(),
            key: KeyId::new(key_id)?,
        }
        .to_string(),
    };
    connection
        .call(credential, request, |channel, r| async move {
            KeyServiceClient::new(channel).revoke_api_key(r).await
        })
        .await?;
    Ok(())
}
