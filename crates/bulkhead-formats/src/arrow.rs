//! Records as Arrow record batches, the format of bulk import and export. The schema is fixed
//! so files from any tool can be checked column by column before anything is written:
//!
//! | column | type | |
//! |---|---|---|
//! | `id` | utf8, no nulls | required |
//! | `vector` | fixed_size_list<float32, dim>, no nulls | required, dim = the collection's |
//! | `text` | utf8 | optional |
//! | `metadata` | utf8 holding a JSON object | optional |
//! | `ttl_seconds` | int64 | optional; remaining time to live, null = never expires |
//!
//! Any other column is an error, so a misspelt optional column can't be silently dropped.

use std::io::Read;
use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch, StringArray,
};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use bulkhead_core::Metadata;

use crate::error::{FormatError, Result};
use crate::ipc_limits::IpcFrames;
use crate::jsonl::{metadata_from_json, metadata_to_json};

const ID: &str = "id";
const VECTOR: &str = "vector";
const TEXT: &str = "text";
const METADATA: &str = "metadata";
const TTL: &str = "ttl_seconds";

/// One record as it travels in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    pub id: String,
    pub vector: Vec<f32>,
    pub text: Option<String>,
    pub metadata: Metadata,
    pub ttl_seconds: Option<i64>,
}

fn column_error(column: &str, message: impl Into<String>) -> FormatError {
    FormatError::Arrow {
        column: Some(column.to_owned()),
        message: message.into(),
    }
}

fn arrow_error(e: ArrowError) -> FormatError {
    FormatError::Arrow {
        column: None,
        message: e.to_string(),
    }
}

/// The full schema for vectors of `dimension`, as export writes it.
pub fn record_schema(dimension: usize) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(ID, DataType::Utf8, false),
        Field::new(VECTOR, vector_type(dimension), false),
        Field::new(TEXT, DataType::Utf8, true),
        Field::new(METADATA, DataType::Utf8, true),
        Field::new(TTL, DataType::Int64, true),
    ]))
}

fn vector_type(dimension: usize) -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new("item", DataType::Float32, true)),
        dimension as i32,
    )
}

/// Checks a schema against the fixed one for `dimension`; the error names the column.
fn check_schema(schema: &Schema, dimension: usize) -> Result<()> {
    for field in schema.fields() {
        let want = match field.name().as_str() {
            ID => DataType::Utf8,
            VECTOR => match field.data_type() {
                DataType::FixedSizeList(item, n) if *item.data_type() == DataType::Float32 => {
                    if *n as usize != dimension {
                        return Err(column_error(
                            VECTOR,
                            format!("dimension {n}, the collection's is {dimension}"),
                        ));
                    }
                    continue;
                }
                _ => vector_type(dimension),
            },
            TEXT | METADATA => DataType::Utf8,
            TTL => DataType::Int64,
            other => {
                return Err(column_error(
                    other,
                    "unknown column (expected id, vector, text, metadata, ttl_seconds)",
                ));
            }
        };
        if *field.data_type() != want {
            return Err(column_error(
                field.name(),
                format!("expected {want}, got {}", field.data_type()),
            ));
        }
    }
    for required in [ID, VECTOR] {
        if schema.field_with_name(required).is_err() {
            return Err(column_error(required, "missing"));
        }
    }
    Ok(())
}

/// A batch whose schema passed `check_schema`, as rows.
fn decode_batch(batch: &RecordBatch) -> Result<Vec<RecordRow>> {
    let column = |name: &str| batch.column_by_name(name);
    let ids = column(ID)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| column_error(ID, "missing or not utf8"))?;
    let vectors = column(VECTOR)
        .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
        .ok_or_else(|| column_error(VECTOR, "missing or not a fixed-size list"))?;
    let values = vectors
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| column_error(VECTOR, "items are not float32"))?;
    let dim = vectors.value_length() as usize;
    let texts = optional::<StringArray>(batch, TEXT)?;
    let metadata = optional::<StringArray>(batch, METADATA)?;
    let ttls = optional::<Int64Array>(batch, TTL)?;
    let mut rows = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        if ids.is_null(i) {
            return Err(column_error(ID, format!("row {i} is null")));
        }
        if vectors.is_null(i) || values.null_count() > 0 {
            return Err(column_error(VECTOR, format!("row {i} has nulls")));
        }
        let at = vectors.value_offset(i) as usize;
        rows.push(RecordRow {
            id: ids.value(i).to_owned(),
            vector: values.values()[at..at + dim].to_vec(),
            text: texts
                .filter(|t| t.is_valid(i))
                .map(|t| t.value(i).to_owned()),
            metadata: match metadata.filter(|m| m.is_valid(i)) {
                Some(m) => metadata_from_json(m.value(i))
                    .map_err(|e| column_error(METADATA, format!("row {i}: {e}")))?,
                None => Metadata::new(),
            },
            ttl_seconds: ttls.filter(|t| t.is_valid(i)).map(|t| t.value(i)),
        });
    }
    Ok(rows)
}

