//! Per-search working memory is pooled so a query performs no heap allocation in steady state:
//! at tens of thousands of queries per second the allocator would otherwise show up in profiles.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use parking_lot::Mutex;

use crate::quantized::QueryCodes;

/// A node id paired with its distance to the query, ordered by distance (then id, to make the
/// order total and results deterministic).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub dist: f32,
    pub id: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.id.cmp(&other.id))
    }
}

/// Marks nodes seen during one search. Clearing is O(1): bumping the epoch invalidates all
/// marks; the array is only zeroed when the 16-bit epoch wraps.
#[derive(Debug, Default)]
pub(crate) struct VisitedList {
    marks: Vec<u16>,
    epoch: u16,
}

impl VisitedList {
    /// Starts a new search over `n` nodes.
    pub fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n.next_power_of_two().max(1024), 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `id`; returns `true` if it was not yet marked in this search.
    #[inline]
    pub fn insert(&mut self, id: u32) -> bool {
        let m = &mut self.marks[id as usize];
        if *m == self.epoch {
            false
        } else {
            *m = self.epoch;
            true
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.marks.capacity() * size_of::<u16>()
    }
}

/// Everything one graph search needs besides the graph itself.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub visited: VisitedList,
    /// Nodes still to expand, closest first.
    pub candidates: BinaryHeap<Reverse<Candidate>>,
    /// Best nodes found so far, farthest on top.
    pub results: BinaryHeap<Candidate>,
    /// Unvisited neighbours of the node being expanded.
    pub batch: Vec<u32>,
    /// The query's codes, on a quantized index.
    pub query_codes: QueryCodes,
}

impl Scratch {
    pub fn reset(&mut self, n: usize) {
        self.visited.reset(n);
        self.candidates.clear();
        self.results.clear();
        self.batch.clear();
    }

    pub fn heap_bytes(&self) -> usize {
        self.visited.heap_bytes()
            + (self.candidates.capacity() + self.results.capacity()) * size_of::<Candidate>()
            + self.batch.capacity() * size_of::<u32>()
            + self.query_codes.codes.capacity()
    }
}

/// Pool of [`Scratch`] buffers; a search takes one and gives it back, so concurrent searches
/// only contend on a mutex held for a pop or a push.
#[derive(Debug, Default)]
pub(crate) struct ScratchPool {
    free: Mutex<Vec<Scratch>>,
}

/// Buffers beyond this many idle ones are dropped instead of pooled.
const MAX_POOLED: usize = 64;

impl ScratchPool {
    pub fn take(&self, n: usize) -> Scratch {
        let mut s = self.free.lock().pop().unwrap_or_default();
        s.reset(n);
        s
    }

    pub fn put(&self, s: Scratch) {
        let mut free = self.free.lock();
        if free.len() < MAX_POOLED {
            free.push(s);
        }
    }

    /// Drops all pooled buffers (after a compaction shrinks the graph, for instance).
    pub fn clear(&self) {
        self.free.lock().clear();
    }

    pub fn heap_bytes(&self) -> usize {
        self.free.lock().iter().map(Scratch::heap_bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_epochs_and_wrap() {
        let mut v = VisitedList::default();
        v.reset(10);
        assert!(v.insert(3));
        assert!(!v.insert(3));
        for _ in 0..70_000 {
            v.reset(10);
            assert!(v.insert(3));
            assert!(!v.insert(3));
        }
    }

    #[test]
    fn candidate_order_is_total() {
        let mut h = BinaryHeap::new();
        h.push(Candidate { dist: 1.0, id: 1 });
        h.push(Candidate {
            dist: f32::NAN,
            id: 2,
        });
        h.push(Candidate { dist: -1.0, id: 3 });
        assert_eq!(h.pop().unwrap().id, 2);
        assert_eq!(h.pop().unwrap().id, 1);
    }
}
