#!/usr/bin/env bash
# Regenerates tests/tpcds/golden/NN.csv for the TPC-DS queries ooc answers (tests/tpcds.rs lists
# them): builds ooc-datagen, writes TPC-DS SF0.1 (row groups of 100,000 rows, the data
# tests/tpcds.rs generates) into $TARGET/ooc-test-data/tpcds-sf0.1-golden, then computes each
# answer with DuckDB.
#   usage: tests/oracle/make_tpcds_golden.sh 01 03 ...   (the query names; CARGO_TARGET_DIR is honoured)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
data_dir="$target_dir/ooc-test-data/tpcds-sf0.1-golden"

cd "$repo"
cargo build --release -p ooc-datagen
"$target_dir/release/ooc-datagen" tpcds --sf 0.1 --row-group-rows 100000 --out "$data_dir"

python="$("$repo/tests/oracle/venv.sh")"
queries=()
for name in "$@"; do
    queries+=("$repo/tests/tpcds/queries/$name.sql")
done
"$python" "$repo/tests/oracle/make_golden.py" --data "$data_dir" --out "$repo/tests/tpcds/golden" \
    "${queries[@]}"
echo "golden files in $repo/tests/tpcds/golden (data: $data_dir)"
