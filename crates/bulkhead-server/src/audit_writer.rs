//! The audit events written from the runtime's workers: refusals (a caller over its limits,
//! a key reaching for another tenant), which have no engine-pool job to write them. A call that
//! runs on the engine pool appends its own event there (`Gate::run_on_tenant`).
//!
//! No runtime worker ever appends: an append can wait in its tenant group's write queue behind
//! another tenant's synced write (milliseconds), and a worker blocked there stalls every request
//! queued on it. The first refusal of a tenant with nothing queued hands its tenant's queue to a
//! task on the blocking pool, which writes what queued up meanwhile in one append per round
//! until the queue is empty; the requests wait asynchronously. Every request returns only once
//! its event is in the WAL, so a crash loses no event of an answered request. Refusals are
//! rare (a tenant over its limits is audited once a second), so the hand-off costs nothing that
//! matters, and one tenant's flood of them keeps one blocking thread, not a worker.
//!
//! Why a queue per tenant: with one queue for the server, a tenant whose appends are slow (its
//! tenant group's WAL busy with its own write flood) made every other tenant's requests wait
//! behind its events. Queues are per tenant, and one write never spans two tenants.

use std::collections::HashMap;
use std::sync::Arc;

use bulkhead_core::TenantId;
use bulkhead_engine::{AuditEntry, EngineError, TenantHandle};
use parking_lot::Mutex;
use tokio::sync::oneshot;

#[derive(Debug)]
struct Pending {
    tenant: TenantHandle,
    entry: AuditEntry,
    written: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct Queue {
    /// Whether a blocking-pool task is appending; if so, it will also write everything in
    /// `pending` before it stops.
    writing: bool,
    pending: Vec<Pending>,
}

type TenantQueue = Arc<Mutex<Queue>>;

/// The tenants with an append in progress or queued, each with its own queue. The map's lock
/// is held only to find, add or drop a queue, never across a write; a queue leaves the map
/// when its writer finds it empty and nobody else holds it.
#[derive(Debug, Clone, Default)]
pub struct AuditWriter {
    queues: Arc<Mutex<HashMap<TenantId, TenantQueue>>>,
}

impl AuditWriter {
    /// Appends `entry` to `tenant`'s audit trail; returns once it is written (or failed, which
    /// is logged: a broken audit log must not take the data path down with it).
    pub async fn append(&self, tenant: TenantHandle, entry: AuditEntry) {
        let id = tenant.id();
        // Taken under the map's lock (and released before the queue's), so a writer that
        // counts the queue's holders under the same lock sees this caller.
        let queue = self.queues.lock().entry(id.clone()).or_default().clone();
        let (written, wait) = oneshot::channel();
        let start_writer = {
            let mut q = queue.lock();
            q.pending.push(Pending {
                tenant,
                entry,
                written,
            });
            !std::mem::replace(&mut q.writing, true)
        };
        if start_writer {
            let writer = self.clone();
            tokio::task::spawn_blocking(move || writer.write_until_empty(id, queue));
        } else {
            // A waiting request holds no reference: the writer that empties the queue can
            // drop it.
            drop(queue);
        }
        let _ = wait.await;
    }

