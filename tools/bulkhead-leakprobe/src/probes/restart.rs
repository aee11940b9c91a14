//! Isolation has to survive a restart: indexes rebuilt from disk, key caches refilled and
//! tenant registries reloaded are new chances to mix tenants up or to forget a revocation.
//! The operator's command restarts the server between two rounds of the same checks.
//!
//! A command that exits 0 without restarting anything would make the second round a repeat
//! of the first, so the probe checks that a restart happened: before the command one probe
//! tenant is made HOT (its indexes in memory, as a query leaves them); a new server process
//! starts with every tenant cold, so after the command that tenant must no longer be HOT.

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use bulkhead_client::{CreatedKey, Query, proto};
use tokio::time::Instant;

use super::{audit_trail, collisions, cross_tenant, visibility};
use crate::canary::{self, COLLECTION};
use crate::fixture::{Fixture, ProbeTenant};
use crate::report::{ProbeResult, Problems, progress};

/// How long the server may take to answer again after the command.
const COMEBACK: Duration = Duration::from_secs(60);
const RETRY: Duration = Duration::from_millis(250);

pub async fn run(f: &Fixture, cmd: &str) -> Vec<ProbeResult> {
    progress(format!("restarting the server: sh -c {cmd:?}"));
    let restart = restart(f, cmd).await;
    if !restart.passed {
        return vec![restart];
    }
    progress("repeating the isolation checks after the restart");
    let mut again = visibility::run(f).await;
    again.push(collisions::run(f).await);
    again.extend(cross_tenant::run(f).await);
    again.push(audit_trail::run(f).await);
    again.push(keys_still_work(f).await);
    let mut results = vec![restart];
    results.extend(again.into_iter().map(|r| r.prefixed("after-restart")));
    results
}

/// Runs `cmd` with its output on stderr (stdout is the report's), then waits for the server.
async fn restart(f: &Fixture, cmd: &str) -> ProbeResult {
    const NAME: &str = "restart";
    let witness = &f.tenants[0];
    if let Err(e) = make_hot(f, witness).await {
        return ProbeResult::fail(
            NAME,
            format!(
                "could not make {} HOT before the restart: {e:#}",
                witness.id
            ),
        );
    }
    let cmd_owned = cmd.to_owned();
    let status = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        Command::new("sh")
            .args(["-c", &cmd_owned])
            .stdin(Stdio::null())
            .stdout(stderr)
            .status()
    })
    .await;
    match status {
        Ok(Ok(s)) if s.success() => {}
        Ok(Ok(s)) => return ProbeResult::fail(NAME, format!("`{cmd}` exited with {s}")),
        Ok(Err(e)) => return ProbeResult::fail(NAME, format!("running `{cmd}`: {e}")),
        Err(e) => return ProbeResult::fail(NAME, format!("running `{cmd}`: {e}")),
    }
    let started = Instant::now();
    loop {
        match f.admin.tenants().await {
            Ok(tenants) => {
                let name = format!("tenants/{}", witness.id);
                let state = tenants.iter().find(|t| t.name == name).map(|t| t.state());
                return match state {
                    Some(proto::TenantState::Hot) => ProbeResult::fail(
                        NAME,
                        format!(
                            "`{cmd}` succeeded but the server did not restart: {} is still HOT, \
                             its indexes still in memory from before the command",
                            witness.id
                        ),
                    ),
                    None => ProbeResult::fail(
                        NAME,
                        format!(
                            "{} is missing from the tenant list after `{cmd}`",
                            witness.id
                        ),
                    ),
                    Some(state) => ProbeResult::pass(
                        NAME,
                        format!(
                            "`{cmd}` succeeded; server answered {:.1} s later with {} {} \
                             (HOT before): a new process",
                            started.elapsed().as_secs_f32(),
                            witness.id,
                            state.as_str_name()
                        ),
                    ),
                };
            }
            Err(e) if started.elapsed() > COMEBACK => {
                return ProbeResult::fail(
                    NAME,
                    format!(
                        "server not answering {} s after `{cmd}`: {e}",
                        COMEBACK.as_secs()
                    ),
                );
            }
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}

/// Queries `t` so that its indexes are loaded, and checks the server reports it HOT.
async fn make_hot(f: &Fixture, t: &ProbeTenant) -> anyhow::Result<()> {
    let q = Query::new(canary::vector(0, t.index), 1);
    f.with_key(t, &t.read)?.query(COLLECTION, &q).await?;
    let state = f.admin.tenant(&t.id).await?.state();
    anyhow::ensure!(
        state == proto::TenantState::Hot,
        "{} is {} right after a query",
        t.id,
        state.as_str_name()
    );
    Ok(())
}

/// Whether `key` still opens `t`: a collection read for data keys, the key list for the
/// TENANT_ADMIN key.
async fn opens(f: &Fixture, t: &ProbeTenant, key: &CreatedKey) -> anyhow::Result<()> {
    let client = f.with_key(t, key)?;
    if key.key.role == proto::Role::TenantAdmin as i32 {
        client.keys().await?;
    } else {
        client.collection(COLLECTION).await?;
    }
    Ok(())
}

/// Every key made before the restart still opens its own tenant.
async fn keys_still_work(f: &Fixture) -> ProbeResult {
    const NAME: &str = "keys-still-work";
    let mut problems = Problems::default();
    let mut tried = 0;
    for t in &f.tenants {
        for key in t.keys() {
            tried += 1;
            if let Err(e) = opens(f, t, key).await {
                problems.push(format!("{}'s key {}: {e:#}", t.id, key.key_id()));
            }
        }
    }
    problems.verdict(
        NAME,
        format!("{tried} keys made before the restart still work"),
    )
}
