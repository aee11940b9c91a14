//! Query filters from the wire: shape checked here (every condition has a field and one
//! operator, bounded depth and size), meaning checked by the engine against the collection's
//! indexed fields. Errors name the position in the tree, e.g. `filter.must[1].condition`.

use bulkhead_engine::{Condition, Filter, Range};
use bulkhead_proto::v1 as pb;
use pb::condition::Op;

use crate::error::{Result, WireError};
use crate::time::timestamp_to_ms;
use crate::values::value_from_pb;

/// Deepest nesting and most nodes a filter may have.
pub const MAX_DEPTH: usize = 8;
pub const MAX_NODES: usize = 256;
/// Most values of one `in` condition: each is a posting list to union, so the list bounds the
/// work of evaluating the filter.
pub const MAX_IN_VALUES: usize = 1024;

pub fn filter(f: pb::Filter) -> Result<Filter> {
    let mut nodes = 0;
    node(f, "filter", 0, &mut nodes)
}

fn node(f: pb::Filter, at: &str, depth: usize, nodes: &mut usize) -> Result<Filter> {
    *nodes += 1;
    if depth > MAX_DEPTH || *nodes > MAX_NODES {
        return Err(WireError::invalid(format!(
            "{at}: filters may nest {MAX_DEPTH} deep and hold {MAX_NODES} nodes"
        )));
    }
    let children = |list: Vec<pb::Filter>, name: &str, nodes: &mut usize| {
        list.into_iter()
            .enumerate()
            .map(|(i, c)| node(c, &format!("{at}.{name}[{i}]"), depth + 1, nodes))
            .collect::<Result<Vec<_>>>()
    };
    Ok(Filter {
        must: children(f.must, "must", nodes)?,
        should: children(f.should, "should", nodes)?,
        must_not: children(f.must_not, "must_not", nodes)?,
        condition: f
            .condition
            .map(|c| condition(c, &format!("{at}.condition")))
            .transpose()?,
    })
}

