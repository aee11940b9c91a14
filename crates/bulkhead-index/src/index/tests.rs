use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roaring::RoaringBitmap;

use super::*;
use crate::distance::{normalize, scalar_distance};

/// `n` points around `clusters` random centres in `[-1, 1]^dim`, reproducible from `seed`.
/// Within a cluster the spread lies mostly in a 20-dimensional subspace (plus a little
/// isotropic noise), like real embeddings whose intrinsic dimension is far below `dim`.
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    const LATENT: usize = 20;
    let mut basis_rng = StdRng::seed_from_u64(0xBA515);
    let basis: Vec<Vec<f32>> = (0..LATENT)
        .map(|_| {
            (0..dim)
                .map(|_| basis_rng.random_range(-0.3..0.3))
                .collect()
        })
        .collect();
    let mut centre_rng = StdRng::seed_from_u64(0xCE27E);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| {
            (0..dim)
                .map(|_| centre_rng.random_range(-1.0..1.0))
                .collect()
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let z: Vec<f32> = (0..LATENT).map(|_| rng.random_range(-1.0..1.0)).collect();
            (0..dim)
                .map(|d| {
                    let low_rank: f32 = z.iter().zip(&basis).map(|(z, b)| z * b[d]).sum();
                    centres[i % clusters][d] + low_rank + rng.random_range(-0.05..0.05)
                })
                .collect()
        })
        .collect()
}

/// Exact top-k labels by the reference distance (vectors normalised first for cosine).
fn brute_force(metric: Metric, data: &[(u32, Vec<f32>)], q: &[f32], k: usize) -> Vec<u32> {
    let prep = |v: &[f32]| {
        let mut v = v.to_vec();
        if metric == Metric::Cosine {
            normalize(&mut v);
        }
        v
    };
    let q = prep(q);
    let mut d: Vec<(f32, u32)> = data
        .iter()
        .map(|(l, v)| (scalar_distance(metric, &q, &prep(v)), *l))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().take(k).map(|(_, l)| l).collect()
}

fn recall(got: &[Neighbor], truth: &[u32]) -> f64 {
    let truth: HashSet<u32> = truth.iter().copied().collect();
    got.iter().filter(|n| truth.contains(&n.label)).count() as f64 / truth.len().max(1) as f64
}

fn hnsw_params() -> IndexParams {
    IndexParams {
        m: 12,
        ef_construction: 100,
        flat_threshold: 0,
        max_tombstone_ratio: 1.0,
        ..Default::default()
    }
}

fn build(metric: Metric, params: IndexParams, data: &[(u32, Vec<f32>)]) -> VectorIndex {
    build_with_threads(metric, params, data, 1)
}

/// `data` inserted, then the wanted build run with `threads` threads.
fn build_with_threads(
    metric: Metric,
    params: IndexParams,
    data: &[(u32, Vec<f32>)],
    threads: usize,
) -> VectorIndex {
    let idx = VectorIndex::new(data[0].1.len(), metric, params).unwrap();
    for (l, v) in data {
        idx.insert(*l, v).unwrap();
    }
    idx.build_if_wanted(&BuildOptions {
        threads,
        ..BuildOptions::default()
    })
    .unwrap();
    idx
}

fn labelled(points: Vec<Vec<f32>>, stride: u32) -> Vec<(u32, Vec<f32>)> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as u32 * stride + 5, v))
        .collect()
}

fn assert_sorted(res: &[Neighbor]) {
    assert!(
        res.windows(2).all(|w| w[0].distance <= w[1].distance),
        "{res:?}"
    );
}

#[test]
fn flat_search_equals_brute_force() {
    for metric in Metric::ALL {
        let data = labelled(clustered(600, 24, 6, 1), 3);
        let idx = build(metric, IndexParams::default(), &data);
        assert_eq!(idx.kind(), IndexKind::Flat);
        for q in clustered(20, 24, 6, 2) {
            let res = idx.search(&q, 10, None, SearchFilter::default()).unwrap();
            assert_sorted(&res);
            let got: Vec<u32> = res.iter().map(|n| n.label).collect();
            assert_eq!(got, brute_force(metric, &data, &q, 10), "{metric}");
        }
    }
}

