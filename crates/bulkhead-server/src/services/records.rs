//! `RecordService`: records and nearest-neighbour queries in one collection.

use std::sync::Arc;

use bulkhead_core::CollectionName;
use bulkhead_engine::{Include, Query, Read, Write};
use bulkhead_proto::v1 as pb;
use pb::record_service_server::RecordService;
use tonic::{Request, Response, Status};

use crate::gate::{Gate, Scope};
use crate::status::{engine_status, wire_status};
use crate::undecoded::WriteMessage;
use bulkhead_wire::engine::{filter, hit_to_pb, new_record, stored_record_to_pb};
use bulkhead_wire::record_ids;

#[derive(Debug)]
pub struct RecordApi {
    pub gate: Arc<Gate>,
    pub max_batch: usize,
    pub max_top_k: u32,
    /// Largest request message, and largest Arrow record batch of an import.
    pub max_message_bytes: usize,
    pub streams: super::bulk::StreamLimits,
}

/// `INVALID_ARGUMENT` unless `n`, the entries of `field`, is from 1 to `max_batch`.
fn check_batch(max_batch: usize, field: &str, n: usize) -> Result<(), Status> {
    if n == 0 {
        return Err(Status::invalid_argument(format!(
            "{field} must not be empty"
        )));
    }
    if n > max_batch {
        return Err(Status::invalid_argument(format!(
            "{field} has {n} entries, at most {} are allowed per request",
            max_batch
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl RecordService for RecordApi {
    type ExportStream = super::bulk::ExportStream;

    async fn import(
        &self,
        request: Request<tonic::Streaming<pb::ImportRequest>>,
    ) -> Result<Response<pb::ImportResponse>, Status> {
        let limits = super::bulk::ImportLimits {
            max_batch_bytes: self.max_message_bytes,
            max_batch_rows: self.max_batch,
            streams: self.streams,
        };
        super::bulk::import(&self.gate, request, limits).await
    }

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        super::bulk::export(&self.gate, request, self.streams).await
    }

    async fn upsert(
        &self,
        request: Request<pb::UpsertRequest>,
    ) -> Result<Response<pb::UpsertResponse>, Status> {
        let (md, message) = WriteMessage::of(request, |m: &pb::UpsertRequest| &m.collection);
        let collection = message.name();
        let bytes = message.bytes();
        let max_batch = self.max_batch;
        self.gate
            .tenant_call(
                &md,
                "RecordService/Upsert",
                &collection,
                bytes,
                move |scope: Scope<CollectionName, Write>| {
                    let req = message.decode()?;
                    check_batch(max_batch, "records", req.records.len())?;
                    let records = req
                        .records
                        .into_iter()
                        .enumerate()
                        .map(|(i, r)| new_record(i, r))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(wire_status)?;
                    let n = scope
                        .tenant
                        .upsert(&scope.name.collection, records)
                        .map_err(engine_status)?;
                    Ok((pb::UpsertResponse { upserted: n as u64 }, n as u64))
                },
            )
            .await
            .map(Response::new)
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let batch_check = check_batch(self.max_batch, "ids", req.ids.len());
        let collection = req.collection.clone();
        self.gate
            .tenant_call(
                &md,
                "RecordService/Get",
                &collection,
                0,
                move |scope: Scope<CollectionName, Read>| {
                    batch_check?;
                    let ids = record_ids(req.ids).map_err(wire_status)?;
                    let records = scope
                        .tenant
                        .get(&scope.name.collection, &ids)
                        .map_err(engine_status)?;
                    let n = records.len() as u64;
                    Ok((
                        pb::GetResponse {
                            records: records.into_iter().map(stored_record_to_pb).collect(),
                        },
                        n,
                    ))
                },
            )
            .await
            .map(Response::new)
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let batch_check = check_batch(self.max_batch, "ids", req.ids.len());
        let collection = req.collection.clone();
        self.gate
            .tenant_call(
                &md,
                "RecordService/Delete",
                &collection,
                0,
                move |scope: Scope<CollectionName, Write>| {
                    batch_check?;
                    let ids = record_ids(req.ids).map_err(wire_status)?;
                    let n = scope
                        .tenant
                        .delete(&scope.name.collection, &ids)
                        .map_err(engine_status)?;
                    Ok((pb::DeleteResponse { deleted: n as u64 }, n as u64))
                },
            )
            .await
            .map(Response::new)
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let max_top_k = self.max_top_k;
        let collection = req.collection.clone();
        self.gate
            .tenant_call(
                &md,
                "RecordService/Query",
                &collection,
                0,
                move |scope: Scope<CollectionName, Read>| {
                    if req.top_k == 0 || req.top_k > max_top_k {
                        return Err(Status::invalid_argument(format!(
                            "top_k must be between 1 and {max_top_k}, got {}",
                            req.top_k
                        )));
                    }
                    let filter = req.filter.map(filter).transpose().map_err(wire_status)?;
                    let query = Query {
                        filter,
                        vector: req.vector,
                        top_k: req.top_k as usize,
                        ef: (req.ef > 0).then_some(req.ef as usize),
                        include: Include {
                            text: req.include_text,
                            metadata: req.include_metadata,
                            vector: req.include_vector,
                        },
                    };
                    let hits = scope
                        .tenant
                        .query(&scope.name.collection, &query)
                        .map_err(engine_status)?;
                    let n = hits.len() as u64;
                    Ok((
                        pb::QueryResponse {
                            hits: hits.into_iter().map(hit_to_pb).collect(),
                        },
                        n,
                    ))
                },
            )
            .await
            .map(Response::new)
    }
}
