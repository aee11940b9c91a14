//! End-user tokens as a tenant's backend mints them: an Ed25519 key pair whose public half the
//! probe registers with the tenant, and EdDSA JWTs signed with the private half. The probe
//! needs its own so it can speak as several users, groups and sessions of one tenant.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bulkhead_client::TenantClient;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

/// How long a probe token lives: long enough for any run.
const LIFETIME_SECS: u64 = 600;

/// A tenant's registered signing key.
pub struct UserTokens {
    tenant: String,
    kid: String,
    private_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokens")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Who a token speaks for and what it may reach.
#[derive(Debug, Clone, Default)]
pub struct Claims<'a> {
    pub sub: &'a str,
    pub groups: &'a [&'a str],
    pub collections: &'a [&'a str],
    pub session: Option<&'a str>,
    pub write: bool,
}

impl UserTokens {
    /// Makes a key pair and registers its public half as `key_id` of the tenant `admin` is
    /// fixed to (a TENANT_ADMIN key).
    pub async fn register(admin: &TenantClient, key_id: &str) -> anyhow::Result<Self> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key"))?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| anyhow::anyhow!("reading the generated key"))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .context("an Ed25519 public key is 32 bytes")?;
        let key = admin
            .add_verification_key(key_id, &public, None, "leakprobe end users")
            .await?;
        Ok(Self {
            tenant: admin.tenant_id().to_string(),
            kid: key.name,
            private_pkcs8: pkcs8.as_ref().to_vec(),
        })
    }

    /// A token for `claims`, valid now.
    pub fn mint(&self, claims: &Claims<'_>) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let mut body = json!({
            "tenant": self.tenant,
            "sub": claims.sub,
            "aud": "bulkhead",
            "role": if claims.write { "WRITE" } else { "READ" },
            "collections": claims.collections,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        if !claims.groups.is_empty() {
            body["groups"] = json!(claims.groups);
        }
        if let Some(session) = claims.session {
            body["session"] = json!(session);
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(
            &header,
            &body,
            &EncodingKey::from_ed_der(&self.private_pkcs8),
        )?)
    }
}
