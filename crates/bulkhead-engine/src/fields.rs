//! Indexed metadata fields: for each field a collection declares, bitmaps of the index labels
//! holding each value (keyword and bool fields) or a sorted map from value to bitmap (integer
//! and float fields, so a range is a union over a sub-range). They live inside one collection
//! of one tenant and are rebuilt with it on load; a filter can only ever select that
//! collection's records.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use bulkhead_core::{Metadata, Value};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The type an indexed field's values must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Strings (and lists of strings, each element indexed).
    Keyword,
    Integer,
    Float,
    Bool,
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FieldType::Keyword => "keyword",
            FieldType::Integer => "integer",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
        })
    }
}

/// A float that orders totally, for range maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct OrderedF64(i64);

impl OrderedF64 {
    pub fn new(x: f64) -> Self {
        let bits = x.to_bits() as i64;
        // Flip negative numbers so that the integer order is the numeric order.
        Self(if bits < 0 { bits ^ i64::MAX } else { bits })
    }

    /// The ordered representation, for storing it (see `segment`).
    pub fn to_bits(self) -> i64 {
        self.0
    }

    pub fn from_bits(bits: i64) -> Self {
        Self(bits)
    }
}

/// One value of one indexed field of a record, as the index keys it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldKey {
    Keyword(usize, String),
    Integer(usize, i64),
    Float(usize, OrderedF64),
    Bool(usize, bool),
}

#[derive(Debug)]
enum Postings {
    Keyword(HashMap<String, RoaringBitmap>),
    Integer(BTreeMap<i64, RoaringBitmap>),
    Float(BTreeMap<OrderedF64, RoaringBitmap>),
    Bool([RoaringBitmap; 2]),
}

/// The field indexes of one collection.
#[derive(Debug)]
pub(crate) struct FieldIndexes {
    names: Vec<String>,
    types: Vec<FieldType>,
    postings: Vec<Postings>,
}

impl FieldIndexes {
    pub fn new(declared: &BTreeMap<String, FieldType>) -> Self {
        let mut f = Self {
            names: Vec::new(),
            types: Vec::new(),
            postings: Vec::new(),
        };
        for (name, ty) in declared {
            f.names.push(name.clone());
            f.types.push(*ty);
            f.postings.push(match ty {
                FieldType::Keyword => Postings::Keyword(HashMap::new()),
                FieldType::Integer => Postings::Integer(BTreeMap::new()),
                FieldType::Float => Postings::Float(BTreeMap::new()),
                FieldType::Bool => Postings::Bool(Default::default()),
            });
        }
        f
    }

