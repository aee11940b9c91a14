//! The graph half of the index: a hand-written HNSW (Malkov & Yashunin) over slots of a
//! [`crate::store::VectorStore`]. The graph owns only links; vectors stay in the store so the
//! flat and graph paths share one copy, and compaction can rebuild links from it.
//!
//! Layout is chosen for the search loop: level-0 links (where nearly all work happens) sit in
//! one flat array with a fixed stride of `1 + 2M` `u32`s per node (count, then ids), so a node's
//! neighbour list is one or two cache lines at a computable address. Upper levels are rare
//! (1/M of nodes) and get a small boxed array per node.
//!
//! Links are atomics so that a build can insert from several threads at once (hnswlib's
//! scheme): a thread holds a node's stripe lock while it reads or rewrites that node's list,
//! never two stripes at a time, and holds the entry-point lock for the whole insert only of a
//! node that becomes the new top. Queries run on a graph no one is writing (the index's lock
//! guarantees it), so they read links without locking; relaxed atomic loads compile to plain
//! loads, and the search loop costs what it did with `u32`s.

mod search;
mod select;

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use bulkhead_core::Metric;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::distance::distance;
use crate::params::IndexParams;
use crate::quantized::{QueryCodes, distance_from_ip, dot_codes, split_record};
use crate::scratch::{Candidate, Scratch};
use select::select_heuristic;

/// Fixed seed for level generation: the same inserts in the same order build the same graph,
/// which keeps tests and benchmarks reproducible.
const LEVEL_SEED: u64 = 0xB01C_4EAD_5EED_0001;
/// Levels above this are never drawn (probability ~M^-16, i.e. never in practice).
const MAX_LEVEL: usize = 16;
/// Locks guarding link lists during a concurrent build, shared by node id modulo this: one
/// lock per node would cost memory per node for a contention that is already rare.
const LINK_STRIPES: usize = 4096;
/// A build reports its progress after this many nodes.
const PROGRESS_EVERY: usize = 4096;

/// The int8 records of a quantized store, `stride` bytes per slot (see `crate::quantized`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codes<'a> {
    pub records: &'a [i8],
    pub stride: usize,
}

impl<'a> Codes<'a> {
    /// Codes, scale and squared norm of node `id`.
    #[inline]
    fn of(&self, id: u32) -> (&'a [i8], f32, f32) {
        let start = id as usize * self.stride;
        split_record(&self.records[start..start + self.stride])
    }
}

/// What a walk measures distances to: a query vector (exact), a query's codes, or a node of
/// the graph (an insert's own vector).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Vector(&'a [f32]),
    Codes(&'a QueryCodes),
    Node(u32),
}

/// The vectors a graph is built over, with the metric to compare them by. With codes, every
/// distance the walk takes is approximate (`dist_to`); `exact` is for the final ranking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Space<'a> {
    data: &'a [f32],
    dim: usize,
    metric: Metric,
    codes: Option<Codes<'a>>,
}

impl<'a> Space<'a> {
    pub fn new(data: &'a [f32], dim: usize, metric: Metric, codes: Option<Codes<'a>>) -> Self {
        Self {
            data,
            dim,
            metric,
            codes,
        }
    }

    #[inline]
    pub fn vector(&self, id: u32) -> &'a [f32] {
        let start = id as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// Whether walks run on codes.
    pub fn is_quantized(&self) -> bool {
        self.codes.is_some()
    }

    /// The exact distance from `q` to node `id`.
    #[inline]
    pub fn exact(&self, q: &[f32], id: u32) -> f32 {
        distance(self.metric, q, self.vector(id))
    }

    /// The distance the walk uses from `target` to node `id`.
    #[inline]
    pub fn dist_to(&self, target: &Target<'_>, id: u32) -> f32 {
        match (target, &self.codes) {
            (Target::Vector(q), _) => self.exact(q, id),
            (Target::Node(a), None) => self.exact(self.vector(*a), id),
            (Target::Node(a), Some(c)) => self.between_codes(c, *a, id),
            (Target::Codes(q), Some(c)) => {
                let (codes, scale, sqnorm) = c.of(id);
                let ip = dot_codes(&q.codes, codes) * q.scale * scale;
                distance_from_ip(self.metric, ip, q.sqnorm, sqnorm)
            }
            // Codes of a query are only made for a quantized space (`Hnsw::knn`).
            (Target::Codes(_), None) => f32::INFINITY,
        }
    }

