//! Model-based isolation test: random sequences of operations over a few tenants that share
//! collection names, record ids and vectors, run against the engine and a plain in-memory
//! model side by side. Every observation (get, query, list, stats) must match the model, and
//! every record observed must be one the asking tenant wrote into its current incarnation.
//! Groups hold two tenants and are closed and reopened at random, so tenants move between open
//! and closed instances throughout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bulkhead_engine::{Engine, EngineError, Include, Query, TenantSettings};
use proptest::prelude::*;

use crate::common::*;

const DIM: usize = 4;
const TENANTS: [&str; 3] = ["t0", "t1", "t2"];
const IDS: [&str; 4] = ["r0", "r1", "r2", "r3"];
/// A TTL that has certainly passed by the next operation (each op waits longer than this).
const SHORT_TTL: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
enum Op {
    CreateTenant(usize),
    DeleteTenant(usize),
    Upsert {
        tenant: usize,
        id: usize,
        seed: u64,
        short_ttl: bool,
    },
    Delete {
        tenant: usize,
        id: usize,
    },
    Get(usize),
    Query {
        tenant: usize,
        seed: u64,
    },
    Sweep(usize),
    /// Closes every tenant group not in use; the next operation reopens what it needs.
    CloseIdleGroups,
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TENANTS.len();
    let id = 0..IDS.len();
    prop_oneof![
        2 => t.clone().prop_map(Op::CreateTenant),
        1 => t.clone().prop_map(Op::DeleteTenant),
        6 => (t.clone(), id.clone(), 0..4u64, proptest::bool::weighted(0.2))
            .prop_map(|(tenant, id, seed, short_ttl)| Op::Upsert { tenant, id, seed, short_ttl }),
        2 => (t.clone(), id).prop_map(|(tenant, id)| Op::Delete { tenant, id }),
        3 => t.clone().prop_map(Op::Get),
        3 => (t.clone(), 0..4u64).prop_map(|(tenant, seed)| Op::Query { tenant, seed }),
        1 => t.prop_map(Op::Sweep),
        1 => Just(Op::CloseIdleGroups),
    ]
}

/// What each tenant should hold: record id → the unique text written last.
#[derive(Debug, Default)]
struct Model {
    tenants: BTreeMap<usize, BTreeMap<String, String>>,
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.tenants_per_group = 2;
    let engine = Engine::open(c).unwrap();
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        // Every text is unique to its tenant, step and id, so an observation names its writer.
        std::thread::sleep(SHORT_TTL * 2);
        apply(&engine, &mut model, step, &op)
            .map_err(|e| TestCaseError::fail(format!("step {step} {op:?}: {e}")))?;
    }
    Ok(())
}

