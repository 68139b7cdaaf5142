"""HTTP routes generated from the analysis registry (``loudou.analyses.registry``), for read or admin
keys: one ``POST`` route per analysis whose JSON body holds the analysis's parameters (and
``spec``, a funnel spec as in ``POST /v1/funnels/query``, for analyses of a funnel). Each answers
exactly the JSON that the matching CLI command prints with ``--json``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import create_model
from starlette.responses import Response

from loudou.analyses.registry import ANALYSES, Analysis, Params
from loudou.backends.base import Store
from loudou.present.render import document
from loudou.server.analysis import SpecBody
from loudou.server.auth import require
from loudou.server.reads import Body, answer_async, body_schema, read_model, spec_of

router = APIRouter(tags=["analysis"])
_reader = require("read", "admin", what="read data")


def body_model(a: Analysis) -> type[Body]:
    """The route's body: the analysis's parameters, after ``spec`` for a funnel's."""
    fields: dict[str, Any] = {n: (f.annotation, f) for n, f in a.params.model_fields.items()}
    name = "".join(part.title() for part in a.name.split("-")) + "Body"
    model: type[Body] = create_model(name, __base__=SpecBody if a.on_funnel else Body, **fields)
    return model


def _add(a: Analysis) -> None:
    model = body_model(a)
    names = list(a.params.model_fields)

    async def route(request: Request) -> Response:
        body = await read_model(request, model)
        params: Params = a.params(**{k: getattr(body, k) for k in names})

        def work(store: Store) -> Any:
            spec = spec_of(store, body.spec) if a.on_funnel else None  # type: ignore[attr-defined]
            return document(a.run(store, spec, params))

        return await answer_async(request, work)

    route.__name__ = a.name.replace("-", "_")
    route.__doc__ = a.help
    router.post(
        a.route,
        summary=a.title,
        description=f"{a.help}\n\n{a.title_zh}. Same JSON as `loudou {a.name} --json`.",
        dependencies=[Depends(_reader)],
        openapi_extra=body_schema(model),
    )(route)


for _analysis in ANALYSES.values():
    _add(_analysis)