    /// The field's position and type, or an error naming it.
    pub fn field(&self, name: &str) -> Result<(usize, FieldType)> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| (i, self.types[i]))
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "filter: field {name:?} is not indexed in this collection (indexed: {})",
                    if self.names.is_empty() {
                        "none".to_owned()
                    } else {
                        self.names.join(", ")
                    }
                ))
            })
    }

    /// The keys `metadata` gives the indexed fields; a value of the wrong type is an error
    /// naming the field (the record is refused, so an index never misses a record).
    /// The postings of `metadata`'s indexed fields. A list field gives one per distinct element
    /// and may have at most `max_list_len` elements.
    pub fn keys_of(
        &self,
        metadata: &Metadata,
        max_list_len: usize,
    ) -> std::result::Result<Vec<FieldKey>, String> {
        let mut keys = Vec::new();
        for (i, (name, ty)) in self.names.iter().zip(&self.types).enumerate() {
            let Some(value) = metadata.get(name) else {
                continue;
            };
            match (ty, value) {
                (FieldType::Keyword, Value::StringList(l)) => {
                    if l.len() > max_list_len {
                        return Err(format!(
                            "metadata.{name}: {} elements in an indexed list, the limit is {max_list_len}",
                            l.len()
                        ));
                    }
                    let distinct: std::collections::BTreeSet<&String> = l.iter().collect();
                    keys.extend(
                        distinct
                            .into_iter()
                            .map(|s| FieldKey::Keyword(i, s.clone())),
                    );
                }
                _ => {
                    keys.push(key_of(i, *ty, value).ok_or_else(|| {
                        format!("metadata.{name}: expected {ty} (an indexed field)")
                    })?)
                }
            }
        }
        Ok(keys)
    }

    pub fn insert(&mut self, label: u32, keys: &[FieldKey]) {
        for key in keys {
            if let Some(bitmap) = self.bitmap_mut(key) {
                bitmap.insert(label);
            }
        }
    }

    pub fn remove(&mut self, label: u32, keys: &[FieldKey]) {
        for key in keys {
            if let Some(bitmap) = self.bitmap_mut(key) {
                bitmap.remove(label);
            }
        }
    }

    fn bitmap_mut(&mut self, key: &FieldKey) -> Option<&mut RoaringBitmap> {
        match (key, self.postings.get_mut(key_field(key))?) {
            (FieldKey::Keyword(_, s), Postings::Keyword(m)) => {
                Some(m.entry(s.clone()).or_default())
            }
            (FieldKey::Integer(_, n), Postings::Integer(m)) => Some(m.entry(*n).or_default()),
            (FieldKey::Float(_, x), Postings::Float(m)) => Some(m.entry(*x).or_default()),
            (FieldKey::Bool(_, b), Postings::Bool(pair)) => Some(&mut pair[usize::from(*b)]),
            _ => None,
        }
    }

    /// Labels whose field `field` equals `key`.
    pub fn equal(&self, key: &FieldKey) -> RoaringBitmap {
        match (key, &self.postings[key_field(key)]) {
            (FieldKey::Keyword(_, s), Postings::Keyword(m)) => {
                m.get(s).cloned().unwrap_or_default()
            }
            (FieldKey::Integer(_, n), Postings::Integer(m)) => {
                m.get(n).cloned().unwrap_or_default()
            }
            (FieldKey::Float(_, x), Postings::Float(m)) => m.get(x).cloned().unwrap_or_default(),
            (FieldKey::Bool(_, b), Postings::Bool(pair)) => pair[usize::from(*b)].clone(),
            _ => RoaringBitmap::new(),
        }
    }

    /// Labels of field `field` with an integer value within the bounds.
    pub fn integer_range(&self, field: usize, lo: Bound<i64>, hi: Bound<i64>) -> RoaringBitmap {
        match &self.postings[field] {
            Postings::Integer(m) if valid(&lo, &hi) => m
                .range((lo, hi))
                .map(|(_, b)| b)
                .fold(RoaringBitmap::new(), |a, b| a | b),
            _ => RoaringBitmap::new(),
        }
    }

    /// Labels of field `field` with a float value within the bounds.
    pub fn float_range(&self, field: usize, lo: Bound<f64>, hi: Bound<f64>) -> RoaringBitmap {
        let lo = lo.map(OrderedF64::new);
        let hi = hi.map(OrderedF64::new);
        match &self.postings[field] {
            Postings::Float(m) if valid(&lo, &hi) => m
                .range((lo, hi))
                .map(|(_, b)| b)
                .fold(RoaringBitmap::new(), |a, b| a | b),
            _ => RoaringBitmap::new(),
        }
    }

    /// Labels that have any value in field `field`.
    pub fn exists(&self, field: usize) -> RoaringBitmap {
        let union = |it: &mut dyn Iterator<Item = &RoaringBitmap>| {
            it.fold(RoaringBitmap::new(), |a, b| a | b)
        };
        match &self.postings[field] {
            Postings::Keyword(m) => union(&mut m.values()),
            Postings::Integer(m) => union(&mut m.values()),
            Postings::Float(m) => union(&mut m.values()),
            Postings::Bool(pair) => union(&mut pair.iter()),
        }
    }
}

/// The key a single value gives field `field` of type `ty`, or `None` when the types differ
/// (an integer counts as a float). The one mapping from values to keys, for records and
/// filters alike.
pub(crate) fn key_of(field: usize, ty: FieldType, value: &Value) -> Option<FieldKey> {
    Some(match (ty, value) {
        (FieldType::Keyword, Value::String(s)) => FieldKey::Keyword(field, s.clone()),
        (FieldType::Integer, Value::Int(n)) => FieldKey::Integer(field, *n),
        (FieldType::Float, Value::Double(x)) => FieldKey::Float(field, OrderedF64::new(*x)),
        (FieldType::Float, Value::Int(n)) => FieldKey::Float(field, OrderedF64::new(*n as f64)),
        (FieldType::Bool, Value::Bool(b)) => FieldKey::Bool(field, *b),
        _ => return None,
    })
}

