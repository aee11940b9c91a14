//! The graph half of the index: a hand-written HNSW (Malkov & Yashunin) over slots of a
//! [`crate::store::VectorStore`]. The graph owns only links; vectors stay in the store so the
//! flat and graph paths share one copy, and compaction can rebuild links from it.
//!
//! Layout is chosen for the search loop: level-0 links (where nearly all work happens) sit in
//! one flat array with a fixed stride of `1 + 2M` `u32`s per node (count, then ids), so a node's
//! neighbour list is one or two cache lines at a computable address. Upper levels are rare
//! (1/M of nodes) and get a small boxed array per node.

mod search;
mod select;

use bulkhead_core::Metric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::distance::distance;
use crate::params::IndexParams;
use crate::scratch::{Candidate, Scratch};
use select::select_heuristic;

/// Fixed seed for level generation: the same inserts in the same order build the same graph,
/// which keeps tests and benchmarks reproducible.
const LEVEL_SEED: u64 = 0xB01C_4EAD_5EED_0001;
/// Levels above this are never drawn (probability ~M^-16, i.e. never in practice).
const MAX_LEVEL: usize = 16;

/// The vectors a graph is built over, with the metric to compare them by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Space<'a> {
    data: &'a [f32],
    dim: usize,
    metric: Metric,
}

impl<'a> Space<'a> {
    pub fn new(data: &'a [f32], dim: usize, metric: Metric) -> Self {
        Self { data, dim, metric }
    }

    #[inline]
    pub fn vector(&self, id: u32) -> &'a [f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    #[inline]
    pub fn dist(&self, q: &[f32], id: u32) -> f32 {
        distance(self.metric, q, self.vector(id))
    }

    #[inline]
    pub fn vector_ptr(&self, id: u32) -> *const f32 {
        self.data.as_ptr().wrapping_add(id as usize * self.dim)
    }

    pub fn vector_bytes(&self) -> usize {
        self.dim * size_of::<f32>()
    }
}

/// HNSW links over node ids `0..len()`, which are store slots.
#[derive(Debug)]
pub(crate) struct Hnsw {
    m: usize,
    m0: usize,
    ef_construction: usize,
    level_mult: f64,
    /// `len() * (1 + m0)`: per node a count followed by up to `m0` neighbour ids.
    links0: Vec<u32>,
    /// Per node, `level * (1 + m)` entries for levels `1..=level`; empty for level-0 nodes.
    upper: Vec<Box<[u32]>>,
    levels: Vec<u8>,
    entry: Option<u32>,
    max_level: usize,
    rng: StdRng,
}

impl Hnsw {
    pub fn new(params: &IndexParams, capacity: usize) -> Self {
        let m0 = 2 * params.m;
        let mut links0 = Vec::new();
        crate::hugepages::reserve(&mut links0, capacity * (1 + m0));
        Self {
            m: params.m,
            m0,
            ef_construction: params.ef_construction,
            level_mult: 1.0 / (params.m as f64).ln(),
            links0,
            upper: Vec::with_capacity(capacity),
            levels: Vec::with_capacity(capacity),
            entry: None,
            max_level: 0,
            rng: StdRng::seed_from_u64(LEVEL_SEED),
        }
    }

