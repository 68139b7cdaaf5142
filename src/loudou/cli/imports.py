"""``loudou import events|customers|spend``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from loudou.cli.common import DbOpt, JsonOpt, LangOpt, err, opened, resolve_lang
from loudou.errors import LoudouError
from loudou.present.i18n import t

import_app = typer.Typer(
    help="Import CSV, TSV, Parquet or JSON Lines files (optionally .gz).", no_args_is_help=True
)


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    mapping = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise LoudouError(
                f"cannot read {pair!r}; use TARGET=SOURCE, e.g. customer_id=user_id", "--map"
            )
        mapping[target.strip()] = source.strip()
    return mapping


def _import(
    kind: Kind,
    file: Path,
    fmt: str | None,
    maps: list[str] | None,
    tz: str,
    rejects: Path | None,
    as_json: bool,
    db: str | None,
    lang: str | None,
) -> None:
    from loudou.ingest.files import import_file

    language = resolve_lang(lang)
    with opened(db) as store:
        summary = import_file(
            store,
            file,
            kind,
            format=fmt,
            mapping=_mapping(maps),
            tz=tz,
            rejects_path=rejects,
            progress=not as_json and err.is_terminal,
        )
    if as_json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        err.print(t("import_summary", language, **summary.to_dict()))
        if summary.rejects_path:
            err.print(t("rejects_at", language, path=summary.rejects_path))


FileArg = Annotated[Path, typer.Argument(help="File: .csv .tsv .parquet .jsonl, optionally .gz.")]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="csv, tsv, parquet or jsonl (default: from the name)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="TARGET=SOURCE column mapping, repeatable, e.g. ts=timestamp."),
]
TzOpt = Annotated[
    str, typer.Option("--tz", help="Time zone of naive timestamps, e.g. Asia/Shanghai.")
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option("--rejects", help="Where to write rejected rows (default FILE.rejects.csv)."),
]


Kind = Literal["events", "customers", "spend"]
HELP: dict[Kind, str] = {
    "events": "Import events: customer_id, event, ts required; other columns become properties.\n\n"
    "Re-importing the same file adds nothing (event_id, or a stable hash of the row).",
    "customers": "Import customers: customer_id required; other columns become traits (latest value wins).",
    "spend": "Import ad spend: day, channel, amount required; campaign and currency optional.",
}


def _command(kind: Kind) -> None:
    """One ``loudou import KIND`` command; the three kinds share every option."""

    def command(
        file: FileArg,
        fmt: FormatOpt = None,
        maps: MapOpt = None,
        tz: TzOpt = "UTC",
        rejects: RejectsOpt = None,
        as_json: JsonOpt = False,
        db: DbOpt = None,
        lang: LangOpt = None,
    ) -> None:
        _import(kind, file, fmt, maps, tz, rejects, as_json, db, lang)

    command.__doc__ = HELP[kind]
    import_app.command(kind)(command)


for _kind in HELP:
    _command(_kind)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
