"""``ooc.row_number().over(...)`` and ``ooc.concat_str``, checked against Polars on a table
with NULLs and ties, and against DuckDB's ``row_number()`` on TPC-H ``orders``."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

import ooc

TABLE = pa.table(
    {
        "g": ["a", "a", "b", "a", "b", None],
        "t": [3, 1, 2, 2, 1, 7],
        "s": ["x", None, "z", "w", None, "n"],
        "v": pa.array([1.5, 2.0, None, 4.0, 5.0, 6.0]),
    }
)


def test_row_number_over_partitions_equals_polars():
    ours = (
        ooc.from_arrow(TABLE)
        .lazy()
        .with_columns(n=ooc.row_number().over("g", order_by="t"))
        .sort("g", "t", nulls_last=True)
        .collect()
        .rows()
    )
    theirs = (
        pl.from_arrow(TABLE)
        .sort("g", "t", nulls_last=True)
        .with_columns(n=pl.int_range(1, pl.len() + 1).over("g"))
        .rows()
    )
    assert ours == theirs


def test_row_number_without_order_is_refused():
    with pytest.raises(ValueError, match="row_number depends on the order of rows"):
        ooc.row_number().over("g")


def test_row_number_equals_duckdb_on_orders(tpch, duck):
    orders = ooc.scan_parquet(tpch / "orders.parquet")
    ours = (
        orders.with_columns(
            n=ooc.row_number().over("o_custkey", order_by=["o_orderdate", "o_orderkey"])
        )
        .filter(ooc.col("n") <= 2)
        .select("o_custkey", "o_orderkey", "n")
        .sort("o_custkey", "n")
        .collect()
        .rows()
    )
    theirs = duck.execute(
        f"""SELECT o_custkey, o_orderkey, n FROM (
              SELECT o_custkey, o_orderkey,
                     row_number() OVER (PARTITION BY o_custkey ORDER BY o_orderdate, o_orderkey) n
              FROM '{tpch / "orders.parquet"}') WHERE n <= 2 ORDER BY o_custkey, n"""
    ).fetchall()
    assert ours == theirs


@pytest.mark.parametrize("ignore_nulls", [False, True])
@pytest.mark.parametrize("separator", ["", "-", ", "])
def test_concat_str_equals_polars(separator, ignore_nulls):
    ours = (
        ooc.from_arrow(TABLE)
        .lazy()
        .select(ooc.concat_str("g", "s", "v", separator=separator, ignore_nulls=ignore_nulls))
        .collect()
        .to_arrow()
    )
    theirs = pl.from_arrow(TABLE).select(
        pl.concat_str(["g", "s", pl.col("v").cast(pl.Utf8)], separator=separator, ignore_nulls=ignore_nulls)
    )
    assert ours.column_names == theirs.columns == ["g"]
    assert ours.column("g").to_pylist() == theirs["g"].to_list()
