//! `bulkhead audit`: who did what to a tenant, including the attempts that were denied.
//! Events come oldest first, `--limit` at a time; when more remain, a last line on stderr
//! gives the `--page-token` that continues, so a cut-off listing never passes for the whole
//! trail (stdout stays one table or one JSON array, as before).

use std::time::SystemTime;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;

use super::Session;
use super::output::{Rows, time};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, env = "BULKHEAD_TENANT")]
    tenant: String,
    /// Most events to show.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Only events from this time on: RFC 3339 (`2026-11-24T10:00:00Z`) or an age (`1h`).
    #[arg(long, value_parser = parse_since)]
    since: Option<SystemTime>,
    /// Continue after the events already shown (the token a previous run printed).
    #[arg(long)]
    page_token: Option<String>,
}

fn parse_since(s: &str) -> Result<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    match humantime::parse_duration(s) {
        Ok(age) => Ok(SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH)),
        Err(_) => bail!("expected an RFC 3339 time or an age like 1h, got {s:?}"),
    }
}

pub async fn run(s: &Session, args: AuditArgs) -> Result<()> {
    let (events, next_page_token) = s
        .tenant(&args.tenant)?
        .audit_page(
            args.since,
            args.page_token.as_deref().unwrap_or_default(),
            args.limit,
        )
        .await?;
    let mut r = Rows::new(&[
        "sequence",
        "time",
        "principal",
        "method",
        "resource",
        "outcome",
        "records",
    ]);
    for e in events {
        r.push(vec![
            json!(e.sequence),
            time(e.time.as_ref()),
            json!(e.principal),
            json!(e.method),
            json!(e.resource),
            json!(e.outcome),
            json!(e.record_count),
        ]);
    }
    s.out.list(&r);
    if !next_page_token.is_empty() {
        eprintln!("more events: rerun with --page-token {next_page_token}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn since_takes_a_time_or_an_age() {
        let t = parse_since("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(t).to_string(),
            "2026-01-02T03:04:05Z"
        );
        let since = parse_since("1h").unwrap();
        let age = SystemTime::now().duration_since(since).unwrap();
        assert!(
            age >= Duration::from_secs(3600) && age < Duration::from_secs(3700),
            "{age:?}"
        );
        assert!(parse_since("yesterday").is_err());
    }
}