    /// The distance the walk uses between two nodes.
    #[inline]
    pub fn between(&self, a: u32, b: u32) -> f32 {
        self.dist_to(&Target::Node(a), b)
    }

    #[inline]
    fn between_codes(&self, c: &Codes<'a>, a: u32, b: u32) -> f32 {
        let ((ca, sa, na), (cb, sb, nb)) = (c.of(a), c.of(b));
        distance_from_ip(self.metric, dot_codes(ca, cb) * sa * sb, na, nb)
    }

    /// Start of what the walk reads of node `id`, and its length in bytes, for prefetching.
    #[inline]
    pub fn walk_bytes(&self, id: u32) -> (*const u8, usize) {
        match &self.codes {
            Some(c) => (
                c.records
                    .as_ptr()
                    .wrapping_add(id as usize * c.stride)
                    .cast(),
                c.stride,
            ),
            None => (
                self.data
                    .as_ptr()
                    .wrapping_add(id as usize * self.dim)
                    .cast(),
                self.dim * size_of::<f32>(),
            ),
        }
    }
}

/// The node searches start from, and the highest level in the graph.
#[derive(Debug, Clone, Copy, Default)]
struct Top {
    entry: Option<u32>,
    max_level: usize,
}

/// Replacements, with room for one more node, for those of a graph's arrays that are full
/// (see [`Hnsw::room_for_one`]); after [`Hnsw::install`], the arrays they replaced.
#[derive(Debug, Default)]
pub(crate) struct GraphRoom {
    links0: Option<Vec<AtomicU32>>,
    upper: Option<Vec<Box<[AtomicU32]>>>,
    levels: Option<Vec<u8>>,
}

/// HNSW links over node ids `0..len()`, which are store slots.
#[derive(Debug)]
pub(crate) struct Hnsw {
    m: usize,
    m0: usize,
    ef_construction: usize,
    level_mult: f64,
    /// `len() * (1 + m0)`: per node a count followed by up to `m0` neighbour ids.
    links0: Vec<AtomicU32>,
    /// Per node, `level * (1 + m)` entries for levels `1..=level`; empty for level-0 nodes.
    upper: Vec<Box<[AtomicU32]>>,
    levels: Vec<u8>,
    top: Mutex<Top>,
    stripes: Box<[Mutex<()>]>,
    rng: StdRng,
}

impl Hnsw {
    pub fn new(params: &IndexParams, capacity: usize) -> Self {
        let m0 = 2 * params.m;
        let mut links0 = Vec::new();
        crate::hugepages::reserve_with(&mut links0, capacity * (1 + m0), copy_atomic);
        Self {
            m: params.m,
            m0,
            ef_construction: params.ef_construction,
            level_mult: 1.0 / (params.m as f64).ln(),
            links0,
            upper: Vec::with_capacity(capacity),
            levels: Vec::with_capacity(capacity),
            top: Mutex::new(Top::default()),
            stripes: (0..LINK_STRIPES).map(|_| Mutex::new(())).collect(),
            rng: StdRng::seed_from_u64(LEVEL_SEED),
        }
    }

