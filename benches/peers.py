"""Time queries with ooc and its peers on the same files, each run in its own process.

    python benches/peers.py --data data/sf10 --runs 5 [--engines duckdb,polars,datafusion] q01.sql ...
        [--memory-limit 1GB] [--to-parquet]

For every query and engine: median wall time over `--runs` runs (after one warm-up run) and
the median peak RSS of the process (`/usr/bin/time -f %M`, measured from this small parent, so the
parent's own RSS does not leak into the child's figure). Runs of different engines are
interleaved so that machine noise hits all alike. Peers run through `peer_query.py` with the
Python given by `--python` (it must have the engines installed: `benches/.venv`). Prints a
Markdown table; ratios are peer / ooc (above 1: ooc is faster or smaller), with geometric
means over the queries every engine finished in the last row.

`--memory-limit` gives ooc, DuckDB (`memory_limit`) and DataFusion (a fair spill pool) the same
budget; Polars has no such setting and runs unlimited. `--to-parquet` makes every engine write
the result to a Parquet file instead of handing it to the caller, for results too large to
hold (a full sort, a 15M-group aggregate). A run that fails (out of memory, resources
exhausted) or one killed after `--timeout` seconds shows as `failed`.
"""

import argparse
import math
import os
import statistics
import subprocess
import sys
import signal
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout):
    with tempfile.TemporaryDirectory() as out, tempfile.NamedTemporaryFile("r") as t:
        cmd = [c.replace("{out}", os.path.join(out, "result.parquet")) for c in cmd]
        start = time.perf_counter()
        # A session of its own, so a run over the time limit is killed with its children.
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", t.name] + cmd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, None
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return None, None
        rss_kb = int(t.read().strip().splitlines()[-1])
    return wall, rss_kb / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ooc", default="target/release/ooc")
    parser.add_argument("--python", default=os.path.join(HERE, ".venv", "bin", "python"))
    parser.add_argument("--engines", default="duckdb", help="comma-separated: duckdb,polars,datafusion")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per query and engine")
    parser.add_argument("--memory-limit", help="budget for ooc, DuckDB and DataFusion, e.g. 1GB")
    parser.add_argument("--timeout", type=float, default=900,
                        help="seconds before a run is killed and counted as failed")
    parser.add_argument("--to-parquet", action="store_true", help="write results to Parquet files")
    parser.add_argument("queries", nargs="+")
    args = parser.parse_args()

    ooc_extra = ["-o", "{out}"] if args.to_parquet else ["--format", "csv"]
    peer_extra = ["--output", "{out}"] if args.to_parquet else []
    if args.memory_limit:
        ooc_extra += ["--memory-limit", args.memory_limit]
        peer_extra += ["--memory-limit", args.memory_limit]
    engines = {"ooc": lambda q: [args.ooc, "query", "--no-progress", "--data", args.data,
                                 "--file", q] + ooc_extra}
    for name in [e for e in args.engines.split(",") if e]:
        engines[name] = (lambda n: lambda q: [args.python, os.path.join(HERE, "peer_query.py"),
                                              "--engine", n, "--data", args.data] + peer_extra
                         + [q])(name)
    peers = [n for n in engines if n != "ooc"]
    print(f"data: {args.data}; runs: {args.runs} (median wall s, median peak RSS MiB); cores: {os.cpu_count()}; "
          f"memory limit: {args.memory_limit or 'none'}; results: {'Parquet file' if args.to_parquet else 'to the caller'}\n")
    header = (["query"] + [f"{n} wall | {n} RSS" for n in engines]
              + [f"{n}/ooc wall | {n}/ooc RSS" for n in peers])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * (1 + 2 * len(engines) + 2 * len(peers)))
    all_medians = []
    for q in args.queries:
        results = {name: ([], []) for name in engines}
        for _ in range(args.warmup):
            for name, cmd in engines.items():
                run(cmd(q), args.timeout)  # warm-up: page cache, imports
        for _ in range(args.runs):
            for name, cmd in engines.items():
                wall, rss = run(cmd(q), args.timeout)
                if wall is not None:
                    results[name][0].append(wall)
                    results[name][1].append(rss)
        cells = [os.path.basename(q)]
        medians = {}
        for name in engines:
            walls, rsses = results[name]
            if walls:
                medians[name] = (statistics.median(walls), statistics.median(rsses))
                cells.append(f"{medians[name][0]:.2f} | {medians[name][1]:.0f}")
            else:
                cells.append("failed | -")
        for name in peers:
            if name in medians and "ooc" in medians:
                cells.append(f"{medians[name][0] / medians['ooc'][0]:.2f} | "
                             f"{medians[name][1] / medians['ooc'][1]:.2f}")
            else:
                cells.append("- | -")
        print("| " + " | ".join(cells) + " |")
        sys.stdout.flush()
        all_medians.append(medians)

    complete = [m for m in all_medians if len(m) == len(engines)]
    if complete:
        def geomean(values):
            return math.exp(sum(math.log(max(v, 1e-9)) for v in values) / len(values))
        cells = [f"geomean ({len(complete)} queries)"]
        for name in engines:
            cells.append(f"{geomean([m[name][0] for m in complete]):.2f} | "
                         f"{geomean([m[name][1] for m in complete]):.0f}")
        for name in peers:
            cells.append(f"{geomean([m[name][0] / m['ooc'][0] for m in complete]):.2f} | "
                         f"{geomean([m[name][1] / m['ooc'][1] for m in complete]):.2f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
