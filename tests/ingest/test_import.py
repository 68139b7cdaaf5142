"""File import: formats, column mapping, times, rejects, idempotency, streaming (real DuckDB)."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loudou
from loudou.errors import ImportError_, StoreError
from loudou.ingest import formats
from loudou.ingest.columns import ArrowColumn, TextColumn, clean_strings, dumps
from loudou.ingest.files import ImportSummary, import_file
from loudou.ingest.formats import RawBatch
from loudou.ingest.tables import Resolution, objects
from loudou.ingest.timestamps import BAD, MISSING, OK, parse_times, resolve_tz


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    db = loudou.connect(tmp_path / "t.duckdb")
    yield db
    db.close()


def write_csv(path: Path, rows: list[list[Any]], delimiter: str = ",") -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def write_jsonl(path: Path, objects: list[Any]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for obj in objects:
            f.write(
                (obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, default=str))
                + "\n"
            )
    return path


def write_parquet(path: Path, table: pa.Table) -> Path:
    if path.name.endswith(".gz"):
        raw = path.with_name(path.name.removesuffix(".gz"))
        pq.write_table(table, raw)
        path.write_bytes(gzip.compress(raw.read_bytes()))
        raw.unlink()
    else:
        pq.write_table(table, path)
    return path


def events(store: Any) -> list[dict[str, Any]]:
    """Stored events, properties decoded, sorted by customer and time."""
    cur = store.con.execute("SELECT * FROM events ORDER BY customer_id, ts, event")
    names = [d[0] for d in cur.description]
    out = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for row in out:
        row["properties"] = json.loads(row["properties"])
    return out


def rejects(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


HEADER = ["customer_id", "event", "ts", "plan", "price", "ratio", "note"]
ROWS = [
    ["alice", "signup", "2025-01-02 10:00:00", "pro", "10", "1.5", "你好"],
    ["alice", "purchase", "2025-01-03 11:30:00", "pro", "25", "0.25", ""],
    ["bob", "signup", "2025-01-02 08:00:00", "free", "0", "2.0", "x"],
]


def sample_table() -> pa.Table:
    """ROWS typed as Parquet would type them."""
    return pa.table(
        {
            "customer_id": ["alice", "alice", "bob"],
            "event": ["signup", "purchase", "signup"],
            "ts": pa.array(
                [datetime(2025, 1, 2, 10), datetime(2025, 1, 3, 11, 30), datetime(2025, 1, 2, 8)],
                pa.timestamp("us"),
            ),
            "plan": ["pro", "pro", "free"],
            "price": [10, 25, 0],
            "ratio": [1.5, 0.25, 2.0],
            "note": ["你好", None, "x"],
        }
    )


def sample_file(tmp_path: Path, name: str) -> Path:
    """ROWS written in the format (and compression) ``name`` says."""
    path = tmp_path / name
    base = name.removesuffix(".gz")
    if base.endswith(".csv"):
        return write_csv(path, [HEADER, *ROWS])
    if base.endswith(".tsv"):
        return write_csv(path, [HEADER, *ROWS], delimiter="\t")
    if base.endswith((".parquet", ".pq")):
        return write_parquet(path, sample_table())
    return write_jsonl(path, sample_table().to_pylist())


# -- formats ----------------------------------------------------------------------------------------
FORMAT_NAMES = [
    "e.csv",
    "e.csv.gz",
    "e.tsv",
    "e.tsv.gz",
    "e.parquet",
    "e.pq",
    "e.parquet.gz",
    "e.jsonl",
    "e.jsonl.gz",
    "e.ndjson",
    "e.json",
]


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_each_format_loads_the_same_events(store: Any, tmp_path: Path, name: str) -> None:
    summary = import_file(store, sample_file(tmp_path, name), "events", tz="Asia/Shanghai")
    assert summary == ImportSummary("events", loaded=3, duplicates=0, rejected=0, rejects_path=None)
    rows = events(store)
    assert [(r["customer_id"], r["event"], r["ts"]) for r in rows] == [
        ("alice", "signup", datetime(2025, 1, 2, 2)),
        ("alice", "purchase", datetime(2025, 1, 3, 3, 30)),
        ("bob", "signup", datetime(2025, 1, 2, 0)),
    ]
    assert rows[0]["properties"] == {"plan": "pro", "price": 10, "ratio": 1.5, "note": "你好"}
    assert rows[1]["properties"] == {
        "plan": "pro",
        "price": 25,
        "ratio": 0.25,
    }  # empty note left out
    assert not (tmp_path / f"{name}.rejects.csv").exists()


def test_generated_event_ids_are_the_same_across_formats(tmp_path: Path) -> None:
    ids = []
    for name in ("e.csv", "e.parquet", "e.jsonl.gz"):
        with loudou.connect(tmp_path / f"{name}.duckdb") as db:
            import_file(db, sample_file(tmp_path, name), "events")
            ids.append(
                db.con.execute("SELECT list(event_id ORDER BY event_id) FROM events").fetchone()[0]
            )
    assert ids[0] == ids[1] == ids[2]
    assert len(set(ids[0])) == 3


def test_importing_the_csv_then_the_parquet_adds_nothing(store: Any, tmp_path: Path) -> None:
    import_file(store, sample_file(tmp_path, "e.csv"), "events")
    again = import_file(store, sample_file(tmp_path, "e.parquet"), "events")
    assert (again.loaded, again.duplicates) == (0, 3)


def test_format_argument_overrides_the_name(store: Any, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "export.txt", [HEADER, *ROWS], delimiter="\t")
    assert import_file(store, path, "events", format="tsv").loaded == 3


def test_gzip_is_recognised_by_content_not_only_name(store: Any, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(gzip.compress(sample_file(tmp_path, "plain.csv").read_bytes()))
    assert import_file(store, path, "events").loaded == 3


def test_utf8_bom_and_crlf_are_read(store: Any, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    text = "\r\n".join(",".join(r) for r in [HEADER, *ROWS]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert import_file(store, path, "events").loaded == 3
    assert events(store)[0]["customer_id"] == "alice"


# -- mapping and aliases ----------------------------------------------------------------------------
def test_mapping_renames_columns_and_the_rest_become_properties(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "m.csv",
        [
            ["uid", "what", "when", "sess", "city"],
            ["u1", "view", "2025-01-01T00:00:00Z", "s1", "Beijing"],
        ],
    )
    mapping = {"customer_id": "uid", "event": "what", "ts": "when", "session_id": "sess"}
    import_file(store, path, "events", mapping=mapping)
    [row] = events(store)
    assert (row["customer_id"], row["event"], row["session_id"]) == ("u1", "view", "s1")
    assert row["ts"] == datetime(2025, 1, 1)
    assert row["properties"] == {"city": "Beijing"}


@pytest.mark.parametrize(
    ("customer", "event", "ts"),
    [
        ("user_id", "event_name", "timestamp"),
        ("userId", "action", "time"),
        ("distinct_id", "event", "event_time"),
        ("User ID", "Event Name", "Timestamp"),
    ],
)
def test_common_aliases_are_recognised(
    store: Any, tmp_path: Path, customer: str, event: str, ts: str
) -> None:
    path = write_csv(
        tmp_path / "a.csv", [[customer, event, ts, "x"], ["u1", "view", "2025-01-01", "1"]]
    )
    import_file(store, path, "events")
    [row] = events(store)
    assert (row["customer_id"], row["event"], row["ts"]) == ("u1", "view", datetime(2025, 1, 1))
    assert row["properties"] == {"x": 1}


def test_the_target_name_wins_over_an_alias(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "a.csv",
        [["user_id", "customer_id", "event", "ts"], ["anon-1", "c1", "view", "2025-01-01"]],
    )
    import_file(store, path, "events")
    [row] = events(store)
    assert row["customer_id"] == "c1"
    assert row["properties"] == {"user_id": "anon-1"}


def test_promoted_columns_and_utm_fallbacks(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [
            ["customer_id", "event", "ts", "session_id", "utm_source", "utm_campaign", "revenue"],
            ["u1", "buy", "2025-01-01", "s9", "google", "spring", "99.5"],
        ],
    )
    import_file(store, path, "events")
    [row] = events(store)
    assert (row["session_id"], row["channel"], row["campaign"], row["revenue"]) == (
        "s9",
        "google",
        "spring",
        99.5,
    )
    assert row["properties"] == {}


def test_utm_source_stays_a_property_when_channel_is_given(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [
            ["customer_id", "event", "ts", "channel", "utm_source"],
            ["u1", "buy", "2025-01-01", "ads", "google"],
        ],
    )
    import_file(store, path, "events")
    [row] = events(store)
    assert row["channel"] == "ads"
    assert row["properties"] == {"utm_source": "google"}


def test_properties_keep_types_and_skip_empty_values(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        [
            ["customer_id", "event", "ts", "n", "f", "flag", "zip", "phone", "blank", "text"],
            [
                "u1",
                "view",
                "2025-01-01",
                "42",
                "-1.25",
                "true",
                "007",
                "13800138000123456",
                " ",
                "上海 ",
            ],
        ],
    )
    import_file(store, path, "events")
    props = events(store)[0]["properties"]
    assert props == {
        "n": 42,
        "f": -1.25,
        "flag": True,
        "zip": "007",
        "phone": "13800138000123456",
        "text": "上海",
    }


def test_jsonl_nested_properties_are_merged_and_values_keep_json_types(
    store: Any, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "segment.jsonl",
        [
            {
                "messageId": "m-1",
                "userId": "u1",
                "event": "Order Completed",
                "timestamp": "2025-01-01T12:00:00.123Z",
                "properties": {"total": 30, "coupon": None, "items": [{"sku": "a"}], "code": "30"},
                "context": {"ip": "1.2.3.4"},
                "empty": "",
            }
        ],
    )
    import_file(store, path, "events")
    [row] = events(store)
    assert row["event_id"] == "m-1"
    assert row["ts"] == datetime(2025, 1, 1, 12, 0, 0, 123000)
    assert row["properties"] == {
        "total": 30,
        "items": [{"sku": "a"}],
        "code": "30",
        "context": {"ip": "1.2.3.4"},
    }


def test_jsonl_keys_may_change_type_between_lines(store: Any, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"customer_id": 1, "event": "a", "ts": 1735689600, "v": "3"},
            {"customer_id": "2", "event": "a", "ts": "2025-01-01T00:00:00Z", "v": 3, "extra": True},
        ],
    )
    assert import_file(store, path, "events").loaded == 2
    rows = events(store)
    assert [r["customer_id"] for r in rows] == ["1", "2"]
    assert [r["ts"] for r in rows] == [datetime(2025, 1, 1)] * 2
    assert [r["properties"] for r in rows] == [{"v": "3"}, {"v": 3, "extra": True}]


# -- times ------------------------------------------------------------------------------------------
TIMES = [
    ("2025-01-02 10:00:00", datetime(2025, 1, 2, 2)),  # naive: read in Asia/Shanghai
    ("2025-01-02T10:00:00.250", datetime(2025, 1, 2, 2, 0, 0, 250000)),
    ("2025-01-02", datetime(2025, 1, 1, 16)),
    ("2025/1/2 10:00", datetime(2025, 1, 2, 2)),  # the slow path, same rules
    ("2025-01-02T10:00:00Z", datetime(2025, 1, 2, 10)),
    ("2025-01-02T10:00:00+08:00", datetime(2025, 1, 2, 2)),
    ("2025-01-02 10:00:00-0500", datetime(2025, 1, 2, 15)),
    ("2025-01-02T10:00:00.123456789Z", datetime(2025, 1, 2, 10, 0, 0, 123456)),
    ("2025-01-02 10:00:00 UTC", datetime(2025, 1, 2, 10)),
    ("1735812000", datetime(2025, 1, 2, 10)),  # epoch seconds are UTC whatever --tz says
    ("1735812000.5", datetime(2025, 1, 2, 10, 0, 0, 500000)),
    ("1735812000000", datetime(2025, 1, 2, 10)),  # milliseconds
    ("1735812000000000", datetime(2025, 1, 2, 10)),  # microseconds
]


def test_time_formats_and_zones(store: Any, tmp_path: Path) -> None:
    rows = [["customer_id", "event", "ts"]] + [
        [f"c{i:02d}", "e", text] for i, (text, _) in enumerate(TIMES)
    ]
    summary = import_file(store, write_csv(tmp_path / "t.csv", rows), "events", tz="Asia/Shanghai")
    assert summary.rejected == 0
    assert [r["ts"] for r in events(store)] == [expected for _, expected in TIMES]


def test_numeric_epochs_in_parquet_and_json(store: Any, tmp_path: Path) -> None:
    table = pa.table(
        {
            "customer_id": ["s", "ms", "f"],
            "event": ["e", "e", "e"],
            "ts": pa.array([1735812000, 1735812000000, None], pa.int64()),
            "ts2": [None, None, 1735812000.25],
        }
    )
    write_parquet(tmp_path / "n.parquet", table.drop(["ts2"]).slice(0, 2))
    import_file(store, tmp_path / "n.parquet", "events")
    write_jsonl(tmp_path / "n.jsonl", [{"customer_id": "f", "event": "e", "ts": 1735812000.25}])
    import_file(store, tmp_path / "n.jsonl", "events")
    got = {r["customer_id"]: r["ts"] for r in events(store)}
    assert got == {
        "s": datetime(2025, 1, 2, 10),
        "ms": datetime(2025, 1, 2, 10),
        "f": datetime(2025, 1, 2, 10, 0, 0, 250000),
    }


def test_zone_aware_parquet_timestamps_are_converted_to_utc(store: Any, tmp_path: Path) -> None:
    ts = pa.array([datetime(2025, 1, 2, 10, tzinfo=UTC)], pa.timestamp("ms", "Asia/Tokyo"))
    write_parquet(
        tmp_path / "z.parquet", pa.table({"customer_id": ["u"], "event": ["e"], "ts": ts})
    )
    import_file(store, tmp_path / "z.parquet", "events", tz="America/New_York")
    assert events(store)[0]["ts"] == datetime(2025, 1, 2, 10)


def test_naive_times_follow_daylight_saving(store: Any, tmp_path: Path) -> None:
    rows = [
        ["customer_id", "event", "ts"],
        ["w", "e", "2025-01-15 12:00"],
        ["s", "e", "2025-07-15 12:00"],
    ]
    import_file(store, write_csv(tmp_path / "d.csv", rows), "events", tz="America/New_York")
    got = {r["customer_id"]: r["ts"] for r in events(store)}
    assert got == {"w": datetime(2025, 1, 15, 17), "s": datetime(2025, 7, 15, 16)}


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "not a zone"])
def test_invalid_time_zone_is_an_error_naming_tz(store: Any, tmp_path: Path, tz: str) -> None:
    with pytest.raises(ImportError_, match="--tz") as info:
        import_file(store, sample_file(tmp_path, "e.csv"), "events", tz=tz)
    assert info.value.field == "tz"


def test_parse_times_marks_missing_and_bad_values() -> None:
    values = pa.array(["2025-01-01", "", None, "soon", "2025-13-01", "1735689600"])
    us, status = parse_times(values, resolve_tz("UTC"))
    assert status.tolist() == [OK, MISSING, MISSING, BAD, BAD, OK]
    assert us[0] == us[5] == 1735689600 * 1_000_000


def test_fixed_offset_time_zone() -> None:
    us, status = parse_times(pa.array(["2025-01-01 08:00"]), resolve_tz("+08:00"))
    assert status.tolist() == [OK]
    assert us.tolist() == [int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)]


# -- rejects ----------------------------------------------------------------------------------------
def test_bad_rows_go_to_the_rejects_file_and_good_rows_load(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            ["user_id", "event", "ts", "revenue"],
            ["u1", "view", "2025-01-01", "1"],  # line 2: good
            ["", "view", "2025-01-01", ""],  # line 3: no customer
            ["u3", "", "2025-01-01", ""],  # line 4: no event
            ["u4", "view", "yesterday", ""],  # line 5: bad time
            ["u5", "buy", "2025-01-01", "lots"],  # line 6: bad revenue
            ["u6", "buy", "", ""],  # line 7: no time
            ["", "", "2025-01-01", ""],  # line 8: two problems
            ["u8", "buy", "2025-01-01", "1,299.50"],  # line 9: good
        ],
    )
    summary = import_file(store, path, "events")
    assert (summary.loaded, summary.duplicates, summary.rejected) == (2, 0, 6)
    assert summary.rejects_path == str(tmp_path / "bad.csv.rejects.csv")
    got = rejects(summary.rejects_path)
    assert [(r["line"], r["reason"]) for r in got] == [
        ("3", "missing customer_id (column 'user_id')"),
        ("4", "missing event"),
        ("5", "ts 'yesterday' is not a time"),
        ("6", "revenue 'lots' is not a number"),
        ("7", "missing ts"),
        ("8", "missing customer_id (column 'user_id'); missing event"),
    ]
    assert got[2] == {"line": "5", "reason": "ts 'yesterday' is not a time", "user_id": "u4",
                      "event": "view", "ts": "yesterday", "revenue": ""}  # fmt: skip
    assert [r["revenue"] for r in events(store)] == [1.0, 1299.5]


def test_rejects_path_can_be_chosen(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "b.csv",
        [["customer_id", "event", "ts"], ["u", "e", "x"], ["u", "e", "2025-01-01"]],
    )
    target = tmp_path / "out" / "r.csv"
    target.parent.mkdir()
    summary = import_file(store, path, "events", rejects_path=target)
    assert summary.rejects_path == str(target)
    assert len(rejects(target)) == 1
    assert not (tmp_path / "b.csv.rejects.csv").exists()


def test_rows_with_the_wrong_field_count_are_rejected_with_their_line(
    store: Any, tmp_path: Path
) -> None:
    rows: list[list[Any]] = [["customer_id", "event", "ts"]]
    rows += [[f"u{i}", "e", "2025-01-01"] for i in range(2500)]
    rows[2000] = ["short", "row"]  # record 2000 -> line 2001
    rows.insert(2400, ["long", "e", "2025-01-01", "extra"])  # becomes line 2401
    summary = import_file(store, write_csv(tmp_path / "w.csv", rows), "events", batch_rows=700)
    assert (summary.loaded, summary.rejected) == (2499, 2)
    got = rejects(summary.rejects_path or "")
    assert [(r["line"], r["reason"]) for r in got] == [
        ("2001", "expected 3 fields, found 2"),
        ("2401", "expected 3 fields, found 4"),
    ]
    assert got[1]["ts"] == "2025-01-01,extra"
    lines_of = {r["customer_id"] for r in events(store)}
    assert "u2499" in lines_of and "u1999" not in lines_of


def test_quoted_newlines_do_not_break_rows(store: Any, tmp_path: Path) -> None:
    rows = [
        ["customer_id", "event", "ts", "note"],
        ["u1", "e", "2025-01-01", "two\nlines"],
        ["u2", "e", "bad", ""],
    ]
    summary = import_file(store, write_csv(tmp_path / "q.csv", rows), "events")
    assert events(store)[0]["properties"] == {"note": "two\nlines"}
    assert (
        rejects(summary.rejects_path or "")[0]["line"] == "3"
    )  # records, counting the header as 1


def test_jsonl_rejects_keep_the_physical_line_and_the_record(store: Any, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "b.jsonl",
        [
            {"customer_id": "u1", "event": "e", "ts": "2025-01-01"},
            "",
            "{not json",
            "[1, 2]",
            {"customer_id": "u2", "ts": "2025-01-01"},
            {"customer_id": "u3", "event": "e", "ts": "2025-01-01"},
        ],
    )
    summary = import_file(store, path, "events")
    assert (summary.loaded, summary.rejected) == (2, 3)
    got = rejects(summary.rejects_path or "")
    assert [r["line"] for r in got] == ["3", "4", "5"]
    assert got[0]["reason"].startswith("invalid JSON")
    assert got[1]["reason"] == "line is not a JSON object"
    assert got[2]["reason"] == "missing event"
    assert json.loads(got[2]["record"]) == {"customer_id": "u2", "ts": "2025-01-01"}


def test_parquet_rejects_use_row_numbers(store: Any, tmp_path: Path) -> None:
    table = pa.table(
        {
            "customer_id": ["a", None, "c"],
            "event": ["e", "e", "e"],
            "ts": ["2025-01-01", "2025-01-01", "?"],
        }
    )
    summary = import_file(store, write_parquet(tmp_path / "r.parquet", table), "events")
    got = rejects(summary.rejects_path or "")
    assert [(r["line"], r["reason"], r["ts"]) for r in got] == [
        ("2", "missing customer_id", "2025-01-01"),
        ("3", "ts '?' is not a time", "?"),
    ]


# -- idempotency ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["e.csv", "e.parquet", "e.jsonl"])
def test_reimport_adds_nothing(store: Any, tmp_path: Path, name: str) -> None:
    path = sample_file(tmp_path, name)
    first = import_file(store, path, "events")
    second = import_file(store, path, "events")
    assert (first.loaded, first.duplicates) == (3, 0)
    assert (second.loaded, second.duplicates, second.rejected) == (0, 3, 0)
    assert store.counts()["events"] == 3


def test_event_ids_from_the_file_are_kept(store: Any, tmp_path: Path) -> None:
    rows = [
        ["event_id", "customer_id", "event", "ts"],
        ["e1", "u", "view", "2025-01-01"],
        ["", "u", "view", "2025-01-02"],
    ]
    path = write_csv(tmp_path / "ids.csv", rows)
    import_file(store, path, "events")
    ids = [r["event_id"] for r in events(store)]
    assert ids[0] == "e1" and len(ids[1]) == 32  # a blank id gets a generated one
    assert import_file(store, path, "events").loaded == 0


def test_repeated_rows_within_a_file_count_as_duplicates(store: Any, tmp_path: Path) -> None:
    rows = [
        ["customer_id", "event", "ts", "p"],
        ["u", "e", "2025-01-01", "1"],
        ["u", "e", "2025-01-01", "1"],
        ["u", "e", "2025-01-01", "2"],
    ]
    summary = import_file(store, write_csv(tmp_path / "dup.csv", rows), "events")
    assert (summary.loaded, summary.duplicates) == (2, 1)


def test_rows_differing_only_in_a_promoted_column_stay_apart(store: Any, tmp_path: Path) -> None:
    rows = [
        ["customer_id", "event", "ts", "channel"],
        ["u", "e", "2025-01-01", "ads"],
        ["u", "e", "2025-01-01", "mail"],
    ]
    assert import_file(store, write_csv(tmp_path / "c.csv", rows), "events").loaded == 2


# -- customers and spend ----------------------------------------------------------------------------
def traits(store: Any) -> dict[str, dict[str, Any]]:
    rows = store.con.execute("SELECT customer_id, traits FROM customers ORDER BY 1").fetchall()
    return {cid: json.loads(t) for cid, t in rows}


def test_customer_traits_merge_latest_wins_and_empty_cells_do_not_erase(
    store: Any, tmp_path: Path
) -> None:
    first = write_csv(
        tmp_path / "c1.csv",
        [
            ["customer_id", "age", "region", "gender"],
            ["u1", "30", "north", "f"],
            ["u2", "41", "south", ""],
        ],
    )
    summary = import_file(store, first, "customers")
    assert (summary.kind, summary.loaded, summary.duplicates) == ("customers", 2, 0)
    second = write_csv(
        tmp_path / "c2.csv",
        [["user_id", "age", "region", "plan"], ["u1", "31", "", "pro"], ["u3", "", "", ""]],
    )
    summary = import_file(store, second, "customers")
    assert (summary.loaded, summary.duplicates) == (1, 1)
    assert traits(store) == {
        "u1": {"age": 31, "region": "north", "gender": "f", "plan": "pro"},
        "u2": {"age": 41, "region": "south"},
        "u3": {},
    }
    again = import_file(store, second, "customers")
    assert (again.loaded, again.duplicates) == (0, 2)


def test_customer_rows_without_id_are_rejected(store: Any, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl", [{"customer_id": "u1", "traits": {"vip": True}}, {"age": 3}]
    )
    summary = import_file(store, path, "customers")
    assert (summary.loaded, summary.rejected) == (1, 1)
    assert traits(store) == {"u1": {"vip": True}}


def spend_rows(store: Any) -> list[tuple[Any, ...]]:
    return store.con.execute("SELECT * FROM spend ORDER BY day, channel, campaign").fetchall()


def test_spend_import_with_defaults_sums_and_rejects(store: Any, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "spend.csv",
        [
            ["date", "channel", "campaign", "amount", "currency"],
            ["2025-01-01", "google", "spring", "100.5", "usd"],
            ["2025-01-01", "google", "spring", "1,000", "usd"],  # same key: summed
            ["2025-01-01", "wechat", "", "300", "CNY"],
            ["2025-01-02", "google", "", "50", ""],
            ["2025-01-02", "google", "", "lots", ""],
            ["not a day", "google", "", "5", ""],
            ["2025-01-03", "", "", "5", ""],
        ],
    )
    summary = import_file(store, path, "spend", batch_rows=2)
    assert (summary.loaded, summary.duplicates, summary.rejected) == (3, 1, 3)
    assert spend_rows(store) == [
        (date(2025, 1, 1), "google", "spring", 1100.5, "USD"),
        (date(2025, 1, 1), "wechat", "", 300.0, "CNY"),
        (date(2025, 1, 2), "google", "", 50.0, "USD"),
    ]
    assert [r["reason"] for r in rejects(summary.rejects_path or "")] == [
        "amount 'lots' is not a number",
        "day (column 'date') 'not a day' is not a date",
        "missing channel",
    ]
    again = import_file(store, path, "spend")
    assert (again.loaded, again.duplicates) == (0, 4)
    assert spend_rows(store)[0][3] == 1100.5  # replaced, not doubled


def test_spend_days_from_parquet_dates(store: Any, tmp_path: Path) -> None:
    table = pa.table(
        {"day": pa.array([date(2025, 3, 1)], pa.date32()), "channel": ["tv"], "amount": [10]}
    )
    import_file(store, write_parquet(tmp_path / "s.parquet", table), "spend", tz="Asia/Shanghai")
    assert spend_rows(store) == [(date(2025, 3, 1), "tv", "", 10.0, "USD")]


# -- errors -----------------------------------------------------------------------------------------
def test_missing_required_column_names_it_and_lists_columns(store: Any, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [["who", "event", "ts"], ["u", "e", "2025-01-01"]])
    with pytest.raises(ImportError_) as info:
        import_file(store, path, "events")
    message = str(info.value)
    assert "customer_id" in message and "who, event, ts" in message and "m.csv" in message
    assert store.counts()["events"] == 0


def test_mapping_errors(store: Any, tmp_path: Path) -> None:
    path = sample_file(tmp_path, "e.csv")
    with pytest.raises(ImportError_, match="'uid' .*customer_id.*columns found"):
        import_file(store, path, "events", mapping={"customer_id": "uid"})
    with pytest.raises(ImportError_, match="unknown field 'user'"):
        import_file(store, path, "events", mapping={"user": "customer_id"})


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("e.xml", b"<x/>", "cannot tell the format"),
        ("e.xlsx", b"PK", "save the sheet as CSV"),
        ("e.parquet", b"not parquet at all", "not a readable Parquet file"),
        ("e.csv.gz", b"\x1f\x8bgarbage", "cannot read"),
        ("e.csv", "customer_id,event,ts\n张三,e,2025-01-01\n".encode("gbk"), "UTF-8"),
        ("e.csv", b"", "empty"),
        ("e.csv", b"customer_id,event,ts\n", "no data rows"),
        ("e.json", b'[{"customer_id": "u"}]', "JSON array"),
    ],
)
def test_unreadable_files_raise_one_clear_error(
    store: Any, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImportError_, match=message) as info:
        import_file(store, path, "events")
    assert name in str(info.value)


def test_missing_file_folder_and_unknown_format_or_kind(store: Any, tmp_path: Path) -> None:
    with pytest.raises(ImportError_, match="no such file"):
        import_file(store, tmp_path / "nope.csv", "events")
    with pytest.raises(ImportError_, match="folder"):
        import_file(store, tmp_path, "events", format="csv")
    with pytest.raises(ImportError_, match="unknown format 'xml'"):
        import_file(store, sample_file(tmp_path, "e.csv"), "events", format="xml")
    with pytest.raises(ImportError_, match="unknown import kind"):
        import_file(store, sample_file(tmp_path, "e.csv"), "orders")


def test_all_rows_rejected_is_an_error_but_the_rejects_are_written(
    store: Any, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "x.csv", [["customer_id", "event", "ts"], ["u", "e", "?"], ["u", "e", "??"]]
    )
    with pytest.raises(
        ImportError_, match=r"all 2 rows were rejected \(first: line 2: ts '\?' is not a time\)"
    ):
        import_file(store, path, "events")
    assert len(rejects(tmp_path / "x.csv.rejects.csv")) == 2


# -- streaming --------------------------------------------------------------------------------------
class CountingStore:
    """A store that counts the writes the importer makes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes: list[int] = []

    def insert_events(self, batch: pa.Table, prepared: Any = None) -> Any:
        self.writes.append(batch.num_rows)
        return self.inner.insert_events(batch, prepared)


