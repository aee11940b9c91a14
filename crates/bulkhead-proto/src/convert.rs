//! Conversions between wire messages and `bulkhead-core` types. They live beside the generated
//! code so the server and the SDK read and write a metadata value in exactly one way.

use std::collections::HashMap;

use bulkhead_core::{Metadata, Metric, Role, Value};

use crate::v1 as pb;

impl From<Value> for pb::Value {
    fn from(v: Value) -> Self {
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
}

/// A metadata entry whose wire value has no type set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntypedValue {
    pub key: String,
}

impl std::fmt::Display for UntypedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metadata[{:?}]: value has no type set", self.key)
    }
}

impl std::error::Error for UntypedValue {}

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

pub fn metadata_from_pb(map: HashMap<String, pb::Value>) -> Result<Metadata, UntypedValue> {
    map.into_iter()
        .map(|(key, v)| match value_from_pb(v) {
            Some(v) => Ok((key, v)),
            None => Err(UntypedValue { key }),
        })
        .collect()
}

pub fn metadata_to_pb(m: Metadata) -> HashMap<String, pb::Value> {
    m.into_iter().map(|(k, v)| (k, v.into())).collect()
}

impl From<Metric> for pb::Metric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::Cosine => pb::Metric::Cosine,
            Metric::Dot => pb::Metric::Dot,
            Metric::L2 => pb::Metric::L2,
        }
    }
}

impl From<Role> for pb::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Read => pb::Role::Read,
            Role::Write => pb::Role::Write,
            Role::TenantAdmin => pb::Role::TenantAdmin,
        }
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
        assert_eq!(metadata_from_pb(map), Err(UntypedValue { key: "k".into() }));
    }
}
