//! A tenant's write held in its log sync (a slow disk, a neighbour's flood on it) must cost
//! that write alone: the tenant's other requests append their audit events meanwhile. The sync
//! is held at a fail point, only on the writing thread, until the test lets it go.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bulkhead_engine::{AuditEntry, AuditStamp};
use parking_lot::Mutex;

use crate::common::*;

const DIM: usize = 8;
const POINT: &str = "wal-sync:syncing";
/// The name of the thread whose log sync is held; any other thread syncs as usual.
const HELD: &str = "upsert-held-in-log-sync";
/// How long the append may take before the test calls it stuck behind the held sync. It
/// detects a wait that would otherwise last forever; it measures no speed.
const STUCK: Duration = Duration::from_secs(30);

#[test]
fn a_request_audits_itself_while_another_write_of_its_tenant_waits_for_the_log_sync() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let t = tenant_with_docs(&engine, "acme", DIM);
    let writer = t.audited(AuditStamp {
        principal: "writer".into(),
        operation: "RecordService/Upsert".into(),
        resource: "tenants/acme/collections/docs".into(),
        context: Default::default(),
    });

    let (entered, sync_held) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    fail::cfg_callback(POINT, move || {
        if thread::current().name() == Some(HELD) {
            entered.send(()).ok();
            released.lock().recv().ok();
        }
    })
    .unwrap();

    let upsert = thread::Builder::new()
        .name(HELD.into())
        .spawn(move || writer.upsert(&coll("docs"), vec![record("a", 1, DIM, "a")]))
        .unwrap();
    sync_held.recv().expect("the upsert reached its log sync");

    let reader = t.clone();
    let (appended, append_done) = mpsc::channel();
    thread::spawn(move || {
        let events = reader.append_audit(vec![AuditEntry {
            principal: "reader".into(),
            operation: "RecordService/Query".into(),
            resource: "tenants/acme/collections/docs".into(),
            outcome: "OK".into(),
            record_count: 1,
            context: Default::default(),
        }]);
        appended.send(events).ok();
    });
    let appended = append_done.recv_timeout(STUCK);
    release.send(()).unwrap();
    fail::remove(POINT);
    let appended = appended
        .expect("the query's audit append waited for the upsert's log sync")
        .unwrap();
    assert_eq!(upsert.join().unwrap().unwrap(), 1);

    // Both are in the trail, in the order they entered the log.
    let trail = t.list_audit(None, None, 100).unwrap();
    let operations: Vec<_> = trail.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(
        operations,
        ["RecordService/Upsert", "RecordService/Query"],
        "{trail:?}"
    );
    assert_eq!(appended[0].sequence, trail[1].sequence);
}
