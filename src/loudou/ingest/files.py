"""Import a file of events, customers or ad spend into a store.

The importer streams: it reads a batch of rows, checks it, writes the good rows and the rejects, and
moves on, so memory stays bounded whatever the file size. Bad rows never stop an import; they go to
a rejects CSV (``line, reason, <original values>``) and the good rows load. Only a file that cannot
be read at all, or that has no usable row, raises :class:`~loudou.errors.ImportError_`.

Re-importing a file adds nothing: events keep the file's ``event_id`` or get a stable hash of the row
(see :mod:`loudou.ingest.tables`), customers merge their traits (latest value wins), and spend rows
replace the stored row with the same day, channel and campaign.

Formats, line numbers in the rejects file and time parsing are described in
:mod:`loudou.ingest.formats` and :mod:`loudou.ingest.timestamps`.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pyarrow as pa

from loudou.backends.base import SPEND_SCHEMA, PreparedWrites, Store, WriteResult
from loudou.errors import ImportError_
from loudou.ingest.formats import Meter, RawBatch, detect_format, read_batches
from loudou.ingest.tables import BUILDERS, KINDS, KindSpec, check_mapping, resolve
from loudou.ingest.timestamps import TimeZone, resolve_tz

Kind = Literal["events", "customers", "spend"]


@dataclass
class ImportSummary:
    """What one import did. ``loaded + duplicates + rejected`` is the number of data rows read.

    ``duplicates`` counts rows the store already had or that repeat a row of the same file; for
    customers and spend it counts rows that updated an existing customer or spend row.
    """

    kind: str
    loaded: int
    duplicates: int
    rejected: int
    rejects_path: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_file(
    store: Store,
    path: str | Path,
    kind: Kind,
    *,
    format: str | None = None,
    mapping: dict[str, str] | None = None,
    tz: str = "UTC",
    rejects_path: str | Path | None = None,
    batch_rows: int = 122_880,  # one DuckDB row group: a clean file's rows are not re-chunked
    write_rows: int = 491_520,  # four DuckDB row groups
    progress: bool = False,
) -> ImportSummary:
    """Import ``path`` as ``kind`` ("events", "customers" or "spend") into ``store``.

    ``format`` is csv, tsv, parquet or jsonl (optionally gzip-compressed); None reads it from the
    name (.csv, .tsv, .parquet/.pq, .jsonl/.ndjson/.json, each optionally .gz). ``mapping`` maps
    target fields to file columns, e.g. ``{"customer_id": "user_id", "ts": "timestamp"}``. Naive
    times are read in ``tz``; zoned times and epoch numbers (s / ms / us by magnitude) are absolute.

    Without a mapping, columns named like the fields are used, then common aliases (user_id,
    userId, distinct_id -> customer_id; timestamp, time, event_time -> ts; event_name, action ->
    event); utm_source / utm_campaign fill channel / campaign when those columns are absent. Other
    columns become event properties or customer traits (empty cells left out).

    Rejected rows go to ``rejects_path`` (default ``<file>.rejects.csv``, created only when there
    are rejects) with columns ``line, reason`` and the row's original values. ``line`` counts the
    CSV/TSV header as line 1 (data starts at line 2); for JSON Lines it is the line in the file,
    for Parquet the row number. ``progress`` shows a progress bar by bytes on stderr.

    Files are read ``batch_rows`` at a time; good rows are written ``write_rows`` at a time (one
    transaction each), as each write has a fixed cost (a commit, the customers' first/last seen).
    One write runs in a background thread while the next rows are read and checked (both release
    the GIL for most of their work), so memory holds at most about two writes' worth of rows. The
    last write has nothing to overlap with: writes of about half a million rows imported faster
    than writes of a million, and with less memory; a quarter million was slower again
    (docs/performance.md)."""
    source = Path(path)
    spec = _spec(kind)
    zone = resolve_tz(tz)
    fmt = detect_format(source, format)
    _check_readable(source)
    fields = dict(mapping or {})
    check_mapping(spec, fields)
    if batch_rows < 1:
        raise ImportError_("must be at least 1", "batch_rows")
    if write_rows < 1:
        raise ImportError_("must be at least 1", "write_rows")
    rejects = RejectsFile(
        Path(rejects_path) if rejects_path else source.with_name(source.name + ".rejects.csv")
    )
    meter = Meter(source.stat().st_size)
    job = _Import(store, spec, zone, fields, rejects, source, meter, batch_rows, write_rows)
    try:
        with _progress_bar(progress, meter, source) as tick:
            for batch in _guarded(read_batches(source, fmt, batch_rows, meter), job):
                job.add(batch)
                tick()
            job.finish()
    finally:
        job.close()
        rejects.close()
    return job.summary()


def _spec(kind: str) -> KindSpec:
    if kind not in KINDS:
        raise ImportError_(f"unknown import kind {kind!r}; use one of {', '.join(KINDS)}", "kind")
    return KINDS[kind]


def _check_readable(path: Path) -> None:
    if path.is_dir():
        raise ImportError_(f"{path} is a folder, not a file")
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise ImportError_(f"{path}: no such file") from None
    except OSError as e:
        raise ImportError_(f"cannot read {path}: {e.strerror or e}") from None


class RejectsFile:
    """The rejects CSV, opened on the first reject so clean imports leave no file behind."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self.first: tuple[int, str] | None = None
        self._file: IO[str] | None = None
        self._writer: Any = None

    def write(self, header: list[str], rows: Iterable[tuple[int, str, list[str]]]) -> None:
        for line, reason, values in rows:
            if self._writer is None:
                self._open(header)
            self._writer.writerow([line, reason, *values])
            self.count += 1
            if self.first is None:
                self.first = (line, reason)

    def _open(self, header: list[str]) -> None:
        try:
            self._file = open(self.path, "w", newline="", encoding="utf-8")
        except OSError as e:
            raise ImportError_(
                f"cannot write the rejects file {self.path}: {e.strerror or e}", "rejects_path"
            ) from None
        self._writer = csv.writer(self._file)
        self._writer.writerow(["line", "reason", *header])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Import:
    """State of one import: counts, the rejects file, and spend totals until the end."""

    def __init__(
        self,
        store: Store,
        spec: KindSpec,
        tz: TimeZone,
        mapping: dict[str, str],
        rejects: RejectsFile,
        path: Path,
        meter: Meter,
        batch_rows: int,
        write_rows: int,
    ) -> None:
        self.store, self.spec, self.tz, self.mapping = store, spec, tz, mapping
        self.rejects, self.path, self.meter, self.batch_rows = rejects, path, meter, batch_rows
        self.write_rows = write_rows
        self.pending: list[pa.Table] = []  # good rows not yet written
        self.pending_rows = 0
        self._writer: ThreadPoolExecutor | None = None
        self._writing: Future[WriteResult] | None = None
        self.rows = self.loaded = self.duplicates = 0
        self.resolved = False
        self.spend = _SpendTotals() if spec.kind == "spend" else None

    def add(self, batch: RawBatch) -> None:
        self.rows += batch.num_rows + len(batch.broken)
        entries = [(b.line, b.reason, b.values) for b in batch.broken]
        if batch.num_rows:
            res = resolve(
                list(batch.columns),
                self.spec,
                self.mapping,
                strict=not self.resolved,
                where=str(self.path),
            )
            self.resolved = True
            built = BUILDERS[self.spec.kind](batch, res, self.tz)
            if built.rejects:
                idx = sorted(built.rejects)
                originals = batch.originals(np.array(idx, dtype=np.int64))
                lines = batch.lines[idx].tolist()
                for i, line, values in zip(idx, lines, originals, strict=True):
                    entries.append((line, "; ".join(built.rejects[i]), values))
            self._write(built.table)
        entries.sort(key=lambda e: e[0])
        self.rejects.write(batch.header, entries)

    def _write(self, table: pa.Table) -> None:
        if self.spend is not None:
            self.spend.add(table)
            return
        if table.num_rows == 0:
            return
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.pending_rows >= self.write_rows:
            self.flush()

    def flush(self, *, wait: bool = False) -> None:
        """Start writing the good rows gathered so far, once the previous write is done."""
        if self.pending:
            table = pa.concat_tables(self.pending)
            self.pending, self.pending_rows = [], 0
            if self.spec.kind == "events":
                # worked out here, while the previous write runs (it has more to do)
                # (ranges only while every row so far was new: a re-import would not use them)
                store = self.store
                write: Callable[[], WriteResult] = partial(store.insert_events, table)
                if isinstance(store, PreparedWrites):
                    more, ranges = self._rows_to_come(), self.duplicates == 0
                    prepared = store.prepare_events(table, more, ranges)
                    write = partial(store.insert_prepared, table, prepared)
            else:
                write = partial(self.store.upsert_customers, table)
            self._collect()
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="loudou-import")
            self._writing = self._writer.submit(write)
        if wait:
            self._collect()

    def _rows_to_come(self) -> int:
        """Rows the file holds after those read so far, when its format says (Parquet)."""
        return max(self.meter.rows - self.rows, 0) if self.meter.rows is not None else 0

    def _collect(self) -> None:
        """Wait for the write in flight and count what it did (its error is raised here)."""
        if self._writing is None:
            return
        writing, self._writing = self._writing, None
        result = writing.result()
        self.loaded += result.inserted
        self.duplicates += result.duplicates

    def close(self) -> None:
        """No write may outlive the import (the caller closes the store next)."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def finish(self) -> None:
        """Write what is pending. Spend is summed per day, channel and campaign over the whole
        file, then written, so the stored amount does not depend on where batches happen to split."""
        self.flush(wait=True)
        if self.spend is None:
            return
        for table in self.spend.tables(self.batch_rows):
            self.loaded += self.store.insert_spend(table).inserted
        self.duplicates = self.spend.rows - self.loaded

    def summary(self) -> ImportSummary:
        rejected = self.rejects.count
        if self.rows == 0:
            raise ImportError_(f"{self.path} has no data rows")
        if self.loaded + self.duplicates == 0:
            line, reason = self.rejects.first or (0, "")
            raise ImportError_(
                f"no usable rows in {self.path}: all {rejected} rows were rejected "
                f"(first: line {line}: {reason}); details in {self.rejects.path}"
            )
        return ImportSummary(
            kind=self.spec.kind,
            loaded=self.loaded,
            duplicates=self.duplicates,
            rejected=rejected,
            rejects_path=str(self.rejects.path) if rejected else None,
        )


class _SpendTotals:
    """Good spend rows summed by (day, channel, campaign); bounded by distinct keys, not rows."""

    def __init__(self) -> None:
        self.rows = 0
        self.totals: dict[tuple[Any, str, str], list[Any]] = {}

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        cols = [table.column(name).to_pylist() for name in SPEND_SCHEMA.names]
        for day, channel, campaign, amount, currency in zip(*cols, strict=True):
            entry = self.totals.get((day, channel, campaign))
            if entry is None:
                self.totals[(day, channel, campaign)] = [amount, currency]
            else:
                entry[0] += amount
                entry[1] = currency

    def tables(self, size: int) -> Iterator[pa.Table]:
        items = list(self.totals.items())
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            yield pa.table(
                {
                    "day": [k[0] for k, _ in chunk],
                    "channel": [k[1] for k, _ in chunk],
                    "campaign": [k[2] for k, _ in chunk],
                    "amount": [v[0] for _, v in chunk],
                    "currency": [v[1] for _, v in chunk],
                },
                schema=SPEND_SCHEMA,
            )


_READ_ERRORS = (OSError, EOFError, zlib.error, csv.Error, UnicodeDecodeError, pa.ArrowException)


def _guarded(batches: Iterator[RawBatch], job: _Import) -> Iterator[RawBatch]:
    """Reading errors become one readable ImportError_; errors from the store are not ours to hide."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except ImportError_:
            raise
        except _READ_ERRORS as e:
            job.flush(wait=True)  # the good rows read before the problem are kept
            raise ImportError_(_read_failure(job, e)) from None
        yield batch


def _read_failure(job: _Import, error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    message = f"cannot read {job.path}: {text}"
    if isinstance(error, UnicodeDecodeError) or "UTF8" in text or "UTF-8" in text:
        message += "; the file must be UTF-8 text (for example: iconv -f GBK -t UTF-8)"
    written = job.loaded + job.duplicates
    if written:
        message += (
            f"; {written} rows before the problem were imported, and importing the fixed file "
            "again will not add them twice"
        )
    return message


@contextmanager
def _progress_bar(enabled: bool, meter: Meter, path: Path) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(f"importing {path.name}", total=meter.total)
        yield lambda: bar.update(task, completed=min(meter.done, meter.total))
        bar.update(task, completed=meter.total)
