//! The leak probe (`tools/bulkhead-leakprobe`) against the real server, run as an operator
//! would: every probe passes, the restart command really restarts the server mid-run, and
//! no probe tenant is left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bulkhead_client::Client;
use serde_json::Value as Json;

use crate::harness::{ADMIN, Server};

/// The probe binary, next to `bulkhead` in the same target dir and profile, built by this
/// test every time (a no-op when it is current) so a stale probe from an older checkout is
/// never the one that passes.
pub(crate) fn leakprobe() -> PathBuf {
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_bulkhead")).parent().unwrap();
    let probe = profile_dir.join("bulkhead-leakprobe");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--offline", "-p", "bulkhead-leakprobe"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    match profile_dir.file_name().unwrap().to_str().unwrap() {
        "debug" => {}
        "release" => {
            cargo.arg("--release");
        }
        other => {
            cargo.args(["--profile", other]);
        }
    }
    let status = cargo.status().expect("running cargo");
    assert!(status.success(), "building bulkhead-leakprobe: {status}");
    assert!(
        probe.exists(),
        "{} missing after the build",
        probe.display()
    );
    probe
}

/// Runs the probe against `addr` as an operator would (JSON report, the admin token from the
/// environment) and returns its output.
async fn run_probe(
    addr: &str,
    tenants: u32,
    duration: &str,
    restart_cmd: &str,
) -> std::process::Output {
    let mut probe = Command::new(leakprobe());
    probe
        .args(["--endpoint", &format!("http://{addr}")])
        .args([
            "--tenants",
            &tenants.to_string(),
            "--duration",
            duration,
            "--json",
        ])
        .args(["--restart-cmd", restart_cmd])
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .env_remove("BULKHEAD_ENDPOINT");
    tokio::task::spawn_blocking(move || probe.output())
        .await
        .unwrap()
        .expect("running bulkhead-leakprobe")
}

/// A shell command for `--restart-cmd` that asks the test to restart the server (by creating
/// `requested`) and returns once it has (`restarted` exists), giving up after 60 s.
fn restart_command(requested: &Path, restarted: &Path) -> String {
    format!(
        "touch '{}' && for _ in $(seq 600); do [ -e '{}' ] && exit 0; sleep 0.1; done; exit 1",
        requested.display(),
        restarted.display()
    )
}

#[tokio::test]
async fn the_leakprobe_passes_against_the_server_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let markers = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &[]);
    let addr = server.addr.clone();
    let requested = markers.path().join("restart-requested");
    let restarted = markers.path().join("restarted");
    let restart_cmd = restart_command(&requested, &restarted);

    // Restarts the server on the same address and data when the probe's command asks.
    let probe_done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, dir, addr) = (probe_done.clone(), data.path().to_owned(), addr.clone());
        std::thread::spawn(move || {
            let mut server = server;
            while !done.load(Ordering::Relaxed) {
                if requested.exists() {
                    assert!(server.terminate().success());
                    let again = Server::start_at(&dir, &addr, &[]);
                    std::fs::write(&restarted, b"").unwrap();
                    return (again, true);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (server, false)
        })
    };

    let out = run_probe(&addr, 4, "2s", &restart_cmd).await;
    probe_done.store(true, Ordering::Relaxed);
    let (server, did_restart) = watcher.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "probe exited {}: {}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(did_restart, "the restart command never ran: {stderr}");

    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["tenants"], 4);
    let probes = report["probes"].as_array().unwrap();
    for p in probes {
        assert_eq!(p["passed"], true, "{p}");
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{p}");
    }
    let names: Vec<&str> = probes.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for expected in [
        "own-key-query",
        "own-key-get",
        "own-key-list-collections",
        "own-key-list-keys",
        "own-key-audit",
        "id-collisions",
        "lookalike-names",
        "interleaved-clients",
        "ttl-expiry",
        "missing-credentials",
        "revoked-key",
        "expired-key",
        "role-limits",
        "cross-tenant-rpcs",
        "tenant-key-admin-rpcs",
        "cross-tenant-target-unchanged",
        "denials-audited",
        "restart",
        "after-restart/own-key-query",
        "after-restart/cross-tenant-rpcs",
        "after-restart/keys-still-work",
        "semantic-cache",
        "cross-tenant-cache-rpcs",
        "cross-tenant-cache-unchanged",
        "cache-denials-audited",
        "recreated-tenant-starts-empty",
        "recreated-tenant-old-keys-refused",
        "cleanup",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    let admin = Client::connect(format!("http://{}", server.addr))
        .await
        .unwrap()
        .admin(ADMIN)
        .unwrap();
    let left: Vec<String> = admin
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n.starts_with("tenants/probe-"))
        .collect();
    assert!(left.is_empty(), "probe tenants left behind: {left:?}");
}

/// A restart command that succeeds without restarting anything must fail the `restart`
/// probe: otherwise the "after-restart" round would only repeat the first one.
#[tokio::test]
async fn a_restart_command_that_restarts_nothing_fails_the_probe() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), &[]);
    let out = run_probe(&server.addr, 2, "1s", "true").await;
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let probes = report["probes"].as_array().unwrap();
    let restart = probes
        .iter()
        .find(|p| p["name"] == "restart")
        .unwrap_or_else(|| panic!("no restart probe in {report:#}"));
    assert_eq!(restart["passed"], false, "{restart}");
    assert!(
        restart["detail"]
            .as_str()
            .unwrap()
            .contains("did not restart"),
        "{restart}"
    );
    // Everything else passed: the failure is the missing restart and nothing else.
    for p in probes.iter().filter(|p| p["name"] != "restart") {
        assert_eq!(p["passed"], true, "{p}");
    }
    assert!(
        !probes
            .iter()
            .any(|p| p["name"].as_str().unwrap().starts_with("after-restart/")),
        "no second round after a failed restart: {report:#}"
    );
}
