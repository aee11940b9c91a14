//! Tuning knobs live in one plain struct so the engine can persist and validate them per
//! collection before any memory is committed to an index.

use crate::error::{IndexError, Result};

/// Construction and search parameters of a [`crate::VectorIndex`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexParams {
    /// HNSW out-degree on upper layers; level 0 allows `2 * m`.
    pub m: usize,
    /// Candidate list size while inserting into the graph.
    pub ef_construction: usize,
    /// Default candidate list size for queries (raised to `k` when smaller).
    pub ef_search: usize,
    /// Live-vector count above which the flat index promotes itself to HNSW.
    pub flat_threshold: usize,
    /// Fraction of tombstoned graph nodes that triggers a rebuild from live vectors.
    pub max_tombstone_ratio: f32,
    /// How the graph walk compares vectors; results are always ranked by exact distances.
    pub quantization: Quantization,
}

/// What the graph walk reads of each vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quantization {
    /// The `f32` vectors themselves.
    None,
    /// Int8 codes (one byte per dimension, plus 8 bytes per vector), with the final candidates
    /// re-ranked exactly: faster walks and builds for a quarter more memory.
    #[default]
    Int8,
}

impl Default for IndexParams {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            flat_threshold: 20_000,
            max_tombstone_ratio: 0.25,
            quantization: Quantization::default(),
        }
    }
}

/// Upper bound of `ef_construction` and `ef_search`; larger lists stop improving recall long
/// before they stop costing time.
pub const MAX_EF: usize = 4096;
/// Upper bound of `flat_threshold`; an exact scan over more vectors than this is never sane.
pub const MAX_FLAT_THRESHOLD: usize = 10_000_000;

impl IndexParams {
    /// Checks every field against the supported bounds:
    /// `m` in `2..=128`, `ef_construction` in `m..=4096`, `ef_search` in `1..=4096`,
    /// `flat_threshold <= 10_000_000`, `max_tombstone_ratio` in `(0, 1]`.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(IndexError::InvalidParams(msg));
        if !(2..=128).contains(&self.m) {
            return bad(format!("m must be in 2..=128, got {}", self.m));
        }
        if self.ef_construction < self.m || self.ef_construction > MAX_EF {
            return bad(format!(
                "ef_construction must be in m..={MAX_EF} (m = {}), got {}",
                self.m, self.ef_construction
            ));
        }
        if !(1..=MAX_EF).contains(&self.ef_search) {
            return bad(format!(
                "ef_search must be in 1..={MAX_EF}, got {}",
                self.ef_search
            ));
        }
        if self.flat_threshold > MAX_FLAT_THRESHOLD {
            return bad(format!(
                "flat_threshold must be at most {MAX_FLAT_THRESHOLD}, got {}",
                self.flat_threshold
            ));
        }
        let r = self.max_tombstone_ratio;
        if !(r > 0.0 && r <= 1.0) {
            return bad(format!("max_tombstone_ratio must be in (0, 1], got {r}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        IndexParams::default().validate().unwrap();
    }

    #[test]
    fn rejects_out_of_bounds() {
        let d = IndexParams::default();
        let cases = [
            IndexParams { m: 1, ..d },
            IndexParams { m: 129, ..d },
            IndexParams {
                ef_construction: 15,
                ..d
            },
            IndexParams {
                ef_construction: 4097,
                ..d
            },
            IndexParams { ef_search: 0, ..d },
            IndexParams {
                ef_search: 4097,
                ..d
            },
            IndexParams {
                flat_threshold: 10_000_001,
                ..d
            },
            IndexParams {
                max_tombstone_ratio: 0.0,
                ..d
            },
            IndexParams {
                max_tombstone_ratio: 1.5,
                ..d
            },
            IndexParams {
                max_tombstone_ratio: f32::NAN,
                ..d
            },
        ];
        for p in cases {
            assert!(
                matches!(p.validate(), Err(IndexError::InvalidParams(_))),
                "{p:?}"
            );
        }
        IndexParams {
            max_tombstone_ratio: 1.0,
            flat_threshold: 0,
            ..d
        }
        .validate()
        .unwrap();
    }
}
