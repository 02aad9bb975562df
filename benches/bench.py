#!/usr/bin/env python3
"""The benchmark runner: ooc side by side with DuckDB, Polars and DataFusion, on the same TPC-H
files, in the same run, on the machine at hand.

    python benches/bench.py --sf 1 [--suites tpch,memory,scale] [--runs 3] [--warmup 1]
        [--engines ooc,ooc-python,duckdb,polars,datafusion] [--memory-limit 1GB]
        [--scale-sfs 1,3,10] [--timeout 600] [--results benches/results]

Run it with the Python of `benches/.venv` (`make bench` creates it: pinned peers, matplotlib and
ooc's own wheel). TPC-H data is generated with `target/release/ooc-datagen` into `data/sf<SF>`
when absent.

Suites:
  tpch    the 22 TPC-H queries (tests/tpch/queries), no memory limit
  memory  the out-of-core queries (benches/queries/memory): a 15M-group aggregate at SF10, a
          two-key aggregate, COUNT(DISTINCT) of a string column, a full sort, a big join, at
          `--memory-limit` for every engine that has such a setting (Polars has none)
  scale   Q1, Q5, Q18 and the one-group-per-order aggregate at each of `--scale-sfs`, at
          `--memory-limit`: how time and peak memory grow with the data
  tpcds   the 103 TPC-DS queries (tests/tpcds/queries) at `--sf`, at `--memory-limit`; data
          generated with `ooc-datagen tpcds` into `data/tpcds-sf<SF>`
  lookup  selective filters on `lineitem` (benches/queries/lookup): point lookups and an IN list
          on unsorted keys, the sorted key, a join with a few hundred build keys, no memory
          limit. ooc runs twice: with secondary indexes of l_partkey and l_suppkey (built first
          under 256MB, into the work directory, with their time, peak RSS and size recorded)
          and without (`ooc-noindex`). A warm-up round keeps the cold page cache out.

Every run is its own process, started under `/usr/bin/time -f %M` (peak RSS of that process
alone: `time` is a small parent, so the runner's own memory does not leak into the figure) and
writes its result to a Parquet file. A query's engines run interleaved, round after round (one
warm-up round, then `--runs` measured ones), so machine noise hits all alike; the figures are
medians. Each engine's result is compared with DuckDB's (run first, without a memory limit): as
multisets of rows up to 200,000 rows, by a
fingerprint (row count; per column the non-NULL count, and the sum, min and max of numbers or
the distinct count, min and max of the rest) above. Numbers compare within a relative 1e-9 or
an absolute 1e-6 (DataFusion gives the average of a DECIMAL(15,2) truncated to 6 decimals).

Results go to `--results` as `<date>-<suite>-sf<SF>.json`; `report.py` turns them into the
Markdown tables and PNG plots (it runs at the end of every suite).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

ENGINES = ["ooc", "ooc-python", "duckdb", "polars", "datafusion"]
# Engines a suite adds by itself.
SUITE_ENGINES = {"lookup": ["ooc-noindex"]}
# Columns the lookup suite indexes.
LOOKUP_INDEX = ["l_partkey", "l_suppkey"]
SCALE_QUERIES = ["q01.sql", "q05.sql", "q18.sql", "groupby_orderkey.sql"]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The machine and the versions
# ---------------------------------------------------------------------------------------------


def machine() -> dict:
    model = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                ram = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1),
        "cpu": model,
        "os": f"{platform.system()} {platform.release()}",
    }


def versions(ooc_binary: str) -> dict:
    out = {"python": platform.python_version()}
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        out["ooc"] = commit + (" (modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["ooc"] = "unknown"
    try:
        out["ooc"] += " / " + subprocess.run([ooc_binary, "--version"], capture_output=True,
                                             text=True).stdout.strip()
    except OSError:
        pass
    for module in ("duckdb", "polars", "datafusion", "pyarrow"):
        try:
            out[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            out[module] = "not installed"
    return out


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def sf_label(sf: float) -> str:
    return f"{sf:g}"


TPCDS_TABLES = [
    "call_center", "catalog_page", "catalog_returns", "catalog_sales", "customer",
    "customer_address", "customer_demographics", "date_dim", "household_demographics",
    "income_band", "inventory", "item", "promotion", "reason", "ship_mode", "store",
    "store_returns", "store_sales", "time_dim", "warehouse", "web_page", "web_returns",
    "web_sales", "web_site",
]


def ensure_data(sf: float, datagen: str, root: pathlib.Path, benchmark: str = "tpch") -> pathlib.Path:
    if benchmark == "tpcds":
        out = root / f"tpcds-sf{sf_label(sf)}"
        tables = TPCDS_TABLES
    else:
        out = root / f"sf{sf_label(sf)}"
        tables = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region",
                  "supplier"]
    if all((out / f"{t}.parquet").exists() for t in tables):
        return out
    log(f"generating {benchmark.upper()} SF{sf_label(sf)} into {out}")
    subprocess.run([datagen, benchmark, "--sf", str(sf), "--out", str(out),
                    "--row-group-rows", "1000000"], check=True)
    return out


# ---------------------------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------------------------


def command(engine: str, args, data: pathlib.Path, query: pathlib.Path, out: str,
            memory_limit: str | None) -> list[str]:
    if engine in ("ooc", "ooc-noindex"):
        cmd = [args.ooc, "query", "--no-progress", "--data", str(data), "--file", str(query),
               "-o", out]
        if memory_limit:
            cmd += ["--memory-limit", memory_limit]
        if engine == "ooc-noindex":
            cmd += ["--no-index"]
        elif getattr(args, "index_dir", None):
            cmd += ["--index-dir", str(args.index_dir)]
        return cmd
    cmd = [sys.executable, str(HERE / "peer_query.py"), "--engine", engine, "--data", str(data),
           "--output", out]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    return cmd + [str(query)]


def run_once(cmd: list[str], timeout: float) -> dict:
    """Run `cmd` under /usr/bin/time; wall seconds and peak RSS in MiB, or why it failed."""
    with tempfile.NamedTemporaryFile("r") as rss_file, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file.name] + cmd,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"error": f"timeout after {timeout:.0f} s"}
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            lines = [ln for ln in err.read().strip().splitlines() if ln.strip()]
            telling = [ln for ln in lines if "rror" in ln or "xception" in ln] or lines
            reason = telling[-1].strip()[:200] if telling else f"exit status {proc.returncode}"
            if proc.returncode == 3 and not lines:
                reason = "no lazy-API version"
            return {"error": reason, "status": proc.returncode}
        lines = rss_file.read().strip().splitlines()
    return {"wall": wall, "rss": int(lines[-1]) / 1024}


# ---------------------------------------------------------------------------------------------
# Comparing results
# ---------------------------------------------------------------------------------------------


def _normal(value):
    import datetime
    import decimal

    if isinstance(value, (bool, int)) or value is None:
        return value
    if isinstance(value, (float, decimal.Decimal)):
        return float(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return value.rstrip()
    return value


def _close(a, b) -> bool:
    import math

    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def _sort_key(row):
    # Exact values (integers, strings, dates) order the rows; floats, which may differ in the
    # last digits between engines, only coarsely.
    def key(v):
        if v is None:
            return (1, 0, 0.0, "")
        if isinstance(v, float):
            return (0, 0, float(f"{v:.6g}"), "")
        if isinstance(v, int):
            return (0, 0, v, "")
        return (0, 1, 0.0, str(v))
    return tuple(key(v) for v in row)


def same_result(ours: str, reference: str) -> tuple[bool, str]:
    """Whether two Parquet results hold the same rows (see the module docs)."""
    import pyarrow.parquet as pq

    ma, mb = pq.ParquetFile(ours).metadata, pq.ParquetFile(reference).metadata
    if ma.num_columns != mb.num_columns:
        return False, f"{ma.num_columns} columns, expected {mb.num_columns}"
    if ma.num_rows != mb.num_rows:
        return False, f"{ma.num_rows} rows, expected {mb.num_rows}"
    if ma.num_rows <= 200_000:
        def rows(path):
            # Read as a file, not a dataset: results may repeat a column name (TPC-DS 39).
            table = pq.ParquetFile(path).read()
            columns = [[_normal(v) for v in c.to_pylist()] for c in table.columns]
            return sorted(zip(*columns), key=_sort_key) if columns else []
        for i, (ra, rb) in enumerate(zip(rows(ours), rows(reference))):
            if not all(_close(a, b) for a, b in zip(ra, rb)):
                return False, f"row {i}: {ra} vs {rb}"
        return True, ""
    fa, fb = fingerprint(ours), fingerprint(reference)
    for i, (a, b) in enumerate(zip(fa, fb)):
        if not _close(_normal(a), _normal(b)):
            return False, f"fingerprint item {i}: {a} vs {b}"
    return True, "fingerprint"


def fingerprint(path: str) -> tuple:
    import duckdb
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    items = ["count(*)"]
    for field in schema:
        c = '"' + field.name.replace('"', '""') + '"'
        numeric = str(field.type).startswith(("int", "uint", "float", "double", "decimal"))
        items.append(f"count({c})")
        if numeric:
            items += [f"sum(CAST({c} AS DOUBLE))", f"min(CAST({c} AS DOUBLE))",
                      f"max(CAST({c} AS DOUBLE))"]
        else:
            items += [f"count(DISTINCT {c})", f"min(CAST({c} AS VARCHAR))",
                      f"max(CAST({c} AS VARCHAR))"]
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    escaped = path.replace("'", "''")
    return con.execute(f"SELECT {', '.join(items)} FROM read_parquet('{escaped}')").fetchone()


# ---------------------------------------------------------------------------------------------
# A suite
# ---------------------------------------------------------------------------------------------


def measure_query(args, engines: list[str], data: pathlib.Path, query: pathlib.Path,
                  memory_limit: str | None, work: pathlib.Path) -> dict:
    """Every engine on one query: the reference, a warm-up round, measured rounds."""
    runnable = list(engines)
    if "ooc-python" in engines:
        # Only then is ooc's Python library needed (benches/setup.sh installs it).
        from lazy_queries import LAZY

        runnable = [e for e in engines if e != "ooc-python" or query.stem in LAZY]
    # The reference first: DuckDB without a memory limit. Each engine's first result is
    # checked against it at once and deleted, so at most two results are on disk.
    reference = str(work / "reference.parquet")
    if "error" in run_once(command("duckdb", args, data, query, reference, None), args.timeout * 2):
        reference = None
    results = {e: {"walls": [], "rss": [], "errors": []} for e in runnable}
    checks: dict[str, tuple[bool | None, str]] = {}
    for round_ in range(args.warmup + args.runs):
        measured = round_ >= args.warmup
        for engine in runnable:
            r = results[engine]
            if r["errors"] and not r["walls"] and round_ > 0:
                continue  # failed before: do not spend the time again
            out = str(work / f"{engine}.parquet")
            outcome = run_once(command(engine, args, data, query, out, memory_limit), args.timeout)
            if "error" in outcome:
                r["errors"].append(outcome["error"])
                log(f"  {query.name:24} {engine:11} failed: {outcome['error']}")
            else:
                if measured:
                    r["walls"].append(outcome["wall"])
                    r["rss"].append(outcome["rss"])
                if engine not in checks:
                    checks[engine] = same_result(out, reference) if reference else (None, "")
                log(f"  {query.name:24} {engine:11} {'run' if measured else 'warm-up'} "
                    f"{outcome['wall']:8.2f} s {outcome['rss']:8.0f} MiB")
            if os.path.exists(out):
                os.remove(out)
    entry = {"query": query.name, "engines": {}}
    for engine, r in results.items():
        e = {"runs": len(r["walls"])}
        if r["walls"]:
            e["wall"] = statistics.median(r["walls"])
            e["rss"] = statistics.median(r["rss"])
            e["walls"] = [round(w, 3) for w in r["walls"]]
            e["rsses"] = [round(x) for x in r["rss"]]
            e["correct"], note = checks.get(engine, (None, ""))
            if note:
                e["check"] = note
        else:
            e["error"] = r["errors"][-1] if r["errors"] else "not run"
        entry["engines"][engine] = e
    for path in work.glob("*.parquet"):
        path.unlink()
    return entry


def run_suite(args, suite: str, engines: list[str]) -> pathlib.Path:
    tpch_queries = sorted((REPO / "tests" / "tpch" / "queries").glob("q*.sql"))
    memory_queries = sorted((HERE / "queries" / "memory").glob("*.sql"))
    by_name = {q.name: q for q in tpch_queries + memory_queries}
    limit = args.tpch_memory_limit if suite in ("tpch", "lookup") else args.memory_limit
    if suite == "lookup":
        engines = [e for e in engines if e != "ooc-python"]
        if "ooc" in engines:
            engines = engines[:1] + SUITE_ENGINES["lookup"] + engines[1:]
        plan = [(args.sf, q, limit) for q in sorted((HERE / "queries" / "lookup").glob("*.sql"))]
    elif suite == "tpch":
        plan = [(args.sf, q, limit) for q in tpch_queries]
    elif suite == "tpcds":
        plan = [(args.sf, q, limit)
                for q in sorted((REPO / "tests" / "tpcds" / "queries").glob("*.sql"))]
    elif suite == "memory":
        plan = [(args.sf, q, args.memory_limit) for q in memory_queries]
    else:
        plan = [(sf, by_name[name], args.memory_limit)
                for name in SCALE_QUERIES for sf in scale_factors(args)]
    if args.queries:
        wanted = set(args.queries.split(","))
        plan = [p for p in plan if p[1].stem in wanted or p[1].name in wanted]
    report = {
        "suite": suite,
        "date": dt.date.today().isoformat(),
        "sf": args.sf,
        "scale_sfs": scale_factors(args) if suite == "scale" else None,
        "memory_limit": limit,
        "runs": args.runs,
        "warmup": args.warmup,
        "machine": machine(),
        "versions": versions(args.ooc),
        "engines": engines,
        "command": " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        "results": [],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    # A budget other than the suite's default is part of the name, so runs at 1GB and at
    # 256MB of one day do not overwrite each other.
    default_limit = None if suite in ("tpch", "lookup") else "1GB"
    suffix = f"-{limit.lower()}" if limit and limit != default_limit else ""
    path = args.results / f"{report['date']}-{suite}-sf{sf_label(args.sf)}{suffix}.json"
    log(f"suite {suite}: {len(plan)} runs of {len(engines)} engines -> {path}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ooc-bench-", dir=args.work) as work:
        args.index_dir = None
        if suite == "lookup" and "ooc" in engines:
            data = ensure_data(args.sf, args.datagen, args.data_root)
            args.index_dir = pathlib.Path(work) / "indexes"
            report["index_build"] = build_lookup_index(args, data)
        for sf, query, limit in plan:
            data = ensure_data(sf, args.datagen, args.data_root,
                               "tpcds" if suite == "tpcds" else "tpch")
            entry = measure_query(args, engines, data, query, limit, pathlib.Path(work))
            entry["sf"] = sf
            report["results"].append(entry)
            report["elapsed_s"] = round(time.perf_counter() - started)
            path.write_text(json.dumps(report, indent=1) + "\n")  # partial results survive
    import report as reporting

    reporting.render(path)
    return path


def build_lookup_index(args, data: pathlib.Path) -> dict:
    """Index `LOOKUP_INDEX` of `lineitem` into `args.index_dir` under 256MB (the data folder is
    left as it is); the build's wall time, peak RSS and bytes per indexed row."""
    import pyarrow.parquet as pq

    lineitem = data / "lineitem.parquet"
    cmd = [args.ooc, "index", "create", str(lineitem), "--columns", ",".join(LOOKUP_INDEX),
           "--index-dir", str(args.index_dir), "--memory-limit", "256MB", "--no-progress"]
    outcome = run_once(cmd, args.timeout)
    if "error" in outcome:
        raise SystemExit(f"building the lookup index failed: {outcome['error']}")
    size = sum(p.stat().st_size for p in args.index_dir.iterdir())
    rows = pq.ParquetFile(lineitem).metadata.num_rows
    build = {"columns": LOOKUP_INDEX, "memory_limit": "256MB", "wall": round(outcome["wall"], 2),
             "rss": round(outcome["rss"]), "bytes": size,
             "bytes_per_row_per_column": round(size / rows / len(LOOKUP_INDEX), 2)}
    log(f"  lookup index of {', '.join(LOOKUP_INDEX)}: {build['wall']} s, {build['rss']} MiB, "
        f"{size / 2**20:.0f} MiB ({build['bytes_per_row_per_column']} bytes per row per column)")
    return build


