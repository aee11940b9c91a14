//! The fuzz bodies: what must hold for any bytes a client can send. Each function takes raw
//! input, returns normally when the input was handled (accepted or cleanly refused), and panics
//! when an invariant breaks. cargo-fuzz drives them with libFuzzer on nightly (`fuzz/`); the
//! tests replay the checked-in corpus and a bounded mutation run on stable, so CI exercises the
//! same bodies without a nightly toolchain.
#![forbid(unsafe_code)]

use bulkhead_core::{
    CacheName, CollectionName, KeyName, Metric, TenantId, TenantName, validate_metadata,
    validate_vector,
};
use std::time::Duration;

use bulkhead_proto::v1 as pb;
use prost::Message;

/// A resource name parses to exactly one tenant, and only in its one canonical spelling:
/// printing a parsed name gives back the input byte for byte, and the tenant is the second
/// segment verbatim. So no encoding, case or path trick can make a name mean another tenant.
pub fn resource_name(data: &[u8]) -> bool {
    let Ok(name) = std::str::from_utf8(data) else {
        return false;
    };
    let mut accepted = false;
    let second_segment = name.split('/').nth(1);
    if let Ok(n) = name.parse::<TenantName>() {
        canonical(name, &n.to_string(), &n.tenant, second_segment);
        accepted = true;
    }
    if let Ok(n) = name.parse::<CollectionName>() {
        canonical(name, &n.to_string(), &n.tenant, second_segment);
        accepted = true;
    }
    if let Ok(n) = name.parse::<KeyName>() {
        canonical(name, &n.to_string(), &n.tenant, second_segment);
        accepted = true;
    }
    if let Ok(n) = name.parse::<CacheName>() {
        canonical(name, &n.to_string(), &n.tenant, second_segment);
        accepted = true;
    }
    if let Ok(id) = TenantId::new(name) {
        assert_eq!(id.as_str(), name);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        );
    }
    accepted
}

fn canonical(input: &str, printed: &str, tenant: &TenantId, second_segment: Option<&str>) {
    assert_eq!(printed, input, "a resource name has one spelling");
    assert_eq!(
        Some(tenant.as_str()),
        second_segment,
        "the tenant is the second segment"
    );
}

/// A record from the wire either converts to an engine record or is refused with an error
/// naming its position (the server answers it INVALID_ARGUMENT). A converted record carries exactly the wire's id, vector (bit for bit),
/// text and TTL; vector validation accepts it exactly when every value is finite and (for
/// cosine) not all zero; metadata that passes validation survives a round trip through the
/// wire types unchanged, value for value.
pub fn record(data: &[u8]) -> bool {
    let Ok(wire) = pb::Record::decode(data) else {
        return false;
    };
    match bulkhead_wire::engine::new_record(0, wire.clone()) {
        Ok(r) => {
            assert_eq!(r.id.as_str(), wire.id, "the id is the wire's");
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&r.vector),
                bits(&wire.vector),
                "the vector is the wire's"
            );
            assert_eq!(r.text, wire.text, "the text is the wire's");
            assert_eq!(
                r.ttl,
                wire.ttl_seconds.map(|s| Duration::from_secs(s as u64)),
                "the TTL is the wire's"
            );
            let usable =
                r.vector.iter().all(|v| v.is_finite()) && r.vector.iter().any(|v| *v != 0.0);
            assert_eq!(
                validate_vector(&r.vector, wire.vector.len(), Metric::Cosine).is_ok(),
                usable,
                "{:?}",
                r.vector
            );
            if validate_metadata(&r.metadata).is_ok() {
                let back = bulkhead_wire::metadata_from_pb(bulkhead_wire::metadata_to_pb(
                    r.metadata.clone(),
                ))
                .expect("typed values stay typed");
                assert_eq!(back, r.metadata, "metadata round trip");
            }
            true
        }
        Err(refused) => {
            let bulkhead_wire::WireError::Invalid(message) = refused;
            assert!(message.starts_with("records[0]: "), "{message}");
            false
        }
    }
}

/// A whole upsert request: the collection name and every record are checked without panics,
/// and each refusal names the record's position.
pub fn upsert_request(data: &[u8]) -> bool {
    let Ok(request) = pb::UpsertRequest::decode(data) else {
        return false;
    };
    let mut accepted = resource_name(request.collection.as_bytes());
    for (i, r) in request.records.into_iter().enumerate() {
        if let Err(bulkhead_wire::WireError::Invalid(message)) =
            bulkhead_wire::engine::new_record(i, r)
        {
            let position = format!("records[{i}]: ");
            assert!(message.starts_with(&position), "{message}");
            accepted = false;
        }
    }
    accepted
}

/// An Arrow IPC import stream: any bytes are decoded to records or refused with an error, and
/// every decoded record has the collection's dimension. (The size bounds keep a declared 2 GiB
/// message from being allocated; the campaign would run out of memory otherwise.)
pub fn arrow_stream(data: &[u8]) -> bool {
    const DIMENSION: usize = 4;
    bulkhead_formats::read_stream(data, DIMENSION, 1 << 20, |rows| {
        assert!(rows.iter().all(|r| r.vector.len() == DIMENSION));
        Ok(())
    })
    .is_ok()
}
