//! Int8 scalar quantization for the graph walk. A graph search and an insert spend nearly all
//! their time loading vectors from random places in memory and taking dot products; a vector of
//! 384 `i8`s is six cache lines instead of twenty-four, and SimSIMD's `i8` kernels (VNNI where
//! the CPU has it) do the products four times as wide. The walk only has to rank candidates
//! roughly right, so it runs on codes, and the final candidates are re-ranked with the exact
//! `f32` vectors (see `Hnsw::knn`), which is what callers see.
//!
//! Each vector gets its own scale (its largest magnitude maps to 127), so the error of a code is
//! relative to its own vector whatever the embedding model's value range: `v ≈ scale · code`,
//! and `a·b ≈ scale_a · scale_b · (code_a·code_b)`. Squared norms are kept exact for L2.

use simsimd::SpatialSimilarity;

use bulkhead_core::Metric;

/// Largest code magnitude.
const LEVELS: f32 = 127.0;

/// Bytes after a vector's codes in its record: its scale and squared norm, so one record (one
/// run of cache lines) holds everything a distance needs.
pub(crate) const RECORD_TAIL: usize = 2 * size_of::<f32>();

/// Appends `v`'s record (codes, scale, squared norm) to `records`.
pub(crate) fn append_record(v: &[f32], records: &mut Vec<i8>) {
    let scale = quantize_into(v, records);
    let sqnorm: f32 = v.iter().map(|x| x * x).sum();
    records.extend(
        scale
            .to_ne_bytes()
            .into_iter()
            .chain(sqnorm.to_ne_bytes())
            .map(|b| b as i8),
    );
}

/// A record's parts: codes, scale, squared norm.
#[inline]
pub(crate) fn split_record(record: &[i8]) -> (&[i8], f32, f32) {
    let (codes, tail) = record.split_at(record.len() - RECORD_TAIL);
    let f32_at = |i: usize| {
        f32::from_ne_bytes([
            tail[i] as u8,
            tail[i + 1] as u8,
            tail[i + 2] as u8,
            tail[i + 3] as u8,
        ])
    };
    (codes, f32_at(0), f32_at(4))
}

/// Appends `v`'s codes to `codes`; returns its scale (0 for a zero vector, whose codes are 0).
pub(crate) fn quantize_into(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        codes.extend(std::iter::repeat_n(0, v.len()));
        return 0.0;
    }
    let inv = LEVELS / max;
    codes.extend(
        v.iter()
            .map(|x| (x * inv).round().clamp(-LEVELS, LEVELS) as i8),
    );
    max / LEVELS
}

/// Integer dot product of two code vectors, by SimSIMD's dispatched kernel.
///
/// # Panics
/// If `a` and `b` have different lengths.
#[inline]
pub(crate) fn dot_codes(a: &[i8], b: &[i8]) -> f32 {
    match <i8 as SpatialSimilarity>::dot(a, b) {
        Some(d) => d as f32,
        None => panic!(
            "dot product of codes of different lengths ({} vs {})",
            a.len(),
            b.len()
        ),
    }
}

/// The distance of `metric` from the approximate inner product `ip` of two vectors whose
/// squared norms are `sqnorm_a` and `sqnorm_b` (lower is closer, as in `crate::distance`).
#[inline]
pub(crate) fn distance_from_ip(metric: Metric, ip: f32, sqnorm_a: f32, sqnorm_b: f32) -> f32 {
    match metric {
        Metric::Cosine => 1.0 - ip,
        Metric::Dot => -ip,
        Metric::L2 => (sqnorm_a + sqnorm_b - 2.0 * ip).max(0.0),
    }
}

/// The query side of a quantized walk: the query's codes, scale and squared norm.
#[derive(Debug, Default)]
pub(crate) struct QueryCodes {
    pub codes: Vec<i8>,
    pub scale: f32,
    pub sqnorm: f32,
}

impl QueryCodes {
    /// Quantizes `q` into this buffer, reusing its allocation.
    pub fn set(&mut self, q: &[f32]) {
        self.codes.clear();
        self.scale = quantize_into(q, &mut self.codes);
        self.sqnorm = q.iter().map(|x| x * x).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar_dot(a: &[i8], b: &[i8]) -> i64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| i64::from(x) * i64::from(y))
            .sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn simd_dot_equals_the_integer_sum(
            pairs in prop::collection::vec((any::<i8>(), any::<i8>()), 1..1600)
        ) {
            let (a, b): (Vec<i8>, Vec<i8>) = pairs.into_iter().unzip();
            // The kernel's sum comes back as a float, and sums past 2^24 round: compare within
            // that rounding.
            let exact = scalar_dot(&a, &b) as f64;
            let simd = f64::from(dot_codes(&a, &b));
            prop_assert!((simd - exact).abs() <= exact.abs() * 1e-6 + 0.5, "{simd} vs {exact}");
        }

        #[test]
        fn codes_reconstruct_each_value_within_half_a_step(
            v in prop::collection::vec(-10.0f32..10.0, 1..800)
        ) {
            let mut codes = Vec::new();
            let scale = quantize_into(&v, &mut codes);
            prop_assert_eq!(codes.len(), v.len());
            for (x, c) in v.iter().zip(&codes) {
                prop_assert!((x - scale * f32::from(*c)).abs() <= scale * 0.5 + 1e-6);
            }
        }
    }

    #[test]
    fn a_zero_vector_has_zero_codes() {
        let mut codes = Vec::new();
        assert_eq!(quantize_into(&[0.0; 4], &mut codes), 0.0);
        assert_eq!(codes, [0; 4]);
    }

    #[test]
    fn approximate_distances_follow_the_exact_ones_on_unit_vectors() {
        let a = [0.6f32, 0.8, 0.0];
        let b = [0.0f32, 0.6, 0.8];
        let (mut qa, mut qb) = (QueryCodes::default(), QueryCodes::default());
        qa.set(&a);
        qb.set(&b);
        let ip = dot_codes(&qa.codes, &qb.codes) * qa.scale * qb.scale;
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let approx = distance_from_ip(metric, ip, qa.sqnorm, qb.sqnorm);
            let exact = crate::distance::scalar_distance(metric, &a, &b);
            assert!(
                (approx - exact).abs() < 0.01,
                "{metric}: {approx} vs {exact}"
            );
        }
    }
}
