//! Small value types shared by the flat and graph paths, kept apart so neither depends on the
//! other just to name a result or a filter.

use roaring::RoaringBitmap;

/// One search hit. `distance` follows [`crate::distance::distance`]: lower is closer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    pub label: u32,
    pub distance: f32,
}

/// Restricts which labels a search may return. Filtered-out vectors may still be traversed
/// by the graph search (they keep it connected) but are never part of the result.
#[derive(Debug, Default, Clone, Copy)]
pub struct SearchFilter<'a> {
    /// If set, only these labels may be returned.
    pub allow: Option<&'a RoaringBitmap>,
    /// If set, these labels are never returned.
    pub deny: Option<&'a RoaringBitmap>,
}

impl SearchFilter<'_> {
    /// Whether the filter restricts anything at all.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.allow.is_some() || self.deny.is_some()
    }

    /// Whether `label` may appear in a result.
    #[inline]
    pub fn accepts(&self, label: u32) -> bool {
        self.allow.is_none_or(|a| a.contains(label)) && self.deny.is_none_or(|d| !d.contains(label))
    }
}

/// Which structure currently answers searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// Exact scan over all stored vectors.
    Flat,
    /// Approximate search over a hierarchical navigable small-world graph.
    Hnsw,
}
