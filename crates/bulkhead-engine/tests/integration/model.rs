//! Model-based isolation test: random sequences of operations over a few tenants that share
//! collection names, record ids and vectors, run against the engine and a plain in-memory
//! model side by side. Every observation (get, query, list, stats) must match the model, and
//! every record observed must be one the asking tenant wrote into its current incarnation.
//! Groups hold two tenants and are closed and reopened at random, so tenants move between open
//! and closed instances throughout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bulkhead_engine::{Engine, EngineError, Include, Query, StorageBackend, TenantSettings};
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
        2 => t.prop_map(Op::Sweep),
        1 => Just(Op::CloseIdleGroups),
    ]
}

/// A case: the three tenants are created first, so most observations happen while others
/// hold data; deletes and re-creates follow from the operations.
fn case() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 20..60).prop_map(|ops| {
        let mut all: Vec<Op> = (0..TENANTS.len()).map(Op::CreateTenant).collect();
        all.extend(ops);
        all
    })
}

/// What each tenant should hold: record id → the unique text written last.
#[derive(Debug, Default)]
struct Model {
    tenants: BTreeMap<usize, BTreeMap<String, String>>,
    /// Records written with a TTL that has passed and not yet swept, deleted or overwritten.
    expired_on_disk: BTreeSet<(usize, usize)>,
    /// Tenants created again after a delete (a new incarnation under the same name).
    recreated: BTreeSet<usize>,
    groups_closed: bool,
    /// The situations this case has observed the engine in.
    reached: BTreeSet<&'static str>,
}

/// The situations in which an observation is worth the most: each must come up in at least a
/// tenth of the cases (checked by the test below).
const SITUATIONS: [&str; 6] = [
    "observed beside another tenant's live records",
    "observed a re-created tenant",
    "observed after groups were closed and reopened",
    "observed with an expired record on disk",
    "a sweep removed an expired record",
    "a missing tenant was refused",
];

fn run(backend: StorageBackend, ops: Vec<Op>) -> Result<BTreeSet<&'static str>, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    // Tenants share groups (of two), so isolation is checked within a RocksDB instance too.
    let mut c = shared_groups(dir.path());
    c.tenants_per_group = 2;
    c.storage = backend;
    let clock = bulkhead_engine::ManualClock::starting_now();
    c.clock = clock.clock();
    let engine = Engine::open(c).unwrap();
    let mut model = Model::default();
    for (step, op) in ops.into_iter().enumerate() {
        // Every text is unique to its tenant, step and id, so an observation names its writer.
        // Records written with the short TTL in earlier steps are expired by now.
        clock.advance(SHORT_TTL * 2);
        apply(&engine, &mut model, step, &op)
            .map_err(|e| TestCaseError::fail(format!("step {step} {op:?}: {e}")))?;
    }
    // The backend is the one asked for: RocksDB writes its files, memory none.
    let on_disk = dir.path().join("system").join("CURRENT").exists();
    prop_assert_eq!(on_disk, backend == StorageBackend::RocksDb);
    Ok(model.reached)
}

impl Model {
    /// Notes the situations an observation of tenant `t` is made in.
    fn observing(&mut self, t: usize) {
        let others_live = self
            .tenants
            .iter()
            .any(|(other, records)| *other != t && !records.is_empty());
        let situations = [
            others_live,
            self.recreated.contains(&t),
            self.groups_closed,
            self.expired_on_disk.iter().any(|(owner, _)| *owner == t),
        ];
        for (situation, holds) in SITUATIONS.iter().zip(situations) {
            if holds {
                self.reached.insert(situation);
            }
        }
    }
}

fn apply(engine: &Engine, model: &mut Model, step: usize, op: &Op) -> Result<(), String> {
    let name = |t: usize| TENANTS[t];
    let exists = |m: &Model, t: usize| m.tenants.contains_key(&t);
    let expect_missing = |model: &mut Model, name: &str| {
        model.reached.insert(SITUATIONS[5]);
        expect_missing(engine, name)
    };
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
                if step >= TENANTS.len() {
                    model.recreated.insert(t);
                }
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
            model.expired_on_disk.retain(|(owner, _)| *owner != t);
        }
        Op::Upsert {
            tenant: t,
            id,
            seed,
            short_ttl,
        } => {
            let Some(records) = model.tenants.get_mut(&t) else {
                return expect_missing(model, name(t));
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
                model.expired_on_disk.insert((t, id));
            } else {
                records.insert(IDS[id].to_owned(), text);
                model.expired_on_disk.remove(&(t, id));
            }
        }
        Op::Delete { tenant: t, id } => {
            let Some(records) = model.tenants.get_mut(&t) else {
                return expect_missing(model, name(t));
            };
            let n = handle(engine, name(t))?
                .delete(&coll("docs"), &[rid(IDS[id])])
                .map_err(|e| e.to_string())?;
            let was_live = records.remove(IDS[id]).is_some();
            model.expired_on_disk.remove(&(t, id));
            // An expired record may still be stored until swept; deleting it may count it.
            check(n <= 1 && (!was_live || n == 1), "delete count")?;
        }
        Op::Get(t) => {
            if !exists(model, t) {
                return expect_missing(model, name(t));
            }
            model.observing(t);
            let records = &model.tenants[&t];
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
            if !exists(model, t) {
                return expect_missing(model, name(t));
            }
            model.observing(t);
            let records = &model.tenants[&t];
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
                return expect_missing(model, name(t));
            }
            model.observing(t);
            let expired_before = model.expired_on_disk.len();
            model.expired_on_disk.retain(|(owner, _)| *owner != t);
            if model.expired_on_disk.len() < expired_before {
                model.reached.insert(SITUATIONS[4]);
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
            model.groups_closed = true;
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
    engine.handle(&tenant(name)).map_err(|e| e.to_string())
}

fn expect_missing(engine: &Engine, name: &str) -> Result<(), String> {
    match engine.handle(&tenant(name)) {
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

/// The model test on the RocksDB backend, the one a server runs.
#[test]
fn no_observation_ever_includes_another_tenants_data() {
    check_model(StorageBackend::RocksDb);
}

/// The same on the in-memory backend: a guarantee that holds on both rests on the storage
/// contract (`storage::conformance`), not on RocksDB's particulars.
#[test]
fn no_observation_ever_includes_another_tenants_data_in_memory() {
    check_model(StorageBackend::Memory);
}

/// Runs the cases through proptest's runner (shrinking included) and counts, over all of them,
/// the situations each reached: every one must come up in at least a tenth of the cases, or the
/// generator has drifted away from what makes this test worth running. Printed with
/// `--nocapture`.
fn check_model(backend: StorageBackend) {
    use proptest::test_runner::{Config, TestRunner};
    const CASES: u32 = 64;
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let reached = std::cell::RefCell::new(BTreeMap::<&str, u32>::new());
    let result = runner.run(&case(), |ops| {
        for situation in run(backend, ops)? {
            *reached.borrow_mut().entry(situation).or_default() += 1;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let reached = reached.into_inner();
    println!("model-test situations over {CASES} cases ({backend:?}):");
    for situation in SITUATIONS {
        let n = reached.get(situation).copied().unwrap_or(0);
        println!(
            "  {situation:<48} {:>5.1}%",
            f64::from(n) * 100.0 / f64::from(CASES)
        );
    }
    for situation in SITUATIONS {
        let n = reached.get(situation).copied().unwrap_or(0);
        assert!(n * 10 >= CASES, "{situation}: in only {n} of {CASES} cases");
    }
}
