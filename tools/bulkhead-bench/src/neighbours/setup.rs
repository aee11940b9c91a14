//! The two tenants, made fresh for each run so that nothing left by an earlier run (keys,
//! records, audit events) changes what is measured: the victim with one HNSW collection, the
//! attacker with a large HNSW collection whose records carry an indexed keyword list (so that
//! filters on it are valid) and a flat copy of it (so that a query scans it all).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bulkhead_client::proto as pb;
use bulkhead_client::{
    AdminClient, Client, ClientError, CollectionSpec, Metric, Record, Role, TenantClient,
    TenantOptions, TenantUpdate, Value,
};

use crate::dataset::Dataset;
use crate::parallel::parallel;

/// Both tenants' HNSW collections.
pub const HNSW: &str = "docs";
/// The attacker's copy that is always searched exactly.
pub const FLAT: &str = "flat";
/// The attacker's indexed metadata field: `["common", "t<row % 50>"]`.
pub const TAGS: &str = "tags";
pub const COMMON_TAG: &str = "common";
const BATCH: usize = 500;
const DESCRIPTION: &str = "bulkhead-bench neighbours";

/// The secrets of the keys made for the run.
#[derive(Debug)]
pub struct Keys {
    pub victim_write: String,
    pub attacker_read: String,
    pub attacker_write: String,
    pub attacker_admin: String,
}

/// The tenants to make and how many records each holds.
#[derive(Debug)]
pub struct Plan<'a> {
    pub endpoint: &'a str,
    pub admin_token: &'a str,
    pub victim: &'a str,
    pub attacker: &'a str,
    pub victim_records: usize,
    pub attacker_records: usize,
    /// Set on the attacker once it is loaded (bytes/s).
    pub attacker_write_limit: Option<u64>,
    pub writers: usize,
}

/// The attacker's metadata for data set row `row`.
pub fn tags(row: usize) -> Value {
    Value::StringList(vec![COMMON_TAG.to_owned(), format!("t{}", row % 50)])
}

async fn admin(plan: &Plan<'_>) -> Result<(Client, AdminClient)> {
    let client = Client::builder(plan.endpoint)
        .timeout(Duration::from_secs(120))
        .connect()
        .await
        .with_context(|| format!("connecting to {}", plan.endpoint))?;
    let admin = client.admin(plan.admin_token)?;
    Ok((client, admin))
}