#[test]
fn hnsw_recall_at_10_with_and_without_quantization() {
    let data = labelled(clustered(5000, 64, 50, 3), 1);
    let queries = clustered(100, 64, 50, 4);
    for quantization in [Quantization::Int8, Quantization::None] {
        for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
            let params = IndexParams {
                quantization,
                ..hnsw_params()
            };
            let idx = build(metric, params, &data);
            assert_eq!(idx.kind(), IndexKind::Hnsw);
            let mut total = 0.0;
            for q in &queries {
                let res = idx
                    .search(q, 10, Some(64), SearchFilter::default())
                    .unwrap();
                assert_eq!(res.len(), 10);
                assert_sorted(&res);
                // Whatever the walk compared, the distances returned are the exact ones.
                for n in &res {
                    let v = &data.iter().find(|(l, _)| *l == n.label).unwrap().1;
                    let mut unit = q.clone();
                    let exact = if metric == Metric::Cosine {
                        let mut v = v.clone();
                        normalize(&mut unit);
                        normalize(&mut v);
                        scalar_distance(metric, &unit, &v)
                    } else {
                        scalar_distance(metric, q, v)
                    };
                    assert!((n.distance - exact).abs() <= 1e-3 * exact.abs().max(1.0));
                }
                total += recall(&res, &brute_force(metric, &data, q, 10));
            }
            let r = total / queries.len() as f64;
            assert!(r >= 0.95, "{quantization:?} {metric}: recall@10 = {r}");
        }
    }
}

#[test]
fn graph_degrees_are_bounded() {
    let data = labelled(clustered(1500, 16, 10, 5), 1);
    let idx = build(Metric::L2, hnsw_params(), &data);
    let state = idx.state.read();
    let g = state.graph.as_ref().unwrap();
    for id in 0..g.len() as u32 {
        let links = g.links(id, 0);
        assert!(links.len() <= 2 * idx.params.m);
        assert!(links.iter().all(|&n| n != id && (n as usize) < g.len()));
    }
}

#[test]
fn removed_labels_are_never_returned() {
    let data = labelled(clustered(2000, 16, 10, 6), 2);
    for params in [IndexParams::default(), hnsw_params()] {
        let idx = build(Metric::Cosine, params, &data);
        let removed: HashSet<u32> = data.iter().step_by(3).map(|(l, _)| *l).collect();
        for &l in &removed {
            assert!(idx.remove(l));
            assert!(!idx.remove(l));
            assert!(!idx.contains(l));
        }
        assert_eq!(idx.len(), data.len() - removed.len());
        for (l, v) in data.iter().take(200) {
            let res = idx.search(v, 10, None, SearchFilter::default()).unwrap();
            assert_eq!(res.len(), 10);
            assert!(res.iter().all(|n| !removed.contains(&n.label)));
            if !removed.contains(l) {
                assert_eq!(res[0].label, *l);
            }
        }
    }
}

#[test]
fn compaction_keeps_labels_and_recall() {
    let data = labelled(clustered(3000, 32, 30, 7), 7);
    let params = IndexParams {
        max_tombstone_ratio: 0.25,
        ..hnsw_params()
    };
    let idx = build(Metric::L2, params, &data);
    let (gone, kept): (Vec<_>, Vec<_>) = data.iter().cloned().partition(|(l, _)| l % 10 < 3);
    for (l, _) in &gone {
        assert!(idx.remove(*l));
    }
    assert_eq!(
        idx.state.read().store.tombstones().len() as usize,
        gone.len()
    );
    assert_eq!(idx.wanted_build(), Some(BuildReason::Compact), "30% > 25%");
    let report = idx
        .build_if_wanted(&BuildOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        (report.reason, report.snapshot_vectors, report.kind),
        (BuildReason::Compact, kept.len(), IndexKind::Hnsw)
    );
    {
        let state = idx.state.read();
        assert_eq!(state.store.slots(), kept.len());
        assert!(state.store.tombstones().is_empty());
    }
    assert_eq!(idx.wanted_build(), None);
    assert_eq!(idx.kind(), IndexKind::Hnsw);
    assert_eq!(idx.len(), kept.len());
    let mut total = 0.0;
    for (l, v) in kept.iter().step_by(15) {
        assert!(idx.contains(*l));
        let res = idx.search(v, 10, None, SearchFilter::default()).unwrap();
        assert_eq!(res[0].label, *l);
        total += recall(&res, &brute_force(Metric::L2, &kept, v, 10));
    }
    let r = total / kept.iter().step_by(15).count() as f64;
    assert!(r >= 0.95, "recall after compaction {r}");
    for (l, v) in &gone {
        assert!(!idx.contains(*l));
        idx.insert(*l, v).unwrap();
    }
    assert_eq!(idx.len(), data.len());
}

