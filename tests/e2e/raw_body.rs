//! gRPC calls whose bodies no client library would send: a message cut short, or a body that
//! stops mid-message and never ends. tonic's client always frames whole messages, so these
//! go through the channel as raw HTTP requests.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame};
use tonic::codegen::Bytes;
use tonic::{Code, Status};
use tower::ServiceExt;

/// What the body does after its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// It ends.
    End,
    /// It stays open and sends nothing more.
    Stall,
}

/// A body of `bytes`, then an end or a stall.
struct RawBody {
    bytes: Option<Bytes>,
    then: Then,
}

impl Body for RawBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match (self.bytes.take(), self.then) {
            (Some(bytes), _) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            // Never woken: the server answers, or the call is dropped, first.
            (None, Then::Stall) => Poll::Pending,
            (None, Then::End) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none() && self.then == Then::End
    }
}

/// The first `sent` bytes of `message` framed as one gRPC message of its whole length:
/// the five-byte prefix (uncompressed, the length big-endian), then the bytes.
pub fn framed_prefix(message: &[u8], sent: usize) -> Vec<u8> {
    let mut body = vec![0];
    body.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message[..sent]);
    body
}

/// Calls `path` (`/bulkhead.v1.<Service>/<Method>`) on `channel` with `secret` and a body of
/// `body`, then `then`; the call's status, from the answer's headers or its trailers.
pub async fn call_with_body(
    channel: tonic::transport::Channel,
    path: &str,
    secret: &str,
    body: Vec<u8>,
    then: Then,
) -> Status {
    let request = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {secret}"))
        .body(tonic::body::Body::new(RawBody {
            bytes: Some(Bytes::from(body)),
            then,
        }))
        .unwrap();
    let response = channel.oneshot(request).await.expect("the server answers");
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let mut body = response.into_body();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.expect("the answer's body arrives");
        if let Some(trailers) = frame.trailers_ref() {
            return Status::from_header_map(trailers).expect("the trailers carry a status");
        }
    }
    Status::new(Code::Unknown, "the answer ended without a status")
}
