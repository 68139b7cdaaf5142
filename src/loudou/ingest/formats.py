"""Reading import files in batches of bounded size, whatever their format.

Every reader yields :class:`RawBatch` objects of at most ``batch_rows`` rows, so a file larger than
memory imports in bounded memory. Each row keeps a ``line`` for the rejects file:

- CSV / TSV: the record number counting the header as line 1 (data starts at line 2); it is the line
  in the file unless blank lines or values spanning several lines come before.
- JSON Lines: the line in the file (blank lines counted).
- Parquet: the 1-based row number.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from loudou.errors import ImportError_
from loudou.ingest.columns import ArrowColumn, Column, ObjectColumn, TextColumn

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_FORMAT_NAMES = {
    "csv": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "parquet": "parquet",
    "pq": "parquet",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
}
_GZ_SUFFIXES = (".gz", ".gzip")
_NOT_UTF8 = "is not UTF-8 text; re-save it as UTF-8 (for example: iconv -f GBK -t UTF-8)"


@dataclass
class Broken:
    """A row the reader could not split into columns (wrong field count, invalid JSON)."""

    line: int
    reason: str
    values: list[str]


@dataclass
class RawBatch:
    """Up to ``batch_rows`` rows as the file gave them, before any checking."""

    columns: dict[str, Column]
    lines: np.ndarray
    header: list[str]  # columns of the rejects file after line and reason
    records: list[str] | None = None  # the original text of each row (JSON Lines)
    broken: list[Broken] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return len(self.lines)

    def originals(self, idx: np.ndarray) -> list[list[str]]:
        """The rows at ``idx`` as written, one list of cells per row, for the rejects file."""
        if self.records is not None:
            return [[self.records[i]] for i in idx.tolist()]
        cols = [self.columns[name].take(idx).texts() for name in self.header]
        return [list(row) for row in zip(*cols, strict=True)] if cols else [[] for _ in idx]


class Meter:
    """Bytes read from disk so far (compressed bytes for .gz), for the progress bar; and the
    file's number of rows when its format says (Parquet)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.rows: int | None = None


class _CountingReader(io.RawIOBase):
    def __init__(self, f: IO[bytes], meter: Meter) -> None:
        self._f = f
        self._meter = meter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._f.readinto(buffer)  # type: ignore[attr-defined]
        self._meter.done += n or 0
        return n or 0

    def close(self) -> None:
        self._f.close()
        super().close()


