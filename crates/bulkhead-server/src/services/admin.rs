//! `AdminService`: tenant lifecycle, admin token only.

use std::sync::Arc;
use std::time::Duration;

use bulkhead_core::{TenantId, TenantName};
use bulkhead_engine::TenantSettings;
use bulkhead_proto::v1 as pb;
use pb::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use crate::gate::Gate;
use crate::status::{core_status, engine_status, wire_status};
use bulkhead_wire::engine::{quota, rate_limit, server_share, tenant_to_pb};
use bulkhead_wire::positive_seconds;

#[derive(Debug)]
pub struct AdminApi {
    pub gate: Arc<Gate>,
    pub default_retention: Duration,
}

fn tenant_name(name: &str) -> Result<TenantId, Status> {
    name.parse::<TenantName>()
        .map(|n| n.tenant)
        .map_err(core_status)
}

/// A tenant setting in seconds, `field` of the request: 0 leaves it to the server (the default
/// audit retention, the engine's ceiling on token lifetimes), anything else must be positive.
fn optional_seconds(field: &str, secs: i64) -> Result<Option<Duration>, Status> {
    match secs {
        0 => Ok(None),
        s => positive_seconds(field, s).map(Some).map_err(wire_status),
    }
}

/// The mask paths `UpdateTenant` accepts: a whole message replaces every limit in it, a leaf
/// path changes that limit alone, so a client can change one limit without knowing the others.
const UPDATABLE: &[&str] = &[
    "quota",
    "quota.max_collections",
    "quota.max_records",
    "quota.max_stored_bytes",
    "rate_limit",
    "rate_limit.requests_per_second",
    "rate_limit.burst",
    "rate_limit.write_bytes_per_second",
    "share",
    "share.requests_in_flight",
    "share.open_streams",
    "share.engine_threads",
    "share.write_bytes_in_flight",
    "audit_retention_seconds",
    "max_token_lifetime_seconds",
];

