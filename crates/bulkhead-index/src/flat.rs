//! Exact search. Below the promotion threshold (and for small allow-lists) a SIMD scan over
//! contiguous vectors is both exact and fast enough, and costs no graph memory.

use std::collections::BinaryHeap;

use bulkhead_core::Metric;

use crate::distance::distance;
use crate::pace::CpuPacer;
use crate::scratch::Candidate;
use crate::store::VectorStore;
use crate::types::Neighbor;

/// Keeps the `k` closest candidates seen so far.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Candidate>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Distance a new candidate must beat to enter the result.
    #[inline]
    pub fn bound(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |c| c.dist)
        }
    }

    #[inline]
    pub fn push(&mut self, c: Candidate) {
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut top) = self.heap.peek_mut()
            && c < *top
        {
            *top = c;
        }
    }

    /// Results closest first, with slots translated to labels.
    pub fn into_neighbors(self, store: &VectorStore) -> Vec<Neighbor> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|c| Neighbor {
                label: store.label(c.id),
                distance: c.dist,
            })
            .collect()
    }
}

/// Exact top-`k` over `slots`, keeping only slots for which `accept` holds. A long scan offers
/// the CPU as it goes (`CpuPacer`).
pub(crate) fn scan(
    store: &VectorStore,
    metric: Metric,
    query: &[f32],
    k: usize,
    slots: impl Iterator<Item = u32>,
    accept: impl Fn(u32) -> bool,
) -> Vec<Neighbor> {
    let mut top = TopK::new(k);
    let mut pacer = CpuPacer::new();
    for slot in slots {
        pacer.step();
        if accept(slot) {
            let dist = distance(metric, query, store.vector(slot));
            if dist < top.bound() {
                top.push(Candidate { dist, id: slot });
            }
        }
    }
    top.into_neighbors(store)
}
