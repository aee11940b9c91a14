//! The debian-minilm data set as the server benches use it: base, queries, ground truth, and
//! each row's Debian section (the tenant of multi-tenant runs) from `docs.jsonl.gz`.

use std::path::Path;

use anyhow::{Result, bail, ensure};
use bulkhead_core::Value;
use bulkhead_formats::{Matrix, read_documents, read_fvecs, read_ivecs};

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
    let docs = read_documents(&dir.join("docs.jsonl.gz"), &["text".to_owned()])?;
    ensure!(
        docs.len() == rows,
        "docs.jsonl.gz has {} rows, base has {rows}",
        docs.len()
    );
    docs.into_iter()
        .enumerate()
        .map(|(row, d)| match (d.id, d.metadata.get("tenant")) {
            (Some(id), Some(Value::String(section))) if id == row.to_string() => {
                Ok(section.clone())
            }
            _ => bail!("docs row {row}: expected id {row} and a string tenant"),
        })
        .collect()
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