#[test]
fn filters_are_respected() {
    let data = labelled(clustered(3000, 16, 10, 8), 1);
    let allow_big: RoaringBitmap = data
        .iter()
        .map(|(l, _)| *l)
        .filter(|l| l % 2 == 0)
        .collect();
    let allow_small: RoaringBitmap = data
        .iter()
        .map(|(l, _)| *l)
        .filter(|l| l % 50 == 0)
        .collect();
    let deny: RoaringBitmap = data
        .iter()
        .map(|(l, _)| *l)
        .filter(|l| l % 3 == 0)
        .collect();
    for params in [IndexParams::default(), hnsw_params()] {
        let idx = build(Metric::Dot, params, &data);
        for q in clustered(30, 16, 10, 9) {
            for (allow, deny) in [
                (Some(&allow_big), None),
                (Some(&allow_small), None),
                (None, Some(&deny)),
                (Some(&allow_big), Some(&deny)),
            ] {
                let filter = SearchFilter { allow, deny };
                let res = idx.search(&q, 10, None, filter).unwrap();
                assert_eq!(res.len(), 10);
                assert_sorted(&res);
                assert!(res.iter().all(|n| filter.accepts(n.label)));
            }
            // The small allow-list is scanned exactly.
            let res = idx
                .search(
                    &q,
                    5,
                    None,
                    SearchFilter {
                        allow: Some(&allow_small),
                        deny: None,
                    },
                )
                .unwrap();
            let subset: Vec<_> = data
                .iter()
                .filter(|(l, _)| allow_small.contains(*l))
                .cloned()
                .collect();
            let got: Vec<u32> = res.iter().map(|n| n.label).collect();
            assert_eq!(got, brute_force(Metric::Dot, &subset, &q, 5));
        }
        let empty = RoaringBitmap::new();
        assert!(
            idx.search(
                &data[0].1,
                10,
                None,
                SearchFilter {
                    allow: Some(&empty),
                    deny: None
                }
            )
            .unwrap()
            .is_empty()
        );
    }
}

/// An allow-list too broad for the exact scan goes through the graph, where the walk must
/// drop every label outside it and still find the true filtered neighbours.
#[test]
fn a_broad_allow_list_is_searched_through_the_graph_with_filtered_recall() {
    const EF: usize = 64;
    let data = labelled(clustered(6000, 16, 10, 12), 1);
    // Two thirds allowed, one third (spread through every cluster) not.
    let allow: RoaringBitmap = data
        .iter()
        .map(|(l, _)| *l)
        .filter(|l| l % 3 != 0)
        .collect();
    let allowed: Vec<_> = data
        .iter()
        .filter(|(l, _)| allow.contains(*l))
        .cloned()
        .collect();
    for metric in [Metric::Cosine, Metric::L2] {
        let idx = build(metric, hnsw_params(), &data);
        assert_eq!(idx.kind(), IndexKind::Hnsw);
        // The planner's own rule, with the inputs `search` gives it: this list is not scanned.
        assert!(
            !prefer_exact_scan(allow.len(), idx.len() as u64, EF, idx.params.m),
            "{} of {} allowed must take the graph path",
            allow.len(),
            idx.len()
        );
        let filter = SearchFilter {
            allow: Some(&allow),
            deny: None,
        };
        let queries = clustered(100, 16, 10, 13);
        let mut total = 0.0;
        for q in &queries {
            let res = idx.search(q, 10, Some(EF), filter).unwrap();
            assert_eq!(res.len(), 10);
            assert_sorted(&res);
            for n in &res {
                assert!(
                    allow.contains(n.label),
                    "{metric}: label {} is outside the allow-list",
                    n.label
                );
            }
            total += recall(&res, &brute_force(metric, &allowed, q, 10));
        }
        let r = total / queries.len() as f64;
        assert!(
            r >= 0.9,
            "{metric}: filtered recall@10 through the graph = {r}"
        );
    }
}

