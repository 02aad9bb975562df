"""ooc.distributed: queries cut into tasks run on a Dask LocalCluster of two worker processes
(and on a plain ProcessPoolExecutor) give DuckDB's answers; errors raised on a worker arrive
as the same ooc exception; a worker killed in the middle of a task has it run again without
its files being read; a group-by larger than a task's budget spills on the worker; scratch
space is removed."""

from __future__ import annotations

import json
import multiprocessing
import os
import pathlib
import signal
from concurrent.futures import ProcessPoolExecutor

import pytest

import ooc
from conftest import REPO, TPCH_TABLES, rows_equal
from tpch_lazy import q1

distributed = pytest.importorskip("distributed")

# Split every table and shuffle every join at this small scale (SF 0.05), as at SF10 with
# the defaults.
SPLIT_ALL = dict(replicate_bytes=0, broadcast_bytes=0)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GB",
        dashboard_address=None,
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def tables(tpch):
    return {t: tpch / f"{t}.parquet" for t in TPCH_TABLES}


def query(number):
    return (REPO / "tests" / "tpch" / "queries" / f"q{number:02}.sql").read_text()


@pytest.mark.parametrize("number", [1, 3, 5, 9, 13, 18, 21])
def test_tpch_on_a_local_cluster_equals_duckdb(client, tpch, duck, number, tmp_path):
    sql = query(number)
    scratch = tmp_path / "scratch"
    df = ooc.sql(sql, **tables(tpch)).collect(executor=client, scratch_dir=str(scratch), **SPLIT_ALL)
    expected = duck.execute(sql).fetchall()
    rows_equal(df.rows(), expected, ordered="order by" in sql.lower())
    info = df.stats["distributed"]
    assert info["stages"] >= 1 and info["tasks"] >= 2
    # Both worker processes took tasks, and the query's scratch files are gone.
    assert info["workers_used"] == 2
    assert list(scratch.iterdir()) == []


def test_lazy_frames_run_on_the_cluster_and_report_their_tasks(client, tpch, duck):
    df = q1(tpch).collect(executor=client, **SPLIT_ALL)
    rows_equal(df.rows(), duck.execute(query(1)).fetchall(), ordered=True)
    reports = df.stats["distributed"]["task_reports"]
    assert sum(r["bytes_read"] for r in reports) > 0
    assert all(r["peak_rss_bytes"] > 0 and r["wall_seconds"] >= 0 for r in reports)
    text = q1(tpch).explain(executor=client, analyze=True, **SPLIT_ALL)
    assert "Aggregate(Partial)" in text and "Aggregate(Final)" in text
    assert "shuffled" in text and "root (this process)" in text


def test_process_pool_without_dask(tpch, duck):
    sql = query(3)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        df = ooc.sql(sql, **tables(tpch)).collect(executor=pool, **SPLIT_ALL)
    rows_equal(df.rows(), duck.execute(sql).fetchall(), ordered=True)


def test_sink_parquet_writes_one_file(client, tpch, duck, tmp_path):
    sql = query(13)
    out = tmp_path / "q13.parquet"
    stats = ooc.sql(sql, **tables(tpch)).sink_parquet(out, executor=client, **SPLIT_ALL)
    assert stats["distributed"]["tasks"] >= 2
    import pyarrow.parquet as pq

    rows_equal([tuple(r.values()) for r in pq.read_table(out).to_pylist()], duck.execute(sql).fetchall(), ordered=True)


def test_a_task_error_is_the_same_ooc_exception(client, tpch, tmp_path):
    sql = "SELECT sum(CAST(l_comment AS INTEGER)) FROM lineitem"
    lf = ooc.sql(sql, lineitem=tpch / "lineitem.parquet")
    with pytest.raises(ooc.ComputeError) as here:
        lf.collect()
    scratch = tmp_path / "scratch"
    with pytest.raises(ooc.ComputeError) as there:
        lf.collect(executor=client, scratch_dir=str(scratch), **SPLIT_ALL)
    assert "cannot cast" in str(there.value) and "cannot cast" in str(here.value)
    # Nothing is left of the failed query.
    assert list(scratch.iterdir()) == []


