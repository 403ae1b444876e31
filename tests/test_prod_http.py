"""The worker's HTTP surface with ``KPI_API_TOKEN`` set, on a real worker: the API and
``/metrics`` need the bearer token, the pages and their assets do not, faust's own
``/router`` and ``/table`` endpoints are off, the probes answer, and the wallboard in a real
browser asks for the token once and keeps it."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from stream_app.tools.producer import produce_lines
from tests.browserhelp import chromium_page
from tests.livehelp import Deployment
from tests.test_prod_secure import contract_events

pytestmark = [pytest.mark.stack, pytest.mark.timeout(300)]


def _get(port: int, path: str, token: str | None = None) -> tuple[int, bytes, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def _wait(check: Any, deadline_s: float, dep: Deployment, what: str) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if check():
                return
        except OSError:
            pass
        assert dep.alive(), f"worker died:\n{dep.logs()}"
        time.sleep(0.3)
    raise AssertionError(f"{what} within {deadline_s}s:\n{dep.logs()}")


def test_the_token_guards_the_api_and_metrics_and_the_board_asks_once(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    dep = Deployment(kafka_bootstrap, redis_url, tmp_path, tag="http",
                     env={"KPI_API_TOKEN": token})
    lines = contract_events(seconds=120, rate=10, seed=41)
    try:
        port = dep.start_worker()
        _wait(lambda: _get(port, "/readyz")[0] == 200, 90, dep, "not ready")
        asyncio.run(produce_lines(dep.bootstrap, dep.topics, lines))
        _wait(lambda: b"kpi_contacts_offered{" in _get(port, "/metrics", token)[1], 60, dep,
              "no KPI published")
        for path in ("/api/snapshot", "/api/status", "/api/kpis", "/api/alerts", "/metrics"):
            status, body, headers = _get(port, path)
            assert status == 401 and b"KPI_API_TOKEN" in body, (path, status)
            assert headers["WWW-Authenticate"].startswith("Bearer")
            assert _get(port, path, "wrong")[0] == 401, path
            assert _get(port, path, token)[0] == 200, path
        for path in ("/", "/agents", "/products", "/assets/auth.js", "/assets/common.js"):
            assert _get(port, path)[0] == 200, path
        for path in ("/router", "/router/", "/table/kpi-state/", "/table/kpi-state/x/"):
            assert _get(port, path)[0] == 404, path
        for path in ("/healthz", "/readyz"):
            status, body, _ = _get(port, path)
            assert status == 200 and json.loads(body)["ok"] is True, (path, body)
        _board_asks_once(port, token, tmp_path)
    finally:
        dep.stop_all()
    assert token not in dep.logs(None)


def _board_asks_once(port: int, token: str, tmp: Path) -> None:
    with chromium_page(tmp / "profile") as page:
        asked: list[str] = []

        def answer(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept(token)

        page.on("dialog", answer)
        with page.expect_response(
            lambda r: "api/snapshot" in r.url and r.status == 200, timeout=20_000
        ):
            page.goto(f"http://127.0.0.1:{port}/")
        assert len(asked) == 1 and "KPI_API_TOKEN" in asked[0]
        assert page.evaluate("localStorage.getItem('kpi-stream.api-token')") == token
        with page.expect_response(
            lambda r: "api/snapshot" in r.url and r.status == 200, timeout=20_000
        ):
            page.reload()
        page.wait_for_timeout(1500)  # a few more polls: none may ask again
        assert len(asked) == 1
