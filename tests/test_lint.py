"""The style bar as a test: ``ruff`` and ``mypy`` clean over every package, so CI (which
runs ``make test``, not ``make lint``) fails on a lint or type error like on any other."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.livehelp import ROOT

PACKAGES = ["stream_app", "agents", "tables", "connectors"]


@pytest.mark.parametrize(
    "tool",
    [["ruff", "check", *PACKAGES, "tests"], ["mypy", *PACKAGES]],
    ids=["ruff", "mypy"],
)
def test_clean(tool: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", *tool], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(tool)}:\n{out.stdout[-4000:]}{out.stderr[-2000:]}"
