//! `bulkhead export` and `bulkhead import-tenant`: a tenant's collections as Arrow IPC files
//! plus a manifest of their settings and the tenant's limits, and back. An export holds one
//! tenant's data only (every call goes through a handle fixed to that tenant). A restore that
//! creates its tenant does everything with the admin token, applies the limits once the data is
//! in (so a low rate limit can't throttle the restore itself), and deletes the tenant again if
//! any step fails, so a failed restore never leaves a half-made tenant behind.

mod manifest;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use bulkhead_client::{ClientError, TenantClient, TenantOptions};
use clap::Args;
use serde_json::json;

use super::Session;
use manifest::{CollectionEntry, MANIFEST, Manifest, TenantLimits};

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
    /// Import into an existing tenant (and existing collections of the same dimension); the
    /// tenant keeps its own limits.
    #[arg(long)]
    merge: bool,
}

pub async fn export(s: &Session, args: ExportArgs) -> Result<()> {
    let command_started = Instant::now();
    let manifest_path = args.out.join(MANIFEST);
    ensure!(
        !manifest_path.exists(),
        "{} already holds an export",
        args.out.display()
    );
    // The limits need the admin token; without it the manifest says they were left out.
    let settings = match s.admin() {
        Ok(admin) => Some(TenantLimits::of(&admin.tenant(&args.tenant).await?)),
        Err(_) => {
            s.out.note(
                "note: no admin token, so the tenant's quota, rate limit and audit retention are not exported",
            );
            None
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let tenant = s.tenant(&args.tenant)?;
    let mut manifest = Manifest::new(&args.tenant, settings);
    for c in tenant.collections().await? {
        let id = c.name.rsplit('/').next().unwrap_or_default().to_owned();
        let file = format!("{id}.arrows");
        let started = Instant::now();
        let mut out = BufWriter::new(
            File::create(args.out.join(&file)).with_context(|| format!("creating {file}"))?,
        );
        let mut first_data = None;
        let bytes = tenant
            .export_arrow(&id, |chunk| {
                first_data.get_or_insert_with(|| command_started.elapsed());
                out.write_all(chunk)
            })
            .await?;
        out.flush()?;
        s.out.note(&format!(
            "{id}: {} records, {bytes} bytes in {:.1} s (first data {} ms after the command started)",
            c.record_count,
            started.elapsed().as_secs_f64(),
            first_data.unwrap_or_default().as_millis()
        ));
        manifest
            .collections
            .push(CollectionEntry::of(&id, &c, file));
    }
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
        println!("not included: {}", manifest.not_included.join("; "));
    }
    Ok(())
}

pub async fn import_tenant(s: &Session, args: ImportTenantArgs) -> Result<()> {
    let manifest = Manifest::read(&args.dir)?;
    for c in &manifest.collections {
        c.spec()?;
    }
    if args.merge {
        let tenant = s.tenant(&args.tenant)?;
        let restored = restore_collections(s, &tenant, &manifest, &args).await?;
        s.out.note(&format!(
            "merged into the existing tenants/{}; its limits were left as they are",
            args.tenant
        ));
        return report(s, &args.tenant, restored);
    }
    // Creating a tenant is the admin's; the whole restore then runs with the admin token, never
    // with a tenant key that may belong to another tenant.
    let admin = s.admin().context("restoring into a new tenant")?;
    match admin
        .create_tenant(&args.tenant, &TenantOptions::default())
        .await
    {
        Ok(_) => {}
        Err(ClientError::AlreadyExists(_)) => bail!(
            "tenant {} exists; restoring never merges into a tenant unless --merge is given",
            args.tenant
        ),
        Err(e) => return Err(e.into()),
    }
    let restore = async {
        let tenant = s.admin_tenant(&args.tenant)?;
        let restored = restore_collections(s, &tenant, &manifest, &args).await?;
        if let Some(limits) = &manifest.settings {
            admin
                .update_tenant(&args.tenant, &limits.update())
                .await
                .context("applying the exported quota, rate limit and audit retention")?;
        }
        anyhow::Ok(restored)
    };
    match restore.await {
        Ok(restored) => report(s, &args.tenant, restored),
        Err(e) => match admin.delete_tenant(&args.tenant).await {
            Ok(()) => Err(e.context(format!(
                "restore failed; the partly restored tenant {} was deleted, nothing was left behind",
                args.tenant
            ))),
            Err(cleanup) => Err(e.context(format!(
                "restore failed, and deleting the partly restored tenant {} failed too ({cleanup}); delete it with `bulkhead tenant delete {}` before trying again, or resume with --merge",
                args.tenant, args.tenant
            ))),
        },
    }
}

/// Creates (or, merging, checks) each collection and imports its file; the import results.
async fn restore_collections(
    s: &Session,
    tenant: &TenantClient,
    manifest: &Manifest,
    args: &ImportTenantArgs,
) -> Result<Vec<serde_json::Value>> {
    let mut restored = Vec::new();
    for c in &manifest.collections {
        let spec = c.spec()?;
        let created = if c.is_cache() {
            let ttl = spec.default_ttl;
            tenant
                .create_cache_with_policy(&c.id, c.dimension, spec.metric, ttl, c.cache_policy()?)
                .await
        } else {
            tenant.create_collection(&c.id, &spec).await
        };
        match created {
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
            Err(e) => return Err(e).with_context(|| format!("creating collection {}", c.id)),
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
    Ok(restored)
}

fn report(s: &Session, tenant: &str, restored: Vec<serde_json::Value>) -> Result<()> {
    if s.out.json {
        println!("{}", json!({"tenant": tenant, "collections": restored}));
    } else {
        println!(
            "restored {} collections into tenants/{tenant}",
            restored.len()
        );
    }
    Ok(())
}
