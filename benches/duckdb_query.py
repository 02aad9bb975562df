"""Run one SQL file with DuckDB over a folder of Parquet tables; print the wall time.

Used to measure DuckDB next to ooc on the same files, each query in its own process:

    /usr/bin/time -f '%e s %M KB' python benches/duckdb_query.py --data data/sf10 q01.sql

`--memory-limit 1GB` applies DuckDB's own limit; `--threads N` its thread count.
"""

import argparse
import os
import time

import duckdb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--memory-limit")
    parser.add_argument("query")
    args = parser.parse_args()

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
    for entry in sorted(os.listdir(args.data)):
        path = os.path.join(args.data, entry)
        if entry.endswith(".parquet"):
            name, source = entry[: -len(".parquet")], f"read_parquet('{path}')"
        elif os.path.isdir(path):
            name, source = entry, f"read_parquet('{path}/**/*.parquet', hive_partitioning = true)"
        else:
            continue
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
    sql = open(args.query).read()
    start = time.perf_counter()
    rows = con.execute(sql).fetchall()
    elapsed = time.perf_counter() - start
    print(f"rows={len(rows)} wall={elapsed:.3f}")


if __name__ == "__main__":
    main()
