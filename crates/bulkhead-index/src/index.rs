//! The one type the engine talks to. It hides which structure answers a query: small
//! collections stay flat (exact, no graph memory, cheap deletes), large ones are promoted to
//! HNSW, and deletes in a graph are tombstones that a rebuild eventually reclaims.
//!
//! Locking: one `RwLock` around the state. Searches take it shared and never block each other;
//! inserts, removes, promotion and compaction take it exclusively. Per-search buffers come from
//! a pool outside the lock.

use bulkhead_core::Metric;
use parking_lot::RwLock;

use crate::error::{IndexError, Result};
use crate::flat;
use crate::hnsw::{Hnsw, Space};
use crate::params::IndexParams;
use crate::scratch::ScratchPool;
use crate::store::VectorStore;
use crate::types::{IndexKind, Neighbor, SearchFilter};

/// Largest dimension accepted; far beyond any embedding model, it only guards against
/// nonsense sizes.
pub const MAX_DIM: usize = 65_536;

/// A thread-safe in-memory vector index over caller-chosen `u32` labels.
pub struct VectorIndex {
    dim: usize,
    metric: Metric,
    params: IndexParams,
    state: RwLock<State>,
    scratch: ScratchPool,
}

/// Summarises instead of dumping every vector.
impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("dim", &self.dim)
            .field("metric", &self.metric)
            .field("kind", &self.kind())
            .field("len", &self.len())
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct State {
    store: VectorStore,
    /// `None` while flat.
    graph: Option<Hnsw>,
}

impl State {
    fn space(&self, metric: Metric) -> Space<'_> {
        Space::new(self.store.data(), self.store.dim(), metric)
    }
}

