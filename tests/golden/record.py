"""Golden outputs for the refactor of issue 14 ("behaviour stays the same").

Records, on fixed data (:mod:`golden.inputs`: a seeded demo business, a hand-built store, a
scratch store for imports and keys), the output of every case of :mod:`golden.cases`: each CLI
command's ``--json`` (or its CSV / YAML where it has no JSON, plus the files it writes), every
HTTP analysis, KPI, segment and query route of a real ``loudou serve``, and bad input of each kind
(the CLI's exit code and ``error:`` line, the API's status and error JSON). One JSON file per
group of cases sits next to this script (``cli_funnel.json``, ``http_kpi.json``, ...).

Record (rewrite the golden files) from a given source tree::

    PYTHONPATH=/path/to/src .venv/bin/python tests/golden/record.py

(or ``LOUDOU_GOLDEN_UPDATE=1 .venv/bin/pytest tests/test_golden_outputs.py``). The test
``tests/test_golden_outputs.py`` records everything again with the code under test and compares.

Record from the code before a change with a worktree of that commit, e.g.
``git worktree add /tmp/base COMMIT`` and ``PYTHONPATH=/tmp/base/src`` (the server subprocess
inherits it).

How it runs: CLI cases through the real entry point ``loudou.cli.main``, in-process (click's
``CliRunner.isolation`` captures stdout and stderr; a subprocess per case would cost a second of
imports each; the Typer app's click command is built once, see :func:`_built_once`), in two
lanes (:data:`LANES`: this process and one spawned worker, so a script calling
:func:`record_all` needs the ``if __name__ == "__main__"`` guard), while a thread drives the
HTTP cases against a server started with ``tests/serving.py``'s ``start``. Every CLI case runs in
a fixed environment (:data:`CLI_ENV`: English unless ``--lang`` says otherwise, no ``LOUDOU_DB``).

Normalisations (only what differs between runs, machines or terminals):

- the temporary data folder's path becomes ``<tmp>``, the server's URL (random port)
  ``<server>``;
- API key secrets (random) become ``<secret ldr_>`` etc.; in key records (``keys create/list``,
  ``GET /v1/keys``) the random ``id`` becomes ``<key id>`` and ``created_at`` / a non-null
  ``revoked_at`` (clock times) become ``<time>``;
- stderr loses ANSI colour codes and rich/typer box-drawing characters, and its whitespace runs
  are collapsed to one space (they wrap and frame it to the terminal width); for exit code 1 the
  number of stderr lines is kept (the ``error:`` line must stay one line);
- HTTP requests send a fixed ``User-Agent`` (httpx's names its version).

Nothing else is touched: floats are stored as printed. The comparison (:func:`differences`)
treats two floats as equal when ``math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)`` (a refactor
may reorder sums; the tiny absolute tolerance is for values that are zero up to rounding), also
for float-looking cells of CSV text; NaN equals NaN. Everything else must be identical, including
the order of JSON object keys and of list items, and int versus float.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make tests/ importable like pytest does
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from golden.cases import CLI_GROUPS, HTTP_GROUPS, Cli, Http, Previous  # noqa: E402
from golden.inputs import Data, build_data  # noqa: E402

GOLDEN = Path(__file__).resolve().parent
REL_TOL, ABS_TOL = 1e-9, 1e-12
# The environment of every CLI case: English by default, no database from the environment.
CLI_ENV = {
    "LOUDOU_LANG": "en",
    "LOUDOU_DB": None,
    "LC_ALL": None,
    "LC_MESSAGES": None,
    "LANG": "C.UTF-8",
    "COLUMNS": "200",
    "NO_COLOR": "1",
}
USER_AGENT = "loudou-golden"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = str.maketrans("", "", "╭╮╰╯─│┌┐└┘├┤┬┴┼━┃")
SECRET = re.compile(r"\b(ld[wra]_)[A-Za-z0-9_\-]{20,}")


# ---- normalising -------------------------------------------------------------------------------


def normalise(value: Any, subs: list[tuple[str, str]]) -> Any:
    """``value`` with the run-specific parts replaced (see the module docstring)."""
    if isinstance(value, str):
        for old, new in subs:
            value = value.replace(old, new)
        return SECRET.sub(r"<secret \1>", value)
    if isinstance(value, list):
        return [normalise(v, subs) for v in value]
    if isinstance(value, dict):
        out = {k: normalise(v, subs) for k, v in value.items()}
        if out.get("role") in ("write", "read", "admin") and "id" in out:  # a key record
            out["id"] = "<key id>"
            for key in ("created_at", "revoked_at"):
                if out.get(key) is not None:
                    out[key] = "<time>"
        return out
    return value


def clean_stderr(text: str) -> str:
    return " ".join(ANSI.sub("", text).translate(BOX).split())


def parse(text: str, fmt: str) -> tuple[str, Any]:
    """(format, value): JSON or CSV rows when ``text`` is that, else the text itself."""
    if fmt == "json" and text.strip():
        try:
            return "json", json.loads(text)
        except ValueError:
            pass
    if fmt == "csv" and text.strip():
        return "csv", list(csv.reader(io.StringIO(text)))
    return "text", text


# ---- CLI ---------------------------------------------------------------------------------------


@contextmanager
def _built_once() -> Iterator[None]:
    """Let ``loudou.cli.main`` call a click command built once instead of the Typer app, which
    rebuilds the whole command tree (~0.2 s) on every call. Only a speed-up: without a Typer
    ``app`` in ``loudou.cli`` (after a refactor) main runs unchanged."""
    import typer

    import loudou.cli as cli

    app = getattr(cli, "app", None)
    if not isinstance(app, typer.Typer):
        yield
        return
    cli.app = typer.main.get_command(app)  # type: ignore[assignment]
    try:
        yield
    finally:
        cli.app = app


def run_cli(args: list[str]) -> dict[str, Any]:
    """``loudou ARGS`` in-process: exit code, stdout, stderr (and the exception if it crashed)."""
    from click.testing import CliRunner

    import loudou.cli

    code: int | None = 0
    crash = None
    argv = sys.argv
    with CliRunner().isolation(env=CLI_ENV) as (out, err, _):
        sys.argv = ["loudou", *args]
        try:
            loudou.cli.main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception as e:  # noqa: BLE001 - a traceback for input is a finding to record
            code, crash = None, f"{type(e).__name__}: {e}"
        finally:
            sys.argv = argv
            sys.stdout.flush()
            sys.stderr.flush()
    result = {
        "exit_code": code,
        "stdout": out.getvalue().decode(),
        "stderr": err.getvalue().decode(),
    }
    return result | ({"exception": crash} if crash else {})


def expand(arg: str, data: Data, demo: Path) -> str:
    for token, path in (
        ("@demo", demo),
        ("@hand", data.hand_db),
        ("@scratch", data.scratch_db),
        ("@in/", data.folder / "in"),
        ("@out/", data.folder / "out"),
    ):
        arg = arg.replace(token, str(path) + ("/" if token.endswith("/") else ""))
    return arg


def cli_case(case: Cli, data: Data, demo: Path) -> dict[str, Any]:
    """One CLI case as its golden document; ``@demo`` is the file ``demo``."""
    raw = run_cli([expand(a, data, demo) for a in case.args])
    fmt, stdout = parse(raw["stdout"], case.out)
    doc: dict[str, Any] = {
        "args": list(case.args),
        "exit_code": raw["exit_code"],
        "stdout_format": fmt,
        "stdout": stdout,
        "stderr": clean_stderr(raw["stderr"]),
    }
    if raw["exit_code"] == 1:
        doc["stderr_lines"] = raw["stderr"].count("\n")
    if "exception" in raw:
        doc["exception"] = raw["exception"]
    for name in case.files:
        path = data.folder / "out" / name
        doc.setdefault("files", {})[name] = (
            parse(path.read_text(encoding="utf-8"), "csv")[1] if path.exists() else None
        )
    return normalise(doc, [(str(data.folder), "<tmp>")])


# ---- HTTP --------------------------------------------------------------------------------------


def http_case(
    case: Http, server: Any, clients: dict[str | None, Any], answers: dict[str, Any]
) -> dict[str, Any]:
    """One request with the client of the case's role; ``answers`` holds earlier JSON answers
    by case name (for cursors)."""
    params = {
        k: answers[v.case][v.key] if isinstance(v, Previous) else v for k, v in case.params.items()
    }
    request: dict[str, Any] = {"method": case.method, "path": case.path, "role": case.role}
    request |= {"params": params} if params else {}
    request |= {"body": case.body} if case.body is not None else {}
    request |= {"raw": case.raw.decode()} if case.raw is not None else {}
    c = clients[case.role]
    if case.raw is not None:
        r = c.request(case.method, case.path, params=params, content=case.raw)
    elif case.body is not None:
        r = c.request(case.method, case.path, params=params, json=case.body)
    else:
        r = c.request(case.method, case.path, params=params)
    ctype = r.headers.get("content-type", "")
    fmt, value = parse(r.text, "csv" if ctype.startswith("text/csv") else "json")
    if fmt == "json":
        answers[case.name] = value
    doc = {"request": request, "status": r.status_code, "content_type": ctype, fmt: value}
    if "content-disposition" in r.headers:
        doc["content_disposition"] = r.headers["content-disposition"]
    return normalise(doc, [(server.url, "<server>"), (str(server.db.parent), "<tmp>")])


def run_http(data: Data) -> dict[str, dict[str, Any]]:
    """Every HTTP group, in order, against one server on the served demo."""
    from serving import start

    server = start(data.served_db)
    # one client per role for all requests (making an httpx client costs ~80 ms of CPU)
    clients = {role: server.client(role) for role in (None, "write", "read", "admin")}
    answers: dict[str, Any] = {}
    try:
        for c in clients.values():
            c.headers["user-agent"] = USER_AGENT
        return {
            group: {case.name: http_case(case, server, clients, answers) for case in cases}
            for group, cases in HTTP_GROUPS.items()
        }
    finally:
        for c in clients.values():
            c.close()
        server.stop()


# ---- recording ---------------------------------------------------------------------------------


# The CLI groups run in two processes (this one and a spawned one, each with its own copy of the
# demo store: DuckDB lets no process read a file another one writes), beside the server: about
# half the time of one after the other on two cores. The first lane only reads; the second writes
# (segments, templates, imports, keys) and its error cases see what it wrote.
LANES = (("cli_funnel", "cli_analysis", "cli_kpi"), ("cli_segments", "cli_misc", "cli_errors"))


def run_cli_groups(data: Data, groups: tuple[str, ...], demo: Path) -> dict[str, dict[str, Any]]:
    """The CLI cases of ``groups``, in order, with ``demo`` as the demo store."""
    with _built_once():
        return {
            group: {case.name: cli_case(case, data, demo) for case in CLI_GROUPS[group]}
            for group in groups
        }


def record_all(folder: Path) -> dict[str, dict[str, Any]]:
    """Build the data under ``folder`` and record every case: {group: {case name: document}}."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    assert sorted(sum(LANES, ())) == sorted(CLI_GROUPS), "every CLI group runs in one lane"
    data = build_data(folder)
    http: dict[str, dict[str, Any]] = {}
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            http.update(run_http(data))
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failed.append(e)

    # spawn, not fork: this process has DuckDB's and the HTTP client's threads
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        reading = pool.submit(run_cli_groups, data, LANES[0], data.demo_copy)
        thread = threading.Thread(target=serve, name="golden-http")
        thread.start()
        try:
            docs = run_cli_groups(data, LANES[1], data.demo_db) | reading.result()
        finally:
            thread.join()
    if failed:
        raise failed[0]
    return {group: docs[group] for group in CLI_GROUPS} | http


