"""Memory limits, spilling, streaming results, statistics and Ctrl-C cancellation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pytest

import ooc
from ooc import col
from conftest import rows_equal


def _state_at_peak(stats):
    """Bytes of operators' state at the query's peak: what the budget bounds (batches in
    transit, decoded or queued, are counted beyond it)."""
    holders = stats["memory_at_peak"]["holders"]
    return sum(h["bytes"] for h in holders if h["part"] not in ("batches in flight", "decode buffers"))


def test_config_round_trip(tmp_path):
    settings = ooc.config(memory_limit="64MB", threads=1, temp_dir=tmp_path, max_temp_size="1GB")
    assert settings["memory_limit"] == 64 * 1024 * 1024
    assert settings["threads"] == 1
    assert settings["temp_dir"] == str(tmp_path)
    assert settings["max_temp_size"] == 1024**3
    assert ooc.config(memory_limit=None)["memory_limit"] is None
    with pytest.raises(ValueError, match="unknown size unit"):
        ooc.config(memory_limit="12 parsecs")


def test_config_from_environment(tmp_path):
    code = "import ooc, json; print(json.dumps(ooc.config()))"
    env = dict(os.environ, OOC_MEMORY_LIMIT="300MB", OOC_THREADS="3", OOC_TEMP_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    settings = json.loads(out.stdout)
    assert settings["memory_limit"] == 300 * 1024 * 1024
    assert settings["threads"] == 3
    assert settings["temp_dir"] == str(tmp_path)


def test_iter_batches_streams_a_result_larger_than_the_budget(tpch, duck):
    ooc.config(memory_limit="8MB")
    lf = ooc.scan_parquet(tpch / "lineitem.parquet")
    rows = 0
    nbytes = 0
    batches = 0
    it = lf.iter_batches()
    for batch in it:
        assert isinstance(batch, pa.RecordBatch)
        rows += batch.num_rows
        nbytes += batch.get_total_buffer_size()
        batches += 1
    assert rows == duck.execute("SELECT count(*) FROM lineitem").fetchone()[0]
    # The result is several times the budget, and it arrived in many batches.
    assert nbytes > 3 * 8 * 1024 * 1024
    assert batches > 10


def test_breaking_out_of_iter_batches_stops_the_query(tpch):
    ooc.config(memory_limit="16MB")
    lf = ooc.scan_parquet(tpch / "lineitem.parquet")
    for i, _ in enumerate(lf.iter_batches()):
        if i == 2:
            break
    # The next query runs normally.
    assert lf.select(ooc.len()).collect().rows()[0][0] > 0


def test_group_by_spills_and_matches_duckdb(tpch, duck, tmp_path):
    ooc.config(memory_limit="4MB", temp_dir=tmp_path)
    result = (
        ooc.scan_parquet(tpch / "lineitem.parquet")
        .group_by("l_partkey", "l_suppkey")
        .agg(qty=col("l_quantity").sum(), n=ooc.len())
        .collect()
    )
    expected = duck.execute(
        "SELECT l_partkey, l_suppkey, sum(l_quantity), count(*) FROM lineitem GROUP BY 1, 2"
    ).fetchall()
    rows_equal(result.rows(), expected)
    stats = result.stats
    assert stats["rows"] == len(expected)
    assert _state_at_peak(stats) <= 4 * 1024 * 1024
    spilled = [op for op in stats["operators"] if op["spills"] > 0]
    assert spilled, "a 4 MB budget should make the aggregate spill"
    assert spilled[0]["operator"].startswith("HashAggregate")
    assert stats["peak_spill_bytes"] > 0
    assert list(tmp_path.iterdir()) == []


def test_group_by_on_the_files_sort_key_runs_per_row_group(tpch, duck, tmp_path):
    # lineitem is written in l_orderkey order: each row group's groups are final once the
    # scan moves past it, so even a 4 MB budget needs no spill and no second phase.
    ooc.config(memory_limit="4MB", temp_dir=tmp_path)
    lf = (
        ooc.scan_parquet(tpch / "lineitem.parquet")
        .group_by("l_orderkey")
        .agg(qty=col("l_quantity").sum(), n=ooc.len())
    )
    assert "per_row_group_of=l_orderkey" in lf.explain()
    result = lf.collect()
    expected = duck.execute(
        "SELECT l_orderkey, sum(l_quantity), count(*) FROM lineitem GROUP BY 1"
    ).fetchall()
    rows_equal(result.rows(), expected)
    stats = result.stats
    assert stats["rows"] == len(expected)
    assert _state_at_peak(stats) <= 4 * 1024 * 1024
    assert all(op["spills"] == 0 for op in stats["operators"])
    assert list(tmp_path.iterdir()) == []


def test_join_on_the_files_sort_key_splits_the_build_by_key_windows(tpch, duck, tmp_path):
    # orders does not fit a 3 MB budget as a hash table; lineitem arrives in l_orderkey
    # order, so the build is split by key ranges of lineitem's row groups and loaded window
    # by window: no lineitem row is written out.
    ooc.config(memory_limit="3MB", temp_dir=tmp_path)

    def frame():
        return (
            ooc.scan_parquet(tpch / "lineitem.parquet")
            .join(
                ooc.scan_parquet(tpch / "orders.parquet"),
                left_on="l_orderkey",
                right_on="o_orderkey",
            )
            .group_by("o_orderpriority", "l_shipmode")
            .agg(n=ooc.len(), price=col("l_extendedprice").sum())
        )

    assert "key_windows_by=l_orderkey" in frame().explain()
    report = frame().explain(analyze=True)
    assert "key_windows=" in report, report
    assert "join-probe" not in report
    result = frame().collect()
    expected = duck.execute(
        "SELECT o_orderpriority, l_shipmode, count(*), sum(l_extendedprice) "
        "FROM lineitem JOIN orders ON l_orderkey = o_orderkey GROUP BY 1, 2"
    ).fetchall()
    rows_equal(result.rows(), expected)
    assert _state_at_peak(result.stats) <= 3 * 1024 * 1024
    assert list(tmp_path.iterdir()) == []


def test_sort_spills_and_sinks_atomically(tpch, duck, tmp_path):
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    ooc.config(memory_limit="8MB", temp_dir=spill_dir)
    out = tmp_path / "sorted.parquet"
    stats = (
        ooc.scan_parquet(tpch / "lineitem.parquet")
        .select("l_orderkey", "l_linenumber", "l_comment")
        .sort("l_comment", "l_orderkey", "l_linenumber")
        .sink_parquet(out)
    )
    assert any(op["spills"] > 0 for op in stats["operators"])
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    expected = duck.execute(
        "SELECT l_orderkey, l_linenumber, l_comment FROM lineitem ORDER BY 3, 1, 2"
    ).fetchall()
    assert table.num_rows == len(expected)
    got = list(zip(*(c.to_pylist() for c in table.columns)))
    assert got[:1000] == expected[:1000] and got[-1000:] == expected[-1000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sorted.parquet", "spill"]
    assert list(spill_dir.iterdir()) == []


def test_explain_analyze_reports_memory(tpch):
    ooc.config(memory_limit="4MB")
    text = (
        ooc.scan_parquet(tpch / "lineitem.parquet")
        .group_by("l_orderkey")
        .agg(col("l_quantity").sum())
        .explain(analyze=True)
    )
    assert "HashAggregate" in text
    assert "peak RSS" in text
    assert "spill" in text
    plan = ooc.scan_parquet(tpch / "lineitem.parquet").group_by("l_orderkey").agg(
        col("l_quantity").sum()
    ).explain()
    assert "may spill" in plan


def test_memory_limit_too_small_is_a_named_error(tpch):
    ooc.config(memory_limit=64)
    with pytest.raises(ooc.ResourcesExhaustedError) as info:
        ooc.scan_parquet(tpch / "lineitem.parquet").group_by("l_orderkey").agg(
            col("l_quantity").sum()
        ).collect()
    assert info.value.limit == 64
    assert info.value.consumer


CANCEL_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import ooc
    data, spill = sys.argv[1], sys.argv[2]
    ooc.config(memory_limit="64MB", temp_dir=spill, threads=2)
    lineitem = ooc.scan_parquet(os.path.join(data, "lineitem.parquet"))
    nation = ooc.scan_parquet(os.path.join(data, "nation.parquet"))
    # 300k x 25 rows sorted by a string: minutes of work with spill files on disk.
    q = lineitem.join(nation, how="cross").sort("l_comment", "n_name")
    print("started", flush=True)
    try:
        q.collect()
        print(json.dumps({"outcome": "finished"}), flush=True)
    except KeyboardInterrupt:
        at = time.monotonic()
        print(json.dumps({"outcome": "interrupted", "at": at, "left": os.listdir(spill)}), flush=True)
    """
)


