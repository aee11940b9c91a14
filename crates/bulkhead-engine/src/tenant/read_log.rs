//! The ids a read returned, for collections created to record them (`audit_reads`), so the
//! tenant's trail answers "which user saw which document, when". A handle made by
//! `logging_reads` collects them as its reads return records; the caller that audits the call
//! puts them into its event. Collections without the option record nothing, whatever the
//! handle, and an event keeps at most `MAX_AUDITED_READ_IDS`.

use std::sync::Arc;

use bulkhead_core::RecordId;
use parking_lot::Mutex;

use crate::access::Access;
use crate::audit::MAX_AUDITED_READ_IDS;
use crate::collection::CollectionMeta;
use crate::tenant::TenantHandle;

#[derive(Debug, Default)]
pub(crate) struct ReadLog {
    ids: Mutex<Vec<String>>,
}

impl<A: Access> TenantHandle<A> {
    /// This handle, collecting the ids its reads return in collections that record them.
    pub fn logging_reads(&self) -> Self {
        let mut handle = self.clone();
        handle.reads = Some(Arc::new(ReadLog::default()));
        handle
    }

    /// The ids this handle's reads returned so far (in collections that record them), taken.
    pub fn take_read_ids(&self) -> Vec<String> {
        self.reads
            .as_ref()
            .map_or_else(Vec::new, |log| std::mem::take(&mut *log.ids.lock()))
    }

    /// Notes `ids` as returned by a read of `collection`, if it records reads.
    pub(super) fn log_reads<'a>(
        &self,
        collection: &CollectionMeta,
        ids: impl Iterator<Item = &'a RecordId>,
    ) {
        let Some(log) = self.reads.as_ref().filter(|_| collection.audit_reads) else {
            return;
        };
        let mut logged = log.ids.lock();
        let room = MAX_AUDITED_READ_IDS.saturating_sub(logged.len());
        logged.extend(ids.take(room).map(ToString::to_string));
    }
}
