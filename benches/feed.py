"""Feeding models from a file bigger than memory (issue #33): one case per process, so that
each process's peak RSS is its own (run it under `/usr/bin/time -f %M`; see feed_sf10.sh).

    python benches/feed.py CASE FILE [--out result.npy]

Cases:
  plain      ooc iter_batches() over the five columns, no conversion (the reference rate)
  numpy      ooc iter_batches(100_000, to="numpy", dtype="float32")
  arrow      ooc iter_batches(100_000) as Arrow record batches
  shuffle    ooc iter_batches(100_000, to="numpy", dtype="float32", shuffle=True, seed=7)
             timed, then untimed checks in float64: column sums against the file order's,
             another seed
  same-seed  two passes with one seed, batch by batch: the same order
  sink-check the .npy that `sink` wrote, against DuckDB's values
  pca-ooc    IncrementalPCA(n_components=3).partial_fit over ooc's batches
  pca-duckdb the same, fed by DuckDB's record batches of 100,000 rows (file order)
  pca-polars the same, over polars.read_parquet of the five columns, sliced
  sink       ooc sink_numpy of four columns as float32, then mapped and compared with DuckDB

Every case prints one JSON line: rows, seconds, rows per second and what it checked. The
PCA cases save their components (`--out`) so that the driver compares them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

COLUMNS = ["l_quantity", "l_extendedprice", "l_discount", "l_tax", "l_partkey"]
SINK_COLUMNS = ["l_quantity", "l_extendedprice", "l_discount", "l_tax"]
BATCH = 100_000


def report(**fields) -> None:
    print(json.dumps(fields), flush=True)


def ooc_frame(path: str):
    import ooc

    return ooc.scan_parquet(path)


def run_plain(path: str) -> None:
    start = time.perf_counter()
    rows = 0
    for batch in ooc_frame(path).iter_batches(columns=COLUMNS):
        rows += batch.num_rows
    seconds = time.perf_counter() - start
    report(case="plain", rows=rows, seconds=seconds, rows_per_second=rows / seconds)


def run_numpy(path: str, case: str) -> None:
    """The timed loop only takes the batches (as a training loop would before its own work)."""
    start = time.perf_counter()
    rows = 0
    sizes = set()
    to = "arrow" if case == "arrow" else "numpy"
    dtype = None if case == "arrow" else "float32"
    for x in ooc_frame(path).iter_batches(BATCH, to=to, columns=COLUMNS, dtype=dtype):
        n = x.num_rows if case == "arrow" else x.shape[0]
        rows += n
        sizes.add(n)
    seconds = time.perf_counter() - start
    report(case=case, rows=rows, seconds=seconds, rows_per_second=rows / seconds,
           batch_sizes=sorted(sizes)[-2:])


def run_shuffle(path: str) -> None:
    """One timed pass; then, untimed, the column sums of a shuffled pass against those of the
    file's order, and the first rows of two passes with the same seed and one with another."""

    def once(seed, keep):
        start = time.perf_counter()
        rows, sums, head, sizes = 0, np.zeros(len(COLUMNS)), None, set()
        shuffle = seed is not None
        # Timed as float32 (what models take); the sums are compared in float64.
        dtype = "float64" if keep else "float32"
        for x in ooc_frame(path).iter_batches(BATCH, to="numpy", columns=COLUMNS, dtype=dtype,
                                                shuffle=shuffle, seed=seed):
            rows += x.shape[0]
            sizes.add(x.shape[0])
            if keep:
                sums += x.sum(axis=0)
                if head is None:
                    head = x[:1000].copy()
        return rows, time.perf_counter() - start, sums, head, sizes

    rows, seconds, _, _, sizes = once(7, False)
    _, _, sums, head, _ = once(7, True)
    _, _, _, head2, _ = once(8, True)
    _, _, plain_sums, plain_head, _ = once(None, True)
    report(case="shuffle", rows=rows, seconds=seconds, rows_per_second=rows / seconds,
           batch_sizes=sorted(sizes)[-2:], sums=sums.tolist(), file_order_sums=plain_sums.tolist(),
           sums_equal=bool(np.allclose(sums, plain_sums, rtol=1e-12, atol=0)),
           first_rows_moved=not np.array_equal(head, plain_head),
           other_seed_other_order=not np.array_equal(head, head2))


def run_same_seed(path: str) -> None:
    """Two shuffled passes with one seed give the same rows in the same order (every batch)."""
    def passes(seed):
        return ooc_frame(path).iter_batches(BATCH, to="numpy", columns=COLUMNS, dtype="float32",
                                            shuffle=True, seed=seed)

    start = time.perf_counter()
    same, batches = True, 0
    for a, b in zip(passes(7), passes(7)):
        same &= bool(np.array_equal(a, b))
        batches += 1
    report(case="same-seed", rows=0, seconds=time.perf_counter() - start, rows_per_second=0,
           batches=batches, same_order=same)


