//! Whom a call is for and which trace it belongs to, for its audit event and log lines: the end
//! user and session of an end-user token, and the caller's trace id, the trace id of a W3C
//! `traceparent` header or else an `x-request-id`. A malformed tracing header is ignored, never
//! refused (it is the caller's convenience, not a credential), and what is kept is bounded, so
//! a caller can't bloat the tenant's trail through it.

use bulkhead_engine::AuditContext;
use tonic::metadata::MetadataMap;

use crate::principal::Principal;

/// Longest `x-request-id` kept, in bytes.
const MAX_REQUEST_ID_BYTES: usize = 128;

/// The audit context of a call by `principal` with `metadata`.
pub fn audit_context(principal: &Principal, metadata: &MetadataMap) -> AuditContext {
    let end_user = match principal {
        Principal::Tenant(caller) => caller.end_user.as_ref(),
        Principal::Admin => None,
    };
    AuditContext {
        user: end_user.map(|u| u.subject.clone()),
        session: end_user.and_then(|u| u.session.clone()),
        trace_id: trace_id(metadata),
        read_ids: Vec::new(),
    }
}

/// The caller's trace id, if its headers carry a well-formed one.
pub fn trace_id(metadata: &MetadataMap) -> Option<String> {
    let header = |name| metadata.get(name).and_then(|v| v.to_str().ok());
    header("traceparent")
        .and_then(traceparent_trace_id)
        .or_else(|| header("x-request-id").and_then(request_id))
}

/// The trace id of a W3C trace context `traceparent`: `version-traceid-parentid-flags`, each
/// lowercase hex of 2, 32, 16 and 2 digits, neither id all zeros, version `ff` invalid; later
/// versions may append fields.
fn traceparent_trace_id(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zeros = |s: &str| s.bytes().all(|b| b == b'0');
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && !zeros(trace)
        && hex(parent, 16)
        && !zeros(parent)
        && hex(flags, 2)
        && (version != "00" || parts.next().is_none());
    valid.then(|| trace.to_owned())
}

/// An `x-request-id` made only of visible ASCII, 1 to 128 bytes.
fn request_id(value: &str) -> Option<String> {
    let value = value.trim();
    let valid = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_BYTES
        && value.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metadata(headers: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (name, value) in headers {
            m.insert(*name, value.parse().unwrap());
        }
        m
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_traceparent_gives_its_trace_id_and_wins_over_a_request_id() {
        let tp = format!("00-{TRACE}-00f067aa0ba902b7-01");
        assert_eq!(
            trace_id(&metadata(&[("traceparent", &tp)])).as_deref(),
            Some(TRACE)
        );
        let both = metadata(&[("traceparent", &tp), ("x-request-id", "req-1")]);
        assert_eq!(trace_id(&both).as_deref(), Some(TRACE));
        assert_eq!(
            trace_id(&metadata(&[("x-request-id", "req-1")])).as_deref(),
            Some("req-1")
        );
        // A later version may carry more fields.
        let future = format!("01-{TRACE}-00f067aa0ba902b7-01-extra");
        assert_eq!(traceparent_trace_id(&future).as_deref(), Some(TRACE));
    }

    #[test]
    fn malformed_tracing_headers_are_ignored() {
        for bad in [
            format!("00-{TRACE}-00f067aa0ba902b7-01-extra"),
            format!("ff-{TRACE}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{TRACE}-0000000000000000-01"),
            format!("00-{}-00f067aa0ba902b7-01", TRACE.to_uppercase()),
            format!("00-{}-00f067aa0ba902b7-01", &TRACE[1..]),
            format!("0-{TRACE}-00f067aa0ba902b7-01"),
            format!("00-{TRACE}-00f067aa0ba902b7"),
            "garbage".to_owned(),
        ] {
            assert_eq!(traceparent_trace_id(&bad), None, "{bad}");
        }
        for bad in ["", "   ", "has space", &"x".repeat(129)] {
            assert_eq!(request_id(bad), None, "{bad:?}");
        }
        assert_eq!(request_id(&"x".repeat(128)).map(|s| s.len()), Some(128));
        // A bad traceparent falls back to the request id.
        let m = metadata(&[("traceparent", "garbage"), ("x-request-id", "req-2")]);
        assert_eq!(trace_id(&m).as_deref(), Some("req-2"));
        assert_eq!(trace_id(&MetadataMap::new()), None);
    }

    proptest! {
        #[test]
        fn whatever_a_caller_sends_what_is_kept_is_bounded_and_visible(value in "\\PC{0,300}") {
            let kept = traceparent_trace_id(&value).or_else(|| request_id(&value));
            if let Some(id) = kept {
                prop_assert!(!id.is_empty() && id.len() <= MAX_REQUEST_ID_BYTES);
                prop_assert!(id.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
}
