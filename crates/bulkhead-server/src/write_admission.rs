//! Writes refused before their message is read. The rate limiter counts a write's bytes, so it
//! used to see an Upsert only once tonic had received and decoded its message, on a request
//! thread every tenant shares. A tenant flooding past its limit thus had the server take in and
//! decode every message it refused: 785 KB upserts refused about 150 times a second took 0.4
//! of a CPU from the request threads and made every tenant's requests wait four to nine times
//! as long for one (`docs/benchmarks.md`, *Writes past the limit*).
//!
//! A gRPC message starts with its length, and an encoder writes fields in order, so the first
//! bytes of an Upsert, a cache Store or a memory Append also name what it writes (field 1 of
//! each). Each counts its whole message against the write limit, so from those bytes the gate
//! refuses a write its tenant can't admit before the rest arrives (`Gate::check_unread_write`).
//! A write the usual path (`Gate::tenant_call`) would refuse for what it is (another tenant's
//! resource, too weak a role) is refused from those bytes too, with the same answer and audit
//! event. The rest of the decision is the usual path's: a write whose start can't be read that
//! way (fields out of order, compressed) goes on to it. So does Import, whose first message
//! comes when the client sends it: the stream must hold a slot of its tenant's while it waits,
//! which only its handler takes.
//!
//! A write it finds admissible holds its bytes of its tenant's `tenant-write-bytes-in-flight`
//! from its first bytes until it is answered: the memory a tenant's concurrent writes take while
//! they arrive is bounded per tenant, where tonic alone would buffer as many messages (up to
//! 64 MiB each) as the client opens streams, each held until the request timeout by a client
//! that stops sending mid-message. One larger than the bulk threshold it also reads whole,
//! without decoding it, for its handler to decode on the engine pool (`undecoded`): decoded by
//! tonic, a 785 KB Upsert held the request thread that polled it for milliseconds.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Bytes;
use tower::{Layer, Service};

use bulkhead_core::{CacheName, CollectionName, SessionName};

use crate::gate::{Gate, UnreadWrite, is_bulk_write};
use crate::small_requests::PREFIX_BYTES;
use crate::undecoded::UndecodedWrite;

/// What every request path of the API starts with, before `<Service>/<Method>`.
const PATH_PREFIX: &str = "/bulkhead.v1.";
/// The name of what a write writes, its message's first field: field 1, length-delimited.
const NAME_KEY: u8 = 0x0A;
/// Longest name read from a message's start; a longer one is left to the usual path.
const MAX_PEEKED_NAME: usize = 1024;
/// The most of a body read before the decision: prefix, key, a two-byte length, the name.
const MAX_HEAD: usize = PREFIX_BYTES + 1 + 2 + MAX_PEEKED_NAME;

/// Puts [`WriteAdmission`] in front of the server's services.
#[derive(Debug, Clone)]
pub struct WriteAdmissionLayer {
    gate: Arc<Gate>,
    max_message_bytes: usize,
}

impl WriteAdmissionLayer {
    /// `max_message_bytes`: the services' largest message; a larger one is left to tonic to
    /// refuse.
    pub fn new(gate: Arc<Gate>, max_message_bytes: usize) -> Self {
        Self {
            gate,
            max_message_bytes,
        }
    }
}

impl<S> Layer<S> for WriteAdmissionLayer {
    type Service = WriteAdmission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WriteAdmission {
            inner,
            gate: self.gate.clone(),
            max_message_bytes: self.max_message_bytes as u64,
        }
    }
}

/// Answers a write its tenant can't admit from the first bytes of its message, and reads a
/// large one it can admit whole, for its handler to decode on the engine pool (`undecoded`).
#[derive(Debug, Clone)]
pub struct WriteAdmission<S> {
    inner: S,
    gate: Arc<Gate>,
    max_message_bytes: u64,
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<http::Response<Body>, E>> + Send>>;

impl<S> Service<http::Request<Body>> for WriteAdmission<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let Some(write) = WriteMethod::of_path(request.uri().path()) else {
            return Box::pin(self.inner.call(request));
        };
        // The service that was polled ready is the one to call (tower's contract); its clone
        // stays for the next request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let gate = self.gate.clone();
        let max_message_bytes = self.max_message_bytes;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let (head, body) = read_head(body).await;
            let Some(head) = head else {
                return inner.call(http::Request::from_parts(parts, body)).await;
            };
            // A message over the limit is left to tonic, which refuses it from its prefix.
            let received = head.declared <= max_message_bytes;
            let read_whole = received && is_bulk_write(head.declared);
            match write.check(&gate, &parts.headers, &head, received).await {
                UnreadWrite::Refused(refusal) => Ok(refusal.into_http()),
                UnreadWrite::Admissible(held) => {
                    let answer = if read_whole {
                        match left_undecoded(parts, body, head).await {
                            Ok(request) => inner.call(request).await,
                            Err(status) => Ok(status.into_http()),
                        }
                    } else {
                        inner.call(http::Request::from_parts(parts, body)).await
                    };
                    // Held while the message is read, decoded and written: its memory.
                    drop(held);
                    answer
                }
                UnreadWrite::Undecided => inner.call(http::Request::from_parts(parts, body)).await,
            }
        })
    }
}

