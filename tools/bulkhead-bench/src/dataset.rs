//! The debian-minilm data set as the server benches use it: base, queries, ground truth, and
//! each row's Debian section (the tenant of multi-tenant runs) from `docs.jsonl.gz`.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result, ensure};

use crate::vecs::{Matrix, read_fvecs, read_ivecs};

pub struct Dataset {
    pub base: Matrix<f32>,
    pub queries: Matrix<f32>,
    pub truth: Matrix<i32>,
}

impl Dataset {
    pub fn load(dir: &Path) -> Result<Self> {
        let base = read_fvecs(&dir.join("base.fvecs"))?;
        let queries = read_fvecs(&dir.join("query.fvecs"))?;
        let truth = read_ivecs(&dir.join("groundtruth.ivecs"))?;
        ensure!(base.dim == queries.dim, "base and query dimensions differ");
        ensure!(
            truth.rows() == queries.rows(),
            "ground truth rows != queries"
        );
        Ok(Self {
            base,
            queries,
            truth,
        })
    }
}

/// The section of every base row, in row order, read from `docs.jsonl.gz`.
pub fn sections(dir: &Path, rows: usize) -> Result<Vec<String>> {
    let path = dir.join("docs.jsonl.gz");
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut out = vec![String::new(); rows];
    for line in reader.lines() {
        let line = line?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let id = v["id"].as_u64().context("docs row without id")? as usize;
        let section = v["tenant"].as_str().context("docs row without tenant")?;
        ensure!(id < rows, "docs id {id} beyond base rows");
        out[id] = section.to_owned();
    }
    ensure!(
        out.iter().all(|s| !s.is_empty()),
        "some base rows have no section"
    );
    Ok(out)
}

/// A tenant id for a Debian section (`non-free/libs` → `sec-non-free-libs`).
pub fn tenant_for_section(section: &str) -> String {
    let clean: String = section
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("sec-{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_names_become_valid_tenant_ids() {
        for s in ["libs", "non-free/libs", "contrib/x11", "Python"] {
            let t = tenant_for_section(s);
            assert!(bulkhead_core::TenantId::new(&t).is_ok(), "{t}");
        }
    }
}
