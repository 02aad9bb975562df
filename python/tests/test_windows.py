"""Window expressions of the lazy API (``.over``, ``rank``, ``cum_*``, ``shift``,
``rolling_*``) and the ``std``/``var`` aggregates, checked against Polars on a small table
with NULLs and ties, and against DuckDB's SQL windows on TPC-H ``lineitem``."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

import ooc
from ooc import col
from conftest import rows_equal

TABLE = pa.table(
    {
        "g": ["a", "a", "a", "b", "b", None, "a", "b"],
        "t": pa.array([1, 2, 3, 1, 2, 1, 4, 3], pa.int64()),
        "v": pa.array([10, None, 30, 5, 5, 7, 20, None], pa.int64()),
        "x": pa.array([1.5, 2.5, None, 4.0, 0.5, 3.0, 2.0, 1.0], pa.float64()),
    }
)


def ours(*exprs):
    frame = ooc.from_arrow(TABLE).lazy().with_columns(*exprs).sort("g", "t", nulls_last=True)
    return frame.collect().to_arrow().to_pylist()


def theirs(*exprs):
    frame = pl.from_arrow(TABLE).lazy().with_columns(*exprs).sort("g", "t", nulls_last=True)
    return frame.collect().to_arrow().to_pylist()


def as_rows(dicts):
    return [tuple(d.values()) for d in dicts]


@pytest.mark.parametrize(
    "name, make",
    [
        ("sum_over", lambda c: c("v").sum().over("g")),
        ("mean_over", lambda c: c("x").mean().over("g")),
        ("count_over", lambda c: c("v").count().over("g")),
        ("min_max_over", lambda c: c("v").max().over("g") - c("v").min().over("g")),
        ("centered", lambda c: c("x") - c("x").mean().over("g")),
        ("shift", lambda c: c("v").shift(1).over("g", order_by="t")),
        ("shift_back", lambda c: c("v").shift(-2).over("g", order_by="t")),
        ("shift_fill", lambda c: c("v").shift(1, fill_value=0).over("g", order_by="t")),
        ("cum_sum", lambda c: c("v").cum_sum().over("g", order_by="t")),
        ("cum_max", lambda c: c("x").cum_max().over("g", order_by="t")),
        ("cum_min", lambda c: c("x").cum_min().over("g", order_by="t")),
        ("rolling_mean", lambda c: c("x").rolling_mean(2).over("g", order_by="t")),
        ("rolling_sum", lambda c: c("x").rolling_sum(3, min_samples=1).over("g", order_by="t")),
        ("rolling_max", lambda c: c("v").rolling_max(2, min_samples=1).over("g", order_by="t")),
        ("rank_min", lambda c: c("v").rank("min").over("g")),
        ("rank_max", lambda c: c("v").rank("max").over("g")),
        ("rank_dense", lambda c: c("v").rank("dense", descending=True).over("g")),
        ("rank_average", lambda c: c("v").rank().over("g")),
        ("rank_whole_input", lambda c: c("x").rank("min")),
        ("std", lambda c: c("x").std().over("g")),
        ("var_pop", lambda c: c("x").var(ddof=0).over("g")),
    ],
)
def test_window_expressions_equal_polars(name, make):
    got = ours(make(col).alias("w"))
    want = theirs(make(pl.col).alias("w"))
    # Polars' integer ranks are UInt32 like ours; compare values (floats with a tolerance).
    rows_equal(as_rows(got), as_rows(want), ordered=True)


def test_over_without_partitions_is_over_the_whole_input():
    got = ooc.from_arrow(TABLE).lazy().select(w=col("v").sum().over(None)).collect().rows()
    assert got == [(77,)] * 8


def test_rolling_std_equals_polars():
    got = ours(col("x").rolling_std(3, min_samples=2).over("g", order_by="t").alias("w"))
    want = theirs(pl.col("x").rolling_std(3, min_samples=2).over("g", order_by="t").alias("w"))
    rows_equal(as_rows(got), as_rows(want), ordered=True)


def test_filter_on_a_window_keeps_the_top_row_per_group():
    frame = ooc.from_arrow(TABLE).lazy()
    got = (
        frame.filter(col("t").rank("ordinal", descending=True).over("g") == 1)
        .select("g", "t")
        .sort("g", nulls_last=True)
        .collect()
        .rows()
    )
    assert got == [("a", 4), ("b", 3), (None, 1)]


def test_order_dependent_functions_need_an_order():
    frame = ooc.from_arrow(TABLE).lazy()
    for make in (
        lambda: col("v").shift(1),
        lambda: col("v").cum_sum().over("g"),
        lambda: col("x").rolling_mean(2),
    ):
        with pytest.raises(ValueError, match="order_by"):
            frame.with_columns(make().alias("w")).collect()


def test_moving_average_per_supplier_equals_duckdb(tpch, duck):
    got = (
        ooc.scan_parquet(tpch / "lineitem.parquet")
        .filter(col("l_suppkey") <= 20)
        .select(
            "l_orderkey",
            "l_linenumber",
            avg=col("l_extendedprice")
            .rolling_mean(7, min_samples=1)
            .over("l_suppkey", order_by=["l_shipdate", "l_orderkey", "l_linenumber"]),
            rank=col("l_quantity").rank("dense", descending=True).over("l_suppkey"),
        )
        .collect()
        .rows()
    )
    want = duck.sql(
        """
        SELECT l_orderkey, l_linenumber,
          avg(l_extendedprice) OVER (PARTITION BY l_suppkey
            ORDER BY l_shipdate, l_orderkey, l_linenumber
            ROWS BETWEEN 6 PRECEDING AND CURRENT ROW),
          CAST(dense_rank() OVER (PARTITION BY l_suppkey ORDER BY l_quantity DESC) AS UINTEGER)
        FROM lineitem WHERE l_suppkey <= 20
        """
    ).fetchall()
    rows_equal(got, want)