#[test]
fn promotes_from_flat_to_hnsw_when_the_owner_builds() {
    let data = labelled(clustered(300, 8, 5, 10), 11);
    let params = IndexParams {
        flat_threshold: 200,
        ..Default::default()
    };
    let idx = VectorIndex::new(8, Metric::Cosine, params).unwrap();
    for (i, (l, v)) in data.iter().enumerate() {
        idx.insert(*l, v).unwrap();
        let wanted = (i >= 200).then_some(BuildReason::Promote);
        assert_eq!(idx.wanted_build(), wanted, "after {} inserts", i + 1);
        assert_eq!(idx.kind(), IndexKind::Flat, "inserts never build");
    }
    let progress = std::sync::Mutex::new(Vec::new());
    let record = |done: usize, total: usize| progress.lock().unwrap().push((done, total));
    let report = idx
        .build_if_wanted(&BuildOptions {
            threads: 2,
            progress: Some(&record),
            cancel: None,
        })
        .unwrap()
        .unwrap();
    assert_eq!(report.reason, BuildReason::Promote);
    assert_eq!(report.snapshot_vectors, 300);
    assert_eq!(idx.kind(), IndexKind::Hnsw);
    assert_eq!(progress.into_inner().unwrap().last(), Some(&(300, 300)));
    assert_eq!(idx.build_if_wanted(&BuildOptions::default()).unwrap(), None);
    for (l, v) in data.iter().step_by(7) {
        assert_eq!(
            idx.search(v, 1, None, SearchFilter::default()).unwrap()[0].label,
            *l
        );
    }
    assert!(idx.memory_bytes() > 300 * 8 * 4);
    let dbg = format!("{idx:?}");
    assert!(
        dbg.contains("Hnsw") && dbg.contains("len: 300") && dbg.len() < 400,
        "{dbg}"
    );
}

