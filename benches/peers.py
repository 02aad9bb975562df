"""Time queries with ooc and DuckDB on the same files, each run in its own process.

    python benches/peers.py --data data/sf10 --runs 5 ../shared/tpch/queries/q01.sql ...

For every query and engine: median wall time over `--runs` runs (after one warm-up run) and
the peak RSS of the process (`/usr/bin/time -f %M`, measured from this small parent). Runs of
different engines are interleaved so that machine noise hits both alike. Prints a Markdown
table with the ratio ooc / DuckDB.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    with tempfile.NamedTemporaryFile("r") as t:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name] + cmd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
        rss_kb = int(t.read().strip().splitlines()[-1])
    return wall, rss_kb / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ooc", default="target/release/ooc")
    parser.add_argument("--python", default=sys.executable, help="python with duckdb installed")
    parser.add_argument("queries", nargs="+")
    args = parser.parse_args()

    engines = {
        "ooc": lambda q: [args.ooc, "query", "--data", args.data, "--file", q, "--format", "csv"],
        "duckdb": lambda q: [args.python, os.path.join(HERE, "duckdb_query.py"), "--data", args.data, q],
    }
    print(f"data: {args.data}, runs: {args.runs} (median wall, max peak RSS), cores: {os.cpu_count()}\n")
    print("| query | ooc wall s | ooc RSS MiB | DuckDB wall s | DuckDB RSS MiB | wall ratio ooc/DuckDB |")
    print("|---|---|---|---|---|---|")
    for q in args.queries:
        results = {name: ([], []) for name in engines}
        for name, cmd in engines.items():
            run(cmd(q))  # warm-up: page cache, imports
        for _ in range(args.runs):
            for name, cmd in engines.items():
                wall, rss = run(cmd(q))
                results[name][0].append(wall)
                results[name][1].append(rss)
        o, d = results["ooc"], results["duckdb"]
        ow, dw = statistics.median(o[0]), statistics.median(d[0])
        print(f"| {os.path.basename(q)} | {ow:.2f} | {max(o[1]):.0f} | {dw:.2f} | {max(d[1]):.0f} | {ow / dw:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
