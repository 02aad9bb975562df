#!/usr/bin/env python3
"""Queries straight over a CSV file (issue #26, item 7): TPC-H `lineitem` as DuckDB writes it
(at SF10 about 7.9 GB, 60M rows), queried by ooc under a memory limit and by DuckDB, Polars
(streaming) and DataFusion, each query in its own process, timed with `/usr/bin/time` (wall
time and peak RSS of the whole process; the peers' Python start-up, about 0.3 s, is included).
Every answer is compared with DuckDB's (floats to 1e-9 relative).

    benches/.venv/bin/python benches/csv_sf10.py --csv /work/tmp/csv10/lineitem.csv \\
        --ooc target/release/ooc --runs 3 --out benches/results/2026-12-06-csv-sf10.md

Make the CSV with DuckDB: COPY (FROM 'data/sf10/lineitem.parquet') TO 'lineitem.csv' (HEADER).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

QUERIES = {
    "q1": """SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
        sum(l_extendedprice) AS sum_base_price,
        sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
        sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
        avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price,
        avg(l_discount) AS avg_disc, count(*) AS count_order
        FROM lineitem WHERE l_shipdate <= DATE '1998-09-02'
        GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus""",
    "q6": """SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
        WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
        AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "top_suppliers": """SELECT l_suppkey, count(*) AS n, sum(l_quantity) AS qty FROM lineitem
        GROUP BY l_suppkey ORDER BY qty DESC, l_suppkey LIMIT 10""",
    "to_parquet": "SELECT * FROM lineitem",
}

PEER = {
    "duckdb": """
import duckdb, json, sys
config = {{'threads': 2}}
if {limit!r}:
    config.update(memory_limit={limit!r}, temp_directory={tmp!r})
con = duckdb.connect(config=config)
con.execute("SET enable_progress_bar = false")
con.execute("CREATE VIEW lineitem AS SELECT * FROM read_csv({csv!r})")
if {out!r}:
    con.execute("COPY (" + {sql!r} + ") TO '" + {out!r} + "' (FORMAT parquet)")
    print(json.dumps(con.execute("SELECT count(*) FROM '" + {out!r} + "'").fetchall()))
else:
    print(json.dumps(con.execute({sql!r}).fetchall(), default=str))
""",
    "polars": """
import polars as pl, json
lf = pl.scan_csv({csv!r}, try_parse_dates=True)
q = pl.SQLContext(lineitem=lf).execute({sql!r})
if {out!r}:
    q.sink_parquet({out!r})
    print(json.dumps([[pl.scan_parquet({out!r}).select(pl.len()).collect().item()]]))
else:
    print(json.dumps(q.collect(engine='streaming').rows(), default=str))
""",
    "datafusion": """
import datafusion, json
ctx = datafusion.SessionContext(datafusion.SessionConfig().with_target_partitions(2))
ctx.register_csv('lineitem', {csv!r}, schema_infer_max_records=20480)
df = ctx.sql({sql!r})
if {out!r}:
    df.write_parquet({out!r})
    import pyarrow.parquet as pq
    print(json.dumps([[pq.ParquetFile({out!r}).metadata.num_rows]]))
else:
    print(json.dumps([tuple(r.values()) for r in df.to_pylist()], default=str))
""",
}


