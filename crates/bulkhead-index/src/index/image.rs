//! An index image: the whole index (vectors, codes, labels, tombstones, graph links) as one byte
//! stream, so that a big collection comes back after a restart by reading a file instead of
//! rebuilding its graph. The owner decides where the bytes go and guards them (the engine adds
//! a checksum and the write sequence they reflect); this module only knows the layout.
//!
//! Taking an image must not stop searches or writes for long. [`VectorIndex::image`] copies
//! only the structure (labels, tombstones, links: a few bytes per vector) under the shared lock;
//! [`VectorIndex::write_image`] then streams the vectors from the live index in chunks, taking
//! the shared lock per chunk. That is sound because in a graph a slot's vector never changes or
//! moves once written (removals are tombstones; only a rebuild replaces the store, and the image
//! notices that by the store's generation). A flat index reorders its vectors on removal, so
//! its image copies them at once; flat indexes are small by definition.
//!
//! Layout, little-endian (the header records the byte order; another one is refused):
//! `magic, version, byte-order mark, dim, metric, quantized, m, slots, has-graph`, then the
//! labels, the tombstones (roaring), the vectors, the int8 records if quantized, and the graph
//! (levels, level-0 lists, upper lists, entry point, top level).

use std::io::{Read, Write};

use bulkhead_core::Metric;
use roaring::RoaringBitmap;

use super::{State, VectorIndex};
use crate::error::{IndexError, Result};
use crate::hnsw::{GraphImage, Hnsw};
use crate::params::{IndexParams, Quantization};
use crate::scratch::ScratchPool;
use crate::store::VectorStore;

const MAGIC: &[u8; 8] = b"BHIDXIMG";
const VERSION: u32 = 1;
const BYTE_ORDER: u32 = 0x0102_0304;
/// Vectors streamed per shared-lock acquisition.
const CHUNK_SLOTS: usize = 4096;

/// The structure of an index at one instant; see the module docs.
#[derive(Debug)]
pub struct IndexImage {
    generation: u64,
    slots: usize,
    quantized: bool,
    labels: Vec<u32>,
    tombstones: RoaringBitmap,
    /// `None` for a graph image, whose vectors are streamed from the live index.
    flat_vectors: Option<(Vec<f32>, Vec<i8>)>,
    graph: Option<GraphImage>,
}

impl IndexImage {
    /// The live labels in the image (every slot's label but the tombstoned ones).
    pub fn live_labels(&self) -> impl Iterator<Item = u32> + '_ {
        self.labels
            .iter()
            .enumerate()
            .filter(|(slot, _)| !self.tombstones.contains(*slot as u32))
            .map(|(_, &label)| label)
    }

    /// Vectors in the image, tombstoned ones included.
    pub fn slots(&self) -> usize {
        self.slots
    }
}

fn io(e: std::io::Error) -> IndexError {
    IndexError::Image(e.to_string())
}

fn bad(msg: impl Into<String>) -> IndexError {
    IndexError::Image(msg.into())
}

fn metric_code(metric: Metric) -> u8 {
    match metric {
        Metric::Cosine => 1,
        Metric::Dot => 2,
        Metric::L2 => 3,
    }
}

fn put_u32(out: &mut dyn Write, v: u32) -> Result<()> {
    out.write_all(&v.to_le_bytes()).map_err(io)
}

fn put_u64(out: &mut dyn Write, v: u64) -> Result<()> {
    out.write_all(&v.to_le_bytes()).map_err(io)
}

fn put_slice<T: bytemuck::Pod>(out: &mut dyn Write, v: &[T]) -> Result<()> {
    out.write_all(bytemuck::cast_slice(v)).map_err(io)
}

fn get<const N: usize>(input: &mut dyn Read) -> Result<[u8; N]> {
    let mut b = [0; N];
    input.read_exact(&mut b).map_err(io)?;
    Ok(b)
}

fn get_u32(input: &mut dyn Read) -> Result<u32> {
    Ok(u32::from_le_bytes(get(input)?))
}

fn get_u64(input: &mut dyn Read) -> Result<u64> {
    Ok(u64::from_le_bytes(get(input)?))
}

/// Reads `len` values, refusing lengths past `limit` before allocating anything.
fn get_vec<T: bytemuck::Pod>(input: &mut dyn Read, len: usize, limit: usize) -> Result<Vec<T>> {
    if len > limit {
        return Err(bad(format!(
            "an array of {len} values, at most {limit} expected"
        )));
    }
    let mut v = vec![T::zeroed(); len];
    input
        .read_exact(bytemuck::cast_slice_mut(&mut v))
        .map_err(io)?;
    Ok(v)
}

