"""``loudou serve``: the collection and query server."""

from __future__ import annotations

from typing import Annotated

import typer

from loudou.backends import default_path
from loudou.cli.common import DbOpt, err
from loudou.errors import LoudouError


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log each request (no secrets).")
    ] = False,
    parsers: Annotated[
        int,
        typer.Option(
            min=0,
            help="Worker processes that parse and validate event batches (0: in the server's).",
        ),
    ] = 1,
    db: DbOpt = None,
) -> None:
    """Serve the Segment-compatible tracking API, the query API and /static/loudou.js.

    API docs at http://HOST:PORT/docs. Create keys first: loudou keys create --role write.
    """
    import uvicorn

    from loudou.backends import connect, served_by
    from loudou.server.app import create_app

    path = str(db if db is not None else default_path())
    running = served_by(path)
    if running is not None:
        raise LoudouError(f"already served at {running.url} (pid {running.pid})", "db")
    connect(path).close()  # create or migrate now, so problems are one line, not a traceback
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    err.print(f"loudou serving {path} at {url}  (docs: {url}/docs)")
    import sys

    # The writer thread returns from DuckDB (which releases the GIL) several times per commit;
    # a short switch interval stops it waiting up to Python's default interval (5 ms) for the
    # event loop each time.
    sys.setswitchinterval(0.0005)
    uvicorn.run(
        create_app(path, url, parsers),
        host=host,
        port=port,
        log_level="info" if access_log else "warning",
        access_log=access_log,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
