//! `bulkhead tenant ...`: tenant lifecycle, with the admin token.

use std::time::Duration;

use anyhow::Result;
use bulkhead_client::TenantOptions;
use bulkhead_client::proto as pb;
use clap::Subcommand;
use serde_json::json;

use super::Session;
use super::output::{Rows, time};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        tenant: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// List every tenant.
    List,
    /// Show one tenant.
    Get { tenant: String },
    /// Change a tenant's quota, rate limit or audit retention (only the flags given).
    Update {
        tenant: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Delete a tenant with all its data and keys.
    Delete { tenant: String },
}

#[derive(Debug, clap::Args)]
pub struct Settings {
    /// Most collections (0 = unlimited).
    #[arg(long)]
    max_collections: Option<i64>,
    /// Most live records (0 = unlimited).
    #[arg(long)]
    max_records: Option<i64>,
    /// Most stored bytes (0 = unlimited).
    #[arg(long)]
    max_stored_bytes: Option<i64>,
    /// Requests per second (0 = unlimited); with --burst.
    #[arg(long)]
    requests_per_second: Option<f64>,
    #[arg(long, requires = "requests_per_second")]
    burst: Option<i64>,
    /// How long audit events are kept, e.g. `30d`.
    #[arg(long, value_parser = humantime::parse_duration)]
    audit_retention: Option<Duration>,
}

impl Settings {
    fn options(&self) -> TenantOptions {
        let quota_given = self.max_collections.is_some()
            || self.max_records.is_some()
            || self.max_stored_bytes.is_some();
        TenantOptions {
            quota: quota_given.then(|| pb::Quota {
                max_collections: self.max_collections.unwrap_or(0),
                max_records: self.max_records.unwrap_or(0),
                max_stored_bytes: self.max_stored_bytes.unwrap_or(0),
            }),
            rate_limit: self.requests_per_second.map(|rps| pb::RateLimit {
                requests_per_second: rps,
                burst: self.burst.unwrap_or(0),
                write_bytes_per_second: 0,
            }),
            audit_retention: self.audit_retention,
        }
    }
}

pub async fn run(s: &Session, command: TenantCommand) -> Result<()> {
    let admin = s.admin()?;
    match command {
        TenantCommand::Create { tenant, settings } => {
            s.out.one(&rows([admin
                .create_tenant(&tenant, &settings.options())
                .await?]));
        }
        TenantCommand::List => s.out.list(&rows(admin.tenants().await?)),
        TenantCommand::Get { tenant } => s.out.one(&rows([admin.tenant(&tenant).await?])),
        TenantCommand::Update { tenant, settings } => {
            s.out.one(&rows([admin
                .update_tenant(&tenant, &settings.options())
                .await?]));
        }
        TenantCommand::Delete { tenant } => {
            admin.delete_tenant(&tenant).await?;
            s.out.note(&format!("deleted tenants/{tenant}"));
        }
    }
    Ok(())
}

fn rows(tenants: impl IntoIterator<Item = pb::Tenant>) -> Rows {
    let mut r = Rows::new(&[
        "name",
        "state",
        "group",
        "create_time",
        "max_records",
        "requests_per_second",
        "audit_retention_seconds",
    ]);
    for t in tenants {
        let state = pb::TenantState::try_from(t.state)
            .map_or("UNKNOWN", |s| s.as_str_name())
            .trim_start_matches("TENANT_STATE_");
        r.push(vec![
            json!(t.name),
            json!(state),
            json!(t.group),
            time(t.create_time.as_ref()),
            json!(t.quota.map_or(0, |q| q.max_records)),
            json!(t.rate_limit.map_or(0.0, |l| l.requests_per_second)),
            json!(t.audit_retention_seconds),
        ]);
    }
    r
}
