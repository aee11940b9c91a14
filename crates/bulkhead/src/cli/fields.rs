//! Indexed metadata fields on the command line: declared as `--index FIELD=TYPE` when a
//! collection is created (`collection create`, `import --create`), shown by `collection get`,
//! and read back by `query --where`, which needs each field's type to type its values.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use bulkhead_client::proto as pb;
use serde_json::Value as Json;

/// The types as `--index` spells them.
const TYPES: [(&str, pb::FieldType); 4] = [
    ("keyword", pb::FieldType::Keyword),
    ("integer", pb::FieldType::Integer),
    ("float", pb::FieldType::Float),
    ("bool", pb::FieldType::Bool),
];

/// One `--index FIELD=TYPE`.
#[derive(Debug, Clone)]
pub struct IndexArg {
    field: String,
    field_type: pb::FieldType,
}

impl FromStr for IndexArg {
    type Err = anyhow::Error;

    /// Splits at the last `=`: field names may hold one, type names don't.
    fn from_str(s: &str) -> Result<Self> {
        let (field, ty) = s
            .rsplit_once('=')
            .context("expected FIELD=TYPE, e.g. year=integer")?;
        if field.is_empty() {
            bail!("no field name before '=' in {s:?}");
        }
        let field_type = TYPES
            .iter()
            .find(|(name, _)| *name == ty)
            .map(|(_, t)| *t)
            .with_context(|| {
                format!("unknown type {ty:?}: expected keyword, integer, float or bool")
            })?;
        Ok(Self {
            field: field.to_owned(),
            field_type,
        })
    }
}

/// The indexed fields of a new collection; a field declared twice is an error.
pub fn declared(args: &[IndexArg]) -> Result<BTreeMap<String, pb::FieldType>> {
    let mut fields = BTreeMap::new();
    for a in args {
        if fields.insert(a.field.clone(), a.field_type).is_some() {
            bail!("--index: field {:?} is given twice", a.field);
        }
    }
    Ok(fields)
}

/// The declared type of each of `c`'s indexed fields.
pub fn types(c: &pb::Collection) -> BTreeMap<String, pb::FieldType> {
    c.indexed_fields
        .iter()
        .map(|(name, t)| {
            let t = pb::FieldType::try_from(*t).unwrap_or(pb::FieldType::Unspecified);
            (name.clone(), t)
        })
        .collect()
}

/// `c`'s indexed fields as an object from name to type, in the API's spelling
/// (`{"year": "INTEGER"}`), sorted by name.
pub fn to_json(c: &pb::Collection) -> Json {
    types(c)
        .into_iter()
        .map(|(name, t)| (name, Json::from(t.as_str_name())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A type as `--index` spells it, for messages.
pub fn type_name(t: pb::FieldType) -> &'static str {
    TYPES
        .iter()
        .find(|(_, ty)| *ty == t)
        .map_or("unknown", |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_args_name_a_field_and_a_type() {
        let a: IndexArg = "year=integer".parse().unwrap();
        assert_eq!(
            (a.field.as_str(), a.field_type),
            ("year", pb::FieldType::Integer)
        );
        let a: IndexArg = "a=b=keyword".parse().unwrap();
        assert_eq!(a.field, "a=b");
        let e = "year=int".parse::<IndexArg>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown type \"int\": expected keyword, integer, float or bool"
        );
        assert!("year".parse::<IndexArg>().is_err());
        assert!("=bool".parse::<IndexArg>().is_err());
    }

    #[test]
    fn a_field_declared_twice_is_refused() {
        let args = |s: &[&str]| s.iter().map(|a| a.parse().unwrap()).collect::<Vec<_>>();
        let ok = declared(&args(&["lang=keyword", "year=integer"])).unwrap();
        assert_eq!(ok.len(), 2);
        let e = declared(&args(&["lang=keyword", "lang=bool"])).unwrap_err();
        assert_eq!(e.to_string(), "--index: field \"lang\" is given twice");
    }

    #[test]
    fn shown_sorted_in_the_api_spelling() {
        let c = pb::Collection {
            indexed_fields: [
                ("year".to_owned(), pb::FieldType::Integer as i32),
                ("lang".to_owned(), pb::FieldType::Keyword as i32),
            ]
            .into(),
            ..Default::default()
        };
        assert_eq!(
            to_json(&c).to_string(),
            r#"{"lang":"KEYWORD","year":"INTEGER"}"#
        );
        assert_eq!(type_name(pb::FieldType::Float), "float");
    }
}
