//! Only three methods carry records in their requests (Upsert, Import, the cache's Store); every
//! other request is a few KiB. tonic decodes a message on an async worker before any handler
//! runs, so a 60 MiB Query (a filter listing one value millions of times) would cost the whole
//! server tens of milliseconds of decoding per request before anything could refuse it. Bodies
//! of all other methods are capped at `max-read-message-bytes` and refused as
//! `INVALID_ARGUMENT` (see `transport_refusals`).
//!
//! Refused at the first five bytes, not at the limit: a gRPC message starts with its length,
//! so a body whose first message declares more than the limit is refused before the rest is
//! read. Cutting it off only once `max-read-message-bytes` had arrived still had a runtime
//! worker receive and frame a mebibyte per refused request, at normal priority: an attacker
//! sending 4 MiB filters in a loop made the server's request threads spend a quarter of a CPU
//! on them. The byte count stays as well, for streams and for a client that lies about the
//! length.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::Limited;
use tonic::body::Body;
use tonic::codegen::Bytes;

/// The methods whose requests may be up to `max-message-bytes`.
const RECORD_CARRYING: &[&str] = &[
    "/bulkhead.v1.RecordService/Upsert",
    "/bulkhead.v1.RecordService/Import",
    "/bulkhead.v1.SemanticCacheService/Store",
];

/// A gRPC message's prefix: a compression flag and the length, four bytes big-endian.
pub const PREFIX_BYTES: usize = 5;

/// The layer's function: caps the body of every other method at `limit` bytes.
pub fn capped_at(
    limit: usize,
) -> impl Fn(http::Request<Body>) -> http::Request<Body> + Clone + Send + 'static {
    move |request: http::Request<Body>| {
        if RECORD_CARRYING.contains(&request.uri().path()) {
            request
        } else {
            request.map(|body| Body::new(DeclaredLength::new(Limited::new(body, limit), limit)))
        }
    }
}

/// The refusal of a message that declares more than the limit. Its text starts like the byte
/// count's (`http_body_util::LengthLimitError`), so `transport_refusals` answers both alike.
#[derive(Debug)]
struct DeclaredTooLong {
    declared: u32,
    limit: usize,
}

impl std::fmt::Display for DeclaredTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "length limit exceeded: the message declares {} bytes, the limit is {}",
            self.declared, self.limit
        )
    }
}

impl std::error::Error for DeclaredTooLong {}

/// A body that fails as soon as its first message's prefix declares more than `limit` bytes.
struct DeclaredLength<B> {
    inner: B,
    limit: usize,
    prefix: [u8; PREFIX_BYTES],
    /// Prefix bytes seen so far; `PREFIX_BYTES` once the first message's length is checked.
    seen: usize,
}

impl<B> DeclaredLength<B> {
    fn new(inner: B, limit: usize) -> Self {
        Self {
            inner,
            limit,
            prefix: [0; PREFIX_BYTES],
            seen: 0,
        }
    }

    /// Takes what `chunk` (a data frame) holds of the prefix; the refusal once the prefix is
    /// complete and declares too much.
    fn check(&mut self, chunk: &[u8]) -> Result<(), DeclaredTooLong> {
        if self.seen == PREFIX_BYTES {
            return Ok(());
        }
        let take = (PREFIX_BYTES - self.seen).min(chunk.len());
        self.prefix[self.seen..self.seen + take].copy_from_slice(&chunk[..take]);
        self.seen += take;
        if self.seen < PREFIX_BYTES {
            return Ok(());
        }
        let declared = u32::from_be_bytes([
            self.prefix[1],
            self.prefix[2],
            self.prefix[3],
            self.prefix[4],
        ]);
        if declared as usize > self.limit {
            return Err(DeclaredTooLong {
                declared,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

impl<B> HttpBody for DeclaredLength<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other.map(|end| end.map_err(Into::into))),
        };
        // A data frame shorter than the prefix (possible, if unusual) leaves the rest of the
        // prefix to the next ones.
        if let Some(data) = frame.data_ref()
            && let Err(refused) = self.check(data)
        {
            return Poll::Ready(Some(Err(refused.into())));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A client's body: `frames`, then nothing ever again (a client that keeps the stream open).
    struct ThenSilence(std::collections::VecDeque<Bytes>);

    impl HttpBody for ThenSilence {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.0.pop_front() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => Poll::Pending,
            }
        }
    }

    fn message_start(declared: u32, then: &[u8]) -> Bytes {
        let mut prefix = vec![0u8];
        prefix.extend_from_slice(&declared.to_be_bytes());
        prefix.extend_from_slice(then);
        prefix.into()
    }

    async fn next_frame(body: &mut DeclaredLength<ThenSilence>) -> Option<Result<Bytes, String>> {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(1), body.frame())
            .await
            .ok()??;
        Some(
            frame
                .map(|f| f.into_data().expect("data frames only"))
                .map_err(|e| e.to_string()),
        )
    }

    #[tokio::test]
    async fn a_message_declaring_too_much_is_refused_before_the_rest_arrives() {
        let mut body = DeclaredLength::new(
            ThenSilence([message_start(4 << 20, b"abc")].into()),
            1 << 20,
        );
        // The old cut-off (bytes counted as they arrive) would wait here for the other 4 MiB.
        let refused = next_frame(&mut body).await.expect("refused at once");
        let message = refused.unwrap_err();
        assert!(
            message.starts_with("length limit exceeded") && message.contains("4194304"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_prefix_split_across_frames_is_put_together() {
        let whole = message_start(2048, b"payload");
        let mut body = DeclaredLength::new(
            ThenSilence([whole.slice(..2), whole.slice(2..4), whole.slice(4..)].into()),
            1024,
        );
        assert!(next_frame(&mut body).await.unwrap().is_ok());
        assert!(next_frame(&mut body).await.unwrap().is_ok());
        assert!(next_frame(&mut body).await.unwrap().is_err());
    }

    #[tokio::test]
    async fn a_message_of_exactly_the_limit_passes() {
        let exact = message_start(1024, b"");
        let mut body = DeclaredLength::new(ThenSilence([exact.clone()].into()), 1024);
        assert_eq!(next_frame(&mut body).await.unwrap().unwrap(), exact);
    }

    #[test]
    fn the_end_and_the_size_are_the_inner_bodys() {
        let full = DeclaredLength::new(http_body_util::Full::new(message_start(3, b"xyz")), 1024);
        assert_eq!(full.size_hint().exact(), Some(8));
        assert!(!full.is_end_stream());
        let empty = DeclaredLength::new(http_body_util::Empty::<Bytes>::new(), 1024);
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn a_message_within_the_limit_passes_whole_and_later_messages_are_not_parsed() {
        let first = message_start(3, b"xyz");
        // A later message's prefix is not looked at: the byte count covers streams.
        let second = message_start(u32::MAX, b"");
        let mut body = DeclaredLength::new(ThenSilence([first.clone(), second].into()), 1024);
        assert_eq!(next_frame(&mut body).await.unwrap().unwrap(), first);
        assert!(next_frame(&mut body).await.unwrap().is_ok());
        assert!(
            next_frame(&mut body).await.is_none(),
            "then the client is silent"
        );
    }
}
