"""Many queries at once in one Python process under one memory budget (issue #32).

    benches/.venv/bin/python benches/many_queries.py --data data/sf1 [--queries 16]
        [--memory-limit 512MB] [--threads 2] [--runs 3]

Runs the first N TPC-H queries (tests/tpch/queries) at the same time, each from its own
thread of one Python process, after `ooc.config(memory_limit=...)`: the process's budget,
which the running queries share. The process's peak RSS is taken by `/usr/bin/time` from
this small parent; each query's result is written to Parquet and compared with DuckDB's
(computed first, one query per process). Prints one JSON line per run and a summary: wall
time, peak RSS, the most the queries held together (`ooc.memory_budget()`), and whether
every result equals DuckDB's.

`--worker` is the measured process itself (run by the driver).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
QUERIES = REPO / "tests" / "tpch" / "queries"


def tables(data: pathlib.Path) -> dict[str, str]:
    return {p.stem: str(p) for p in sorted(data.glob("*.parquet"))}


def worker(args) -> None:
    """Run the queries concurrently and write each result to `args.out/qNN.parquet`."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    import ooc

    ooc.config(memory_limit=args.memory_limit, threads=args.threads)
    if args.max_concurrent:
        ooc.config(max_concurrent_queries=args.max_concurrent)
    files = tables(pathlib.Path(args.data))
    names = [f"q{i:02d}" for i in range(1, args.queries + 1)]

    def run(name: str) -> float:
        start = time.perf_counter()
        frame = ooc.sql((QUERIES / f"{name}.sql").read_text(), **files).collect()
        pq.write_table(frame.to_arrow(), os.path.join(args.out, f"{name}.parquet"))
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.parallel or len(names)) as pool:
        seconds = list(pool.map(run, names))
    wall = time.perf_counter() - start
    # (Releases before the shared budget had no `memory_budget`.)
    budget = ooc.memory_budget() if hasattr(ooc, "memory_budget") else {}
    print(json.dumps({
        "wall_s": round(wall, 3),
        "query_s": dict(zip(names, [round(s, 3) for s in seconds])),
        "peak_reserved_mib": (budget.get("peak_reserved") or 0) / 2**20,
        "active_after": budget.get("active_queries"),
        "queries_waited": budget.get("queries_waited"),
    }))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--memory-limit", default="512MB")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=0,
                        help="threads that submit queries (default: one per query)")
    parser.add_argument("--max-concurrent", type=int, default=0,
                        help="ooc.config(max_concurrent_queries=...) (default: ooc's)")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    sys.path.insert(0, str(HERE))
    from bench import same_result

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        names = [f"q{i:02d}" for i in range(1, args.queries + 1)]
        (tmp / "duckdb").mkdir()
        for name in names:
            subprocess.run(
                [sys.executable, str(HERE / "peer_query.py"), "--engine", "duckdb", "--data",
                 args.data, "--output", str(tmp / "duckdb" / f"{name}.parquet"),
                 str(QUERIES / f"{name}.sql")],
                check=True, capture_output=True)
        runs = []
        for run in range(1, args.runs + 1):
            out = tmp / f"ooc{run}"
            out.mkdir()
            cmd = ["/usr/bin/time", "-f", "%M", "-o", str(tmp / "rss"), sys.executable, __file__,
                   "--worker", "--data", args.data, "--queries", str(args.queries),
                   "--memory-limit", args.memory_limit, "--threads", str(args.threads),
                   "--parallel", str(args.parallel), "--max-concurrent", str(args.max_concurrent),
                   "--out", str(out)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"run {run} failed:\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["peak_rss_mib"] = int((tmp / "rss").read_text().split()[-1]) / 1024
            result["differ"] = [
                f"{name}: {why}" for name in names
                for same, why in [same_result(str(out / f"{name}.parquet"),
                                              str(tmp / "duckdb" / f"{name}.parquet"))]
                if not same]
            result.update(run=run, queries=args.queries, memory_limit=args.memory_limit,
                          threads=args.threads, max_concurrent=args.max_concurrent or None)
            print(json.dumps(result), flush=True)
            runs.append(result)
        print(json.dumps({
            "summary": True,
            "median_wall_s": statistics.median(r["wall_s"] for r in runs),
            "median_peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
            "max_peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "max_peak_reserved_mib": max(r["peak_reserved_mib"] for r in runs),
            "all_equal": all(not r["differ"] for r in runs),
        }))


if __name__ == "__main__":
    main()
