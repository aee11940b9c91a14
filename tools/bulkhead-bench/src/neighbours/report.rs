//! One scenario's result: the victim's three phases side by side, the two ratios that say
//! whether the attack reached it and whether it went away with the attacker, and what the
//! attacker's calls came to. One JSON line per scenario, then a Markdown table of them all.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::attack::{Notes, Scenario};
use super::thread_times::PhaseThreads;
use super::victim::Phase;
use crate::report::{percentile_us, round};

/// The most the victim's p99 may grow under attack, for the scenario to pass.
pub const MAX_P99_RATIO: f64 = 1.5;

/// The victim's figures for one phase.
#[derive(Debug)]
pub struct PhaseFigures {
    pub requests: usize,
    pub errors: BTreeMap<String, u64>,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub query_p99_us: f64,
    pub upsert_p99_us: f64,
    /// The p99 of how late the harness started its calls after their due times.
    pub start_lag_p99_us: f64,
    /// The server's thread times over the phase (`--server-pid`).
    pub server_threads: Option<PhaseThreads>,
    /// The victim's query and upsert p99 as the server timed them (`--metrics-endpoint`).
    pub server_p99_us: Option<ServerP99>,
}

/// The victim's p99 per method from the server's histograms, in microseconds; `None` for a
/// method without requests in the phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerP99 {
    pub query: Option<f64>,
    pub upsert: Option<f64>,
}

impl From<&Phase> for PhaseFigures {
    fn from(p: &Phase) -> Self {
        Self {
            requests: p.latencies.len(),
            errors: p.errors.snapshot(),
            p50_us: percentile_us(&p.latencies, 0.50),
            p99_us: percentile_us(&p.latencies, 0.99),
            max_us: percentile_us(&p.latencies, 1.0),
            query_p99_us: percentile_us(&p.queries, 0.99),
            upsert_p99_us: percentile_us(&p.upserts, 0.99),
            start_lag_p99_us: percentile_us(&p.start_lags, 0.99),
            server_threads: None,
            server_p99_us: None,
        }
    }
}

impl PhaseFigures {
    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn json(&self) -> Value {
        let mut figures = json!({
            "requests": self.requests,
            "errors": self.error_count(),
            "error_codes": self.errors,
            "p50_us": round(self.p50_us, 1),
            "p99_us": round(self.p99_us, 1),
            "max_us": round(self.max_us, 1),
            "query_p99_us": round(self.query_p99_us, 1),
            "upsert_p99_us": round(self.upsert_p99_us, 1),
            "start_lag_p99_us": round(self.start_lag_p99_us, 1),
        });
        if let Some(threads) = &self.server_threads {
            figures["server_threads"] = threads.json();
        }
        if let Some(server) = &self.server_p99_us {
            let us = |v: Option<f64>| v.map(|v| round(v, 1));
            figures["server_query_p99_us"] = json!(us(server.query));
            figures["server_upsert_p99_us"] = json!(us(server.upsert));
        }
        figures
    }
}

#[derive(Debug)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub baseline: PhaseFigures,
    pub attack: PhaseFigures,
    pub recovery: PhaseFigures,
    pub attacker: BTreeMap<String, u64>,
    pub notes: Notes,
}

impl ScenarioResult {
    /// `phase`'s p99 over the baseline's (a baseline under a microsecond counts as one).
    fn ratio(&self, phase: &PhaseFigures) -> f64 {
        phase.p99_us / self.baseline.p99_us.max(1.0)
    }

    pub fn p99_ratio(&self) -> f64 {
        self.ratio(&self.attack)
    }

    pub fn recovery_ratio(&self) -> f64 {
        self.ratio(&self.recovery)
    }

    /// The victim's errors in all three phases: one before the attack or after it is as much
    /// a failure of isolation as one during it.
    pub fn victim_errors(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for phase in [&self.baseline, &self.attack, &self.recovery] {
            for (code, n) in &phase.errors {
                *all.entry(code.clone()).or_default() += n;
            }
        }
        all
    }

    /// One figure of each phase, baseline / attack / recovery; `–` where a phase has none.
    fn per_phase(&self, figure: impl Fn(&PhaseFigures) -> Option<String>) -> String {
        [&self.baseline, &self.attack, &self.recovery]
            .map(|p| figure(p).unwrap_or_else(|| "–".to_owned()))
            .join(" / ")
    }

