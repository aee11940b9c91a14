//! One channel plus the call policy every request follows: a deadline on each attempt, the
//! caller's credential attached explicitly (never taken from shared or thread-local state),
//! and retries with jittered exponential backoff on `UNAVAILABLE` only, since that is the one
//! status that says the request did not reach the engine.

use std::future::Future;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

use crate::error::effective_code;

use crate::error::{ClientError, Result};

/// Largest message either side may send: matches the server's default limit.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Deadlines and retries applied to every call.
#[derive(Debug, Clone)]
pub(crate) struct CallPolicy {
    /// Deadline of one attempt, sent to the server as `grpc-timeout`.
    pub(crate) timeout: Duration,
    /// Deadline of a whole Arrow import or export stream: a file moves at the pace of the
    /// tenant's write limit or of the data, not of one call.
    pub(crate) stream_timeout: Duration,
    /// Attempts in all, the first included; only `UNAVAILABLE` leads to another.
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            // The server's own bound on a stream (`stream-timeout-secs`) by default.
            stream_timeout: Duration::from_secs(3600),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// A bearer credential: a tenant key's secret or the admin token. Its `Debug` hides the value.
#[derive(Clone)]
pub(crate) struct Credential(MetadataValue<Ascii>);

impl Credential {
    pub(crate) fn new(secret: &str) -> Result<Self> {
        let mut value: MetadataValue<Ascii> = format!("Bearer {secret}")
            .parse()
            .map_err(|_| ClientError::BadCredential)?;
        value.set_sensitive(true);
        Ok(Self(value))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Connection {
    channel: Channel,
    policy: CallPolicy,
}

impl Connection {
    pub(crate) async fn open(endpoint: Endpoint, policy: CallPolicy) -> Result<Self> {
        let channel = endpoint.connect().await?;
        Ok(Self { channel, policy })
    }

    /// `msg` as a request of a whole stream (an import, an export) with the credential and the
    /// stream's deadline. Streams can't be replayed and so are never retried.
    pub(crate) fn stream_request<T>(&self, credential: &Credential, msg: T) -> Request<T> {
        authorized(credential, msg, self.policy.stream_timeout)
    }

    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Sends `msg` through `send` under the call policy, authenticated as `credential`.
    pub(crate) async fn call<Req, Resp, F, Fut>(
        &self,
        credential: &Credential,
        msg: Req,
        mut send: F,
    ) -> Result<Resp>
    where
        Req: Clone,
        F: FnMut(Channel, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let mut backoff = self.policy.initial_backoff;
        let mut attempt = 1;
        loop {
            let request = authorized(credential, msg.clone(), self.policy.timeout);
            match send(self.channel.clone(), request).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(s)
                    if effective_code(&s) == Code::Unavailable
                        && attempt < self.policy.max_attempts =>
                {
                    tokio::time::sleep(jittered(backoff)).await;
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                    attempt += 1;
                }
                Err(s) => return Err(s.into()),
            }
        }
    }
}

/// `msg` as a request with the credential and `deadline`, sent to the server as `grpc-timeout`.
fn authorized<T>(credential: &Credential, msg: T, deadline: Duration) -> Request<T> {
    let mut request = Request::new(msg);
    request.set_timeout(deadline);
    request
        .metadata_mut()
        .insert("authorization", credential.0.clone());
    request
}

/// Somewhere between half of `backoff` and all of it, so clients that failed together don't
/// retry together.
fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(rand::random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_to_full_backoff() {
        let b = Duration::from_millis(100);
        for _ in 0..1000 {
            let j = jittered(b);
            assert!(j >= b / 2 && j <= b, "{j:?}");
        }
    }

    #[test]
    fn credentials_hide_their_value() {
        let c = Credential::new("bh_secret").unwrap();
        assert!(!format!("{c:?}").contains("secret"));
        assert!(matches!(
            Credential::new("bad\nsecret"),
            Err(ClientError::BadCredential)
        ));
    }
}
