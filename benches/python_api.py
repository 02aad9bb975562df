#!/usr/bin/env python3
"""Measurements of ooc's Python library (issue: the Python lazy API).

Each mode runs in its own process and prints one JSON line, so peak RSS (getrusage) is that
of a process doing only this work:

  tpch      --data DIR            TPC-H Q1, Q3, Q6 with the lazy API vs DuckDB SQL on the same
                                  files: wall (median of --runs after a warm-up) and equality
  groupby   --data DIR --memory-limit 512MB [--key l_orderkey|l_suppkey]
                                  a group-by over lineitem from Python; the process's peak RSS
  polars-read --data DIR          polars.read_parquet(lineitem) alone; the process's peak RSS
  zerocopy  --data DIR            collect a large result, then hand it to Polars
                                  (pl.DataFrame and pl.from_arrow): RSS before and after
  all       --data DIR            every mode above, each in a child process, as a table

The library must be installed in the running interpreter (`pip install ./python`).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python" / "tests"))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def mode_tpch(args) -> dict:
    import duckdb

    import ooc
    from compare import TPCH_TABLES, rows_equal
    from tpch_lazy import q1, q3, q6

    data = pathlib.Path(args.data)
    con = duckdb.connect()
    for t in TPCH_TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data / (t + '.parquet')}')")
    out = {}
    for number, build in ((1, q1), (3, q3), (6, q6)):
        sql = (HERE.parent / "tests" / "tpch" / "queries" / f"q{number:02}.sql").read_text()

        def run_ooc():
            return build(data).collect().rows()

        def run_duckdb():
            return con.execute(sql).fetchall()

        timings = {}
        results = {}
        for name, fn in (("ooc", run_ooc), ("duckdb", run_duckdb)):
            results[name] = fn()  # warm-up
            walls = []
            for _ in range(args.runs):
                start = time.perf_counter()
                fn()
                walls.append(time.perf_counter() - start)
            timings[name] = statistics.median(walls)
        rows_equal(results["ooc"], results["duckdb"], ordered=True)
        out[f"q{number}"] = {
            "ooc_s": round(timings["ooc"], 3),
            "duckdb_s": round(timings["duckdb"], 3),
            "rows": len(results["ooc"]),
            "equal": True,
        }
    return out


def mode_groupby(args) -> dict:
    import ooc
    from ooc import col

    ooc.config(memory_limit=args.memory_limit)
    lineitem = ooc.scan_parquet(pathlib.Path(args.data) / "lineitem.parquet")
    start = time.perf_counter()
    query = lineitem.group_by(args.key).agg(
        qty=col("l_quantity").sum(),
        revenue=(col("l_extendedprice") * (1 - col("l_discount"))).sum(),
        n=ooc.len(),
    )
    if args.sink:
        stats = query.sink_parquet(args.sink)
        rows = stats["rows"]
    else:
        df = query.collect()
        rows, stats = df.height, df.stats
    wall = time.perf_counter() - start
    return {
        "key": args.key,
        "memory_limit": args.memory_limit,
        "rows": rows,
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(peak_rss_mib()),
        "peak_reserved_mib": round(stats["peak_reserved_bytes"] / 2**20),
        "spilled": any(op["spills"] > 0 for op in stats["operators"]),
        "output": "parquet file" if args.sink else "collected in Python",
    }


def mode_polars_read(args) -> dict:
    import polars as pl

    start = time.perf_counter()
    df = pl.read_parquet(pathlib.Path(args.data) / "lineitem.parquet")
    return {
        "rows": df.height,
        "wall_s": round(time.perf_counter() - start, 2),
        "estimated_size_mib": round(df.estimated_size() / 2**20),
        "peak_rss_mib": round(peak_rss_mib()),
    }


def mode_zerocopy(args) -> dict:
    import polars as pl
    import pyarrow as pa

    import ooc

    lineitem = ooc.scan_parquet(pathlib.Path(args.data) / "lineitem.parquet")
    df = lineitem.select("l_orderkey", "l_partkey", "l_extendedprice", "l_shipdate").collect()
    before = current_rss_mib()
    pl_df = pl.DataFrame(df)  # the PyCapsule stream, as a frame
    after = current_rss_mib()
    pl_struct = pl.from_arrow(df)  # Polars 2.1 reads a generic capsule stream as a struct Series
    after_from_arrow = current_rss_mib()
    unnested = pl_struct.struct.unnest()

    return {
        "result_rows": df.height,
        "result_mib": round(df.nbytes / 2**20),
        "rss_before_mib": round(before),
        "rss_after_pl_DataFrame_mib": round(after),
        "rss_after_pl_from_arrow_mib": round(after_from_arrow),
        "polars_rows": [pl_df.height, unnested.height],
    }


MODES = {
    "tpch": mode_tpch,
    "groupby": mode_groupby,
    "polars-read": mode_polars_read,
    "zerocopy": mode_zerocopy,
}


def child(mode: str, args, extra=()) -> dict:
    cmd = [sys.executable, __file__, mode, "--data", args.data, "--runs", str(args.runs), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=[*MODES, "all"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-limit", default="512MB")
    parser.add_argument("--key", default="l_suppkey")
    parser.add_argument("--sink", default=None)
    args = parser.parse_args()
    if args.mode != "all":
        print(json.dumps(MODES[args.mode](args)))
        return
    report = {
        "tpch": child("tpch", args),
        "groupby_suppkey": child("groupby", args, ["--memory-limit", args.memory_limit, "--key", "l_suppkey"]),
        "groupby_orderkey_to_parquet": child(
            "groupby", args,
            ["--memory-limit", args.memory_limit, "--key", "l_orderkey", "--sink", "/tmp/ooc-bench-groupby.parquet"],
        ),
        "polars_read_parquet": child("polars-read", args),
        "zerocopy": child("zerocopy", args),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
