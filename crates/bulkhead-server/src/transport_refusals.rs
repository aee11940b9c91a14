//! tonic refuses some requests before any handler runs, with codes that say the server is at
//! fault or name no limit. Clients should see one code for "your request is wrong or too big"
//! whichever layer caught it, and operators who alert on `INTERNAL` should not be paged by a
//! client that sends bytes that are not its message. So these refusals are rewritten to
//! `INVALID_ARGUMENT` here, in the response headers (trailers-only responses) or the trailers:
//! - a message over `max-message-bytes` (tonic: `OUT_OF_RANGE`);
//! - a body cut off at `max-read-message-bytes` (`small_requests`; tonic: `UNKNOWN` with the
//!   body's error), given a message naming the limit;
//! - a message that doesn't decode, a body that ends inside its message, a unary call without
//!   one (tonic: `INTERNAL`). Large writes are read and decoded by the server itself
//!   (`write_admission`, `undecoded`) and refused the same way, so the code doesn't depend on
//!   the message's size.
//!
//! Only these: other `OUT_OF_RANGE`, `UNKNOWN` and `INTERNAL` answers pass through, and so do
//! tonic's compression-flag errors, which the gRPC spec requires to be `INTERNAL`.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use tonic::body::Body as GrpcBody;

/// The start of tonic's message for a request over the decoding limit.
const TOO_LARGE: &[u8] = b"Error, decoded message length too large";
/// `OUT_OF_RANGE` and `INVALID_ARGUMENT` as `grpc-status` values.
const OUT_OF_RANGE: &str = "11";
const INVALID_ARGUMENT: &str = "3";
const UNKNOWN: &str = "2";
const INTERNAL: &str = "13";
/// The starts of tonic's messages for a request body that is not its message: prost's decode
/// error, a body ending inside a message, a unary call's body without one.
const MALFORMED: &[&[u8]] = &[
    b"failed to decode Protobuf message",
    b"Unexpected EOF decoding stream",
    b"Missing request message",
];
/// The error of a body cut off by `http_body_util::Limited`, as tonic reports it.
const CUT_OFF: &[u8] = b"length limit exceeded";
const CUT_OFF_EXPLAINED: &str = "the request is larger than max-read-message-bytes allows for this method (only Upsert, Import and the cache's Store take larger requests)";

pub fn as_invalid_argument(response: http::Response<GrpcBody>) -> http::Response<GrpcBody> {
    let mut response = response.map(|inner| GrpcBody::new(RewriteTrailers { inner }));
    rewrite(response.headers_mut());
    response
}

fn rewrite(headers: &mut HeaderMap) {
    let status = |code: &str| headers.get("grpc-status").is_some_and(|s| s == code);
    let message_starts = |prefix: &[u8]| {
        headers
            .get("grpc-message")
            // grpc-message is percent-encoded on the wire (`Error,%20decoded%20…`).
            .is_some_and(|m| {
                percent_encoding::percent_decode(m.as_bytes())
                    .collect::<Vec<u8>>()
                    .starts_with(prefix)
            })
    };
    if status(OUT_OF_RANGE) && message_starts(TOO_LARGE) {
        headers.insert("grpc-status", HeaderValue::from_static(INVALID_ARGUMENT));
    } else if status(UNKNOWN) && message_starts(CUT_OFF) {
        headers.insert("grpc-status", HeaderValue::from_static(INVALID_ARGUMENT));
        headers.insert("grpc-message", HeaderValue::from_static(CUT_OFF_EXPLAINED));
    } else if status(INTERNAL) && MALFORMED.iter().any(|start| message_starts(start)) {
        headers.insert("grpc-status", HeaderValue::from_static(INVALID_ARGUMENT));
    }
}

/// A response body whose trailers pass through [`rewrite`].
struct RewriteTrailers {
    inner: GrpcBody,
}

impl Body for RewriteTrailers {
    type Data = <GrpcBody as Body>::Data;
    type Error = <GrpcBody as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx).map(|frame| {
            frame.map(|f| {
                f.map(|frame| match frame.into_trailers() {
                    Ok(mut trailers) => {
                        rewrite(&mut trailers);
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                })
            })
        })
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

    fn headers(status: &'static str, message: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static(status));
        h.insert("grpc-message", HeaderValue::from_static(message));
        h
    }

    #[test]
    fn only_the_size_and_malformed_message_refusals_are_rewritten() {
        let too_large = "Error, decoded message length too large: found 9 bytes";
        let mut h = headers(OUT_OF_RANGE, too_large);
        rewrite(&mut h);
        assert_eq!(h["grpc-status"], INVALID_ARGUMENT);
        let mut other = headers(OUT_OF_RANGE, "page token out of range");
        rewrite(&mut other);
        assert_eq!(other["grpc-status"], OUT_OF_RANGE);
        let mut encoded = headers(
            OUT_OF_RANGE,
            "Error,%20decoded%20message%20length%20too%20large",
        );
        rewrite(&mut encoded);
        assert_eq!(encoded["grpc-status"], INVALID_ARGUMENT);
        let mut cut_off = headers(UNKNOWN, "length limit exceeded");
        rewrite(&mut cut_off);
        assert_eq!(cut_off["grpc-status"], INVALID_ARGUMENT);
        assert!(
            cut_off["grpc-message"]
                .to_str()
                .unwrap()
                .contains("max-read-message-bytes")
        );
        for malformed in [
            "failed to decode Protobuf message: invalid wire type value: 7",
            "failed%20to%20decode%20Protobuf%20message:%20invalid%20varint",
            "Unexpected EOF decoding stream.",
            "Missing request message.",
        ] {
            let mut h = headers(INTERNAL, malformed);
            rewrite(&mut h);
            assert_eq!(h["grpc-status"], INVALID_ARGUMENT, "{malformed}");
            assert_eq!(h["grpc-message"], malformed, "the message is kept");
        }
        for internal in [
            "request task failed",
            "protocol error: received message with compressed-flag but no grpc-encoding was specified",
        ] {
            let mut h = headers(INTERNAL, internal);
            rewrite(&mut h);
            assert_eq!(h["grpc-status"], INTERNAL, "{internal}");
        }
        let mut unknown = headers(UNKNOWN, "failed to decode Protobuf message: invalid varint");
        rewrite(&mut unknown);
        assert_eq!(unknown["grpc-status"], UNKNOWN);
        let mut ok = headers("0", too_large);
        rewrite(&mut ok);
        assert_eq!(ok["grpc-status"], "0");
    }
}
