"""Explicit release of collected frames (``df.release()``, ``with lf.collect() as df``),
``ooc.memory_report()`` and the notebook display."""

from __future__ import annotations

import gc

import ooc
import pyarrow as pa
import pytest


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _big(tpch, rows_filter: str = "l_quantity > 0"):
    return ooc.sql(
        f"SELECT l_orderkey, l_comment, l_extendedprice FROM lineitem WHERE {rows_filter}",
        lineitem=ooc.scan_parquet(tpch / "lineitem.parquet"),
    )


def test_release_frees_the_buffers_whatever_else_points_at_them(tpch):
    df = _big(tpch).collect()
    size = df.nbytes
    assert size > 10_000_000
    others = [df, {"kept": df}]  # noqa: F841 (names that outlive their use)
    out = df.release()
    assert out["freed_bytes"] >= size * 0.8 and out["held_elsewhere_bytes"] == 0
    assert df.released and others[1]["kept"].released
    for use in (lambda: df.height, lambda: df.to_arrow(), lambda: df.lazy(), lambda: df.nbytes):
        with pytest.raises(ooc.ReleasedError, match="released"):
            use()
    assert df.release() == {"freed_bytes": 0, "held_elsewhere_bytes": 0}
    assert df.columns == ["l_orderkey", "l_comment", "l_extendedprice"]


def test_release_gives_the_memory_back_to_the_system(tpch):
    frames = [_big(tpch, f"l_orderkey % 3 = {i}").collect() for i in range(3)]
    alias = frames[1]  # noqa: F841
    gc.collect()
    before = _rss_bytes()
    size = frames[1].nbytes
    frames[1].release()
    gc.collect()
    after = _rss_bytes()
    assert before - after >= 0.8 * size, (before, after, size)


def test_exported_buffers_stay_valid_for_their_holder(tpch):
    df = _big(tpch).collect()
    table = pa.table(df)
    rows = table.num_rows
    report = [r for r in ooc.memory_report() if r["frame"] is df]
    assert report and report[0]["exported"] and report[0]["heap_bytes"] > 0
    assert report[0]["site"].endswith("test_release.py:" + str(report[0]["site"].split(":")[-1]))
    out = df.release()
    assert out["held_elsewhere_bytes"] > 0
    # pyarrow still reads every value.
    assert table.num_rows == rows
    assert pa.compute.sum(table["l_orderkey"]).as_py() > 0
    assert not [r for r in ooc.memory_report() if r["frame"] is df]


def test_with_block_releases_at_its_end(tpch):
    with _big(tpch, "l_orderkey < 100").collect() as df:
        n = df.height
        assert n > 0
    assert df.released
    with pytest.raises(ooc.ReleasedError):
        df.rows()


def test_memory_report_lists_heap_and_mapped_frames(tpch, tmp_path):
    ooc.config(cache_dir=tmp_path, cache_min_time=0)
    q = "SELECT l_returnflag, count(*) AS n FROM lineitem GROUP BY 1"
    lf = ooc.sql(q, lineitem=ooc.scan_parquet(tpch / "lineitem.parquet"))
    heap = lf.collect(cache=True)
    mapped = lf.collect(cache=True)
    assert mapped.stats["cache"] == "hit"
    by_frame = {id(r["frame"]): r for r in ooc.memory_report()}
    assert by_frame[id(heap)]["heap_bytes"] > 0 and by_frame[id(heap)]["mapped_bytes"] == 0
    assert by_frame[id(mapped)]["mapped_bytes"] > 0 and by_frame[id(mapped)]["heap_bytes"] == 0
    assert "mapped from the result cache" in mapped._repr_html_()


def test_html_display(tpch):
    df = ooc.from_arrow(pa.table({"a": list(range(25)), "b": ["<x>"] * 25}))
    html = df._repr_html_()
    assert "shape: (25, 2)" in html and "on the heap" in html
    assert "&lt;x&gt;" in html and "15 more rows" in html
    assert df._mime_() == ("text/html", html)
    df.release()
    assert "released" in df._repr_html_()


def test_collect_reports_progress_to_a_callback(tpch):
    calls = []
    lf = ooc.sql(
        "SELECT l_comment, count(*) FROM lineitem GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3",
        lineitem=ooc.scan_parquet(tpch / "lineitem.parquet"),
    )
    ooc.config(threads=1)
    df = lf.collect(progress=lambda *args: calls.append(args))
    assert df.height == 3
    # Each call: morsels done, planned, rows read, seconds; non-decreasing; the last one
    # when everything is done.
    assert calls
    for done, total, rows, seconds in calls:
        assert 0 <= done <= total and rows >= 0 and seconds >= 0
    assert [c[3] for c in calls] == sorted(c[3] for c in calls)
    done, total, rows, _ = calls[-1]
    n = ooc.scan_parquet(tpch / "lineitem.parquet").select(ooc.len()).collect().rows()[0][0]
    assert done == total > 0 and rows == n
