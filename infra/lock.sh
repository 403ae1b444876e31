#!/usr/bin/env bash
# Regenerate the hash-pinned lock files every install uses, so that two installs of the same
# commit get the same packages, byte for byte, or fail:
#
#   infra/requirements/runtime.lock   the project's dependencies (the Docker image)
#   infra/requirements/dev.lock       + the dev and bench extras (`make install`)
#   infra/requirements/build.lock     mypy, setuptools, wheel (the image's build stage)
#
# pip installs them with --require-hashes; the project itself is then installed with
# --no-deps. Run this after changing dependencies in pyproject.toml (or build.in), commit
# the locks with it, and run `make install` to get them. pip-tools runs from its own
# virtualenv under .cache/, never from .venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
OUT="$HERE/requirements"
TOOLS="$ROOT/.cache/pip-tools"
PYTHON="${PYTHON:-python3.11}"

if [[ ! -x "$TOOLS/bin/pip-compile" ]]; then
    "$PYTHON" -m venv "$TOOLS"
    "$TOOLS/bin/pip" install -q "pip-tools>=7.4"
fi

# The dev extra names the project itself (kpi-stream[bench]); compile from a copy without
# that line and ask for the bench extra directly, so the lock does not pin the project.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
grep -v '"kpi-stream\[' "$ROOT/pyproject.toml" >"$work/pyproject.toml"
cp "$ROOT/README.md" "$work/"

compile() {
    CUSTOM_COMPILE_COMMAND="infra/lock.sh" "$TOOLS/bin/pip-compile" -q --generate-hashes \
        --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
        --no-emit-trusted-host "$@"
}

(cd "$work" && compile -o "$OUT/runtime.lock" pyproject.toml)
(cd "$work" && compile --extra dev --extra bench -o "$OUT/dev.lock" pyproject.toml)
(cd "$OUT" && compile -o build.lock build.in)
echo "lock.sh: $(grep -c '==' "$OUT/runtime.lock") runtime, $(grep -c '==' "$OUT/dev.lock") dev," \
    "$(grep -c '==' "$OUT/build.lock") build packages pinned in ${OUT#"$ROOT"/}" >&2
