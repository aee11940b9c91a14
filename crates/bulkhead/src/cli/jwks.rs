//! A JWKS document (RFC 7517) as a tenant's identity setup publishes it, read for
//! `key import-jwks`: each Ed25519 signing key in it (RFC 8037: `kty` `OKP`, `crv` `Ed25519`,
//! `x` the base64url public key) is registered with the tenant under its `kid`, so tokens that
//! name the key as `tenants/{tenant}/verificationKeys/{kid}` verify. Keys the server can't
//! verify with (RSA, EC, symmetric, encryption keys) are listed as skipped with the reason,
//! never silently dropped.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bulkhead_core::KeyId;
use serde::Deserialize;

/// Most keys one document may hold (a tenant holds at most 16 verification keys).
const MAX_KEYS: usize = 64;

#[derive(Debug, Deserialize)]
struct Document {
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    /// A private key's part: present means the document leaks the private key.
    d: Option<serde::de::IgnoredAny>,
}

/// One key to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519Key {
    pub kid: KeyId,
    pub public_key: [u8; 32],
}

/// The document's Ed25519 keys, and for every other key why it was skipped.
pub fn ed25519_keys(document: &str) -> Result<(Vec<Ed25519Key>, Vec<String>)> {
    let doc: Document = serde_json::from_str(document).context("not a JWKS document")?;
    if doc.keys.len() > MAX_KEYS {
        bail!(
            "the document holds {} keys, at most {MAX_KEYS}",
            doc.keys.len()
        );
    }
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, jwk) in doc.keys.into_iter().enumerate() {
        let label = jwk.kid.clone().unwrap_or_else(|| format!("keys[{i}]"));
        if jwk.d.is_some() {
            bail!("{label}: holds a private key (`d`); publish only public keys");
        }
        match key(jwk) {
            Ok(k) => keys.push(k),
            Err(why) => skipped.push(format!("{label}: {why}")),
        }
    }
    Ok((keys, skipped))
}

fn key(jwk: Jwk) -> std::result::Result<Ed25519Key, String> {
    if jwk.kty.as_deref() != Some("OKP") || jwk.crv.as_deref() != Some("Ed25519") {
        return Err(format!(
            "a {} {} key; end-user tokens are verified with Ed25519 (OKP) keys only",
            jwk.kty.as_deref().unwrap_or("?"),
            jwk.crv.as_deref().unwrap_or("")
        ));
    }
    if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
        return Err(format!(
            "`use` is {:?}, not a signing key",
            jwk.usage.unwrap_or_default()
        ));
    }
    if jwk
        .alg
        .as_deref()
        .is_some_and(|a| a != "EdDSA" && a != "Ed25519")
    {
        return Err(format!("`alg` is {:?}", jwk.alg.unwrap_or_default()));
    }
    let kid = jwk
        .kid
        .ok_or("no `kid`: the key's name in the tenant comes from it")?;
    let kid = KeyId::new(kid.as_str()).map_err(|e| format!("`kid`: {e}"))?;
    let x = jwk.x.ok_or("no `x` (the public key)")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(x.trim_end_matches('='))
        .map_err(|e| format!("`x` is not base64url: {e}"))?;
    let len = bytes.len();
    let public_key = bytes
        .try_into()
        .map_err(|_| format!("`x` is {len} bytes; an Ed25519 public key is 32"))?;
    Ok(Ed25519Key { kid, public_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn ed25519_keys_are_taken_and_every_other_key_is_named_with_its_reason() {
        let doc = format!(
            r#"{{"keys": [
                {{"kty": "OKP", "crv": "Ed25519", "x": "{}", "kid": "backend-1", "use": "sig", "alg": "EdDSA"}},
                {{"kty": "OKP", "crv": "Ed25519", "x": "{}", "kid": "backend-2"}},
                {{"kty": "RSA", "n": "abc", "e": "AQAB", "kid": "rsa-1"}},
                {{"kty": "OKP", "crv": "X25519", "x": "{}", "kid": "kex"}},
                {{"kty": "OKP", "crv": "Ed25519", "x": "{}", "kid": "enc", "use": "enc"}},
                {{"kty": "OKP", "crv": "Ed25519", "x": "{}"}},
                {{"kty": "OKP", "crv": "Ed25519", "x": "{}", "kid": "Bad Kid"}},
                {{"kty": "OKP", "crv": "Ed25519", "x": "{}", "kid": "short"}}
            ]}}"#,
            x(&[1; 32]),
            x(&[2; 32]),
            x(&[3; 32]),
            x(&[4; 32]),
            x(&[5; 32]),
            x(&[6; 32]),
            x(&[7; 31]),
        );
        let (keys, skipped) = ed25519_keys(&doc).unwrap();
        assert_eq!(
            keys,
            vec![
                Ed25519Key {
                    kid: KeyId::new("backend-1").unwrap(),
                    public_key: [1; 32]
                },
                Ed25519Key {
                    kid: KeyId::new("backend-2").unwrap(),
                    public_key: [2; 32]
                },
            ]
        );
        assert_eq!(skipped.len(), 6, "{skipped:#?}");
        for (want, got) in [
            "rsa-1: a RSA",
            "kex: a OKP X25519",
            "enc: `use`",
            "keys[5]: no `kid`",
            "Bad Kid: `kid`",
            "short: `x` is 31 bytes",
        ]
        .iter()
        .zip(&skipped)
        {
            assert!(got.starts_with(want), "{got} (wanted {want})");
        }
    }

    #[test]
    fn a_document_with_a_private_key_or_not_a_jwks_is_refused() {
        let private = format!(
            r#"{{"keys": [{{"kty": "OKP", "crv": "Ed25519", "x": "{}", "d": "secret", "kid": "k"}}]}}"#,
            x(&[1; 32])
        );
        assert!(
            ed25519_keys(&private)
                .unwrap_err()
                .to_string()
                .contains("private key")
        );
        assert!(ed25519_keys("{}").is_err());
        assert!(ed25519_keys("not json").is_err());
        let many = format!(r#"{{"keys": [{}]}}"#, vec!["{}"; MAX_KEYS + 1].join(","));
        assert!(ed25519_keys(&many).is_err());
    }
}