@pytest.mark.parametrize("name", ["big.csv.gz", "big.tsv", "big.parquet", "big.jsonl"])
def test_large_files_are_imported_in_batches(store: Any, tmp_path: Path, name: str) -> None:
    n = 5000
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "customer_id": [f"u{i % 700}" for i in range(n)],
            "event": [f"e{i % 5}" for i in range(n)],
            "ts": [f"2025-01-01T00:00:{i % 60:02d}.{i:06d}Z" for i in range(n)],
            "score": rng.integers(0, 100, n).tolist(),
        }
    )
    path = tmp_path / name
    if ".csv" in name or ".tsv" in name:
        rows = [table.column_names, *[list(r.values()) for r in table.to_pylist()]]
        write_csv(path, rows, delimiter="\t" if ".tsv" in name else ",")
    elif ".parquet" in name:
        write_parquet(path, table)
    else:
        write_jsonl(path, table.to_pylist())
    spy = CountingStore(store)
    summary = import_file(spy, path, "events", batch_rows=1000, write_rows=1000, progress=True)
    assert (summary.loaded, summary.duplicates, summary.rejected) == (n, 0, 0)
    assert len(spy.writes) >= 5 and max(spy.writes) <= 1000 and sum(spy.writes) == n
    assert store.counts()["events"] == n
    total = store.con.execute(
        "SELECT sum(CAST(properties->>'score' AS INT)) FROM events"
    ).fetchone()[0]
    assert total == sum(table.column("score").to_pylist())


