"""CLI commands generated from the analysis registry (``loudou.analyses.registry``): one command per
analysis, its options made from the analysis's parameters (names, defaults, bounds, help), plus
``--json``, ``--csv`` where the result has CSV rows, ``--lang`` and ``--db``. The terminal view
comes from ``loudou.present``; ``--json`` prints the result's ``to_dict()``, as the HTTP route
answers it."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from loudou.analyses.registry import ANALYSES, Analysis
from loudou.cli.common import (
    DbOpt,
    JsonOpt,
    LangOpt,
    SpecArg,
    opened,
    out,
    resolve_lang,
    working,
    write_csv,
)
from loudou.errors import LoudouError

CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV rows.")]


def flag(name: str, field: FieldInfo) -> str:
    """The CLI option of a parameter: ``--name-with-dashes`` unless the registry names one."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return str(extra.get("flag") or "--" + name.replace("_", "-"))


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list


def _option(name: str, field: FieldInfo) -> inspect.Parameter:
    bounds: dict[str, Any] = {}
    for rule in field.metadata:
        if hasattr(rule, "ge"):
            bounds["min"] = rule.ge
        if hasattr(rule, "le"):
            bounds["max"] = rule.le
    annotation = field.annotation
    decls = [] if annotation is bool else [flag(name, field)]  # bools get --x/--no-x
    help = field.description or ""
    if _is_list(annotation):
        help += " Repeatable."
    option = typer.Option(*decls, help=help, **bounds)
    if _is_list(annotation):
        (item,) = get_args(annotation)
        annotation = list[item] if field.is_required() else list[item] | None  # type: ignore[valid-type]
    default = inspect.Parameter.empty if field.is_required() else field.get_default()
    if _is_list(field.annotation) and not field.is_required():
        default = None  # Typer's "not given"; the parameter's own default applies
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[annotation, option],
        default=default,
    )


def command(a: Analysis) -> Callable[..., None]:
    """The command of one analysis (a function whose signature Typer reads)."""
    from loudou.present.render import has_csv

    fields = a.params.model_fields
    with_csv = has_csv(a.result)

    def run(**given: Any) -> None:
        values = {
            k: given[k]
            for k in fields
            if given[k] is not None or not _is_list(fields[k].annotation)
        }
        try:
            params = a.params.model_validate(values)
        except ValidationError as e:  # named as the parameter: main() spells it as an option
            first = e.errors()[0]
            raise LoudouError(str(first["msg"]), ".".join(map(str, first["loc"]))) from None
        language = resolve_lang(given["lang"])
        with opened(given["db"], read_only=True) as store:
            spec = None
            if a.on_funnel:
                from loudou.cli.funnel import build_spec

                spec = build_spec(given["spec_file"], [], None, {}, store)
            with working(f"{a.name}…"):
                result = a.run(store, spec, params)
        if given["as_json"]:
            from loudou.present.render import document

            print(json.dumps(document(result), ensure_ascii=False, indent=2))
        elif with_csv and given["as_csv"]:
            from loudou.present.render import rows_of

            write_csv(rows_of(result), None)
        else:
            from loudou.present.render import show

            show(result, language, out)

    keyword = inspect.Parameter.KEYWORD_ONLY
    signature = [inspect.Parameter("spec_file", keyword, annotation=SpecArg)] if a.on_funnel else []
    signature += [_option(name, field) for name, field in fields.items()]
    signature.append(inspect.Parameter("as_json", keyword, annotation=JsonOpt, default=False))
    if with_csv:
        signature.append(inspect.Parameter("as_csv", keyword, annotation=CsvOpt, default=False))
    signature.append(inspect.Parameter("lang", keyword, annotation=LangOpt, default=None))
    signature.append(inspect.Parameter("db", keyword, annotation=DbOpt, default=None))
    run.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    run.__doc__ = a.help + (f"\n\nExample: {a.example}" if a.example else "")
    run.__name__ = a.name.replace("-", "_")
    return run


def register(app: typer.Typer) -> None:
    for a in ANALYSES.values():
        app.command(a.name)(command(a))
