"""How long a result-cache hit takes from Python, by result size (issue #28).

    benches/.venv/bin/python benches/cache_hits.py --data /work/data/sf10
        [--mods 400 100 10 2 1] [--runs 5] [--cache-dir DIR]

For each M in `--mods`, stores `l_orderkey, l_partkey, l_quantity, l_shipdate` of the
`lineitem` rows with `l_orderkey % M = 0` (M = 1: all 60M rows at SF10, a 2 GB entry), then
times, `--runs` times each:

* `hit`: `collect(cache=True)` in this process (the frame from the run before is dropped
  first, so that freeing it is not counted);
* `fresh`: the first `collect(cache=True)` of a new Python process (import excluded), as
  after a notebook kernel restart;
* `first use`: `pyarrow.table(df)` of the hit, when its bytes are checked and decoded.

Prints one line per size with the medians and maxima. The cache directory (a temporary one
by default) is removed at the end; the bound is raised to 8 GB so that the largest entry fits.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

COLUMNS = ("l_orderkey", "l_partkey", "l_quantity", "l_shipdate")

FRESH = """
import sys, time, ooc
ooc.config(cache_dir=sys.argv[1], cache_min_time=0, cache_max_size="8GB")
lf = ooc.scan_parquet(sys.argv[2]).filter(ooc.col("l_orderkey") % int(sys.argv[3]) == 0)
lf = lf.select(*sys.argv[4:])
t = time.perf_counter()
df = lf.collect(cache=True)
print((time.perf_counter() - t) * 1000)
assert df.stats["cache"] == "hit", df.stats["cache"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=pathlib.Path)
    parser.add_argument("--mods", type=int, nargs="+", default=[400, 100, 10, 2, 1])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache-dir", type=pathlib.Path)
    args = parser.parse_args()

    import ooc
    import pyarrow as pa

    cache_dir = args.cache_dir or pathlib.Path(tempfile.mkdtemp(prefix="ooc-cache-hits-"))
    lineitem = args.data / "lineitem.parquet"
    ooc.config(cache_dir=str(cache_dir), cache_min_time=0, cache_max_size="8GB")
    try:
        for mod in args.mods:
            lf = ooc.scan_parquet(lineitem).filter(ooc.col("l_orderkey") % mod == 0)
            lf = lf.select(*COLUMNS)
            df = lf.collect(cache=True)
            hits, uses, fresh = [], [], []
            for _ in range(args.runs):
                del df
                t = time.perf_counter()
                df = lf.collect(cache=True)
                hits.append((time.perf_counter() - t) * 1000)
                assert df.stats["cache"] == "hit", df.stats["cache"]
                t = time.perf_counter()
                table = pa.table(df)
                uses.append((time.perf_counter() - t) * 1000)
                assert table.num_rows == df.height
                del table
                out = subprocess.run(
                    [sys.executable, "-c", FRESH, str(cache_dir), str(lineitem), str(mod), *COLUMNS],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                fresh.append(float(out.stdout))
            print("  hits:", [round(h, 1) for h in hits])
            [entry] = [e for e in ooc.cache.entries() if e["rows"] == df.height]
            print(
                f"rows {df.height:>10,}  entry {entry['bytes'] / 2**20:8.1f} MiB  "
                f"hit {statistics.median(hits):5.1f} ms (max {max(hits):5.1f})  "
                f"fresh {statistics.median(fresh):5.1f} ms (max {max(fresh):5.1f})  "
                f"first use {statistics.median(uses):7.1f} ms",
                flush=True,
            )
            del df
    finally:
        if args.cache_dir is None:
            shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