def detect_format(path: Path, fmt: str | None) -> str:
    """The format to read ``path`` as: the one given, else the one its name says."""
    if fmt:
        key = fmt.strip().lower().lstrip(".")
        for suffix in _GZ_SUFFIXES:
            key = key.removesuffix(suffix)
        if key in _FORMAT_NAMES:
            return _FORMAT_NAMES[key]
        raise ImportError_(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", "format")
    name = path.name.lower()
    for suffix in _GZ_SUFFIXES:
        name = name.removesuffix(suffix)
    ext = Path(name).suffix.lstrip(".")
    if ext in _FORMAT_NAMES:
        return _FORMAT_NAMES[ext]
    if ext in ("xlsx", "xls"):
        raise ImportError_(
            f"{path}: Excel files are not read; save the sheet as CSV (UTF-8)", "format"
        )
    raise ImportError_(
        f"cannot tell the format of {path} from its name; give the format ({', '.join(FORMATS)})",
        "format",
    )


def is_gzip(path: Path) -> bool:
    """Gzip is recognised by its magic bytes, so a misnamed file still reads."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_batches(path: Path, fmt: str, batch_rows: int, meter: Meter) -> Iterator[RawBatch]:
    """Batches of at most ``batch_rows`` rows from ``path``."""
    gz = is_gzip(path)
    if fmt in ("csv", "tsv"):
        return _read_delimited(path, gz, "," if fmt == "csv" else "\t", batch_rows, meter)
    if fmt == "parquet":
        return _read_parquet(path, gz, batch_rows, meter)
    return _read_jsonl(path, gz, batch_rows, meter)


@contextmanager
def _open_binary(path: Path, gz: bool, meter: Meter) -> Iterator[IO[bytes]]:
    with ExitStack() as stack:
        raw = stack.enter_context(open(path, "rb"))
        counted: IO[bytes] = io.BufferedReader(_CountingReader(raw, meter), 1 << 20)
        stack.callback(counted.close)
        if gz:
            counted = cast(
                IO[bytes], stack.enter_context(gzip.GzipFile(fileobj=counted, mode="rb"))
            )
        yield counted


# -- CSV / TSV -------------------------------------------------------------------------------------
def unique_names(names: list[str]) -> list[str]:
    """Column names made usable: blanks get a position name, repeats a suffix."""
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        base = name.strip() or f"column_{i + 1}"
        candidate, k = base, 2
        while candidate in seen:
            candidate, k = f"{base}_{k}", k + 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _read_header(path: Path, gz: bool, delimiter: str) -> list[str]:
    with _open_binary(path, gz, Meter(0)) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        try:
            header = next(csv.reader(text, delimiter=delimiter), None)
        except UnicodeDecodeError:
            raise ImportError_(f"{path} {_NOT_UTF8}") from None
    if not header or not any(h.strip() for h in header):
        raise ImportError_(
            f"{path} is empty or its first line is blank; the first line must name the columns"
        )
    return unique_names(header)


def _block_size(batch_rows: int) -> int:
    return int(min(max(batch_rows * 256, 1 << 20), 64 << 20))


def _text_batch(rb: pa.RecordBatch, names: list[str], first_line: int) -> RawBatch:
    columns: dict[str, Column] = {n: TextColumn(rb.column(i)) for i, n in enumerate(names)}
    lines = np.arange(first_line, first_line + rb.num_rows, dtype=np.int64)
    return RawBatch(columns=columns, lines=lines, header=names)


def _read_delimited(
    path: Path, gz: bool, delimiter: str, batch_rows: int, meter: Meter
) -> Iterator[RawBatch]:
    """Arrow's CSV reader for speed. Arrow cannot say where a row with the wrong number of fields
    was, so from the first batch holding one the rest is read with Python's csv module, which can."""
    names = _read_header(path, gz, delimiter)
    malformed: list[object] = []

    def skip_malformed(row: object) -> str:
        malformed.append(row)
        return "skip"

    done = 0
    with _open_binary(path, False, meter) as binary:
        stream: Any = pa.PythonFile(binary, mode="r")
        if gz:
            stream = pa.CompressedInputStream(stream, "gzip")
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=_block_size(batch_rows)
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, invalid_row_handler=skip_malformed
            ),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
        try:
            for rb in reader:
                if malformed:
                    break
                for start in range(0, rb.num_rows, batch_rows):
                    piece = rb.slice(start, batch_rows)
                    yield _text_batch(piece, names, done + 2)
                    done += piece.num_rows
            else:
                return
        finally:
            reader.close()
    meter.done = 0
    yield from _read_delimited_slowly(path, gz, delimiter, names, done, batch_rows, meter)


def _fit(row: list[str], n: int, delimiter: str) -> list[str]:
    """A row with the wrong field count laid out under the header; extra fields join the last."""
    if len(row) <= n:
        return row + [""] * (n - len(row))
    return row[: n - 1] + [delimiter.join(row[n - 1 :])]


def _read_delimited_slowly(
    path: Path, gz: bool, delimiter: str, names: list[str], skip: int, batch_rows: int, meter: Meter
) -> Iterator[RawBatch]:
    n = len(names)
    with _open_binary(path, gz, meter) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        rows = csv.reader(text, delimiter=delimiter)
        next(rows, None)
        cells: list[list[str]] = []
        lines: list[int] = []
        broken: list[Broken] = []
        record = 0
        for row in rows:
            if not row:  # blank line: Arrow skips these too, uncounted
                continue
            record += 1
            if record <= skip:
                continue
            if len(row) == n:
                cells.append(row)
                lines.append(record + 1)
            else:
                reason = f"expected {n} fields, found {len(row)}"
                broken.append(Broken(record + 1, reason, _fit(row, n, delimiter)))
            if len(lines) + len(broken) >= batch_rows:
                yield _rows_batch(cells, lines, broken, names)
                cells, lines, broken = [], [], []
        if lines or broken:
            yield _rows_batch(cells, lines, broken, names)


def _rows_batch(
    cells: list[list[str]], lines: list[int], broken: list[Broken], names: list[str]
) -> RawBatch:
    columns: dict[str, Column] = {
        name: TextColumn(pa.array([row[i] for row in cells], pa.string()))
        for i, name in enumerate(names)
    }
    return RawBatch(
        columns=columns, lines=np.array(lines, dtype=np.int64), header=names, broken=broken
    )