def scale_factors(args) -> list[float]:
    if args.scale_sfs:
        return [float(x) for x in args.scale_sfs.split(",")]
    sfs = [s for s in (1.0, 3.0, 10.0) if s <= args.sf]
    if len(sfs) < 3:
        sfs = sorted({args.sf / 4, args.sf / 2, args.sf})
    return sfs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    parser.add_argument("--suites", default="tpch,memory,scale")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--runs", type=int, default=3, help="measured runs (the median is kept)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before them")
    parser.add_argument("--memory-limit", default="1GB",
                        help="budget of the memory and scale suites, for every engine with one")
    parser.add_argument("--tpch-memory-limit", default=None,
                        help="budget of the tpch suite (default: none, every engine unlimited)")
    parser.add_argument("--scale-sfs", help="scale factors of the scale suite (default: 1,3,10 "
                        "up to --sf, or --sf/4, --sf/2, --sf)")
    parser.add_argument("--queries", help="only these (comma-separated names, e.g. q01,q18)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is killed")
    parser.add_argument("--ooc", default=str(REPO / "target" / "release" / "ooc"))
    parser.add_argument("--datagen", default=str(REPO / "target" / "release" / "ooc-datagen"))
    parser.add_argument("--data-root", type=pathlib.Path, default=REPO / "data")
    parser.add_argument("--results", type=pathlib.Path, default=HERE / "results")
    parser.add_argument("--work", default=None, help="directory for results while they are checked")
    args = parser.parse_args()
    if shutil.which("/usr/bin/time") is None:
        raise SystemExit("bench.py needs /usr/bin/time (Debian: apt install time)")
    engines = [e for e in args.engines.split(",") if e]
    unknown = set(engines) - set(ENGINES) - {e for v in SUITE_ENGINES.values() for e in v}
    if unknown:
        raise SystemExit(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    for suite in [s for s in args.suites.split(",") if s]:
        if suite not in ("tpch", "memory", "scale", "tpcds", "lookup"):
            raise SystemExit(f"unknown suite {suite!r}; known: tpch, memory, scale, tpcds, lookup")
        path = run_suite(args, suite, engines)
        log(f"suite {suite} done: {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
