"""Whole-process latency of short `ooc query` runs, to the tenth of a millisecond.

    benches/.venv/bin/python benches/latency.py --data /work/data/sf10
        [--queries partkey_absent orderkey] [--runs 21] [--binary target/release/ooc ...]

The benchmark runner takes a process's wall time from `/usr/bin/time`, whose resolution
hides differences below about 15 ms. This times `subprocess.run` of each binary around each
query of `benches/queries/lookup/` named (the process's start, its footer reads, planning and
answer), alternating the binaries run by run, and prints the median and minimum in ms.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import time

HERE = pathlib.Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=pathlib.Path)
    parser.add_argument("--queries", nargs="+", default=["partkey_absent", "orderkey"])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--binary", nargs="+", default=[str(HERE.parent / "target/release/ooc")])
    args = parser.parse_args()
    for query in args.queries:
        sql = HERE / "queries" / "lookup" / f"{query}.sql"
        times: dict[str, list[float]] = {b: [] for b in args.binary}
        for _ in range(args.runs):
            for binary in args.binary:
                cmd = [binary, "query", "--data", str(args.data), "--file", str(sql)]
                start = time.perf_counter()
                subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
                times[binary].append((time.perf_counter() - start) * 1000)
        for binary, xs in times.items():
            print(
                f"{query:<20} {binary:<40} median {statistics.median(xs):6.1f} ms"
                f"  min {min(xs):6.1f} ms  ({len(xs)} runs)"
            )


if __name__ == "__main__":
    main()
