"""The decode floor of a query's columns, and how far the query is above it.

    python benches/scan_floor.py --data data/sf10 [--engines ooc,duckdb,pyarrow] [--runs 3]
        [--threads 2] [--queries q01,q06]

For TPC-H Q1 and Q6 over `lineitem`, every engine decodes exactly the columns the query reads
(all rows, no filter) and touches every value with the cheapest aggregate it has: ooc and
DuckDB `SELECT max(...)`/`sum(...)` of each column, pyarrow `pq.read_table(columns=...)` with
its thread pool (decoded into memory, nothing computed). The floor of a query is the fastest
of these decodes; the query itself is then run by ooc (and DuckDB) and reported against it.
Every measurement is in-process (imports excluded), warm page cache, medians of `--runs`,
engines alternating within each round. One process per engine: peak RSS is not reported here
(use the runner for that).
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

COLUMNS = {
    "q01": [
        "l_returnflag",
        "l_linestatus",
        "l_quantity",
        "l_extendedprice",
        "l_discount",
        "l_tax",
        "l_shipdate",
    ],
    "q06": ["l_shipdate", "l_discount", "l_quantity", "l_extendedprice"],
}

STRINGS = {"l_returnflag", "l_linestatus"}


def decode_sql(columns, lineitem):
    parts = [
        f"max({c})" if c in STRINGS or c == "l_shipdate" else f"sum({c})" for c in columns
    ]
    return f"SELECT {', '.join(parts)} FROM {lineitem}"


def query_sql(name):
    with open(os.path.join(HERE, "..", "tests", "tpch", "queries", f"{name}.sql")) as f:
        return f.read()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--engines", default="ooc,duckdb,pyarrow")
    p.add_argument("--queries", default="q01,q06")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    engines = args.engines.split(",")
    lineitem = os.path.join(args.data, "lineitem.parquet")

    import duckdb
    import ooc
    import pyarrow.parquet as pq

    ooc.config(threads=args.threads, cache=False)
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.execute(f"CREATE VIEW lineitem AS SELECT * FROM read_parquet('{lineitem}')")
    ooc_tables = {"lineitem": lineitem}

    def ooc_sql(sql):
        return lambda: ooc.sql(sql, **ooc_tables).collect()

    def duck_sql(sql):
        return lambda: con.execute(sql).fetchall()

    for q in args.queries.split(","):
        columns = COLUMNS[q]
        cases = {}
        if "ooc" in engines:
            cases["ooc decode"] = ooc_sql(decode_sql(columns, "lineitem"))
        if "duckdb" in engines:
            cases["duckdb decode"] = duck_sql(decode_sql(columns, "lineitem"))
        if "pyarrow" in engines:
            cases["pyarrow decode"] = lambda: pq.read_table(
                lineitem, columns=columns, use_threads=True
            )
        if "ooc" in engines:
            cases[f"ooc {q}"] = ooc_sql(query_sql(q))
        if "duckdb" in engines:
            cases[f"duckdb {q}"] = duck_sql(query_sql(q))
        times = {k: [] for k in cases}
        for _ in range(args.runs):
            for name, run in cases.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        medians = {k: statistics.median(v) for k, v in times.items()}
        decodes = {k: v for k, v in medians.items() if k.endswith("decode")}
        floor_name = min(decodes, key=decodes.get)
        floor = decodes[floor_name]
        print(f"## {q} over {lineitem}: columns {', '.join(columns)}")
        print(f"floor: {floor:.3f} s ({floor_name})")
        for name, m in medians.items():
            runs = " ".join(f"{t:.3f}" for t in times[name])
            print(f"{name:16} {m:7.3f} s  {m / floor:5.2f}x floor   runs {runs}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
