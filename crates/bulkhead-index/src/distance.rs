//! Every index path funnels through these three functions so "lower is closer" holds for all
//! metrics and the SIMD kernels can be checked against one plain reference.
//!
//! Cosine is computed as `1 - a·b` because the index normalises cosine vectors on the way in;
//! recomputing norms on every comparison would double the memory traffic of the hot loop.

use bulkhead_core::Metric;
use simsimd::SpatialSimilarity;

/// Distance between `a` and `b` under `metric` (lower = closer), using SimSIMD's runtime
/// dispatched kernels (AVX-512 / AVX2 / NEON / serial).
///
/// - `Cosine`: `1 - a·b`; both inputs must already be unit-normalised (see [`normalize`]).
/// - `Dot`: `-a·b`.
/// - `L2`: squared euclidean distance.
///
/// # Panics
/// If `a` and `b` have different lengths.
#[inline]
pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    match metric {
        Metric::Cosine => 1.0 - simd_dot(a, b),
        Metric::Dot => -simd_dot(a, b),
        Metric::L2 => simd_l2sq(a, b),
    }
}

#[inline]
fn simd_dot(a: &[f32], b: &[f32]) -> f32 {
    match <f32 as SpatialSimilarity>::dot(a, b) {
        Some(d) => d as f32,
        None => length_mismatch(a, b),
    }
}

#[inline]
fn simd_l2sq(a: &[f32], b: &[f32]) -> f32 {
    match <f32 as SpatialSimilarity>::l2sq(a, b) {
        Some(d) => d as f32,
        None => length_mismatch(a, b),
    }
}

#[cold]
#[inline(never)]
fn length_mismatch(a: &[f32], b: &[f32]) -> ! {
    panic!(
        "distance between vectors of different lengths ({} vs {})",
        a.len(),
        b.len()
    )
}

/// Plain-loop reference for [`distance`] with the same definitions, accumulating in `f64`.
/// Used by tests and benches as ground truth; never on a hot path.
///
/// # Panics
/// If `a` and `b` have different lengths.
pub fn scalar_distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        length_mismatch(a, b);
    }
    let pairs = a.iter().zip(b).map(|(&x, &y)| (f64::from(x), f64::from(y)));
    let d = match metric {
        Metric::Cosine => 1.0 - pairs.map(|(x, y)| x * y).sum::<f64>(),
        Metric::Dot => -pairs.map(|(x, y)| x * y).sum::<f64>(),
        Metric::L2 => pairs.map(|(x, y)| (x - y) * (x - y)).sum::<f64>(),
    };
    d as f32
}

/// Scales `v` to unit length in place. Returns `false` (leaving `v` untouched) when the norm is
/// zero or not finite, since such a vector has no direction to compare by.
pub fn normalize(v: &mut [f32]) -> bool {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    let inv = 1.0 / norm;
    for x in v.iter_mut() {
        *x = (f64::from(*x) * inv) as f32;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Forward error bound of an `n`-term float sum of products (Higham's `γ_n` with unit
    /// roundoff `u = f32::EPSILON / 2`, doubled for the products and the final rounding),
    /// relative to the sum of absolute terms, plus a tiny absolute floor.
    fn bound(n: usize, abs_terms: f64) -> f64 {
        let u = f64::from(f32::EPSILON) / 2.0;
        2.0 * (n as f64 + 2.0) * u * (abs_terms + 1.0) + 1e-6
    }

    fn vecs() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
        (1usize..1600).prop_flat_map(|n| {
            (
                prop::collection::vec(-10.0f32..10.0, n),
                prop::collection::vec(-10.0f32..10.0, n),
            )
        })
    }

    fn abs_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
            .sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn dot_matches_scalar((a, b) in vecs()) {
            let simd = f64::from(distance(Metric::Dot, &a, &b));
            let reference = f64::from(scalar_distance(Metric::Dot, &a, &b));
            prop_assert!((simd - reference).abs() <= bound(a.len(), abs_dot(&a, &b)),
                "simd {simd} scalar {reference}");
        }

        #[test]
        fn l2_matches_scalar((a, b) in vecs()) {
            let simd = f64::from(distance(Metric::L2, &a, &b));
            let reference = f64::from(scalar_distance(Metric::L2, &a, &b));
            prop_assert!((simd - reference).abs() <= bound(a.len(), reference),
                "simd {simd} scalar {reference}");
        }

        #[test]
        fn cosine_matches_scalar((mut a, mut b) in vecs()) {
            prop_assume!(normalize(&mut a) && normalize(&mut b));
            let simd = f64::from(distance(Metric::Cosine, &a, &b));
            let reference = f64::from(scalar_distance(Metric::Cosine, &a, &b));
            // Unit vectors: the absolute terms sum to at most 1.
            prop_assert!((simd - reference).abs() <= bound(a.len(), 1.0),
                "simd {simd} scalar {reference}");
            prop_assert!((-1e-5..=2.0 + 1e-5).contains(&simd));
        }
    }

    #[test]
    fn normalize_rejects_zero_and_scales() {
        let mut z = vec![0.0f32; 8];
        assert!(!normalize(&mut z));
        assert!(z.iter().all(|&x| x == 0.0));
        let mut v = vec![3.0f32, 4.0];
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        assert!(distance(Metric::Cosine, &v, &v).abs() < 1e-6);
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn length_mismatch_panics() {
        distance(Metric::L2, &[1.0], &[1.0, 2.0]);
    }
}