    pub fn pass(&self) -> bool {
        self.victim_errors().is_empty() && self.p99_ratio() <= MAX_P99_RATIO
    }

    pub fn json_fields(&self, victim_rate: f64, phase_secs: u64) -> Vec<(&'static str, Value)> {
        let notes: serde_json::Map<String, Value> = self
            .notes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        vec![
            ("mode", "neighbours".into()),
            ("scenario", self.scenario.to_string().into()),
            ("victim_rate", victim_rate.into()),
            ("phase_s", phase_secs.into()),
            ("baseline", self.baseline.json()),
            ("attack", self.attack.json()),
            ("recovery", self.recovery.json()),
            ("p99_ratio", round(self.p99_ratio(), 2).into()),
            ("recovery_ratio", round(self.recovery_ratio(), 2).into()),
            (
                "victim_errors",
                self.victim_errors().values().sum::<u64>().into(),
            ),
            ("pass", self.pass().into()),
            ("attacker", json!(self.attacker)),
            ("attacker_notes", Value::Object(notes)),
        ]
    }
}

/// `counts` as `NAME n, NAME n`, or `0` when empty.
fn list(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "0".to_owned();
    }
    let items: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    items.join(", ")
}

pub fn markdown(results: &[ScenarioResult]) -> String {
    let mut out = String::from(
        "| scenario | victim baseline p99 ms | attack p99 ms | ratio | recovery ratio | victim errors | attacker outcomes | pass |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let errors = r.victim_errors();
        let total: u64 = errors.values().sum();
        let errors = match total {
            0 => "0".to_owned(),
            n => format!("{n} ({})", list(&errors)),
        };
        writeln!(
            out,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            r.scenario,
            r.baseline.p99_us / 1000.0,
            r.attack.p99_us / 1000.0,
            r.p99_ratio(),
            r.recovery_ratio(),
            errors,
            list(&r.attacker),
            if r.pass() { "yes" } else { "**no**" },
        )
        .expect("writing to a String");
    }
    if results.iter().any(|r| r.baseline.server_threads.is_some()) {
        out.push_str(&thread_table(results));
    }
    if results.iter().any(|r| r.baseline.server_p99_us.is_some()) {
        out.push_str(&server_p99_table(results));
    }
    out
}

/// The victim's p99 as the server timed it and as the harness did, per phase
/// (`--metrics-endpoint`), in milliseconds.
fn server_p99_table(results: &[ScenarioResult]) -> String {
    let ms = |us: f64| format!("{:.2}", us / 1000.0);
    phase_table(
        "query p99 ms, server: baseline / attack / recovery | query p99 ms, harness | upsert p99 ms, server | upsert p99 ms, harness",
        results,
        |r| {
            let server = |method: fn(&ServerP99) -> Option<f64>| {
                r.per_phase(|p| p.server_p99_us.as_ref().and_then(method).map(ms))
            };
            let harness = |figure: fn(&PhaseFigures) -> f64| r.per_phase(|p| Some(ms(figure(p))));
            vec![
                server(|s| s.query),
                harness(|p| p.query_p99_us),
                server(|s| s.upsert),
                harness(|p| p.upsert_p99_us),
            ]
        },
    )
}

/// The server's thread times per phase (`--server-pid`), in CPUs' worth.
fn thread_table(results: &[ScenarioResult]) -> String {
    phase_table(
        "normal-priority run-queue wait: baseline / attack / recovery | normal-priority CPU | background CPU",
        results,
        |r| {
            let each = |figure: fn(&PhaseThreads) -> f64| {
                r.per_phase(|p| p.server_threads.map(|t| format!("{:.3}", figure(&t))))
            };
            vec![
                each(|t| t.foreground_wait),
                each(|t| t.foreground_cpu),
                each(|t| t.background_cpu),
            ]
        },
    )
}

