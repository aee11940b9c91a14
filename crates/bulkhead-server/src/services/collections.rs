//! `CollectionService`: collections of one tenant.

use std::sync::Arc;

use bulkhead_core::{CollectionId, CollectionName, TenantName};
use bulkhead_engine::{CollectionInfo, Read, Write};
use bulkhead_proto::v1 as pb;
use pb::collection_service_server::CollectionService;
use tonic::{Request, Response, Status};

use crate::gate::{Gate, Scope};
use crate::status::{core_status, engine_status, wire_status};
use bulkhead_wire::engine::{collection_spec, collection_to_pb};

/// The answer to CreateCollection and CreateCache (caches are collections): collection `id`
/// of `tenant` as created.
pub(super) fn to_pb(tenant: TenantName, id: CollectionId, info: &CollectionInfo) -> pb::Collection {
    let name = CollectionName {
        tenant: tenant.tenant,
        collection: id,
    };
    collection_to_pb(name.to_string(), info)
}

#[derive(Debug)]
pub struct CollectionApi {
    pub gate: Arc<Gate>,
}

#[tonic::async_trait]
impl CollectionService for CollectionApi {
    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Result<Response<pb::Collection>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "CollectionService/CreateCollection",
                &req.parent.clone(),
                0,
                move |scope: Scope<TenantName, Write>| {
                    let id = CollectionId::new(req.collection_id.clone()).map_err(core_status)?;
                    let info = scope
                        .tenant
                        .create_collection(&id, &collection_spec(&req).map_err(wire_status)?)
                        .map_err(engine_status)?;
                    Ok((to_pb(scope.name, id, &info), 0))
                },
            )
            .await
            .map(Response::new)
    }

    async fn get_collection(
        &self,
        request: Request<pb::GetCollectionRequest>,
    ) -> Result<Response<pb::Collection>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "CollectionService/GetCollection",
                &req.name,
                0,
                move |scope: Scope<CollectionName, Read>| {
                    let info = scope
                        .tenant
                        .get_collection(&scope.name.collection)
                        .map_err(engine_status)?;
                    Ok((collection_to_pb(scope.name.to_string(), &info), 0))
                },
            )
            .await
            .map(Response::new)
    }

    async fn list_collections(
        &self,
        request: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "CollectionService/ListCollections",
                &req.parent.clone(),
                0,
                move |scope: Scope<TenantName, Read>| {
                    let size = super::page_size(req.page_size, 100, 1000)?;
                    let after = super::page_token(&req.page_token)?;
                    let all = scope.tenant.list_collections().map_err(engine_status)?;
                    let page: Vec<_> = all
                        .iter()
                        .filter(|c| after.as_deref().is_none_or(|a| c.id.as_str() > a))
                        .take(size + 1)
                        .collect();
                    let more = page.len() > size;
                    let collections: Vec<_> = page
                        .iter()
                        .take(size)
                        .map(|c| {
                            let name = CollectionName {
                                tenant: scope.name.tenant.clone(),
                                collection: c.id.clone(),
                            };
                            collection_to_pb(name.to_string(), c)
                        })
                        .collect();
                    let next_page_token = if more {
                        page[size - 1].id.to_string()
                    } else {
                        String::new()
                    };
                    let n = collections.len() as u64;
                    Ok((
                        pb::ListCollectionsResponse {
                            collections,
                            next_page_token,
                        },
                        n,
                    ))
                },
            )
            .await
            .map(Response::new)
    }

    async fn delete_collection(
        &self,
        request: Request<pb::DeleteCollectionRequest>,
    ) -> Result<Response<()>, Status> {
        let (md, _, req) = request.into_parts();
        self.gate
            .tenant_call(
                &md,
                "CollectionService/DeleteCollection",
                &req.name,
                0,
                move |scope: Scope<CollectionName, Write>| {
                    scope
                        .tenant
                        .delete_collection(&scope.name.collection)
                        .map_err(engine_status)?;
                    Ok(((), 0))
                },
            )
            .await
            .map(Response::new)
    }
}
