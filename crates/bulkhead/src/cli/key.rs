//! `bulkhead key ...`: a tenant's API keys and end-user token verification keys, with the admin
//! token or a TENANT_ADMIN key. `revoke` takes a key as `key list` prints it
//! (`tenants/T/keys/ID`) as well as its bare id, so a listed name can be pasted back.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bulkhead_client::proto as pb;
use bulkhead_client::{CreatedKey, Role};
use bulkhead_core::{KeyId, KeyName};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::Session;
use super::output::{Rows, time};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key; its secret is printed this once.
    Create {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        /// What the key may do; each role includes the ones before it.
        #[arg(long)]
        role: RoleArg,
        /// Lifetime, e.g. `90d`; without it the key lasts until revoked.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List a tenant's keys (never their secrets).
    List {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        /// The key's id, or its name as `key list` prints it: tenants/TENANT/keys/ID.
        key_id: String,
    },
    /// Register an Ed25519 public key the tenant's backend signs end-user tokens with (see
    /// `token keygen`, `token mint`); tokens carry its name as their `kid`.
    AddVerificationKey {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        /// The key's id, chosen by you.
        #[arg(long)]
        id: String,
        /// The raw 32-byte public key in base64, as `token keygen` prints it.
        #[arg(long)]
        public_key: String,
        /// Longest lifetime of a token it signs, e.g. `15m` (at most 24h; default 1h).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_token_lifetime: Option<Duration>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Register every Ed25519 signing key of a JWKS document (RFC 7517/8037: `kty` OKP, `crv`
    /// Ed25519), each under its `kid`; other keys are listed as skipped, with the reason.
    ImportJwks {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        /// The JWKS document (`{"keys": [...]}`), e.g. saved from the issuer's jwks_uri.
        #[arg(long, value_name = "FILE")]
        jwks: std::path::PathBuf,
        /// Longest lifetime of a token the keys sign, e.g. `15m` (at most 24h; default 1h).
        #[arg(long, value_parser = humantime::parse_duration)]
        max_token_lifetime: Option<Duration>,
    },
    /// List a tenant's verification keys.
    ListVerificationKeys {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
    },
    /// Revoke a verification key: no token it signed authenticates from then on.
    RevokeVerificationKey {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        /// The key's id.
        key_id: String,
    },
}

/// The roles as the command line spells them (clap lists exactly these on a bad value).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Read,
    Write,
    TenantAdmin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Read => Role::Read,
            RoleArg::Write => Role::Write,
            RoleArg::TenantAdmin => Role::TenantAdmin,
        }
    }
}

/// The key id `key` gives: itself, or the last segment of a full name of `tenant`'s.
fn parse_key_id(tenant: &str, key: &str) -> Result<KeyId> {
    if !key.contains('/') {
        return Ok(KeyId::new(key)?);
    }
    let name: KeyName = key.parse()?;
    ensure!(
        name.tenant.as_str() == tenant,
        "key {key} belongs to tenant {:?}, not to --tenant {tenant:?}",
        name.tenant.as_str()
    );
    Ok(name.key)
}

