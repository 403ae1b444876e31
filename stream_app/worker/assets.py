"""The wallboard's files (``stream_app/outputs/web``), read per request so edits show at once."""

from __future__ import annotations

from importlib import resources

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def read(name: str) -> bytes:
    if "/" in name or name.startswith("."):
        return b""
    try:
        return resources.files("stream_app.outputs").joinpath("web", name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return b""
