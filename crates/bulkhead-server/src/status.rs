//! The one place engine errors become gRPC statuses. The match is exhaustive, so a new engine
//! error can't ship without a decision here. Internal details (storage messages, corruption)
//! are logged, not sent.

use bulkhead_core::CoreError;
use bulkhead_engine::EngineError;
use bulkhead_wire::WireError;
use tonic::{Code, Status};

pub fn engine_status(e: EngineError) -> Status {
    match e {
        EngineError::Invalid(e) => core_status(e),
        EngineError::InvalidArgument(m) => Status::invalid_argument(m),
        EngineError::InvalidRecord { .. } => Status::invalid_argument(e.to_string()),
        EngineError::TenantNotFound(_)
        | EngineError::CollectionNotFound(_)
        | EngineError::KeyNotFound(_)
        | EngineError::SessionNotFound(_) => Status::not_found(e.to_string()),
        EngineError::TenantExists(_)
        | EngineError::CollectionExists(_)
        | EngineError::KeyExists(_)
        | EngineError::SessionExists(_)
        | EngineError::MemoryExists(_) => Status::already_exists(e.to_string()),
        EngineError::QuotaExceeded(_) => Status::resource_exhausted(e.to_string()),
        EngineError::NotACache(_) => Status::failed_precondition(e.to_string()),
        EngineError::NotPermitted(_) => Status::permission_denied(e.to_string()),
        EngineError::Corrupt(_) => {
            tracing::error!(error = %e, "stored data is damaged");
            Status::data_loss("stored data is damaged; see the server log")
        }
        EngineError::Storage(_) | EngineError::Index(_) => {
            tracing::error!(error = %e, "engine failure");
            Status::internal("internal storage error")
        }
        EngineError::Busy(_) => {
            tracing::warn!(error = %e, "storage busy");
            Status::unavailable("storage busy; retry")
        }
        EngineError::Open(_) => {
            tracing::error!(error = %e, "engine unavailable");
            Status::unavailable("storage unavailable")
        }
    }
}

/// A wire message that didn't convert: the sender's mistake, named by field.
pub fn wire_status(e: WireError) -> Status {
    match e {
        WireError::Invalid(m) => Status::invalid_argument(m),
    }
}

pub fn core_status(e: CoreError) -> Status {
    match e {
        CoreError::InvalidId { .. }
        | CoreError::InvalidResourceName { .. }
        | CoreError::InvalidRecordId(_)
        | CoreError::UnknownMetric(_)
        | CoreError::InvalidVector(_)
        | CoreError::InvalidMetadata(_) => Status::invalid_argument(e.to_string()),
    }
}

/// The name audit events and metrics use for a status code, e.g. `PERMISSION_DENIED`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::{CollectionId, TenantId};

    #[test]
    fn caller_errors_map_to_caller_codes() {
        let t = TenantId::new("a").unwrap();
        assert_eq!(
            engine_status(EngineError::TenantNotFound(t)).code(),
            Code::NotFound
        );
        let c = CollectionId::new("c").unwrap();
        assert_eq!(
            engine_status(EngineError::CollectionExists(c)).code(),
            Code::AlreadyExists
        );
        assert_eq!(
            engine_status(EngineError::QuotaExceeded("x".into())).code(),
            Code::ResourceExhausted
        );
        let invalid = "Acme".parse::<TenantId>().unwrap_err();
        assert_eq!(engine_status(invalid.into()).code(), Code::InvalidArgument);
    }

    #[test]
    fn internal_errors_hide_details() {
        let s = engine_status(EngineError::Storage("/secret/path: IO error".into()));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret"));
        // Kept apart: damage is not a busy database, which a retry may get past.
        let damaged = engine_status(EngineError::Corrupt("/secret/path: checksum".into()));
        assert_eq!(damaged.code(), Code::DataLoss);
        assert!(!damaged.message().contains("secret"));
        let busy = engine_status(EngineError::Busy("/secret/path: busy".into()));
        assert_eq!(busy.code(), Code::Unavailable);
        assert!(!busy.message().contains("secret"));
        let c = CollectionId::new("docs").unwrap();
        assert_eq!(
            engine_status(EngineError::NotACache(c)).code(),
            Code::FailedPrecondition
        );
    }
}