#[test]
fn rejects_bad_input() {
    let idx = VectorIndex::new(3, Metric::Cosine, IndexParams::default()).unwrap();
    idx.insert(1, &[1.0, 0.0, 0.0]).unwrap();
    assert_eq!(
        idx.insert(2, &[1.0, 0.0]),
        Err(IndexError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    );
    assert_eq!(
        idx.insert(1, &[0.0, 1.0, 0.0]),
        Err(IndexError::DuplicateLabel(1))
    );
    assert_eq!(idx.insert(3, &[0.0, 0.0, 0.0]), Err(IndexError::ZeroVector));
    assert_eq!(
        idx.insert(3, &[0.0, f32::NAN, 0.0]),
        Err(IndexError::NonFinite(1))
    );
    assert!(matches!(
        idx.search(&[1.0; 4], 1, None, SearchFilter::default()),
        Err(IndexError::DimensionMismatch {
            expected: 3,
            got: 4
        })
    ));
    assert!(
        idx.search(&[1.0; 3], 0, None, SearchFilter::default())
            .unwrap()
            .is_empty()
    );
    assert!(VectorIndex::new(0, Metric::L2, IndexParams::default()).is_err());
    assert!(
        VectorIndex::new(
            3,
            Metric::L2,
            IndexParams {
                m: 1,
                ..Default::default()
            }
        )
        .is_err()
    );
    assert_eq!(idx.len(), 1);
    // Distances follow the documented definitions.
    let d = idx
        .search(&[0.0, 2.0, 0.0], 1, None, SearchFilter::default())
        .unwrap()[0]
        .distance;
    assert!((d - 1.0).abs() < 1e-6);
}

#[test]
fn concurrent_searches_during_inserts_and_builds() {
    let data = labelled(clustered(1500, 16, 10, 12), 1);
    let params = IndexParams {
        flat_threshold: 300,
        ..hnsw_params()
    };
    let idx = VectorIndex::new(16, Metric::L2, params).unwrap();
    let queries = clustered(50, 16, 10, 13);
    let max_label = data.len() as u32 + 5;
    let writing = std::sync::atomic::AtomicBool::new(true);
    std::thread::scope(|s| {
        s.spawn(|| {
            for (l, v) in &data {
                idx.insert(*l, v).unwrap();
            }
            writing.store(false, std::sync::atomic::Ordering::Release);
        });
        s.spawn(|| {
            while writing.load(std::sync::atomic::Ordering::Acquire) {
                idx.build_if_wanted(&BuildOptions::default()).unwrap();
            }
        });
        for t in 0..3 {
            let (idx, queries) = (&idx, &queries);
            s.spawn(move || {
                for round in 0..40 {
                    let q = &queries[(t * 7 + round) % queries.len()];
                    let res = idx.search(q, 10, None, SearchFilter::default()).unwrap();
                    assert!(res.len() <= 10);
                    assert_sorted(&res);
                    assert!(res.iter().all(|n| n.label < max_label));
                }
            });
        }
    });
    idx.build_if_wanted(&BuildOptions::default()).unwrap();
    assert_eq!(idx.len(), data.len());
    assert_eq!(idx.kind(), IndexKind::Hnsw);
    for (l, v) in data.iter().step_by(11) {
        assert_eq!(
            idx.search(v, 1, None, SearchFilter::default()).unwrap()[0].label,
            *l
        );
    }
}

#[test]
fn parallel_builds_reach_the_recall_of_one_thread() {
    let data = labelled(clustered(4000, 32, 40, 21), 3);
    let queries = clustered(60, 32, 40, 22);
    for threads in [1, 4] {
        let idx = build_with_threads(Metric::L2, hnsw_params(), &data, threads);
        let mut total = 0.0;
        for q in &queries {
            let res = idx.search(q, 10, None, SearchFilter::default()).unwrap();
            total += recall(&res, &brute_force(Metric::L2, &data, q, 10));
        }
        let r = total / queries.len() as f64;
        assert!(r >= 0.95, "{threads} threads: recall@10 = {r}");
        let state = idx.state.read();
        let g = state.graph.as_ref().unwrap();
        for id in 0..g.len() as u32 {
            let links = g.links(id, 0);
            assert!(!links.is_empty(), "{threads} threads: node {id} unlinked");
            assert!(links.len() <= 2 * idx.params.m);
            assert!(links.iter().all(|&n| n != id && (n as usize) < g.len()));
        }
    }
}

/// Runs `op` on its own thread; fails the test if it hasn't returned within 10 s, i.e. if it
/// waited for the work (a build, an insert) the caller is holding up.
fn returns_promptly<T: Send + 'static>(what: &str, op: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(op()).unwrap());
    result
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what} waited for the work the test holds up"))
}

#[test]
fn searches_go_on_while_an_insert_grows_the_full_arrays_of_a_fresh_graph() {
    use std::sync::Arc;
    // A build sizes the graph's links and the store's vectors for exactly the vectors it
    // saw, so the first insert after it must grow them all: once, for a big collection, a
    // copy of gigabytes, which searches used to wait for under the exclusive lock.
    let data = labelled(clustered(1200, 16, 12, 57), 3);
    let params = IndexParams {
        flat_threshold: 1000,
        ..hnsw_params()
    };
    let (built, added) = data.split_at(1100);
    let idx = Arc::new(build(Metric::L2, params, built));
    assert_eq!(idx.kind(), IndexKind::Hnsw);
    let store_bytes = || idx.state.read().store.heap_bytes();
    let bytes_when_built = store_bytes();
    for (l, v) in added {
        let (searcher, q) = (idx.clone(), built[0].1.clone());
        idx.insert_with(*l, v, move || {
            let found = returns_promptly("a search beside a growing insert", move || {
                searcher
                    .search(&q, 3, None, SearchFilter::default())
                    .unwrap()
            });
            assert_eq!(found[0].label, built[0].0);
        })
        .unwrap();
    }
    assert!(
        store_bytes() > bytes_when_built,
        "the inserts did not grow the arrays, so the test shows nothing"
    );
    assert_eq!(idx.len(), data.len());
    for (l, v) in &data {
        let res = idx.search(v, 1, None, SearchFilter::default()).unwrap();
        assert_eq!(res[0].label, *l);
    }
}

