#!/usr/bin/env bash
# Regenerates the golden results: builds ooc-datagen, writes TPC-H SF0.01 (row groups of 10,000
# rows) and the edge data set (without the huge row group) into $TARGET/ooc-test-data/sf0.01,
# then computes tests/golden/NAME.csv for every tests/queries/NAME.sql with DuckDB.
#   usage: tests/oracle/make_golden.sh        (CARGO_TARGET_DIR is honoured)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
data_dir="$target_dir/ooc-test-data/sf0.01"

cd "$repo"
cargo build --release -p ooc-datagen
datagen="$target_dir/release/ooc-datagen"
"$datagen" tpch --sf 0.01 --row-group-rows 10000 --out "$data_dir"
"$datagen" edge --out "$data_dir"

python="$("$repo/tests/oracle/venv.sh")"
rm -f "$repo"/tests/golden/*.csv
"$python" "$repo/tests/oracle/make_golden.py" --data "$data_dir" --out "$repo/tests/golden" \
    "$repo"/tests/queries/*.sql
echo "golden files in $repo/tests/golden (data: $data_dir)"
