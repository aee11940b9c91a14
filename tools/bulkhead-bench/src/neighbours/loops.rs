//! Attacks that repeat calls as fast as the server answers them: the costliest reads the API
//! allows, a flood of writes (large by default), and key churn. Each loop waits for one answer before its
//! next call, as a client does, so the attack's strength is its number of loops. Requests are
//! encoded once, so that the attacker's own CPU, on the server's machine, goes to sending.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bulkhead_proto::v1 as pb;
use bytes::Bytes;
use http::HeaderValue;

use super::attack::{Notes, Target};
use super::outcomes::{Counts, classify, within};
use super::setup::{COMMON_TAG, TAGS, tags};
use crate::unary::{Status, UnaryCaller, frame, method};

const HEAVY_READ_LOOPS: usize = 32;
const WRITE_LOOPS: usize = 16;
const KEY_LOOPS: usize = 8;
/// Loops sharing one connection.
const LOOPS_PER_CONNECTION: usize = 8;
/// Size of the `in` list of the filter attack, about what a default gRPC limit lets through.
const FILTER_BYTES: usize = 4 << 20;
const WIDE_TOP_K: u32 = 1000;
/// The ef first asked for; if refused, the limit the refusal names, or [`FALLBACK_EF`].
const WIDEST_EF: u32 = 100_000;
const FALLBACK_EF: u32 = 4096;
/// Distinct upsert requests the write loops take turns with.
const UPSERT_VARIANTS: usize = 16;

/// One request the loops send again and again: what it is counted as, where and how it goes.
struct Call {
    kind: &'static str,
    path: &'static str,
    authorization: HeaderValue,
    message: Bytes,
}

/// The connections for `loops` loops; failures to connect are counted, those loops not run.
async fn connections(t: &Target, loops: usize, counts: &Counts) -> Vec<Arc<UnaryCaller>> {
    let mut out = Vec::new();
    for _ in 0..loops.div_ceil(LOOPS_PER_CONNECTION) {
        match within(t.timeout, UnaryCaller::connect(&t.endpoint)).await {
            Ok(c) => out.push(Arc::new(c)),
            Err(e) => counts.add(format!("connect {}", classify(&e)), 1),
        }
    }
    out
}

/// Runs `loops` loops, each calling `step(loop, iteration, connection)` until stopped.
fn spawn_loops<S, F>(loops: usize, connections: &[Arc<UnaryCaller>], step: S)
where
    S: Fn(usize, usize, Arc<UnaryCaller>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let step = Arc::new(step);
    for l in 0..loops.min(connections.len() * LOOPS_PER_CONNECTION) {
        let (step, caller) = (step.clone(), connections[l / LOOPS_PER_CONNECTION].clone());
        tokio::spawn(async move {
            for i in 0.. {
                step(l, i, caller.clone()).await;
            }
        });
    }
}

/// Loops that each send `calls` in turn, starting at a different one, and count the answers.
fn spawn_rounds(
    t: &Target,
    loops: usize,
    connections: &[Arc<UnaryCaller>],
    calls: Vec<Call>,
    counts: &Counts,
) {
    let (calls, counts, timeout) = (Arc::new(calls), counts.clone(), t.timeout);
    spawn_loops(loops, connections, move |l, i, caller| {
        let (calls, counts) = (calls.clone(), counts.clone());
        async move {
            let call = &calls[(l + i) % calls.len()];
            let answer = within(
                timeout,
                caller.call_framed::<()>(call.path, &call.authorization, call.message.clone()),
            )
            .await;
            counts.record(call.kind, &answer);
        }
    });
}

fn query(t: &Target, collection: &str, row: usize, top_k: u32, ef: u32) -> pb::QueryRequest {
    pb::QueryRequest {
        collection: collection.to_owned(),
        vector: t.data.queries.row(row % t.data.queries.rows()).to_vec(),
        top_k,
        ef,
        ..Default::default()
    }
}

/// `tags in ["common", "common", …]`, the list as long as fits in `bytes`.
fn repeated_tag_filter(bytes: usize) -> (pb::Filter, usize) {
    let one = pb::Value {
        kind: Some(pb::value::Kind::StringValue(COMMON_TAG.to_owned())),
    };
    let each = prost::Message::encoded_len(&pb::ValueList {
        values: vec![one.clone()],
    });
    let n = bytes / each;
    let filter = pb::Filter {
        condition: Some(pb::Condition {
            field: TAGS.to_owned(),
            op: Some(pb::condition::Op::In(pb::ValueList {
                values: vec![one; n],
            })),
        }),
        ..Default::default()
    };
    (filter, n)
}

/// The ef a refusal of [`WIDEST_EF`] names as the limit: its largest number below that.
fn ef_limit_named_in(message: &str) -> Option<u32> {
    message
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok())
        .filter(|&n| n > 0 && n < WIDEST_EF)
        .max()
}

/// The largest page of `tenant`'s audit events from a day ahead: none match, however many the
/// server reads to find that out.
fn audit_from_tomorrow(tenant: &str) -> pb::ListAuditEventsRequest {
    let mut request = pb::ListAuditEventsRequest {
        parent: tenant.to_owned(),
        page_size: i32::MAX,
        start_time: Some(Default::default()),
        ..Default::default()
    };
    let tomorrow = SystemTime::now() + Duration::from_secs(86_400);
    // Set in place: the Timestamp type is prost-types', not a dependency of this crate.
    if let Some(start) = request.start_time.as_mut() {
        start.seconds = tomorrow
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
    }
    request
}

