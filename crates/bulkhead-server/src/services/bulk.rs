//! Bulk import and export of one collection as an Arrow IPC stream. No thread ever waits on the
//! client: bytes are received and sent on the async runtime, with an idle and a total deadline,
//! and only complete work goes to the pools (decoding a received batch and applying it,
//! encoding one page). A tenant holds a bounded number of streams open.
//!
//! Import pays for each message's bytes to the tenant's write-rate limit as it arrives, before
//! decoding it, and waits for the bucket when it is empty: a file bigger than the limit lets
//! through at the client's speed is paced, not cut off part-way with some of it applied. It
//! then applies each record batch as a call of its own through the gate: the caller is
//! authenticated again (a key revoked mid-import stops it), and the write carries its audit
//! event. A bad batch stops the import with the batches before it applied and nothing of it.
//! Export pages through the collection in id order, one page per turn on the engine pool.

use std::sync::Arc;
use std::time::Duration;

use bulkhead_core::{CollectionId, CollectionName, Role, TenantId};
use bulkhead_engine::{Access, EngineError, KeyAdmin, NewRecord, Read, TenantHandle, Write};
use bulkhead_formats::{BatchDecoder, FormatError, RecordRow, StreamEncoder};
use bulkhead_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::admission::JobKind;
use crate::gate::{Gate, Scope, Shares, now_ms};
use crate::status::{engine_status, wire_status};
use bulkhead_wire::engine::{record_from_row, stored_record_to_row};

/// Records per exported batch unless the request asks otherwise, and the most it may ask (a
/// page is built in memory before it is sent).
const DEFAULT_EXPORT_BATCH: usize = 256;
const MAX_EXPORT_BATCH: usize = 4096;
/// Encoded pages waiting for the client, per export.
const EXPORT_PAGES_IN_FLIGHT: usize = 2;
const IMPORT: &str = "RecordService/Import";

/// How long a stream may run, and may go without moving a message.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub idle: Duration,
    pub total: Duration,
}

impl StreamLimits {
    /// The deadline of the next message: the idle limit from now, within the total.
    fn next_deadline(&self, total_deadline: Instant) -> Instant {
        (Instant::now() + self.idle).min(total_deadline)
    }

    fn exceeded(&self, total_deadline: Instant, what: &str) -> Status {
        if Instant::now() >= total_deadline {
            Status::deadline_exceeded(format!(
                "{what}: the stream ran past its limit of {} s (stream-timeout-secs)",
                self.total.as_secs()
            ))
        } else {
            Status::deadline_exceeded(format!(
                "{what}: nothing moved for {} s (stream-idle-timeout-secs)",
                self.idle.as_secs()
            ))
        }
    }
}

/// What an import may hold per batch.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    pub max_batch_bytes: usize,
    pub max_batch_rows: usize,
    pub streams: StreamLimits,
}

pub type ExportStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<pb::ExportResponse, Status>> + Send + 'static>,
>;

pub async fn import(
    gate: &Arc<Gate>,
    request: Request<Streaming<pb::ImportRequest>>,
    limits: ImportLimits,
) -> Result<Response<pb::ImportResponse>, Status> {
    let total_deadline = Instant::now() + limits.streams.total;
    let (md, _, mut stream) = request.into_parts();
    let first = next_message(&mut stream, limits.streams, total_deadline)
        .await?
        .ok_or_else(|| {
            Status::invalid_argument(
                "empty import stream: the first message must name the collection",
            )
        })?;
    if first.collection.is_empty() {
        return Err(Status::invalid_argument(
            "collection: required in the first message",
        ));
    }
    let collection = first.collection.clone();
    let (tenant, dimension) = gate
        .tenant_call(
            &md,
            IMPORT,
            &collection,
            0,
            |scope: Scope<CollectionName, Write>| {
                let info = scope
                    .tenant
                    .get_collection(&scope.name.collection)
                    .map_err(engine_status)?;
                Ok(((scope.name.tenant, info.spec.dimension), 0))
            },
        )
        .await?;
    let _open = gate.open_stream(&tenant, &gate.shares_of(&tenant)?)?;
    // A tenant admin's import is a restore: into a semantic cache it may bring back the
    // entries' reserved fields (checked by the engine); anyone else's may not set them.
    let restore = gate
        .still_authorized(&md, &tenant, Role::TenantAdmin)
        .is_ok();
    let mut import = Import {
        gate: gate.clone(),
        metadata: md,
        tenant,
        restore,
        collection,
        decoder: Some(BatchDecoder::new(
            dimension,
            limits.max_batch_bytes,
            limits.max_batch_rows,
        )),
        batch_records: Vec::new(),
        deadline: total_deadline,
    };
    let mut next = Some(first);
    while let Some(message) = next {
        import.take(message).await?;
        next = next_message(&mut stream, limits.streams, total_deadline)
            .await
            .map_err(|s| import.with_progress(s))?;
    }
    import.finish().await
}

