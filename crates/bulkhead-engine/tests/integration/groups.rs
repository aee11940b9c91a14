//! Tenant groups opening and closing: a closed group serves its tenants intact when reopened, a
//! group in use is never closed under a request, the open-group cap closes the least recently
//! used idle groups, the sweeper reaches expired records of closed groups, and deleting a
//! tenant leaves every other group's files as they were. Idle tenants' indexes are evicted
//! under the memory budget.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::{Duration, Instant};

use bulkhead_engine::{AuditEntry, Engine, EngineConfig};

use crate::common::*;
use crate::isolation::{assert_sees_only_itself, plant};

const DIM: usize = 8;

fn small_groups(dir: &Path, per_group: usize) -> EngineConfig {
    let mut c = shared_groups(dir);
    c.tenants_per_group = per_group;
    c
}

fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("tenant-{i}")).collect()
}

fn audit_one(engine: &Engine, name: &str) {
    engine
        .handle(&tenant(name))
        .unwrap()
        .append_audit(vec![AuditEntry {
            principal: "test".into(),
            operation: "Probe".into(),
            resource: format!("tenants/{name}"),
            outcome: "OK".into(),
            record_count: 0,
            context: Default::default(),
        }])
        .unwrap();
}

#[test]
fn a_closed_group_reopens_with_its_tenants_intact() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(small_groups(dir.path(), 2)).unwrap();
    let names = names(6);
    for n in &names {
        plant(&engine, n);
        audit_one(&engine, n);
    }
    assert_eq!(engine.open_group_count(), 3);

    assert_eq!(engine.close_idle_groups(Duration::ZERO), 3);
    assert_eq!(engine.open_group_count(), 0);
    for n in &names {
        let info = engine.tenant_info(&tenant(n)).unwrap();
        assert!(!info.group_open && !info.loaded, "{n}: {info:?}");
    }

    for n in &names {
        assert_sees_only_itself(&engine, n);
        let audit = engine
            .handle(&tenant(n))
            .unwrap()
            .list_audit(None, None, 10)
            .unwrap();
        assert_eq!(audit.len(), 1, "{n}: the audit trail survives closing");
    }
    // Writes after a reopen survive the next close too.
    let t0 = engine.handle(&tenant("tenant-0")).unwrap();
    t0.delete(&coll("docs"), &[rid("r0")]).unwrap();
    drop(t0);
    assert_eq!(engine.close_idle_groups(Duration::ZERO), 3);
    let t0 = engine.handle(&tenant("tenant-0")).unwrap();
    assert!(t0.get(&coll("docs"), &[rid("r0")]).unwrap().is_empty());
    assert_eq!(t0.stats().unwrap().records, 29);
}

#[test]
fn a_group_in_use_or_recently_used_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(small_groups(dir.path(), 2)).unwrap();
    for n in names(4) {
        plant(&engine, &n);
    }
    assert_eq!(
        engine.close_idle_groups(Duration::from_secs(3600)),
        0,
        "both groups were used just now"
    );

    // A handle held by a request keeps its group (and only its group) open.
    let held = engine.handle(&tenant("tenant-0")).unwrap();
    assert_eq!(engine.close_idle_groups(Duration::ZERO), 1);
    assert!(engine.tenant_info(&tenant("tenant-0")).unwrap().group_open);
    assert!(!engine.tenant_info(&tenant("tenant-2")).unwrap().group_open);
    assert_sees_only_itself(&engine, "tenant-0");
    drop(held);
    assert_eq!(engine.close_idle_groups(Duration::ZERO), 1);
    assert_eq!(engine.open_group_count(), 0);
}

