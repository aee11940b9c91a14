//! `bulkhead export` and `bulkhead import-tenant`: a tenant's collections as Arrow IPC files
//! plus a manifest of their settings, and back. An export holds one tenant's data only (every
//! call goes through a handle fixed to that tenant), and a restore creates the target tenant
//! and refuses to write into an existing one unless `--merge` says so.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use bulkhead_client::proto as pb;
use bulkhead_client::{ClientError, CollectionSpec, Metric, TenantOptions};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Session;

const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "bulkhead-export/1";

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    tenant: String,
    exported_at: String,
    collections: Vec<CollectionEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CollectionEntry {
    id: String,
    dimension: u32,
    metric: String,
    default_ttl_seconds: Option<i64>,
    m: u32,
    ef_construction: u32,
    ef_search: u32,
    flat_threshold: u32,
    records: u64,
    file: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, env = "BULKHEAD_TENANT")]
    tenant: String,
    /// Directory to write (created; must not hold an export already).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportTenantArgs {
    /// A directory written by `bulkhead export`.
    dir: PathBuf,
    /// The tenant to restore into (may differ from the exported one).
    #[arg(long, env = "BULKHEAD_TENANT")]
    tenant: String,
    /// Import into an existing tenant (and existing collections of the same dimension).
    #[arg(long)]
    merge: bool,
}

pub async fn export(s: &Session, args: ExportArgs) -> Result<()> {
    let manifest_path = args.out.join(MANIFEST);
    ensure!(
        !manifest_path.exists(),
        "{} already holds an export",
        args.out.display()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let tenant = s.tenant(&args.tenant)?;
    let mut entries = Vec::new();
    for c in tenant.collections().await? {
        let id = c.name.rsplit('/').next().unwrap_or_default().to_owned();
        let file = format!("{id}.arrows");
        let started = Instant::now();
        let mut out = BufWriter::new(
            File::create(args.out.join(&file)).with_context(|| format!("creating {file}"))?,
        );
        let bytes = tenant
            .export_arrow(&id, |chunk| out.write_all(chunk))
            .await?;
        out.flush()?;
        s.out.note(&format!(
            "{id}: {} records, {bytes} bytes in {:.1} s",
            c.record_count,
            started.elapsed().as_secs_f64()
        ));
        entries.push(entry(&id, &c, file));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        tenant: args.tenant.clone(),
        exported_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        collections: entries,
    };
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)?;
    if s.out.json {
        println!("{}", serde_json::to_string(&manifest)?);
    } else {
        println!(
            "exported {} collections of tenants/{} to {}",
            manifest.collections.len(),
            args.tenant,
            args.out.display()
        );
    }
    Ok(())
}

fn entry(id: &str, c: &pb::Collection, file: String) -> CollectionEntry {
    let hnsw = c.hnsw.unwrap_or_default();
    CollectionEntry {
        id: id.to_owned(),
        dimension: c.dimension,
        metric: pb::Metric::try_from(c.metric)
            .map_or("UNKNOWN", |m| m.as_str_name())
            .to_owned(),
        default_ttl_seconds: c.default_ttl_seconds,
        m: hnsw.m,
        ef_construction: hnsw.ef_construction,
        ef_search: hnsw.ef_search,
        flat_threshold: hnsw.flat_threshold,
        records: c.record_count,
        file,
    }
}

pub async fn import_tenant(s: &Session, args: ImportTenantArgs) -> Result<()> {
    let manifest = read_manifest(&args.dir)?;
    match s.admin() {
        Ok(admin) => match admin
            .create_tenant(&args.tenant, &TenantOptions::default())
            .await
        {
            Ok(_) => {}
            Err(ClientError::AlreadyExists(_)) if args.merge => {}
            Err(ClientError::AlreadyExists(_)) => bail!(
                "tenant {} exists; restoring never merges into a tenant unless --merge is given",
                args.tenant
            ),
            Err(e) => return Err(e.into()),
        },
        Err(_) if args.merge => {}
        Err(e) => return Err(e.context("creating the target tenant")),
    }
    let tenant = s.tenant(&args.tenant)?;
    let mut restored = Vec::new();
    for c in &manifest.collections {
        let spec = spec(c)?;
        match tenant.create_collection(&c.id, &spec).await {
            Ok(_) => {}
            Err(ClientError::AlreadyExists(_)) if args.merge => {
                let existing = tenant.collection(&c.id).await?;
                ensure!(
                    existing.dimension == c.dimension,
                    "collection {} exists with dimension {}, the export has {}",
                    c.id,
                    existing.dimension,
                    c.dimension
                );
            }
            Err(e) => return Err(e.into()),
        }
        let path = args.dir.join(&c.file);
        let ipc = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let started = Instant::now();
        let result = tenant
            .import_arrow(&c.id, &ipc)
            .await
            .with_context(|| format!("importing {}", path.display()))?;
        let secs = started.elapsed().as_secs_f64();
        s.out.note(&format!(
            "{}: {} records in {secs:.1} s ({:.0}/s)",
            c.id,
            result.imported,
            result.imported as f64 / secs.max(1e-9)
        ));
        restored.push(json!({"collection": c.id, "imported": result.imported, "seconds": secs}));
    }
    if s.out.json {
        println!(
            "{}",
            json!({"tenant": args.tenant, "collections": restored})
        );
    } else {
        println!(
            "restored {} collections into tenants/{}",
            restored.len(),
            args.tenant
        );
    }
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    ensure!(
        manifest.format == FORMAT,
        "{}: format {:?}, expected {FORMAT:?}",
        path.display(),
        manifest.format
    );
    Ok(manifest)
}

fn spec(c: &CollectionEntry) -> Result<CollectionSpec> {
    let metric: Metric = c
        .metric
        .to_ascii_lowercase()
        .parse()
        .with_context(|| format!("collection {}: metric {:?}", c.id, c.metric))?;
    let mut spec = CollectionSpec::new(c.dimension, metric);
    spec.default_ttl = c
        .default_ttl_seconds
        .map(|s| std::time::Duration::from_secs(s.max(1) as u64));
    spec.hnsw = Some(pb::HnswParams {
        m: c.m,
        ef_construction: c.ef_construction,
        ef_search: c.ef_search,
        flat_threshold: c.flat_threshold,
    });
    Ok(spec)
}
