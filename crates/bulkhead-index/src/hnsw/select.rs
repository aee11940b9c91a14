//! Neighbour selection decides graph quality. Keeping simply the M closest candidates clusters
//! links inside dense regions; the heuristic (Malkov & Yashunin, algorithm 4, as in hnswlib's
//! `getNeighborsByHeuristic2`) skips a candidate that is closer to an already kept neighbour
//! than to the base node, so links spread out in different directions and the graph stays
//! navigable between clusters.

use super::Space;
use crate::scratch::Candidate;

/// Chooses at most `m` of `sorted` (ascending by distance to the base node) into `out`.
pub(crate) fn select_heuristic(
    space: &Space<'_>,
    sorted: &[Candidate],
    m: usize,
    out: &mut Vec<Candidate>,
) {
    out.clear();
    if sorted.len() < m {
        out.extend_from_slice(sorted);
        return;
    }
    for &c in sorted {
        if out.len() >= m {
            break;
        }
        if out
            .iter()
            .all(|kept| space.between(c.id, kept.id) >= c.dist)
        {
            out.push(c);
        }
    }
}
