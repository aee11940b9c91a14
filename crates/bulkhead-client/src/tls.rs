//! TLS as a caller states it: an `https://` endpoint, optionally a private CA to trust instead
//! of the public roots, and a client certificate for servers that require one (mTLS). Kept as
//! PEM bytes so the CLI, the leak probe and applications configure it the same way without
//! naming tonic's types.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::error::{ClientError, Result};

/// TLS settings for an `https://` endpoint. The default trusts the Mozilla root store
/// (webpki-roots) and presents no client certificate.
#[derive(Clone, Default)]
pub struct TlsOptions {
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("custom_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsOptions {
    /// Trust only these PEM CA certificates (a private CA), not the public roots.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Present this PEM certificate chain and private key to servers that require one.
    pub fn with_client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Check the server's certificate against this name instead of the endpoint's host.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Options read from PEM files, as the command-line tools take them; a client key without
    /// its certificate (or the reverse) is refused.
    pub fn from_files(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Self> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .map_err(|e| ClientError::Tls(format!("reading {what} {}: {e}", path.display())))
        };
        let mut options = Self::default();
        if let Some(ca) = ca {
            options = options.with_ca_pem(read(ca, "the CA certificate")?);
        }
        match (cert, key) {
            (Some(cert), Some(key)) => {
                options = options.with_client_identity(
                    read(cert, "the client certificate")?,
                    read(key, "the client key")?,
                );
            }
            (None, None) => {}
            _ => {
                return Err(ClientError::Tls(
                    "a client certificate needs its key, and a key its certificate".to_owned(),
                ));
            }
        }
        Ok(options)
    }

    /// Whether anything differs from the default (public roots, no client certificate).
    pub fn is_custom(&self) -> bool {
        self.ca_pem.is_some() || self.identity.is_some() || self.server_name.is_some()
    }

    fn client_config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_pem {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_webpki_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        config
    }

    /// `endpoint` with these settings. Custom settings on an `http://` endpoint are refused
    /// rather than silently sent in plaintext.
    pub fn apply(&self, endpoint: Endpoint) -> Result<Endpoint> {
        let https = endpoint.uri().scheme_str() == Some("https");
        if !https {
            if self.is_custom() {
                return Err(ClientError::Tls(format!(
                    "TLS settings were given for {}, which is not an https:// endpoint",
                    endpoint.uri()
                )));
            }
            return Ok(endpoint);
        }
        Ok(endpoint.tls_config(self.client_config())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_settings_on_a_plaintext_endpoint_are_refused() {
        let plain = Endpoint::from_static("http://127.0.0.1:7600");
        TlsOptions::default().apply(plain.clone()).unwrap();
        let err = TlsOptions::default()
            .with_ca_pem(b"-----BEGIN CERTIFICATE-----".to_vec())
            .apply(plain)
            .unwrap_err();
        assert!(matches!(err, ClientError::Tls(m) if m.contains("not an https")));
    }

    #[test]
    fn a_key_without_its_certificate_is_refused() {
        let dir = std::env::temp_dir();
        let err = TlsOptions::from_files(None, None, Some(&dir)).unwrap_err();
        assert!(matches!(err, ClientError::Tls(_)));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let o = TlsOptions::default().with_client_identity("CERT", "SECRET-KEY");
        assert!(!format!("{o:?}").contains("SECRET"));
    }
}