    /// Builds a graph over the first `n` vectors of `space`.
    pub fn build(params: &IndexParams, space: &Space<'_>, n: usize) -> Self {
        let mut g = Self::new(params, n);
        let mut scratch = Scratch::default();
        for id in 0..n as u32 {
            g.insert(space, id, &mut scratch);
        }
        g
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    #[inline]
    fn max_degree(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    /// Start of `id`'s count-prefixed list at `level`, as (array, offset).
    #[inline]
    fn list(&self, id: u32, level: usize) -> (&[u32], usize) {
        if level == 0 {
            (&self.links0, id as usize * (1 + self.m0))
        } else {
            (&self.upper[id as usize], (level - 1) * (1 + self.m))
        }
    }

    /// Neighbours of `id` at `level`.
    #[inline]
    pub fn links(&self, id: u32, level: usize) -> &[u32] {
        let (arr, off) = self.list(id, level);
        let n = arr[off] as usize;
        &arr[off + 1..off + 1 + n]
    }

    /// Address of `id`'s level-0 list, for prefetching.
    #[inline]
    pub fn links0_ptr(&self, id: u32) -> *const u32 {
        self.links0
            .as_ptr()
            .wrapping_add(id as usize * (1 + self.m0))
    }

    fn list_mut(&mut self, id: u32, level: usize) -> &mut [u32] {
        if level == 0 {
            let off = id as usize * (1 + self.m0);
            &mut self.links0[off..off + 1 + self.m0]
        } else {
            let off = (level - 1) * (1 + self.m);
            &mut self.upper[id as usize][off..off + 1 + self.m]
        }
    }

    fn set_links(&mut self, id: u32, level: usize, ids: impl ExactSizeIterator<Item = u32>) {
        let list = self.list_mut(id, level);
        debug_assert!(ids.len() < list.len());
        list[0] = ids.len() as u32;
        for (slot, n) in list[1..].iter_mut().zip(ids) {
            *slot = n;
        }
    }

    fn random_level(&mut self) -> usize {
        let u: f64 = self.rng.random();
        let level = -(1.0 - u).ln() * self.level_mult;
        (level as usize).min(MAX_LEVEL)
    }

    /// Adds node `id` (must equal `len()`), whose vector is `space.vector(id)`.
    pub fn insert(&mut self, space: &Space<'_>, id: u32, scratch: &mut Scratch) {
        debug_assert_eq!(id as usize, self.len());
        let level = self.random_level();
        self.levels.push(level as u8);
        crate::hugepages::reserve(&mut self.links0, 1 + self.m0);
        self.links0.resize(self.links0.len() + 1 + self.m0, 0);
        self.upper
            .push(vec![0; level * (1 + self.m)].into_boxed_slice());

        let Some(entry) = self.entry else {
            self.entry = Some(id);
            self.max_level = level;
            return;
        };
        let q = space.vector(id);
        let mut cur = Candidate {
            dist: space.dist(q, entry),
            id: entry,
        };
        for lc in (level + 1..=self.max_level).rev() {
            cur = self.greedy(space, q, cur, lc);
        }

        let mut found = Vec::with_capacity(self.ef_construction);
        let mut selected = Vec::with_capacity(self.m0 + 1);
        let mut pool = Vec::with_capacity(self.m0 + 1);
        for lc in (0..=level.min(self.max_level)).rev() {
            scratch.reset(self.len());
            self.search_layer(
                space,
                q,
                cur,
                self.ef_construction,
                lc,
                scratch,
                |_| true,
                false,
            );
            found.clear();
            found.extend(scratch.results.drain());
            found.sort_unstable();

            select_heuristic(space, &found, self.m, &mut selected);
            self.set_links(id, lc, selected.iter().map(|c| c.id));
            for &s in &selected {
                self.link_back(
                    space,
                    s.id,
                    Candidate { dist: s.dist, id },
                    lc,
                    &mut pool,
                    &mut found,
                );
            }
            cur = selected[0];
        }

        if level > self.max_level {
            self.max_level = level;
            self.entry = Some(id);
        }
    }

    /// Adds `new` to `node`'s list at `level`, re-selecting by the heuristic when it is full.
    fn link_back(
        &mut self,
        space: &Space<'_>,
        node: u32,
        new: Candidate,
        level: usize,
        pool: &mut Vec<Candidate>,
        out: &mut Vec<Candidate>,
    ) {
        let max = self.max_degree(level);
        let list = self.list_mut(node, level);
        let n = list[0] as usize;
        if n < max {
            list[1 + n] = new.id;
            list[0] += 1;
            return;
        }
        let nv = space.vector(node);
        pool.clear();
        pool.extend(list[1..=n].iter().map(|&x| Candidate {
            dist: space.dist(nv, x),
            id: x,
        }));
        pool.push(new);
        pool.sort_unstable();
        // `out` is only scratch here; the caller has finished reading it.
        let mut kept = std::mem::take(out);
        select_heuristic(space, pool, max, &mut kept);
        self.set_links(node, level, kept.iter().map(|c| c.id));
        *out = kept;
    }

    pub fn heap_bytes(&self) -> usize {
        self.links0.capacity() * size_of::<u32>()
            + self.upper.capacity() * size_of::<Box<[u32]>>()
            + self
                .upper
                .iter()
                .map(|u| u.len() * size_of::<u32>())
                .sum::<usize>()
            + self.levels.capacity()
    }
}