    /// Builds a graph over the first `n` vectors of `space` with `threads` threads (the caller's
    /// among them), calling `progress` with the count of nodes linked every few thousand.
    /// Returns `None` if `cancelled` turned true (checked before each node).
    /// Levels are drawn in node order, so one thread builds the same graph every time; with
    /// more, the order in which nodes meet varies and so do the links, not their quality.
    pub fn build(
        params: &IndexParams,
        space: &Space<'_>,
        n: usize,
        threads: usize,
        progress: &(dyn Fn(usize) + Sync),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Option<Self> {
        let mut g = Self::new(params, n);
        for _ in 0..n {
            g.add_node();
        }
        if n == 0 {
            return Some(g);
        }
        // The first node becomes the entry point before anyone else needs one.
        g.link(space, 0, &mut Scratch::default());
        let next = AtomicUsize::new(1);
        let done = AtomicUsize::new(1);
        let work = || {
            let mut scratch = Scratch::default();
            loop {
                let id = next.fetch_add(1, Relaxed);
                if id >= n || cancelled() {
                    return;
                }
                g.link(space, id as u32, &mut scratch);
                // Builds run at background priority beside requests; the scheduler would let
                // this thread finish its time slice before a waiting request's thread gets the
                // CPU, so it is offered after each node (at once back with nothing waiting).
                std::thread::yield_now();
                let linked = done.fetch_add(1, Relaxed) + 1;
                if linked.is_multiple_of(PROGRESS_EVERY) {
                    progress(linked);
                }
            }
        };
        // Helpers inherit the caller's scheduling priority (a per-thread attribute on Linux).
        std::thread::scope(|s| {
            for i in 1..threads.clamp(1, n) {
                std::thread::Builder::new()
                    .name(format!("bulkhead-build-{i}"))
                    .spawn_scoped(s, work)
                    .expect("spawning an index build thread");
            }
            work();
        });
        if cancelled() {
            return None;
        }
        progress(n);
        Some(g)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    #[inline]
    fn max_degree(&self, level: usize) -> usize {
        if level == 0 { self.m0 } else { self.m }
    }

    #[inline]
    fn stripe(&self, id: u32) -> &Mutex<()> {
        &self.stripes[id as usize % LINK_STRIPES]
    }

    /// `id`'s count-prefixed list at `level`.
    #[inline]
    fn list(&self, id: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let off = id as usize * (1 + self.m0);
            &self.links0[off..off + 1 + self.m0]
        } else {
            let off = (level - 1) * (1 + self.m);
            &self.upper[id as usize][off..off + 1 + self.m]
        }
    }

    /// Calls `f` with each neighbour of `id` at `level`. `LOCKED` takes the node's stripe lock
    /// for the read, as a build must while other threads rewrite lists; queries read a graph
    /// no one writes and skip it.
    #[inline]
    pub(super) fn for_each_link<const LOCKED: bool>(
        &self,
        id: u32,
        level: usize,
        mut f: impl FnMut(u32),
    ) {
        let _guard = LOCKED.then(|| self.stripe(id).lock());
        let list = self.list(id, level);
        let n = (list[0].load(Relaxed) as usize).min(list.len() - 1);
        for link in &list[1..=n] {
            f(link.load(Relaxed));
        }
    }

    /// Neighbours of `id` at `level`, copied out (for checks; searches use `for_each_link`).
    #[cfg(test)]
    pub fn links(&self, id: u32, level: usize) -> Vec<u32> {
        let mut out = Vec::new();
        self.for_each_link::<true>(id, level, |n| out.push(n));
        out
    }

    /// The entry point and top level, or `None` for an empty graph.
    pub(super) fn entry(&self) -> Option<(u32, usize)> {
        let top = *self.top.lock();
        top.entry.map(|e| (e, top.max_level))
    }

    /// Address of `id`'s level-0 list, for prefetching.
    #[inline]
    pub fn links0_ptr(&self, id: u32) -> *const AtomicU32 {
        self.links0
            .as_ptr()
            .wrapping_add(id as usize * (1 + self.m0))
    }

    /// Overwrites a list; the caller holds its stripe lock.
    fn write_list(list: &[AtomicU32], ids: impl ExactSizeIterator<Item = u32>) {
        debug_assert!(ids.len() < list.len());
        list[0].store(ids.len() as u32, Relaxed);
        for (slot, n) in list[1..].iter().zip(ids) {
            slot.store(n, Relaxed);
        }
    }

    fn random_level(&mut self) -> usize {
        let u: f64 = self.rng.random();
        let level = -(1.0 - u).ln() * self.level_mult;
        (level as usize).min(MAX_LEVEL)
    }

    /// Appends an unlinked node with a freshly drawn level; `link` it next.
    pub fn add_node(&mut self) {
        let level = self.random_level();
        self.levels.push(level as u8);
        crate::hugepages::reserve_with(&mut self.links0, 1 + self.m0, copy_atomic);
        self.links0.extend((0..=self.m0).map(|_| AtomicU32::new(0)));
        self.upper.push(
            (0..level * (1 + self.m))
                .map(|_| AtomicU32::new(0))
                .collect(),
        );
    }

    /// Copies of the arrays that one more [`Hnsw::add_node`] would have to grow, grown. Made
    /// from a graph no one is writing (links included), and installed before anyone does.
    pub fn room_for_one(&self) -> GraphRoom {
        GraphRoom {
            links0: crate::hugepages::grown_with(&self.links0, 1 + self.m0, copy_atomic),
            upper: crate::hugepages::grown_with(&self.upper, 1, |list| {
                list.iter().map(copy_atomic).collect()
            }),
            levels: crate::hugepages::grown(&self.levels, 1),
        }
    }

    /// Swaps in the arrays of `room`, which must have been made from this graph as it is;
    /// `room` is left holding the ones they replace.
    pub fn install(&mut self, room: &mut GraphRoom) {
        fn swap<T>(live: &mut Vec<T>, grown: &mut Option<Vec<T>>) {
            if let Some(grown) = grown {
                debug_assert_eq!(live.len(), grown.len(), "room made from another graph");
                std::mem::swap(live, grown);
            }
        }
        swap(&mut self.links0, &mut room.links0);
        swap(&mut self.upper, &mut room.upper);
        swap(&mut self.levels, &mut room.levels);
    }

    /// Links the added node `id` into the graph. Safe to run for different nodes at once, and
    /// beside searches (which may see a list half rewritten: every id in it is a node).
    pub fn link(&self, space: &Space<'_>, id: u32, scratch: &mut Scratch) {
        let level = self.levels[id as usize] as usize;
        let mut top = self.top.lock();
        let Some(entry) = top.entry else {
            *top = Top {
                entry: Some(id),
                max_level: level,
            };
            return;
        };
        let max_level = top.max_level;
        // A node that will become the new top keeps the lock until it is linked, so no other
        // insert starts from a half-linked entry point.
        let new_top = (level > max_level).then_some(top);

        let q = Target::Node(id);
        let mut cur = Candidate {
            dist: space.dist_to(&q, entry),
            id: entry,
        };
        for lc in (level + 1..=max_level).rev() {
            cur = self.greedy::<true>(space, &q, cur, lc);
        }

        // The node's own lists are all written before any other node links to it: a concurrent
        // insert that reached it on an upper level with its level-0 list still empty would
        // link only to it, and then lose that back-link when the list is written.
        let mut found = Vec::with_capacity(self.ef_construction);
        let mut chosen: Vec<(usize, Vec<Candidate>)> = Vec::with_capacity(level + 1);
        for lc in (0..=level.min(max_level)).rev() {
            scratch.reset(self.len());
            self.search_layer::<_, true>(
                space,
                &q,
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

            let mut selected = Vec::with_capacity(self.m0 + 1);
            select_heuristic(space, &found, self.m, &mut selected);
            {
                let _guard = self.stripe(id).lock();
                Self::write_list(self.list(id, lc), selected.iter().map(|c| c.id));
            }
            cur = selected[0];
            chosen.push((lc, selected));
        }
        let mut pool = Vec::with_capacity(self.m0 + 1);
        for (lc, selected) in &chosen {
            for &s in selected {
                self.link_back(
                    space,
                    s.id,
                    Candidate { dist: s.dist, id },
                    *lc,
                    &mut pool,
                    &mut found,
                );
            }
        }

        if let Some(mut top) = new_top {
            *top = Top {
                entry: Some(id),
                max_level: level,
            };
        }
    }

    /// Adds `new` to `node`'s list at `level`, re-selecting by the heuristic when it is full.
    fn link_back(
        &self,
        space: &Space<'_>,
        node: u32,
        new: Candidate,
        level: usize,
        pool: &mut Vec<Candidate>,
        out: &mut Vec<Candidate>,
    ) {
        let max = self.max_degree(level);
        let _guard = self.stripe(node).lock();
        let list = self.list(node, level);
        let n = list[0].load(Relaxed) as usize;
        if n < max {
            list[1 + n].store(new.id, Relaxed);
            list[0].store(n as u32 + 1, Relaxed);
            return;
        }
        pool.clear();
        pool.extend(list[1..=n].iter().map(|x| {
            let x = x.load(Relaxed);
            Candidate {
                dist: space.between(node, x),
                id: x,
            }
        }));
        pool.push(new);
        pool.sort_unstable();
        // `out` is only scratch here; the caller has finished reading it.
        let mut kept = std::mem::take(out);
        select_heuristic(space, pool, max, &mut kept);
        Self::write_list(list, kept.iter().map(|c| c.id));
        *out = kept;
    }

    pub fn heap_bytes(&self) -> usize {
        self.links0.capacity() * size_of::<AtomicU32>()
            + self.upper.capacity() * size_of::<Box<[AtomicU32]>>()
            + self
                .upper
                .iter()
                .map(|u| u.len() * size_of::<AtomicU32>())
                .sum::<usize>()
            + self.levels.capacity()
            + self.stripes.len() * size_of::<Mutex<()>>()
    }
}

/// A graph's links as plain arrays, for an index image (`crate::index::image`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphImage {
    pub levels: Vec<u8>,
    /// `levels.len() * (1 + 2m)`, as in the graph.
    pub links0: Vec<u32>,
    /// The upper-level lists of every node above level 0, in node order.
    pub upper: Vec<u32>,
    pub entry: Option<u32>,
    pub max_level: u32,
}

impl Hnsw {
    /// The graph's links, copied out.
    pub fn image(&self) -> GraphImage {
        let top = *self.top.lock();
        GraphImage {
            levels: self.levels.clone(),
            links0: self.links0.iter().map(|a| a.load(Relaxed)).collect(),
            upper: self
                .upper
                .iter()
                .flat_map(|u| u.iter().map(|a| a.load(Relaxed)))
                .collect(),
            entry: top.entry,
            max_level: top.max_level as u32,
        }
    }

