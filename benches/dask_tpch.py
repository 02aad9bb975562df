"""TPC-H on a Dask LocalCluster against one ooc process (issue #31).

For each query: the single-process run (`ooc query`, 2 threads, `--memory-limit 2GB`, peak RSS
by /usr/bin/time), then the distributed run on a LocalCluster of `--workers` worker processes
(one thread each, `memory_limit` per worker) driven from a fresh client process: wall time,
bytes shuffled, tasks, the workers' peak RSS (VmHWM of each worker process, restarted
before every query) and the client's peak RSS (VmHWM of the driver process, and its growth
over what it held once connected). Answers are compared with DuckDB's on the same files.
With `--kill`, a worker is SIGKILLed after its task wrote its files and before it reported.

    benches/.venv/bin/python benches/dask_tpch.py --data /work/data/tpcgen-sf10 \
        --queries 1 3 5 9 13 18 21 [--kill 9 18] [--groupby]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]
GROUPBY = (
    "SELECT l_partkey, l_suppkey, sum(l_quantity) AS q, count(*) AS n FROM lineitem "
    "GROUP BY l_partkey, l_suppkey"
)


def query_sql(q: str) -> str:
    if q == "groupby":
        return GROUPBY
    return (REPO / "tests" / "tpch" / "queries" / f"q{int(q):02}.sql").read_text()


def _die_once(marker, fn, *args):
    result = fn(*args)
    if not os.path.exists(marker):
        pathlib.Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return result


class KillOne:
    def __init__(self, client, marker, victim):
        self.client, self.marker, self.victim, self.count = client, marker, victim, 0

    def submit(self, fn, *args):
        self.count += 1
        if self.count == self.victim:
            return self.client.submit(_die_once, self.marker, fn, *args, pure=False)
        return self.client.submit(fn, *args, pure=False)


def vm_hwm() -> int:
    """This process's peak resident set (VmHWM: of its own memory map, so a process started
    by fork and exec does not inherit its parent's peak as ru_maxrss would)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def summary_sql(sql: str) -> str:
    """Rows, sum of q and of n of the group-by: what is compared for it (8M rows)."""
    return f"SELECT count(*), sum(q), sum(n) FROM ({sql})"


def driver(address: str, data: str, q: str, kill: bool, out: str, budget: str, buckets: str) -> None:
    """Run one query from a fresh process (this is what /usr/bin/time-like figures cover)."""
    import distributed
    import ooc

    client = distributed.Client(address)
    base = vm_hwm()
    sql = query_sql(q)
    lf = ooc.sql(sql, **{t: f"{data}/{t}.parquet" for t in TABLES})
    executor = client
    marker = f"{out}.killed"
    if kill:
        executor = KillOne(client, marker, victim=6)
    started = time.perf_counter()
    options = {"worker_memory_limit": int(budget)} if budget != "0" else {}
    if buckets != "0":
        options["buckets"] = int(buckets)
    df = lf.collect(executor=executor, **options)
    wall = time.perf_counter() - started
    info = df.stats["distributed"]
    workers = client.run(vm_hwm)
    peak = vm_hwm()
    if q == "groupby":
        import pyarrow.compute as pc

        table = df.to_arrow()
        rows = [(table.num_rows, pc.sum(table["q"]).as_py(), pc.sum(table["n"]).as_py())]
    else:
        rows = [tuple(r) for r in df.rows()]
    result = {
        "query": q,
        "wall_seconds": wall,
        "stages": info["stages"],
        "tasks": info["tasks"],
        "bytes_shuffled": info["bytes_shuffled"],
        "max_task_peak_reserved_bytes": info["max_task_peak_reserved_bytes"],
        "max_task_peak_rss_bytes": info["max_task_peak_rss_bytes"],
        "max_task_spill_bytes": max(r["peak_spill_bytes"] for r in info["task_reports"]),
        "workers_peak_rss_bytes": sorted(workers.values()),
        "client_peak_rss_bytes": peak,
        "client_connected_rss_bytes": base,
        "result_bytes": df.to_arrow().nbytes,
        "killed_pid": int(open(marker).read()) if kill and os.path.exists(marker) else None,
        "pids": sorted({r["pid"] for r in info["task_reports"]}),
    }
    import pickle

    with open(out, "wb") as f:
        pickle.dump((result, rows), f)
    client.close()


