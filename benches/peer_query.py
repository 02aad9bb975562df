"""Run one query with a peer engine (or ooc's Python API) over a folder of Parquet tables;
print the row count and the wall time.

    python benches/peer_query.py --engine duckdb|polars|datafusion|ooc-python --data data/sf10
        q01.sql [--memory-limit 1GB] [--output result.parquet]

Every engine reads the same files and runs the same SQL text. Polars runs its streaming engine
(`collect(engine="streaming")`) on lazily scanned files; DataFusion and DuckDB use their SQL
front ends. `ooc-python` runs the query's lazy-API version from `lazy_queries.py` (not SQL);
it exits with status 3 when the query has none. Each invocation is one process, so the caller
can measure its peak RSS.
"""

import argparse
import os
import time


def tables(data):
    for entry in sorted(os.listdir(data)):
        path = os.path.join(data, entry)
        if entry.endswith(".parquet"):
            yield entry[: -len(".parquet")], path
        elif os.path.isdir(path) and not entry.startswith("."):
            yield entry, os.path.join(path, "**", "*.parquet")


def run_duckdb(data, sql, threads, memory_limit, output):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    for name, path in tables(data):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}', hive_partitioning = true)")
    if output:
        con.execute(f"COPY ({sql}) TO '{output}' (FORMAT parquet)")
        return con.execute(f"SELECT count(*) FROM '{output}'").fetchone()[0]
    return len(con.execute(sql).fetchall())


def run_polars(data, sql, threads, memory_limit, output):
    import polars as pl

    ctx = pl.SQLContext({name: pl.scan_parquet(path) for name, path in tables(data)})
    if output:
        ctx.execute(sql).sink_parquet(output, engine="streaming")
        return pl.scan_parquet(output).select(pl.len()).collect().item()
    return ctx.execute(sql).collect(engine="streaming").height


def run_datafusion(data, sql, threads, memory_limit, output):
    import datafusion

    config = datafusion.SessionConfig().with_target_partitions(threads)
    runtime = datafusion.RuntimeEnvBuilder()
    if memory_limit:
        runtime = runtime.with_fair_spill_pool(parse_size(memory_limit))
    ctx = datafusion.SessionContext(config, runtime)
    for name, path in tables(data):
        ctx.register_parquet(name, path)
    if output:
        ctx.sql(sql).write_parquet(output)
        return ctx.read_parquet(output).count()
    return sum(b.num_rows for b in ctx.sql(sql).collect())


def run_ooc_python(data, query, threads, memory_limit, output):
    import pathlib

    import ooc
    from lazy_queries import LAZY

    name = pathlib.Path(query).stem
    if name not in LAZY:
        raise SystemExit(3)
    ooc.config(threads=threads, memory_limit=memory_limit)
    frame = LAZY[name](pathlib.Path(data))
    if output:
        return frame.sink_parquet(output)["rows"]
    return frame.collect().height


def parse_size(text):
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for unit, factor in units.items():
        if text.upper().endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", required=True,
                        choices=["duckdb", "polars", "datafusion", "ooc-python"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--memory-limit")
    parser.add_argument("--output", help="write the result to this Parquet file")
    parser.add_argument("query")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.engine == "ooc-python":
        rows = run_ooc_python(args.data, args.query, args.threads, args.memory_limit, args.output)
    else:
        sql = open(args.query).read().strip().rstrip(";")
        runner = {"duckdb": run_duckdb, "polars": run_polars, "datafusion": run_datafusion}
        rows = runner[args.engine](args.data, sql, args.threads, args.memory_limit, args.output)
    print(f"rows={rows} wall={time.perf_counter() - start:.3f}")


if __name__ == "__main__":
    main()
