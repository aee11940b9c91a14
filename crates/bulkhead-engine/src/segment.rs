//! A collection's segment file: its index image (vectors, codes, graph) and its slots (which
//! record each label holds, with its expiry and indexed values), as of one change number.
//! Activation reads it instead of scanning every record and rebuilding the graph, which for a
//! big collection is the difference between a fraction of a second and minutes.
//!
//! A segment is a cache of what RocksDB holds, never the truth: a file that is missing,
//! truncated, fails its checksum, or was written for other settings or another incarnation of
//! the collection is ignored and removed, and the collection is rebuilt from its records. It is
//! written to a temporary name, synced as it grows, then renamed, so a crash leaves either the
//! old file or the new one. The file it replaces first gets a second name, so the rename frees
//! nothing under the collection's writer lock; the caller removes it in steps afterwards
//! (`disk_pacing` says why). Layout: magic, change number, the collection's creation time,
//! the index image (`bulkhead_index::VectorIndex::write_image`), the slots, and a CRC-32 of
//! all of it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bulkhead_core::{CollectionId, RecordId};
use bulkhead_index::{IndexImage, VectorIndex};

use crate::collection::{CollectionMeta, Slot};
use crate::disk_pacing::{self, SyncingWriter};
use crate::error::{EngineError, Result};
use crate::fields::{FieldKey, OrderedF64};

const MAGIC: &[u8; 8] = b"BHSEG\0v1";
const IO_BUFFER: usize = 1 << 20;
/// Longest record id, with room to spare (ids are checked when written).
const MAX_ID_BYTES: usize = 64 << 10;

/// Where `collection`'s segment lives in a tenant's segment directory.
pub(crate) fn segment_path(dir: &Path, collection: &CollectionId) -> PathBuf {
    dir.join(format!("{collection}.seg"))
}

fn temporary_path(path: &Path) -> PathBuf {
    path.with_extension("seg.tmp")
}

/// The name a replaced segment keeps until it is removed.
fn retired_path(path: &Path) -> PathBuf {
    path.with_extension("seg.old")
}

/// `path`'s retired name, freed of any file a crash or a failed removal left under it.
fn free_retired_path(path: &Path) -> Result<PathBuf> {
    let old = retired_path(path);
    disk_pacing::remove_file(&old).map_err(|e| io(&old, e))?;
    Ok(old)
}

fn io(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::Storage(format!("segment {}: {e}", path.display()))
}

/// Hashes everything written through it.
struct Checksummed<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes everything read through it.
struct Verified<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for Verified<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
}

/// What a segment holds besides the index.
#[derive(Debug)]
pub(crate) struct SegmentContents {
    pub change: u64,
    /// The file's modification time, ms since the epoch.
    pub written_ms: u64,
    pub index: VectorIndex,
    pub slots: Vec<(u32, Slot)>,
}

/// A segment written and fsynced under a temporary name, not yet in place.
#[derive(Debug)]
pub(crate) struct Written {
    tmp: PathBuf,
    path: PathBuf,
}

/// A segment taken out of use under a name of its own, still on disk until removed.
#[derive(Debug)]
#[must_use = "the retired segment is still on disk"]
pub(crate) struct Retired(Option<PathBuf>);

impl Retired {
    /// Removes it, in steps; for after the collection's lock is released.
    pub fn remove(self) -> Result<()> {
        match &self.0 {
            Some(old) => disk_pacing::remove_file(old).map_err(|e| io(old, e)),
            None => Ok(()),
        }
    }
}

/// A segment put in place: its size, and the one it replaced.
#[derive(Debug)]
pub(crate) struct Installed {
    pub bytes: u64,
    pub replaced: Retired,
}

/// Takes the segment at `path`, if any, out of use without freeing its blocks (a rename), so
/// that it can be removed in steps later: for a collection that keeps no segment any more.
pub(crate) fn retire(path: &Path) -> Result<Retired> {
    let old = free_retired_path(path)?;
    match std::fs::rename(path, &old) {
        Ok(()) => Ok(Retired(Some(old))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Retired(None)),
        Err(e) => Err(io(path, e)),
    }
}

