//! Bulk import and export of one collection as an Arrow IPC stream. Import reads the stream as
//! it arrives (a blocking reader fed from the request stream, so memory stays at a few chunks)
//! and applies each record batch in one atomic engine write; a bad batch stops the import with
//! the batches before it applied and nothing of it. Export pages through the collection in id
//! order on a blocking thread and streams the encoded batches back as they are made.

use std::io::Read;
use std::sync::Arc;

use bulkhead_core::{CollectionName, Role};
use bulkhead_engine::{EngineError, TenantHandle};
use bulkhead_formats::{FormatError, StreamEncoder, read_stream};
use bulkhead_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{record_from_row, stored_record_to_row};
use crate::gate::{Gate, Scope, now_ms};
use crate::status::engine_status;

/// Records per exported batch unless the request asks otherwise, and the most it may ask.
const DEFAULT_EXPORT_BATCH: usize = 256;
const MAX_EXPORT_BATCH: usize = 65_536;
/// Request chunks buffered between the network and the decoder.
const IMPORT_CHUNKS_IN_FLIGHT: usize = 16;

pub type ExportStream = ReceiverStream<Result<pb::ExportResponse, Status>>;

pub async fn import(
    gate: &Arc<Gate>,
    request: Request<Streaming<pb::ImportRequest>>,
    max_batch_bytes: usize,
) -> Result<Response<pb::ImportResponse>, Status> {
    let (md, _, mut stream) = request.into_parts();
    let first = stream.message().await?.ok_or_else(|| {
        Status::invalid_argument("empty import stream: the first message must name the collection")
    })?;
    if first.collection.is_empty() {
        return Err(Status::invalid_argument(
            "collection: required in the first message",
        ));
    }
    let collection = first.collection.clone();
    let first_bytes = first.arrow_ipc.len() as u64;
    let (chunks, incoming) = mpsc::channel(IMPORT_CHUNKS_IN_FLIGHT);
    tokio::spawn(forward_chunks(first, stream, chunks));
    gate.tenant_call(
        &md,
        "RecordService/Import",
        &collection,
        Role::Write,
        first_bytes,
        move |scope: Scope<CollectionName>| {
            let response = apply_stream(&scope, ChunkReader::new(incoming), max_batch_bytes)?;
            let n = response.imported;
            Ok((response, n))
        },
    )
    .await
    .map(Response::new)
}

/// Feeds the request's Arrow bytes to the decoder; a broken request stream or a message naming
/// another collection ends the byte stream with an error.
async fn forward_chunks(
    first: pb::ImportRequest,
    mut stream: Streaming<pb::ImportRequest>,
    chunks: mpsc::Sender<Result<Vec<u8>, String>>,
) {
    let name = first.collection;
    if chunks.send(Ok(first.arrow_ipc)).await.is_err() {
        return;
    }
    loop {
        let next = match stream.message().await {
            Ok(None) => return,
            Ok(Some(m)) if !m.collection.is_empty() && m.collection != name => Err(format!(
                "collection: every message must name {name} or nothing, got {}",
                m.collection
            )),
            Ok(Some(m)) => Ok(m.arrow_ipc),
            Err(status) => Err(format!("request stream failed: {}", status.message())),
        };
        let failed = next.is_err();
        if chunks.send(next).await.is_err() || failed {
            return;
        }
    }
}

fn apply_stream(
    scope: &Scope<CollectionName>,
    input: ChunkReader,
    max_batch_bytes: usize,
) -> Result<pb::ImportResponse, Status> {
    let collection = &scope.name.collection;
    let dimension = scope
        .tenant
        .get_collection(collection)
        .map_err(engine_status)?
        .spec
        .dimension;
    let mut batch_records: Vec<u64> = Vec::new();
    let mut refused: Option<Status> = None;
    let read = read_stream(input, dimension, max_batch_bytes, |rows| {
        let batch = batch_records.len();
        let applied = rows
            .into_iter()
            .enumerate()
            .map(|(row, r)| record_from_row(batch, row, r))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|records| {
                scope
                    .tenant
                    .upsert(collection, records)
                    .map_err(|e| batch_status(batch, e))
            });
        match applied {
            Ok(n) => {
                batch_records.push(n as u64);
                Ok(())
            }
            Err(status) => {
                refused = Some(status);
                Err(FormatError::Arrow {
                    column: None,
                    message: "batch refused".into(),
                })
            }
        }
    });
    let imported: u64 = batch_records.iter().sum();
    let progress = format!(
        "; {} earlier batches ({imported} records) were imported",
        batch_records.len()
    );
    match (read, refused) {
        (_, Some(status)) => Err(Status::new(
            status.code(),
            format!("{}{progress}", status.message()),
        )),
        (Err(e), None) => Err(Status::invalid_argument(format!("{e}{progress}"))),
        (Ok(()), None) => Ok(pb::ImportResponse {
            imported,
            batch_records,
        }),
    }
}

fn batch_status(batch: usize, e: EngineError) -> Status {
    let status = engine_status(e);
    Status::new(
        status.code(),
        format!("batch {batch}: {}", status.message()),
    )
}

/// The request's byte chunks as a blocking `Read`, for the Arrow decoder on the blocking pool.
struct ChunkReader {
    incoming: mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    at: usize,
}

impl ChunkReader {
    fn new(incoming: mpsc::Receiver<Result<Vec<u8>, String>>) -> Self {
        Self {
            incoming,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.incoming.blocking_recv() {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Some(Err(message)) => return Err(std::io::Error::other(message)),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

pub async fn export(
    gate: &Arc<Gate>,
    request: Request<pb::ExportRequest>,
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
            Role::Read,
            0,
            move |scope: Scope<CollectionName>| {
                let info = scope
                    .tenant
                    .get_collection(&scope.name.collection)
                    .map_err(engine_status)?;
                let n = info.records;
                Ok((
                    (scope.tenant, scope.name.collection, info.spec.dimension),
                    n,
                ))
            },
        )
        .await?;
    let (out, stream) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        if let Err(status) = send_collection(&tenant, &collection, dimension, batch, &out) {
            let _ = out.blocking_send(Err(status));
        }
    });
    Ok(Response::new(ReceiverStream::new(stream)))
}

/// Encodes the collection page by page; stops early when the client has gone away.
fn send_collection(
    tenant: &TenantHandle,
    collection: &bulkhead_core::CollectionId,
    dimension: usize,
    batch: usize,
    out: &mpsc::Sender<Result<pb::ExportResponse, Status>>,
) -> Result<(), Status> {
    let encoding = |e: FormatError| Status::internal(format!("encoding the export: {e}"));
    let mut encoder = StreamEncoder::new(dimension).map_err(encoding)?;
    let mut after = None;
    loop {
        let page = tenant
            .scan_records(collection, after.as_ref(), batch)
            .map_err(engine_status)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let now = now_ms();
        let rows: Vec<_> = page
            .into_iter()
            .map(|r| stored_record_to_row(r, now))
            .collect();
        let bytes = encoder.push(&rows).map_err(encoding)?;
        if out
            .blocking_send(Ok(pb::ExportResponse { arrow_ipc: bytes }))
            .is_err()
        {
            return Ok(());
        }
    }
    let end = encoder.finish().map_err(encoding)?;
    let _ = out.blocking_send(Ok(pb::ExportResponse { arrow_ipc: end }));
    Ok(())
}