fn condition(c: pb::Condition, at: &str) -> Result<Condition> {
    let invalid = |m: &str| WireError::invalid(format!("{at}: {m}"));
    if c.field.is_empty() {
        return Err(invalid("field is required"));
    }
    let field = c.field;
    let value = |v: pb::Value, what: &str| {
        value_from_pb(v).ok_or_else(|| invalid(&format!("{what} has no type set")))
    };
    Ok(
        match c
            .op
            .ok_or_else(|| invalid("no operator set (eq, in, ranges or exists)"))?
        {
            Op::Eq(v) => Condition::Eq {
                field,
                value: value(v, "eq")?,
            },
            Op::In(list) => {
                if list.values.is_empty() {
                    return Err(invalid("in needs at least one value"));
                }
                if list.values.len() > MAX_IN_VALUES {
                    return Err(invalid(&format!(
                        "in holds {} values, at most {MAX_IN_VALUES} are accepted",
                        list.values.len()
                    )));
                }
                let values = list
                    .values
                    .into_iter()
                    .map(|v| value(v, "in"))
                    .collect::<Result<_>>()?;
                Condition::In { field, values }
            }
            Op::IntRange(r) => Condition::Range {
                field,
                range: Range::Integer {
                    gte: r.gte,
                    gt: r.gt,
                    lte: r.lte,
                    lt: r.lt,
                },
            },
            Op::DoubleRange(r) => {
                if [r.gte, r.gt, r.lte, r.lt]
                    .iter()
                    .flatten()
                    .any(|x| !x.is_finite())
                {
                    return Err(invalid("double_range bounds must be finite"));
                }
                Condition::Range {
                    field,
                    range: Range::Float {
                        gte: r.gte,
                        gt: r.gt,
                        lte: r.lte,
                        lt: r.lt,
                    },
                }
            }
            Op::TimeRange(r) => {
                let ms = |t: Option<prost_types::Timestamp>| {
                    t.map(|t| timestamp_to_ms(&t).map(|ms| ms as i64))
                        .transpose()
                };
                Condition::Range {
                    field,
                    range: Range::Integer {
                        gte: ms(r.gte)?,
                        gt: ms(r.gt)?,
                        lte: ms(r.lte)?,
                        lt: ms(r.lt)?,
                    },
                }
            }
            Op::Exists(true) => Condition::Exists { field },
            Op::Exists(false) => {
                return Err(invalid("exists must be true; use must_not for absence"));
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: Option<Op>) -> pb::Filter {
        pb::Filter {
            condition: Some(pb::Condition {
                field: "f".into(),
                op,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn shape_errors_name_the_position() {
        let nested = pb::Filter {
            must: vec![pb::Filter::default(), cond(None)],
            ..Default::default()
        };
        assert_eq!(
            filter(nested).unwrap_err().to_string(),
            "filter.must[1].condition: no operator set (eq, in, ranges or exists)"
        );
        let no_field = pb::Filter {
            condition: Some(pb::Condition {
                field: String::new(),
                op: Some(Op::Exists(true)),
            }),
            ..Default::default()
        };
        assert!(
            filter(no_field)
                .unwrap_err()
                .to_string()
                .ends_with("field is required")
        );
        assert!(
            filter(cond(Some(Op::Exists(false))))
                .unwrap_err()
                .to_string()
                .contains("must_not")
        );
        assert!(filter(cond(Some(Op::In(pb::ValueList::default())))).is_err());
        let nan = pb::DoubleRange {
            gte: Some(f64::NAN),
            ..Default::default()
        };
        assert!(filter(cond(Some(Op::DoubleRange(nan)))).is_err());
        let mut deep = cond(Some(Op::Exists(true)));
        for _ in 0..MAX_DEPTH + 1 {
            deep = pb::Filter {
                must: vec![deep],
                ..Default::default()
            };
        }
        assert!(filter(deep).unwrap_err().to_string().contains("nest"));
    }

    /// `depth` levels of `must` above one condition.
    fn nested(depth: usize) -> pb::Filter {
        let mut f = cond(Some(Op::Exists(true)));
        for _ in 0..depth {
            f = pb::Filter {
                must: vec![f],
                ..Default::default()
            };
        }
        f
    }

    /// A root holding `n - 1` conditions: `n` nodes in all.
    fn wide(n: usize) -> pb::Filter {
        pb::Filter {
            should: vec![cond(Some(Op::Exists(true))); n - 1],
            ..Default::default()
        }
    }

    fn in_list(n: usize) -> pb::Filter {
        let values = (0..n as i64)
            .map(|i| pb::Value {
                kind: Some(pb::value::Kind::IntValue(i)),
            })
            .collect();
        cond(Some(Op::In(pb::ValueList { values })))
    }

    /// Each limit admits exactly its own size and refuses one more, whatever counts up to it.
    #[test]
    fn the_limits_admit_their_size_and_refuse_one_more() {
        filter(nested(MAX_DEPTH)).expect("nesting of exactly MAX_DEPTH is accepted");
        assert!(
            filter(nested(MAX_DEPTH + 1))
                .unwrap_err()
                .to_string()
                .contains("nest 8 deep")
        );
        filter(wide(MAX_NODES)).expect("exactly MAX_NODES nodes are accepted");
        let too_many = filter(wide(MAX_NODES + 1)).unwrap_err();
        assert!(too_many.to_string().contains("256 nodes"), "{too_many:?}");
        assert!(
            too_many.to_string().starts_with("filter.should[255]"),
            "the node past the limit is named: {too_many:?}"
        );
        // Nodes are counted across branches too, not per list.
        let split = pb::Filter {
            must: vec![cond(Some(Op::Exists(true))); MAX_NODES / 2],
            should: vec![cond(Some(Op::Exists(true))); MAX_NODES / 2],
            ..Default::default()
        };
        assert!(filter(split).is_err(), "257 nodes over two lists");
        filter(in_list(MAX_IN_VALUES)).expect("an in of exactly MAX_IN_VALUES is accepted");
        assert!(
            filter(in_list(MAX_IN_VALUES + 1))
                .unwrap_err()
                .to_string()
                .contains("in holds 1025 values, at most 1024")
        );
    }

    #[test]
    fn time_ranges_become_millisecond_integer_ranges() {
        let t = prost_types::Timestamp {
            seconds: 2,
            nanos: 5_000_000,
        };
        let f = filter(cond(Some(Op::TimeRange(pb::TimeRange {
            gte: Some(t),
            ..Default::default()
        }))))
        .unwrap();
        assert_eq!(
            f.condition,
            Some(Condition::Range {
                field: "f".into(),
                range: Range::Integer {
                    gte: Some(2005),
                    gt: None,
                    lte: None,
                    lt: None
                }
            })
        );
    }
}