pub async fn run(s: &Session, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Create {
            tenant,
            role,
            ttl,
            description,
        } => {
            let created = s
                .tenant(&tenant)?
                .create_key(role.into(), ttl, &description)
                .await?;
            print_created(s, &created);
        }
        KeyCommand::List { tenant } => {
            let keys = s.tenant(&tenant)?.keys().await?;
            let mut r = key_rows(&[]);
            for k in keys {
                r.push(key_cells(&k, vec![]));
            }
            s.out.list(&r);
        }
        KeyCommand::Revoke { tenant, key_id } => {
            let id = parse_key_id(&tenant, &key_id)?;
            s.tenant(&tenant)?.revoke_key(id.as_str()).await?;
            s.out
                .done("revoked", &format!("tenants/{tenant}/keys/{id}"));
        }
        KeyCommand::AddVerificationKey {
            tenant,
            id,
            public_key,
            max_token_lifetime,
            description,
        } => {
            let public_key = decode_public_key(&public_key)?;
            let key = s
                .tenant(&tenant)?
                .add_verification_key(&id, &public_key, max_token_lifetime, &description)
                .await?;
            let mut r = verification_key_rows();
            r.push(verification_key_cells(&key));
            s.out.one(&r);
        }
        KeyCommand::ImportJwks {
            tenant,
            jwks,
            max_token_lifetime,
        } => {
            let text = std::fs::read_to_string(&jwks)
                .with_context(|| format!("reading {}", jwks.display()))?;
            let (keys, skipped) =
                super::jwks::ed25519_keys(&text).with_context(|| format!("{}", jwks.display()))?;
            // On stderr, so a script reading the JSON still sees what was left out.
            for why in &skipped {
                eprintln!("skipped {why}");
            }
            ensure!(
                !keys.is_empty(),
                "{}: no Ed25519 signing key to register",
                jwks.display()
            );
            let handle = s.tenant(&tenant)?;
            let description = format!("from {}", jwks.display());
            let mut r = verification_key_rows();
            for key in &keys {
                let added = handle
                    .add_verification_key(
                        key.kid.as_str(),
                        &key.public_key,
                        max_token_lifetime,
                        &description,
                    )
                    .await
                    .with_context(|| format!("registering {}", key.kid))?;
                r.push(verification_key_cells(&added));
            }
            s.out.list(&r);
        }
        KeyCommand::ListVerificationKeys { tenant } => {
            let mut r = verification_key_rows();
            for k in s.tenant(&tenant)?.verification_keys().await? {
                r.push(verification_key_cells(&k));
            }
            s.out.list(&r);
        }
        KeyCommand::RevokeVerificationKey { tenant, key_id } => {
            s.tenant(&tenant)?.revoke_verification_key(&key_id).await?;
            s.out.done(
                "revoked",
                &format!("tenants/{tenant}/verificationKeys/{key_id}"),
            );
        }
    }
    Ok(())
}

/// A raw Ed25519 public key from its base64 form.
fn decode_public_key(b64: &str) -> Result<[u8; 32]> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| anyhow::anyhow!("--public-key: not base64: {e}"))?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        anyhow::anyhow!("--public-key: an Ed25519 public key is 32 bytes, this one is {len}")
    })
}

fn verification_key_rows() -> Rows {
    Rows::new(&[
        "name",
        "public_key",
        "max_token_lifetime_seconds",
        "description",
        "create_time",
        "revoked",
    ])
}

fn verification_key_cells(k: &pb::VerificationKey) -> Vec<serde_json::Value> {
    use base64::Engine as _;
    vec![
        json!(k.name),
        json!(base64::engine::general_purpose::STANDARD.encode(&k.ed25519_public_key)),
        json!(k.max_token_lifetime_seconds),
        json!(k.description),
        time(k.create_time.as_ref()),
        json!(k.revoked),
    ]
}

fn print_created(s: &Session, created: &CreatedKey) {
    let mut r = key_rows(&["secret"]);
    r.push(key_cells(&created.key, vec![json!(created.secret)]));
    s.out.one(&r);
    s.out
        .note("The secret is shown only now; store it, e.g. as BULKHEAD_KEY.");
}

fn key_rows(extra: &[&'static str]) -> Rows {
    let mut headers = vec![
        "name",
        "role",
        "description",
        "create_time",
        "expire_time",
        "revoked",
    ];
    headers.extend_from_slice(extra);
    Rows::new(&headers)
}

fn key_cells(k: &pb::ApiKey, extra: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let role = pb::Role::try_from(k.role).map_or("UNKNOWN", |r| r.as_str_name());
    let mut cells = vec![
        json!(k.name),
        json!(role),
        json!(k.description),
        time(k.create_time.as_ref()),
        time(k.expire_time.as_ref()),
        json!(k.revoked),
    ];
    cells.extend(extra);
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_is_32_bytes_of_base64() {
        let key = decode_public_key("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=").unwrap();
        assert_eq!(key[0], 0xd7);
        assert!(decode_public_key("not base64!").is_err());
        let short = decode_public_key("AAAA").unwrap_err().to_string();
        assert!(short.contains("is 3"), "{short}");
    }

    #[test]
    fn a_key_is_its_id_or_a_full_name_of_the_same_tenant() {
        let id = |key: &str| parse_key_id("acme", key).map(|id| id.as_str().to_owned());
        assert_eq!(id("k1").unwrap(), "k1");
        assert_eq!(id("tenants/acme/keys/k1").unwrap(), "k1");
        assert_eq!(
            id("K1!").unwrap_err().to_string(),
            "invalid key id \"K1!\": must start with a lowercase ASCII letter or digit"
        );
        let other = id("tenants/globex/keys/k1").unwrap_err();
        assert_eq!(
            other.to_string(),
            "key tenants/globex/keys/k1 belongs to tenant \"globex\", not to --tenant \"acme\""
        );
        assert!(id("tenants/acme/collections/k1").is_err());
    }
}
