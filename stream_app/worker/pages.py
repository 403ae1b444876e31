"""The wallboard's other pages (agents, products): HTML shells served from the assets.

Each page is one HTML file of ``stream_app/outputs/web`` that reads the same
API as the queue board (``/api/snapshot``, ``/api/kpis``).
"""

from __future__ import annotations

from typing import Any

from stream_app.worker import assets

PAGES = {"/agents": "agents.html", "/products": "products.html"}


def register(app: Any) -> None:
    for path, name in PAGES.items():
        _page(app, path, name)


def _page(app: Any, path: str, name: str) -> None:
    @app.page(path, name=f"page-{name}")
    async def _serve(web: Any, request: Any) -> Any:
        body = assets.read(name)
        if not body:
            return web.bytes(b"not found", status=404)
        return web.bytes(body, headers={"Content-Type": assets.TYPES[".html"]})
