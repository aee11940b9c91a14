//! Audit events are appended by one thread, in batches: every request waits (asynchronously)
//! until its event is in the WAL, so a crash loses no event of an answered request, but no
//! runtime worker ever blocks on a tenant's audit lock or a RocksDB write. Under load the
//! events of many requests of one tenant share one write, which is what keeps auditing every
//! call affordable, and a tenant flooding the server with refused calls can't tie up the
//! workers that serve the others. Batches are per tenant partition: one write never spans
//! two tenants.

use std::sync::mpsc;
use std::thread::JoinHandle;

use bulkhead_engine::{AuditEntry, EngineError, TenantHandle};
use tokio::sync::oneshot;

#[derive(Debug)]
struct Pending {
    tenant: TenantHandle,
    entry: AuditEntry,
    written: oneshot::Sender<()>,
}

#[derive(Debug)]
pub struct AuditWriter {
    queue: Option<mpsc::Sender<Pending>>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWriter {
    pub fn start() -> Self {
        let (queue, incoming) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bulkhead-audit".into())
            .spawn(move || write_until_closed(&incoming))
            .expect("spawning the audit writer thread");
        Self {
            queue: Some(queue),
            thread: Some(thread),
        }
    }

    /// Appends `entry` to `tenant`'s audit trail; returns once it is written (or failed, which
    /// is logged: a broken audit log must not take the data path down with it).
    pub async fn append(&self, tenant: TenantHandle, entry: AuditEntry) {
        let (written, wait) = oneshot::channel();
        let pending = Pending {
            tenant,
            entry,
            written,
        };
        let sent = self.queue.as_ref().is_some_and(|q| q.send(pending).is_ok());
        if !sent {
            tracing::error!("audit writer stopped; event not written");
            return;
        }
        let _ = wait.await;
    }
}

impl Drop for AuditWriter {
    /// Writes what is queued, then stops the thread.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_until_closed(incoming: &mpsc::Receiver<Pending>) {
    while let Ok(first) = incoming.recv() {
        let mut batch = vec![first];
        batch.extend(incoming.try_iter());
        write_batch(batch);
    }
}

/// Writes each tenant's share of `batch` in one append, in arrival order, then wakes the
/// requests waiting for them.
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
        match tenant.append_audit(entries) {
            Ok(_) | Err(EngineError::TenantNotFound(_)) => {}
            Err(e) => tracing::error!(error = %e, "audit append failed"),
        }
    }
    for w in waiting {
        let _ = w.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::TenantId;
    use bulkhead_engine::{Engine, EngineConfig, TenantSettings};
    use std::sync::Arc;

    fn entry(principal: String) -> AuditEntry {
        AuditEntry {
            principal,
            operation: "RecordService.Query".into(),
            resource: "tenants/t/collections/c".into(),
            outcome: "OK".into(),
            record_count: 0,
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_concurrent_event_is_in_its_own_tenants_trail_when_its_request_returns() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
        let names = ["a", "b"];
        let tenants: Vec<TenantHandle> = names
            .iter()
            .map(|t| {
                let id = TenantId::new(*t).unwrap();
                engine
                    .create_tenant(&id, &TenantSettings::default())
                    .unwrap();
                engine.tenant(&id).unwrap()
            })
            .collect();
        let writer = Arc::new(AuditWriter::start());
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
    }
}
