//! `bulkhead query`: nearest records to a vector given inline, taken from an fvecs file, or
//! borrowed from a stored record ("more like this").

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bulkhead_client::Query;
use clap::Args;
use serde_json::json;

use super::Session;
use super::fields;
use super::filter::{self, Condition};
use super::output::Rows;

/// Characters of text shown per hit in tables (JSON output carries all of it).
const TABLE_TEXT_CHARS: usize = 100;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(long, env = "BULKHEAD_TENANT")]
    tenant: String,
    #[arg(long)]
    collection: String,
    /// The query vector, comma-separated.
    #[arg(long, conflicts_with_all = ["fvecs", "like"])]
    vector: Option<String>,
    /// Take the query vector from this fvecs file (row --row).
    #[arg(long, requires = "row", conflicts_with = "like")]
    fvecs: Option<PathBuf>,
    #[arg(long)]
    row: Option<usize>,
    /// Use the stored vector of this record id (it is returned as the first hit).
    #[arg(long)]
    like: Option<String>,
    #[arg(long, default_value_t = 10)]
    top_k: u32,
    /// HNSW search breadth for this query.
    #[arg(long)]
    ef: Option<u32>,
    /// Include each hit's text.
    #[arg(long)]
    text: bool,
    /// Include each hit's metadata.
    #[arg(long)]
    metadata: bool,
    /// Only records whose indexed metadata meet COND (repeatable; all must hold):
    /// field=value, field!=value, field>=n, field<=n, field>n, field<n, "field in a,b,c" or
    /// "field exists". Values take the field's declared type. A record without the field
    /// meets only `!=`.
    #[arg(long = "where", value_name = "COND")]
    conditions: Vec<Condition>,
}

pub async fn run(s: &Session, args: QueryArgs) -> Result<()> {
    let tenant = s.tenant(&args.tenant)?;
    let filter = if args.conditions.is_empty() {
        None
    } else {
        let c = tenant.collection(&args.collection).await?;
        let types = fields::types(&c);
        Some(filter::filter(&args.conditions, &args.collection, &types)?)
    };
    let vector = match (&args.vector, &args.fvecs, &args.like) {
        (Some(v), _, _) => parse_vector(v)?,
        (_, Some(path), _) => {
            let m = bulkhead_formats::read_fvecs(path)?;
            let row = args.row.unwrap_or(0);
            if row >= m.rows() {
                bail!(
                    "--row {row} is past the {} rows of {}",
                    m.rows(),
                    path.display()
                );
            }
            m.row(row).to_vec()
        }
        (_, _, Some(id)) => {
            let found = tenant.get(&args.collection, &[id.as_str()]).await?;
            let record = found
                .into_iter()
                .next()
                .with_context(|| format!("record {id:?} not found in {}", args.collection))?;
            record.vector
        }
        _ => bail!("give the query vector: --vector, --fvecs with --row, or --like"),
    };
    let mut query = Query::new(vector, args.top_k);
    query.include_text = args.text;
    query.include_metadata = args.metadata;
    query.ef = args.ef;
    query.filter = filter;
    let hits = tenant.query(&args.collection, &query).await?;
    let mut headers = vec!["rank", "id", "score"];
    if args.text {
        headers.push("text");
    }
    if args.metadata {
        headers.push("metadata");
    }
    let mut r = Rows::new(&headers);
    for (rank, h) in hits.into_iter().enumerate() {
        // Rounded so the f32 score doesn't print as a long f64 expansion.
        let score = (f64::from(h.score) * 1e6).round() / 1e6;
        let mut cells = vec![json!(rank + 1), json!(h.id), json!(score)];
        if args.text {
            let text = h.text.unwrap_or_default();
            cells.push(json!(if s.out.json { text } else { shorten(&text) }));
        }
        if args.metadata {
            cells.push(bulkhead_formats::metadata_to_json(&h.metadata));
        }
        r.push(cells);
    }
    s.out.list(&r);
    Ok(())
}

pub fn parse_vector(s: &str) -> Result<Vec<f32>> {
    s.split(',')
        .enumerate()
        .map(|(i, x)| {
            x.trim()
                .parse::<f32>()
                .with_context(|| format!("--vector element {i}: {x:?} is not a number"))
        })
        .collect()
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(TABLE_TEXT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_parse_and_errors_name_the_element() {
        assert_eq!(parse_vector("1, 0.5,-2").unwrap(), vec![1.0, 0.5, -2.0]);
        let e = parse_vector("1,x").unwrap_err().to_string();
        assert!(e.contains("element 1"), "{e}");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(150);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), TABLE_TEXT_CHARS + 1);
        assert_eq!(shorten("short"), "short");
    }
}