fn optional<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<Option<&'a T>> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(c) => c
            .as_any()
            .downcast_ref::<T>()
            .map(Some)
            .ok_or_else(|| column_error(name, "unexpected type")),
    }
}

/// Rows as one batch of the full schema.
fn encode_batch(rows: &[RecordRow], dimension: usize) -> Result<RecordBatch> {
    let mut values = Vec::with_capacity(rows.len() * dimension);
    for r in rows {
        if r.vector.len() != dimension {
            return Err(column_error(
                VECTOR,
                format!(
                    "record {:?} has dimension {}, expected {dimension}",
                    r.id,
                    r.vector.len()
                ),
            ));
        }
        values.extend_from_slice(&r.vector);
    }
    let item = Arc::new(Field::new("item", DataType::Float32, true));
    let vectors = FixedSizeListArray::try_new(
        item,
        dimension as i32,
        Arc::new(Float32Array::from(values)),
        None,
    )
    .map_err(arrow_error)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.id.as_str()),
        )),
        Arc::new(vectors),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.text.as_deref()),
        )),
        Arc::new(StringArray::from_iter(rows.iter().map(|r| {
            (!r.metadata.is_empty()).then(|| metadata_to_json(&r.metadata).to_string())
        }))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.ttl_seconds))),
    ];
    RecordBatch::try_new(record_schema(dimension), columns).map_err(arrow_error)
}

/// Writes an Arrow IPC stream incrementally: each `push` returns the bytes of the stream so far
/// not yet returned (the schema with the first), `finish` the end-of-stream marker. A server
/// can send each piece as it is made instead of building the whole stream in memory.
pub struct StreamEncoder {
    writer: arrow_ipc::writer::StreamWriter<Vec<u8>>,
    dimension: usize,
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder")
            .field("dimension", &self.dimension)
            .finish_non_exhaustive()
    }
}

impl StreamEncoder {
    pub fn new(dimension: usize) -> Result<Self> {
        let writer =
            arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &record_schema(dimension))
                .map_err(arrow_error)?;
        Ok(Self { writer, dimension })
    }

    pub fn push(&mut self, rows: &[RecordRow]) -> Result<Vec<u8>> {
        let batch = encode_batch(rows, self.dimension)?;
        self.writer.write(&batch).map_err(arrow_error)?;
        Ok(std::mem::take(self.writer.get_mut()))
    }

    pub fn finish(mut self) -> Result<Vec<u8>> {
        self.writer.finish().map_err(arrow_error)?;
        self.writer.into_inner().map_err(arrow_error)
    }
}

/// A whole Arrow IPC stream of `batches`, in memory.
pub fn encode_stream<'a>(
    batches: impl IntoIterator<Item = &'a [RecordRow]>,
    dimension: usize,
) -> Result<Vec<u8>> {
    let mut encoder = StreamEncoder::new(dimension)?;
    let mut out = Vec::new();
    for batch in batches {
        out.extend(encoder.push(batch)?);
    }
    out.extend(encoder.finish()?);
    Ok(out)
}

/// Reads an Arrow IPC stream: checks its schema for `dimension` first, then hands each batch,
/// as rows, to `each` in order. A truncated or corrupt stream ends with an error after the
/// batches before the damage; a message declaring a body over `max_batch_bytes` is refused
/// before anything is allocated for it.
pub fn read_stream<R: Read>(
    mut input: R,
    dimension: usize,
    max_batch_bytes: usize,
    mut each: impl FnMut(Vec<RecordRow>) -> Result<()>,
) -> Result<()> {
    let mut decoder = BatchDecoder::new(dimension, max_batch_bytes, usize::MAX);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = input.read(&mut chunk).map_err(|e| FormatError::Arrow {
            column: None,
            message: format!("reading the stream: {e}"),
        })?;
        if n == 0 {
            return decoder.finish();
        }
        for rows in decoder.push(&chunk[..n])? {
            each(rows)?;
        }
    }
}

/// An Arrow IPC stream decoded as its bytes arrive, for callers that must not block waiting for
/// the next ones (an import over the network): `push` returns the batches the bytes complete.
/// Memory stays at one batch: a message declaring a body over `max_batch_bytes`, or a batch of
/// more than `max_batch_rows` rows, is refused.
#[derive(Debug)]
pub struct BatchDecoder {
    frames: IpcFrames,
    decoder: StreamDecoder,
    dimension: usize,
    max_batch_rows: usize,
    schema_checked: bool,
    batches: usize,
}