def pca_fit(batches):
    from sklearn.decomposition import IncrementalPCA

    pca = IncrementalPCA(n_components=3)
    rows = 0
    for x in batches:
        pca.partial_fit(x)
        rows += x.shape[0]
    return pca, rows


def run_pca(path: str, case: str, out: str) -> None:
    start = time.perf_counter()
    if case == "pca-ooc":
        batches = ooc_frame(path).iter_batches(BATCH, to="numpy", columns=COLUMNS,
                                               dtype="float32", drop_last=True)
    elif case == "pca-duckdb":
        import duckdb

        con = duckdb.connect()
        cols = ", ".join(f"CAST({c} AS FLOAT) AS {c}" for c in COLUMNS)
        reader = con.execute(f"SELECT {cols} FROM read_parquet('{path}')").fetch_record_batch(BATCH)

        def duck_batches():
            # DuckDB's reader may hand out shorter batches: cut them to exactly BATCH rows,
            # as ooc does, so that both feed partial_fit the same batches.
            pending, held = [], 0
            for b in reader:
                pending.append(np.column_stack([b.column(i).to_numpy() for i in range(b.num_columns)]))
                held += b.num_rows
                while held >= BATCH:
                    block = np.concatenate(pending)
                    yield np.ascontiguousarray(block[:BATCH])
                    pending, held = [block[BATCH:]], held - BATCH

        batches = duck_batches()
    else:
        import polars as pl

        df = pl.read_parquet(path, columns=COLUMNS).select(pl.all().cast(pl.Float32))
        batches = (df.slice(i, BATCH).to_numpy() for i in range(0, df.height - BATCH + 1, BATCH))
    pca, rows = pca_fit(batches)
    seconds = time.perf_counter() - start
    np.save(out, np.vstack([pca.components_, pca.mean_[None, :]]))
    report(case=case, rows=rows, seconds=seconds, rows_per_second=rows / seconds,
           explained_variance_ratio=pca.explained_variance_ratio_.tolist())


def run_sink(path: str, out: str) -> None:
    start = time.perf_counter()
    stats = ooc_frame(path).sink_numpy(out, columns=SINK_COLUMNS, dtype="float32")
    seconds = time.perf_counter() - start
    mapped = np.load(out, mmap_mode="r")
    report(case="sink", rows=int(mapped.shape[0]), seconds=seconds,
           rows_per_second=mapped.shape[0] / seconds, bytes=int(mapped.nbytes),
           shape=list(mapped.shape), engine_rows=stats["rows"])


def run_sink_check(path: str, out: str) -> None:
    """The mapped array against DuckDB's values: DuckDB's DOUBLEs rounded to float32 by NumPy
    (each decimal rounded once to the nearest float32, as ooc's conversion does; DuckDB's own
    CAST(... AS FLOAT) is also counted, it may round twice)."""
    import duckdb

    mapped = np.load(out, mmap_mode="r")
    con = duckdb.connect()
    cols = ", ".join(f"CAST({c} AS DOUBLE), CAST({c} AS FLOAT)" for c in SINK_COLUMNS)
    reader = con.execute(f"SELECT {cols} FROM read_parquet('{path}')").fetch_record_batch(1 << 20)
    at, differ_double, differ_float = 0, 0, 0
    start = time.perf_counter()
    for b in reader:
        as_double = np.column_stack([b.column(2 * i).to_numpy() for i in range(len(SINK_COLUMNS))])
        as_float = np.column_stack([b.column(2 * i + 1).to_numpy() for i in range(len(SINK_COLUMNS))])
        block = mapped[at:at + len(as_double)]
        differ_double += int((block != as_double.astype(np.float32)).sum())
        differ_float += int((block != as_float).sum())
        at += len(as_double)
    report(case="sink-check", rows=at, seconds=time.perf_counter() - start, rows_per_second=0,
           same_rows=bool(at == mapped.shape[0]),
           values_differing_from_duckdb_double_rounded=differ_double,
           values_differing_from_duckdb_cast_float=differ_float)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("file")
    parser.add_argument("--out", default="/tmp/ooc-feed-out.npy")
    args = parser.parse_args()
    if args.case == "plain":
        run_plain(args.file)
    elif args.case in ("numpy", "arrow"):
        run_numpy(args.file, args.case)
    elif args.case == "shuffle":
        run_shuffle(args.file)
    elif args.case.startswith("pca-"):
        run_pca(args.file, args.case, args.out)
    elif args.case == "same-seed":
        run_same_seed(args.file)
    elif args.case == "sink":
        run_sink(args.file, args.out)
    elif args.case == "sink-check":
        run_sink_check(args.file, args.out)
    else:
        sys.exit(f"unknown case {args.case}")


if __name__ == "__main__":
    main()
