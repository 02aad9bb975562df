"""TPC-H Q1, Q3 and Q6 written with the lazy API (no SQL) give DuckDB's answers, and the same
queries through ooc.sql give the same rows."""

from __future__ import annotations

from decimal import Decimal

import ooc
from conftest import REPO, rows_equal
from tpch_lazy import q1, q3, q6


def duckdb_answer(duck, number):
    sql = (REPO / "tests" / "tpch" / "queries" / f"q{number:02}.sql").read_text()
    return duck.execute(sql).fetchall()


def test_q1_lazy_equals_duckdb(tpch, duck):
    ours = q1(tpch).collect()
    assert ours.columns == [
        "l_returnflag", "l_linestatus", "sum_qty", "sum_base_price", "sum_disc_price",
        "sum_charge", "avg_qty", "avg_price", "avg_disc", "count_order",
    ]
    expected = duckdb_answer(duck, 1)
    assert len(expected) == 4
    rows_equal(ours.rows(), expected, ordered=True)
    # Sums of decimals stay exact decimals.
    assert isinstance(ours.rows()[0][3], Decimal)


def test_q3_lazy_equals_duckdb(tpch, duck):
    ours = q3(tpch).collect().rows()
    expected = duckdb_answer(duck, 3)
    assert len(expected) == 10
    rows_equal(ours, expected, ordered=True)


def test_q6_lazy_equals_duckdb(tpch, duck):
    ours = q6(tpch).collect().rows()
    expected = duckdb_answer(duck, 6)
    assert ours == expected
    assert isinstance(ours[0][0], Decimal) and ours[0][0] > 0


def test_lazy_and_sql_agree(tpch):
    """The lazy API and SQL build the same kind of plan and give the same rows."""
    sql = (REPO / "tests" / "tpch" / "queries" / "q01.sql").read_text()
    via_sql = ooc.sql(sql, lineitem=tpch / "lineitem.parquet").collect().rows()
    rows_equal(q1(tpch).collect().rows(), via_sql, ordered=True)


def test_lazy_plan_prunes_like_sql(tpch):
    """Filters and projections of the lazy API are pushed into the Parquet scan."""
    plan = q6(tpch).explain()
    assert "ParquetScan" in plan or "Scan" in plan
    assert "l_shipdate" in plan
