#!/usr/bin/env bash
# Creates tests/oracle/.venv (once) with the pinned DuckDB oracle and prints its python path.
#   usage: tests/oracle/venv.sh            → /abs/path/tests/oracle/.venv/bin/python
set -euo pipefail
oracle_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv_dir="$oracle_dir/.venv"
stamp="$venv_dir/.requirements-installed"
if [[ ! -x "$venv_dir/bin/python" ]]; then
    python3 -m venv "$venv_dir" >&2
fi
if [[ ! -f "$stamp" ]] || ! cmp -s "$oracle_dir/requirements.txt" "$stamp"; then
    "$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$oracle_dir/requirements.txt" >&2
    cp "$oracle_dir/requirements.txt" "$stamp"
fi
echo "$venv_dir/bin/python"