/// Applies the fields of `tenant` named by `paths` to `settings`; everything else is kept.
fn apply_update_mask(
    settings: &mut TenantSettings,
    tenant: &pb::Tenant,
    paths: &[String],
) -> Result<(), Status> {
    if paths.is_empty() {
        return Err(Status::invalid_argument(format!(
            "update_mask must name at least one field: {}",
            UPDATABLE.join(", ")
        )));
    }
    let new_quota = quota(tenant.quota).map_err(wire_status)?;
    let new_rate = rate_limit(tenant.rate_limit).map_err(wire_status)?;
    let new_share = server_share(tenant.share).map_err(wire_status)?;
    for path in paths {
        match path.as_str() {
            "quota" => settings.quota = new_quota,
            "quota.max_collections" => settings.quota.max_collections = new_quota.max_collections,
            "quota.max_records" => settings.quota.max_records = new_quota.max_records,
            "quota.max_stored_bytes" => {
                settings.quota.max_stored_bytes = new_quota.max_stored_bytes
            }
            "rate_limit" => settings.rate_limit = new_rate,
            "rate_limit.requests_per_second" => {
                settings.rate_limit.requests_per_second = new_rate.requests_per_second
            }
            "rate_limit.burst" => settings.rate_limit.burst = new_rate.burst,
            "rate_limit.write_bytes_per_second" => {
                settings.rate_limit.write_bytes_per_second = new_rate.write_bytes_per_second
            }
            "share" => settings.share = new_share,
            "share.requests_in_flight" => {
                settings.share.requests_in_flight = new_share.requests_in_flight
            }
            "share.open_streams" => settings.share.open_streams = new_share.open_streams,
            "share.engine_threads" => settings.share.engine_threads = new_share.engine_threads,
            "share.write_bytes_in_flight" => {
                settings.share.write_bytes_in_flight = new_share.write_bytes_in_flight
            }
            "audit_retention_seconds" => {
                settings.audit_retention =
                    optional_seconds("audit_retention_seconds", tenant.audit_retention_seconds)?
            }
            "max_token_lifetime_seconds" => {
                settings.max_token_lifetime = optional_seconds(
                    "max_token_lifetime_seconds",
                    tenant.max_token_lifetime_seconds,
                )?
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "update_mask: {other:?} can't be updated; expected one of {}",
                    UPDATABLE.join(", ")
                )));
            }
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let (md, _, req) = request.into_parts();
        let resource = format!("tenants/{}", req.tenant_id);
        let retention_default = self.default_retention;
        self.gate
            .admin_call(&md, "AdminService/CreateTenant", &resource, move |engine| {
                let id = TenantId::new(req.tenant_id).map_err(core_status)?;
                let settings = TenantSettings {
                    audit_retention: optional_seconds(
                        "audit_retention_seconds",
                        req.audit_retention_seconds,
                    )?,
                    quota: quota(req.quota).map_err(wire_status)?,
                    rate_limit: rate_limit(req.rate_limit).map_err(wire_status)?,
                    max_token_lifetime: optional_seconds(
                        "max_token_lifetime_seconds",
                        req.max_token_lifetime_seconds,
                    )?,
                    share: server_share(req.share).map_err(wire_status)?,
                };
                let info = engine
                    .create_tenant(&id, &settings)
                    .map_err(engine_status)?;
                tracing::info!(tenant = %id, group = info.group, "tenant created");
                Ok(tenant_to_pb(&info, retention_default))
            })
            .await
            .map(Response::new)
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let (md, _, req) = request.into_parts();
        let retention_default = self.default_retention;
        self.gate
            .admin_call(
                &md,
                "AdminService/GetTenant",
                &req.name.clone(),
                move |engine| {
                    let id = tenant_name(&req.name)?;
                    let info = engine.tenant_info(&id).map_err(engine_status)?;
                    Ok(tenant_to_pb(&info, retention_default))
                },
            )
            .await
            .map(Response::new)
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let (md, _, req) = request.into_parts();
        let retention_default = self.default_retention;
        self.gate
            .admin_call(&md, "AdminService/ListTenants", "tenants", move |engine| {
                let size = super::page_size(req.page_size, 100, 1000)?;
                let after = super::page_token(&req.page_token)?
                    .map(|t| {
                        TenantId::new(t)
                            .map_err(|_| Status::invalid_argument("page_token is not valid"))
                    })
                    .transpose()?;
                let page = engine.list_tenants(after.as_ref(), size + 1);
                let more = page.len() > size;
                let tenants: Vec<_> = page
                    .iter()
                    .take(size)
                    .map(|t| tenant_to_pb(t, retention_default))
                    .collect();
                let next_page_token = if more {
                    page[size - 1].id.to_string()
                } else {
                    String::new()
                };
                Ok(pb::ListTenantsResponse {
                    tenants,
                    next_page_token,
                })
            })
            .await
            .map(Response::new)
    }

    async fn update_tenant(
        &self,
        request: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let (md, _, req) = request.into_parts();
        let tenant = req
            .tenant
            .ok_or_else(|| Status::invalid_argument("tenant is required"))?;
        let resource = tenant.name.clone();
        let retention_default = self.default_retention;
        let gate = self.gate.clone();
        self.gate
            .admin_call(&md, "AdminService/UpdateTenant", &resource, move |engine| {
                let id = tenant_name(&tenant.name)?;
                let current = engine.tenant_info(&id).map_err(engine_status)?;
                let mut settings = TenantSettings {
                    audit_retention: current.audit_retention,
                    quota: current.quota,
                    rate_limit: current.rate_limit,
                    max_token_lifetime: current.max_token_lifetime,
                    share: current.share,
                };
                let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
                apply_update_mask(&mut settings, &tenant, &paths)?;
                let info = engine
                    .update_tenant(&id, &settings)
                    .map_err(engine_status)?;
                gate.limits().forget(&id);
                Ok(tenant_to_pb(&info, retention_default))
            })
            .await
            .map(Response::new)
    }

    async fn delete_tenant(
        &self,
        request: Request<pb::DeleteTenantRequest>,
    ) -> Result<Response<()>, Status> {
        let (md, _, req) = request.into_parts();
        let gate = self.gate.clone();
        self.gate
            .admin_call(
                &md,
                "AdminService/DeleteTenant",
                &req.name.clone(),
                move |engine| {
                    let id = tenant_name(&req.name)?;
                    engine.delete_tenant(&id).map_err(engine_status)?;
                    gate.limits().forget(&id);
                    tracing::info!(tenant = %id, "tenant deleted");
                    Ok(())
                },
            )
            .await
            .map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_engine::{Quota, RateLimit, ServerShare};

    fn current() -> TenantSettings {
        TenantSettings {
            audit_retention: Some(Duration::from_secs(3600)),
            quota: Quota {
                max_collections: 3,
                max_records: 100,
                max_stored_bytes: 1 << 20,
            },
            rate_limit: RateLimit {
                requests_per_second: 50.0,
                burst: 80,
                write_bytes_per_second: 1000,
            },
            max_token_lifetime: Some(Duration::from_secs(900)),
            share: ServerShare {
                requests_in_flight: 32,
                open_streams: 4,
                engine_threads: 2,
                write_bytes_in_flight: 64 << 20,
            },
        }
    }

    fn update(paths: &[&str], tenant: pb::Tenant) -> Result<TenantSettings, Status> {
        let mut settings = current();
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        apply_update_mask(&mut settings, &tenant, &paths)?;
        Ok(settings)
    }

    #[test]
    fn a_leaf_path_changes_that_limit_alone() {
        let tenant = pb::Tenant {
            quota: Some(pb::Quota {
                max_records: 0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = update(&["quota.max_records"], tenant).unwrap();
        let mut want = current();
        want.quota.max_records = 0;
        assert_eq!(got, want);

        let tenant = pb::Tenant {
            rate_limit: Some(pb::RateLimit {
                requests_per_second: 10.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = update(&["rate_limit.requests_per_second"], tenant).unwrap();
        let mut want = current();
        want.rate_limit.requests_per_second = 10.0;
        assert_eq!(got, want, "burst and write bandwidth are kept");
    }

    #[test]
    fn the_token_lifetime_bound_changes_alone_and_zero_lifts_it() {
        let tenant = pb::Tenant {
            max_token_lifetime_seconds: 300,
            ..Default::default()
        };
        let got = update(&["max_token_lifetime_seconds"], tenant).unwrap();
        let mut want = current();
        want.max_token_lifetime = Some(Duration::from_secs(300));
        assert_eq!(got, want);
        let lifted = update(&["max_token_lifetime_seconds"], pb::Tenant::default()).unwrap();
        assert_eq!(lifted.max_token_lifetime, None);
        let negative = pb::Tenant {
            max_token_lifetime_seconds: -5,
            ..Default::default()
        };
        let err = update(&["max_token_lifetime_seconds"], negative).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn a_share_field_changes_alone_and_the_whole_share_resets_to_the_servers() {
        let tenant = pb::Tenant {
            share: Some(pb::ServerShare {
                engine_threads: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = update(&["share.engine_threads"], tenant.clone()).unwrap();
        let mut want = current();
        want.share.engine_threads = 1;
        assert_eq!(got, want, "requests in flight and open streams are kept");
        let bytes = pb::Tenant {
            share: Some(pb::ServerShare {
                write_bytes_in_flight: 8 << 20,
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = update(&["share.write_bytes_in_flight"], bytes).unwrap();
        let mut want = current();
        want.share.write_bytes_in_flight = 8 << 20;
        assert_eq!(got, want, "the other shares are kept");
        let got = update(&["share"], tenant).unwrap();
        assert_eq!(
            got.share,
            ServerShare {
                engine_threads: 1,
                ..ServerShare::default()
            }
        );
        let negative = pb::Tenant {
            share: Some(pb::ServerShare {
                requests_in_flight: -1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = update(&["share.requests_in_flight"], negative).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains("share.requests_in_flight"));
    }

    #[test]
    fn a_whole_message_path_replaces_every_limit_in_it() {
        let tenant = pb::Tenant {
            quota: Some(pb::Quota {
                max_records: 7,
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = update(&["quota"], tenant).unwrap();
        assert_eq!(
            got.quota,
            Quota {
                max_collections: 0,
                max_records: 7,
                max_stored_bytes: 0
            }
        );
        assert_eq!(got.rate_limit, current().rate_limit);
    }

    #[test]
    fn unknown_empty_and_invalid_masks_are_refused() {
        let err = update(&["quota.max_record"], pb::Tenant::default()).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            err.message().contains("quota.max_records"),
            "{}",
            err.message()
        );
        assert_eq!(
            update(&[], pb::Tenant::default()).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let negative = pb::Tenant {
            quota: Some(pb::Quota {
                max_records: -1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = update(&["quota.max_records"], negative).unwrap_err();
        assert!(
            err.message().contains("quota.max_records"),
            "{}",
            err.message()
        );
    }
}