# -- JSON Lines ------------------------------------------------------------------------------------
def _read_jsonl(path: Path, gz: bool, batch_rows: int, meter: Meter) -> Iterator[RawBatch]:
    objects: list[dict[str, Any]] = []
    lines: list[int] = []
    records: list[str] = []
    broken: list[Broken] = []
    seen_any = False
    with _open_binary(path, gz, meter) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8").strip().lstrip("\ufeff")
            except UnicodeDecodeError:
                broken.append(
                    Broken(lineno, "line is not UTF-8 text", [raw.decode("utf-8", "replace")])
                )
                continue
            if not text:
                continue
            if not seen_any and text.startswith("["):
                raise ImportError_(
                    f"{path} holds a JSON array, not JSON Lines (one object per line); "
                    f"convert it with: jq -c '.[]' {path.name} > {path.stem}.jsonl"
                )
            seen_any = True
            try:
                obj = json.loads(text)
            except ValueError as e:
                broken.append(Broken(lineno, f"invalid JSON: {getattr(e, 'msg', e)}", [text]))
            else:
                if isinstance(obj, dict):
                    objects.append(obj)
                    lines.append(lineno)
                    records.append(text)
                else:
                    broken.append(Broken(lineno, "line is not a JSON object", [text]))
            if len(lines) + len(broken) >= batch_rows:
                yield _json_batch(objects, lines, records, broken)
                objects, lines, records, broken = [], [], [], []
    if lines or broken:
        yield _json_batch(objects, lines, records, broken)


def _json_batch(
    objects: list[dict[str, Any]], lines: list[int], records: list[str], broken: list[Broken]
) -> RawBatch:
    keys = dict.fromkeys(k for obj in objects for k in obj)
    columns: dict[str, Column] = {k: ObjectColumn([obj.get(k) for obj in objects]) for k in keys}
    return RawBatch(
        columns=columns,
        lines=np.array(lines, dtype=np.int64),
        header=["record"],
        records=records,
        broken=broken,
    )


# -- Parquet ---------------------------------------------------------------------------------------
def _read_parquet(path: Path, gz: bool, batch_rows: int, meter: Meter) -> Iterator[RawBatch]:
    with ExitStack() as stack:
        source = path
        if gz:  # Parquet needs random access: unpack to a temporary file first
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="loudou-"))
            source = Path(folder) / "data.parquet"
            with gzip.open(path, "rb") as src, open(source, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        try:
            # pre_buffer: each row group's column chunks are read in a few large reads (coalesced)
            # instead of page by page through a buffered stream: much less CPU to read a file.
            meta = pq.read_metadata(source)
            encoded = _small_dictionaries(meta) or None
            pf = pq.ParquetFile(source, metadata=meta, read_dictionary=encoded, pre_buffer=True)
        except (pa.ArrowInvalid, OSError) as e:
            raise ImportError_(
                f"{path} is not a readable Parquet file: {str(e).splitlines()[0]}"
            ) from None
        stack.callback(pf.close)
        names = unique_names(pf.schema_arrow.names)
        total = max(pf.metadata.num_rows, 1)
        meter.rows = pf.metadata.num_rows
        done = 0
        for rb in pf.iter_batches(batch_size=batch_rows):
            columns: dict[str, Column] = {n: ArrowColumn(rb.column(i)) for i, n in enumerate(names)}
            lines = np.arange(done + 1, done + 1 + rb.num_rows, dtype=np.int64)
            done += rb.num_rows
            meter.done = meter.total * done // total
            yield RawBatch(columns=columns, lines=lines, header=names)


def _small_dictionaries(meta: pq.FileMetaData) -> list[str]:
    """Top-level text columns that every row group stores dictionary-encoded in at most two bytes
    a row, dictionary included (event names, channels, plans; not ids). Read as dictionaries,
    they cost much less to read, are checked once per distinct value, and reach DuckDB as they
    are. A column that outgrew its dictionary part way (ids) stores its values plainly, at four
    bytes a row or more, and is read as text."""
    schema = meta.schema
    names: list[str] = []
    for i in range(meta.num_columns):
        col = schema.column(i)
        if col.physical_type != "BYTE_ARRAY" or col.logical_type.type != "STRING":
            continue
        if "." in col.path or col.max_repetition_level:
            continue
        chunks = [meta.row_group(g).column(i) for g in range(meta.num_row_groups)]
        if chunks and all(
            c.has_dictionary_page and c.total_uncompressed_size <= 2 * max(c.num_values, 1)
            for c in chunks
        ):
            names.append(col.path)
    return names
