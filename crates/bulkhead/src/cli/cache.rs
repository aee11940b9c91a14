//! `bulkhead cache ...`: a tenant's semantic caches from the command line, mostly for trying a
//! cache out and for invalidating entries by hand.

use std::time::Duration;

use anyhow::{Context, Result};
use bulkhead_client::{CacheStore, Metric};
use clap::Subcommand;
use serde_json::json;

use super::Session;
use super::collection::rows as collection_rows;
use super::output::Rows;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Create a cache (a collection with the fields lookups filter on).
    Create {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        cache: String,
        #[arg(long)]
        dimension: u32,
        /// cosine or dot.
        #[arg(long, default_value = "cosine")]
        metric: Metric,
        /// Lifetime of entries stored without their own, e.g. `1h`.
        #[arg(long, value_parser = humantime::parse_duration)]
        default_ttl: Option<Duration>,
    },
    /// Store an answer under its prompt's embedding.
    Store {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        cache: String,
        /// The prompt's embedding, comma-separated.
        #[arg(long)]
        vector: String,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        response: String,
        /// A user or session within the tenant.
        #[arg(long)]
        scope: Option<String>,
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
    /// Look up the closest answer at or above a similarity.
    Lookup {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        cache: String,
        #[arg(long)]
        vector: String,
        /// Least similarity that counts as a hit (negative values allowed).
        #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
        min_similarity: f32,
        #[arg(long, value_parser = humantime::parse_duration)]
        max_age: Option<Duration>,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Drop entries by id, or every entry of a scope.
    Invalidate {
        #[arg(long, env = "BULKHEAD_TENANT")]
        tenant: String,
        cache: String,
        #[arg(long = "id")]
        ids: Vec<String>,
        #[arg(long, conflicts_with = "ids")]
        scope: Option<String>,
    },
}

pub async fn run(s: &Session, command: CacheCommand) -> Result<()> {
    match command {
        CacheCommand::Create {
            tenant,
            cache,
            dimension,
            metric,
            default_ttl,
        } => {
            let c = s
                .tenant(&tenant)?
                .create_cache(&cache, dimension, metric, default_ttl)
                .await?;
            s.out.one(&collection_rows([c]));
        }
        CacheCommand::Store {
            tenant,
            cache,
            vector,
            prompt,
            response,
            scope,
            ttl,
        } => {
            let entry = CacheStore {
                vector: super::query::parse_vector(&vector)?,
                prompt,
                response,
                scope,
                ttl,
                ..CacheStore::default()
            };
            let id = s.tenant(&tenant)?.cache_store(&cache, entry).await?;
            let mut r = Rows::new(&["id"]);
            r.push(vec![json!(id)]);
            s.out.one(&r);
        }
        CacheCommand::Lookup {
            tenant,
            cache,
            vector,
            min_similarity,
            max_age,
            scope,
        } => {
            let vector = super::query::parse_vector(&vector).context("--vector")?;
            let found = s
                .tenant(&tenant)?
                .cache_lookup(&cache, vector, min_similarity, max_age, scope.as_deref())
                .await?;
            let mut r = Rows::new(&[
                "hit",
                "id",
                "similarity",
                "age_seconds",
                "prompt",
                "response",
            ]);
            match found {
                Some(e) => r.push(vec![
                    json!(true),
                    json!(e.id),
                    json!((f64::from(e.similarity) * 1e6).round() / 1e6),
                    json!(e.age_seconds),
                    json!(e.prompt),
                    json!(e.response),
                ]),
                None => r.push(vec![
                    json!(false),
                    json!(null),
                    json!(null),
                    json!(null),
                    json!(null),
                    json!(null),
                ]),
            }
            s.out.one(&r);
        }
        CacheCommand::Invalidate {
            tenant,
            cache,
            ids,
            scope,
        } => {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let n = s
                .tenant(&tenant)?
                .cache_invalidate(&cache, &ids, scope.as_deref())
                .await?;
            let mut r = Rows::new(&["invalidated"]);
            r.push(vec![json!(n)]);
            s.out.one(&r);
        }
    }
    Ok(())
}