/// Makes both tenants afresh, their collections and keys, and loads their records.
pub async fn prepare(plan: &Plan<'_>, data: &Arc<Dataset>) -> Result<Keys> {
    let (client, admin) = admin(plan).await?;
    for tenant in [plan.victim, plan.attacker] {
        match admin.delete_tenant(tenant).await {
            Ok(()) | Err(ClientError::NotFound(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("deleting tenant {tenant}")),
        }
        admin
            .create_tenant(tenant, &TenantOptions::default())
            .await
            .with_context(|| format!("creating tenant {tenant}"))?;
    }
    let admin = &admin;
    let key = |tenant, role| async move {
        anyhow::Ok(
            admin
                .create_key(tenant, role, None, DESCRIPTION)
                .await?
                .secret,
        )
    };
    let keys = Keys {
        victim_write: key(plan.victim, Role::Write).await?,
        attacker_read: key(plan.attacker, Role::Read).await?,
        attacker_write: key(plan.attacker, Role::Write).await?,
        attacker_admin: key(plan.attacker, Role::TenantAdmin).await?,
    };
    let dim = data.base.dim as u32;
    let victim = client.tenant(plan.victim, &keys.victim_write)?;
    let attacker = client.tenant(plan.attacker, &keys.attacker_write)?;
    victim
        .create_collection(HNSW, &CollectionSpec::new(dim, Metric::Cosine))
        .await?;
    let tagged =
        CollectionSpec::new(dim, Metric::Cosine).with_indexed_field(TAGS, pb::FieldType::Keyword);
    attacker.create_collection(HNSW, &tagged).await?;
    // Searched exactly below this many records, as `bulk` makes its flat collection.
    let flat = tagged.with_hnsw(pb::HnswParams {
        flat_threshold: 10_000_000,
        ..Default::default()
    });
    attacker.create_collection(FLAT, &flat).await?;
    let loads = [
        (victim, HNSW, 0..plan.victim_records, false),
        (attacker.clone(), HNSW, 0..plan.attacker_records, true),
        (attacker, FLAT, 0..plan.attacker_records, true),
    ];
    eprintln!(
        "neighbours: loading {} victim and 2 × {} attacker records",
        plan.victim_records, plan.attacker_records
    );
    let took = parallel(plan.writers, batches(&loads), {
        let data = data.clone();
        move |(tenant, collection, rows, tagged): Batch| {
            let records: Vec<Record> = rows
                .map(|row| {
                    let record = Record::new(row.to_string(), data.base.row(row).to_vec());
                    match tagged {
                        true => record.with_metadata(TAGS, tags(row)),
                        false => record,
                    }
                })
                .collect();
            async move {
                // A fast load of the attacker's records can pass the server's default limit.
                tenant
                    .upsert_at_the_servers_pace(collection, &records)
                    .await?;
                Ok(())
            }
        }
    })
    .await?;
    eprintln!("neighbours: loaded in {:.1} s", took.as_secs_f64());
    if let Some(limit) = plan.attacker_write_limit {
        let update = TenantUpdate {
            write_bytes_per_second: Some(limit),
            ..Default::default()
        };
        admin
            .update_tenant(plan.attacker, &update)
            .await
            .context("setting the attacker's write limit")?;
        eprintln!("neighbours: the attacker may write {limit} bytes/s from now on");
    }
    Ok(keys)
}

/// Longest wait for the HNSW collections' background builds before a scenario.
const BUILD_WAIT: Duration = Duration::from_secs(600);

/// Waits until neither tenant's HNSW collection is building its graph in the background (the
/// promotion past the flat threshold after loading, a compaction after a write flood) or
/// waiting for its promotion to start, so that a scenario's baseline measures the victim's own
/// load and not an index build; returns how long that took.
pub async fn wait_for_index_builds(plan: &Plan<'_>, keys: &Keys) -> Result<Duration> {
    let (client, _) = admin(plan).await?;
    let collections = [
        (client.tenant(plan.victim, &keys.victim_write)?, HNSW),
        (client.tenant(plan.attacker, &keys.attacker_write)?, HNSW),
    ];
    let started = std::time::Instant::now();
    let mut reported = Duration::ZERO;
    loop {
        let mut building = Vec::new();
        for (tenant, collection) in &collections {
            let info = tenant.collection(collection).await?;
            let status = info.index.unwrap_or_default();
            // A promotion that is wanted but waits for its turn (behind the other tenant's
            // build) does not show as building yet.
            let threshold = info.hnsw.map_or(u64::MAX, |p| u64::from(p.flat_threshold));
            let promotion_due =
                status.kind() == pb::IndexKind::Flat && info.record_count > threshold;
            if status.building || promotion_due {
                building.push(format!("{}/{collection}", tenant.tenant_id()));
            }
        }
        let waited = started.elapsed();
        if building.is_empty() {
            return Ok(waited);
        }
        anyhow::ensure!(
            waited < BUILD_WAIT,
            "index builds still running after {} s: {}",
            BUILD_WAIT.as_secs(),
            building.join(", ")
        );
        if waited >= reported + Duration::from_secs(10) {
            eprintln!(
                "neighbours: waiting for index builds ({}), {} s so far",
                building.join(", "),
                waited.as_secs()
            );
            reported = waited;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One upsert: tenant, collection, data set rows, whether the records carry tags.
type Batch = (TenantClient, &'static str, Range<usize>, bool);

fn batches(loads: &[(TenantClient, &'static str, Range<usize>, bool)]) -> Vec<Batch> {
    loads
        .iter()
        .flat_map(|(tenant, collection, rows, tagged)| {
            rows.clone().step_by(BATCH).map(move |start| {
                let end = (start + BATCH).min(rows.end);
                (tenant.clone(), *collection, start..end, *tagged)
            })
        })
        .collect()
}

/// Deletes both tenants.
pub async fn remove(plan: &Plan<'_>) -> Result<()> {
    let (_, admin) = admin(plan).await?;
    for tenant in [plan.victim, plan.attacker] {
        admin
            .delete_tenant(tenant)
            .await
            .with_context(|| format!("deleting tenant {tenant}"))?;
    }
    Ok(())
}
