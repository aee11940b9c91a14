//! The `fvecs` / `ivecs` formats of the classic ANN benchmark datasets (each row: a
//! little-endian `i32` dimension followed by that many 4-byte values).

use std::path::Path;

use crate::error::{FormatError, Result};

macro_rules! bail {
    ($($t:tt)*) => {
        return Err(FormatError::Vecs(format!($($t)*)))
    };
}

/// A dense row-major matrix read from a `*vecs` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T> {
    pub dim: usize,
    pub data: Vec<T>,
}

impl<T> Matrix<T> {
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Reads an `fvecs` file (float32 components).
pub fn read_fvecs(path: &Path) -> Result<Matrix<f32>> {
    read(path, f32::from_le_bytes)
}

/// Reads an `ivecs` file (int32 components).
pub fn read_ivecs(path: &Path) -> Result<Matrix<i32>> {
    read(path, i32::from_le_bytes)
}

fn read<T>(path: &Path, conv: fn([u8; 4]) -> T) -> Result<Matrix<T>> {
    let bytes = std::fs::read(path).map_err(|source| FormatError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_vecs(&bytes, conv).map_err(|e| e.in_file(path))
}

/// Parses the raw bytes of a `*vecs` file. Every row must have the same positive dimension and
/// the file must end exactly at a row boundary.
fn parse_vecs<T>(bytes: &[u8], conv: fn([u8; 4]) -> T) -> Result<Matrix<T>> {
    let word = |at: usize| -> [u8; 4] { [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]] };
    if bytes.is_empty() {
        bail!("file is empty");
    }
    let mut dim = None;
    let mut data = Vec::new();
    let mut pos = 0;
    let mut row = 0usize;
    while pos < bytes.len() {
        if bytes.len() - pos < 4 {
            bail!("truncated: row {row} has an incomplete dimension header");
        }
        let d = i32::from_le_bytes(word(pos));
        if d <= 0 {
            bail!("row {row} declares dimension {d}");
        }
        let d = d as usize;
        match dim {
            None => {
                dim = Some(d);
                data.reserve(bytes.len() / (4 * (d + 1)) * d);
            }
            Some(expected) if expected != d => {
                bail!("row {row} has dimension {d}, earlier rows have {expected}")
            }
            Some(_) => {}
        }
        pos += 4;
        if bytes.len() - pos < 4 * d {
            bail!(
                "truncated: row {row} needs {} bytes, only {} left",
                4 * d,
                bytes.len() - pos
            );
        }
        data.extend((0..d).map(|i| conv(word(pos + 4 * i))));
        pos += 4 * d;
        row += 1;
    }
    Ok(Matrix {
        dim: dim.unwrap_or(1),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(rows: &[&[f32]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in rows {
            out.extend((r.len() as i32).to_le_bytes());
            for x in *r {
                out.extend(x.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn reads_rows() {
        let bytes = encode(&[&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.5]]);
        let m = parse_vecs(&bytes, f32::from_le_bytes).unwrap();
        assert_eq!((m.dim, m.rows()), (3, 2));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.5]);
        let ints = parse_vecs(&bytes[..16], i32::from_le_bytes).unwrap();
        assert_eq!(ints.row(0)[0], 1.0f32.to_bits() as i32);
    }

    #[test]
    fn rejects_malformed_files() {
        let good = encode(&[&[1.0, 2.0], &[3.0, 4.0]]);
        let err = |b: &[u8]| parse_vecs(b, f32::from_le_bytes).unwrap_err().to_string();
        assert!(err(&good[..good.len() - 1]).contains("truncated"));
        assert!(err(&good[..2]).contains("truncated"));
        assert!(err(&[]).contains("empty"));
        assert!(err(&encode(&[&[1.0, 2.0], &[3.0]])).contains("dimension 1"));
        assert!(err(&0i32.to_le_bytes()).contains("dimension 0"));
    }

    #[test]
    fn reads_from_disk_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.fvecs");
        std::fs::write(&p, encode(&[&[0.5]])).unwrap();
        assert_eq!(read_fvecs(&p).unwrap().data, vec![0.5]);
        let missing = read_ivecs(&dir.path().join("nope.ivecs")).unwrap_err();
        assert!(missing.to_string().contains("nope.ivecs"));
    }
}