fn apply(engine: &Engine, model: &mut Model, step: usize, op: &Op) -> Result<(), String> {
    let name = |t: usize| TENANTS[t];
    let exists = |m: &Model, t: usize| m.tenants.contains_key(&t);
    match *op {
        Op::CreateTenant(t) => {
            let r = engine.create_tenant(&tenant(name(t)), &TenantSettings::default());
            if exists(model, t) {
                check(
                    matches!(r, Err(EngineError::TenantExists(_))),
                    "re-create must fail",
                )?;
            } else {
                r.map_err(|e| e.to_string())?;
                tenant_with_docs_collection(engine, name(t))?;
                model.tenants.insert(t, BTreeMap::new());
            }
        }
        Op::DeleteTenant(t) => {
            let r = engine.delete_tenant(&tenant(name(t)));
            check(
                r.is_ok() == exists(model, t),
                "delete succeeds iff the tenant exists",
            )?;
            model.tenants.remove(&t);
        }
        Op::Upsert {
            tenant: t,
            id,
            seed,
            short_ttl,
        } => {
            let Some(records) = model.tenants.get_mut(&t) else {
                return expect_missing(engine, name(t));
            };
            let text = format!("{}:{}:{step}", name(t), IDS[id]);
            let mut r = record(IDS[id], seed, DIM, &text);
            if short_ttl {
                r.ttl = Some(SHORT_TTL);
            }
            handle(engine, name(t))?
                .upsert(&coll("docs"), vec![r])
                .map_err(|e| e.to_string())?;
            if short_ttl {
                // Expired by the next operation: as good as deleted.
                records.remove(IDS[id]);
            } else {
                records.insert(IDS[id].to_owned(), text);
            }
        }
        Op::Delete { tenant: t, id } => {
            let Some(records) = model.tenants.get_mut(&t) else {
                return expect_missing(engine, name(t));
            };
            let n = handle(engine, name(t))?
                .delete(&coll("docs"), &[rid(IDS[id])])
                .map_err(|e| e.to_string())?;
            let was_live = records.remove(IDS[id]).is_some();
            // An expired record may still be stored until swept; deleting it may count it.
            check(n <= 1 && (!was_live || n == 1), "delete count")?;
        }
        Op::Get(t) => {
            let Some(records) = model.tenants.get(&t) else {
                return expect_missing(engine, name(t));
            };
            let ids: Vec<_> = IDS.iter().map(|i| rid(i)).collect();
            let got = handle(engine, name(t))?
                .get(&coll("docs"), &ids)
                .map_err(|e| e.to_string())?;
            let seen: BTreeMap<String, String> = got
                .into_iter()
                .map(|r| (r.id.to_string(), r.text.unwrap_or_default()))
                .collect();
            check(
                &seen == records,
                &format!("get saw {seen:?}, model {records:?}"),
            )?;
        }
        Op::Query { tenant: t, seed } => {
            let Some(records) = model.tenants.get(&t) else {
                return expect_missing(engine, name(t));
            };
            let mut q = Query::new(vector(seed, DIM), 100);
            q.include = Include {
                text: true,
                metadata: false,
                vector: false,
            };
            let hits = handle(engine, name(t))?
                .query(&coll("docs"), &q)
                .map_err(|e| e.to_string())?;
            let seen: BTreeSet<(String, String)> = hits
                .into_iter()
                .map(|h| (h.id.to_string(), h.text.unwrap_or_default()))
                .collect();
            let want: BTreeSet<(String, String)> = records
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            check(seen == want, &format!("query saw {seen:?}, model {want:?}"))?;
        }
        Op::Sweep(t) => {
            if !exists(model, t) {
                return expect_missing(engine, name(t));
            }
            let h = handle(engine, name(t))?;
            h.sweep_expired().map_err(|e| e.to_string())?;
            let stats = h.stats().map_err(|e| e.to_string())?;
            let live = model.tenants[&t].len() as u64;
            check(
                stats.records == live,
                &format!("after sweep {} records, model {live}", stats.records),
            )?;
        }
        Op::CloseIdleGroups => {
            engine.close_idle_groups(Duration::ZERO);
            check(
                engine.open_group_count() == 0,
                "a group stayed open with no tenant in use",
            )?;
        }
    }
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

fn handle(engine: &Engine, name: &str) -> Result<bulkhead_engine::TenantHandle, String> {
    engine.tenant(&tenant(name)).map_err(|e| e.to_string())
}

fn expect_missing(engine: &Engine, name: &str) -> Result<(), String> {
    match engine.tenant(&tenant(name)) {
        Err(EngineError::TenantNotFound(_)) => Ok(()),
        Err(e) => Err(format!("missing tenant gave {e}")),
        Ok(_) => Err("a deleted or never-created tenant has a handle".into()),
    }
}

fn tenant_with_docs_collection(engine: &Engine, name: &str) -> Result<(), String> {
    handle(engine, name)?
        .create_collection(
            &coll("docs"),
            &bulkhead_engine::CollectionSpec::new(DIM, bulkhead_core::Metric::Cosine),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_observation_ever_includes_another_tenants_data(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
