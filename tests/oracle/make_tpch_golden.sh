#!/usr/bin/env bash
# Regenerates tests/tpch/golden/qNN.csv: builds ooc-datagen, writes TPC-H SF0.1 (row groups of
# 100,000 rows, the data tests/tpch.rs generates) into $TARGET/ooc-test-data/sf0.1-golden, then
# computes each answer with DuckDB.
#   usage: tests/oracle/make_tpch_golden.sh        (CARGO_TARGET_DIR is honoured)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
data_dir="$target_dir/ooc-test-data/sf0.1-golden"

cd "$repo"
cargo build --release -p ooc-datagen
"$target_dir/release/ooc-datagen" tpch --sf 0.1 --row-group-rows 100000 --out "$data_dir"

python="$("$repo/tests/oracle/venv.sh")"
"$python" "$repo/tests/oracle/make_golden.py" --data "$data_dir" --out "$repo/tests/tpch/golden" \
    "$repo"/tests/tpch/queries/q*.sql
echo "golden files in $repo/tests/tpch/golden (data: $data_dir)"