#[test]
fn searches_and_writes_never_wait_for_a_build() {
    use std::sync::{Arc, mpsc};
    let data = labelled(clustered(3000, 16, 20, 31), 2);
    let params = IndexParams {
        flat_threshold: 1000,
        ..hnsw_params()
    };
    let idx = Arc::new(VectorIndex::new(16, Metric::L2, params).unwrap());
    let (before, during) = data.split_at(2500);
    for (l, v) in before {
        idx.insert(*l, v).unwrap();
    }
    // The build stops at its progress report until the test lets it go on.
    let (in_build, building) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let builder = {
        let idx = idx.clone();
        std::thread::spawn(move || {
            let (in_build, released) = (Mutex::new(in_build), Mutex::new(released));
            let hold = |_: usize, _: usize| {
                in_build.lock().send(()).unwrap();
                released.lock().recv().unwrap();
            };
            idx.build_if_wanted(&BuildOptions {
                threads: 2,
                progress: Some(&hold),
                cancel: None,
            })
            .unwrap()
            .unwrap()
        })
    };
    building.recv().unwrap();
    assert!(idx.is_building());

    let (searcher, q) = (idx.clone(), before[0].1.clone());
    let first = returns_promptly("a search", move || {
        searcher
            .search(&q, 5, None, SearchFilter::default())
            .unwrap()
    });
    assert_eq!(first[0].label, before[0].0);
    let (writer, added) = (idx.clone(), during.to_vec());
    returns_promptly("an insert", move || {
        for (l, v) in &added {
            writer.insert(*l, v).unwrap();
        }
    });
    let removed: Vec<u32> = before.iter().step_by(5).map(|(l, _)| *l).collect();
    let (writer, gone) = (idx.clone(), removed.clone());
    returns_promptly("a remove", move || {
        for l in &gone {
            assert!(writer.remove(*l));
        }
    });

    release.send(()).unwrap();
    let report = builder.join().unwrap();
    assert_eq!(report.snapshot_vectors, 2500);
    assert_eq!(report.replayed_changes, during.len() + removed.len());
    assert_eq!(idx.kind(), IndexKind::Hnsw);
    assert!(!idx.is_building());
    assert_eq!(idx.len(), data.len() - removed.len());
    for (l, v) in during.iter().chain(before.iter().skip(1).step_by(5)) {
        let res = idx.search(v, 1, None, SearchFilter::default()).unwrap();
        assert_eq!(res[0].label, *l, "written during the build");
    }
    for l in &removed {
        assert!(!idx.contains(*l));
    }
    let removed: HashSet<u32> = removed.into_iter().collect();
    for (_, v) in before.iter().step_by(5) {
        let res = idx.search(v, 10, None, SearchFilter::default()).unwrap();
        assert!(res.iter().all(|n| !removed.contains(&n.label)));
    }
}