/// Idle means unused since the last request, not since the group was opened.
#[test]
fn a_request_restarts_its_groups_idle_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = bulkhead_engine::ManualClock::starting_now();
    let mut config = small_groups(dir.path(), 2);
    config.clock = clock.clock();
    let engine = Engine::open(config).unwrap();
    plant(&engine, "tenant-0");
    let idle = Duration::from_millis(300);
    clock.advance(idle * 2);
    assert_sees_only_itself(&engine, "tenant-0");
    assert_eq!(engine.close_idle_groups(idle), 0, "used just now");
    clock.advance(idle - Duration::from_millis(1));
    assert_eq!(
        engine.close_idle_groups(idle),
        0,
        "a millisecond short of idle"
    );
    clock.advance(Duration::from_millis(1));
    assert_eq!(engine.close_idle_groups(idle), 1);
}

/// Waits until at most `cap` groups are open: closing past the cap is the sweeper thread's.
fn wait_for_open_groups_at_most(engine: &Engine, cap: usize) {
    let began = Instant::now();
    while engine.open_group_count() > cap {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{} groups still open, cap {cap}",
            engine.open_group_count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_open_group_cap_closes_the_least_recently_used_idle_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_groups(dir.path(), 1);
    config.max_open_groups = 2;
    let engine = Engine::open(config).unwrap();
    let names = names(5);
    for n in &names {
        plant(&engine, n);
        wait_for_open_groups_at_most(&engine, 2);
    }
    for _round in 0..2 {
        for n in &names {
            assert_sees_only_itself(&engine, n);
            wait_for_open_groups_at_most(&engine, 2);
        }
    }
    // The two open groups are the two used last.
    let open: Vec<_> = names
        .iter()
        .filter(|n| engine.tenant_info(&tenant(n)).unwrap().group_open)
        .collect();
    assert_eq!(open, vec!["tenant-3", "tenant-4"]);
}

#[test]
fn the_sweeper_closes_idle_groups_and_sweeps_closed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_groups(dir.path(), 1);
    config.sweep_interval = Duration::from_millis(100);
    config.group_idle_close = Duration::from_millis(100);
    let engine = Engine::open(config).unwrap();
    let ttl = Duration::from_millis(1500);
    // One group per tenant: "acme" goes to group 1, so the closed-group sweep must reach past
    // the first group.
    tenant_with_docs(&engine, "first", DIM);
    let written = Instant::now();
    {
        let t = tenant_with_docs(&engine, "acme", DIM);
        let batch = (0..5)
            .map(|i| {
                let mut r = record(&format!("r{i}"), i, DIM, "");
                r.ttl = Some(ttl);
                r
            })
            .collect();
        t.upsert(&coll("docs"), batch).unwrap();
    }
    while engine.open_group_count() > 0 {
        assert!(
            written.elapsed() < ttl,
            "the idle group was not closed before its records expired"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Expired while closed: only the closed-group sweep can have removed them.
    std::thread::sleep(ttl.saturating_sub(written.elapsed()) + Duration::from_secs(2));
    // Checked by an engine without a background sweeper, which could otherwise sweep the
    // group the check reopens before the check does.
    drop(engine);
    let engine = open(dir.path());
    let t = engine.handle(&tenant("acme")).unwrap();
    assert_eq!(
        t.sweep_expired().unwrap(),
        0,
        "the sweeper left expired records"
    );
    assert_eq!(t.stats().unwrap().records, 0);
}

/// Every file of a group directory with its length and a hash of its contents, so equal
/// maps mean the same files byte for byte.
fn files_of(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).unwrap();
            let mut h = std::hash::DefaultHasher::new();
            bytes.hash(&mut h);
            (name, (bytes.len() as u64, h.finish()))
        })
        .collect()
}

/// Tenants of one group share its write-ahead log and write queue, so the first tenants each get
/// a group of their own; past `groups_before_sharing`, a new tenant joins the group with the
/// fewest tenants.
#[test]
fn the_first_tenants_get_groups_of_their_own_then_the_emptiest_is_shared() {
    let groups_of = |config: EngineConfig| {
        let engine = Engine::open(config).unwrap();
        names(5)
            .iter()
            .map(|n| {
                plant(&engine, n);
                engine.tenant_info(&tenant(n)).unwrap().group
            })
            .collect::<Vec<_>>()
    };
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        groups_of(config(dir.path())),
        [0, 1, 2, 3, 4],
        "the defaults"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut three = small_groups(dir.path(), 2);
    three.groups_before_sharing = 3;
    assert_eq!(groups_of(three), [0, 1, 2, 0, 1]);
}

