//! Writes sent as bytes no encoder would write. The server reads what a large write writes to
//! from its message's first bytes, and decodes the rest on the engine pool (`undecoded`);
//! protobuf keeps the last copy of a repeated field, so a message naming two collections must
//! not be admitted for the first and written to the second.

use prost::Message;
use prost::bytes::BufMut;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

use bulkhead_proto::v1 as pb;

use crate::harness::*;
use crate::raw_body::{Then, call_with_body, framed_prefix};

const DIM: usize = 8;

/// Sends a request's message as the bytes given; decodes the answer as an Upsert's.
#[derive(Debug, Default, Clone, Copy)]
struct VerbatimUpsert;

impl Codec for VerbatimUpsert {
    type Encode = Vec<u8>;
    type Decode = pb::UpsertResponse;
    type Encoder = Self;
    type Decoder = Self;

    fn encoder(&mut self) -> Self {
        *self
    }

    fn decoder(&mut self) -> Self {
        *self
    }
}

impl Encoder for VerbatimUpsert {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for VerbatimUpsert {
    type Item = pb::UpsertResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        pb::UpsertResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

async fn upsert_verbatim(
    server: &Server,
    secret: &str,
    message: Vec<u8>,
) -> Result<pb::UpsertResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/bulkhead.v1.RecordService/Upsert");
    grpc.unary(authed(secret, message), path, VerbatimUpsert)
        .await
        .map(tonic::Response::into_inner)
}

/// `message` followed by a second copy of field 1 naming `tenant`'s `docs`.
fn naming_also(message: &pb::UpsertRequest, tenant: &str) -> Vec<u8> {
    let mut bytes = message.encode_to_vec();
    pb::UpsertRequest {
        collection: format!("tenants/{tenant}/collections/docs"),
        records: vec![],
    }
    .encode(&mut bytes)
    .unwrap();
    bytes
}

async fn found(c: &mut Clients, secret: &str, tenant: &str) -> usize {
    c.records
        .get(authed(
            secret,
            pb::GetRequest {
                collection: format!("tenants/{tenant}/collections/docs"),
                ids: (0..100).map(|i| format!("v{i}")).collect(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .records
        .len()
}

/// Large (decoded on the engine pool) and small (decoded by tonic) alike: a message naming
/// the caller's collection, then another tenant's, writes to neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_naming_its_own_collection_then_another_tenants_writes_nowhere() {
    let server = Server::start();
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, DIM).await;
    let other = seeded_tenant(&mut c, "u", 1, DIM).await;

    let large = kilobyte_upsert("t", 90, DIM);
    assert!(large.encoded_len() > 64 << 10, "past the bulk threshold");
    let refused = upsert_verbatim(&server, &secret, naming_also(&large, "u"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("tenants/u/"), "{refused:?}");

    let small = kilobyte_upsert("t", 3, DIM);
    let refused = upsert_verbatim(&server, &secret, naming_also(&small, "u"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    assert_eq!(found(&mut c, &secret, "t").await, 0);
    assert_eq!(found(&mut c, &other, "u").await, 0);

    // The same large message, named once, is written whole.
    let written = upsert_verbatim(&server, &secret, large.encode_to_vec())
        .await
        .unwrap();
    assert_eq!(written.upserted, 90);
    assert_eq!(found(&mut c, &secret, "t").await, 90);
}

/// A write that is not protobuf is refused as such, not taken for an empty one, and with the
/// same code whatever its size: a large one is decoded by the server (`undecoded`), a small one
/// by tonic, whose `INTERNAL` is rewritten (`transport_refusals`). Seen `INTERNAL` for the small
/// one before the rewrite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_is_not_protobuf_is_an_invalid_argument_large_or_small() {
    let server = Server::start();
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, DIM).await;
    for garbage in [90_000, 1_000] {
        let mut bytes = pb::UpsertRequest {
            collection: "tenants/t/collections/docs".into(),
            records: vec![],
        }
        .encode_to_vec();
        // Field 2 (records), length-delimited, 100,000 bytes long, of which fewer follow.
        bytes.extend_from_slice(&[0x12, 0xA0, 0x8D, 0x06]);
        bytes.extend(std::iter::repeat_n(0xFF, garbage));
        let refused = upsert_verbatim(&server, &secret, bytes).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{garbage}: {refused:?}"
        );
        assert!(refused.message().contains("decode"), "{refused:?}");
    }
    assert_eq!(found(&mut c, &secret, "t").await, 0);
}

/// A body that ends inside its message is refused as an invalid argument, large or small, and
/// nothing of it is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_body_ends_inside_its_message_is_an_invalid_argument() {
    let server = Server::start();
    let mut c = server.clients().await;
    let secret = seeded_tenant(&mut c, "t", 1, DIM).await;
    for records in [90, 3] {
        let message = kilobyte_upsert("t", records, DIM).encode_to_vec();
        let refused = call_with_body(
            server.channel().await,
            "/bulkhead.v1.RecordService/Upsert",
            &secret,
            framed_prefix(&message, message.len() - 10),
            Then::End,
        )
        .await;
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{records}: {refused:?}"
        );
    }
    assert_eq!(found(&mut c, &secret, "t").await, 0);
}