    /// Writes what is queued in `queue` (tenant `id`'s), round after round, until it is empty.
    fn write_until_empty(&self, id: TenantId, queue: TenantQueue) {
        loop {
            let mut queues = self.queues.lock();
            let mut q = queue.lock();
            if q.pending.is_empty() {
                q.writing = false;
                drop(q);
                // The map's and this writer's references: nobody is about to queue on it.
                if Arc::strong_count(&queue) == 2 {
                    queues.remove(&id);
                }
                return;
            }
            drop(queues);
            let batch = std::mem::take(&mut q.pending);
            drop(q);
            write_batch(batch);
        }
    }
}

/// Writes each partition's share of `batch` (one tenant's events; two partitions only across a
/// deletion and re-creation) in one append, in arrival order, then wakes the requests waiting
/// for them.
fn write_batch(batch: Vec<Pending>) {
    let mut groups: Vec<(TenantHandle, Vec<AuditEntry>)> = Vec::new();
    let mut waiting = Vec::with_capacity(batch.len());
    for p in batch {
        match groups
            .iter_mut()
            .find(|(t, _)| t.is_same_partition(&p.tenant))
        {
            Some((_, entries)) => entries.push(p.entry),
            None => groups.push((p.tenant, vec![p.entry])),
        }
        waiting.push(p.written);
    }
    for (tenant, entries) in groups {
        append_logged(&tenant, entries);
    }
    for w in waiting {
        let _ = w.send(());
    }
}

/// Appends `entries` to `tenant`'s trail, logging a failure (a broken audit log must not take
/// the data path down with it; a tenant deleted meanwhile has no trail left to write).
pub fn append_logged(tenant: &TenantHandle, entries: Vec<AuditEntry>) {
    match tenant.append_audit(entries) {
        Ok(_) | Err(EngineError::TenantNotFound(_)) => {}
        Err(e) => tracing::error!(error = %e, "audit append failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::TenantId;
    use bulkhead_engine::{Engine, EngineConfig, TenantSettings};

    fn entry(principal: String) -> AuditEntry {
        AuditEntry {
            principal,
            operation: "RecordService.Query".into(),
            resource: "tenants/t/collections/c".into(),
            outcome: "OK".into(),
            record_count: 0,
            context: Default::default(),
        }
    }

    fn principals(tenant: &TenantHandle) -> Vec<String> {
        let mut p: Vec<String> = tenant
            .list_audit(None, None, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| e.principal)
            .collect();
        p.sort();
        p
    }

    fn engine_with(dir: &std::path::Path, tenants: &[&str]) -> (Engine, Vec<TenantHandle>) {
        let engine = Engine::open(EngineConfig::new(dir)).unwrap();
        let handles = tenants
            .iter()
            .map(|t| {
                let id = TenantId::new(*t).unwrap();
                engine
                    .create_tenant(&id, &TenantSettings::default())
                    .unwrap();
                engine
                    .tenant(&engine.authority().admin(&id, "audit writer test"))
                    .unwrap()
            })
            .collect();
        (engine, handles)
    }

    /// The writer wakes the requests of a batch before it looks at the queue again, so a woken
    /// request may see the writer still busy for a moment; it must be idle soon after, its
    /// queues gone.
    async fn assert_becomes_idle(writer: &AuditWriter) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !writer.queues.lock().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the writer keeps a queue with nothing to write"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Tenant `tenant`'s queue, marked as having a writer (that the test plays), holding an
    /// event `principal` whose request waits on the returned receiver.
    fn busy_queue(
        writer: &AuditWriter,
        tenant: &TenantHandle,
        principal: &str,
    ) -> (TenantQueue, oneshot::Receiver<()>) {
        let queue = writer.queues.lock().entry(tenant.id()).or_default().clone();
        let (written, wait) = oneshot::channel();
        let mut q = queue.lock();
        q.writing = true;
        q.pending.push(Pending {
            tenant: tenant.clone(),
            entry: entry(principal.into()),
            written,
        });
        drop(q);
        (queue, wait)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_concurrent_event_is_in_its_own_tenants_trail_when_its_request_returns() {
        let dir = tempfile::tempdir().unwrap();
        let names = ["a", "b"];
        let (_engine, tenants) = engine_with(dir.path(), &names);
        let writer = AuditWriter::default();
        let mut tasks = Vec::new();
        for i in 0..400 {
            let (writer, tenant) = (writer.clone(), tenants[i % 2].clone());
            tasks.push(tokio::spawn(async move {
                let me = format!("{}-{i:03}", names[i % 2]);
                writer.append(tenant.clone(), entry(me.clone())).await;
                assert!(
                    principals(&tenant).contains(&me),
                    "{me} returned before its event was written"
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for (t, name) in tenants.iter().zip(names) {
            let expected: Vec<String> = (0..400)
                .filter(|i| names[i % 2] == name)
                .map(|i| format!("{name}-{i:03}"))
                .collect();
            assert_eq!(principals(t), expected, "tenant {name}");
        }
        assert_becomes_idle(&writer).await;
    }

    /// The runtime's only blocking thread is held: an event can't be written until it is let
    /// go, however long the request waits, because no runtime worker appends.
    #[test]
    fn events_are_written_on_the_blocking_pool_never_on_a_runtime_worker() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let (_engine, tenants) = engine_with(dir.path(), &["a"]);
            let (release, held) = std::sync::mpsc::channel::<()>();
            let (holding, is_held) = oneshot::channel();
            let blocker = tokio::task::spawn_blocking(move || {
                let _ = holding.send(());
                let _ = held.recv();
            });
            is_held.await.unwrap();
            let writer = AuditWriter::default();
            let append = tokio::spawn({
                let (writer, tenant) = (writer.clone(), tenants[0].clone());
                async move { writer.append(tenant, entry("refused".into())).await }
            });
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert!(!append.is_finished(), "the request waits for the pool");
            assert!(principals(&tenants[0]).is_empty(), "nothing written inline");
            release.send(()).unwrap();
            blocker.await.unwrap();
            tokio::time::timeout(std::time::Duration::from_secs(10), append)
                .await
                .expect("the blocking pool wrote the event")
                .unwrap();
            assert_eq!(principals(&tenants[0]), ["refused"]);
            assert_becomes_idle(&writer).await;
        });
    }

    /// A tenant whose append never finishes (here: a writer the test holds) delays its own
    /// requests only; another tenant's event is written and its request answered meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenant_with_a_stuck_append_holds_up_no_other_tenants_events() {
        let dir = tempfile::tempdir().unwrap();
        let (_engine, tenants) = engine_with(dir.path(), &["slow", "other"]);
        let writer = AuditWriter::default();
        let (slow_queue, mut slow_wait) = busy_queue(&writer, &tenants[0], "slow-queued");
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            writer.append(tenants[1].clone(), entry("other".into())),
        )
        .await
        .expect("the other tenant's event is not queued behind the stuck one");
        assert_eq!(principals(&tenants[1]), ["other"]);
        assert!(
            slow_wait.try_recv().is_err(),
            "the stuck tenant's event waits for its own writer"
        );
        assert!(principals(&tenants[0]).is_empty());
        // The stuck writer comes back and finishes its queue.
        writer.write_until_empty(tenants[0].id(), slow_queue);
        slow_wait.await.unwrap();
        assert_eq!(principals(&tenants[0]), ["slow-queued"]);
        assert_becomes_idle(&writer).await;
    }
}
