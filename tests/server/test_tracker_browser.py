"""The JS tracker in headless Chromium (Debian's package, driven by Playwright): a page on another
127.0.0.1 origin loads /static/loudou.js from the server, and clicks become stored events."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from serving import Server, free_port, make_keys, start

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed (apt-get install chromium)"
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

PAGE = """<!doctype html><html><head><title>Shop</title>
<script src="{server}/static/loudou.js" data-write-key="{key}"></script></head>
<body><button id="buy" onclick="loudou.track('Clicked Buy', {{sku: 'A1', revenue: 9.5}})">Buy</button>
<button id="login" onclick="loudou.identify('browser-user', {{plan: 'pro'}}); loudou.flush()">Log in</button>
<a id="next" href="/other.html">next</a></body></html>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("browser") / "b.duckdb")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def site(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A web site on its own 127.0.0.1 port (another origin than the server)."""
    with serve_site(tmp_path_factory.mktemp("site"), server.url, server.keys["write"]) as url:
        yield url


@contextlib.contextmanager
def serve_site(root: Path, server_url: str, key: str) -> Iterator[str]:
    (root / "index.html").write_text(PAGE.format(server=server_url, key=key))
    (root / "other.html").write_text("<html><body>other</body></html>")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def wait_for(server: Server, predicate: Any, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = server.get("/v1/events", limit=1000).json()["events"]
        if predicate(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_page_view_click_and_identify(server: Server, site: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{site}/index.html?utm_source=newsletter&utm_campaign=spring")
    page.click("#buy")
    anon = page.evaluate("loudou.anonymousId()")
    page.evaluate("loudou.flush()")
    events = wait_for(server, lambda ev: any(e["event"] == "Clicked Buy" for e in ev))
    click = next(e for e in events if e["event"] == "Clicked Buy")
    view = next(e for e in events if e["event"] == "page_view")
    assert click["customer_id"] == anon == view["customer_id"]
    assert click["revenue"] == 9.5 and click["properties"]["sku"] == "A1"
    assert (view["channel"], view["campaign"]) == ("newsletter", "spring")
    assert view["properties"]["context_page_path"] == "/index.html"
    assert view["properties"]["context_user_agent"]
    # the anonymous id survives a reload (cookie + localStorage)
    page.reload()
    assert page.evaluate("loudou.anonymousId()") == anon
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies["ldu_aid"] == anon
    # identify links the anonymous history to the customer
    page.click("#login")
    wait_for(server, lambda ev: any(e["customer_id"] == "browser-user" for e in ev))
    mine = server.get("/v1/events", customer_id="browser-user", limit=1000).json()["events"]
    assert {"page_view", "Clicked Buy", "identify"} <= {e["event"] for e in mine}
    page.close()


def test_queue_goes_out_with_send_beacon_on_page_hide(
    server: Server, site: str, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site}/index.html")
    page.evaluate("loudou.track('Left Early', {n: 1})")  # queued, not yet flushed (2 s timer)
    assert page.evaluate("loudou.queue().length") >= 1
    page.click("#next")  # navigation hides the page: the queue goes out by sendBeacon
    page.wait_for_url("**/other.html")
    events = wait_for(server, lambda ev: any(e["event"] == "Left Early" for e in ev))
    assert any(e["event"] == "Left Early" for e in events)
    context.close()


def test_failed_batch_is_kept_and_retried(tmp_path: Path, browser: Any) -> None:
    """A batch answered 503 (a real one: the server's disk is full) stays queued; while the server
    restarts, sending fails; once it is back, the retry stores each message once."""
    db = tmp_path / "retry.duckdb"
    keys = make_keys(db)
    port = free_port()
    full = start(db, keys, port=port, max_file_bytes=db.stat().st_size + 96 * 1024)
    with full.client() as http:  # fill the disk until even the smallest commit fails
        for pad, count in ((2000, 10), (200, 10), (0, 1)):
            for n in range(300):
                batch = [
                    {
                        "type": "track",
                        "userId": "pad",
                        "event": "pad",
                        "messageId": f"{pad}-{n}-{i}",
                    }
                    | {"properties": {"pad": "x" * pad}}
                    for i in range(count)
                ]
                if http.post("/v1/batch", json={"batch": batch}).status_code == 503:
                    break
    statuses: list[int] = []
    with serve_site(tmp_path, full.url, keys["write"]) as site:
        page = browser.new_page()
        page.on("response", lambda r: statuses.append(r.status) if "/v1/batch" in r.url else None)
        page.goto(f"{site}/index.html")
        page.evaluate("loudou.track('Retried', {n: 1}); loudou.flush()")
        page.wait_for_function("loudou.queue().some(m => m.event === 'Retried')")  # kept
        assert 503 in statuses
        full.kill()
        healthy = start(db, keys, port=port)  # same address: the tracker retries every 2 s
        try:
            events = wait_for(healthy, lambda ev: any(e["event"] == "Retried" for e in ev))
            assert page.evaluate("loudou.queue().length") == 0
        finally:
            page.close()
            healthy.stop()
    mine = [e["event"] for e in events if e["event"] != "pad"]
    assert sorted(mine) == ["Retried", "page_view"]  # each once
