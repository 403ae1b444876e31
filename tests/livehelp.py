"""Running real workers for the live tests: the project's one deployment helper."""

from __future__ import annotations

from stream_app.tools.deployment import FAMILIES, ROOT, Deployment, free_port

__all__ = ["FAMILIES", "ROOT", "Deployment", "free_port"]
