//! `bulkhead token ...`: what a tenant's backend does to let its own users in, for trying it
//! out and for tests. `keygen` makes the Ed25519 key pair (the private key stays with the
//! backend; the public one is registered with `key add-verification-key`), `mint` signs an
//! end-user token with it. Neither talks to the server: the server only ever sees the public
//! key and the tokens.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bulkhead_core::{CollectionId, SessionId, VerificationKeyName};
use clap::{Subcommand, ValueEnum};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

/// The PEM label of a PKCS#8 private key, as `openssl genpkey -algorithm ed25519` writes it.
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an Ed25519 key pair: the private key goes to --out (PKCS#8 PEM, readable by its
    /// owner only), the public key is printed in base64 for `key add-verification-key`.
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Sign an end-user token with a private key from `keygen` (or `openssl genpkey -algorithm
    /// ed25519`), for the verification key --kid names.
    Mint {
        #[arg(long, value_name = "FILE")]
        private_key_file: PathBuf,
        /// The registered key: tenants/TENANT/verificationKeys/ID. The token is for its tenant.
        #[arg(long)]
        kid: String,
        /// The end user the token speaks for.
        #[arg(long)]
        sub: String,
        /// A collection the user may reach; repeat for more.
        #[arg(long = "collection", required = true)]
        collections: Vec<String>,
        /// A group the user belongs to; repeat for more.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Bind the token to this session: it then reaches that session's memory (and its
        /// answers in the caches it lists) and nothing else.
        #[arg(long)]
        session: Option<String>,
        #[arg(long, value_enum, default_value = "read")]
        role: UserRole,
        /// How long the token lives, e.g. `15m`; at most the key's max token lifetime.
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
}

/// What an end user may do: never more than write.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UserRole {
    Read,
    Write,
}

/// Prints what a script takes (the public key, the token) alone on stdout.
pub fn run(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Keygen { out } => {
            let public = STANDARD.encode(keygen(&out)?);
            println!("{public}");
            eprintln!(
                "private key in {}; register the public key with: bulkhead key \
                 add-verification-key --tenant TENANT --id ID --public-key {public}",
                out.display()
            );
        }
        TokenCommand::Mint {
            private_key_file,
            kid,
            sub,
            collections,
            groups,
            session,
            role,
            ttl,
        } => {
            let kid: VerificationKeyName = kid.parse().context("--kid")?;
            if let Some(s) = &session {
                SessionId::new(s.as_str()).with_context(|| format!("--session {s}"))?;
            }
            for c in &collections {
                CollectionId::new(c.as_str()).with_context(|| format!("--collection {c}"))?;
            }
            ensure!(!sub.is_empty(), "--sub must not be empty");
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let mut claims = json!({
                "tenant": kid.tenant.as_str(),
                "sub": sub,
                "aud": "bulkhead",
                "role": match role { UserRole::Read => "READ", UserRole::Write => "WRITE" },
                "collections": collections,
                "groups": groups,
                "iat": now,
                "exp": now + ttl.as_secs().max(1),
            });
            if let Some(s) = session {
                claims["session"] = json!(s);
            }
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(kid.to_string());
            let pkcs8 = read_private_key(&private_key_file)?;
            let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&pkcs8))
                .context("signing the token")?;
            println!("{token}");
        }
    }
    Ok(())
}

/// Writes a new key pair's private key to `path` (never over an existing file); returns the
/// raw public key.
fn keygen(path: &Path) -> Result<[u8; 32]> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("generating an Ed25519 key pair failed"))?;
    let public = public_key(pkcs8.as_ref())?;
    let pem = pem::encode(&pem::Pem::new(PRIVATE_KEY_LABEL, pkcs8.as_ref().to_vec()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(public)
}

/// The PKCS#8 DER of an Ed25519 private key in a PEM file.
fn read_private_key(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let pem = pem::parse(text).with_context(|| format!("{}: not PEM", path.display()))?;
    if pem.tag() != PRIVATE_KEY_LABEL {
        bail!(
            "{}: a {:?} block; expected a PKCS#8 Ed25519 {PRIVATE_KEY_LABEL:?}",
            path.display(),
            pem.tag()
        );
    }
    public_key(pem.contents()).with_context(|| path.display().to_string())?;
    Ok(pem.into_contents())
}

/// The raw public key of a PKCS#8 Ed25519 private key, which also shows it is one.
fn public_key(pkcs8: &[u8]) -> Result<[u8; 32]> {
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|e| anyhow::anyhow!("not an Ed25519 private key (PKCS#8): {e}"))?;
    Ok(pair
        .public_key()
        .as_ref()
        .try_into()
        .expect("Ed25519 public keys are 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_private_key_reads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backend.pem");
        let public = keygen(&path).unwrap();
        let pkcs8 = read_private_key(&path).unwrap();
        assert_eq!(public_key(&pkcs8).unwrap(), public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(keygen(&path).is_err(), "an existing key is never replaced");
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(read_private_key(&path).is_err());
    }
}
