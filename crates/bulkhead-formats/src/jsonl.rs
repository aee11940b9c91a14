//! JSON-lines documents: one object per line holding a record's `id`, optional `text`,
//! `vector`, `ttl_seconds` and `metadata` object. Any other top-level field becomes metadata
//! too, so a corpus dump like debian-minilm's `docs.jsonl.gz` (id, package, title, text)
//! imports without reshaping. Files ending in `.gz` are decompressed on the fly.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use bulkhead_core::{Metadata, Value};
use serde_json::{Map, Value as Json};

use crate::error::{FormatError, Result};

/// One line of a documents file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// The record id: a string, or an integer written as its decimal form.
    pub id: Option<String>,
    pub text: Option<String>,
    pub vector: Option<Vec<f32>>,
    pub ttl_seconds: Option<i64>,
    pub metadata: Metadata,
}

/// Reads every document of `path` (gzip when it ends in `.gz`), leaving out top-level fields
/// named in `skip`.
pub fn read_documents(path: &Path, skip: &[String]) -> Result<Vec<Document>> {
    let io = |source| FormatError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut docs = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        docs.push(parse_document(i + 1, &line, skip).map_err(|e| e.in_file(path))?);
    }
    Ok(docs)
}

/// Parses line number `line` (1-based, for messages).
fn parse_document(line: usize, text: &str, skip: &[String]) -> Result<Document> {
    let fail = |message: String| FormatError::Document { line, message };
    let object = match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(o)) => o,
        Ok(_) => return Err(fail("expected a JSON object".into())),
        Err(e) => return Err(fail(format!("invalid JSON: {e}"))),
    };
    let mut doc = Document::default();
    for (field, value) in object {
        if value.is_null() || skip.contains(&field) {
            continue;
        }
        match field.as_str() {
            "id" => {
                doc.id = Some(id(&value).ok_or_else(|| {
                    fail("id: expected a string or a non-negative integer".into())
                })?)
            }
            "text" => {
                doc.text = Some(
                    value
                        .as_str()
                        .ok_or_else(|| fail("text: expected a string".into()))?
                        .to_owned(),
                )
            }
            "vector" => {
                doc.vector = Some(vector(&value).map_err(|m| fail(format!("vector: {m}")))?)
            }
            "ttl_seconds" => {
                doc.ttl_seconds = Some(
                    value
                        .as_i64()
                        .ok_or_else(|| fail("ttl_seconds: expected an integer".into()))?,
                )
            }
            "metadata" => match value {
                Json::Object(fields) => metadata_into(&mut doc.metadata, fields).map_err(fail)?,
                _ => return Err(fail("metadata: expected an object".into())),
            },
            _ => {
                let v = metadata_value(&value).map_err(|m| fail(format!("{field}: {m}")))?;
                doc.metadata.insert(field, v);
            }
        }
    }
    Ok(doc)
}

fn id(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

fn vector(value: &Json) -> Result<Vec<f32>, String> {
    let items = value.as_array().ok_or("expected an array of numbers")?;
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| format!("element {i} is not a number"))
        })
        .collect()
}

/// Metadata from a JSON object text (the `metadata` column of Arrow batches).
pub fn metadata_from_json(text: &str) -> Result<Metadata, String> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(fields)) => {
            let mut m = Metadata::new();
            metadata_into(&mut m, fields)?;
            Ok(m)
        }
        Ok(_) => Err("expected a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// Metadata as a plain JSON object (`{"lang": "en"}`, not tagged by type); the inverse of
/// `metadata_from_json` for every value a record can hold.
pub fn metadata_to_json(m: &Metadata) -> Json {
    let plain = |v: &Value| match v {
        Value::String(s) => Json::from(s.as_str()),
        Value::Int(i) => Json::from(*i),
        Value::Double(d) => Json::from(*d),
        Value::Bool(b) => Json::from(*b),
        Value::StringList(l) => Json::from(l.clone()),
    };
    Json::Object(m.iter().map(|(k, v)| (k.clone(), plain(v))).collect())
}

fn metadata_into(into: &mut Metadata, fields: Map<String, Json>) -> Result<(), String> {
    for (k, v) in fields {
        if v.is_null() {
            continue;
        }
        let value = metadata_value(&v).map_err(|m| format!("metadata.{k}: {m}"))?;
        into.insert(k, value);
    }
    Ok(())
}

fn metadata_value(value: &Json) -> Result<Value, String> {
    Ok(match value {
        Json::String(s) => Value::String(s.clone()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().ok_or("number out of range")?),
        },
        Json::Array(items) => Value::StringList(
            items
                .iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or("lists must hold strings only")?,
        ),
        Json::Object(_) | Json::Null => {
            return Err("expected a string, number, bool or list of strings".into());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fields_are_typed_and_the_rest_become_metadata() {
        let d = parse_document(
            1,
            r#"{"id": 7, "text": "t", "vector": [1, 0.5], "ttl_seconds": 60,
                "package": "x", "size": 3, "ratio": 0.25, "free": true, "tags": ["a", "b"],
                "metadata": {"lang": "en"}, "gone": null, "tenant": "libs"}"#,
            &["tenant".to_owned()],
        )
        .unwrap();
        assert_eq!(d.id.as_deref(), Some("7"));
        assert_eq!(d.text.as_deref(), Some("t"));
        assert_eq!(d.vector, Some(vec![1.0, 0.5]));
        assert_eq!(d.ttl_seconds, Some(60));
        let m = |k: &str| d.metadata.get(k).cloned();
        assert_eq!(m("package"), Some(Value::String("x".into())));
        assert_eq!(m("size"), Some(Value::Int(3)));
        assert_eq!(m("ratio"), Some(Value::Double(0.25)));
        assert_eq!(m("free"), Some(Value::Bool(true)));
        assert_eq!(
            m("tags"),
            Some(Value::StringList(vec!["a".into(), "b".into()]))
        );
        assert_eq!(m("lang"), Some(Value::String("en".into())));
        assert_eq!(m("gone"), None);
        assert_eq!(m("tenant"), None, "skipped field");
    }

    #[test]
    fn errors_name_the_line_and_field() {
        let err = |s: &str| parse_document(4, s, &[]).unwrap_err().to_string();
        assert_eq!(err("[1]"), "line 4: expected a JSON object");
        assert!(err("{").starts_with("line 4: invalid JSON"));
        assert!(err(r#"{"id": -1}"#).contains("id:"));
        assert!(err(r#"{"vector": [1, "x"]}"#).contains("vector: element 1"));
        assert!(err(r#"{"text": 3}"#).contains("text:"));
        assert!(err(r#"{"x": {"y": 1}}"#).contains("x: expected"));
        assert!(err(r#"{"metadata": {"l": [1]}}"#).contains("metadata.l: lists"));
    }

    #[test]
    fn reads_plain_and_gzip_files() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let body = "{\"id\": \"a\"}\n\n{\"id\": \"b\"}\n";
        let plain = dir.path().join("d.jsonl");
        std::fs::write(&plain, body).unwrap();
        let gz = dir.path().join("d.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(body.as_bytes()).unwrap();
        enc.finish().unwrap();
        for p in [plain, gz] {
            let ids: Vec<_> = read_documents(&p, &[])
                .unwrap()
                .into_iter()
                .map(|d| d.id.unwrap())
                .collect();
            assert_eq!(ids, ["a", "b"]);
        }
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{}\nnope\n").unwrap();
        let e = read_documents(&bad, &[]).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl") && e.contains("line 2"), "{e}");
    }
}