/// Asks for the widest ef once; returns the ef the attack will use and the refusal, if any.
async fn widest_ef(t: &Target, caller: &UnaryCaller, counts: &Counts) -> (u32, Option<String>) {
    let probe = query(t, &t.hnsw, 0, WIDE_TOP_K, WIDEST_EF);
    let answer = within(
        t.timeout,
        caller.call::<_, pb::QueryResponse>(method::QUERY, &t.read, &probe),
    )
    .await;
    counts.record("ef-probe", &answer);
    match answer {
        Err(e) => match e.downcast_ref::<Status>() {
            Some(refusal) => {
                let ef = ef_limit_named_in(&refusal.message).unwrap_or(FALLBACK_EF);
                (ef, Some(refusal.to_string()))
            }
            None => (WIDEST_EF, None),
        },
        Ok(_) => (WIDEST_EF, None),
    }
}

pub async fn heavy_reads(t: Arc<Target>, counts: Counts) -> Notes {
    let connections = connections(&t, HEAVY_READ_LOOPS, &counts).await;
    let Some(first) = connections.first() else {
        return Vec::new();
    };
    let (ef, refusal) = widest_ef(&t, first, &counts).await;
    let (filter, filter_values) = repeated_tag_filter(FILTER_BYTES);
    let filtered = frame(&pb::QueryRequest {
        filter: Some(filter),
        ..query(&t, &t.hnsw, 1, 10, 0)
    });
    let audit = frame(&audit_from_tomorrow(&t.tenant));
    let call = |kind, path, message| Call {
        kind,
        path,
        authorization: t.read.clone(),
        message,
    };
    let calls = vec![
        call("filter", method::QUERY, filtered.clone()),
        call(
            "wide",
            method::QUERY,
            frame(&query(&t, &t.hnsw, 2, WIDE_TOP_K, ef)),
        ),
        call("audit", method::LIST_AUDIT_EVENTS, audit),
        call(
            "flat",
            method::QUERY,
            frame(&query(&t, &t.flat, 3, WIDE_TOP_K, 0)),
        ),
    ];
    spawn_rounds(&t, HEAVY_READ_LOOPS, &connections, calls, &counts);
    vec![
        ("ef", ef.into()),
        ("ef_refusal", refusal.into()),
        ("filter_values", filter_values.into()),
        ("filter_request_bytes", filtered.len().into()),
    ]
}

pub async fn write_flood(t: Arc<Target>, counts: Counts) -> Notes {
    let connections = connections(&t, WRITE_LOOPS, &counts).await;
    // Existing records get another row's vector, so every upsert changes the graph.
    let calls: Vec<Call> = (0..UPSERT_VARIANTS)
        .map(|v| {
            let records = (0..t.flood_records)
                .map(|k| {
                    let row = (v * t.flood_records + k) % t.records;
                    pb::Record {
                        id: row.to_string(),
                        vector: t.data.base.row((row + 1) % t.records).to_vec(),
                        metadata: HashMap::from([(
                            TAGS.to_owned(),
                            bulkhead_client::value_to_pb(tags(row)),
                        )]),
                        ..Default::default()
                    }
                })
                .collect();
            Call {
                kind: "upsert",
                path: method::UPSERT,
                authorization: t.write.clone(),
                message: frame(&pb::UpsertRequest {
                    collection: if t.flood_flat { &t.flat } else { &t.hnsw }.clone(),
                    records,
                }),
            }
        })
        .collect();
    let request_bytes = calls[0].message.len();
    spawn_rounds(&t, WRITE_LOOPS, &connections, calls, &counts);
    vec![
        ("records_per_upsert", t.flood_records.into()),
        ("upsert_request_bytes", request_bytes.into()),
    ]
}

pub async fn key_churn(t: Arc<Target>, counts: Counts) -> Notes {
    let connections = connections(&t, KEY_LOOPS, &counts).await;
    let create = frame(&pb::CreateApiKeyRequest {
        parent: t.tenant.clone(),
        role: pb::Role::Read as i32,
        ttl_seconds: None,
        description: "key churn".into(),
    });
    let (admin, timeout) = (t.admin.clone(), t.timeout);
    spawn_loops(KEY_LOOPS, &connections, move |_, _, caller| {
        let (create, admin, counts) = (create.clone(), admin.clone(), counts.clone());
        async move {
            let created = within(
                timeout,
                caller.call_framed::<pb::CreateApiKeyResponse>(
                    method::CREATE_API_KEY,
                    &admin,
                    create,
                ),
            )
            .await;
            counts.record("create", &created);
            let Some(key) = created.ok().and_then(|c| c.key) else {
                return;
            };
            let revoke = pb::RevokeApiKeyRequest { name: key.name };
            let revoked = within(
                timeout,
                caller.call::<_, ()>(method::REVOKE_API_KEY, &admin, &revoke),
            )
            .await;
            counts.record("revoke", &revoked);
        }
    });
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_list_fills_the_byte_budget() {
        let (filter, n) = repeated_tag_filter(1 << 20);
        let bytes = prost::Message::encoded_len(&filter);
        assert!(bytes <= (1 << 20) + 64 && bytes > (1 << 20) - 64, "{bytes}");
        assert!(n > 100_000);
    }

    #[test]
    fn a_refusal_names_the_largest_ef_allowed() {
        assert_eq!(
            ef_limit_named_in("ef must be between 1 and 10000, got 100000"),
            Some(10000)
        );
        assert_eq!(ef_limit_named_in("ef too large"), None);
    }
}
