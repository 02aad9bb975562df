"""Who held the memory at the peak: ``stats["memory_at_peak"]``, ``explain(analyze=True)``
and ``LazyFrame.profile_memory``."""

from __future__ import annotations

import pytest

import ooc
from ooc import col


@pytest.fixture(autouse=True)
def _limit():
    ooc.config(memory_limit="8MB")
    yield
    ooc.config(memory_limit=None)


TRANSIT = ("batches in flight", "decode buffers")


def _state(holders):
    """The holders of operators' state (not batches in transit), largest first."""
    return [h for h in holders if h["part"] not in TRANSIT]


def _sorted_lineitem(tpch):
    return ooc.scan_parquet(tpch / "lineitem.parquet").sort("l_comment", "l_orderkey", "l_linenumber")


def test_stats_name_the_holders_at_the_peak(tpch):
    df = (
        ooc.scan_parquet(tpch / "lineitem.parquet")
        .group_by("l_partkey", "l_suppkey")
        .agg(col("l_extendedprice").sum(), col("l_comment").max())
        .collect()
    )
    memory = df.stats["memory_at_peak"]
    holders = memory["holders"]
    assert memory["peak_reserved_bytes"] == df.stats["peak_reserved_bytes"]
    assert sum(h["bytes"] for h in holders) == memory["peak_reserved_bytes"] > 0
    top = _state(holders)[0]
    assert top["operator"].startswith("HashAggregate(final) #")
    assert top["part"] == "groups"
    assert memory["limit_bytes"] == 8 * 1024 * 1024
    assert memory["rss_bytes"] >= memory["peak_reserved_bytes"]
    assert memory["rss_anon_bytes"] + memory["rss_file_bytes"] == memory["rss_bytes"]
    assert memory["outside_pool_bytes"] == memory["rss_bytes"] - memory["peak_reserved_bytes"]
    assert memory["timeline"] and all(len(p) == 3 for p in memory["timeline"])
    # The operator's own entry carries its bytes at the peak.
    index = top["operator_index"]
    of_operator = sum(h["bytes"] for h in holders if h["operator_index"] == index)
    assert df.stats["operators"][index]["at_peak_bytes"] == of_operator


def test_explain_analyze_ends_with_the_peak(tpch):
    text = _sorted_lineitem(tpch).explain(analyze=True)
    assert "at peak (after " in text
    assert "= Σ operators; process RSS" in text
    assert " at_peak=" in text
    assert any(line.strip().endswith("sort buffer") and "Sort #" in line for line in text.splitlines())


def test_profile_memory_renders_and_saves(tpch, tmp_path):
    lf = _sorted_lineitem(tpch)
    profile = lf.profile_memory(tmp_path / "sort.svg", title="sort <lineitem>")
    assert isinstance(profile, ooc.MemoryProfile)
    state = _state(profile.holders)
    assert state[0]["part"] == "sort buffer"
    assert sum(h["bytes"] for h in profile.holders) == profile.peak_reserved_bytes > 0
    assert sum(h["bytes"] for h in state) <= 8 * 1024 * 1024
    svg = (tmp_path / "sort.svg").read_text()
    assert svg == profile.svg and svg.startswith("<svg")
    assert "sort &lt;lineitem&gt;" in svg
    # Inline display in Jupyter (HTML, SVG) and marimo (_mime_).
    assert profile._repr_html_() == svg
    assert profile._mime_() == ("text/html", svg)
    assert str(profile).startswith("at peak (after ")
    profile.save(tmp_path / "sort.html")
    page = (tmp_path / "sort.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<pre>at peak" in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sort.html", "sort.svg"]
    assert profile.to_dict()["holders"] == profile.holders
