//! Helpers: engines in temporary directories, ids, and deterministic vectors.

use std::path::Path;
use std::time::Duration;

use bulkhead_core::{CollectionId, Metric, RecordId, TenantId};
use bulkhead_engine::{
    CollectionSpec, Engine, EngineConfig, ManualClock, NewRecord, TenantHandle, TenantSettings,
};

pub fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    // Tests sweep explicitly; the background sweeper must not race their assertions.
    c.sweep_interval = Duration::from_secs(3600);
    c
}

/// `config` with groups filled one after another (up to `tenants_per_group` tenants each)
/// rather than a group of its own for each of the first tenants: for tests of what tenants of
/// one RocksDB instance must not do to each other.
pub fn shared_groups(dir: &Path) -> EngineConfig {
    let mut c = config(dir);
    c.groups_before_sharing = 1;
    c
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(config(dir)).expect("engine opens")
}

/// An engine whose time moves only when `clock` is advanced.
pub fn open_with_clock(dir: &Path, clock: &ManualClock) -> Engine {
    let mut config = config(dir);
    config.clock = clock.clock();
    Engine::open(config).expect("engine opens")
}

/// Full-access handles: in these tests the test itself is the authorizer.
pub trait Handles {
    fn handle(&self, id: &TenantId) -> bulkhead_engine::Result<TenantHandle>;
}

impl Handles for Engine {
    fn handle(&self, id: &TenantId) -> bulkhead_engine::Result<TenantHandle> {
        self.tenant(&self.authority().admin(id, "engine integration test"))
    }
}

pub fn tenant(id: &str) -> TenantId {
    TenantId::new(id).unwrap()
}

pub fn coll(id: &str) -> CollectionId {
    CollectionId::new(id).unwrap()
}

pub fn rid(id: &str) -> RecordId {
    RecordId::new(id).unwrap()
}

/// A reproducible pseudo-random unit vector for `seed`.
pub fn vector(seed: u64, dim: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-6);
    v.iter_mut().for_each(|a| *a /= norm);
    v
}

pub fn record(id: &str, seed: u64, dim: usize, text: &str) -> NewRecord {
    let mut r = NewRecord::new(rid(id), vector(seed, dim));
    r.text = Some(text.to_owned());
    r
}

/// Waits for the engine's background index builds and segment writes to finish.
pub fn wait_for_builds(engine: &Engine) {
    assert!(
        engine.wait_for_index_builds(Duration::from_secs(60)),
        "index builds never finished"
    );
}

/// Runs the ignored test `test` of this binary as a child process with `env_var` set to
/// `dir`, its stdout piped, its stderr in `dir/child.log`.
pub fn spawn_child(test: &str, env_var: &str, dir: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env_var, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("child.log")).unwrap())
        .spawn()
        .unwrap()
}

/// Creates tenant `id` with one cosine collection `docs` of dimension `dim`.
pub fn tenant_with_docs(engine: &Engine, id: &str, dim: usize) -> TenantHandle {
    engine
        .create_tenant(&tenant(id), &TenantSettings::default())
        .expect("tenant created");
    let t = engine.handle(&tenant(id)).unwrap();
    t.create_collection(&coll("docs"), &CollectionSpec::new(dim, Metric::Cosine))
        .expect("collection created");
    t
}

/// The newest options file RocksDB wrote in the group directory `group`: every column family's
/// settings, as RocksDB applied them.
pub fn newest_rocksdb_options(group: &Path) -> String {
    let newest = std::fs::read_dir(group)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("OPTIONS-"))
        .max_by_key(|n| n["OPTIONS-".len()..].parse::<u64>().unwrap_or(0))
        .expect("an options file");
    std::fs::read_to_string(group.join(newest)).unwrap()
}
