//! The red-team tactics. They run in an order that keeps a leaking server's damage from
//! hiding findings: probes that only read come first, then the ones that would change another
//! tenant if the server let them, then the restart, and last the one that deletes a tenant.

mod audit_trail;
mod cache;
mod collisions;
mod credentials;
mod cross_tenant;
mod end_users;
mod interleave;
mod names;
mod recreate;
mod restart;
mod ttl;
mod visibility;

use std::time::Duration;

use tonic::{Code, Status};

use crate::canary::CanaryBook;
use crate::fixture::Fixture;
use crate::raw::Answer;
use crate::report::{ProbeResult, progress};

/// How the operator shaped this run.
#[derive(Debug)]
pub struct Plan {
    /// How long the interleaved clients run.
    pub duration: Duration,
    /// A shell command that restarts the server, run between two rounds of checks.
    pub restart_cmd: Option<String>,
}

pub async fn run_all(f: &Fixture, plan: &Plan) -> Vec<ProbeResult> {
    let mut results = Vec::new();
    progress("own-key visibility");
    results.extend(visibility::run(f).await);
    results.push(collisions::run(f).await);
    progress("lookalike and malformed tenant names");
    results.push(names::run(f).await);
    progress(format!(
        "interleaved clients for {} s",
        plan.duration.as_secs_f32()
    ));
    results.push(interleave::run(f, plan.duration).await);
    progress("record TTL");
    results.push(ttl::run(f).await);
    progress("credentials and roles");
    results.extend(credentials::run(f).await);
    progress("cross-tenant RPCs");
    results.extend(cross_tenant::run(f).await);
    results.push(audit_trail::run(f).await);
    if let Some(cmd) = &plan.restart_cmd {
        results.extend(restart::run(f, cmd).await);
    }
    // After the visibility checks (and their repetition after a restart), which expect each
    // tenant to hold exactly one collection: the cache is a second one.
    progress("semantic cache");
    results.extend(cache::run(f).await);
    progress("end users and sessions");
    results.extend(end_users::run(f).await);
    progress("deleting and re-creating a tenant");
    results.extend(recreate::run(f).await);
    results
}

/// A probe whose body could not finish counts as failed, with the reason.
fn settle(name: &str, outcome: anyhow::Result<ProbeResult>) -> ProbeResult {
    outcome.unwrap_or_else(|e| ProbeResult::fail(name, format!("could not run: {e:#}")))
}

/// What came back for a request that had to be refused with one of `allowed`, or `None` if
/// it was. An answer with records names whose canaries they hold.
fn unexpected(
    outcome: &Result<Answer, Status>,
    allowed: &[Code],
    asker: &str,
    book: &CanaryBook,
) -> Option<String> {
    match outcome {
        Err(s) if allowed.contains(&s.code()) => None,
        Err(s) => Some(format!("{:?} ({})", s.code(), s.message())),
        Ok(answer) => {
            let leaks: Vec<String> = answer
                .records
                .iter()
                .filter_map(|(id, text)| book.misattribution(asker, id, text.as_deref()))
                .collect();
            Some(match leaks.first() {
                Some(first) => format!("OK: {}, e.g. {first}", answer.summary),
                None => format!("OK: {}", answer.summary),
            })
        }
    }
}
