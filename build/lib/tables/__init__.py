"""State and aggregate maths of the contract: pure, no I/O, no clock reads.

The hot modules may sit beside their sources compiled to C by mypyc
(``infra/build_native.py``, run by ``make install``). Python would load a
compiled module before its ``.py`` even when the source is newer, so this
package checks: with ``KPI_PURE_PYTHON=1``, or when (in a source checkout) any
compiled module is older than its source, *every* module of the package loads
from source (the compiled ones call each other directly, so they are used all
together or not at all) and a warning says how to rebuild. An installed wheel
is not checked: its files carry the times of its unpacking, not of its build.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent


def compiled_modules() -> dict[str, Path]:
    """Module name -> its compiled file, for the modules that have one."""
    out: dict[str, Path] = {}
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for path in _HERE.glob("*" + suffix):
            stem = path.name[: -len(suffix)]
            if (_HERE / f"{stem}.py").exists():
                out[stem] = path
    return out


def _stale(compiled: dict[str, Path]) -> list[str]:
    return sorted(
        name
        for name, path in compiled.items()
        if path.stat().st_mtime < (_HERE / f"{name}.py").stat().st_mtime
    )


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds ``tables.<name>`` in ``<name>.py`` even where a compiled module exists."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.partition(".")
        if package != __name__ or not name or "." in name:
            return None
        source = _HERE / f"{name}.py"
        if not source.exists():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _choose() -> bool:
    """True when the compiled modules are in use."""
    compiled = compiled_modules()
    if not compiled:
        return False
    if os.environ.get("KPI_PURE_PYTHON", "") not in ("", "0"):
        reason = None
    else:
        checkout = (_HERE.parent / "pyproject.toml").exists()
        stale = _stale(compiled) if checkout else []
        if not stale:
            return True
        reason = (
            f"tables: compiled {', '.join(stale)} older than the source; running the "
            "pure-Python core (slower). Rebuild with `make native`."
        )
    sys.meta_path.insert(0, _SourceFirst())
    if reason:
        warnings.warn(reason, RuntimeWarning, stacklevel=2)
    return False


NATIVE: bool = _choose()
