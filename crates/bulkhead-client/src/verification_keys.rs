//! A tenant's end-user token verification keys (TENANT_ADMIN keys or the admin token): the
//! Ed25519 public keys its backend's user tokens are checked against.

use std::time::Duration;

use bulkhead_core::{KeyId, TenantId, TenantName, VerificationKeyName};
use bulkhead_proto::v1 as pb;
use pb::key_service_client::KeyServiceClient;

use crate::connection::{Connection, Credential};
use crate::error::Result;

pub(crate) async fn add(
    connection: &Connection,
    credential: &Credential,
    tenant: &TenantId,
    key_id: &str,
    ed25519_public_key: &[u8; 32],
    max_token_lifetime: Option<Duration>,
    description: &str,
) -> Result<pb::VerificationKey> {
    let request = pb::AddVerificationKeyRequest {
        parent: TenantName {
            tenant: tenant.clone(),
        }
        .to_string(),
        key_id: KeyId::new(key_id)?.to_string(),
        ed25519_public_key: ed25519_public_key.to_vec(),
        description: description.to_owned(),
        max_token_lifetime_seconds: max_token_lifetime.map_or(0, |d| d.as_secs() as i64),
    };
    connection
        .call(credential, request, |channel, r| async move {
            KeyServiceClient::new(channel).add_verification_key(r).await
        })
        .await
}

pub(crate) async fn list(
    connection: &Connection,
    credential: &Credential,
    tenant: &TenantId,
) -> Result<Vec<pb::VerificationKey>> {
    let request = pb::ListVerificationKeysRequest {
        parent: TenantName {
            tenant: tenant.clone(),
        }
        .to_string(),
    };
    let response = connection
        .call(credential, request, |channel, r| async move {
            KeyServiceClient::new(channel)
                .list_verification_keys(r)
                .await
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
    let request = pb::RevokeVerificationKeyRequest {
        name: VerificationKeyName {
            tenant: tenant.clone(),
            key: KeyId::new(key_id)?,
        }
        .to_string(),
    };
    connection
        .call(credential, request, |channel, r| async move {
            KeyServiceClient::new(channel)
                .revoke_verification_key(r)
                .await
        })
        .await?;
    Ok(())
}