def single(binary: str, data: str, q: str) -> tuple[float, int]:
    sql_file = REPO / "tests" / "tpch" / "queries" / f"q{int(q):02}.sql" if q != "groupby" else None
    args = [binary, "query", "--threads", "2", "--memory-limit", "2GB", "--format", "csv"]
    for t in TABLES:
        args += ["--table", f"{t}={data}/{t}.parquet"]
    if sql_file is None:
        args += [GROUPBY]
    else:
        args += ["--file", str(sql_file)]
    started = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M"] + args, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ooc failed on {q}: {proc.stderr[-2000:]}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--queries", nargs="+", default=["1", "3", "5", "9", "13", "18", "21"])
    parser.add_argument("--kill", nargs="*", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="1GB")
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "ooc"))
    parser.add_argument("--task-budget", default="0", help="bytes per task (0: the default)")
    parser.add_argument("--buckets", default="0", help="buckets per shuffle (0: the default)")
    parser.add_argument("--driver", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        address, data, q, kill, out, budget, buckets = args.driver
        driver(address, data, q, kill == "1", out, budget, buckets)
        return

    import distributed
    import duckdb

    sys.path.insert(0, str(REPO / "python" / "tests"))
    from compare import rows_equal

    cluster = distributed.LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=args.worker_memory,
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    import ooc.distributed

    worker_limit = ooc.distributed.task_budget(int(__import__("dask.utils").utils.parse_bytes(args.worker_memory)))
    if args.task_budget != "0":
        worker_limit = int(args.task_budget)
    print(f"task budget: {worker_limit / (1 << 20):.0f} MiB per task; buckets: {args.buckets}")
    duck = duckdb.connect()
    duck.execute("SET threads TO 2")
    for t in TABLES:
        duck.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{args.data}/{t}.parquet')")
    runs = [(q, False) for q in args.queries] + [(q, True) for q in args.kill]
    print("| query | single s | single RSS MiB | dist s | ratio | stages/tasks | shuffled MiB | worker peak RSS MiB | task reserved MiB | task spilled MiB | client RSS MiB (growth; result) | killed → retried | equal DuckDB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for q, kill in runs:
        s_wall, s_rss = single(args.binary, args.data, q) if not kill else (float("nan"), 0)
        client.restart()
        out = f"/tmp/ooc-dist-{q}-{int(kill)}.pkl"
        for f in (out, out + ".killed"):
            if os.path.exists(f):
                os.remove(f)
        subprocess.run(
            [sys.executable, __file__, "--data", args.data, "--driver", cluster.scheduler_address,
             args.data, q, "1" if kill else "0", out, args.task_budget, args.buckets],
            check=True,
        )
        import pickle

        with open(out, "rb") as f:
            result, rows = pickle.load(f)
        sql = query_sql(q)
        expected = duck.execute(summary_sql(sql) if q == "groupby" else sql).fetchall()
        try:
            rows_equal(rows, expected, ordered="order by" in sql.lower())
            equal = "yes"
        except AssertionError as e:
            equal = f"NO: {e}"[:80]
        mib = lambda b: b / (1 << 20)  # noqa: E731
        killed = "—"
        if kill:
            killed = f"pid {result['killed_pid']} killed; tasks by {result['pids']}"
        print(
            f"| {q} | {s_wall:.2f} | {mib(s_rss):.0f} | {result['wall_seconds']:.2f} | "
            f"{result['wall_seconds'] / s_wall:.2f} | {result['stages']}/{result['tasks']} | "
            f"{mib(result['bytes_shuffled']):.0f} | "
            f"{', '.join(f'{mib(b):.0f}' for b in result['workers_peak_rss_bytes'])} | "
            f"{mib(result['max_task_peak_reserved_bytes']):.0f} | "
            f"{mib(result['max_task_spill_bytes']):.0f} | "
            f"{mib(result['client_peak_rss_bytes']):.0f} "
            f"(+{mib(result['client_peak_rss_bytes'] - result['client_connected_rss_bytes']):.0f}; "
            f"result {mib(result['result_bytes']):.0f}) | "
            f"{killed} | {equal} |",
            flush=True,
        )
    client.close()
    cluster.close()
    print(json.dumps({"data": args.data, "workers": args.workers, "worker_memory": args.worker_memory}))


if __name__ == "__main__":
    main()