impl VectorIndex {
    /// An empty (flat) index for vectors of length `dim`.
    pub fn new(dim: usize, metric: Metric, params: IndexParams) -> Result<Self> {
        params.validate()?;
        if !(1..=MAX_DIM).contains(&dim) {
            return Err(IndexError::InvalidParams(format!(
                "dim must be in 1..={MAX_DIM}, got {dim}"
            )));
        }
        Ok(Self {
            dim,
            metric,
            params,
            state: RwLock::new(State {
                store: VectorStore::new(dim),
                graph: None,
            }),
            scratch: ScratchPool::default(),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn params(&self) -> IndexParams {
        self.params
    }

    /// Live (not removed) vectors.
    pub fn len(&self) -> usize {
        self.state.read().store.live()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> IndexKind {
        if self.state.read().graph.is_some() {
            IndexKind::Hnsw
        } else {
            IndexKind::Flat
        }
    }

    pub fn contains(&self, label: u32) -> bool {
        self.state.read().store.contains(label)
    }

    /// Approximate heap bytes held (vectors, maps, graph links, pooled search buffers).
    pub fn memory_bytes(&self) -> usize {
        let state = self.state.read();
        state.store.heap_bytes()
            + state.graph.as_ref().map_or(0, Hnsw::heap_bytes)
            + self.scratch.heap_bytes()
    }

    /// Checks length and finiteness; returns the vector as stored (unit length for cosine).
    fn prepare<'v>(&self, vector: &'v [f32]) -> Result<std::borrow::Cow<'v, [f32]>> {
        if vector.len() != self.dim {
            return Err(IndexError::DimensionMismatch {
                expected: self.dim,
                got: vector.len(),
            });
        }
        if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
            return Err(IndexError::NonFinite(i));
        }
        if self.metric == Metric::Cosine {
            let mut v = vector.to_vec();
            if !crate::distance::normalize(&mut v) {
                return Err(IndexError::ZeroVector);
            }
            Ok(v.into())
        } else {
            Ok(vector.into())
        }
    }

    /// Adds `vector` under `label`. Fails if the dimension is wrong, a value is not finite, the
    /// label is already live, or (cosine) the vector is zero. May promote the index to HNSW,
    /// which builds the graph under the write lock.
    pub fn insert(&self, label: u32, vector: &[f32]) -> Result<()> {
        let v = self.prepare(vector)?;
        let mut state = self.state.write();
        let slot = state.store.push(label, &v)?;
        let State { store, graph } = &mut *state;
        let space = Space::new(store.data(), self.dim, self.metric);
        match graph {
            Some(g) => {
                let mut s = self.scratch.take(g.len() + 1);
                g.insert(&space, slot, &mut s);
                self.scratch.put(s);
            }
            None if store.live() > self.params.flat_threshold => {
                *graph = Some(Hnsw::build(&self.params, &space, store.slots()));
            }
            None => {}
        }
        Ok(())
    }

    /// Removes `label`; returns whether it was live. In a graph this leaves a tombstone, and
    /// once tombstones exceed `max_tombstone_ratio` of the nodes the index is rebuilt from the
    /// live vectors (flat again if they no longer exceed `flat_threshold`).
    pub fn remove(&self, label: u32) -> bool {
        let mut state = self.state.write();
        if state.graph.is_none() {
            return state.store.swap_remove(label);
        }
        if !state.store.tombstone(label) {
            return false;
        }
        let dead = state.store.tombstones().len() as f64;
        if dead / state.store.slots() as f64 > f64::from(self.params.max_tombstone_ratio) {
            self.compact(&mut state);
        }
        true
    }

    fn compact(&self, state: &mut State) {
        let store = state.store.compacted();
        let graph = (store.live() > self.params.flat_threshold).then(|| {
            Hnsw::build(
                &self.params,
                &Space::new(store.data(), self.dim, self.metric),
                store.slots(),
            )
        });
        *state = State { store, graph };
        self.scratch.clear();
    }

    /// Up to `k` nearest live labels to `query` that pass `filter`, closest first.
    ///
    /// `ef` (default `ef_search`, never below `k`) is the HNSW beam width. When `filter.allow`
    /// is selective enough (see `prefer_exact_scan`) the graph is bypassed and exactly those
    /// labels are scanned: that is cheaper, exact, and avoids a graph walk that would discard
    /// nearly every node it visits.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: Option<usize>,
        filter: SearchFilter<'_>,
    ) -> Result<Vec<Neighbor>> {
        let q = self.prepare(query)?;
        let ef = ef.unwrap_or(self.params.ef_search).max(k);
        if k == 0 {
            return Ok(Vec::new());
        }
        let state = self.state.read();
        let store = &state.store;
        if store.live() == 0 {
            return Ok(Vec::new());
        }
        if let Some(allow) = filter.allow
            && prefer_exact_scan(allow.len(), store.live() as u64, ef, self.params.m)
        {
            let slots = allow.iter().filter_map(|label| store.slot(label));
            let deny = filter.deny;
            return Ok(flat::scan(store, self.metric, &q, k, slots, |slot| {
                deny.is_none_or(|d| !d.contains(store.label(slot)))
            }));
        }
        let Some(graph) = &state.graph else {
            let slots = 0..store.slots() as u32;
            return Ok(if filter.is_active() {
                flat::scan(store, self.metric, &q, k, slots, |slot| {
                    filter.accepts(store.label(slot))
                })
            } else {
                flat::scan(store, self.metric, &q, k, slots, |_| true)
            });
        };

        let space = state.space(self.metric);
        let tombstones = store.tombstones();
        let mut s = self.scratch.take(graph.len());
        let found = if tombstones.is_empty() && !filter.is_active() {
            graph.knn(&space, &q, k, ef, &mut s, |_| true, false)
        } else {
            let accept =
                |slot: u32| !tombstones.contains(slot) && filter.accepts(store.label(slot));
            graph.knn(&space, &q, k, ef, &mut s, accept, true)
        };
        self.scratch.put(s);
        Ok(found
            .into_iter()
            .map(|c| Neighbor {
                label: store.label(c.id),
                distance: c.dist,
            })
            .collect())
    }
}

/// Whether an allow-list of `allowed` labels out of `live` is cheaper to scan exactly than to
/// search in the graph. A filtered graph search visits about `ef / selectivity` nodes and
/// computes up to `2m` distances at each (the bottom layer's degree), so with
/// `selectivity = allowed / live` it costs about `2·m·ef·live / allowed` distances against
/// `allowed` for the exact scan: scan while `allowed² ≤ 2·m·ef·live` (and always for small
/// lists, where the graph's fixed costs dominate).
fn prefer_exact_scan(allowed: u64, live: u64, ef: usize, m: usize) -> bool {
    const ALWAYS_SCAN: u64 = 1000;
    allowed <= ALWAYS_SCAN || allowed.saturating_mul(allowed) <= 2 * (m as u64) * (ef as u64) * live
}

#[cfg(test)]
mod planner_tests {
    use super::prefer_exact_scan;

    #[test]
    fn selective_filters_scan_and_broad_ones_use_the_graph() {
        // debian-minilm: 60,030 vectors, m = 16, ef = 64.
        assert!(prefer_exact_scan(601, 60_030, 64, 16), "1%");
        assert!(prefer_exact_scan(6_010, 60_030, 64, 16), "10%");
        assert!(!prefer_exact_scan(30_030, 60_030, 64, 16), "50%");
        assert!(
            prefer_exact_scan(900, 1_000_000, 10, 4),
            "small lists always scan"
        );
        assert!(!prefer_exact_scan(500_000, 1_000_000, 64, 16));
    }
}

#[cfg(test)]
mod tests;