#[test]
fn deleting_a_tenant_leaves_other_groups_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(small_groups(dir.path(), 2)).unwrap();
    let names = names(4);
    for n in &names {
        plant(&engine, n);
        engine.handle(&tenant(n)).unwrap().flush().unwrap();
    }
    assert_eq!(engine.tenant_info(&tenant("tenant-0")).unwrap().group, 0);
    assert_eq!(engine.tenant_info(&tenant("tenant-2")).unwrap().group, 1);
    let group0 = dir.path().join("groups").join("0");
    let before = files_of(&group0);

    engine.delete_tenant(&tenant("tenant-2")).unwrap();

    assert!(
        before.keys().any(|f| f.ends_with(".sst")),
        "group 0 holds table files to compare: {before:?}"
    );
    assert_eq!(
        files_of(&group0),
        before,
        "group 0's files changed (name → (length, content hash))"
    );
    for n in ["tenant-0", "tenant-1", "tenant-3"] {
        assert_sees_only_itself(&engine, n);
    }
}

#[test]
fn idle_tenants_indexes_are_evicted_under_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_groups(dir.path(), 8);
    // Room for one tenant's indexes (30 records of 8 dimensions) but not two.
    config.index_memory_budget_bytes = 6 << 10;
    let engine = Engine::open(config).unwrap();
    let names = names(3);
    for n in &names {
        plant(&engine, n);
    }
    for n in &names {
        assert_sees_only_itself(&engine, n);
        let loaded: Vec<_> = names
            .iter()
            .filter(|m| engine.tenant_info(&tenant(m)).unwrap().loaded)
            .collect();
        assert_eq!(loaded, vec![n], "only the tenant used last stays loaded");
    }
}

#[test]
fn tenants_can_be_created_and_used_while_the_sweeper_closes_and_sweeps_groups() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_groups(dir.path(), 1);
    config.sweep_interval = Duration::from_millis(5);
    config.group_idle_close = Duration::from_millis(5);
    let engine = std::sync::Arc::new(Engine::open(config).unwrap());
    let (done, finished) = std::sync::mpsc::channel();
    let worker = engine.clone();
    std::thread::spawn(move || {
        for n in names(150) {
            plant(&worker, &n);
            assert_sees_only_itself(&worker, &n);
        }
        done.send(()).unwrap();
    });
    // A lock-order bug between lifecycle calls and the sweeper shows up as a hang.
    finished
        .recv_timeout(Duration::from_secs(120))
        .expect("tenant creation finished while the sweeper ran (no deadlock)");
}

/// A tenant's memtables gather up to `tenant_write_buffer_bytes` (32 MiB) before a flush, so a
/// tenant overwriting its records is not rewritten by a compaction every few megabytes, but
/// take memory 256 KiB at a time, so every tenant written to since its last flush does not hold
/// a large block. Read back from the options RocksDB wrote for the tenant's column family.
#[test]
fn tenant_memtables_grow_large_but_take_memory_in_small_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).unwrap();
    tenant_with_docs(&engine, "acme", DIM);
    let text = newest_rocksdb_options(&dir.path().join("groups").join("0"));
    let tenant_cf = text
        .split("[CFOptions \"")
        .find(|section| section.starts_with("t/acme/"))
        .expect("the tenant's column family");
    let option = |name: &str| {
        tenant_cf
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {tenant_cf}"))
            .to_owned()
    };
    assert_eq!(option("write_buffer_size"), (32u64 << 20).to_string());
    assert_eq!(option("arena_block_size"), (256u64 << 10).to_string());
}
