//! `bulkhead cache ...`: a tenant's semantic caches from the command line, mostly for trying a
//! cache out and for invalidating entries by hand.

use std::time::Duration;

use anyhow::{Context, Result};
use bulkhead_client::{CacheLookup, CachePolicy, CacheScope, CacheStore, EndUserScope, Metric};
use clap::{Subcommand, ValueEnum};
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
        /// Whose answers an end user's token reaches: its own (user) or its session's.
        #[arg(long, value_enum, default_value = "user")]
        end_user_scope: ScopeArg,
        /// Lookups hit only entries at least this similar, whatever they ask for.
        #[arg(long, allow_negative_numbers = true)]
        similarity_floor: Option<f32>,
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
        /// A user or session within the tenant that alone may find it.
        #[arg(long)]
        scope: Option<String>,
        /// A tenant-wide answer, for every user (service keys only).
        #[arg(long, conflicts_with = "scope")]
        shared: bool,
        /// The model and system prompt the answer came from, e.g. `gpt-4o/support-v3`.
        #[arg(long)]
        fingerprint: Option<String>,
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
        /// Only answers of this user or session.
        #[arg(long)]
        scope: Option<String>,
        /// Only the tenant-wide answers (service keys only).
        #[arg(long, conflicts_with = "scope")]
        shared: bool,
        /// Only answers stored with this fingerprint (without: only those stored without one).
        #[arg(long)]
        fingerprint: Option<String>,
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

/// `--scope` or `--shared` (clap refuses both); neither: the caller's own.
fn cache_scope(scope: Option<String>, shared: bool) -> CacheScope {
    match scope {
        Some(s) => CacheScope::Named(s),
        None if shared => CacheScope::Shared,
        None => CacheScope::Own,
    }
}

/// `--end-user-scope`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    User,
    Session,
}

pub async fn run(s: &Session, command: CacheCommand) -> Result<()> {
    match command {
        CacheCommand::Create {
            tenant,
            cache,
            dimension,
            metric,
            default_ttl,
            end_user_scope,
            similarity_floor,
        } => {
            let policy = CachePolicy {
                end_user_scope: match end_user_scope {
                    ScopeArg::User => EndUserScope::User,
                    ScopeArg::Session => EndUserScope::Session,
                },
                similarity_floor,
            };
            let c = s
                .tenant(&tenant)?
                .create_cache_with_policy(&cache, dimension, metric, default_ttl, policy)
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
            shared,
            fingerprint,
            ttl,
        } => {
            let entry = CacheStore {
                vector: super::query::parse_vector(&vector)?,
                prompt,
                response,
                scope: cache_scope(scope, shared),
                fingerprint,
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
            shared,
            fingerprint,
        } => {
            let vector = super::query::parse_vector(&vector).context("--vector")?;
            let lookup = CacheLookup {
                max_age,
                scope: cache_scope(scope, shared),
                fingerprint,
                ..CacheLookup::new(vector, min_similarity)
            };
            let found = s.tenant(&tenant)?.cache_find(&cache, lookup).await?;
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
