"""The result cache from Python: ``collect(cache=True)``, ``ooc.config(cache=...)``,
``ooc.cache``, and several processes sharing one cache directory."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import ooc
import pytest

from conftest import rows_equal

Q = """
SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_quantity) AS qty,
       sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM lineitem GROUP BY 1, 2 ORDER BY 1, 2
"""


def _sql(tpch: pathlib.Path, query: str) -> ooc.LazyFrame:
    return ooc.sql(query, lineitem=ooc.scan_parquet(tpch / "lineitem.parquet"))


def test_collect_with_cache_is_a_hit_the_second_time(tpch, duck, tmp_path):
    ooc.config(cache_dir=tmp_path, cache_min_time=0)
    first = _sql(tpch, Q).collect(cache=True)
    assert first.stats["cache"] == "miss"
    second = _sql(tpch, Q).collect(cache=True)
    assert second.stats["cache"] == "hit"
    assert "CachedResult" in second.stats["report"]
    assert second.stats["bytes_read"] == 0
    want = duck.execute(Q).fetchall()
    rows_equal(second.rows(), want, ordered=True)
    rows_equal(first.rows(), want, ordered=True)
    # Without cache=True nothing is looked up.
    assert _sql(tpch, Q).collect().stats["cache"] is None
    # Another memory limit or thread count is still a hit.
    ooc.config(memory_limit="64MB", threads=1)
    assert _sql(tpch, Q).collect(cache=True).stats["cache"] == "hit"


def test_config_cache_turns_it_on_for_every_collect(tpch, tmp_path):
    settings = ooc.config(cache=True, cache_dir=tmp_path, cache_min_time=0, cache_max_size="1GB")
    assert settings["cache"] is True
    assert settings["cache_dir"] == str(tmp_path)
    assert settings["cache_max_size"] == 1 << 30
    assert _sql(tpch, Q).collect().stats["cache"] == "miss"
    assert _sql(tpch, Q).collect().stats["cache"] == "hit"
    assert _sql(tpch, Q).explain().startswith("result cache: hit key=")
    assert _sql(tpch, Q).collect(cache=False).stats["cache"] is None
    ooc.config(cache=False)
    assert _sql(tpch, Q).collect().stats["cache"] is None


def test_cache_module_inspects_and_trims_the_directory(tpch, tmp_path):
    ooc.config(cache_dir=tmp_path, cache_min_time=0)
    assert ooc.cache.info()["entries"] == 0
    for flag in ("A", "N", "R"):
        _sql(tpch, f"SELECT count(*) FROM lineitem WHERE l_returnflag = '{flag}'").collect(cache=True)
    info = ooc.cache.info()
    assert info["dir"] == str(tmp_path)
    assert info["entries"] == 3 and info["rows"] == 3 and info["bytes"] > 0
    entries = ooc.cache.entries()
    assert len(entries) == 3
    assert all(e["inputs"] == [str(tpch / "lineitem.parquet")] for e in entries)
    assert entries[0]["last_access"] <= entries[-1]["last_access"]
    assert ooc.cache.verify()["removed"] == []
    pruned = ooc.cache.prune(max_size=entries[-1]["bytes"])
    assert len(pruned["removed"]) == 2
    assert ooc.cache.info()["entries"] == 1
    assert len(ooc.cache.clear()["removed"]) == 1
    assert ooc.cache.info()["entries"] == 0
    with pytest.raises(ValueError, match="max_size"):
        ooc.cache.prune(max_size="lots")


def test_a_hit_is_kept_unread_until_its_data_is_first_used(tpch, duck, tmp_path):
    ooc.config(cache_dir=tmp_path, cache_min_time=0)
    q = "SELECT l_orderkey, l_linenumber, l_comment FROM lineitem WHERE l_orderkey % 3 = 0 ORDER BY 1, 2"
    _sql(tpch, q).collect(cache=True)
    [entry] = ooc.cache.entries()
    want = duck.execute(q).fetchall()

    hit = _sql(tpch, q).collect(cache=True)
    assert hit.stats["cache"] == "hit" and "handed over unread" in hit.stats["report"]
    # Size and shape come from the entry, without reading it.
    assert hit.height == hit.stats["rows"] == entry["rows"] == len(want)
    assert hit.shape == (len(want), 3)
    [report] = [r for r in ooc.memory_report() if r["frame"] is hit]
    # (`bytes` of an entry counts its manifest too.)
    assert report["heap_bytes"] == 0 and report["unread"]
    assert entry["bytes"] - 64 * 1024 < report["mapped_bytes"] < entry["bytes"]
    # Showing its head and querying it read only what they need, and leave it unread.
    text = repr(hit)
    assert f"({len(want)} rows, first 10 shown)" in text and str(want[0][0]) in text
    last = want[-1][0]
    assert hit.lazy().filter(ooc.col("l_orderkey") == last).collect().height == sum(
        1 for r in want if r[0] == last
    )
    assert hit.lazy().limit(2).collect().height == 2
    assert "<table>" in hit._repr_html_()
    [report] = [r for r in ooc.memory_report() if r["frame"] is hit]
    assert report["unread"]
    # Every way of using the data reads (and checks) it first.
    rows_equal(hit.rows(), want, ordered=True)
    [report] = [r for r in ooc.memory_report() if r["frame"] is hit]
    assert not report["unread"]
    assert hit.to_arrow().num_rows == len(want)
    assert hit.lazy().select(ooc.col("l_orderkey").count()).collect().rows() == [(len(want),)]
    [report] = [r for r in ooc.memory_report() if r["frame"] is hit]
    assert report["heap_bytes"] == 0 and 0 < report["mapped_bytes"] <= entry["bytes"]

    # Released before it was ever read: every use raises.
    unread = _sql(tpch, q).collect(cache=True)
    assert unread.release() == {"freed_bytes": 0, "held_elsewhere_bytes": 0}
    with pytest.raises(ooc.ReleasedError):
        unread.rows()
    # A frame from an uncached run or a miss is on the heap as before.
    assert _sql(tpch, q).collect().stats["cache"] is None


WORKER = textwrap.dedent(
    """
    import base64, json, pickle, sys
    import ooc

    tpch, queries = sys.argv[1], json.loads(sys.argv[2])
    tables = {t: ooc.scan_parquet(f"{tpch}/{t}.parquet") for t in ("lineitem", "orders", "customer")}
    ooc.config(cache=True, cache_min_time=0, threads=1)
    out = []
    for q in queries:
        df = ooc.sql(q, **tables).collect()
        out.append({"rows": df.rows(), "cache": df.stats["cache"]})
    print(base64.b64encode(pickle.dumps(out)).decode())
    """
)

QUERIES = [
    "SELECT l_returnflag, count(*), sum(l_extendedprice) FROM lineitem GROUP BY 1 ORDER BY 1",
    "SELECT o_orderpriority, count(*) FROM orders WHERE o_orderdate >= DATE '1995-01-01' GROUP BY 1 ORDER BY 1",
    "SELECT c_mktsegment, sum(o_totalprice) FROM customer JOIN orders ON c_custkey = o_custkey GROUP BY 1 ORDER BY 1",
    "SELECT l_orderkey, sum(l_quantity) AS q FROM lineitem GROUP BY 1 ORDER BY q DESC, 1 LIMIT 20",
    "SELECT l_shipmode, sum(l_discount) FROM lineitem WHERE l_quantity < 10 GROUP BY 1 ORDER BY 1",
]


def test_eight_processes_share_one_cache_directory(tpch, duck, tmp_path):
    import base64
    import json
    import pickle

    cache_dir = tmp_path / "cache"
    # Each process runs three of the five queries, overlapping with the others.
    plans = [[QUERIES[(p + k) % len(QUERIES)] for k in range(3)] for p in range(8)]
    env = dict(os.environ, OOC_CACHE_DIR=str(cache_dir))
    # A bound of about three entries, so that processes also evict while others read.
    probe = tmp_path / "probe"
    ooc.config(cache_dir=probe, cache_min_time=0)
    tables = {t: ooc.scan_parquet(tpch / f"{t}.parquet") for t in ("lineitem", "orders", "customer")}
    for q in QUERIES:
        ooc.sql(q, **tables).collect(cache=True)
    sizes = [e["bytes"] for e in ooc.cache.entries()]
    bound = sum(sorted(sizes)[-3:])
    env["OOC_CACHE_MAX_SIZE"] = str(bound)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tpch), json.dumps(plan)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for plan in plans
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outputs.append(pickle.loads(base64.b64decode(out)))
    hits = 0
    for plan, results in zip(plans, outputs):
        for q, result in zip(plan, results):
            rows_equal(result["rows"], duck.execute(q).fetchall(), ordered=True)
            hits += result["cache"] == "hit"
    assert hits > 0
    assert ooc.cache.verify(dir=cache_dir)["removed"] == []
    info = ooc.cache.info(dir=cache_dir)
    assert info["bytes"] <= bound + max(sizes), info
    leftovers = [n for n in os.listdir(cache_dir) if n.startswith(".tmp-")]
    assert leftovers == []


def test_persist_computes_once_and_later_queries_read_the_stored_result(tpch, duck, tmp_path):
    ooc.config(cache_dir=tmp_path)
    lineitem = ooc.scan_parquet(tpch / "lineitem.parquet")
    projection = lineitem.filter(ooc.col("l_quantity") > 10).select(
        "l_orderkey", "l_returnflag", "l_linestatus", "l_quantity", "l_extendedprice"
    )
    persisted = projection.persist()
    assert ooc.cache.info()["entries"] == 1
    # Persisting the same plan again reuses the entry.
    again = projection.persist()
    assert ooc.cache.info()["entries"] == 1

    by_flag = persisted.group_by("l_returnflag").agg(ooc.col("l_quantity").sum().alias("q")).sort("l_returnflag").collect()
    assert by_flag.stats["bytes_read"] == 0
    rows_equal(
        by_flag.rows(),
        duck.execute(
            "SELECT l_returnflag, sum(l_quantity) FROM lineitem WHERE l_quantity > 10 GROUP BY 1 ORDER BY 1"
        ).fetchall(),
        ordered=True,
    )
    top = again.filter(ooc.col("l_linestatus") == "F").select(ooc.col("l_extendedprice").max()).collect()
    assert top.stats["bytes_read"] == 0
    rows_equal(
        top.rows(),
        duck.execute(
            "SELECT max(l_extendedprice) FROM lineitem WHERE l_quantity > 10 AND l_linestatus = 'F'"
        ).fetchall(),
    )
    plan = persisted.select("l_quantity").explain()
    assert "CachedScan" in plan and "columns=1/5" in plan, plan
    # SQL over a persisted frame, as a named table.
    n = ooc.sql("SELECT count(*) AS n FROM p", p=persisted).collect().rows()
    assert n == duck.execute("SELECT count(*) FROM lineitem WHERE l_quantity > 10").fetchall()


def test_persist_of_in_memory_data(tmp_path):
    import pyarrow as pa

    ooc.config(cache_dir=tmp_path)
    lf = ooc.from_arrow(pa.table({"x": list(range(1000))})).lazy()
    persisted = lf.filter(ooc.col("x") % 2 == 0).persist()
    assert persisted.select(ooc.col("x").sum()).collect().rows() == [(249500,)]


def test_named_persist_is_found_by_later_processes_and_the_cli(tpch, duck, tmp_path):
    ooc.config(cache_dir=tmp_path, cache_max_size=1)
    orders = ooc.scan_parquet(tpch / "orders.parquet")
    orders.filter(ooc.col("o_totalprice") > 300000).select("o_orderkey", "o_totalprice").persist(name="big_orders")
    # Named results are kept whatever the bound.
    assert ooc.cache.prune()["removed"] == []
    assert ooc.persisted("big_orders").select(ooc.len()).collect().rows() == duck.execute(
        "SELECT count(*) FROM orders WHERE o_totalprice > 300000"
    ).fetchall()
    ooc_bin = pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "ooc"
    if ooc_bin.exists():
        out = subprocess.run(
            [str(ooc_bin), "query", "--format", "csv", "SELECT max(o_totalprice) AS m FROM big_orders"],
            env=dict(os.environ, OOC_CACHE_DIR=str(tmp_path)),
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.splitlines()[1] == str(
            duck.execute("SELECT max(o_totalprice) FROM orders").fetchone()[0]
        )
    with pytest.raises(ooc.OocError, match="no result persisted as .nothing."):
        ooc.persisted("nothing")
    assert [e["key"] for e in ooc.cache.entries()]
