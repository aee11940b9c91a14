//! Query latency of the two index kinds at the sizes where each is used (flat below the
//! promotion threshold, HNSW above it), and single-writer insert throughput.
//! Setup is bounded to keep a full run short on a 2-core machine.

use std::hint::black_box;

use bulkhead_benches::clustered_unit_vectors;
use bulkhead_index::{BuildOptions, IndexKind, IndexParams, Metric, SearchFilter, VectorIndex};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const K: usize = 10;

fn build(data: &[Vec<f32>], params: IndexParams) -> VectorIndex {
    let index = VectorIndex::new(data[0].len(), Metric::Cosine, params).expect("valid params");
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u32, v).expect("insert");
    }
    index
        .build_if_wanted(&BuildOptions::default())
        .expect("build");
    index
}

fn bench_flat(c: &mut Criterion) {
    let data = clustered_unit_vectors(10_000, 384, 100, 1);
    let queries = clustered_unit_vectors(100, 384, 100, 2);
    let index = build(&data, IndexParams::default());
    assert_eq!(index.kind(), IndexKind::Flat);
    let mut group = c.benchmark_group("search/flat_10k_x384");
    let mut i = 0;
    group.bench_function("k10", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(
                index
                    .search(&queries[i], K, None, SearchFilter::default())
                    .expect("search"),
            )
        })
    });
    group.finish();
}

fn bench_hnsw(c: &mut Criterion) {
    let data = clustered_unit_vectors(50_000, 128, 500, 3);
    let queries = clustered_unit_vectors(200, 128, 500, 4);
    let index = build(
        &data,
        IndexParams {
            flat_threshold: 0,
            ef_construction: 100,
            ..Default::default()
        },
    );
    assert_eq!(index.kind(), IndexKind::Hnsw);
    let mut group = c.benchmark_group("search/hnsw_50k_x128");
    for ef in [32usize, 64, 128] {
        let mut i = 0;
        group.bench_function(format!("k10_ef{ef}"), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                black_box(
                    index
                        .search(&queries[i], K, Some(ef), SearchFilter::default())
                        .expect("search"),
                )
            })
        });
    }
    group.finish();
}

fn bench_insert(c: &mut Criterion) {
    const N: usize = 2_000;
    let data = clustered_unit_vectors(N, 384, 20, 5);
    let mut group = c.benchmark_group("insert/2k_x384");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    for (name, flat_threshold) in [("flat", IndexParams::default().flat_threshold), ("hnsw", 0)] {
        let params = IndexParams {
            flat_threshold,
            ..Default::default()
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                // A graph (for "hnsw") from the first vector, so every insert measured goes
                // into it.
                || build(&data[..1], params),
                |index| {
                    for (i, v) in data.iter().enumerate().skip(1) {
                        index.insert(i as u32, v).expect("insert");
                    }
                    index
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_flat, bench_hnsw, bench_insert);
criterion_main!(benches);