#[test]
fn builds_replay_every_write_made_while_they_ran() {
    let mut rng = StdRng::seed_from_u64(41);
    let points = clustered(2400, 8, 12, 40);
    let params = IndexParams {
        flat_threshold: 300,
        max_tombstone_ratio: 0.05,
        ..hnsw_params()
    };
    let idx = VectorIndex::new(8, Metric::L2, params).unwrap();
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let writing = AtomicBool::new(true);
    let builds = AtomicUsize::new(0);
    let mut live = std::collections::HashMap::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            while writing.load(Ordering::Acquire) {
                if idx
                    .build_if_wanted(&BuildOptions::default())
                    .unwrap()
                    .is_some()
                {
                    builds.fetch_add(1, Ordering::AcqRel);
                }
            }
        });
        // Writes that landed while the current build runs: past a few dozen the writer waits
        // for the build to end, so the writes spread over many builds however slowly the
        // machine runs them (one slow build could otherwise take every write).
        let mut during_build = 0;
        for (label, v) in points.iter().enumerate() {
            idx.insert(label as u32, v).unwrap();
            live.insert(label as u32, v.clone());
            if rng.random_bool(0.3) {
                let victim = *live.keys().nth(rng.random_range(0..live.len())).unwrap();
                assert!(idx.remove(victim));
                live.remove(&victim);
            }
            during_build = if idx.is_building() {
                during_build + 1
            } else {
                0
            };
            if during_build >= 40 {
                let ended = builds.load(Ordering::Acquire);
                while idx.is_building() && builds.load(Ordering::Acquire) == ended {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                during_build = 0;
            }
            // Let a wanted build start before the next write.
            let waiting = std::time::Instant::now();
            while idx.wanted_build().is_some()
                && !idx.is_building()
                && waiting.elapsed() < std::time::Duration::from_millis(200)
            {
                std::thread::yield_now();
            }
        }
        writing.store(false, Ordering::Release);
    });
    let builds = builds.into_inner();
    assert!(builds >= 2, "{builds} builds ran during the writes");
    idx.build_if_wanted(&BuildOptions::default()).unwrap();
    assert_eq!(idx.len(), live.len());
    for label in 0..points.len() as u32 {
        assert_eq!(idx.contains(label), live.contains_key(&label), "{label}");
    }
    for (label, v) in &live {
        let res = idx.search(v, 1, Some(64), SearchFilter::default()).unwrap();
        assert_eq!(res[0].distance, 0.0, "{label} is found by its own vector");
    }
}

#[test]
fn parallel_builds_leave_every_node_reachable() {
    // A node linked while another thread already reached it from an upper level once ended
    // with a single link and no way in; a sequential build never shows it.
    let data = labelled(clustered(4000, 16, 8, 51), 1);
    for threads in [1, 4] {
        let params = IndexParams {
            flat_threshold: 200,
            ..Default::default()
        };
        let idx = build_with_threads(Metric::Cosine, params, &data, threads);
        {
            let state = idx.state.read();
            let g = state.graph.as_ref().unwrap();
            let mut linked_to = vec![false; g.len()];
            for id in 0..g.len() as u32 {
                for n in g.links(id, 0) {
                    linked_to[n as usize] = true;
                }
            }
            let orphans = linked_to.iter().filter(|l| !**l).count();
            assert_eq!(orphans, 0, "{threads} threads: nodes no link leads to");
        }
        for (l, v) in &data {
            let res = idx.search(v, 1, None, SearchFilter::default()).unwrap();
            assert_eq!(res[0].label, *l, "{threads} threads");
        }
    }
}

#[test]
fn a_cancelled_build_changes_nothing_and_a_later_one_runs() {
    let data = labelled(clustered(5000, 8, 10, 61), 1);
    let params = IndexParams {
        flat_threshold: 100,
        ..hnsw_params()
    };
    let idx = VectorIndex::new(8, Metric::L2, params).unwrap();
    for (l, v) in &data {
        idx.insert(*l, v).unwrap();
    }
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let stop_at_first_report = |_: usize, _: usize| {
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let outcome = idx
        .build_if_wanted(&BuildOptions {
            threads: 2,
            progress: Some(&stop_at_first_report),
            cancel: Some(&cancel),
        })
        .unwrap();
    assert_eq!(outcome, None);
    assert_eq!(idx.kind(), IndexKind::Flat);
    assert!(!idx.is_building());
    assert_eq!(idx.wanted_build(), Some(BuildReason::Promote));
    idx.insert(1_000_000, &[0.5; 8]).unwrap();
    let report = idx
        .build_if_wanted(&BuildOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(report.snapshot_vectors, data.len() + 1);
    assert_eq!(idx.kind(), IndexKind::Hnsw);
}
