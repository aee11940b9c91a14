//! `bulkhead-leakprobe`: red-teams a running Bulkhead server for cross-tenant leaks. It
//! needs nothing but the endpoint and the admin token, so operators can point it at their
//! own deployment: it works in throwaway tenants it creates and removes, plants canaries in
//! them and tries every way it knows to read one tenant's canary as another.
//!
//! Exit status: 0 when every probe passed, 1 when any failed (a leak or an unexpected
//! answer), 2 on usage or connection errors, when nothing could be probed.

mod canary;
mod fixture;
mod probes;
mod raw;
mod remote;
mod report;
mod user_tokens;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use std::path::PathBuf;

use bulkhead_client::TlsOptions;
use clap::Parser;

use crate::fixture::Fixture;
use crate::probes::Plan;
use crate::remote::Remote;
use crate::report::{Report, progress};

const EXIT_LEAK: u8 = 1;
const EXIT_UNUSABLE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "bulkhead-leakprobe",
    version,
    about = "Probe a running Bulkhead server for cross-tenant leaks, in throwaway tenants"
)]
struct Args {
    /// The server's gRPC endpoint.
    #[arg(
        long,
        env = "BULKHEAD_ENDPOINT",
        default_value = "http://127.0.0.1:7600"
    )]
    endpoint: String,
    /// PEM CA certificate(s) to trust for an https:// endpoint, instead of the public roots.
    #[arg(long, env = "BULKHEAD_TLS_CA", value_name = "PEM")]
    tls_ca: Option<PathBuf>,
    /// PEM client certificate, for servers that require one (mutual TLS); needs --client-key.
    #[arg(long, env = "BULKHEAD_CLIENT_CERT", value_name = "PEM")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "BULKHEAD_CLIENT_KEY", value_name = "PEM")]
    client_key: Option<PathBuf>,
    /// The server's admin token (creates and deletes the probe tenants).
    #[arg(long, env = "BULKHEAD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Probe tenants to create (at least 2).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(2..))]
    tenants: u16,
    /// How long the interleaved clients run: `5s`, `1m`, or a number of seconds.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// `top_k` of every query: the server's `max-top-k`.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    top_k: u32,
    /// Shell command that restarts the server; the isolation checks run again afterwards.
    #[arg(long)]
    restart_cmd: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match probe(&args).await {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.table());
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_LEAK)
            }
        }
        Err(e) => {
            eprintln!("bulkhead-leakprobe: {e:#}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

/// A humantime duration (`5s`, `1m30s`), or a bare number of seconds; never zero.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string())?,
    };
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// Sets up, runs every probe and cleans up, also when setup fails or the run is interrupted.
/// An error means nothing could be probed.
async fn probe(args: &Args) -> anyhow::Result<Report> {
    let remote = Remote {
        endpoint: args.endpoint.clone(),
        tls: TlsOptions::from_files(
            args.tls_ca.as_deref(),
            args.client_cert.as_deref(),
            args.client_key.as_deref(),
        )?,
    };
    let client = remote.client().await?;
    let admin = client.admin(&args.admin_token)?;
    admin
        .tenants()
        .await
        .context("listing tenants with the admin token")?;
    let prefix = fixture::run_prefix();
    let plan = Plan {
        duration: args.duration,
        restart_cmd: args.restart_cmd.clone(),
    };
    let run = async {
        let fixture = Fixture::set_up(
            &remote,
            client.clone(),
            &args.admin_token,
            args.top_k,
            &prefix,
            usize::from(args.tenants),
        )
        .await
        .context("setting up the probe tenants")?;
        anyhow::Ok(probes::run_all(&fixture, &plan).await)
    };
    let outcome = tokio::select! {
        outcome = run => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let cleanup = fixture::remove_tenants(&admin, &prefix).await;
    if !cleanup.passed {
        progress(format!("cleanup: {}", cleanup.detail));
    }
    let mut probes = outcome?;
    probes.push(cleanup);
    Ok(Report {
        probes,
        tenants: usize::from(args.tenants),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_plain_seconds_but_not_zero() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn flags_and_environment_parse_as_documented() {
        let args = Args::try_parse_from([
            "bulkhead-leakprobe",
            "--admin-token",
            "t0123456789abcdef",
            "--tenants",
            "3",
            "--restart-cmd",
            "true",
            "--json",
        ])
        .unwrap();
        assert_eq!(args.tenants, 3);
        assert_eq!(args.duration, Duration::from_secs(5));
        assert_eq!(args.top_k, 1000);
        assert_eq!(args.restart_cmd.as_deref(), Some("true"));
        assert!(args.json);
        let one_tenant =
            Args::try_parse_from(["bulkhead-leakprobe", "--admin-token", "t", "--tenants", "1"]);
        assert!(one_tenant.is_err());
    }
}
