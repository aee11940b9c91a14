//! SIMD kernels against the plain f64 reference, per metric and common embedding sizes, to
//! show what the dispatch buys (and catch a build that silently fell back to scalar code).

use std::hint::black_box;

use bulkhead_benches::unit_vectors;
use bulkhead_index::Metric;
use bulkhead_index::distance::{distance, scalar_distance};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bench_distance(c: &mut Criterion) {
    for metric in Metric::ALL {
        let mut group = c.benchmark_group(format!("distance/{metric}"));
        for dim in [128usize, 384, 768, 1536] {
            let v = unit_vectors(2, dim, dim as u64);
            let (a, b) = (&v[0], &v[1]);
            group.throughput(Throughput::Elements(dim as u64));
            group.bench_with_input(BenchmarkId::new("simd", dim), &dim, |bench, _| {
                bench.iter(|| distance(metric, black_box(a), black_box(b)))
            });
            group.bench_with_input(BenchmarkId::new("scalar", dim), &dim, |bench, _| {
                bench.iter(|| scalar_distance(metric, black_box(a), black_box(b)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_distance);
criterion_main!(benches);