impl Written {
    /// Renames it over any older segment, durably. The older one keeps a second name, so the
    /// rename frees none of its blocks: [`Retired::remove`] does, in steps.
    pub fn install(self) -> Result<Installed> {
        let dir = self.path.parent().expect("a segment path has a directory");
        let old = free_retired_path(&self.path)?;
        // Without a second name (no older segment, or a filesystem without hard links), the
        // rename frees the older one's blocks itself, as it always may.
        let replaced = Retired(std::fs::hard_link(&self.path, &old).is_ok().then_some(old));
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io(&self.path, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(dir, e))?;
        let bytes = std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| io(&self.path, e))?;
        Ok(Installed { bytes, replaced })
    }

    /// Drops it (the collection it was written for is gone or was reloaded meanwhile).
    pub fn discard(self) {
        let _ = disk_pacing::remove_file(&self.tmp);
    }
}

/// Writes a segment of `index` as of `change` under a temporary name, durably; `install`
/// puts it in place. `image` and `slots` were taken together, under the collection's writer
/// lock.
pub(crate) fn write(
    path: &Path,
    meta: &CollectionMeta,
    change: u64,
    index: &VectorIndex,
    image: &IndexImage,
    slots: &[(u32, Slot)],
) -> Result<Written> {
    let dir = path.parent().expect("a segment path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let tmp = temporary_path(path);
    let file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    let mut out = Checksummed {
        inner: BufWriter::with_capacity(IO_BUFFER, SyncingWriter::new(file)),
        crc: crc32fast::Hasher::new(),
    };
    let written = write_body(&mut out, meta, change, index, image, slots).and_then(|()| {
        let crc = out.crc.clone().finalize();
        out.inner.write_all(&crc.to_le_bytes())?;
        out.inner.flush()?;
        out.inner.get_ref().get_ref().sync_all()
    });
    if let Err(e) = written {
        let _ = disk_pacing::remove_file(&tmp);
        return Err(io(&tmp, e));
    }
    Ok(Written {
        tmp,
        path: path.to_owned(),
    })
}

fn write_body(
    out: &mut dyn Write,
    meta: &CollectionMeta,
    change: u64,
    index: &VectorIndex,
    image: &IndexImage,
    slots: &[(u32, Slot)],
) -> std::io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&change.to_le_bytes())?;
    out.write_all(&meta.created_at_ms.to_le_bytes())?;
    index
        .write_image(image, out)
        .map_err(std::io::Error::other)?;
    write_slots(out, slots)
}

/// Reads the segment at `path` written for a collection with `meta`; `Ok(None)` if there is
/// none, an error if it is unusable (the caller removes it and rebuilds).
pub(crate) fn read(path: &Path, meta: &CollectionMeta) -> Result<Option<SegmentContents>> {
    let _ = disk_pacing::remove_file(&temporary_path(path));
    let _ = disk_pacing::remove_file(&retired_path(path));
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, e)),
    };
    let written_ms = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    let mut input = Verified {
        inner: BufReader::with_capacity(IO_BUFFER, file),
        crc: crc32fast::Hasher::new(),
    };
    let corrupt = |why: String| EngineError::Corrupt(format!("segment {}: {why}", path.display()));
    let mut magic = [0; 8];
    input.read_exact(&mut magic).map_err(|e| io(path, e))?;
    if &magic != MAGIC {
        return Err(corrupt("not a segment of this version".into()));
    }
    let change = read_u64(&mut input).map_err(|e| io(path, e))?;
    let created_at = read_u64(&mut input).map_err(|e| io(path, e))?;
    if created_at != meta.created_at_ms {
        return Err(corrupt(
            "written for an earlier collection of this name".into(),
        ));
    }
    let index =
        VectorIndex::read_image(&mut input, meta.dimension, meta.metric, meta.index_params())
            .map_err(|e| corrupt(e.to_string()))?;
    let slots = read_slots(&mut input).map_err(|e| corrupt(e.to_string()))?;
    let computed = input.crc.clone().finalize();
    let mut stored = [0; 4];
    input
        .inner
        .read_exact(&mut stored)
        .map_err(|e| io(path, e))?;
    if u32::from_le_bytes(stored) != computed {
        return Err(corrupt("checksum mismatch".into()));
    }
    Ok(Some(SegmentContents {
        change,
        written_ms,
        index,
        slots,
    }))
}

