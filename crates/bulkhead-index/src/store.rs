//! Vectors live in one contiguous `Vec<f32>` indexed by a dense internal slot, because both the
//! exact scan and the graph walk are bound by memory traffic: one allocation per vector would
//! scatter them across the heap. Caller labels are sparse `u32`s, so a map translates them.
//! A quantized store also keeps each vector's int8 codes (see `crate::quantized`) in a second
//! contiguous array, slot for slot.

use std::collections::HashMap;

use roaring::RoaringBitmap;

use bulkhead_core::Metric;

use crate::error::{IndexError, Result};
use crate::hnsw::{Codes, Space};
use crate::quantized::{RECORD_TAIL, append_record};

/// Dense vector storage plus the label <-> slot mapping and slot tombstones.
#[derive(Debug, Clone)]
pub(crate) struct VectorStore {
    dim: usize,
    data: Vec<f32>,
    /// Label of each slot (also of tombstoned slots).
    labels: Vec<u32>,
    /// Live labels only.
    slot_of: HashMap<u32, u32>,
    /// Slots whose label was removed but whose vector is still referenced by a graph.
    tombstones: RoaringBitmap,
    /// Whether `records` are kept; else it stays empty.
    quantized: bool,
    /// Per slot, `dim` codes then scale and squared norm (`crate::quantized::append_record`).
    records: Vec<i8>,
}

/// Replacements, with room for one more vector, for those of a store's arrays that are full
/// (see [`VectorStore::room_for_one`]). After [`VectorStore::install`] it holds the arrays
/// they replaced, to be freed once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct StoreRoom {
    data: Option<Vec<f32>>,
    records: Option<Vec<i8>>,
    labels: Option<Vec<u32>>,
    slot_of: Option<HashMap<u32, u32>>,
}

impl VectorStore {
    pub fn new(dim: usize, quantized: bool) -> Self {
        Self {
            dim,
            data: Vec::new(),
            labels: Vec::new(),
            slot_of: HashMap::new(),
            tombstones: RoaringBitmap::new(),
            quantized,
            records: Vec::new(),
        }
    }

