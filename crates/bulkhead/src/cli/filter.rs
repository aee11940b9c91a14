//! `query --where COND`: conditions on indexed metadata fields, written the way people say
//! them (`year>=2020`, `lang in en,de`), turned into the API's `Filter`. Parsing happens in two
//! steps because a value's type is the field's declared type, known only once the collection
//! is fetched: clap checks the shape of each condition, then [`filter`] types the values and
//! refuses a field that isn't indexed or a value of the wrong type before the query is sent.
//!
//! A field name runs to the first space or operator character, so fields whose names hold one
//! of ` =!<>` can be declared and filtered through the API but not through `--where`.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Result, bail};
use bulkhead_client::Value;
use bulkhead_client::proto as pb;
use bulkhead_wire::value_to_pb;
use pb::condition::Op;

use super::fields::type_name;

/// The condition forms, for error messages.
const FORMS: &str = "field=value, field!=value, field>=n, field<=n, field>n, field<n, \
                     \"field in a,b,c\" or \"field exists\"";

/// One `--where` condition as written, its values still text.
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
    field: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Eq(String),
    Ne(String),
    Compare(Bound, String),
    In(Vec<String>),
    Exists,
}

/// In the order of the API's range fields.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Gte,
    Gt,
    Lte,
    Lt,
}

#[derive(Debug, Clone, Copy)]
enum Operator {
    Eq,
    Ne,
    Compare(Bound),
}

/// The operators, longest first so `>=` isn't read as `>`.
const OPERATORS: [(&str, Operator); 6] = [
    ("!=", Operator::Ne),
    (">=", Operator::Compare(Bound::Gte)),
    ("<=", Operator::Compare(Bound::Lte)),
    (">", Operator::Compare(Bound::Gt)),
    ("<", Operator::Compare(Bound::Lt)),
    ("=", Operator::Eq),
];

impl FromStr for Condition {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        let s = text.trim();
        let end = s
            .find(|c: char| c.is_whitespace() || "=!<>".contains(c))
            .unwrap_or(s.len());
        let (field, rest) = s.split_at(end);
        if field.is_empty() {
            bail!("{text:?} names no field; expected {FORMS}");
        }
        let rest = rest.trim_start();
        let test = if rest == "exists" {
            Test::Exists
        } else if let Some(list) = rest
            .strip_prefix("in")
            .filter(|l| l.starts_with(char::is_whitespace))
        {
            let values: Vec<String> = list.split(',').map(|v| v.trim().to_owned()).collect();
            if values.iter().any(String::is_empty) {
                bail!("{text:?}: `in` needs a comma-separated list without empty values");
            }
            Test::In(values)
        } else {
            let Some((symbol, operator, value)) = OPERATORS
                .iter()
                .find_map(|(symbol, o)| Some((*symbol, *o, rest.strip_prefix(symbol)?.trim())))
            else {
                bail!("{text:?} is not a condition; expected {FORMS}");
            };
            if value.is_empty() {
                bail!("{text:?} has no value after {symbol}");
            }
            let value = value.to_owned();
            match operator {
                Operator::Eq => Test::Eq(value),
                Operator::Ne => Test::Ne(value),
                Operator::Compare(bound) => Test::Compare(bound, value),
            }
        };
        Ok(Self {
            text: text.to_owned(),
            field: field.to_owned(),
            test,
        })
    }
}

/// The filter that holds where every one of `conditions` does, with values typed by
/// `fields`, the indexed fields of `collection`.
pub fn filter(
    conditions: &[Condition],
    collection: &str,
    fields: &BTreeMap<String, pb::FieldType>,
) -> Result<pb::Filter> {
    let must = conditions
        .iter()
        .map(|c| {
            let Some(&ty) = fields.get(&c.field) else {
                let known = fields.keys().cloned().collect::<Vec<_>>().join(", ");
                let hint = if known.is_empty() {
                    "it has no indexed fields (declare them with --index when creating it)".into()
                } else {
                    format!("its indexed fields: {known}")
                };
                bail!(
                    "--where {:?}: field {:?} is not indexed in collection {collection}; {hint}",
                    c.text,
                    c.field
                );
            };
            c.to_pb(ty)
                .map_err(|e| anyhow::anyhow!("--where {:?}: {e}", c.text))
        })
        .collect::<Result<_>>()?;
    Ok(pb::Filter {
        must,
        ..Default::default()
    })
}