def test_ctrl_c_cancels_a_running_query(tpch, tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    script = tmp_path / "cancel.py"
    script.write_text(CANCEL_SCRIPT)
    child = subprocess.Popen(
        [sys.executable, str(script), str(tpch), str(spill)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "started"
        # Let it get going (and spill), then press Ctrl-C.
        deadline = time.monotonic() + 30
        while not any(spill.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(spill.iterdir()), "the query should have written spill files"
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    report = json.loads(out.strip().splitlines()[-1])
    assert report["outcome"] == "interrupted", err
    latency = report["at"] - sent
    print(f"KeyboardInterrupt raised {latency * 1000:.0f} ms after SIGINT")
    # The issue asks for "within a second"; allow slack for a loaded CI machine.
    assert latency < 2.0
    # Spill files were removed before the exception reached Python.
    assert report["left"] == []
    assert child.returncode == 0


def test_concurrent_queries_share_the_process_budget(tpch, duck, tmp_path):
    """Eight queries from eight threads under one 24MB process budget: each holds at most
    its share, so together they stay within the budget (where eight budgets of their own
    would allow eight times as much); every answer equals DuckDB's."""
    from concurrent.futures import ThreadPoolExecutor

    tables = {t: str(tpch / f"{t}.parquet") for t in ("lineitem", "orders", "customer", "part")}
    queries = [
        "SELECT l_orderkey, sum(l_quantity) AS q, count(*) AS n FROM lineitem GROUP BY l_orderkey",
        "SELECT l_partkey, l_suppkey, count(*) AS n FROM lineitem GROUP BY 1, 2",
        "SELECT count(DISTINCT l_comment) AS n FROM lineitem",
        "SELECT o_custkey, count(*) AS n, sum(o_totalprice) AS t FROM orders GROUP BY o_custkey",
        "SELECT c_nationkey, count(*) AS n FROM customer JOIN orders ON c_custkey = o_custkey "
        "GROUP BY c_nationkey",
        "SELECT l_comment FROM lineitem ORDER BY l_comment, l_orderkey, l_linenumber LIMIT 5 OFFSET 100000",
        "SELECT p_brand, count(DISTINCT l_orderkey) AS n FROM lineitem JOIN part ON l_partkey = p_partkey "
        "GROUP BY p_brand",
        "SELECT l_returnflag, l_linestatus, sum(l_extendedprice) AS s, avg(l_discount) AS d "
        "FROM lineitem GROUP BY 1, 2",
    ]
    expected = [duck.execute(q).fetchall() for q in queries]
    limit = 24 * 1024 * 1024
    ooc.config(memory_limit=limit, temp_dir=tmp_path, threads=2)
    try:
        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            results = list(pool.map(lambda q: ooc.sql(q, **tables).collect().rows(), queries))
        budget = ooc.memory_budget()
    finally:
        ooc.config(memory_limit=None)
    for query, ours, theirs in zip(queries, results, expected):
        rows_equal(ours, theirs, ordered="ORDER BY" in query)
    assert budget["limit"] == limit
    assert budget["active_queries"] == 0 and budget["reserved"] == 0
    # Shares are enforced at every growth; a query that joins late may find others still
    # holding more than their new share until they spill, hence the margin.
    assert 0 < budget["peak_reserved"] <= limit * 1.5, budget
    # At most four ran at once: the others waited for their turn.
    assert budget["queries_waited"] > 0, budget


def test_max_concurrent_queries_setting():
    try:
        settings = ooc.config(memory_limit="64MB", max_concurrent_queries=2)
        assert settings["max_concurrent_queries"] == 2
        assert ooc.memory_budget()["max_running"] == 2
        # The limit changes, the number of queries stays.
        ooc.config(memory_limit="32MB")
        assert ooc.memory_budget() == {
            "limit": 32 * 1024 * 1024, "reserved": 0, "peak_reserved": 0,
            "active_queries": 0, "max_running": 2, "queries_waited": 0,
        }
        with pytest.raises(ValueError, match="at least 1"):
            ooc.config(max_concurrent_queries=0)
    finally:
        assert ooc.config(memory_limit=None, max_concurrent_queries=None)["max_concurrent_queries"] == 4
