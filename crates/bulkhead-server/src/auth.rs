//! Authentication: who is calling. A caller is the admin (holder of the admin token) or a
//! tenant caller bound to exactly one tenant with one role: an API key, a token signed by a
//! configured identity provider, or an end-user token signed by one of the tenant's own keys. Secrets are compared by SHA-256 hash; neither they nor their
//! hashes are ever logged.

use std::sync::Arc;

use bulkhead_engine::{Engine, SecretHash};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::end_user_tokens;
use crate::principal::{Principal, TenantCaller};
use crate::tokens::TokenVerifier;

pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// A fresh random 256-bit secret, hex-encoded with a recognisable prefix.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("bh_{}", hex::encode(bytes))
}

/// A fresh key id (`k` + 16 hex digits), valid under the id rule.
pub fn new_key_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("k{}", hex::encode(bytes))
}

#[derive(Debug)]
pub struct Authenticator {
    engine: Arc<Engine>,
    admin_hash: SecretHash,
    tokens: Option<TokenVerifier>,
}

impl Authenticator {
    pub fn new(engine: Arc<Engine>, admin_token: &str, tokens: Option<TokenVerifier>) -> Self {
        Self {
            engine,
            admin_hash: hash_secret(admin_token),
            tokens,
        }
    }

    /// Reads `authorization: Bearer <secret>` and resolves it. Missing, unknown, revoked and
    /// expired credentials are all `UNAUTHENTICATED`.
    pub fn authenticate(&self, metadata: &MetadataMap, now_ms: u64) -> Result<Principal, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing 'authorization: Bearer <secret>'"))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <secret>'"))?;
        let hash = hash_secret(secret);
        if hash == self.admin_hash {
            return Ok(Principal::Admin);
        }
        if TokenVerifier::looks_like_token(secret) {
            // A token naming a tenant's verification key is an end-user token, verified with
            // that key only; any other is the identity provider's, when one is configured.
            if let Some(key) = end_user_tokens::signing_key(secret)? {
                return end_user_tokens::verify(secret, &key, &self.engine, now_ms)
                    .map(Principal::Tenant);
            }
            if let Some(tokens) = &self.tokens {
                return tokens
                    .verify(secret, &self.engine, now_ms)
                    .map(Principal::Tenant);
            }
        }
        let key = self
            .engine
            .api_key_by_hash(&hash)
            .ok_or_else(|| Status::unauthenticated(
                "unknown credential: neither the admin token nor an API key of a live tenant (was the admin token rotated, or the key's tenant deleted?)",
            ))?;
        if key.revoked {
            return Err(Status::unauthenticated("API key revoked"));
        }
        if !key.is_usable(now_ms) {
            return Err(Status::unauthenticated("API key expired"));
        }
        Ok(Principal::Tenant(TenantCaller {
            tenant: key.tenant,
            role: key.role,
            name: key.key_id.to_string(),
            end_user: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_256_bit_and_ids_are_valid() {
        let a = new_secret();
        assert_eq!(a.len(), 3 + 64);
        assert_ne!(a, new_secret());
        assert!(bulkhead_core::KeyId::new(new_key_id()).is_ok());
        assert_ne!(hash_secret(&a), hash_secret(&new_secret()));
    }
}
