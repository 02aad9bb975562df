"""Set operations in the lazy API (``concat``, ``intersect``, ``difference``, each with and
without ``all``), checked against DuckDB's UNION ALL / INTERSECT [ALL] / EXCEPT [ALL] on TPC-H
and on a small table with NULLs and duplicates."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

import ooc
from conftest import rows_equal

A = pa.table({"k": [1, 1, 1, 2, None, None, 3], "s": ["x", "x", "x", "y", None, None, "z"]})
B = pa.table({"k": [1, 1, 2, 2, None, 4], "s": ["x", "x", "y", "y", None, "w"]})


@pytest.mark.parametrize(
    "method,sql",
    [
        ("intersect", "INTERSECT"),
        ("difference", "EXCEPT"),
    ],
)
@pytest.mark.parametrize("all_", [False, True])
def test_small_tables_equal_duckdb(method, sql, all_):
    a, b = ooc.from_arrow(A).lazy(), ooc.from_arrow(B).lazy()
    ours = getattr(a, method)(b, all=all_).collect().rows()
    keyword = f"{sql} ALL" if all_ else sql
    theirs = duckdb.sql(f"SELECT * FROM A {keyword} SELECT * FROM B").fetchall()
    rows_equal(ours, theirs)


def test_concat_and_set_operations_on_tpch_equal_duckdb(tpch, duck):
    customer = ooc.scan_parquet(tpch / "customer.parquet")
    orders = ooc.scan_parquet(tpch / "orders.parquet")
    rich = customer.filter(ooc.col("c_acctbal") > 9000).select("c_custkey")
    buyers = orders.filter(ooc.col("o_totalprice") > 400000).select(
        ooc.col("o_custkey").alias("c_custkey")
    )
    got = rich.intersect(buyers).sort("c_custkey").collect().rows()
    expected = duck.sql(
        """SELECT c_custkey FROM customer WHERE c_acctbal > 9000
           INTERSECT SELECT o_custkey FROM orders WHERE o_totalprice > 400000
           ORDER BY 1"""
    ).fetchall()
    assert got == expected
    got = rich.difference(buyers).collect().rows()
    expected = duck.sql(
        """SELECT c_custkey FROM customer WHERE c_acctbal > 9000
           EXCEPT SELECT o_custkey FROM orders WHERE o_totalprice > 400000"""
    ).fetchall()
    rows_equal(got, expected)
    both = ooc.concat([rich, buyers, rich]).select(ooc.len()).collect().rows()
    expected = duck.sql(
        """SELECT count(*) FROM (SELECT c_custkey FROM customer WHERE c_acctbal > 9000
           UNION ALL SELECT o_custkey FROM orders WHERE o_totalprice > 400000
           UNION ALL SELECT c_custkey FROM customer WHERE c_acctbal > 9000)"""
    ).fetchall()
    assert both == expected


def test_mismatched_frames_are_refused():
    a = ooc.from_arrow(A).lazy()
    with pytest.raises(ooc.PlanError, match="columns"):
        a.intersect(a.select("k")).collect()
    with pytest.raises(ValueError, match="vertical"):
        ooc.concat([a, a], how="diagonal")
