"""TPC-H Q1, Q3 and Q6 written with ooc's lazy API (no SQL); `tpch` is the data directory.
Shared by tests/test_tpch.py and benches/python_api.py."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ooc
from ooc import col


def scan(tpch, table):
    return ooc.scan_parquet(tpch / f"{table}.parquet")


def q1(tpch):
    disc_price = col("l_extendedprice") * (1 - col("l_discount"))
    return (
        scan(tpch, "lineitem")
        .filter(col("l_shipdate") <= dt.date(1998, 9, 2))
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            sum_qty=col("l_quantity").sum(),
            sum_base_price=col("l_extendedprice").sum(),
            sum_disc_price=disc_price.sum(),
            sum_charge=(disc_price * (1 + col("l_tax"))).sum(),
            avg_qty=col("l_quantity").mean(),
            avg_price=col("l_extendedprice").mean(),
            avg_disc=col("l_discount").mean(),
            count_order=ooc.len(),
        )
        .sort("l_returnflag", "l_linestatus")
    )


def q3(tpch):
    customer = scan(tpch, "customer").filter(col("c_mktsegment") == "BUILDING")
    orders = scan(tpch, "orders").filter(col("o_orderdate") < dt.date(1995, 3, 15))
    lineitem = scan(tpch, "lineitem").filter(col("l_shipdate") > dt.date(1995, 3, 15))
    return (
        customer.join(orders, left_on="c_custkey", right_on="o_custkey")
        .join(lineitem, left_on="o_orderkey", right_on="l_orderkey")
        .group_by("o_orderkey", "o_orderdate", "o_shippriority")
        .agg(revenue=(col("l_extendedprice") * (1 - col("l_discount"))).sum())
        .sort("revenue", "o_orderdate", descending=[True, False])
        .head(10)
        .select(col("o_orderkey").alias("l_orderkey"), "revenue", "o_orderdate", "o_shippriority")
    )


def q6(tpch):
    return (
        scan(tpch, "lineitem")
        .filter(
            (col("l_shipdate") >= dt.date(1994, 1, 1))
            & (col("l_shipdate") < dt.date(1995, 1, 1))
            & col("l_discount").is_between(Decimal("0.05"), Decimal("0.07"))
            & (col("l_quantity") < 24)
        )
        .select(revenue=(col("l_extendedprice") * col("l_discount")).sum())
    )
