//! Filters over indexed metadata fields, evaluated to the bitmap of index labels a query may
//! return. A filter names fields of one collection and is evaluated against that collection's
//! field indexes only; its result is a subset of the collection's own labels.

use std::ops::Bound;

use bulkhead_core::Value;
use roaring::RoaringBitmap;

use crate::error::{EngineError, Result};
use crate::fields::{FieldIndexes, FieldKey, FieldType, key_of};

/// A boolean tree of conditions: a record matches a node when it matches every `must`, at
/// least one `should` (if there are any), no `must_not`, and the node's own condition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    pub must: Vec<Filter>,
    pub should: Vec<Filter>,
    pub must_not: Vec<Filter>,
    pub condition: Option<Condition>,
}

/// A test of one indexed field.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Eq { field: String, value: Value },
    In { field: String, values: Vec<Value> },
    Range { field: String, range: Range },
    Exists { field: String },
}

/// Bounds of a range condition; `None` is open.
#[derive(Debug, Clone, PartialEq)]
pub enum Range {
    Integer {
        gte: Option<i64>,
        gt: Option<i64>,
        lte: Option<i64>,
        lt: Option<i64>,
    },
    Float {
        gte: Option<f64>,
        gt: Option<f64>,
        lte: Option<f64>,
        lt: Option<f64>,
    },
}

impl Filter {
    /// A leaf holding only `condition`.
    pub fn condition(condition: Condition) -> Self {
        Self {
            condition: Some(condition),
            ..Self::default()
        }
    }

    /// The labels among `all` that match. `all` (every live label) is the universe `must_not`
    /// is taken from.
    pub(crate) fn evaluate(
        &self,
        fields: &FieldIndexes,
        all: &RoaringBitmap,
    ) -> Result<RoaringBitmap> {
        let mut out = match &self.condition {
            Some(c) => c.evaluate(fields)? & all,
            None => all.clone(),
        };
        for f in &self.must {
            out &= f.evaluate(fields, all)?;
        }
        if !self.should.is_empty() {
            let mut any = RoaringBitmap::new();
            for f in &self.should {
                any |= f.evaluate(fields, all)?;
            }
            out &= any;
        }
        for f in &self.must_not {
            out -= f.evaluate(fields, all)?;
        }
        Ok(out)
    }
}

impl Condition {
    fn evaluate(&self, fields: &FieldIndexes) -> Result<RoaringBitmap> {
        match self {
            Condition::Eq { field, value } => Ok(fields.equal(&key(fields, field, value)?)),
            Condition::In { field, values } => {
                let mut out = RoaringBitmap::new();
                for v in values {
                    out |= fields.equal(&key(fields, field, v)?);
                }
                Ok(out)
            }
            Condition::Exists { field } => Ok(fields.exists(fields.field(field)?.0)),
            Condition::Range { field, range } => {
                let (i, ty) = fields.field(field)?;
                match (ty, range) {
                    (FieldType::Integer, Range::Integer { gte, gt, lte, lt }) => {
                        Ok(fields.integer_range(i, lower(*gte, *gt), upper(*lte, *lt)))
                    }
                    (FieldType::Float, Range::Float { gte, gt, lte, lt }) => {
                        Ok(fields.float_range(i, lower(*gte, *gt), upper(*lte, *lt)))
                    }
                    (FieldType::Float, Range::Integer { gte, gt, lte, lt }) => {
                        let f = |b: Option<i64>| b.map(|n| n as f64);
                        Ok(fields.float_range(i, lower(f(*gte), f(*gt)), upper(f(*lte), f(*lt))))
                    }
                    (ty, _) => Err(mismatch(field, ty, "this range")),
                }
            }
        }
    }
}

/// The tighter of two lower bounds when both are given.
fn lower<T: PartialOrd + Copy>(gte: Option<T>, gt: Option<T>) -> Bound<T> {
    match (gte, gt) {
        (Some(a), Some(b)) if a > b => Bound::Included(a),
        (_, Some(b)) => Bound::Excluded(b),
        (Some(a), None) => Bound::Included(a),
        (None, None) => Bound::Unbounded,
    }
}

fn upper<T: PartialOrd + Copy>(lte: Option<T>, lt: Option<T>) -> Bound<T> {
    match (lte, lt) {
        (Some(a), Some(b)) if a < b => Bound::Included(a),
        (_, Some(b)) => Bound::Excluded(b),
        (Some(a), None) => Bound::Included(a),
        (None, None) => Bound::Unbounded,
    }
}

fn key(fields: &FieldIndexes, field: &str, value: &Value) -> Result<FieldKey> {
    let (i, ty) = fields.field(field)?;
    key_of(i, ty, value).ok_or_else(|| mismatch(field, ty, &format!("{value:?}")))
}

