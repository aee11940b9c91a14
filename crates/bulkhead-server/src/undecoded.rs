//! Large writes decoded on the engine pool instead of a request thread. tonic decodes a
//! request's message on the runtime worker that polls the call, in one poll: a 785 KB Upsert
//! held a worker for milliseconds, and the requests of every tenant queued behind it on that
//! worker waited as long (`docs/benchmarks.md`, *Large writes decoded on the engine pool*).
//!
//! `write_admission` reads the first bytes of every Upsert, cache Store and memory Append. One
//! larger than the bulk threshold that its tenant can admit is read whole there, as bytes, and
//! handed to its handler in the request's extensions, with an empty message in its place; the
//! handler decodes it inside its engine-pool job, where the write's own work runs at its
//! tenant's share of the pool. The name that admitted it was read from the message's start, so
//! the decoded message must name the same: protobuf lets a later copy of a field replace an
//! earlier one, and a message naming two collections must not be checked against one and
//! written to the other.

use prost::Message;
use tonic::codegen::Bytes;
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

/// A write's message read whole but not decoded, and the name its first field gives.
#[derive(Debug, Clone)]
pub struct UndecodedWrite {
    name: String,
    message: Bytes,
}

impl UndecodedWrite {
    pub fn new(name: String, message: Bytes) -> Self {
        Self { name, message }
    }
}

/// A write request's message, decoded by tonic or left to be decoded on the engine pool, and
/// how to read the name of what it writes from a decoded one.
#[derive(Debug)]
pub struct WriteMessage<M> {
    content: Content<M>,
    name_of: fn(&M) -> &String,
}

#[derive(Debug)]
enum Content<M> {
    Decoded(M),
    Undecoded(UndecodedWrite),
}

impl<M: Message + Default> WriteMessage<M> {
    /// The metadata and message of `request`: the undecoded message `write_admission` left in
    /// its extensions if there is one (tonic then decoded an empty message), else tonic's.
    /// `name_of` reads what a decoded message writes (field 1).
    pub fn of(request: Request<M>, name_of: fn(&M) -> &String) -> (MetadataMap, Self) {
        let (metadata, mut extensions, message) = request.into_parts();
        let content = match extensions.remove::<UndecodedWrite>() {
            Some(undecoded) => Content::Undecoded(undecoded),
            None => Content::Decoded(message),
        };
        (metadata, Self { content, name_of })
    }

    /// The name of what it writes.
    pub fn name(&self) -> String {
        match &self.content {
            Content::Decoded(message) => (self.name_of)(message).clone(),
            Content::Undecoded(undecoded) => undecoded.name.clone(),
        }
    }

    /// Its encoded length, which its tenant's write limit counts.
    pub fn bytes(&self) -> u64 {
        match &self.content {
            Content::Decoded(message) => message.encoded_len() as u64,
            Content::Undecoded(undecoded) => undecoded.message.len() as u64,
        }
    }

    /// The message, decoded now if it was not. `INVALID_ARGUMENT` if it can't be, or if it
    /// names something other than its first bytes did.
    pub fn decode(self) -> Result<M, Status> {
        let undecoded = match self.content {
            Content::Decoded(message) => return Ok(message),
            Content::Undecoded(undecoded) => undecoded,
        };
        let message = M::decode(undecoded.message).map_err(|e| {
            Status::invalid_argument(format!("the request's message can't be decoded: {e}"))
        })?;
        let named = (self.name_of)(&message);
        if named != &undecoded.name {
            return Err(Status::invalid_argument(format!(
                "the message names what it writes more than once: first {:?}, then {:?}",
                undecoded.name, named
            )));
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use bulkhead_proto::v1 as pb;

    use super::*;

    fn collection_of(m: &pb::UpsertRequest) -> &String {
        &m.collection
    }

    fn upsert(collection: &str) -> pb::UpsertRequest {
        pb::UpsertRequest {
            collection: collection.into(),
            records: vec![pb::Record {
                id: "r1".into(),
                vector: vec![0.25; 8],
                ..Default::default()
            }],
        }
    }

    fn left_undecoded(name: &str, message: Vec<u8>) -> WriteMessage<pb::UpsertRequest> {
        let mut request = Request::new(pb::UpsertRequest::default());
        request
            .extensions_mut()
            .insert(UndecodedWrite::new(name.into(), Bytes::from(message)));
        WriteMessage::of(request, collection_of).1
    }

    #[test]
    fn a_message_left_undecoded_is_decoded_with_its_length_counted() {
        let sent = upsert("tenants/a/collections/docs");
        let message = left_undecoded(&sent.collection, sent.encode_to_vec());
        assert_eq!(message.bytes(), sent.encoded_len() as u64);
        assert_eq!(message.name(), sent.collection);
        assert_eq!(message.decode().unwrap(), sent);
    }

    #[test]
    fn a_message_decoded_by_tonic_is_passed_through() {
        let sent = upsert("tenants/a/collections/docs");
        let (_, message) = WriteMessage::of(Request::new(sent.clone()), collection_of);
        assert_eq!(message.bytes(), sent.encoded_len() as u64);
        assert_eq!(message.name(), sent.collection);
        assert_eq!(message.decode().unwrap(), sent);
    }

    /// Field 1 twice: the first copy admitted the write, the last is what decoding keeps.
    #[test]
    fn a_message_naming_a_second_collection_after_the_first_is_refused() {
        let mut bytes = upsert("tenants/a/collections/docs").encode_to_vec();
        pb::UpsertRequest {
            collection: "tenants/b/collections/docs".into(),
            records: vec![],
        }
        .encode(&mut bytes)
        .unwrap();
        let status = left_undecoded("tenants/a/collections/docs", bytes)
            .decode()
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("tenants/b/"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn a_message_that_is_not_protobuf_is_an_invalid_argument() {
        let status = left_undecoded("tenants/a/collections/docs", vec![0x0A, 0xFF, 0xFF])
            .decode()
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