/// A table of one row per scenario: its name, then `columns` (named by `header`, `|`-separated).
fn phase_table(
    header: &str,
    results: &[ScenarioResult],
    columns: impl Fn(&ScenarioResult) -> Vec<String>,
) -> String {
    let count = header.split('|').count();
    let mut out = format!("\n| scenario | {header} |\n|---|{}\n", "---|".repeat(count));
    for r in results {
        writeln!(out, "| {} | {} |", r.scenario, columns(r).join(" | "))
            .expect("writing to a String");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(p99_us: f64, errors: &[(&str, u64)]) -> PhaseFigures {
        PhaseFigures {
            requests: 100,
            errors: errors.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            p50_us: p99_us / 2.0,
            p99_us,
            max_us: p99_us * 2.0,
            query_p99_us: p99_us / 2.0,
            upsert_p99_us: p99_us,
            start_lag_p99_us: 0.0,
            server_threads: None,
            server_p99_us: None,
        }
    }

    fn result(attack: PhaseFigures, recovery: PhaseFigures) -> ScenarioResult {
        ScenarioResult {
            scenario: Scenario::WriteFlood,
            baseline: phase(1000.0, &[]),
            attack,
            recovery,
            attacker: BTreeMap::from([("upsert RESOURCE_EXHAUSTED".to_owned(), 7)]),
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_scenario_passes_without_errors_within_the_ratio() {
        let ok = result(phase(1500.0, &[]), phase(900.0, &[]));
        assert!(ok.pass());
        assert_eq!(ok.recovery_ratio(), 0.9);
        assert!(!result(phase(1600.0, &[]), phase(900.0, &[])).pass());
        let late_error = result(phase(1000.0, &[]), phase(900.0, &[("UNAVAILABLE", 1)]));
        assert!(!late_error.pass());
    }

    #[test]
    fn the_table_has_one_row_per_scenario_with_its_outcomes() {
        let r = result(
            phase(2000.0, &[("CLIENT_TIMEOUT", 2)]),
            phase(1000.0, &[("CLIENT_TIMEOUT", 1)]),
        );
        let table = markdown(&[r]);
        let row = table.lines().nth(2).unwrap();
        assert_eq!(
            row,
            "| write-flood | 1.00 | 2.00 | 2.00 | 1.00 | 3 (CLIENT_TIMEOUT 3) | upsert RESOURCE_EXHAUSTED 7 | **no** |"
        );
        assert_eq!(
            table.lines().count(),
            3,
            "no thread table without --server-pid"
        );
    }

    #[test]
    fn thread_times_get_a_table_of_their_own() {
        let threads = |wait| PhaseThreads {
            foreground_cpu: 0.25,
            foreground_wait: wait,
            background_cpu: 1.5,
        };
        let mut r = result(phase(1000.0, &[]), phase(1000.0, &[]));
        r.baseline.server_threads = Some(threads(0.01));
        r.attack.server_threads = Some(threads(0.1));
        let table = markdown(&[r]);
        let row = table.lines().last().unwrap();
        assert_eq!(
            row,
            "| write-flood | 0.010 / 0.100 / – | 0.250 / 0.250 / – | 1.500 / 1.500 / – |"
        );
        let attack = result(phase(1000.0, &[]), phase(1000.0, &[]));
        let mut with = attack.attack;
        with.server_threads = Some(threads(0.1));
        assert_eq!(with.json()["server_threads"]["foreground_wait"], 0.1);
    }

    #[test]
    fn the_servers_timing_sits_beside_the_harnesss() {
        let mut r = result(phase(3000.0, &[]), phase(1000.0, &[]));
        r.baseline.server_p99_us = Some(ServerP99 {
            query: Some(700.0),
            upsert: Some(1500.0),
        });
        r.attack.server_p99_us = Some(ServerP99 {
            query: Some(750.0),
            upsert: None,
        });
        let table = markdown(&[r]);
        let row = table.lines().last().unwrap();
        assert_eq!(
            row,
            "| write-flood | 0.70 / 0.75 / – | 0.50 / 1.50 / 0.50 | 1.50 / – / – | 1.00 / 3.00 / 1.00 |"
        );
        let json = result(phase(1000.0, &[]), phase(1000.0, &[])).baseline;
        assert!(json.json().get("server_query_p99_us").is_none());
        let mut with = json;
        with.server_p99_us = Some(ServerP99 {
            query: Some(812.34),
            upsert: None,
        });
        assert_eq!(with.json()["server_query_p99_us"], 812.3);
        assert!(with.json()["server_upsert_p99_us"].is_null());
        with.start_lag_p99_us = 420.04;
        assert_eq!(with.json()["start_lag_p99_us"], 420.0);
    }
}