/// The request with its message, of `head.declared` bytes, read whole from `body` into its
/// extensions and an empty message in its place.
async fn left_undecoded(
    mut parts: http::request::Parts,
    body: Body,
    head: Head,
) -> Result<http::Request<Body>, Status> {
    let message = read_message(body, head.declared).await?;
    parts
        .extensions
        .insert(UndecodedWrite::new(head.name, message));
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let empty = Body::new(http_body_util::Full::new(Bytes::from_static(
        &[0; PREFIX_BYTES],
    )));
    Ok(http::Request::from_parts(parts, empty))
}

/// The message of `declared` bytes that `body` carries after its prefix: a unary call's one
/// message, so a body that ends sooner or carries more is refused.
async fn read_message(mut body: Body, declared: u64) -> Result<Bytes, Status> {
    let whole = PREFIX_BYTES + declared as usize;
    let mut read = Vec::with_capacity(whole);
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            if read.len() + data.len() > whole {
                return Err(Status::invalid_argument(
                    "the request carries more than its one message",
                ));
            }
            read.extend_from_slice(data);
        }
    }
    if read.len() < whole {
        return Err(Status::invalid_argument(format!(
            "the request's message ended after {} of its {declared} bytes",
            read.len().saturating_sub(PREFIX_BYTES)
        )));
    }
    Ok(Bytes::from(read).slice(PREFIX_BYTES..))
}

/// The writes refused unread. Each message's field 1 names what it writes, and each counts its
/// whole message against its tenant's write limit (`services::records`, `cache`, `memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMethod {
    Upsert,
    Store,
    Append,
}

impl WriteMethod {
    const ALL: [Self; 3] = [Self::Upsert, Self::Store, Self::Append];

    /// The write a request's path (`/bulkhead.v1.<Service>/<Method>`) calls, if one of these.
    fn of_path(path: &str) -> Option<Self> {
        let method = path.strip_prefix(PATH_PREFIX)?;
        Self::ALL.into_iter().find(|w| w.method() == method)
    }

    /// Its name in metrics and audit events, as its handler gives it, and in its path.
    fn method(self) -> &'static str {
        match self {
            Self::Upsert => "RecordService/Upsert",
            Self::Store => "SemanticCacheService/Store",
            Self::Append => "MemoryService/Append",
        }
    }

    async fn check(
        self,
        gate: &Gate,
        headers: &http::HeaderMap,
        head: &Head,
        hold: bool,
    ) -> UnreadWrite {
        let (method, name, bytes) = (self.method(), head.name.as_str(), head.declared);
        match self {
            Self::Upsert => {
                gate.check_unread_write::<CollectionName>(headers, method, name, bytes, hold)
                    .await
            }
            Self::Store => {
                gate.check_unread_write::<CacheName>(headers, method, name, bytes, hold)
                    .await
            }
            Self::Append => {
                gate.check_unread_write::<SessionName>(headers, method, name, bytes, hold)
                    .await
            }
        }
    }
}

/// What a write's first bytes say.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// The message's length, as its prefix declares it: the bytes its admission counts.
    declared: u64,
    /// What it writes: a collection, a cache, a session.
    name: String,
}

enum Peek {
    Read(Head),
    /// More bytes are needed to tell.
    NeedsMore,
    /// Not a message whose start says it (compressed, fields in another order, a long name).
    Unreadable,
}