    /// The vectors as a graph sees them: codes for the walk when quantized.
    pub fn space(&self, metric: Metric) -> Space<'_> {
        let codes = self.quantized.then(|| Codes {
            records: &self.records,
            stride: self.record_len(),
        });
        Space::new(&self.data, self.dim, metric, codes)
    }

    /// Bytes of one slot's int8 record.
    pub fn record_len(&self) -> usize {
        self.dim + RECORD_TAIL
    }

    pub fn is_quantized(&self) -> bool {
        self.quantized
    }

    /// The label of every slot, tombstoned ones included.
    pub fn all_labels(&self) -> &[u32] {
        &self.labels
    }

    /// The vectors of `slots`, back to back.
    pub fn vectors(&self, slots: std::ops::Range<usize>) -> &[f32] {
        &self.data[slots.start * self.dim..slots.end * self.dim]
    }

    /// The int8 records of `slots` (empty unless quantized).
    pub fn records(&self, slots: std::ops::Range<usize>) -> &[i8] {
        if !self.quantized {
            return &[];
        }
        let len = self.record_len();
        &self.records[slots.start * len..slots.end * len]
    }

    /// A store from its arrays as an image holds them; checks that their sizes agree and that
    /// no live label appears twice.
    pub fn from_parts(
        dim: usize,
        data: Vec<f32>,
        labels: Vec<u32>,
        tombstones: RoaringBitmap,
        records: Option<Vec<i8>>,
    ) -> std::result::Result<Self, String> {
        let n = labels.len();
        if data.len() != n * dim {
            return Err(format!("{} values for {n} vectors of {dim}", data.len()));
        }
        if tombstones.max().is_some_and(|t| t as usize >= n) {
            return Err("a tombstone past the last slot".into());
        }
        let quantized = records.is_some();
        let records = records.unwrap_or_default();
        if quantized && records.len() != n * (dim + RECORD_TAIL) {
            return Err(format!("{} code bytes for {n} vectors", records.len()));
        }
        let mut slot_of = HashMap::with_capacity(n - tombstones.len() as usize);
        for (slot, &label) in labels.iter().enumerate() {
            if !tombstones.contains(slot as u32) && slot_of.insert(label, slot as u32).is_some() {
                return Err(format!("label {label} is live twice"));
            }
        }
        Ok(Self {
            dim,
            data,
            labels,
            slot_of,
            tombstones,
            quantized,
            records,
        })
    }

    /// Number of slots, live or tombstoned.
    pub fn slots(&self) -> usize {
        self.labels.len()
    }

    pub fn live(&self) -> usize {
        self.slot_of.len()
    }

    pub fn tombstones(&self) -> &RoaringBitmap {
        &self.tombstones
    }

    #[inline]
    pub fn vector(&self, slot: u32) -> &[f32] {
        let start = slot as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    #[inline]
    pub fn label(&self, slot: u32) -> u32 {
        self.labels[slot as usize]
    }

    pub fn slot(&self, label: u32) -> Option<u32> {
        self.slot_of.get(&label).copied()
    }

    pub fn contains(&self, label: u32) -> bool {
        self.slot_of.contains_key(&label)
    }

    /// Appends a vector (already validated and normalised) and returns its slot.
    pub fn push(&mut self, label: u32, vector: &[f32]) -> Result<u32> {
        debug_assert_eq!(vector.len(), self.dim);
        if self.slot_of.contains_key(&label) {
            return Err(IndexError::DuplicateLabel(label));
        }
        let slot = u32::try_from(self.labels.len())
            .ok()
            .filter(|&s| s < u32::MAX)
            .ok_or(IndexError::Full(self.labels.len()))?;
        crate::hugepages::reserve(&mut self.data, self.dim);
        self.data.extend_from_slice(vector);
        if self.quantized {
            let len = self.record_len();
            crate::hugepages::reserve(&mut self.records, len);
            append_record(vector, &mut self.records);
        }
        self.labels.push(label);
        self.slot_of.insert(label, slot);
        Ok(slot)
    }

    /// Copies of the arrays that one more [`VectorStore::push`] would have to grow, grown.
    /// Made from a store no one is writing, and installed before anyone writes it again.
    pub fn room_for_one(&self) -> StoreRoom {
        let slot_of = (self.slot_of.len() >= self.slot_of.capacity()).then(|| {
            let mut grown = HashMap::with_capacity(2 * (self.slot_of.len() + 1));
            grown.extend(self.slot_of.iter().map(|(&label, &slot)| (label, slot)));
            grown
        });
        StoreRoom {
            data: crate::hugepages::grown(&self.data, self.dim),
            records: self
                .quantized
                .then(|| crate::hugepages::grown(&self.records, self.record_len()))
                .flatten(),
            labels: crate::hugepages::grown(&self.labels, 1),
            slot_of,
        }
    }

    /// Swaps in the arrays of `room`, which must have been made from this store as it is;
    /// `room` is left holding the ones they replace.
    pub fn install(&mut self, room: &mut StoreRoom) {
        fn swap<T: PartialEq + std::fmt::Debug>(live: &mut T, grown: &mut Option<T>) {
            if let Some(grown) = grown {
                debug_assert_eq!(live, grown, "room made from another state");
                std::mem::swap(live, grown);
            }
        }
        swap(&mut self.data, &mut room.data);
        swap(&mut self.records, &mut room.records);
        swap(&mut self.labels, &mut room.labels);
        swap(&mut self.slot_of, &mut room.slot_of);
    }

    /// Marks `label`'s slot dead but keeps its vector (a graph still links through it).
    pub fn tombstone(&mut self, label: u32) -> bool {
        match self.slot_of.remove(&label) {
            Some(slot) => {
                self.tombstones.insert(slot);
                true
            }
            None => false,
        }
    }

    /// Removes `label` by moving the last slot into its place; only valid while no graph
    /// refers to slots.
    pub fn swap_remove(&mut self, label: u32) -> bool {
        let Some(slot) = self.slot_of.remove(&label) else {
            return false;
        };
        debug_assert!(self.tombstones.is_empty());
        let last = (self.labels.len() - 1) as u32;
        if slot != last {
            let (s, l) = (slot as usize * self.dim, last as usize * self.dim);
            self.data.copy_within(l..l + self.dim, s);
            if self.quantized {
                let len = self.record_len();
                let (s, l) = (slot as usize * len, last as usize * len);
                self.records.copy_within(l..l + len, s);
            }
            let moved = self.labels[last as usize];
            self.labels[slot as usize] = moved;
            self.slot_of.insert(moved, slot);
        }
        self.labels.pop();
        self.data.truncate(last as usize * self.dim);
        self.records.truncate(last as usize * self.record_len());
        true
    }

    /// A fresh store holding only the live vectors, in slot order, under the same labels.
    pub fn compacted(&self) -> Self {
        let mut out = Self::new(self.dim, self.quantized);
        crate::hugepages::reserve(&mut out.data, self.live() * self.dim);
        if self.quantized {
            crate::hugepages::reserve(&mut out.records, self.live() * self.record_len());
        }
        out.labels.reserve_exact(self.live());
        out.slot_of.reserve(self.live());
        // Vectors and their int8 records are copied as they are, not quantized again; live
        // labels are unique, so none of `push`'s checks can fail.
        for slot in 0..self.slots() as u32 {
            if !self.tombstones.contains(slot) {
                let range = slot as usize..slot as usize + 1;
                out.slot_of
                    .insert(self.label(slot), out.labels.len() as u32);
                out.labels.push(self.label(slot));
                out.data.extend_from_slice(self.vectors(range.clone()));
                out.records.extend_from_slice(self.records(range));
            }
        }
        out
    }

    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() * size_of::<f32>()
            + self.records.capacity()
            + self.labels.capacity() * size_of::<u32>()
            // hashbrown: key + value + one control byte per bucket.
            + self.slot_of.capacity() * (2 * size_of::<u32>() + 1)
            + self.tombstones.serialized_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_moves_last() {
        let mut s = VectorStore::new(2, true);
        for l in [10u32, 20, 30] {
            s.push(l, &[l as f32, 0.0]).unwrap();
        }
        assert!(s.swap_remove(10));
        assert!(!s.swap_remove(10));
        assert_eq!(s.slots(), 2);
        assert_eq!(s.slot(30), Some(0));
        assert_eq!(s.vector(0), &[30.0, 0.0]);
        assert_eq!(s.label(1), 20);
    }

    #[test]
    fn after_installing_its_room_a_full_store_takes_one_more_vector_without_moving() {
        let mut s = VectorStore::new(3, true);
        for l in 0..40u32 {
            let mut room = s.room_for_one();
            let grows = room.data.is_some();
            s.install(&mut room);
            let data_at = s.data.as_ptr();
            let (records_at, labels_at) = (s.records.as_ptr(), s.labels.as_ptr());
            let buckets = s.slot_of.capacity();
            s.push(l, &[l as f32, 1.0, -1.0]).unwrap();
            assert_eq!(s.data.as_ptr(), data_at, "vector {l} moved the vectors");
            assert_eq!(s.records.as_ptr(), records_at, "vector {l} moved the codes");
            assert_eq!(s.labels.as_ptr(), labels_at, "vector {l} moved the labels");
            assert_eq!(
                s.slot_of.capacity(),
                buckets,
                "vector {l} grew the label map"
            );
            if grows {
                assert_eq!(room.data.map(|old| old.len()), Some(l as usize * 3));
            }
        }
        for l in 0..40u32 {
            assert_eq!(s.vector(s.slot(l).unwrap()), &[l as f32, 1.0, -1.0]);
        }
        let mut reference = VectorStore::new(3, true);
        for l in 0..40u32 {
            reference.push(l, &[l as f32, 1.0, -1.0]).unwrap();
        }
        assert_eq!(s.records(0..40), reference.records(0..40));
    }

    #[test]
    fn tombstone_and_compact_keep_labels() {
        let mut s = VectorStore::new(1, true);
        for l in 0..5u32 {
            s.push(l * 7, &[l as f32]).unwrap();
        }
        assert!(s.tombstone(14));
        assert!(!s.contains(14));
        assert_eq!(s.live(), 4);
        assert!(matches!(
            s.push(7, &[0.0]),
            Err(IndexError::DuplicateLabel(7))
        ));
        let c = s.compacted();
        assert_eq!(c.slots(), 4);
        assert!(c.tombstones().is_empty());
        for l in [0u32, 7, 21, 28] {
            let slot = c.slot(l).unwrap();
            assert_eq!(c.vector(slot), &[(l / 7) as f32]);
            let before = s.slot(l).unwrap() as usize;
            let after = slot as usize;
            assert_eq!(c.records(after..after + 1), s.records(before..before + 1));
        }
    }
}