def golden_path(group: str) -> Path:
    return GOLDEN / f"{group}.json"


def write_golden(docs: dict[str, dict[str, Any]]) -> None:
    for group, cases in docs.items():
        text = json.dumps(cases, ensure_ascii=False, indent=1)
        golden_path(group).write_text(text + "\n", encoding="utf-8")


def load_golden() -> dict[str, dict[str, Any]]:
    """The recorded documents of every group that has a file."""
    groups = [*CLI_GROUPS, *HTTP_GROUPS]
    return {
        g: json.loads(golden_path(g).read_text(encoding="utf-8"))
        for g in groups
        if golden_path(g).exists()
    }


# ---- comparing ---------------------------------------------------------------------------------


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _float_text(s: str) -> float | None:
    if not any(c in s for c in ".eE"):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


def differences(want: Any, got: Any, at: str = "$") -> Iterator[str]:
    """Where ``got`` differs from ``want``, one line per difference (JSON path: golden / now)."""
    if type(want) is not type(got):
        yield f"{at}: golden {_show(want)} / now {_show(got)}"
    elif isinstance(want, float):
        if not _close(want, got):
            yield f"{at}: golden {want!r} / now {got!r}"
    elif isinstance(want, str):
        if want != got:
            a, b = _float_text(want), _float_text(got)
            if a is None or b is None or not _close(a, b):
                yield f"{at}: golden {_show(want)} / now {_show(got)}"
    elif isinstance(want, dict):
        for k in want:
            if k not in got:
                yield f"{at}.{k}: missing now (golden {_show(want[k])})"
            else:
                yield from differences(want[k], got[k], f"{at}.{k}")
        for k in got:
            if k not in want:
                yield f"{at}.{k}: new (now {_show(got[k])})"
        if want.keys() == got.keys() and list(want) != list(got):
            yield f"{at}: key order golden {list(want)} / now {list(got)}"
    elif isinstance(want, list):
        if len(want) != len(got):
            yield f"{at}: length golden {len(want)} / now {len(got)}"
        for i, (a, b) in enumerate(zip(want, got, strict=False)):
            yield from differences(a, b, f"{at}[{i}]")
    elif want != got:
        yield f"{at}: golden {_show(want)} / now {_show(got)}"


def main() -> None:
    import tempfile
    import time

    import loudou

    print(f"recording with {loudou.__file__}", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="golden") as folder:
        docs = record_all(Path(folder))
    write_golden(docs)
    for group, cases in docs.items():
        size = golden_path(group).stat().st_size
        print(f"{group}: {len(cases)} cases, {size:,} bytes", file=sys.stderr)
    print(f"{time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
