#!/usr/bin/env bash
# Creates (or updates) benches/.venv for the benchmark runner: the peer engines pinned in
# benches/requirements.txt, matplotlib, and ooc's own Python library built from ./python in
# release mode (`pip install ./python`, reusing the release build of `make build`).
#   usage: benches/setup.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/benches/.venv"
requirements="$repo/benches/requirements.txt"
stamp="$venv/.requirements-installed"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" ]] || ! cmp -s "$requirements" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
# The wheel is rebuilt when the Rust or Python sources changed since the last install.
built="$venv/.ooc-installed"
sources="$(cd "$repo" && git ls-files -s engine io python Cargo.toml Cargo.lock 2>/dev/null | sha1sum)$(cd "$repo" && git diff HEAD -- engine io python | sha1sum)"
if [[ ! -f "$built" ]] || [[ "$(cat "$built")" != "$sources" ]]; then
    CARGO_TARGET_DIR="$repo/target" "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$repo/python"
    echo "$sources" > "$built"
fi