/// Removes `collection`'s segment, if any, in steps.
pub(crate) fn remove(path: &Path) -> Result<()> {
    disk_pacing::remove_file(path).map_err(|e| io(path, e))
}

fn read_u64(input: &mut dyn Read) -> std::io::Result<u64> {
    let mut b = [0; 8];
    input.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_u32(input: &mut dyn Read) -> std::io::Result<u32> {
    let mut b = [0; 4];
    input.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_bytes(input: &mut dyn Read, limit: usize) -> std::io::Result<Vec<u8>> {
    let len = read_u32(input)? as usize;
    if len > limit {
        return Err(std::io::Error::other(format!("a field of {len} bytes")));
    }
    let mut b = vec![0; len];
    input.read_exact(&mut b)?;
    Ok(b)
}

fn write_bytes(out: &mut dyn Write, b: &[u8]) -> std::io::Result<()> {
    out.write_all(&(b.len() as u32).to_le_bytes())?;
    out.write_all(b)
}

fn write_slots(out: &mut dyn Write, slots: &[(u32, Slot)]) -> std::io::Result<()> {
    out.write_all(&(slots.len() as u64).to_le_bytes())?;
    for (label, slot) in slots {
        out.write_all(&label.to_le_bytes())?;
        out.write_all(&slot.expires_at_ms.to_le_bytes())?;
        write_bytes(out, slot.id.as_str().as_bytes())?;
        out.write_all(&(slot.keys.len() as u32).to_le_bytes())?;
        for key in &slot.keys {
            let (tag, field) = match key {
                FieldKey::Keyword(f, _) => (0u8, *f),
                FieldKey::Integer(f, _) => (1, *f),
                FieldKey::Float(f, _) => (2, *f),
                FieldKey::Bool(f, _) => (3, *f),
            };
            out.write_all(&[tag])?;
            out.write_all(&(field as u32).to_le_bytes())?;
            match key {
                FieldKey::Keyword(_, s) => write_bytes(out, s.as_bytes())?,
                FieldKey::Integer(_, i) => out.write_all(&i.to_le_bytes())?,
                FieldKey::Float(_, x) => out.write_all(&x.to_bits().to_le_bytes())?,
                FieldKey::Bool(_, b) => out.write_all(&[u8::from(*b)])?,
            }
        }
    }
    Ok(())
}

fn read_slots(input: &mut dyn Read) -> std::io::Result<Vec<(u32, Slot)>> {
    let bad = |msg: &str| std::io::Error::other(msg.to_owned());
    let count = read_u64(input)? as usize;
    if count > u32::MAX as usize {
        return Err(bad("too many slots"));
    }
    // Grown as read, so a corrupt count can't allocate before the data runs out.
    let mut slots = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let label = read_u32(input)?;
        let expires_at_ms = read_u64(input)?;
        let id = RecordId::from_utf8(&read_bytes(input, MAX_ID_BYTES)?)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let key_count = read_u32(input)? as usize;
        let mut keys = Vec::with_capacity(key_count.min(1024));
        for _ in 0..key_count {
            let mut tag = [0; 1];
            input.read_exact(&mut tag)?;
            let field = read_u32(input)? as usize;
            keys.push(match tag[0] {
                0 => FieldKey::Keyword(
                    field,
                    String::from_utf8(read_bytes(input, MAX_ID_BYTES)?)
                        .map_err(|_| bad("a keyword that is not UTF-8"))?,
                ),
                1 => FieldKey::Integer(field, read_u64(input)? as i64),
                2 => FieldKey::Float(field, OrderedF64::from_bits(read_u64(input)? as i64)),
                3 => {
                    let mut b = [0; 1];
                    input.read_exact(&mut b)?;
                    FieldKey::Bool(field, b[0] == 1)
                }
                _ => return Err(bad("an unknown field key")),
            });
        }
        slots.push((
            label,
            Slot {
                id,
                expires_at_ms,
                keys,
            },
        ));
    }
    Ok(slots)
}