    /// The graph an image describes, after checking that every count, level and link in it is
    /// in range (a checksum catches corruption; this keeps a wrong file from ever indexing out
    /// of bounds).
    pub fn from_image(params: &IndexParams, image: GraphImage) -> Result<Self, String> {
        let mut g = Self::new(params, 0);
        let n = image.levels.len();
        let stride0 = 1 + g.m0;
        if image.links0.len() != n * stride0 {
            return Err(format!(
                "{} level-0 links for {n} nodes",
                image.links0.len()
            ));
        }
        let check_list = |list: &[u32], max: usize| -> Result<(), String> {
            let count = list[0] as usize;
            if count > max || list[1..=count].iter().any(|&id| id as usize >= n) {
                return Err("a link list is out of range".into());
            }
            Ok(())
        };
        for list in image.links0.chunks_exact(stride0) {
            check_list(list, g.m0)?;
        }
        let stride = 1 + g.m;
        let mut upper = image.upper.chunks_exact(stride);
        for &level in &image.levels {
            if usize::from(level) > MAX_LEVEL {
                return Err(format!("level {level} above {MAX_LEVEL}"));
            }
            let mut node = Vec::with_capacity(usize::from(level) * stride);
            for _ in 0..level {
                let list = upper.next().ok_or("upper links end early")?;
                check_list(list, g.m)?;
                node.extend(list.iter().map(|&x| AtomicU32::new(x)));
            }
            g.upper.push(node.into_boxed_slice());
        }
        if upper.next().is_some() || !upper.remainder().is_empty() {
            return Err("upper links left over".into());
        }
        let entry_ok = match image.entry {
            Some(e) => (e as usize) < n && image.levels[e as usize] as u32 == image.max_level,
            None => n == 0,
        };
        if !entry_ok {
            return Err("the entry point is not a node of the top level".into());
        }
        crate::hugepages::reserve_with(&mut g.links0, image.links0.len(), copy_atomic);
        g.links0
            .extend(image.links0.into_iter().map(AtomicU32::new));
        g.levels = image.levels;
        *g.top.lock() = Top {
            entry: image.entry,
            max_level: image.max_level as usize,
        };
        // Nodes added later draw their levels from a sequence of their own, reproducibly.
        g.rng = StdRng::seed_from_u64(LEVEL_SEED ^ n as u64);
        Ok(g)
    }
}

fn copy_atomic(a: &AtomicU32) -> AtomicU32 {
    AtomicU32::new(a.load(Relaxed))
}