impl BatchDecoder {
    pub fn new(dimension: usize, max_batch_bytes: usize, max_batch_rows: usize) -> Self {
        Self {
            frames: IpcFrames::new(max_batch_bytes),
            decoder: StreamDecoder::new(),
            dimension,
            max_batch_rows,
            schema_checked: false,
            batches: 0,
        }
    }

    /// The rows of each record batch that `bytes` completes, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<RecordRow>>> {
        self.frames.check(bytes).map_err(|e| FormatError::Arrow {
            column: None,
            message: if self.schema_checked {
                format!("batch {}: {e}", self.batches)
            } else {
                format!("not an Arrow IPC stream: {e}")
            },
        })?;
        let mut buffer = Buffer::from(bytes.to_vec());
        let mut out = Vec::new();
        while !buffer.is_empty() {
            let n = self.batches;
            let step = if self.schema_checked {
                format!("batch {n}")
            } else {
                "the stream header".to_owned()
            };
            let decoded = contained(&step, || self.decoder.decode(&mut buffer))?.map_err(|e| {
                FormatError::Arrow {
                    column: None,
                    message: if self.schema_checked {
                        format!("batch {n}: {e}")
                    } else {
                        format!("not an Arrow IPC stream: {e}")
                    },
                }
            })?;
            if !self.schema_checked
                && let Some(schema) = self.decoder.schema()
            {
                check_schema(&schema, self.dimension)?;
                self.schema_checked = true;
            }
            let Some(batch) = decoded else { continue };
            if batch.num_rows() > self.max_batch_rows {
                return Err(FormatError::Arrow {
                    column: None,
                    message: format!(
                        "batch {n} has {} rows, at most {} are accepted per batch",
                        batch.num_rows(),
                        self.max_batch_rows
                    ),
                });
            }
            out.push(contained(&format!("batch {n}"), || decode_batch(&batch))??);
            self.batches += 1;
        }
        Ok(out)
    }

    /// Checks that the stream ended where a stream may end (not inside a message).
    pub fn finish(&mut self) -> Result<()> {
        if !self.schema_checked {
            return Err(FormatError::Arrow {
                column: None,
                message: "not an Arrow IPC stream: it ended before its schema".into(),
            });
        }
        self.decoder.finish().map_err(|e| FormatError::Arrow {
            column: None,
            message: format!(
                "after batch {}: the stream is truncated ({e})",
                self.batches
            ),
        })
    }
}