fn mismatch(field: &str, ty: FieldType, got: &str) -> EngineError {
    EngineError::InvalidArgument(format!(
        "filter: field {field:?} is {ty}; {got} does not apply"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::Metadata;

    fn setup() -> (FieldIndexes, RoaringBitmap) {
        let mut f = FieldIndexes::new(
            &[
                ("lang".to_owned(), FieldType::Keyword),
                ("year".to_owned(), FieldType::Integer),
            ]
            .into(),
        );
        let rows: [(&str, i64); 4] = [("en", 2020), ("de", 2021), ("en", 2022), ("fr", 2023)];
        let mut all = RoaringBitmap::new();
        for (label, (lang, year)) in rows.iter().enumerate() {
            let m: Metadata = [
                ("lang".to_owned(), Value::String((*lang).into())),
                ("year".to_owned(), Value::Int(*year)),
            ]
            .into();
            f.insert(label as u32, &f.keys_of(&m, usize::MAX).unwrap());
            all.insert(label as u32);
        }
        all.insert(9); // a live record without metadata
        (f, all)
    }

    fn eval(filter: &Filter) -> Vec<u32> {
        let (f, all) = setup();
        filter.evaluate(&f, &all).unwrap().iter().collect()
    }

    fn eq(field: &str, v: Value) -> Filter {
        Filter::condition(Condition::Eq {
            field: field.into(),
            value: v,
        })
    }

    #[test]
    fn every_operator_and_their_combinations() {
        assert_eq!(eval(&eq("lang", Value::String("en".into()))), [0, 2]);
        assert_eq!(
            eval(&Filter::condition(Condition::In {
                field: "lang".into(),
                values: vec![Value::String("de".into()), Value::String("fr".into())]
            })),
            [1, 3]
        );
        let range = |gte, lt| {
            Filter::condition(Condition::Range {
                field: "year".into(),
                range: Range::Integer {
                    gte,
                    gt: None,
                    lte: None,
                    lt,
                },
            })
        };
        assert_eq!(eval(&range(Some(2021), Some(2023))), [1, 2]);
        assert_eq!(
            eval(&Filter::condition(Condition::Exists {
                field: "year".into()
            })),
            [0, 1, 2, 3]
        );
        let not_en = Filter {
            must_not: vec![eq("lang", Value::String("en".into()))],
            ..Filter::default()
        };
        assert_eq!(
            eval(&not_en),
            [1, 3, 9],
            "must_not is taken from all live records"
        );
        let en_or_recent = Filter {
            should: vec![
                eq("lang", Value::String("en".into())),
                range(Some(2023), None),
            ],
            ..Filter::default()
        };
        assert_eq!(eval(&en_or_recent), [0, 2, 3]);
        let en_and_recent = Filter {
            must: vec![
                eq("lang", Value::String("en".into())),
                range(Some(2021), None),
            ],
            ..Filter::default()
        };
        assert_eq!(eval(&en_and_recent), [2]);
        assert_eq!(
            eval(&Filter::default()),
            [0, 1, 2, 3, 9],
            "an empty filter matches everything"
        );
    }

    #[test]
    fn when_both_bounds_of_a_side_are_given_the_tighter_one_holds() {
        let range = |gte, gt, lte, lt| {
            eval(&Filter::condition(Condition::Range {
                field: "year".into(),
                range: Range::Integer { gte, gt, lte, lt },
            }))
        };
        // Years 2020..=2023 at labels 0..=3.
        assert_eq!(
            range(Some(2021), Some(2021), None, None),
            [2, 3],
            "> beats >= at a tie"
        );
        assert_eq!(
            range(Some(2022), Some(2020), None, None),
            [2, 3],
            ">= 2022 is tighter"
        );
        assert_eq!(
            range(Some(2020), Some(2021), None, None),
            [2, 3],
            "> 2021 is tighter"
        );
        assert_eq!(
            range(None, None, Some(2022), Some(2022)),
            [0, 1],
            "< beats <= at a tie"
        );
        assert_eq!(
            range(None, None, Some(2021), Some(2023)),
            [0, 1],
            "<= 2021 is tighter"
        );
        assert_eq!(
            range(None, None, Some(2023), Some(2022)),
            [0, 1],
            "< 2022 is tighter"
        );
    }

    #[test]
    fn type_errors_and_unknown_fields_name_the_field() {
        let (f, all) = setup();
        let err = |filter: Filter| filter.evaluate(&f, &all).unwrap_err().to_string();
        assert!(err(eq("year", Value::String("2020".into()))).contains("\"year\" is integer"));
        assert!(err(eq("nope", Value::Int(1))).contains("\"nope\" is not indexed"));
        let float_range = Filter::condition(Condition::Range {
            field: "lang".into(),
            range: Range::Float {
                gte: Some(1.0),
                gt: None,
                lte: None,
                lt: None,
            },
        });
        assert!(err(float_range).contains("\"lang\" is keyword"));
    }
}
