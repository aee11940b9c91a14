//! `KeyService`: a tenant's API keys and the keys it verifies its end users' tokens with. The
//! admin token may manage any tenant's keys, a TENANT_ADMIN key only its own tenant's (the gate
//! enforces both).

use std::sync::Arc;

use bulkhead_core::{KeyId, KeyName, Role, TenantName, VerificationKeyName};
use bulkhead_engine::{ApiKeyRecord, KeyAdmin, VerificationKeyRecord};
use bulkhead_proto::v1 as pb;
use pb::key_service_server::KeyService;
use tonic::{Request, Response, Status};

use crate::auth::{hash_secret, new_key_id, new_secret};
use crate::gate::{Gate, Scope, now_ms};
use crate::status::{engine_status, wire_status};
use bulkhead_wire::{positive_seconds, role_to_pb, timestamp_from_ms};

#[derive(Debug)]
pub struct KeyApi {
    pub gate: Arc<Gate>,
}

fn role(r: i32) -> Result<Role, Status> {
    match pb::Role::try_from(r) {
        Ok(pb::Role::Read) => Ok(Role::Read),
        Ok(pb::Role::Write) => Ok(Role::Write),
        Ok(pb::Role::TenantAdmin) => Ok(Role::TenantAdmin),
        _ => Err(Status::invalid_argument(
            "role must be READ, WRITE or TENANT_ADMIN",
        )),
    }
}

fn key_to_pb(k: &ApiKeyRecord) -> pb::ApiKey {
    pb::ApiKey {
        name: format!("tenants/{}/keys/{}", k.tenant, k.key_id),
        role: role_to_pb(k.role) as i32,
        expire_time: k.expires_at_ms.map(timestamp_from_ms),
        description: k.description.clone(),
        create_time: Some(timestamp_from_ms(k.created_at_ms)),
        revoked: k.revoked,
    }
}

fn verification_key_to_pb(k: &VerificationKeyRecord) -> pb::VerificationKey {
    pb::VerificationKey {
        name: VerificationKeyName {
            tenant: k.tenant.clone(),
            key: k.key_id.clone(),
        }
        .to_string(),
        ed25519_public_key: k.ed25519_public_key.to_vec(),
        description: k.description.clone(),
        max_token_lifetime_seconds: k.max_token_lifetime_secs as i64,
        create_time: Some(timestamp_from_ms(k.created_at_ms)),
        revoked: k.revoked,
    }
}

fn description(d: &str) -> Result<(), Status> {
    if d.len() > 1024 {
        return Err(Status::invalid_argument(
            "description must be at most 1024 bytes",
        ));
    }
    Ok(())
}

/// The verification key an `AddVerificationKey` request describes, every field checked.
fn new_verification_key(
    scope: &Scope<TenantName, KeyAdmin>,
    req: pb::AddVerificationKeyRequest,
) -> Result<VerificationKeyRecord, Status> {
    let key_id =
        KeyId::new(&req.key_id).map_err(|e| Status::invalid_argument(format!("key_id: {e}")))?;
    let ed25519_public_key: [u8; 32] =
        req.ed25519_public_key.as_slice().try_into().map_err(|_| {
            Status::invalid_argument(format!(
                "ed25519_public_key must be the 32 raw bytes of an Ed25519 public key, got {}",
                req.ed25519_public_key.len()
            ))
        })?;
    description(&req.description)?;
    // 0: the engine's default.
    let max_token_lifetime_secs = u64::try_from(req.max_token_lifetime_seconds)
        .map_err(|_| Status::invalid_argument("max_token_lifetime_seconds must be positive"))?;
    Ok(VerificationKeyRecord {
        tenant: scope.name.tenant.clone(),
        key_id,
        ed25519_public_key,
        description: req.description,
        max_token_lifetime_secs,
        created_at_ms: now_ms(),
        revoked: false,
        incarnation: 0,
    })
}

