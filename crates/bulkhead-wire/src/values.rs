//! Metadata values, metrics and roles: the enums every side of the wire shares.

use std::collections::HashMap;

use bulkhead_core::{Metadata, Metric, Role, Value};
use bulkhead_proto::v1 as pb;

use crate::error::{Result, WireError};

pub fn value_to_pb(v: Value) -> pb::Value {
    use pb::value::Kind;
    let kind = match v {
        Value::String(s) => Kind::StringValue(s),
        Value::Int(i) => Kind::IntValue(i),
        Value::Double(d) => Kind::DoubleValue(d),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::StringList(values) => Kind::StringList(pb::StringList { values }),
    };
    pb::Value { kind: Some(kind) }
}

/// The core value of a wire value, or `None` when the sender set no type.
pub fn value_from_pb(v: pb::Value) -> Option<Value> {
    use pb::value::Kind;
    Some(match v.kind? {
        Kind::StringValue(s) => Value::String(s),
        Kind::IntValue(i) => Value::Int(i),
        Kind::DoubleValue(d) => Value::Double(d),
        Kind::BoolValue(b) => Value::Bool(b),
        Kind::StringList(l) => Value::StringList(l.values),
    })
}

/// Metadata from the wire; an entry whose value has no type is refused, naming its key.
pub fn metadata_from_pb(map: HashMap<String, pb::Value>) -> Result<Metadata> {
    map.into_iter()
        .map(|(key, v)| match value_from_pb(v) {
            Some(v) => Ok((key, v)),
            None => Err(WireError::invalid(format!(
                "metadata[{key:?}]: value has no type set"
            ))),
        })
        .collect()
}

pub fn metadata_to_pb(m: Metadata) -> HashMap<String, pb::Value> {
    m.into_iter().map(|(k, v)| (k, value_to_pb(v))).collect()
}

pub fn metric_to_pb(m: Metric) -> pb::Metric {
    match m {
        Metric::Cosine => pb::Metric::Cosine,
        Metric::Dot => pb::Metric::Dot,
        Metric::L2 => pb::Metric::L2,
    }
}

/// The metric a request names; unset or unknown is refused.
pub fn metric_from_pb(m: i32) -> Result<Metric> {
    match pb::Metric::try_from(m) {
        Ok(pb::Metric::Cosine) => Ok(Metric::Cosine),
        Ok(pb::Metric::Dot) => Ok(Metric::Dot),
        Ok(pb::Metric::L2) => Ok(Metric::L2),
        Ok(pb::Metric::Unspecified) | Err(_) => Err(WireError::invalid(format!(
            "metric: unknown value {m}; expected COSINE, DOT or L2"
        ))),
    }
}

pub fn role_to_pb(r: Role) -> pb::Role {
    match r {
        Role::Read => pb::Role::Read,
        Role::Write => pb::Role::Write,
        Role::TenantAdmin => pb::Role::TenantAdmin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_through_the_wire_types() {
        let m: Metadata = [
            ("s".to_owned(), Value::String("x".into())),
            ("i".to_owned(), Value::Int(-3)),
            ("d".to_owned(), Value::Double(0.5)),
            ("b".to_owned(), Value::Bool(true)),
            (
                "l".to_owned(),
                Value::StringList(vec!["a".into(), "b".into()]),
            ),
        ]
        .into();
        assert_eq!(metadata_from_pb(metadata_to_pb(m.clone())), Ok(m));
    }

    #[test]
    fn an_untyped_value_names_its_key() {
        let map = [("k".to_owned(), pb::Value { kind: None })].into();
        assert_eq!(
            metadata_from_pb(map).unwrap_err().to_string(),
            "metadata[\"k\"]: value has no type set"
        );
    }

    #[test]
    fn metrics_round_trip_and_unknown_ones_are_refused() {
        for m in [Metric::Cosine, Metric::Dot, Metric::L2] {
            assert_eq!(metric_from_pb(metric_to_pb(m) as i32), Ok(m));
        }
        assert!(metric_from_pb(0).is_err());
        assert!(metric_from_pb(42).is_err());
    }

    #[test]
    fn roles_map_to_their_wire_names() {
        assert_eq!(role_to_pb(Role::Read), pb::Role::Read);
        assert_eq!(role_to_pb(Role::Write), pb::Role::Write);
        assert_eq!(role_to_pb(Role::TenantAdmin), pb::Role::TenantAdmin);
    }
}