impl Condition {
    /// This condition on a field of type `ty`.
    fn to_pb(&self, ty: pb::FieldType) -> Result<pb::Filter> {
        let value = |raw: &str| typed(&self.field, ty, raw);
        let op = match &self.test {
            Test::Eq(v) => Op::Eq(value(v)?),
            Test::Ne(v) => {
                return Ok(pb::Filter {
                    must_not: vec![leaf(&self.field, Op::Eq(value(v)?))],
                    ..Default::default()
                });
            }
            Test::In(vs) => Op::In(pb::ValueList {
                values: vs.iter().map(|v| value(v)).collect::<Result<_>>()?,
            }),
            Test::Exists => Op::Exists(true),
            Test::Compare(bound, v) => match ty {
                pb::FieldType::Integer => {
                    let [gte, gt, lte, lt] = bounds(*bound, integer(&self.field, v)?);
                    Op::IntRange(pb::IntRange { gte, gt, lte, lt })
                }
                pb::FieldType::Float => {
                    let [gte, gt, lte, lt] = bounds(*bound, float(&self.field, v)?);
                    Op::DoubleRange(pb::DoubleRange { gte, gt, lte, lt })
                }
                _ => bail!(
                    "{:?} is a {} field; only integer and float fields compare with <, <=, > and >=",
                    self.field,
                    type_name(ty)
                ),
            },
        };
        Ok(leaf(&self.field, op))
    }
}

fn leaf(field: &str, op: Op) -> pb::Filter {
    pb::Filter {
        condition: Some(pb::Condition {
            field: field.to_owned(),
            op: Some(op),
        }),
        ..Default::default()
    }
}

/// `raw` as a value of a field of type `ty`.
fn typed(field: &str, ty: pb::FieldType, raw: &str) -> Result<pb::Value> {
    let v = match ty {
        pb::FieldType::Keyword => Value::String(raw.to_owned()),
        pb::FieldType::Integer => Value::Int(integer(field, raw)?),
        pb::FieldType::Float => Value::Double(float(field, raw)?),
        pb::FieldType::Bool => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => bail!("{field:?} is a bool field; {raw:?} is not true or false"),
        },
        pb::FieldType::Unspecified => bail!("{field:?} has a type this command doesn't know"),
    };
    Ok(value_to_pb(v))
}

fn integer(field: &str, raw: &str) -> Result<i64> {
    raw.parse()
        .map_err(|_| anyhow::anyhow!("{field:?} is an integer field; {raw:?} is not an integer"))
}

fn float(field: &str, raw: &str) -> Result<f64> {
    match raw.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => bail!("{field:?} is a float field; {raw:?} is not a finite number"),
    }
}