#[tonic::async_trait]
impl KeyService for KeyApi {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "KeyService/CreateApiKey",
                &req.parent.clone(),
                0,
                move |scope: Scope<TenantName, KeyAdmin>| {
                    let role = role(req.role)?;
                    description(&req.description)?;
                    let now = now_ms();
                    let expires_at_ms = req
                        .ttl_seconds
                        .map(|s| positive_seconds("ttl_seconds", s))
                        .transpose()
                        .map_err(wire_status)?
                        .map(|d| now + d.as_millis() as u64);
                    let secret = new_secret();
                    let record = ApiKeyRecord {
                        tenant: scope.name.tenant,
                        key_id: KeyId::new(new_key_id()).expect("generated ids are valid"),
                        role,
                        secret_hash: hash_secret(&secret),
                        description: req.description,
                        created_at_ms: now,
                        expires_at_ms,
                        revoked: false,
                        incarnation: 0,
                    };
                    let stored = scope.tenant.create_api_key(record).map_err(engine_status)?;
                    Ok((
                        pb::CreateApiKeyResponse {
                            key: Some(key_to_pb(&stored)),
                            secret,
                        },
                        0,
                    ))
                },
            )
            .await
            .map(Response::new)
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "KeyService/ListApiKeys",
                &req.parent,
                0,
                move |scope: Scope<TenantName, KeyAdmin>| {
                    let keys = scope.tenant.list_api_keys().map_err(engine_status)?;
                    let n = keys.len() as u64;
                    Ok((
                        pb::ListApiKeysResponse {
                            keys: keys.iter().map(key_to_pb).collect(),
                        },
                        n,
                    ))
                },
            )
            .await
            .map(Response::new)
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<()>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "KeyService/RevokeApiKey",
                &req.name,
                0,
                move |scope: Scope<KeyName, KeyAdmin>| {
                    scope
                        .tenant
                        .revoke_api_key(&scope.name.key)
                        .map_err(engine_status)?;
                    tracing::info!(tenant = %scope.name.tenant, key = %scope.name.key, "API key revoked");
                    Ok(((), 0))
                },
            )
            .await
            .map(Response::new)
    }

    async fn add_verification_key(
        &self,
        request: Request<pb::AddVerificationKeyRequest>,
    ) -> Result<Response<pb::VerificationKey>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "KeyService/AddVerificationKey",
                &req.parent.clone(),
                0,
                move |scope: Scope<TenantName, KeyAdmin>| {
                    let record = new_verification_key(&scope, req)?;
                    let stored = scope
                        .tenant
                        .add_verification_key(record)
                        .map_err(engine_status)?;
                    tracing::info!(tenant = %scope.name.tenant, key = %stored.key_id, "verification key added");
                    Ok((verification_key_to_pb(&stored), 0))
                },
            )
            .await
            .map(Response::new)
    }

    async fn list_verification_keys(
        &self,
        request: Request<pb::ListVerificationKeysRequest>,
    ) -> Result<Response<pb::ListVerificationKeysResponse>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "KeyService/ListVerificationKeys",
                &req.parent,
                0,
                move |scope: Scope<TenantName, KeyAdmin>| {
                    let keys = scope
                        .tenant
                        .list_verification_keys()
                        .map_err(engine_status)?;
                    let n = keys.len() as u64;
                    let keys = keys.iter().map(verification_key_to_pb).collect();
                    Ok((pb::ListVerificationKeysResponse { keys }, n))
                },
            )
            .await
            .map(Response::new)
    }

    async fn revoke_verification_key(
        &self,
        request: Request<pb::RevokeVerificationKeyRequest>,
    ) -> Result<Response<()>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "KeyService/RevokeVerificationKey",
                &req.name,
                0,
                move |scope: Scope<VerificationKeyName, KeyAdmin>| {
                    scope
                        .tenant
                        .revoke_verification_key(&scope.name.key)
                        .map_err(engine_status)?;
                    tracing::info!(tenant = %scope.name.tenant, key = %scope.name.key, "verification key revoked");
                    Ok(((), 0))
                },
            )
            .await
            .map(Response::new)
    }
}
