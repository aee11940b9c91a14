//! Reading a whole collection page by page in id order, for export and backup. Pages come from
//! RocksDB directly (not through the indexes, which hold no text or metadata), resuming after
//! the last id of the previous page, and expired records are left out exactly as every other
//! read path leaves them out. A cold tenant is not activated for it: an export needs no index,
//! and loading a big tenant's vectors before the first page would delay it for nothing.

use bulkhead_core::{CollectionId, RecordId};

use crate::access::Access;
use crate::clock::is_expired;
use crate::codec;
use crate::collection::CollectionSpec;
use crate::error::{EngineError, Result};
use crate::keys;
use crate::record::StoredRecord;
use crate::tenant::TenantHandle;

impl<A: Access> TenantHandle<A> {
    /// The settings of `collection`, read from storage: unlike `get_collection`, a cold
    /// tenant stays cold (no index is loaded) and no record count is made.
    pub fn collection_spec(&self, collection: &CollectionId) -> Result<CollectionSpec> {
        let _g = self.enter()?;
        Ok(self.stored_meta(collection)?.spec())
    }

    /// Up to `limit` live records of `collection` with ids after `after` (from the first when
    /// `None`), in id byte order. An empty page means the end.
    pub fn scan_records(
        &self,
        collection: &CollectionId,
        after: Option<&RecordId>,
        limit: usize,
    ) -> Result<Vec<StoredRecord>> {
        let _g = self.enter()?;
        let meta = self.stored_meta(collection)?;
        if self.reader_in(&meta).is_some() {
            return Err(EngineError::NotPermitted(format!(
                "collection {collection} controls access per record; its readers query and \
                 get, they don't export"
            )));
        }
        let (first, end) = keys::record_range(collection);
        let start = match after {
            Some(id) => {
                let mut k = keys::record_key(collection, id);
                k.push(0);
                k
            }
            None => first,
        };
        let now = self.state.now_ms();
        let mut out = Vec::with_capacity(limit.min(4096));
        self.store().scan((start, end), &mut |key, value| {
            if let Some(v) = codec::decode(value)?
                && !is_expired(v.expires_at_ms, now)
            {
                out.push(StoredRecord {
                    id: keys::record_id_of(collection, key)?,
                    vector: v.vector,
                    text: v.text,
                    metadata: v.metadata,
                    expire_time_ms: (v.expires_at_ms != 0).then_some(v.expires_at_ms),
                });
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }
}
