//! Results as aligned tables for people or JSON for scripts, from one description of the
//! columns, so the two never disagree about what a command returned.

use std::time::SystemTime;

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use serde_json::{Map, Value as Json, json};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

/// Rows of named cells.
#[derive(Debug)]
pub struct Rows {
    headers: Vec<&'static str>,
    rows: Vec<Vec<Json>>,
}

impl Rows {
    pub fn new(headers: &[&'static str]) -> Self {
        Self {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, cells: Vec<Json>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        self.rows.push(cells);
    }

    fn objects(&self) -> Vec<Json> {
        self.rows
            .iter()
            .map(|row| {
                let o: Map<String, Json> = self
                    .headers
                    .iter()
                    .map(|h| (*h).to_owned())
                    .zip(row.iter().cloned())
                    .collect();
                Json::Object(o)
            })
            .collect()
    }

    fn table(&self) -> Table {
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header(self.headers.iter().map(|h| h.to_uppercase()));
        for row in &self.rows {
            t.add_row(row.iter().map(plain));
        }
        t
    }
}

impl Output {
    /// A list: a JSON array, or a table.
    pub fn list(&self, rows: &Rows) {
        if self.json {
            println!("{}", Json::Array(rows.objects()));
        } else if rows.rows.is_empty() {
            println!("(none)");
        } else {
            println!("{}", rows.table());
        }
    }

    /// A single object: a JSON object, or a two-column table of fields.
    pub fn one(&self, rows: &Rows) {
        if self.json {
            let first = rows.objects().into_iter().next().unwrap_or(Json::Null);
            println!("{first}");
            return;
        }
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if let Some(row) = rows.rows.first() {
            for (h, v) in rows.headers.iter().zip(row) {
                t.add_row([(*h).to_owned(), plain(v)]);
            }
        }
        println!("{t}");
    }

    /// What a command without a result object did to `name`: `{"deleted": name}` for scripts,
    /// `deleted name` for people, so `--json` always prints one value.
    pub fn done(&self, action: &str, name: &str) {
        if self.json {
            println!("{}", json!({ action: name }));
        } else {
            println!("{action} {name}");
        }
    }

    /// A line for people only (JSON output stays one value).
    pub fn note(&self, message: &str) {
        if !self.json {
            println!("{message}");
        }
    }
}

/// A cell as people read it: strings without quotes, null as empty.
fn plain(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time from a wire timestamp, or null when unset.
pub fn time(t: Option<&prost_types::Timestamp>) -> Json {
    match t {
        Some(t) if t.seconds > 0 => {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::new(t.seconds as u64, 0);
            Json::String(humantime::format_rfc3339_seconds(at).to_string())
        }
        _ => Json::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_are_objects_keyed_by_header() {
        let mut r = Rows::new(&["id", "n"]);
        r.push(vec![json!("a"), json!(1)]);
        assert_eq!(r.objects(), vec![json!({"id": "a", "n": 1})]);
        let t = r.table().to_string();
        assert!(
            t.contains("ID") && t.contains('a') && !t.contains("\"a\""),
            "{t}"
        );
    }

    #[test]
    fn times_print_as_rfc3339() {
        let ts = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(time(Some(&ts)), json!("2023-11-14T22:13:20Z"));
        assert_eq!(time(None), Json::Null);
    }
}
