"""One timed pass of `iter_batches` over a Parquet file, for quick alternating comparisons of
the feed's cases (issue #33); `benches/feed_sf10.sh` is the full, checked benchmark.

    usage: benches/.venv/bin/python benches/feed_probe.py FILE {plain,numpy,shuffle,shuffle-arrow}

plain: the engine's batches, no conversion (the reference rate); numpy: batches of 100,000 as
one float32 matrix each; shuffle: the same, shuffled (seed 7); shuffle-arrow: shuffled batches
of 100,000 as Arrow record batches of the columns' own types. Prints case, rows and seconds.
"""

import sys
import time

import ooc

COLUMNS = ["l_quantity", "l_extendedprice", "l_discount", "l_tax", "l_partkey"]


def main() -> None:
    path, case = sys.argv[1], sys.argv[2]
    lf = ooc.scan_parquet(path)
    start = time.perf_counter()
    rows = 0
    if case == "plain":
        for b in lf.iter_batches(columns=COLUMNS):
            rows += b.num_rows
    elif case == "numpy":
        for x in lf.iter_batches(100_000, to="numpy", columns=COLUMNS, dtype="float32"):
            rows += x.shape[0]
    elif case == "shuffle":
        for x in lf.iter_batches(100_000, to="numpy", columns=COLUMNS, dtype="float32",
                                 shuffle=True, seed=7):
            rows += x.shape[0]
    elif case == "shuffle-arrow":
        for b in lf.iter_batches(100_000, columns=COLUMNS, shuffle=True, seed=7):
            rows += b.num_rows
    else:
        sys.exit(f"unknown case {case!r}")
    print(case, rows, round(time.perf_counter() - start, 3))


if __name__ == "__main__":
    main()