fn key_field(key: &FieldKey) -> usize {
    match key {
        FieldKey::Keyword(i, _)
        | FieldKey::Integer(i, _)
        | FieldKey::Float(i, _)
        | FieldKey::Bool(i, _) => *i,
    }
}

/// Whether a range is non-empty enough for `BTreeMap::range`, which panics on inverted bounds.
fn valid<T: PartialOrd>(lo: &Bound<T>, hi: &Bound<T>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a < b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes() -> FieldIndexes {
        FieldIndexes::new(
            &[
                ("lang".to_owned(), FieldType::Keyword),
                ("year".to_owned(), FieldType::Integer),
                ("score".to_owned(), FieldType::Float),
                ("public".to_owned(), FieldType::Bool),
            ]
            .into(),
        )
    }

    fn meta(pairs: &[(&str, Value)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn postings_follow_inserts_and_removals() {
        let mut f = indexes();
        let (year, _) = f.field("year").unwrap();
        let (score, _) = f.field("score").unwrap();
        let a = f
            .keys_of(
                &meta(&[
                    ("lang", Value::StringList(vec!["en".into(), "de".into()])),
                    ("year", Value::Int(2020)),
                    ("score", Value::Double(-0.5)),
                ]),
                8,
            )
            .unwrap();
        let b = f
            .keys_of(
                &meta(&[
                    ("lang", Value::String("en".into())),
                    ("year", Value::Int(2024)),
                    ("score", Value::Double(2.0)),
                    ("public", Value::Bool(true)),
                ]),
                8,
            )
            .unwrap();
        f.insert(1, &a);
        f.insert(2, &b);
        let en = f.equal(&FieldKey::Keyword(0, "en".into()));
        assert_eq!(en.iter().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            f.integer_range(year, Bound::Included(2021), Bound::Unbounded)
                .iter()
                .collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(
            f.float_range(score, Bound::Unbounded, Bound::Excluded(0.0))
                .iter()
                .collect::<Vec<_>>(),
            [1]
        );
        assert!(
            f.integer_range(year, Bound::Included(5), Bound::Excluded(1))
                .is_empty(),
            "inverted bounds match nothing"
        );
        assert_eq!(f.exists(f.field("public").unwrap().0).len(), 1);
        f.remove(1, &a);
        assert_eq!(
            f.equal(&FieldKey::Keyword(0, "en".into()))
                .iter()
                .collect::<Vec<_>>(),
            [2]
        );
        assert!(
            f.float_range(score, Bound::Unbounded, Bound::Unbounded)
                .contains(2)
        );
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_named() {
        let f = indexes();
        let e = f
            .keys_of(&meta(&[("year", Value::String("2020".into()))]), 8)
            .unwrap_err();
        assert_eq!(e, "metadata.year: expected integer (an indexed field)");
        assert!(
            f.field("nope")
                .unwrap_err()
                .to_string()
                .contains("\"nope\" is not indexed")
        );
        assert!(
            f.keys_of(&meta(&[("other", Value::Bool(true))]), 8)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn floats_order_numerically() {
        let xs = [-10.5, -0.0, 0.0, 1e-9, 3.25, f64::MAX];
        for w in xs.windows(2) {
            assert!(OrderedF64::new(w[0]) <= OrderedF64::new(w[1]), "{w:?}");
        }
        assert!(OrderedF64::new(-1.0) < OrderedF64::new(-0.5));
    }
}

#[cfg(test)]
mod list_limits {
    use super::*;

    #[test]
    fn an_indexed_list_is_bounded_and_gives_one_posting_per_distinct_element() {
        let f = FieldIndexes::new(&[("tags".to_owned(), FieldType::Keyword)].into());
        let list = |n: usize| -> Metadata {
            [("tags".to_owned(), Value::StringList(vec!["same".into(); n]))].into()
        };
        assert_eq!(f.keys_of(&list(4), 4).unwrap().len(), 1);
        let refused = f.keys_of(&list(5), 4).unwrap_err();
        assert!(
            refused.contains("5 elements") && refused.contains("limit is 4"),
            "{refused}"
        );
    }
}
