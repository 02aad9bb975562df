#!/usr/bin/env bash
# Builds the `ooc` Python extension into a virtualenv (python/.venv) and runs the Python tests:
# pytest over python/tests and the docstring examples of the package.
#   usage: python/tests/run.sh [pytest args...]
# The extension is built with Cargo's dev profile (dependencies optimized, as for
# `cargo test`), sharing the build of the Rust tests; `pip install ./python` builds a release
# wheel instead.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/python/.venv"
requirements="$repo/python/tests/requirements.txt"
stamp="$venv/.requirements-installed"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" ]] || ! cmp -s "$requirements" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
cd "$repo/python"
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --quiet
# The TPC-H fixture (SF 0.05) is generated once by ooc-datagen (see tests/conftest.py).
exec "$venv/bin/python" -m pytest -q tests ooc --doctest-modules "$@"