def test_summary_to_dict() -> None:
    summary = ImportSummary("events", 1, 2, 3, None)
    assert summary.to_dict() == {
        "kind": "events",
        "loaded": 1,
        "duplicates": 2,
        "rejected": 3,
        "rejects_path": None,
    }


# -- properties assembled in bulk equal Python's JSON ----------------------------------------------
cell = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        ["0", "-0", "007", "42", "-3", "1.50", "1e3", "2E-2", "true", "False", " 5 ", "1e999", "+1"]
    ),
    st.sampled_from(['a"b', "back\\slash", "tab\tnew\nline", "\x00\x1f", "中文", "\u2028"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(cell, cell, cell), min_size=1, max_size=6))
def test_bulk_properties_match_python_json(rows: list[tuple[str, str, str]]) -> None:
    keys = ["b", 'a"k', "é"]
    text_cols = {
        k: TextColumn(pa.array([r[i] for r in rows], pa.string())) for i, k in enumerate(keys)
    }
    arrow_cols = {
        k: ArrowColumn(pa.array([r[i] for r in rows], pa.string())) for i, k in enumerate(keys)
    }
    encoded_cols = {  # Parquet text read as dictionaries
        k: ArrowColumn(pa.array([r[i] for r in rows], pa.string()).dictionary_encode())
        for i, k in enumerate(keys)
    }
    good = np.arange(len(rows))
    for cols in (text_cols, arrow_cols, encoded_cols):
        batch = RawBatch(columns=dict(cols), lines=good + 2, header=keys)
        got = objects(batch, Resolution({}, None, keys), good, "properties").to_pylist()
        values = {k: c.json_values() for k, c in cols.items()}
        expected = [
            dumps({k: values[k][i] for k in keys if values[k][i] is not None})
            for i in range(len(rows))
        ]
        assert got == expected


