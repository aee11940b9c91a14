//! Binary encoding of a stored record. The expiry time sits at a fixed offset right after the
//! version byte so the compaction filter can judge a value without decoding it.
//!
//! Layout (little-endian): `version: u8 = 1`, `expires_at_ms: u64` (0 = never), `dim: u32`,
//! `dim × f32`, `text_len: u32` with `u32::MAX` meaning no text, text bytes, then metadata as
//! JSON (empty when there is none). A value of the single byte `0` is an expired marker left by
//! the compaction filter: it still shadows older versions of the key, and reads treat it as
//! absent.

use bulkhead_core::Metadata;

use crate::error::{EngineError, Result};

const VERSION: u8 = 1;
const NO_TEXT: u32 = u32::MAX;
/// What the compaction filter writes over an expired record.
pub static EXPIRED_MARKER: [u8; 1] = [0];

/// A record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue {
    pub expires_at_ms: u64,
    pub vector: Vec<f32>,
    pub text: Option<String>,
    pub metadata: Metadata,
}

pub fn encode(
    expires_at_ms: u64,
    vector: &[f32],
    text: Option<&str>,
    metadata: &Metadata,
) -> Vec<u8> {
    let meta_json = if metadata.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(metadata).expect("metadata of plain values always serialises")
    };
    let text_len = text.map_or(0, str::len);
    let mut out = Vec::with_capacity(17 + vector.len() * 4 + text_len + meta_json.len());
    out.push(VERSION);
    out.extend_from_slice(&expires_at_ms.to_le_bytes());
    out.extend_from_slice(&(vector.len() as u32).to_le_bytes());
    for v in vector {
        out.extend_from_slice(&v.to_le_bytes());
    }
    match text {
        Some(t) => {
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(t.as_bytes());
        }
        None => out.extend_from_slice(&NO_TEXT.to_le_bytes()),
    }
    out.extend_from_slice(&meta_json);
    out
}

/// The expiry of an encoded value without decoding the rest; `None` for markers and garbage.
pub fn peek_expiry(value: &[u8]) -> Option<u64> {
    match value {
        [VERSION, rest @ ..] => rest
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes),
        _ => None,
    }
}

/// Decodes a value; `Ok(None)` for the expired marker.
pub fn decode(value: &[u8]) -> Result<Option<StoredValue>> {
    if value == EXPIRED_MARKER {
        return Ok(None);
    }
    let mut r = Reader { buf: value };
    if r.take(1)? != [VERSION] {
        return Err(EngineError::Corrupt("unknown record version".into()));
    }
    let expires_at_ms = u64::from_le_bytes(r.array()?);
    let dim = u32::from_le_bytes(r.array()?) as usize;
    let raw = r.take(dim.checked_mul(4).ok_or_else(too_short)?)?;
    let vector = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let text = match u32::from_le_bytes(r.array()?) {
        NO_TEXT => None,
        len => {
            let bytes = r.take(len as usize)?;
            Some(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| EngineError::Corrupt("record text is not UTF-8".into()))?,
            )
        }
    };
    let metadata = if r.buf.is_empty() {
        Metadata::new()
    } else {
        serde_json::from_slice(r.buf)
            .map_err(|e| EngineError::Corrupt(format!("record metadata: {e}")))?
    };
    Ok(Some(StoredValue {
        expires_at_ms,
        vector,
        text,
        metadata,
    }))
}

fn too_short() -> EngineError {
    EngineError::Corrupt("record value too short".into())
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or_else(too_short)?;
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("took exactly N bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::Value;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(
            exp in any::<u64>(),
            vector in prop::collection::vec(-1e6f32..1e6, 0..64),
            text in prop::option::of("\\PC{0,50}"),
            tags in prop::collection::btree_map("[a-z]{1,5}", any::<i64>(), 0..4),
        ) {
            let metadata: Metadata = tags.into_iter().map(|(k, v)| (k, Value::Int(v))).collect();
            let bytes = encode(exp, &vector, text.as_deref(), &metadata);
            prop_assert_eq!(peek_expiry(&bytes), Some(exp));
            let back = decode(&bytes).unwrap().unwrap();
            prop_assert_eq!(back, StoredValue { expires_at_ms: exp, vector, text, metadata });
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
            let _ = peek_expiry(&bytes);
        }
    }

    #[test]
    fn marker_decodes_as_absent() {
        assert_eq!(decode(&EXPIRED_MARKER).unwrap(), None);
        assert_eq!(peek_expiry(&EXPIRED_MARKER), None);
    }
}
