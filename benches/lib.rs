//! Synthetic data shared by the benches. Seeded, so every run (and every machine) measures the
//! same vectors and results stay comparable across commits.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `n` random unit vectors of length `dim` (uniform directions via normalised Gaussian-ish
/// components), reproducible from `seed`.
pub fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            // Sum of uniforms approximates a Gaussian well enough for direction sampling.
            let v: Vec<f32> = (0..dim)
                .map(|_| (0..4).map(|_| rng.random_range(-1.0f32..1.0)).sum())
                .collect();
            normalized(v)
        })
        .collect()
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// `n` unit vectors clustered around `clusters` random centres, closer to what embedding
/// models produce than uniform directions (which make every neighbour equally far).
pub fn clustered_unit_vectors(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    let centres = unit_vectors(clusters.max(1), dim, seed ^ 0xC1u64);
    let noise = unit_vectors(n, dim, seed);
    noise
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let c = &centres[i % centres.len()];
            normalized(c.iter().zip(&e).map(|(c, e)| c + 0.6 * e).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_and_reproducible() {
        let a = clustered_unit_vectors(20, 16, 4, 7);
        assert_eq!(a, clustered_unit_vectors(20, 16, 4, 7));
        for v in &a {
            let n: f32 = v.iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-4);
        }
    }
}
