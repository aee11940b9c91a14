//! The verdict in two shapes: a table for the operator reading a terminal and one JSON object
//! for CI, both from the same list of results so they can never disagree.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;

/// A progress line on stderr, so stdout carries only the verdict.
pub fn progress(line: impl std::fmt::Display) {
    eprintln!("leakprobe: {line}");
}

/// Table width when stdout is not a terminal (a log, a pipe), so details wrap.
const PIPED_WIDTH: u16 = 140;

/// How many problems a failed probe spells out before summarising the rest as a count.
const PROBLEMS_SHOWN: usize = 4;

/// The outcome of one probe. `detail` says what was checked when it passed, and what leaked
/// or which unexpected status came back when it failed.
#[derive(Debug, PartialEq)]
pub struct ProbeResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl ProbeResult {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed: true,
            detail: detail.into(),
        }
    }

    pub fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed: false,
            detail: detail.into(),
        }
    }

    /// The same result under `prefix/name`, for checks repeated after a restart.
    pub fn prefixed(self, prefix: &str) -> Self {
        Self {
            name: format!("{prefix}/{}", self.name),
            ..self
        }
    }
}

/// Problems found by one probe; no problems means it passed.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    /// Passes with `checked` (what was tried) when nothing was found; otherwise fails naming
    /// the first few problems and how many more there were.
    pub fn verdict(self, name: &str, checked: impl Into<String>) -> ProbeResult {
        if self.0.is_empty() {
            return ProbeResult::pass(name, checked);
        }
        let mut detail = self.0[..self.0.len().min(PROBLEMS_SHOWN)].join("; ");
        if self.0.len() > PROBLEMS_SHOWN {
            detail.push_str(&format!(" (and {} more)", self.0.len() - PROBLEMS_SHOWN));
        }
        ProbeResult::fail(name, detail)
    }
}

#[derive(Debug)]
pub struct Report {
    pub probes: Vec<ProbeResult>,
    pub tenants: usize,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.probes.iter().all(|p| p.passed)
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "passed": self.passed(),
            "probes": self.probes.iter().map(|p| json!({
                "name": p.name,
                "passed": p.passed,
                "detail": p.detail,
            })).collect::<Vec<_>>(),
            "tenants": self.tenants,
        })
    }

    pub fn table(&self) -> String {
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(["probe", "result", "detail"]);
        if table.width().is_none() {
            table.set_width(PIPED_WIDTH);
        }
        for p in &self.probes {
            let verdict = if p.passed { "PASS" } else { "FAIL" };
            table.add_row([p.name.as_str(), verdict, p.detail.as_str()]);
        }
        let failed = self.probes.iter().filter(|p| !p.passed).count();
        format!(
            "{table}\n{} probes, {failed} failed, {} tenants\n",
            self.probes.len(),
            self.tenants
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            probes: vec![
                ProbeResult::pass("own-key-query", "only own canaries"),
                ProbeResult::fail("cross-tenant-rpcs", "Get: OK with 16 records"),
            ],
            tenants: 2,
        }
    }

    #[test]
    fn json_has_the_documented_shape_and_fails_if_any_probe_fails() {
        let j = report().to_json();
        assert_eq!(j["passed"], false);
        assert_eq!(j["tenants"], 2);
        assert_eq!(j["probes"][1]["name"], "cross-tenant-rpcs");
        assert_eq!(j["probes"][1]["passed"], false);
        assert_eq!(j["probes"][1]["detail"], "Get: OK with 16 records");
        assert_eq!(j.as_object().unwrap().len(), 3);
        let all_pass = Report {
            probes: vec![ProbeResult::pass("a", "b")],
            tenants: 8,
        };
        assert_eq!(all_pass.to_json()["passed"], true);
    }

    #[test]
    fn the_table_shows_every_probe_with_its_verdict_and_a_summary() {
        let t = report().table();
        assert!(t.contains("own-key-query") && t.contains("PASS"));
        assert!(t.contains("cross-tenant-rpcs") && t.contains("FAIL"));
        assert!(t.ends_with("2 probes, 1 failed, 2 tenants\n"), "{t}");
    }

    #[test]
    fn problems_pass_when_empty_and_otherwise_name_the_first_few() {
        let ok = Problems::default().verdict("p", "checked 3 things");
        assert_eq!(ok, ProbeResult::pass("p", "checked 3 things"));
        let mut many = Problems::default();
        for i in 0..6 {
            many.push(format!("leak {i}"));
        }
        let failed = many.verdict("p", "unused");
        assert!(!failed.passed);
        assert_eq!(failed.detail, "leak 0; leak 1; leak 2; leak 3 (and 2 more)");
        assert_eq!(failed.prefixed("after-restart").name, "after-restart/p");
    }
}