def _die_once(marker, fn, *args):
    """Run a task, then kill this worker process before it can report — the first time only:
    the exchange files of that attempt stay on disk, unreported."""
    result = fn(*args)
    if not os.path.exists(marker):
        pathlib.Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return result


class KillOneWorker:
    """An executor that runs tasks on a Dask client and kills the worker running the
    `victim`-th task once."""

    def __init__(self, client, marker, victim):
        self.client, self.marker, self.victim, self.count = client, marker, victim, 0
        self.victim_task = None

    def submit(self, fn, *args):
        self.count += 1
        if self.count == self.victim:
            fragment = json.loads(args[0])
            self.victim_task = (fragment["stage"], fragment["task"])
            return self.client.submit(_die_once, self.marker, fn, *args, pure=False)
        return self.client.submit(fn, *args, pure=False)


@pytest.mark.parametrize("number", [9, 18])
def test_a_worker_killed_mid_query_changes_nothing(client, tpch, duck, number, tmp_path):
    sql = query(number)
    marker = tmp_path / "killed"
    scratch = tmp_path / "scratch"
    executor = KillOneWorker(client, str(marker), victim=3)
    df = ooc.sql(sql, **tables(tpch)).collect(
        executor=executor, scratch_dir=str(scratch), **SPLIT_ALL
    )
    rows_equal(df.rows(), duck.execute(sql).fetchall(), ordered=True)
    assert marker.exists(), "no worker was killed"
    killed_pid = int(marker.read_text())
    reports = df.stats["distributed"]["task_reports"]
    # The task that died ran again in another process; its report is the retry's.
    (victim,) = [r for r in reports if (r["stage"], r["task"]) == executor.victim_task]
    assert victim["pid"] != killed_pid
    assert list(scratch.iterdir()) == []
    client.wait_for_workers(2, timeout=60)


def test_a_group_by_larger_than_a_task_budget_spills_on_the_worker(client, tpch, duck):
    sql = (
        "SELECT l_orderkey, l_partkey, sum(l_quantity) AS q, count(*) AS n FROM lineitem "
        "GROUP BY l_orderkey, l_partkey"
    )
    budget = 24 << 20
    df = ooc.sql(sql, lineitem=tpch / "lineitem.parquet").collect(
        executor=client, worker_memory_limit=budget, buckets=1, **SPLIT_ALL
    )
    rows_equal(df.rows(), duck.execute(sql).fetchall(), ordered=False)
    reports = df.stats["distributed"]["task_reports"]
    assert any(r["peak_spill_bytes"] > 0 for r in reports), reports
    assert all(r["peak_reserved_bytes"] <= budget for r in reports)


def test_bad_arguments_are_refused(tpch):
    lf = ooc.scan_parquet(tpch / "nation.parquet")
    with pytest.raises(TypeError, match="executor must be"):
        lf.collect(executor=object())
    with pytest.raises(TypeError, match="options for an executor"):
        lf.collect(buckets=3)


def test_sink_parquet_one_file_per_task(client, tpch, duck, tmp_path):
    sql = "SELECT o_custkey, count(*) AS n, sum(o_totalprice) AS total FROM orders GROUP BY o_custkey"
    out = tmp_path / "by_customer"
    stats = ooc.sql(sql, orders=tpch / "orders.parquet").sink_parquet(
        out, executor=client, per_task=True, **SPLIT_ALL
    )
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == len(stats["files"]) >= 2
    assert all(name.startswith("part-") and name.endswith(".parquet") for name in files)
    back = ooc.scan_parquet(out).collect().rows()
    rows_equal(back, duck.execute(sql).fetchall())
    assert stats["rows"] == len(back)
    # Nothing else is left beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by_customer"]


def test_sink_parquet_per_task_refuses_what_ends_in_one_place(client, tpch, tmp_path):
    lf = ooc.sql(
        "SELECT o_custkey, count(*) AS n FROM orders GROUP BY o_custkey ORDER BY n DESC",
        orders=tpch / "orders.parquet",
    )
    with pytest.raises(ooc.PlanError, match="one file instead"):
        lf.sink_parquet(tmp_path / "out", executor=client, per_task=True, **SPLIT_ALL)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        lf.sink_parquet(tmp_path / "taken", executor=client, per_task=True)
