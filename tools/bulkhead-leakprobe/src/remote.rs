//! Where the probed server is and how to reach it: the endpoint plus its TLS settings, kept
//! together so every connection the probe opens (the SDK's, the raw channel, each interleaved
//! client's) goes through the same encryption as an application's would.

use anyhow::Context;
use bulkhead_client::{Client, TlsOptions};
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Clone)]
pub struct Remote {
    pub endpoint: String,
    pub tls: TlsOptions,
}

impl Remote {
    /// An SDK client of the server.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::builder(self.endpoint.clone())
            .tls(self.tls.clone())
            .connect()
            .await
            .with_context(|| format!("connecting to {}", self.endpoint))
    }

    /// A bare channel, for requests the SDK would refuse to build.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        let endpoint = self
            .tls
            .apply(Endpoint::from_shared(self.endpoint.clone())?)?;
        endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {}", self.endpoint))
    }
}