/// Runs one step of Arrow's decoder, turning a panic into an error. The decoder trusts parts
/// of the flatbuffers it reads (the fuzz campaign in `tools/fuzz` found an `unwrap` in its
/// schema conversion within three mutations); import input comes from the network, so a
/// malformed stream must be a refusal, not a crashed request.
fn contained<T>(step: &str, f: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        FormatError::Arrow {
            column: None,
            message: format!("{step}: malformed Arrow data ({detail})"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::Value;

    fn rows(n: usize, dim: usize) -> Vec<RecordRow> {
        (0..n)
            .map(|i| RecordRow {
                id: format!("r{i}"),
                vector: (0..dim).map(|d| (i * dim + d) as f32 * 0.5).collect(),
                text: (i % 2 == 0).then(|| format!("text {i}")),
                metadata: if i % 3 == 0 {
                    [
                        ("n".to_owned(), Value::Int(i as i64)),
                        ("tags".to_owned(), Value::StringList(vec!["a".into()])),
                    ]
                    .into()
                } else {
                    Metadata::new()
                },
                ttl_seconds: (i % 4 == 0).then_some(60),
            })
            .collect()
    }

    fn stream(batches: &[Vec<RecordRow>], dim: usize) -> Vec<u8> {
        encode_stream(batches.iter().map(Vec::as_slice), dim).unwrap()
    }

    fn read_all(bytes: &[u8], dim: usize) -> (Vec<Vec<RecordRow>>, Result<()>) {
        let mut got = Vec::new();
        let r = read_stream(bytes, dim, 1 << 20, |b| {
            got.push(b);
            Ok(())
        });
        (got, r)
    }

    #[test]
    fn rows_round_trip_through_an_ipc_stream_bit_for_bit() {
        let batches = vec![rows(5, 3), rows(2, 3)];
        let (got, r) = read_all(&stream(&batches, 3), 3);
        r.unwrap();
        assert_eq!(got, batches);
    }

    #[test]
    fn schema_errors_name_the_column() {
        let bytes = stream(&[rows(1, 3)], 3);
        let (_, r) = read_all(&bytes, 4);
        assert_eq!(
            r.unwrap_err().to_string(),
            "column vector: dimension 3, the collection's is 4"
        );

        let wrong = Schema::new(vec![
            Field::new(ID, DataType::Utf8, false),
            Field::new(
                VECTOR,
                DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
                false,
            ),
        ]);
        assert!(
            check_schema(&wrong, 3)
                .unwrap_err()
                .to_string()
                .starts_with("column vector: expected")
        );
        let no_id = Schema::new(vec![Field::new(VECTOR, vector_type(3), false)]);
        assert_eq!(
            check_schema(&no_id, 3).unwrap_err().to_string(),
            "column id: missing"
        );
        let extra = Schema::new(vec![
            Field::new(ID, DataType::Utf8, false),
            Field::new(VECTOR, vector_type(3), false),
            Field::new("txt", DataType::Utf8, true),
        ]);
        assert!(
            check_schema(&extra, 3)
                .unwrap_err()
                .to_string()
                .starts_with("column txt: unknown column")
        );
        let ttl_as_text = Schema::new(vec![
            Field::new(ID, DataType::Utf8, false),
            Field::new(VECTOR, vector_type(3), false),
            Field::new(TTL, DataType::Utf8, true),
        ]);
        assert_eq!(
            check_schema(&ttl_as_text, 3).unwrap_err().to_string(),
            "column ttl_seconds: expected Int64, got Utf8"
        );
    }

    #[test]
    fn a_truncated_stream_yields_the_whole_batches_before_the_damage_then_an_error() {
        let bytes = stream(&[rows(4, 3), rows(4, 3)], 3);
        let (got, r) = read_all(&bytes[..bytes.len() - 40], 3);
        assert_eq!(got.len(), 1, "the first batch is whole");
        assert!(r.unwrap_err().to_string().contains("batch 1"));
        let (got, r) = read_all(&bytes[..20], 3);
        assert!(got.is_empty());
        assert!(r.is_err());
        let (_, r) = read_all(b"not arrow at all", 3);
        assert!(
            r.unwrap_err()
                .to_string()
                .contains("not an Arrow IPC stream")
        );
    }

    #[test]
    fn declared_sizes_are_checked_before_anything_is_allocated() {
        // A header claiming 1.7 GB of metadata ("defi" read as a length).
        let (_, r) = read_all(b"definitely not arrow", 3);
        assert!(r.unwrap_err().to_string().contains("bytes of metadata"));
        let mut huge = vec![0xFF; 4];
        huge.extend(0x7FFF_FFFFi32.to_le_bytes());
        let (_, r) = read_all(&huge, 3);
        assert!(r.unwrap_err().to_string().contains("at most"));
        // A real batch over the per-batch limit.
        let bytes = stream(&[rows(100, 64)], 64);
        let mut got = 0;
        let r = read_stream(&bytes[..], 64, 1024, |_| {
            got += 1;
            Ok(())
        });
        assert_eq!(got, 0);
        assert!(
            r.unwrap_err().to_string().contains("per record batch"),
            "over the limit"
        );
        read_stream(&bytes[..], 64, 1 << 20, |_| Ok(())).unwrap();
    }

    #[test]
    fn bad_metadata_json_names_the_row() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(ID, DataType::Utf8, false),
            Field::new(VECTOR, vector_type(1), false),
            Field::new(METADATA, DataType::Utf8, true),
        ]));
        let vectors = FixedSizeListArray::try_new(
            Arc::new(Field::new("item", DataType::Float32, true)),
            1,
            Arc::new(Float32Array::from(vec![1.0, 2.0])),
            None,
        )
        .unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(vectors),
                Arc::new(StringArray::from(vec![Some("{}"), Some("[1]")])),
            ],
        )
        .unwrap();
        let e = decode_batch(&batch).unwrap_err().to_string();
        assert!(e.starts_with("column metadata: row 1:"), "{e}");
    }

    #[test]
    fn pushed_bytes_decode_to_the_same_batches_however_they_are_cut() {
        let batches = [rows(5, 3), rows(2, 3)];
        let bytes = stream(&batches, 3);
        for cut in [1, 7, 64, bytes.len()] {
            let mut decoder = BatchDecoder::new(3, 1 << 20, 5);
            let mut got = Vec::new();
            for chunk in bytes.chunks(cut) {
                got.extend(decoder.push(chunk).unwrap());
            }
            decoder.finish().unwrap();
            assert_eq!(got, batches, "chunks of {cut} bytes");
        }
        let mut strict = BatchDecoder::new(3, 1 << 20, 4);
        let refused = strict.push(&bytes).unwrap_err().to_string();
        assert!(
            refused.contains("batch 0 has 5 rows, at most 4"),
            "{refused}"
        );
        let mut cut_short = BatchDecoder::new(3, 1 << 20, 5);
        cut_short.push(&bytes[..bytes.len() - 10]).unwrap();
        assert!(cut_short.finish().is_err(), "a stream cut inside a message");
    }
}