def test_bulk_properties_for_typed_columns_match_python_json() -> None:
    arrays = {
        "i": pa.array([1, None, -5], pa.int64()),
        "f": pa.array([1.5, float("nan"), 2.0]),
        "b": pa.array([True, False, None]),
        "d": pa.array([date(2025, 1, 1), None, date(2025, 1, 2)]),
        "l": pa.array([[1, 2], None, []]),
    }
    cols = {k: ArrowColumn(v) for k, v in arrays.items()}
    good = np.arange(3)
    batch = RawBatch(columns=dict(cols), lines=good + 1, header=list(arrays))
    got = objects(batch, Resolution({}, None, list(arrays)), good, "properties").to_pylist()
    assert [json.loads(g) for g in got] == [
        {"i": 1, "f": 1.5, "b": True, "d": "2025-01-01", "l": [1, 2]},
        {"b": False},
        {"i": -5, "f": 2.0, "d": "2025-01-02", "l": []},
    ]
    values = {k: c.json_values() for k, c in cols.items()}
    assert got == [
        dumps({k: v[i] for k, v in values.items() if v[i] is not None}) for i in range(3)
    ]


def test_malformed_row_after_several_batches_keeps_exact_lines(
    store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(formats, "_block_size", lambda batch_rows: 16 << 10)  # many small blocks
    rows: list[list[Any]] = [["customer_id", "event", "ts"]]
    rows += [[f"u{i}", "e", "2025-01-01"] for i in range(6000)]
    rows[4500] = ["only", "two"]  # line 4501, far past the first blocks
    spy = CountingStore(store)
    summary = import_file(
        spy, write_csv(tmp_path / "late.csv", rows), "events", batch_rows=500, write_rows=500
    )
    assert (summary.loaded, summary.rejected) == (5999, 1)
    assert [r["line"] for r in rejects(summary.rejects_path or "")] == ["4501"]
    assert len(spy.writes) >= 6 and max(spy.writes) < 1000  # flushed once 500 rows are pending
    ids = {r[0] for r in store.con.execute("SELECT customer_id FROM events").fetchall()}
    assert ids == {f"u{i}" for i in range(6000)} - {"u4499"}


# -- fast paths for clean columns give what the general path gives ---------------------------------
edge_text = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", " a", "a ", "\ta", "a\n", "\u3000x", "x\u00a0", "é", "ok", "2025"]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), edge_text), min_size=1, max_size=8),
    st.integers(0, 3),
    st.sampled_from([pa.string(), pa.large_string()]),
)
def test_clean_strings_equal_trim_and_blank_to_null(
    values: list[str | None], cut: int, kind: pa.DataType
) -> None:
    arr = pa.array(["  pad  ", *values], kind).slice(1)  # a slice: offsets start past 0
    arr = arr.slice(min(cut, len(values) - 1))
    trimmed = pc.utf8_trim_whitespace(arr)  # the general path, always taken before
    expected = pc.if_else(pc.equal(trimmed, ""), None, trimmed)
    assert clean_strings(arr).to_pylist() == expected.to_pylist()


