"""Golden outputs (issue 14: the refactor keeps behaviour). Every CLI command's ``--json`` (or its
CSV / YAML and the files it writes), every HTTP analysis, KPI, segment and query route, and bad
input of each kind were recorded on fixed data (a seeded demo business, a hand-built store, a
scratch store for imports) from the code before the refactor, into ``tests/golden/*.json``. This
test records every case again with the code under test and compares, case by case; a failure
names the group and case and lists each differing JSON path with the golden and the new value.

What is normalised (temporary paths, the server's port, key secrets and ids, clock times,
terminal framing of stderr) and the float tolerance (relative 1e-9) are in the docstring of
``tests/golden/record.py``; the data and the cases are in ``tests/golden/inputs.py`` and
``tests/golden/cases.py``.

This is the one test whose expected outputs come from the code itself: issue 14 asks for exactly
that, as a net for the refactor; whether the numbers are right is what the other tests check.

When an output changes on purpose (a named bug fix), rewrite the golden files and commit them
with the fix, saying which cases changed and why::

    LOUDOU_GOLDEN_UPDATE=1 .venv/bin/pytest tests/test_golden_outputs.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from golden.record import differences, load_golden, record_all, write_golden

UPDATE = os.environ.get("LOUDOU_GOLDEN_UPDATE") == "1"
RECORDED = load_golden()
CASES = [(group, name) for group, cases in RECORDED.items() for name in cases]
MAX_LINES = 40


@pytest.fixture(scope="module")
def now(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case recorded with the code under test (and written out when updating)."""
    docs = record_all(Path(tmp_path_factory.mktemp("golden")))
    if UPDATE:
        write_golden(docs)
    return docs


@pytest.fixture(scope="module")
def golden(now: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return load_golden()


def test_the_same_cases_are_recorded(
    now: dict[str, dict[str, Any]], golden: dict[str, dict[str, Any]]
) -> None:
    want = {(g, n) for g, cases in golden.items() for n in cases}
    got = {(g, n) for g, cases in now.items() for n in cases}
    assert not want - got, f"golden cases no longer recorded: {sorted(want - got)}"
    assert not got - want, f"new cases without golden output (record them): {sorted(got - want)}"


@pytest.mark.parametrize(("group", "name"), CASES, ids=[f"{g}:{n}" for g, n in CASES])
def test_output_is_unchanged(
    now: dict[str, dict[str, Any]], golden: dict[str, dict[str, Any]], group: str, name: str
) -> None:
    got = now.get(group, {}).get(name)
    assert got is not None, f"{group} / {name}: not recorded any more"
    found = list(differences(golden[group][name], got))
    shown = found[:MAX_LINES] + [f"... and {len(found) - MAX_LINES} more"] * (
        len(found) > MAX_LINES
    )
    request = got.get("request", {})
    where = " ".join(got.get("args", [])) or f"{request.get('method')} {request.get('path')}"
    assert not found, (
        f"{group} / {name} ({where}) differs from tests/golden/{group}.json "
        "(golden / now):\n  " + "\n  ".join(shown)
    )
