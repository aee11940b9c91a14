//! Batched upsert into one tenant's collection through the engine: validation, one RocksDB
//! write batch (with and without the WAL fsync of the default configuration) and insertion
//! into the collection's index. The collection stays on the flat index so the figure is the
//! storage path, not HNSW construction (which `search` measures).

use std::time::Duration;

use bulkhead_core::{CollectionId, Metric, RecordId, TenantId};
use bulkhead_engine::{
    CollectionSpec, Engine, EngineConfig, IndexParams, NewRecord, TenantSettings,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const DIM: usize = 384;

fn records(start: u64, n: usize) -> Vec<NewRecord> {
    let vectors = bulkhead_benches::unit_vectors(n, DIM, start);
    vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let id = RecordId::new(format!("r{}", start as usize + i)).unwrap();
            let mut r = NewRecord::new(id, v);
            r.text = Some("a short passage of text stored with the vector".into());
            r
        })
        .collect()
}

fn bench_upsert(c: &mut Criterion) {
    let mut group = c.benchmark_group("upsert");
    group.measurement_time(Duration::from_secs(8));
    for sync in [true, false] {
        for batch in [1usize, 100, 1000] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = EngineConfig::new(dir.path());
            config.sync_writes = sync;
            let engine = Engine::open(config).unwrap();
            let tenant = TenantId::new("bench").unwrap();
            engine
                .create_tenant(&tenant, &TenantSettings::default())
                .unwrap();
            let handle = engine
                .tenant(&engine.authority().admin(&tenant, "benchmark"))
                .unwrap();
            let coll = CollectionId::new("docs").unwrap();
            let mut spec = CollectionSpec::new(DIM, Metric::Cosine);
            spec.index = Some(IndexParams {
                flat_threshold: bulkhead_index::MAX_FLAT_THRESHOLD,
                ..IndexParams::default()
            });
            handle.create_collection(&coll, &spec).unwrap();
            let mut next = 0u64;
            group.throughput(Throughput::Elements(batch as u64));
            let name = if sync { "fsync" } else { "no-fsync" };
            group.bench_with_input(BenchmarkId::new(name, batch), &batch, |b, &batch| {
                b.iter_batched(
                    || {
                        let r = records(next, batch);
                        next += batch as u64;
                        r
                    },
                    |r| handle.upsert(&coll, r).unwrap(),
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_upsert);
criterion_main!(benches);
