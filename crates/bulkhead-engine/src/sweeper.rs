//! The background sweeper: one thread per engine that periodically sweeps expired records and
//! prunes audit logs, tenant by tenant, through ordinary tenant handles. Tenants of groups not
//! opened since start are left until their group opens: their expired records are already
//! invisible to reads, and opening thousands of idle groups just to sweep them would undo lazy
//! start-up.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::engine::Shared;
use crate::error::EngineError;

#[derive(Debug)]
pub(crate) struct Sweeper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

impl Sweeper {
    pub fn start(shared: Arc<Shared>) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let interval = shared.config.sweep_interval;
        let weak = Arc::downgrade(&shared);
        drop(shared);
        let thread = std::thread::Builder::new()
            .name("bulkhead-sweeper".into())
            .spawn(move || {
                let (lock, cvar) = &*signal;
                loop {
                    {
                        let mut stopped = lock.lock();
                        if !*stopped {
                            cvar.wait_for(&mut stopped, interval);
                        }
                        if *stopped {
                            return;
                        }
                    }
                    let Some(shared) = weak.upgrade() else { return };
                    sweep_once(&shared);
                }
            })
            .expect("spawning the sweeper thread");
        Self { stop, thread }
    }

    pub fn stop(self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

fn sweep_once(shared: &Arc<Shared>) {
    let started = Instant::now();
    let (mut records, mut events) = (0, 0);
    for tenant in shared.tenants_in_open_groups() {
        match tenant
            .sweep_expired()
            .and_then(|r| Ok((r, tenant.prune_audit()?)))
        {
            Ok((r, e)) => {
                records += r;
                events += e;
            }
            Err(EngineError::TenantNotFound(_)) => {}
            Err(e) => tracing::error!(tenant = %tenant.id(), error = %e, "sweep failed"),
        }
    }
    if records + events > 0 {
        tracing::info!(
            expired_records = records,
            audit_events = events,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sweep finished"
        );
    }
}
