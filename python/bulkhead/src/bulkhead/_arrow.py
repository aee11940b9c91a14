"""Arrow IPC streams for Import and Export, with pyarrow imported only when these are used (it
is an optional extra). Import streams the data as it is encoded, batch by batch in messages of
at most 1 MiB, so a large table is never held twice; export hands pyarrow a file-like view of
the response stream, so batches are decoded as they arrive.

The server's schema: `id` utf8, `vector` fixed_size_list<float32>[dim], and optionally `text`
utf8, `metadata` utf8 (a JSON object) and `ttl_seconds` int64. Columns of close types (large
strings, list or float64 vectors, other integer widths) are cast to it here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import grpc

from bulkhead._proto.bulkhead.v1 import records_pb2
from bulkhead.errors import BulkheadError, InvalidArgument, from_rpc_error

if TYPE_CHECKING:
    import pyarrow as pa

# Bytes of the IPC stream per Import message.
IMPORT_CHUNK_BYTES = 1 << 20
# Rows per record batch (each is applied atomically; the server's max-batch is 1,000).
IMPORT_BATCH_ROWS = 1000


def pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.ipc  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Arrow import/export needs pyarrow: pip install 'bulkhead-client[arrow]'"
        ) from e
    return pa


class _Sink:
    """A write-only file collecting what the IPC writer produces until it is taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _vector_column(pa: Any, column: Any) -> Any:
    """`column` as fixed_size_list<float32>[dim], from any list type of numbers."""
    t = column.type
    if pa.types.is_fixed_size_list(t) and pa.types.is_float32(t.value_type):
        return column
    if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)):
        raise InvalidArgument(f"column vector: expected a list of floats, got {t}")
    if column.null_count:
        raise InvalidArgument("column vector: has nulls")
    if pa.types.is_fixed_size_list(t):
        dim = t.list_size
    else:
        import pyarrow.compute as pc

        lengths = pc.list_value_length(column)
        dim = pc.min(lengths).as_py() if len(column) else 0
        if len(column) and pc.max(lengths).as_py() != dim:
            raise InvalidArgument("column vector: rows have different lengths")
    values = column.flatten().cast(pa.float32())
    return pa.FixedSizeListArray.from_arrays(values, dim)


_CASTS = {"id": "string", "text": "string", "metadata": "string", "ttl_seconds": "int64"}


def _normalize(pa: Any, batch: Any) -> Any:
    columns, fields = [], []
    for f, column in zip(batch.schema, batch.columns, strict=False):
        if f.name == "vector":
            column = _vector_column(pa, column)
        elif f.name in _CASTS:
            target = pa.type_for_alias(_CASTS[f.name])
            if column.type != target:
                column = column.cast(target)
        columns.append(column)
        fields.append(pa.field(f.name, column.type, nullable=f.name not in ("id", "vector")))
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))


def _batches(pa: Any, data: Any, rows: int) -> tuple[Any, Iterator[Any]]:
    """The declared schema of `data` (None if it has none) and its record batches of at most
    `rows` rows each."""
    if isinstance(data, pa.Table):
        return data.schema, iter(data.to_batches(max_chunksize=rows))
    schema = data.schema if isinstance(data, pa.RecordBatchReader) else None
    source: Iterable[Any] = [data] if isinstance(data, pa.RecordBatch) else data

    def sliced() -> Iterator[Any]:
        for item in source:
            parts = item.to_batches(max_chunksize=rows) if isinstance(item, pa.Table) else [item]
            for batch in parts:
                if not isinstance(batch, pa.RecordBatch):
                    raise InvalidArgument(
                        f"import_arrow takes a Table, a RecordBatchReader or record batches, "
                        f"got {type(batch).__name__}"
                    )
                for offset in range(0, batch.num_rows, rows):
                    yield batch.slice(offset, rows)

    return schema, sliced()


class ImportStream:
    """The Import messages of `data`: the first names the collection, each carries at most
    IMPORT_CHUNK_BYTES of the IPC stream. gRPC consumes request iterators on its own thread
    and reports their exceptions only as a cancelled call, so an error raised while encoding
    (a batch of another schema, say) is kept here for the caller to raise instead."""

    def __init__(self, collection: str, data: Any, batch_rows: int = IMPORT_BATCH_ROWS) -> None:
        self._collection = collection
        self._data = data
        self._batch_rows = max(1, batch_rows)
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[records_pb2.ImportRequest]:
        try:
            yield from self._messages()
        except BaseException as e:
            self.error = e
            raise

    def _messages(self) -> Iterator[records_pb2.ImportRequest]:
        pa = pyarrow()
        sink = _Sink()
        writer = None
        schema = None
        first = True

        def messages(data_bytes: bytes) -> Iterator[records_pb2.ImportRequest]:
            nonlocal first
            for offset in range(0, len(data_bytes), IMPORT_CHUNK_BYTES):
                yield records_pb2.ImportRequest(
                    collection=self._collection if first else "",
                    arrow_ipc=data_bytes[offset : offset + IMPORT_CHUNK_BYTES],
                )
                first = False

        declared, batches = _batches(pa, self._data, self._batch_rows)
        for batch in batches:
            batch = _normalize(pa, batch)
            if writer is None:
                schema = batch.schema
                writer = pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), schema)
            elif not batch.schema.equals(schema):
                raise InvalidArgument(
                    f"record batches differ in schema: {batch.schema} vs {schema}"
                )
            writer.write_batch(batch)
            yield from messages(sink.take())
        if writer is None:
            if declared is None:
                raise InvalidArgument("nothing to import: no record batches and no schema")
            empty = _normalize(pa, pa.RecordBatch.from_pylist([], schema=declared))
            writer = pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), empty.schema)
        writer.close()
        yield from messages(sink.take())

    def failure(self, error: Exception) -> BaseException:
        """What to raise for the failed call: the encoding error if there was one."""
        if self.error is not None:
            return self.error
        if isinstance(error, grpc.RpcError):
            return from_rpc_error(error)
        return error


class _ResponseStream:
    """A read-only file over the Export response stream, for pyarrow's IPC reader; gRPC errors
    surface as the SDK's typed errors."""

    def __init__(self, responses: Iterator[records_pb2.ExportResponse]) -> None:
        self._responses = responses
        self._buffer = bytearray()
        self._done = False
        self.closed = False

    def readable(self) -> bool:
        return True

    def _fill(self, wanted: int) -> None:
        while not self._done and (wanted < 0 or len(self._buffer) < wanted):
            try:
                self._buffer += next(self._responses).arrow_ipc
            except StopIteration:
                self._done = True
            except grpc.RpcError as e:
                raise from_rpc_error(e) from e

    def read(self, size: int = -1) -> bytes:
        self._fill(size)
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:size])
            del self._buffer[:size]
        return out

    def close(self) -> None:
        self.closed = True
        cancel = getattr(self._responses, "cancel", None)
        if cancel is not None:
            cancel()


def open_export(responses: Iterator[records_pb2.ExportResponse]) -> pa.RecordBatchReader:
    pa = pyarrow()
    stream = _ResponseStream(responses)
    try:
        return pa.ipc.open_stream(pa.PythonFile(stream, mode="r"))
    except BulkheadError:
        raise
    except pa.ArrowInvalid as e:
        raise InvalidArgument(f"the export is not a valid Arrow stream: {e}") from e


def open_export_bytes(data: bytes) -> pa.RecordBatchReader:
    pa = pyarrow()
    return pa.ipc.open_stream(pa.py_buffer(data))
