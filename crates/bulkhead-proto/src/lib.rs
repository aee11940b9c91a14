//! Generated types and service stubs of Bulkhead's gRPC API, `bulkhead.v1`. The `.proto` files
//! in `proto/` are the contract; this crate only compiles them, for the server, the SDK and
//! the tests alike. Conversions to Bulkhead's own types are `bulkhead-wire`'s.
#![forbid(unsafe_code)]

#[allow(
    missing_docs,
    missing_debug_implementations,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    tonic::include_proto!("bulkhead.v1");
}

/// The encoded descriptor set of every Bulkhead proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bulkhead_descriptor.bin"));