/// Reads `bytes`, the start of a body, as an uncompressed message whose first field is the name
/// of what it writes.
fn peek(bytes: &[u8]) -> Peek {
    let key_at = PREFIX_BYTES;
    if bytes.len() <= key_at {
        return Peek::NeedsMore;
    }
    if bytes[0] != 0 || bytes[key_at] != NAME_KEY {
        return Peek::Unreadable;
    }
    let declared = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    // The name's length: a varint of one or two bytes (up to 16,383).
    let length_at = key_at + 1;
    let Some(&first) = bytes.get(length_at) else {
        return Peek::NeedsMore;
    };
    let (length, name_at) = if first < 0x80 {
        (usize::from(first), length_at + 1)
    } else {
        let Some(&second) = bytes.get(length_at + 1) else {
            return Peek::NeedsMore;
        };
        if second >= 0x80 {
            return Peek::Unreadable;
        }
        (
            usize::from(first & 0x7f) | usize::from(second) << 7,
            length_at + 2,
        )
    };
    let end = name_at + length;
    if length > MAX_PEEKED_NAME || end > PREFIX_BYTES + declared as usize {
        return Peek::Unreadable;
    }
    if bytes.len() < end {
        return Peek::NeedsMore;
    }
    match std::str::from_utf8(&bytes[name_at..end]) {
        Ok(name) => Peek::Read(Head {
            declared: u64::from(declared),
            name: name.to_owned(),
        }),
        Err(_) => Peek::Unreadable,
    }
}

/// Reads `body` until its start says what [`peek`] looks for, or can't; returns that and the
/// body as it was, the bytes read included.
async fn read_head(mut body: Body) -> (Option<Head>, Body) {
    let mut start = Vec::new();
    let mut read = VecDeque::new();
    loop {
        match peek(&start) {
            Peek::Read(head) => return (Some(head), replayed(read, Some(body))),
            Peek::Unreadable => return (None, replayed(read, Some(body))),
            Peek::NeedsMore => {}
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_HEAD.saturating_sub(start.len());
                    start.extend_from_slice(&data[..data.len().min(room)]);
                }
                read.push_back(Ok(frame));
            }
            Some(Err(e)) => {
                read.push_back(Err(e));
                return (None, replayed(read, None));
            }
            None => return (None, replayed(read, None)),
        }
    }
}

fn replayed(read: VecDeque<Result<Frame<Bytes>, Status>>, rest: Option<Body>) -> Body {
    Body::new(Replayed { read, rest })
}

/// A body whose first frames were already read: they come first, then the rest of it.
struct Replayed {
    read: VecDeque<Result<Frame<Bytes>, Status>>,
    rest: Option<Body>,
}

