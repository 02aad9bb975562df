#!/usr/bin/env python3
"""Writes tests/golden/NAME.csv for each query file, computed by DuckDB.

usage: make_golden.py --data DIR --out tests/golden tests/queries/*.sql
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of NAME.parquet files / NAME/ folders")
    parser.add_argument("--out", required=True, help="folder for the golden CSV files")
    parser.add_argument("queries", nargs="+", help="SQL files")
    arguments = parser.parse_args()
    out_dir = Path(arguments.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for query_path in map(Path, arguments.queries):
        try:
            columns, rows = oracle.run_duckdb(query_path.read_text(encoding="utf-8"), arguments.data)
        except Exception as error:  # report every failing query, not just the first
            print(f"ERROR {query_path}: {error}", file=sys.stderr)
            failures += 1
            continue
        golden_path = out_dir / f"{query_path.stem}.csv"
        oracle.write_golden_csv(golden_path, columns, rows)
        print(f"wrote {golden_path} ({len(rows)} rows)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