def timed(command: list[str]) -> tuple[float, int, str, str]:
    """Run under /usr/bin/time; (wall s, peak RSS KiB, stdout, stderr)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        p = subprocess.run(
            ["/usr/bin/time", "-o", t.name, "-f", "%e %M"] + command,
            capture_output=True,
            text=True,
        )
        wall, rss = t.read().split()[-2:]
    if p.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {p.stderr[-2000:]}")
    return float(wall), int(rss), p.stdout, p.stderr


def run_ooc(args, name: str, sql: str, tmp: str) -> tuple[float, int, list]:
    sql = sql.replace("FROM lineitem", f"FROM '{args.csv}' lineitem")
    command = [args.ooc, "query", "--no-progress", "--memory-limit", args.memory_limit,
               "--temp-dir", tmp]
    if name == "to_parquet":
        out = os.path.join(tmp, "ooc.parquet")
        wall, rss, _, _ = timed(command + ["-o", out, sql])
        count = subprocess.run(
            [args.ooc, "query", "--format", "csv", f"SELECT count(*) AS n FROM '{out}'"],
            capture_output=True, text=True, check=True,
        ).stdout.split()[1]
        rows = [[int(count)]]
        os.remove(out)
        return wall, rss, rows
    wall, rss, out, _ = timed(command + ["--format", "json", sql])
    rows = [list(r.values()) for r in json.loads(out)] if out.strip() else []
    return wall, rss, rows


def run_peer(args, engine: str, name: str, sql: str, tmp: str, limit: str | None):
    out = os.path.join(tmp, f"{engine}.parquet") if name == "to_parquet" else ""
    script = textwrap.dedent(PEER[engine]).format(
        csv=args.csv, sql=sql, out=out, limit=limit, tmp=os.path.join(tmp, "spill")
    )
    wall, rss, stdout, _ = timed([sys.executable, "-c", script])
    if out and os.path.exists(out):
        if os.path.isdir(out):
            import shutil
            shutil.rmtree(out)
        else:
            os.remove(out)
    return wall, rss, json.loads(stdout)


def same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if len(ra) != len(rb):
            return False
        for x, y in zip(ra, rb):
            try:
                fx, fy = float(x), float(y)
                if not math.isclose(fx, fy, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            except (TypeError, ValueError):
                if str(x) != str(y):
                    return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--ooc", default="target/release/ooc")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--memory-limit", default="256MB")
    parser.add_argument("--queries", default=",".join(QUERIES))
    parser.add_argument("--engines", default="ooc,duckdb,duckdb-limit,polars,datafusion")
    parser.add_argument("--out")
    args = parser.parse_args()
    engines = args.engines.split(",")
    results: dict = {}
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.csv))) as tmp:
        for name in args.queries.split(","):
            sql = QUERIES[name]
            reference = None
            for run in range(args.runs):
                # Alternate the engines within each round.
                for engine in engines:
                    try:
                        if engine == "ooc":
                            wall, rss, rows = run_ooc(args, name, sql, tmp)
                        elif engine == "duckdb-limit":
                            wall, rss, rows = run_peer(args, "duckdb", name, sql, tmp,
                                                       args.memory_limit)
                        else:
                            wall, rss, rows = run_peer(args, engine, name, sql, tmp, None)
                    except Exception as error:  # a peer that fails is reported, not fatal
                        print(f"{name} {engine}: FAILED {str(error)[:300]}", flush=True)
                        results.setdefault(name, {}).setdefault(engine, []).append(None)
                        continue
                    if engine == "duckdb" and reference is None:
                        reference = rows
                    results.setdefault(name, {}).setdefault(engine, []).append(
                        (wall, rss, rows)
                    )
                    print(f"{name} {engine} run {run + 1}: {wall:.2f} s, {rss / 1024:.0f} MiB",
                          flush=True)
            for engine, runs in results[name].items():
                ok = [r for r in runs if r]
                equal = bool(ok) and reference is not None and all(same(r[2], reference) for r in ok)
                results[name][engine] = {
                    "wall": statistics.median(r[0] for r in ok) if ok else None,
                    "rss_mib": statistics.median(r[1] for r in ok) / 1024 if ok else None,
                    "equal": equal,
                    "runs": len(ok),
                }
    lines = [
        f"| query | {' | '.join(engines)} |",
        "|---|" + "---|" * len(engines),
    ]
    for name, per_engine in results.items():
        cells = []
        for engine in engines:
            r = per_engine.get(engine)
            if not r or r["wall"] is None:
                cells.append("failed")
            else:
                mark = "" if r["equal"] else " (differs)"
                cells.append(f"{r['wall']:.1f} s / {r['rss_mib']:.0f} MiB{mark}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