zoned = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1)).map(
    lambda d: d.isoformat() + "Z"
)
naive = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1)).map(
    lambda d: d.isoformat(sep=" ")
)


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.lists(st.one_of(st.none(), zoned), min_size=1, max_size=6),
        st.lists(st.one_of(st.none(), naive), min_size=1, max_size=6),
        st.lists(st.one_of(st.none(), zoned, naive, st.just(""), st.just("x")), max_size=6),
    ),
    st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York"]),
)
def test_whole_column_time_cast_equals_value_by_value(values: list[str | None], zone: str) -> None:
    tz = resolve_tz(zone)
    us, status = parse_times(pa.array(values, pa.string()), tz)
    for i, v in enumerate(values):
        one_us, one_status = parse_times(pa.array([v, "not a time"], pa.string()), tz)
        assert status[i] == one_status[0], v  # the second value forces the general path
        if status[i] == OK:
            assert us[i] == one_us[0], v


class FailingStore(CountingStore):
    """A store whose third write fails, as a full disk would make it."""

    def insert_events(self, batch: pa.Table, prepared: Any = None) -> Any:
        if len(self.writes) == 2:
            self.writes.append(batch.num_rows)
            raise StoreError("disk full", "db")
        return super().insert_events(batch, prepared)


def test_a_failed_background_write_stops_the_import_with_its_error(
    store: Any, tmp_path: Path
) -> None:
    rows: list[list[Any]] = [["customer_id", "event", "ts"]]
    rows += [[f"u{i}", "e", "2025-01-01"] for i in range(5000)]
    failing = FailingStore(store)
    path = write_csv(tmp_path / "f.csv", rows)
    with pytest.raises(StoreError, match="disk full"):
        import_file(failing, path, "events", batch_rows=500, write_rows=1000)
    assert failing.writes == [1000, 1000, 1000]  # nothing written after the failure
    assert store.counts()["events"] == 2000  # the writes before it are kept
    again = import_file(store, path, "events")  # and importing again completes the file
    assert (again.loaded, again.duplicates) == (3000, 2000)
