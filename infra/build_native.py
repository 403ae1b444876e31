"""Compile the hot modules of ``tables/`` to C extensions with mypyc, in place.

The core stays plain, type-checked Python (it runs as is when this step is
skipped); mypyc turns the same source into C so the per-event work of the
replay and of the worker stops paying for the interpreter. Python imports an
extension module before a ``.py`` of the same name, so the compiled modules
take over as soon as they sit beside their sources. ``tables/__init__.py``
refuses to import a compiled module older than its source.

Usage: ``python infra/build_native.py [--clean]`` from the repository root
(``make install`` runs it). Needs a C compiler and the Python headers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The per-event path: decode -> clock -> lifecycle -> one cell -> roll-up.
#: tables/schema.py is left out on purpose: msgspec builds its structs with a
#: metaclass mypyc does not compile.
MODULES = [
    "tables/events.py",
    "tables/entities.py",
    "tables/aggregate.py",
    "tables/sketch.py",
    "tables/windows.py",
    "tables/clock.py",
    "tables/cells.py",
    "tables/contacts.py",
    "tables/tickets.py",
    "tables/agents.py",
    "tables/business.py",
    "tables/sla.py",
    "tables/repeats.py",
    "tables/live.py",
    "tables/state.py",
    "tables/rollup.py",
    "tables/engine.py",
    "tables/report.py",
]
#: One shared library for the group, inside the package (not at the top level,
#: where an installed package could not find it).
GROUP = "tables.native"


def compiled() -> list[Path]:
    return sorted((ROOT / "tables").glob("*.so")) + sorted((ROOT / "tables").glob("*.pyd"))


def clean() -> None:
    for path in compiled():
        path.unlink()


def build() -> None:
    from mypyc.build import mypycify
    from setuptools import setup

    os.chdir(ROOT)
    clean()
    setup(
        name="kpi-stream-native",
        ext_modules=mypycify(
            MODULES, opt_level="3", group_name=GROUP, target_dir=".build/native/c"
        ),
        script_args=[
            "-q",
            "build_ext",
            "--inplace",
            "--build-temp",
            ".build/native/tmp",
            "--build-lib",
            ".build/native/lib",
        ],
    )
    # build_ext copies an up-to-date build with its old times; the staleness check
    # in tables/__init__.py compares times, so stamp the copies now.
    for path in compiled():
        os.utime(path)


if __name__ == "__main__":
    if "--clean" in sys.argv[1:]:
        clean()
    else:
        build()