/// How an import writes a batch: `upsert`, or a tenant admin's `restore_records`.
type WriteRecords<A> =
    fn(&TenantHandle<A>, &CollectionId, Vec<NewRecord>) -> Result<usize, EngineError>;

/// One import under way.
struct Import {
    gate: Arc<Gate>,
    metadata: tonic::metadata::MetadataMap,
    tenant: TenantId,
    /// Whether the caller is a tenant admin, whose import restores (`restore_records`).
    restore: bool,
    collection: String,
    /// Out while it decodes on the blocking pool.
    decoder: Option<BatchDecoder>,
    batch_records: Vec<u64>,
    /// When the stream's time is up.
    deadline: Instant,
}

impl Import {
    async fn take(&mut self, message: pb::ImportRequest) -> Result<(), Status> {
        if !message.collection.is_empty() && message.collection != self.collection {
            // Another tenant's collection is refused (and audited) as it would be in a first
            // message; another collection of the same tenant is a malformed stream.
            self.gate
                .authorize_stream_resource::<CollectionName>(
                    &self.metadata,
                    IMPORT,
                    &message.collection,
                    Role::Write,
                )
                .await
                .map_err(|s| self.with_progress(s))?;
            return Err(self.with_progress(Status::invalid_argument(format!(
                "collection: every message must name {} or nothing, got {}",
                self.collection, message.collection
            ))));
        }
        // Each message's bytes are paid for as it arrives, before it is decoded: past the
        // tenant's write limit, the import waits for its bucket rather than failing. The key is
        // checked again first, and each second of the wait.
        let received = message.arrow_ipc.len() as u64;
        self.gate
            .pay_for_stream_writes(&self.metadata, &self.tenant, received, self.deadline)
            .await
            .map_err(|s| self.with_progress(s))?;
        let bytes = message.arrow_ipc;
        let batches = self.decode(move |decoder| decoder.push(&bytes)).await?;
        for rows in batches {
            self.apply(rows).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<Response<pb::ImportResponse>, Status> {
        self.decode(|decoder| decoder.finish().map(|()| Vec::new()))
            .await?;
        Ok(Response::new(pb::ImportResponse {
            imported: self.batch_records.iter().sum(),
            batch_records: self.batch_records,
        }))
    }

    /// Runs the decoder on the blocking pool: decoding a batch of up to `max_batch_bytes` is
    /// bounded but not cheap.
    async fn decode(
        &mut self,
        step: impl FnOnce(&mut BatchDecoder) -> bulkhead_formats::Result<Vec<Vec<RecordRow>>>
        + Send
        + 'static,
    ) -> Result<Vec<Vec<RecordRow>>, Status> {
        let mut decoder = self.decoder.take().expect("one decode at a time");
        let (decoder, decoded) = tokio::task::spawn_blocking(move || {
            let decoded = step(&mut decoder);
            (decoder, decoded)
        })
        .await
        .map_err(|_| Status::internal("decoding the import failed"))?;
        self.decoder = Some(decoder);
        decoded
            .map_err(|e: FormatError| self.with_progress(Status::invalid_argument(e.to_string())))
    }

    async fn apply(&mut self, rows: Vec<RecordRow>) -> Result<(), Status> {
        // A tenant admin's import restores (only a key-admin handle has `restore_records`);
        // anyone else's upserts.
        let written = if self.restore {
            self.write_batch(rows, TenantHandle::<KeyAdmin>::restore_records)
                .await
        } else {
            self.write_batch(rows, TenantHandle::<Write>::upsert).await
        };
        let applied = written.map_err(|s| self.with_progress(s))?;
        self.batch_records.push(applied);
        Ok(())
    }

    /// Writes one decoded batch with `write`, under the caller's role `A`; the records written.
    async fn write_batch<A: Access>(
        &mut self,
        rows: Vec<RecordRow>,
        write: WriteRecords<A>,
    ) -> Result<u64, Status> {
        let batch = self.batch_records.len();
        // Its bytes were paid for as they arrived (`take`).
        self.gate
            .bulk_tenant_call(
                &self.metadata,
                IMPORT,
                &self.collection,
                move |scope: Scope<CollectionName, A>| {
                    let records = rows
                        .into_iter()
                        .enumerate()
                        .map(|(row, r)| record_from_row(batch, row, r))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(wire_status)?;
                    let n = write(&scope.tenant, &scope.name.collection, records)
                        .map_err(|e| batch_status(batch, e))? as u64;
                    Ok((n, n))
                },
            )
            .await
    }

    /// `status` with what was imported before it.
    fn with_progress(&self, status: Status) -> Status {
        let imported: u64 = self.batch_records.iter().sum();
        Status::new(
            status.code(),
            format!(
                "{}; {} earlier batches ({imported} records) were imported",
                status.message(),
                self.batch_records.len()
            ),
        )
    }
}

/// The next request message, waiting at most the idle limit (and never past the total).
async fn next_message(
    stream: &mut Streaming<pb::ImportRequest>,
    limits: StreamLimits,
    total_deadline: Instant,
) -> Result<Option<pb::ImportRequest>, Status> {
    match timeout_at(limits.next_deadline(total_deadline), stream.message()).await {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(status)) => Err(Status::new(
            status.code(),
            format!("request stream failed: {}", status.message()),
        )),
        Err(_) => Err(limits.exceeded(total_deadline, "import")),
    }
}

fn batch_status(batch: usize, e: EngineError) -> Status {
    let status = engine_status(e);
    Status::new(
        status.code(),
        format!("batch {batch}: {}", status.message()),
    )
}

pub async fn export(
    gate: &Arc<Gate>,
    request: Request<pb::ExportRequest>,
    limits: StreamLimits,
) -> Result<Response<ExportStream>, Status> {
    let (md, _, req) = request.into_parts();
    let batch = match req.batch_size as usize {
        0 => DEFAULT_EXPORT_BATCH,
        n => n.min(MAX_EXPORT_BATCH),
    };
    let (tenant, collection, dimension) = gate
        .tenant_call(
            &md,
            "RecordService/Export",
            &req.collection,
            0,
            // The settings come from storage, so exporting a cold tenant loads no index and
            // the first page goes out at once; the event is written as the stream opens,
            // before any record is read, so it counts none.
            move |scope: Scope<CollectionName, Read>| {
                let spec = scope
                    .tenant
                    .collection_spec(&scope.name.collection)
                    .map_err(engine_status)?;
                Ok(((scope.tenant, scope.name.collection, spec.dimension), 0))
            },
        )
        .await?;
    let tenant_id = tenant.id();
    let shares = gate.shares_of(&tenant_id)?;
    let open = gate.open_stream(&tenant_id, &shares)?;
    let (pages, data) = mpsc::channel(EXPORT_PAGES_IN_FLIGHT);
    // The failure goes on a channel of its own, so it can always be posted even when the
    // client has left the data channel full.
    let (failure, failed) = mpsc::channel(1);
    let export = Export {
        gate: gate.clone(),
        tenant_id,
        shares,
        tenant,
        collection,
        batch,
        limits,
    };
    tokio::spawn(async move {
        let _open = open;
        if let Err(status) = export.run(dimension, &pages).await {
            let _ = failure.try_send(Err(status));
        }
    });
    let stream = ReceiverStream::new(data).chain(ReceiverStream::new(failed));
    Ok(Response::new(Box::pin(stream)))
}

/// One export under way.
struct Export {
    gate: Arc<Gate>,
    tenant_id: TenantId,
    /// The tenant's share of the server when the export began.
    shares: Shares,
    tenant: TenantHandle<Read>,
    collection: CollectionId,
    batch: usize,
    limits: StreamLimits,
}

type Pages = mpsc::Sender<Result<pb::ExportResponse, Status>>;

impl Export {
    /// Encodes and sends page after page; stops early when the client has gone away.
    async fn run(self, dimension: usize, pages: &Pages) -> Result<(), Status> {
        let total_deadline = Instant::now() + self.limits.total;
        let encoding = |e: FormatError| Status::internal(format!("encoding the export: {e}"));
        let mut encoder = Some(StreamEncoder::new(dimension).map_err(encoding)?);
        let mut after = None;
        loop {
            let (tenant, collection, batch) =
                (self.tenant.clone(), self.collection.clone(), self.batch);
            let mut enc = encoder.take().expect("the encoder is back after each page");
            let (page, last, enc) = self
                .gate
                .on_engine_pool(&self.tenant_id, &self.shares, JobKind::Request, move || {
                    let page = tenant
                        .scan_records(&collection, after.as_ref(), batch)
                        .map_err(engine_status)?;
                    let last = page.last().map(|r| r.id.clone());
                    let now = now_ms();
                    let rows: Vec<_> = page
                        .into_iter()
                        .map(|r| stored_record_to_row(r, now))
                        .collect();
                    let (bytes, enc) = match last {
                        Some(_) => (enc.push(&rows).map_err(encoding)?, Some(enc)),
                        None => (enc.finish().map_err(encoding)?, None),
                    };
                    Ok((bytes, last, enc))
                })
                .await?;
            encoder = enc;
            let done = last.is_none();
            after = last;
            let sent = timeout_at(
                self.limits.next_deadline(total_deadline),
                pages.send(Ok(pb::ExportResponse { arrow_ipc: page })),
            )
            .await;
            match sent {
                Ok(Ok(())) if done => return Ok(()),
                Ok(Ok(())) => {}
                // The client went away.
                Ok(Err(_)) => return Ok(()),
                Err(_) => return Err(self.limits.exceeded(total_deadline, "export")),
            }
        }
    }
}
