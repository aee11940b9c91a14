//! `bulkhead tenant ...`: tenant lifecycle, with the admin token.

use std::time::Duration;

use anyhow::Result;
use bulkhead_client::TenantUpdate;
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
    /// Change a tenant's quota, rate limit, share, audit retention or token lifetime bound (only
    /// the flags given).
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
    max_collections: Option<u64>,
    /// Most live records (0 = unlimited).
    #[arg(long)]
    max_records: Option<u64>,
    /// Most stored bytes (0 = unlimited).
    #[arg(long)]
    max_stored_bytes: Option<u64>,
    /// Requests per second (0 = unlimited).
    #[arg(long)]
    requests_per_second: Option<f64>,
    /// Requests allowed at once above the rate (0 = one second's worth).
    #[arg(long)]
    burst: Option<u64>,
    /// Bytes written per second (0 = unlimited).
    #[arg(long)]
    write_bytes_per_second: Option<u64>,
    /// How long audit events are kept, e.g. `30d`.
    #[arg(long, value_parser = humantime::parse_duration)]
    audit_retention: Option<Duration>,
    /// Longest lifetime of the tenant's end-user tokens, e.g. `15m` (at most, and by
    /// default, `24h`; `0s` lifts a lower bound).
    #[arg(long, value_parser = humantime::parse_duration)]
    max_token_lifetime: Option<Duration>,
    /// Most requests of the tenant in flight at once (0 = the server's
    /// `tenant-requests-in-flight`).
    #[arg(long)]
    requests_in_flight: Option<u64>,
    /// Most Import and Export streams the tenant holds open (0 = the server's
    /// `tenant-open-streams`).
    #[arg(long)]
    open_streams: Option<u64>,
    /// Normal-priority engine threads the tenant holds at once, and its weight in the fair
    /// division of them (0 = the server's `engine-threads-per-tenant`).
    #[arg(long)]
    engine_threads: Option<u64>,
    /// Most bytes of the tenant's Upserts, Stores and Appends the server receives and writes at
    /// once (0 = the server's `tenant-write-bytes-in-flight`).
    #[arg(long)]
    write_bytes_in_flight: Option<u64>,
}

impl Settings {
    /// A change of exactly the settings given; the others keep their values.
    fn update(&self) -> TenantUpdate {
        TenantUpdate {
            max_collections: self.max_collections,
            max_records: self.max_records,
            max_stored_bytes: self.max_stored_bytes,
            requests_per_second: self.requests_per_second,
            burst: self.burst,
            write_bytes_per_second: self.write_bytes_per_second,
            audit_retention: self.audit_retention,
            max_token_lifetime: self.max_token_lifetime,
            requests_in_flight: self.requests_in_flight,
            open_streams: self.open_streams,
            engine_threads: self.engine_threads,
            write_bytes_in_flight: self.write_bytes_in_flight,
        }
    }
}

pub async fn run(s: &Session, command: TenantCommand) -> Result<()> {
    let admin = s.admin()?;
    match command {
        TenantCommand::Create { tenant, settings } => {
            s.out.one(&rows([admin
                .create_tenant(&tenant, &settings.update().to_options())
                .await?]));
        }
        TenantCommand::List => s.out.list(&rows(admin.tenants().await?)),
        TenantCommand::Get { tenant } => s.out.one(&rows([admin.tenant(&tenant).await?])),
        TenantCommand::Update { tenant, settings } => {
            s.out.one(&rows([admin
                .update_tenant(&tenant, &settings.update())
                .await?]));
        }
        TenantCommand::Delete { tenant } => {
            admin.delete_tenant(&tenant).await?;
            s.out.done("deleted", &format!("tenants/{tenant}"));
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
        "max_collections",
        "max_records",
        "max_stored_bytes",
        "requests_per_second",
        "burst",
        "write_bytes_per_second",
        "audit_retention_seconds",
        "max_token_lifetime_seconds",
        "requests_in_flight",
        "open_streams",
        "engine_threads",
        "write_bytes_in_flight",
    ]);
    for t in tenants {
        let state = pb::TenantState::try_from(t.state)
            .map_or("UNKNOWN", |s| s.as_str_name())
            .trim_start_matches("TENANT_STATE_");
        let quota = t.quota.unwrap_or_default();
        let rate = t.rate_limit.unwrap_or_default();
        let share = t.share.unwrap_or_default();
        r.push(vec![
            json!(t.name),
            json!(state),
            json!(t.group),
            time(t.create_time.as_ref()),
            json!(quota.max_collections),
            json!(quota.max_records),
            json!(quota.max_stored_bytes),
            json!(rate.requests_per_second),
            json!(rate.burst),
            json!(rate.write_bytes_per_second),
            json!(t.audit_retention_seconds),
            json!(t.max_token_lifetime_seconds),
            json!(share.requests_in_flight),
            json!(share.open_streams),
            json!(share.engine_threads),
            json!(share.write_bytes_in_flight),
        ]);
    }
    r
}
