//! Errors a caller can act on. The gRPC status code is turned into a variant once, here, so
//! application code matches on `NotFound` or `PermissionDenied` instead of comparing codes.

use tonic::{Code, Status, TimeoutExpired};

/// Everything the SDK can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The caller's input was rejected before anything was sent (a malformed tenant id, say).
    #[error("invalid input: {0}")]
    Local(#[from] bulkhead_core::CoreError),
    /// The server rejected the request as malformed; the message names the field.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// Missing, unknown, expired or revoked credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The credentials are valid but not for this tenant or this operation.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A quota or rate limit was hit. A rate or write limit also says how long to wait before
    /// trying again (the server's `grpc-retry-pushback-ms` trailer): `retry_after`.
    #[error("resource exhausted: {message}{}", retry_hint(*retry_after))]
    ResourceExhausted {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    /// The server stayed unreachable through every retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// Any other status, kept whole.
    #[error("server error {code:?}: {message}")]
    Server { code: Code, message: String },
    /// The endpoint could not be parsed or reached at connect time.
    #[error("connection: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// TLS settings that can't be used (a file that can't be read, a key without its
    /// certificate, TLS settings for an `http://` endpoint).
    #[error("TLS: {0}")]
    Tls(String),
    /// The server sent something this SDK can't read (a metadata value without a type, say).
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// Writing exported data where the caller asked failed.
    #[error("writing the export: {0}")]
    Sink(String),
    /// A tenant update that names no setting; nothing was sent.
    #[error("nothing to update: give at least one setting")]
    EmptyUpdate,
    /// A credential that can't be sent as a header (not printable ASCII).
    #[error("credential is not a valid header value")]
    BadCredential,
}

impl ClientError {
    /// Whether retrying the same call may succeed: only when the server was unreachable.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ClientError::Unavailable(_))
    }
}

/// The code a status stands for. tonic reports a request lost with its connection (the server
/// went away: broken pipe, reset) as `UNKNOWN`; like grpc-go, the SDK counts it as
/// `UNAVAILABLE`, so it is retried. Such a request may have been applied before the connection
/// broke: upserts and deletes are idempotent, and a retried create answers `ALREADY_EXISTS`.
/// tonic reports the client's own deadline passing as `CANCELLED` (with its `TimeoutExpired`
/// text and no source); like grpc-go, the SDK counts it as `DEADLINE_EXCEEDED`, whichever side's
/// clock ran out first.
pub(crate) fn effective_code(s: &Status) -> Code {
    if s.code() == Code::Unknown && lost_connection(s) {
        Code::Unavailable
    } else if s.code() == Code::Cancelled && s.message() == TimeoutExpired(()).to_string() {
        Code::DeadlineExceeded
    } else {
        s.code()
    }
}

fn lost_connection(s: &Status) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, NotConnected};
    let mut cause = std::error::Error::source(s);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected
            );
        }
        cause = e.source();
    }
    false
}

impl From<Status> for ClientError {
    fn from(s: Status) -> Self {
        let message = s.message().to_owned();
        match effective_code(&s) {
            Code::InvalidArgument | Code::OutOfRange => ClientError::InvalidArgument(message),
            Code::NotFound => ClientError::NotFound(message),
            Code::AlreadyExists => ClientError::AlreadyExists(message),
            Code::Unauthenticated => ClientError::Unauthenticated(message),
            Code::PermissionDenied => ClientError::PermissionDenied(message),
            Code::ResourceExhausted => ClientError::ResourceExhausted {
                message,
                retry_after: retry_pushback(&s),
            },
            Code::Unavailable => ClientError::Unavailable(message),
            Code::DeadlineExceeded => ClientError::DeadlineExceeded(message),
            code => ClientError::Server { code, message },
        }
    }
}

/// What a refusal's message adds when the server named a wait: what a command-line user reads.
fn retry_hint(retry_after: Option<std::time::Duration>) -> String {
    match retry_after {
        Some(wait) if !wait.is_zero() => format!(" (try again in {:.1} s)", wait.as_secs_f64()),
        Some(_) => " (try again now)".to_owned(),
        None => String::new(),
    }
}

/// How long the server asked the caller to wait before trying again, if it did (gRPC's
/// `grpc-retry-pushback-ms`; a refusal for a tenant's limits carries it).
fn retry_pushback(s: &Status) -> Option<std::time::Duration> {
    let value = s.metadata().get(bulkhead_wire::RETRY_PUSHBACK_TRAILER)?;
    bulkhead_wire::retry_pushback_from_trailer(value.to_str().ok()?)
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_their_variants_and_only_unavailable_retries() {
        assert!(matches!(
            ClientError::from(Status::permission_denied("x")),
            ClientError::PermissionDenied(m) if m == "x"
        ));
        assert!(ClientError::from(Status::unavailable("down")).is_retryable());
        assert!(!ClientError::from(Status::internal("boom")).is_retryable());
        assert!(!ClientError::from(Status::resource_exhausted("slow")).is_retryable());
        assert!(matches!(
            ClientError::from(Status::resource_exhausted("slow")),
            ClientError::ResourceExhausted { message, retry_after: None } if message == "slow"
        ));
        let mut pushed_back = Status::resource_exhausted("over its write limit");
        pushed_back
            .metadata_mut()
            .insert("grpc-retry-pushback-ms", "1500".parse().unwrap());
        let refused = ClientError::from(pushed_back);
        assert!(matches!(
            refused,
            ClientError::ResourceExhausted { retry_after: Some(d), .. }
                if d == std::time::Duration::from_millis(1500)
        ));
        assert_eq!(
            refused.to_string(),
            "resource exhausted: over its write limit (try again in 1.5 s)"
        );
        assert_eq!(
            ClientError::from(Status::resource_exhausted("quota")).to_string(),
            "resource exhausted: quota",
            "no wait named, none shown"
        );
        let mut lost = Status::unknown("transport error");
        lost.set_source(std::sync::Arc::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert!(ClientError::from(lost).is_retryable());
        assert!(!ClientError::from(Status::unknown("handler panicked")).is_retryable());
        assert!(matches!(
            ClientError::from(Status::data_loss("d")),
            ClientError::Server {
                code: Code::DataLoss,
                ..
            }
        ));
    }

    /// The client's own deadline, as tonic's channel reports it, is a deadline; a cancel with
    /// any other text stays one.
    #[test]
    fn the_clients_own_deadline_is_deadline_exceeded() {
        let expired = Status::from_error(Box::new(TimeoutExpired(())));
        assert_eq!(expired.code(), Code::Cancelled, "tonic's own mapping");
        assert!(matches!(
            ClientError::from(expired),
            ClientError::DeadlineExceeded(_)
        ));
        assert!(matches!(
            ClientError::from(Status::cancelled("the server went away")),
            ClientError::Server {
                code: Code::Cancelled,
                ..
            }
        ));
    }
}
