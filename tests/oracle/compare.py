#!/usr/bin/env python3
"""Differential test: run each query in DuckDB and in ooc, compare the results.

usage: compare.py --data DIR [--ooc target/release/ooc] FILE.sql...

For each file: DuckDB's result (rendered in the golden CSV dialect) against the stdout of
``ooc query --data DIR --format csv --null-string NULL --file FILE.sql``. Rows are compared
in order iff the outermost query has an ORDER BY. Prints PASS/FAIL per file and the first
differences; exits 1 if any file fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle  # noqa: E402


def run_ooc(ooc: str, data_dir: str, query_path: Path, timeout_seconds: float) -> subprocess.CompletedProcess:
    command = [ooc, "query", "--data", data_dir, "--format", "csv", "--null-string", "NULL", "--file", str(query_path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of NAME.parquet files / NAME/ folders")
    parser.add_argument("--ooc", default="target/release/ooc", help="path of the ooc binary")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per ooc run")
    parser.add_argument("queries", nargs="+", help="SQL files")
    arguments = parser.parse_args()
    failed = []
    for query_path in map(Path, arguments.queries):
        sql = query_path.read_text(encoding="utf-8")
        ordered = oracle.has_outer_order_by(sql)
        try:
            columns, rows = oracle.run_duckdb(sql, arguments.data)
        except Exception as error:
            print(f"FAIL {query_path}: DuckDB failed: {error}")
            failed.append(query_path)
            continue
        expected = oracle.golden_csv_text(columns, rows)
        started = time.monotonic()
        try:
            result = run_ooc(arguments.ooc, arguments.data, query_path, arguments.timeout)
        except subprocess.TimeoutExpired:
            print(f"FAIL {query_path}: ooc timed out after {arguments.timeout:.0f}s")
            failed.append(query_path)
            continue
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            print(f"FAIL {query_path}: ooc exited with {result.returncode}")
            print("  stderr: " + result.stderr.strip().replace("\n", "\n          "))
            failed.append(query_path)
            continue
        differences = oracle.compare(expected, result.stdout, ordered)
        if differences:
            print(f"FAIL {query_path} ({'ordered' if ordered else 'unordered'}, {len(rows)} expected rows)")
            for difference in differences:
                print(f"  {difference}")
            failed.append(query_path)
        else:
            print(f"PASS {query_path} ({len(rows)} rows, ooc {elapsed:.2f}s)")
    total = len(arguments.queries)
    print(f"{total - len(failed)}/{total} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
