//! Isolation has to survive a restart: indexes rebuilt from disk, key caches refilled and
//! tenant registries reloaded are new chances to mix tenants up or to forget a revocation.
//! The operator's command restarts the server between two rounds of the same checks.

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use bulkhead_client::{CreatedKey, proto};
use tokio::time::Instant;

use super::{audit_trail, collisions, cross_tenant, visibility};
use crate::canary::COLLECTION;
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
            Ok(_) => {
                return ProbeResult::pass(
                    NAME,
                    format!(
                        "`{cmd}` succeeded; server answered {:.1} s later",
                        started.elapsed().as_secs_f32()
                    ),
                );
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