impl VectorIndex {
    /// The index's structure now, for [`VectorIndex::write_image`]. Copied under the upgradable
    /// lock, which holds off writers but not searches (see `build_if_wanted`'s snapshot).
    pub fn image(&self) -> IndexImage {
        let state = self.state.upgradable_read();
        let store = &state.store;
        let slots = store.slots();
        IndexImage {
            generation: state.generation,
            slots,
            quantized: store.is_quantized(),
            labels: store.all_labels().to_vec(),
            tombstones: store.tombstones().clone(),
            flat_vectors: state.graph.is_none().then(|| {
                (
                    store.vectors(0..slots).to_vec(),
                    store.records(0..slots).to_vec(),
                )
            }),
            graph: state.graph.as_ref().map(Hnsw::image),
        }
    }

    /// Writes `image` to `out`, reading its vectors from this index chunk by chunk. Fails if
    /// the index was rebuilt since the image was taken (its vectors are gone); take another.
    pub fn write_image(&self, image: &IndexImage, out: &mut dyn Write) -> Result<()> {
        out.write_all(MAGIC).map_err(io)?;
        put_u32(out, VERSION)?;
        put_u32(out, BYTE_ORDER)?;
        put_u32(out, self.dim as u32)?;
        out.write_all(&[
            metric_code(self.metric),
            u8::from(image.quantized),
            u8::from(image.graph.is_some()),
        ])
        .map_err(io)?;
        put_u32(out, self.params.m as u32)?;
        put_u64(out, image.slots as u64)?;
        put_slice(out, &image.labels)?;
        put_u64(out, image.tombstones.serialized_size() as u64)?;
        image.tombstones.serialize_into(&mut *out).map_err(io)?;
        match &image.flat_vectors {
            Some((vectors, records)) => {
                put_slice(out, vectors)?;
                put_slice(out, records)?;
            }
            None => {
                self.stream_vectors(image, out, |store, range| {
                    bytemuck::cast_slice(store.vectors(range)).to_vec()
                })?;
                if image.quantized {
                    self.stream_vectors(image, out, |store, range| {
                        bytemuck::cast_slice(store.records(range)).to_vec()
                    })?;
                }
            }
        }
        if let Some(g) = &image.graph {
            put_slice(out, &g.levels)?;
            put_slice(out, &g.links0)?;
            put_u64(out, g.upper.len() as u64)?;
            put_slice(out, &g.upper)?;
            put_u32(out, g.entry.unwrap_or(u32::MAX))?;
            put_u32(out, g.max_level)?;
        }
        Ok(())
    }

    /// Writes `bytes_of(store, chunk)` for every chunk of the image's slots, each read under
    /// the shared lock.
    fn stream_vectors(
        &self,
        image: &IndexImage,
        out: &mut dyn Write,
        bytes_of: impl Fn(&VectorStore, std::ops::Range<usize>) -> Vec<u8>,
    ) -> Result<()> {
        let mut start = 0;
        while start < image.slots {
            let end = (start + CHUNK_SLOTS).min(image.slots);
            let chunk = {
                let state = self.state.read();
                if state.generation != image.generation || state.store.slots() < end {
                    return Err(bad("the index was rebuilt while its image was written"));
                }
                bytes_of(&state.store, start..end)
            };
            out.write_all(&chunk).map_err(io)?;
            start = end;
        }
        Ok(())
    }