/// `[gte, gt, lte, lt]` with `x` in `bound`'s place.
fn bounds<T: Copy>(bound: Bound, x: T) -> [Option<T>; 4] {
    let mut b = [None; 4];
    b[bound as usize] = Some(x);
    b
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fields() -> BTreeMap<String, pb::FieldType> {
        [
            ("lang", pb::FieldType::Keyword),
            ("year", pb::FieldType::Integer),
            ("score", pb::FieldType::Float),
            ("public", pb::FieldType::Bool),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t))
        .collect()
    }

    /// The filter of one condition, or its error message.
    fn one(cond: &str) -> Result<pb::Filter, String> {
        let c: Condition = cond.parse().map_err(|e: anyhow::Error| e.to_string())?;
        let mut f = filter(&[c], "docs", &fields()).map_err(|e| e.to_string())?;
        assert_eq!(f.must.len(), 1);
        Ok(f.must.remove(0))
    }

    fn op(cond: &str) -> Op {
        one(cond).unwrap().condition.unwrap().op.unwrap()
    }

    fn s(v: &str) -> pb::Value {
        value_to_pb(Value::String(v.into()))
    }

    #[test]
    fn each_form_becomes_its_operator_typed_by_the_field() {
        assert_eq!(op("lang=en"), Op::Eq(s("en")));
        assert_eq!(op(" lang = en "), Op::Eq(s("en")));
        assert_eq!(op("year=2020"), Op::Eq(value_to_pb(Value::Int(2020))));
        assert_eq!(op("score=0.5"), Op::Eq(value_to_pb(Value::Double(0.5))));
        assert_eq!(op("public=true"), Op::Eq(value_to_pb(Value::Bool(true))));
        assert_eq!(
            op("year>=2020"),
            Op::IntRange(pb::IntRange {
                gte: Some(2020),
                ..Default::default()
            })
        );
        assert_eq!(
            op("year < 2000"),
            Op::IntRange(pb::IntRange {
                lt: Some(2000),
                ..Default::default()
            })
        );
        assert_eq!(
            op("score>1"),
            Op::DoubleRange(pb::DoubleRange {
                gt: Some(1.0),
                ..Default::default()
            })
        );
        assert_eq!(
            op("score<=-2.5"),
            Op::DoubleRange(pb::DoubleRange {
                lte: Some(-2.5),
                ..Default::default()
            })
        );
        assert_eq!(
            op("lang in en, de,fr"),
            Op::In(pb::ValueList {
                values: vec![s("en"), s("de"), s("fr")]
            })
        );
        assert_eq!(
            op("year in 1,2"),
            Op::In(pb::ValueList {
                values: vec![value_to_pb(Value::Int(1)), value_to_pb(Value::Int(2))]
            })
        );
        assert_eq!(op("public exists"), Op::Exists(true));
        assert_eq!(op("lang=a=b"), Op::Eq(s("a=b")));
    }

    #[test]
    fn not_equal_is_a_must_not_of_equal() {
        let f = one("lang!=en").unwrap();
        assert_eq!(f.condition, None);
        assert_eq!(
            f.must_not[0].condition.as_ref().unwrap().op,
            Some(Op::Eq(s("en")))
        );
    }

    #[test]
    fn every_condition_must_hold() {
        let conds: Vec<Condition> = ["lang=en", "year>=2020"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect();
        let f = filter(&conds, "docs", &fields()).unwrap();
        assert_eq!(f.must.len(), 2);
        assert!(f.should.is_empty() && f.must_not.is_empty() && f.condition.is_none());
    }

    #[test]
    fn malformed_conditions_are_refused_with_the_forms() {
        for bad in [
            "",
            "=en",
            "lang",
            "lang ~ en",
            "lang=",
            "year>=",
            "lang in ",
            "lang in a,,b",
            "lang exist",
        ] {
            let e = one(bad).unwrap_err();
            assert!(e.starts_with(&format!("{bad:?}")), "{bad:?}: {e}");
        }
        assert!(one("lang").unwrap_err().contains("field=value"));
    }

    #[test]
    fn fields_not_indexed_and_values_of_the_wrong_type_are_named() {
        assert_eq!(
            one("color=red").unwrap_err(),
            "--where \"color=red\": field \"color\" is not indexed in collection docs; \
             its indexed fields: lang, public, score, year"
        );
        let c: Condition = "color=red".parse().unwrap();
        let none = filter(&[c], "docs", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(none.contains("it has no indexed fields"), "{none}");
        assert_eq!(
            one("year>=soon").unwrap_err(),
            "--where \"year>=soon\": \"year\" is an integer field; \"soon\" is not an integer"
        );
        assert!(one("year=1.5").unwrap_err().contains("not an integer"));
        assert!(
            one("score=NaN")
                .unwrap_err()
                .contains("not a finite number")
        );
        assert!(one("public=yes").unwrap_err().contains("not true or false"));
        assert!(
            one("year in 1,x")
                .unwrap_err()
                .contains("\"x\" is not an integer")
        );
        assert_eq!(
            one("lang>=en").unwrap_err(),
            "--where \"lang>=en\": \"lang\" is a keyword field; only integer and float fields \
             compare with <, <=, > and >="
        );
        assert!(one("public<true").unwrap_err().contains("bool field"));
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<String>()) {
            if let Ok(c) = text.parse::<Condition>() {
                let _ = filter(&[c], "docs", &fields());
            }
        }

        #[test]
        fn never_panics_near_the_grammar(
            text in "[ a-z]{0,6}[ =!<>]{0,3}(in |exists)?[ a-z0-9.,+-]{0,8}"
        ) {
            if let Ok(c) = text.parse::<Condition>() {
                let _ = filter(&[c], "docs", &fields());
            }
        }

        #[test]
        fn integer_bounds_arrive_unchanged(n in any::<i64>()) {
            prop_assert_eq!(
                op(&format!("year>{n}")),
                Op::IntRange(pb::IntRange { gt: Some(n), ..Default::default() })
            );
        }
    }
}