impl HttpBody for Replayed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if let Some(frame) = this.read.pop_front() {
            return Poll::Ready(Some(frame));
        }
        match &mut this.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn body_of(chunks: Vec<Vec<u8>>) -> Body {
        let frames: Vec<Result<Frame<Bytes>, Status>> = chunks
            .into_iter()
            .map(|c| Ok(Frame::data(Bytes::from(c))))
            .collect();
        Body::new(http_body_util::StreamBody::new(tokio_stream::iter(frames)))
    }

    async fn all_of(body: Body) -> Vec<u8> {
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    /// `message` framed as gRPC sends it: flag, length, the encoded message.
    fn framed(message: &impl Message) -> Vec<u8> {
        let encoded = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
        out
    }

    /// `message` sent in two frames split at `split`: its head says its length and `name`,
    /// and the body comes out whole.
    async fn assert_head_read_across(message: &[u8], name: &str, split: usize) {
        let chunks = vec![message[..split].to_vec(), message[split..].to_vec()];
        let (head, body) = read_head(body_of(chunks)).await;
        let expected = Head {
            declared: (message.len() - PREFIX_BYTES) as u64,
            name: name.to_owned(),
        };
        assert_eq!(head, Some(expected), "split at {split}");
        assert_eq!(all_of(body).await, message);
    }

    fn upsert(collection: &str, records: usize) -> bulkhead_proto::v1::UpsertRequest {
        bulkhead_proto::v1::UpsertRequest {
            collection: collection.to_owned(),
            records: (0..records)
                .map(|i| bulkhead_proto::v1::Record {
                    id: format!("r{i}"),
                    vector: vec![0.5; 16],
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn an_upserts_length_and_collection_are_read_across_frames_and_the_body_left_whole() {
        for name in [
            "tenants/t/collections/docs".to_owned(),
            format!("tenants/t/collections/{}", "c".repeat(300)),
        ] {
            let message = framed(&upsert(&name, 40));
            for split in [1, 3, 5, 6, 7, 8, 20, message.len() - 1] {
                assert_head_read_across(&message, &name, split).await;
            }
        }
    }

    /// The paths are the generated services' own, so a renamed service or method can't leave
    /// its writes read in full again unnoticed.
    #[test]
    fn the_writes_refused_unread_are_the_services_own_methods() {
        use bulkhead_proto::v1::{
            memory_service_server, record_service_server, semantic_cache_service_server,
        };
        let services = [
            record_service_server::SERVICE_NAME,
            semantic_cache_service_server::SERVICE_NAME,
            memory_service_server::SERVICE_NAME,
        ];
        for (write, service) in WriteMethod::ALL.into_iter().zip(services) {
            let method = write.method().rsplit('/').next().unwrap();
            let path = format!("/{service}/{method}");
            assert_eq!(WriteMethod::of_path(&path), Some(write), "{path}");
        }
        assert_eq!(
            WriteMethod::of_path("/bulkhead.v1.RecordService/Import"),
            None
        );
    }

    /// A Store's and an Append's first bytes are read as an Upsert's: field 1 names what they
    /// write.
    #[tokio::test]
    async fn a_stores_and_an_appends_name_are_read_as_an_upserts() {
        let store = bulkhead_proto::v1::StoreRequest {
            cache: "tenants/t/caches/answers".into(),
            prompt: "p".repeat(5000),
            vector: vec![0.5; 16],
            ..Default::default()
        };
        let append = bulkhead_proto::v1::AppendRequest {
            session: "tenants/t/sessions/s1".into(),
            items: vec![bulkhead_proto::v1::MemoryItem {
                text: "t".repeat(5000),
                ..Default::default()
            }],
        };
        for (message, name) in [
            (framed(&store), &store.cache),
            (framed(&append), &append.session),
        ] {
            assert_head_read_across(&message, name, 9).await;
        }
    }

    #[tokio::test]
    async fn a_message_is_read_whole_across_frames_without_its_prefix() {
        let message = framed(&upsert("tenants/t/collections/docs", 40));
        let declared = (message.len() - PREFIX_BYTES) as u64;
        let chunks = vec![message[..7].to_vec(), message[7..].to_vec()];
        let read = read_message(body_of(chunks), declared).await.unwrap();
        assert_eq!(read, message[PREFIX_BYTES..]);
    }

    #[tokio::test]
    async fn a_body_shorter_or_longer_than_its_one_message_is_refused() {
        let message = framed(&upsert("tenants/t/collections/docs", 40));
        let declared = (message.len() - PREFIX_BYTES) as u64;
        let short = read_message(
            body_of(vec![message[..message.len() - 1].to_vec()]),
            declared,
        )
        .await
        .unwrap_err();
        assert_eq!(short.code(), tonic::Code::InvalidArgument, "{short:?}");
        let two = [message.clone(), message].concat();
        let long = read_message(body_of(vec![two]), declared)
            .await
            .unwrap_err();
        assert_eq!(long.code(), tonic::Code::InvalidArgument, "{long:?}");
    }

    #[tokio::test]
    async fn a_start_that_does_not_say_is_left_to_the_usual_path_whole() {
        let message = framed(&upsert("tenants/t/collections/docs", 3));
        let mut compressed = message.clone();
        compressed[0] = 1;
        let records_first = {
            let mut reordered = upsert("tenants/t/collections/docs", 1);
            reordered.collection.clear();
            let mut encoded = reordered.encode_to_vec();
            encoded.extend_from_slice(&[NAME_KEY, 3, b'a', b'b', b'c']);
            let mut out = vec![0];
            out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
            out.extend_from_slice(&encoded);
            out
        };
        let long_name = framed(&upsert(&"n".repeat(MAX_PEEKED_NAME + 1), 1));
        let mut name_past_message = message[..PREFIX_BYTES + 2].to_vec();
        name_past_message[1..5].copy_from_slice(&3u32.to_be_bytes());
        name_past_message.extend_from_slice(b"tenants/t/collections/docs");
        for (what, bytes) in [
            ("compressed", compressed),
            ("records first", records_first),
            ("a name too long", long_name),
            ("a name past the message's end", name_past_message),
            ("too short", message[..4].to_vec()),
            ("empty", Vec::new()),
        ] {
            let (head, body) = read_head(body_of(vec![bytes.clone()])).await;
            assert_eq!(head, None, "{what}");
            assert_eq!(all_of(body).await, bytes, "{what}");
        }
    }
}