    /// An index read back from an image written by [`VectorIndex::write_image`] for an index
    /// of this `dim`, `metric` and `params`; an image of other settings is refused.
    pub fn read_image(
        input: &mut dyn Read,
        dim: usize,
        metric: Metric,
        params: IndexParams,
    ) -> Result<Self> {
        let empty = Self::new(dim, metric, params)?;
        if &get::<8>(input)? != MAGIC {
            return Err(bad("not an index image"));
        }
        let version = get_u32(input)?;
        if version != VERSION {
            return Err(bad(format!("format version {version}, expected {VERSION}")));
        }
        if get_u32(input)? != BYTE_ORDER {
            return Err(bad("written with another byte order"));
        }
        let image_dim = get_u32(input)? as usize;
        let [metric_byte, quantized, has_graph] = get::<3>(input)?;
        let m = get_u32(input)? as usize;
        let quantized = quantized == 1;
        let wanted_quantized = params.quantization == Quantization::Int8;
        if image_dim != dim
            || metric_byte != metric_code(metric)
            || quantized != wanted_quantized
            || m != params.m
        {
            return Err(bad("written for other index settings"));
        }
        let slots = get_u64(input)? as usize;
        if slots > u32::MAX as usize {
            return Err(bad(format!("{slots} slots")));
        }
        let labels: Vec<u32> = get_vec(input, slots, slots)?;
        let tombstone_bytes = get_u64(input)? as usize;
        let raw: Vec<u8> = get_vec(input, tombstone_bytes, 16 * slots + 1024)?;
        let tombstones = RoaringBitmap::deserialize_from(&raw[..]).map_err(io)?;
        let data: Vec<f32> = get_vec(input, slots * dim, slots * dim)?;
        let record_len = dim + crate::quantized::RECORD_TAIL;
        let records = if quantized {
            Some(get_vec::<i8>(
                input,
                slots * record_len,
                slots * record_len,
            )?)
        } else {
            None
        };
        let store = VectorStore::from_parts(dim, data, labels, tombstones, records).map_err(bad)?;
        let graph = if has_graph == 1 {
            let m0 = 2 * params.m;
            let levels: Vec<u8> = get_vec(input, slots, slots)?;
            let links0: Vec<u32> = get_vec(input, slots * (1 + m0), slots * (1 + m0))?;
            let upper_len = get_u64(input)? as usize;
            let upper: Vec<u32> = get_vec(input, upper_len, slots * 16 * (1 + params.m))?;
            let entry = Some(get_u32(input)?).filter(|&e| e != u32::MAX);
            let max_level = get_u32(input)?;
            let image = GraphImage {
                levels,
                links0,
                upper,
                entry,
                max_level,
            };
            Some(Hnsw::from_image(&params, image).map_err(bad)?)
        } else {
            None
        };
        Ok(Self {
            state: parking_lot::RwLock::new(State {
                store,
                graph,
                generation: 0,
            }),
            scratch: ScratchPool::default(),
            ..empty
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SearchFilter;

    fn vectors(n: usize, dim: usize) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                (0..dim)
                    .map(|d| ((i * 31 + d * 7) % 97) as f32 / 97.0 - 0.5)
                    .collect()
            })
            .collect()
    }

    fn index(quantization: Quantization, n: usize, graph: bool) -> VectorIndex {
        let params = IndexParams {
            flat_threshold: if graph { 10 } else { 10_000 },
            quantization,
            ..IndexParams::default()
        };
        let idx = VectorIndex::new(8, Metric::L2, params).unwrap();
        for (i, v) in vectors(n, 8).iter().enumerate() {
            idx.insert(i as u32 * 3, v).unwrap();
        }
        idx.build_if_wanted(&crate::BuildOptions::default())
            .unwrap();
        for label in (0..n as u32).step_by(7) {
            idx.remove(label * 3);
        }
        idx
    }

    fn round_trip(idx: &VectorIndex) -> Result<VectorIndex> {
        let mut bytes = Vec::new();
        idx.write_image(&idx.image(), &mut bytes)?;
        VectorIndex::read_image(&mut &bytes[..], 8, Metric::L2, idx.params())
    }

    #[test]
    fn an_index_read_back_answers_exactly_as_the_original() {
        for quantization in [Quantization::Int8, Quantization::None] {
            for graph in [true, false] {
                let idx = index(quantization, 500, graph);
                let back = round_trip(&idx).unwrap();
                assert_eq!(back.kind(), idx.kind());
                assert_eq!(back.len(), idx.len());
                for q in vectors(40, 8)
                    .iter()
                    .map(|v| v.iter().map(|x| x * 0.9).collect::<Vec<_>>())
                {
                    let a = idx.search(&q, 10, None, SearchFilter::default()).unwrap();
                    let b = back.search(&q, 10, None, SearchFilter::default()).unwrap();
                    assert_eq!(a, b, "{quantization:?}, graph {graph}");
                }
                // It goes on taking writes like the original.
                back.insert(100_000, &[0.1; 8]).unwrap();
                assert!(!back.contains(0) && back.contains(3));
            }
        }
    }

    #[test]
    fn images_of_other_settings_or_cut_short_are_refused() {
        let idx = index(Quantization::Int8, 300, true);
        let mut bytes = Vec::new();
        idx.write_image(&idx.image(), &mut bytes).unwrap();
        let other = IndexParams {
            quantization: Quantization::None,
            ..idx.params()
        };
        assert!(matches!(
            VectorIndex::read_image(&mut &bytes[..], 8, Metric::L2, other),
            Err(IndexError::Image(_))
        ));
        assert!(VectorIndex::read_image(&mut &bytes[..], 8, Metric::Cosine, idx.params()).is_err());
        for cut in [0, 7, 40, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                VectorIndex::read_image(&mut &bytes[..cut], 8, Metric::L2, idx.params()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn an_image_taken_before_a_rebuild_is_not_written() {
        let idx = index(Quantization::Int8, 300, true);
        let image = idx.image();
        for label in (0..300u32).map(|l| l * 3) {
            idx.remove(label);
        }
        idx.build_if_wanted(&crate::BuildOptions::default())
            .unwrap();
        let mut bytes = Vec::new();
        assert!(matches!(
            idx.write_image(&image, &mut bytes),
            Err(IndexError::Image(_))
        ));
    }
}
