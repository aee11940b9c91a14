//! The wire's encryption. API keys and admin tokens are bearer secrets and records are
//! customers' documents, so off loopback both must travel inside TLS: a server that would bind
//! a routable address in plaintext refuses to start unless the operator says so explicitly
//! (`insecure-plaintext`), and says so again in its log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// A client that connects and never finishes the handshake is dropped after this long (the
/// handshake runs on the connection's own task, so it holds no thread meanwhile).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS settings of `serve`, as given: paths to PEM files.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }

    /// Checks the combination, and that plaintext is confined to loopback unless allowed.
    pub fn validate(&self, listen: SocketAddr, insecure_plaintext: bool) -> anyhow::Result<()> {
        match (&self.cert, &self.key) {
            (Some(_), None) => bail!("tls-cert needs tls-key (the certificate's private key)"),
            (None, Some(_)) => bail!("tls-key needs tls-cert"),
            _ => {}
        }
        if self.client_ca.is_some() && !self.enabled() {
            bail!("tls-client-ca (mutual TLS) needs tls-cert and tls-key");
        }
        if !self.enabled() && !listen.ip().is_loopback() && !insecure_plaintext {
            bail!(
                "refusing to serve plaintext gRPC on {listen}, which is not a loopback address: \
                 give --tls-cert and --tls-key, or --insecure-plaintext if something else \
                 encrypts the traffic"
            );
        }
        Ok(())
    }

    /// The server's TLS configuration read from the files; `None` when TLS is off.
    pub fn server_config(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Ok(None);
        };
        let identity = Identity::from_pem(read_pem(cert, "tls-cert")?, read_pem(key, "tls-key")?);
        let mut config = ServerTlsConfig::new()
            .identity(identity)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read_pem(ca, "tls-client-ca")?));
        }
        Ok(Some(config))
    }
}

/// The file's bytes, refused early with its name when it holds no PEM block: rustls would
/// otherwise report "no certificates" at the first handshake, long after the operator left.
fn read_pem(path: &Path, setting: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{setting}: reading {}", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        bail!("{setting}: {} is not a PEM file", path.display());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn with_cert() -> TlsFiles {
        TlsFiles {
            cert: Some("c.pem".into()),
            key: Some("k.pem".into()),
            client_ca: None,
        }
    }

    #[test]
    fn plaintext_is_refused_off_loopback_unless_explicitly_allowed() {
        let plain = TlsFiles::default();
        for loopback in ["127.0.0.1:7600", "127.3.2.1:0", "[::1]:7600"] {
            plain.validate(addr(loopback), false).unwrap();
        }
        for routable in ["0.0.0.0:7600", "10.1.2.3:7600", "[::]:7600"] {
            let err = plain.validate(addr(routable), false).unwrap_err();
            assert!(err.to_string().contains("--insecure-plaintext"), "{err}");
            plain.validate(addr(routable), true).unwrap();
            with_cert().validate(addr(routable), false).unwrap();
        }
    }

    #[test]
    fn incomplete_settings_are_refused() {
        let local = addr("127.0.0.1:0");
        let only_cert = TlsFiles {
            key: None,
            ..with_cert()
        };
        assert!(only_cert.validate(local, false).is_err());
        let only_key = TlsFiles {
            cert: None,
            ..with_cert()
        };
        assert!(only_key.validate(local, false).is_err());
        let ca_without_identity = TlsFiles {
            client_ca: Some("ca.pem".into()),
            ..TlsFiles::default()
        };
        assert!(ca_without_identity.validate(local, false).is_err());
    }

    #[test]
    fn a_file_without_pem_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.der");
        std::fs::write(&path, [0x30, 0x82, 0x01]).unwrap();
        let err = read_pem(&path, "tls-cert").unwrap_err().to_string();
        assert!(
            err.contains("tls-cert") && err.contains("not a PEM file"),
            "{err}"
        );
        let missing = read_pem(&dir.path().join("none.pem"), "tls-key").unwrap_err();
        assert!(format!("{missing:#}").contains("tls-key"), "{missing:#}");
    }
}
