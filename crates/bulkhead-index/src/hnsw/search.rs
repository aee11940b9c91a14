//! The beam search every query and every insert runs. It is the hottest code in the product, so
//! it is generic over the acceptance test (the unfiltered case compiles to no check at all) and
//! works entirely inside a pooled [`Scratch`]. `LOCKED` is set only by a build, whose threads
//! read lists others are rewriting; a query's instantiation has no lock in it.

use std::cmp::Reverse;

use super::{Hnsw, Space, Target};
use crate::pace::CpuPacer;
use crate::prefetch::prefetch_bytes;
use crate::scratch::{Candidate, Scratch};

impl Hnsw {
    /// Greedy descent on one upper level: move to the closest neighbour until none is closer.
    pub(super) fn greedy<const LOCKED: bool>(
        &self,
        space: &Space<'_>,
        q: &Target<'_>,
        mut cur: Candidate,
        level: usize,
    ) -> Candidate {
        loop {
            let mut moved = false;
            self.for_each_link::<LOCKED>(cur.id, level, |n| {
                let dist = space.dist_to(q, n);
                if dist < cur.dist {
                    cur = Candidate { dist, id: n };
                    moved = true;
                }
            });
            if !moved {
                return cur;
            }
        }
    }

    /// Beam search of width `ef` on `level` from `entry`, leaving up to `ef` accepted nodes in
    /// `s.results` (farthest on top). Nodes failing `accept` are expanded but not kept; when
    /// `filtering` is set the search keeps going until `ef` accepted nodes are found (or the
    /// reachable graph is exhausted) instead of stopping at the first non-improving candidate.
    /// A long walk (a large `ef`, a selective filter) offers the CPU as it goes (`CpuPacer`).
    /// `s` must have been reset for `self.len()` nodes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn search_layer<F: Fn(u32) -> bool, const LOCKED: bool>(
        &self,
        space: &Space<'_>,
        q: &Target<'_>,
        entry: Candidate,
        ef: usize,
        level: usize,
        s: &mut Scratch,
        accept: F,
        filtering: bool,
    ) {
        let Scratch {
            visited,
            candidates,
            results,
            batch,
            ..
        } = s;
        visited.insert(entry.id);
        let mut bound = f32::INFINITY;
        if accept(entry.id) {
            results.push(entry);
            bound = entry.dist;
        }
        candidates.push(Reverse(entry));

        let mut pacer = CpuPacer::new();
        while let Some(Reverse(c)) = candidates.pop() {
            if c.dist > bound && (results.len() >= ef || !filtering) {
                break;
            }
            pacer.step();
            // Gather unvisited neighbours first, prefetching the first line of each vector so
            // the loads are in flight together before the first distance needs one; each full
            // vector is then prefetched one step ahead of its distance computation. (Measured
            // on 60k x 384: prefetching every whole vector up front saturates the fill buffers
            // and is slower than no prefetch at all.)
            batch.clear();
            self.for_each_link::<LOCKED>(c.id, level, |n| {
                if visited.insert(n) {
                    prefetch_bytes(space.walk_bytes(n).0, 1);
                    batch.push(n);
                }
            });
            for (i, &n) in batch.iter().enumerate() {
                if let Some(&next) = batch.get(i + 1) {
                    let (start, len) = space.walk_bytes(next);
                    prefetch_bytes(start, len);
                }
                let dist = space.dist_to(q, n);
                if results.len() < ef || dist < bound {
                    candidates.push(Reverse(Candidate { dist, id: n }));
                    if level == 0 {
                        // Its neighbour list will be read when it is popped.
                        prefetch_bytes(self.links0_ptr(n), 1);
                    }
                    if accept(n) {
                        results.push(Candidate { dist, id: n });
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                    if let Some(top) = results.peek() {
                        bound = top.dist;
                    }
                }
            }
        }
    }

    /// Approximate `k` nearest accepted nodes to `q`, closest first, with exact distances. `ef`
    /// is the beam width on level 0 (raised to `k` if smaller). On a quantized space the walk
    /// runs on codes and its `ef` best are re-ranked by their exact distances.
    #[allow(clippy::too_many_arguments)]
    pub fn knn<F: Fn(u32) -> bool>(
        &self,
        space: &Space<'_>,
        q: &[f32],
        k: usize,
        ef: usize,
        s: &mut Scratch,
        accept: F,
        filtering: bool,
    ) -> Vec<Candidate> {
        let Some((entry, max_level)) = self.entry() else {
            return Vec::new();
        };
        let mut codes = std::mem::take(&mut s.query_codes);
        let target = if space.is_quantized() {
            codes.set(q);
            Target::Codes(&codes)
        } else {
            Target::Vector(q)
        };
        let mut cur = Candidate {
            dist: space.dist_to(&target, entry),
            id: entry,
        };
        for level in (1..=max_level).rev() {
            cur = self.greedy::<false>(space, &target, cur, level);
        }
        s.reset(self.len());
        self.search_layer::<_, false>(space, &target, cur, ef.max(k), 0, s, accept, filtering);
        s.query_codes = codes;
        let mut out: Vec<Candidate> = s.results.drain().collect();
        if space.is_quantized() {
            for c in &mut out {
                c.dist = space.exact(q, c.id);
            }
        }
        out.sort_unstable();
        out.truncate(k);
        out
    }
}
