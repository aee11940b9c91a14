//! The one type the engine talks to. It hides which structure answers a query: small
//! collections stay flat (exact, no graph memory, cheap deletes), large ones are promoted to
//! HNSW, and deletes in a graph are tombstones that a rebuild eventually reclaims.
//!
//! Locking: one `RwLock` around the state. Searches take it shared and never block each other;
//! a remove takes it exclusively for its tombstone, an insert only to store its vector (it
//! grows full arrays beforehand and links its node under the upgradable lock, which searches
//! share). Promotion and compaction are
//! never done by an insert or a remove: they only make a build *wanted*, and whoever owns
//! background work runs [`VectorIndex::build_if_wanted`], which builds beside the live state
//! and holds the exclusive lock only to swap (see `rebuild`). Per-search buffers come from a
//! pool outside the lock.

mod image;
mod rebuild;

use bulkhead_core::Metric;
use parking_lot::{Mutex, RwLock, RwLockUpgradableReadGuard, RwLockWriteGuard};

use crate::error::{IndexError, Result};
use crate::flat;
use crate::hnsw::{GraphRoom, Hnsw};
use crate::params::{IndexParams, Quantization};
use crate::scratch::{Scratch, ScratchPool};
use crate::store::{StoreRoom, VectorStore};
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
    /// While a build runs: what changed since it took its snapshot, for it to replay.
    changes_during_build: Mutex<Option<Vec<rebuild::Change>>>,
    scratch: ScratchPool,
}

pub use image::IndexImage;
pub use rebuild::{BuildOptions, BuildReason, BuildReport};

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
    /// Bumped by every rebuild, which replaces the store (see `image`).
    generation: u64,
}

/// Grown copies of a state's full arrays, made beside searches (see [`VectorIndex::insert`]).
#[derive(Debug)]
struct Room {
    store: StoreRoom,
    graph: Option<GraphRoom>,
}

impl State {
    /// Adds a prepared vector: into the graph if there is one, else to the flat store.
    fn insert(
        &mut self,
        metric: Metric,
        label: u32,
        vector: &[f32],
        s: &mut Scratch,
    ) -> Result<()> {
        let slot = self.add(label, vector)?;
        if let Some(g) = &self.graph {
            g.link(&self.store.space(metric), slot, s);
        }
        Ok(())
    }

    /// Stores a prepared vector and, in a graph, adds its node unlinked; returns its slot.
    /// What is left (`Hnsw::link`) needs only shared access.
    fn add(&mut self, label: u32, vector: &[f32]) -> Result<u32> {
        let slot = self.store.push(label, vector)?;
        if let Some(g) = &mut self.graph {
            g.add_node();
        }
        Ok(slot)
    }

    /// Copies, grown, of the arrays one more [`State::add`] would have to grow (see
    /// [`VectorIndex::insert`]).
    fn room_for_one(&self) -> Room {
        Room {
            store: self.store.room_for_one(),
            graph: self.graph.as_ref().map(Hnsw::room_for_one),
        }
    }

    /// Swaps in a room made from this state as it is; `room` keeps what it replaced.
    fn install(&mut self, room: &mut Room) {
        self.store.install(&mut room.store);
        if let (Some(graph), Some(grown)) = (&mut self.graph, &mut room.graph) {
            graph.install(grown);
        }
    }

    /// Removes `label`: a tombstone in a graph, a swap-remove while flat.
    fn remove(&mut self, label: u32) -> bool {
        if self.graph.is_some() {
            self.store.tombstone(label)
        } else {
            self.store.swap_remove(label)
        }
    }

    /// The build this state calls for under `params`, if any.
    fn wanted_build(&self, params: &IndexParams) -> Option<BuildReason> {
        match &self.graph {
            None if self.store.live() > params.flat_threshold => Some(BuildReason::Promote),
            Some(_)
                if self.store.tombstones().len() as f64
                    > f64::from(params.max_tombstone_ratio) * self.store.slots() as f64 =>
            {
                Some(BuildReason::Compact)
            }
            _ => None,
        }
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
                store: VectorStore::new(dim, params.quantization == Quantization::Int8),
                graph: None,
                generation: 0,
            }),
            changes_during_build: Mutex::new(None),
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
    /// label is already live, or (cosine) the vector is zero. Never builds a graph: past
    /// `flat_threshold` it makes a promotion wanted (see [`VectorIndex::wanted_build`]).
    ///
    /// An insert holds the upgradable lock throughout, so inserts run one at a time while
    /// searches go on beside them. The exclusive lock is held only to swap in arrays grown
    /// beforehand, store the vector and add its node: when an array is full, its copy at twice
    /// the size (for a big collection, gigabytes to copy and fault in) is made under the
    /// upgradable lock, not the exclusive one. Linking the node (nearly all the work) runs
    /// under the upgradable lock again, with the graph's own per-node locks (the ones a
    /// parallel build uses).
    pub fn insert(&self, label: u32, vector: &[f32]) -> Result<()> {
        self.insert_with(label, vector, || {})
    }

    /// [`VectorIndex::insert`], calling `room_made` once the room is made and before the
    /// exclusive lock is taken (tests use it to act at that moment).
    fn insert_with(&self, label: u32, vector: &[f32], room_made: impl FnOnce()) -> Result<()> {
        let v = self.prepare(vector)?;
        let state = self.state.upgradable_read();
        let mut room = state.room_for_one();
        room_made();
        let mut state = RwLockUpgradableReadGuard::upgrade(state);
        state.install(&mut room);
        let slot = state.add(label, &v)?;
        self.record_change(rebuild::Change::Inserted(label));
        let state = RwLockWriteGuard::downgrade_to_upgradable(state);
        if let Some(g) = &state.graph {
            let mut s = self.scratch.take(state.store.slots());
            g.link(&state.store.space(self.metric), slot, &mut s);
            self.scratch.put(s);
        }
        drop(state);
        // The replaced arrays are freed with no lock held.
        drop(room);
        Ok(())
    }

    /// Removes `label`; returns whether it was live. In a graph this leaves a tombstone; once
    /// tombstones exceed `max_tombstone_ratio` of the nodes a compaction is wanted.
    pub fn remove(&self, label: u32) -> bool {
        let mut state = self.state.write();
        let removed = state.remove(label);
        if removed {
            self.record_change(rebuild::Change::Removed(label));
        }
        removed
    }

    /// The rebuild the index wants now, if any: a promotion once flat and past
    /// `flat_threshold`, a compaction once tombstones pass `max_tombstone_ratio`.
    pub fn wanted_build(&self) -> Option<BuildReason> {
        self.state.read().wanted_build(&self.params)
    }

    /// Whether a build is running.
    pub fn is_building(&self) -> bool {
        self.changes_during_build.lock().is_some()
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

        let space = state.store.space(self.metric);
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
