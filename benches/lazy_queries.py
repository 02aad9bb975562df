"""The benchmark queries that have a version written with ooc's lazy Python API (no SQL).

`LAZY[name](data)` builds the LazyFrame of the query whose file is `name.sql` (TPC-H Q1, Q3
and Q6, and the memory suite's queries); each computes what its SQL file computes. The TPC-H
ones are shared with the Python tests (python/tests/tpch_lazy.py).
"""

from __future__ import annotations

import pathlib
import sys

import ooc
from ooc import col

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "python" / "tests"))
from tpch_lazy import q1, q3, q6  # noqa: E402


def scan(data: pathlib.Path, table: str) -> ooc.LazyFrame:
    return ooc.scan_parquet(data / f"{table}.parquet")


def groupby_orderkey(data):
    return scan(data, "lineitem").group_by("l_orderkey").agg(
        qty=col("l_quantity").sum(),
        revenue=(col("l_extendedprice") * (1 - col("l_discount"))).sum(),
        n=ooc.len(),
    )


def groupby_part_supp(data):
    return scan(data, "lineitem").group_by("l_partkey", "l_suppkey").agg(
        qty=col("l_quantity").sum(),
        avg_discount=col("l_discount").mean(),
        n=ooc.len(),
    )


def distinct_comment(data):
    return scan(data, "lineitem").select(comments=col("l_comment").n_unique())


def sort_shipdate(data):
    return scan(data, "lineitem").sort("l_shipdate", "l_orderkey", "l_linenumber")


def join_agg(data):
    return (
        scan(data, "lineitem")
        .join(scan(data, "orders"), left_on="l_orderkey", right_on="o_orderkey")
        .group_by("o_orderpriority", "l_shipmode")
        .agg(n=ooc.len(), price=col("l_extendedprice").sum())
    )


LAZY = {
    "q01": q1,
    "q03": q3,
    "q06": q6,
    "groupby_orderkey": groupby_orderkey,
    "groupby_part_supp": groupby_part_supp,
    "distinct_comment": distinct_comment,
    "sort_shipdate": sort_shipdate,
    "join_agg": join_agg,
}
