"""Every LazyFrame method and every Expr method / namespace of the ``ooc`` package, checked
against DuckDB (the ``duck`` fixture, or a private connection for small NULL-laden tables) or
against Polars, on the TPC-H SF0.05 files and on small hand-made tables."""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from decimal import Decimal

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ooc
from ooc import col
from conftest import rows_equal


def scan(tpch, table):
    return ooc.scan_parquet(tpch / f"{table}.parquet")


# A small table with NULLs in every column, registered in a private DuckDB connection.
NULLS = pa.table(
    {
        "a": pa.array([1, None, 3, 0, -2, 7], pa.int64()),
        "i32": pa.array([1, 2, None, 4, 5, 6], pa.int32()),
        "b": pa.array([2.5, 1.0, None, 0.0, -3.0, 10.25], pa.float64()),
        "s": ["Apple", None, "banana", "Cherry", "apple pie", "Ünïcode 日本"],
        "p": pa.array([True, None, False, True, None, False], pa.bool_()),
        "d": pa.array(
            [dt.date(1995, 3, 15), None, dt.date(2000, 2, 29), dt.date(1970, 1, 1),
             dt.date(1992, 12, 31), dt.date(2024, 7, 4)],
            pa.date32(),
        ),
        "m": pa.array(
            [Decimal("1.10"), None, Decimal("-2.25"), Decimal("100.00"), Decimal("0.01"),
             Decimal("12345.67")],
            pa.decimal128(15, 2),
        ),
        "k": ["x", "x", None, "y", None, "y"],
    }
)


@pytest.fixture(scope="module")
def nulls_duck():
    con = duckdb.connect()
    con.register("t", NULLS)
    return con


@pytest.fixture
def nulls():
    return ooc.from_arrow(NULLS).lazy()


def strict_rows_equal(ours, theirs):
    """Ordered, exact equality including the Python type of each value (Decimal stays
    Decimal, int stays int), NaN equal to NaN."""
    assert len(ours) == len(theirs), f"{len(ours)} rows vs {len(theirs)}"
    for i, (ra, rb) in enumerate(zip(ours, theirs)):
        assert len(ra) == len(rb)
        for va, vb in zip(ra, rb):
            if isinstance(va, float) and isinstance(vb, float):
                assert (math.isnan(va) and math.isnan(vb)) or math.isclose(va, vb, rel_tol=1e-12), (i, ra, rb)
            else:
                assert type(va) is type(vb) and va == vb, (i, ra, rb)


# ---------------------------------------------------------------------------------------------
# Entry points: scan_parquet, sql, from_arrow
# ---------------------------------------------------------------------------------------------


def test_scan_parquet_single_file_str_and_path(tpch, duck):
    expected = duck.execute(
        "select count(*), sum(l_quantity), min(l_shipdate), max(l_comment) from lineitem"
    ).fetchall()
    for source in (tpch / "lineitem.parquet", str(tpch / "lineitem.parquet")):
        lf = ooc.scan_parquet(source)
        got = lf.select(
            ooc.len(), col("l_quantity").sum(), col("l_shipdate").min(), col("l_comment").max()
        ).collect().rows()
        assert got == expected


def test_scan_parquet_glob_list_and_directory(tpch, tmp_path, duck):
    orders = pq.read_table(tpch / "orders.parquet")
    half = orders.num_rows // 2
    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(orders.slice(0, half), parts / "a.parquet")
    pq.write_table(orders.slice(half), parts / "b.parquet")
    expected = duck.execute(
        "select o_orderstatus, count(*), sum(o_totalprice) from orders group by 1"
    ).fetchall()

    def agg(lf):
        return (
            lf.group_by("o_orderstatus")
            .agg(ooc.len(), col("o_totalprice").sum())
            .collect()
            .rows()
        )

    rows_equal(agg(ooc.scan_parquet(str(parts / "*.parquet"))), expected)
    rows_equal(agg(ooc.scan_parquet([parts / "a.parquet", parts / "b.parquet"])), expected)
    rows_equal(agg(ooc.scan_parquet(parts)), expected)
    # The same file twice in a list is read twice.
    doubled = ooc.scan_parquet([tpch / "nation.parquet", tpch / "nation.parquet"])
    assert doubled.select(ooc.len()).collect().rows() == [(50,)]


def test_sql_with_path_lazyframe_and_dataframe_tables(tpch, duck):
    regions = ooc.from_arrow(pa.table({"rk": [0, 1, 1, 4], "w": [10, 20, 30, 40]}))
    orders = scan(tpch, "orders").filter(col("o_totalprice") > Decimal("100000"))
    query = """
        SELECT n.n_name, count(*) AS c, sum(w.w) AS s
        FROM nation n JOIN w ON n.n_regionkey = w.rk
        GROUP BY n.n_name
    """
    ours = ooc.sql(query, nation=tpch / "nation.parquet", w=regions).collect().rows()
    expected = duck.execute(
        "SELECT n_name, count(*), sum(w) FROM nation "
        "JOIN (VALUES (0, 10), (1, 20), (1, 30), (4, 40)) v(rk, w) ON n_regionkey = rk "
        "GROUP BY n_name"
    ).fetchall()
    assert len(expected) == 15
    rows_equal(ours, expected)

    ours = ooc.sql(
        "SELECT o_orderstatus, count(*) AS n, sum(o_totalprice) AS t FROM o GROUP BY 1", o=orders
    ).collect()
    assert ours.columns == ["o_orderstatus", "n", "t"]
    rows_equal(
        ours.rows(),
        duck.execute(
            "SELECT o_orderstatus, count(*), sum(o_totalprice) FROM orders "
            "WHERE o_totalprice > 100000 GROUP BY 1"
        ).fetchall(),
    )

    # A path given as a string, a pyarrow table, and a path written in the query itself.
    assert ooc.sql("SELECT count(*) AS c FROM r", r=str(tpch / "region.parquet")).collect().rows() == [(5,)]
    assert ooc.sql("SELECT sum(a) AS s FROM t", t=pa.table({"a": [1, 2, 3]})).collect().rows() == [(6,)]
    inline = ooc.sql(f"SELECT count(*) AS c FROM '{tpch / 'customer.parquet'}'").collect().rows()
    assert inline == duck.execute("SELECT count(*) FROM customer").fetchall()


def test_sql_tpch_join_matches_duckdb(tpch, duck):
    query = """
        SELECT c_mktsegment, o_orderpriority, count(*) AS n, sum(o_totalprice) AS total
        FROM customer JOIN orders ON c_custkey = o_custkey
        WHERE o_orderdate >= DATE '1995-01-01'
        GROUP BY c_mktsegment, o_orderpriority
        ORDER BY c_mktsegment, o_orderpriority
    """
    ours = ooc.sql(
        query, customer=tpch / "customer.parquet", orders=tpch / "orders.parquet"
    ).collect().rows()
    expected = duck.execute(query).fetchall()
    assert len(expected) == 25
    rows_equal(ours, expected, ordered=True)
    assert isinstance(ours[0][3], Decimal)


# ---------------------------------------------------------------------------------------------
# select, with_columns, filter
# ---------------------------------------------------------------------------------------------


def test_select_names_expressions_and_keywords(tpch, duck):
    lf = scan(tpch, "orders").filter(col("o_orderkey") < 4000)
    out = lf.select(
        "o_orderkey",
        col("o_totalprice") * 2,
        (col("o_totalprice") - col("o_shippriority")).alias("diff"),
        status=col("o_orderstatus"),
        year=col("o_orderdate").dt.year(),
    ).collect()
    # Unaliased expressions are named after the first column they read (Polars' rule).
    assert out.columns == ["o_orderkey", "o_totalprice", "diff", "status", "year"]
    expected = duck.execute(
        "SELECT o_orderkey, o_totalprice * 2, o_totalprice - o_shippriority, o_orderstatus, "
        "year(o_orderdate) FROM orders WHERE o_orderkey < 4000"
    ).fetchall()
    assert len(expected) > 900
    rows_equal(out.rows(), expected)


def test_select_only_aggregates_gives_one_row(tpch, duck):
    got = scan(tpch, "lineitem").select(
        col("l_quantity").sum(),
        col("l_discount").mean(),
        n=ooc.len(),
        modes=col("l_shipmode").n_unique(),
        last_ship=col("l_shipdate").max(),
    ).collect()
    assert got.columns == ["l_quantity", "l_discount", "n", "modes", "last_ship"]
    expected = duck.execute(
        "SELECT sum(l_quantity), avg(l_discount), count(*), count(DISTINCT l_shipmode), "
        "max(l_shipdate) FROM lineitem"
    ).fetchall()
    rows_equal(got.rows(), expected)


def test_with_columns_adds_and_replaces(tpch, duck):
    lf = scan(tpch, "lineitem").filter(col("l_orderkey") < 2000)
    out = lf.with_columns(
        col("l_quantity") * 2,  # replaces l_quantity in place
        net=col("l_extendedprice") * (1 - col("l_discount")),  # added at the end
    )
    assert out.columns == lf.columns + ["net"]
    assert isinstance(out.schema["l_quantity"], ooc.Decimal) and out.schema["l_quantity"].scale == 2
    got = out.select("l_orderkey", "l_linenumber", "l_quantity", "net").collect().rows()
    expected = duck.execute(
        "SELECT l_orderkey, l_linenumber, l_quantity * 2, l_extendedprice * (1 - l_discount) "
        "FROM lineitem WHERE l_orderkey < 2000"
    ).fetchall()
    assert len(expected) > 1000
    rows_equal(got, expected)
    # Later with_columns see earlier ones, and replacing keeps the column's position.
    small = ooc.from_arrow(pa.table({"a": [1, 2], "b": [10, 20]})).lazy()
    chained = small.with_columns(c=col("a") + col("b")).with_columns(a=col("c") * 10)
    assert chained.columns == ["a", "b", "c"]
    assert chained.collect().rows() == [(110, 10, 11), (220, 20, 22)]


def test_filter_expressions_and_keyword_constraints(tpch, duck):
    li = scan(tpch, "lineitem")
    got = li.filter(l_shipmode="AIR", l_returnflag="R").select(ooc.len()).collect().rows()
    assert got == duck.execute(
        "SELECT count(*) FROM lineitem WHERE l_shipmode = 'AIR' AND l_returnflag = 'R'"
    ).fetchall()
    got = (
        li.filter(
            (col("l_shipdate") >= dt.date(1994, 1, 1)) & (col("l_shipdate") < dt.date(1995, 1, 1)),
            col("l_discount").is_between(Decimal("0.05"), Decimal("0.07")),
            col("l_quantity") < 24,
            l_linestatus="F",
        )
        .select(col("l_extendedprice").sum(), ooc.len())
        .collect()
        .rows()
    )
    expected = duck.execute(
        "SELECT sum(l_extendedprice), count(*) FROM lineitem WHERE l_shipdate >= DATE '1994-01-01' "
        "AND l_shipdate < DATE '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 "
        "AND l_quantity < 24 AND l_linestatus = 'F'"
    ).fetchall()
    assert expected[0][1] > 0
    assert got == expected
    # A boolean column name as the predicate; NULL counts as false.
    flags = ooc.from_arrow(pa.table({"p": [True, False, None, True], "v": [1, 2, 3, 4]})).lazy()
    assert flags.filter("p").collect().rows() == [(True, 1), (True, 4)]
    assert flags.filter(~col("p")).collect().rows() == [(False, 2)]


def test_filter_null_semantics(nulls, nulls_duck):
    for expr, sql in [
        (col("a") > 0, "a > 0"),
        (col("p") | (col("a") > 2), "p OR a > 2"),
        (col("p") & col("a").is_not_null(), "p AND a IS NOT NULL"),
        (~(col("a") == 3), "NOT (a = 3)"),
        (col("s") != "Apple", "s <> 'Apple'"),
    ]:
        got = nulls.filter(expr).select("a", "s").collect().rows()
        expected = nulls_duck.execute(f"SELECT a, s FROM t WHERE {sql}").fetchall()
        assert got == expected, sql


# ---------------------------------------------------------------------------------------------
# group_by / agg
# ---------------------------------------------------------------------------------------------


def test_group_by_several_keys_and_all_aggregates(tpch, duck):
    got = (
        scan(tpch, "lineitem")
        .group_by("l_returnflag", "l_linestatus", "l_shipmode")
        .agg(
            col("l_quantity").sum().alias("sum_qty"),
            col("l_extendedprice").mean().alias("avg_price"),
            col("l_discount").min().alias("min_disc"),
            col("l_discount").max().alias("max_disc"),
            col("l_comment").count().alias("n_comments"),
            col("l_suppkey").n_unique().alias("suppliers"),
            first_ship=col("l_shipdate").min(),
            n=ooc.len(),
        )
        .collect()
    )
    assert got.columns == [
        "l_returnflag", "l_linestatus", "l_shipmode", "sum_qty", "avg_price", "min_disc",
        "max_disc", "n_comments", "suppliers", "first_ship", "n",
    ]
    assert got.schema["avg_price"] == ooc.Float64
    assert isinstance(got.schema["sum_qty"], ooc.Decimal) and got.schema["sum_qty"].scale == 2
    expected = duck.execute(
        "SELECT l_returnflag, l_linestatus, l_shipmode, sum(l_quantity), avg(l_extendedprice), "
        "min(l_discount), max(l_discount), count(l_comment), count(DISTINCT l_suppkey), "
        "min(l_shipdate), count(*) FROM lineitem GROUP BY ALL"
    ).fetchall()
    assert len(expected) == 28
    rows_equal(got.rows(), expected)


def test_group_by_expressions_combining_aggregates(tpch, duck):
    got = (
        scan(tpch, "lineitem")
        .group_by("l_returnflag", "l_linestatus")
        .agg(
            (col("l_extendedprice").sum() / col("l_quantity").count()).alias("ratio"),
            (col("l_quantity").max() - col("l_quantity").min()).alias("spread"),
            (col("l_discount").mean() * 100).alias("pct"),
            net=(col("l_extendedprice") * (1 - col("l_discount"))).sum(),
        )
        .collect()
        .rows()
    )
    expected = duck.execute(
        "SELECT l_returnflag, l_linestatus, sum(l_extendedprice) / count(l_quantity), "
        "max(l_quantity) - min(l_quantity), avg(l_discount) * 100, "
        "sum(l_extendedprice * (1 - l_discount)) FROM lineitem GROUP BY ALL"
    ).fetchall()
    rows_equal(got, expected)
    # Decimal sums stay exact.
    assert all(isinstance(r[5], Decimal) for r in got)


def test_columns_named_like_internal_ones_are_ordinary_columns():
    """A user column named `__agg1` (or `__agg0`, `__value`, ...) is never taken for one of
    the names planning gives its own columns (issue #25)."""
    table = pa.table(
        {
            "__agg0": [0, 1, 0, 1, 0, 1],
            "__agg1": [0, 10, 20, 30, 40, 50],
            "__value": [1, 2, 3, 4, 5, 6],
        }
    )
    got = (
        ooc.from_arrow(table)
        .lazy()
        .group_by("__agg0")
        .agg(
            (col("__agg1").sum() + col("__value").max()).alias("__agg1"),
            __value=col("__value").sum(),
        )
        .sort("__agg0")
        .collect()
    )
    assert got.columns == ["__agg0", "__agg1", "__value"]
    assert got.rows() == [(0, 65, 9), (1, 96, 12)]
    with pytest.raises(ValueError, match="__agg1"):
        ooc.from_arrow(table).lazy().group_by("__agg0").agg(col("__agg1")).collect()


def test_group_by_expression_keys_and_filter_after(tpch, duck):
    got = (
        scan(tpch, "orders")
        .group_by(col("o_orderdate").dt.year().alias("y"), "o_orderstatus")
        .agg(n=ooc.len(), total=col("o_totalprice").sum())
        .filter(col("n") > 100)
        .collect()
    )
    assert got.columns == ["y", "o_orderstatus", "n", "total"]
    expected = duck.execute(
        "SELECT year(o_orderdate), o_orderstatus, count(*) n, sum(o_totalprice) FROM orders "
        "GROUP BY ALL HAVING n > 100"
    ).fetchall()
    rows_equal(got.rows(), expected)


def test_group_by_aggregates_with_nulls(nulls, nulls_duck):
    got = (
        nulls.group_by("k")
        .agg(
            s=col("a").sum(), avg=col("b").mean(), mn=col("m").min(), mx=col("s").max(),
            c=col("a").count(), nu=col("p").n_unique(), n=ooc.len(),
        )
        .collect()
        .rows()
    )
    expected = nulls_duck.execute(
        "SELECT k, sum(a), avg(b), min(m), max(s), count(a), "
        "count(DISTINCT p) + (count(*) > count(p))::INT, count(*) FROM t GROUP BY k"
    ).fetchall()
    rows_equal(got, expected)
    # A group whose values are all NULL sums to NULL; an empty input aggregates to one row.
    empty = nulls.filter(col("a") > 100).select(
        col("a").sum(), col("b").mean(), col("a").count(), n=ooc.len()
    )
    assert empty.collect().rows() == nulls_duck.execute(
        "SELECT sum(a), avg(b), count(a), count(*) FROM t WHERE a > 100"
    ).fetchall() == [(None, None, 0, 0)]


def test_n_unique_counts_null_like_polars(nulls):
    got = nulls.select(
        a=col("a").n_unique(), s=col("s").n_unique(), k=col("k").n_unique(), p=col("p").n_unique()
    ).collect().rows()
    p = pl.from_arrow(NULLS)
    assert got == [(p["a"].n_unique(), p["s"].n_unique(), p["k"].n_unique(), p["p"].n_unique())]
    assert got == [(6, 6, 3, 3)]
    # Small counts are exact in the sketch too (linear counting), NULL included like Polars.
    approx = nulls.select(
        a=col("a").approx_n_unique(), s=col("s").approx_n_unique(), k=col("k").approx_n_unique()
    ).collect().rows()
    assert approx == [(p["a"].approx_n_unique(), p["s"].approx_n_unique(), 3)] == [(6, 6, 3)]


def test_approx_n_unique_is_close_on_many_values(tpch):
    lineitem = ooc.scan_parquet(tpch / "lineitem.parquet")
    got = (
        lineitem.group_by("l_returnflag")
        .agg(
            approx=col("l_orderkey").approx_n_unique(),
            exact=col("l_orderkey").n_unique(),
            comments=col("l_comment").approx_n_unique(),
            exact_comments=col("l_comment").n_unique(),
        )
        .sort("l_returnflag")
        .collect()
        .rows()
    )
    assert len(got) == 3
    for _, approx, exact, comments, exact_comments in got:
        assert abs(approx - exact) / exact < 0.03
        assert abs(comments - exact_comments) / exact_comments < 0.03


def test_first_last_with_one_thread_follow_file_order(tpch):
    ooc.config(threads=1)
    table = pq.read_table(tpch / "orders.parquet", columns=["o_custkey", "o_orderkey", "o_comment"])
    first, last = {}, {}
    for c, o in zip(table.column("o_custkey").to_pylist(), table.column("o_orderkey").to_pylist()):
        first.setdefault(c, o)
        last[c] = o
    got = (
        scan(tpch, "orders")
        .group_by("o_custkey")
        .agg(f=col("o_orderkey").first(), l=col("o_orderkey").last())
        .collect()
        .rows()
    )
    assert len(got) == len(first) == 5000
    assert {c: f for c, f, _ in got} == first
    assert {c: l for c, _, l in got} == last
    whole = scan(tpch, "orders").select(
        f=col("o_orderkey").first(), l=col("o_comment").last()
    ).collect().rows()
    assert whole == [(table.column("o_orderkey")[0].as_py(), table.column("o_comment")[-1].as_py())]


def test_first_last_on_constant_groups_and_nulls(tpch, duck):
    # Any row of a group where all values agree: first == last == that value.
    got = (
        scan(tpch, "lineitem")
        .group_by("l_orderkey")
        .agg(f=col("l_orderkey").first(), l=col("l_orderkey").last(), n=ooc.len())
        .filter(col("f") != col("l_orderkey"))
        .collect()
    )
    assert got.height == 0
    got = (
        scan(tpch, "orders")
        .filter(col("o_custkey") < 200)
        .group_by("o_custkey")
        .agg(f=col("o_custkey").first(), l=col("o_custkey").last())
        .collect()
        .rows()
    )
    assert got and all(k == f == l for k, f, l in got)
    # first/last keep NULLs (they do not skip them), in file order with one thread.
    ooc.config(threads=1)
    t = ooc.from_arrow(pa.table({"k": ["x", "x", "y", "y"], "v": [None, 1, 2, None]})).lazy()
    rows = t.group_by("k").agg(f=col("v").first(), l=col("v").last()).sort("k").collect().rows()
    assert rows == [("x", None, 1), ("y", 2, None)]


# ---------------------------------------------------------------------------------------------
# join
# ---------------------------------------------------------------------------------------------

CUST = "(SELECT * FROM customer WHERE c_custkey < 3000)"
ORD = "(SELECT * FROM orders WHERE o_orderkey < 20000)"
JOIN_SQL = {
    "inner": f"SELECT c_custkey, c_nationkey, c_mktsegment, o_orderkey, o_totalprice FROM {CUST} JOIN {ORD} ON c_custkey = o_custkey",
    "left": f"SELECT c_custkey, c_nationkey, c_mktsegment, o_orderkey, o_totalprice FROM {CUST} LEFT JOIN {ORD} ON c_custkey = o_custkey",
    "right": f"SELECT c_nationkey, c_mktsegment, o_orderkey, o_custkey, o_totalprice FROM {CUST} RIGHT JOIN {ORD} ON c_custkey = o_custkey",
    "full": f"SELECT c_custkey, c_nationkey, c_mktsegment, o_orderkey, o_custkey, o_totalprice FROM {CUST} FULL JOIN {ORD} ON c_custkey = o_custkey",
    "semi": f"SELECT c_custkey, c_nationkey, c_mktsegment FROM {CUST} SEMI JOIN {ORD} ON c_custkey = o_custkey",
    "anti": f"SELECT c_custkey, c_nationkey, c_mktsegment FROM {CUST} ANTI JOIN {ORD} ON c_custkey = o_custkey",
}


@pytest.mark.parametrize("how", ["inner", "left", "right", "full", "semi", "anti"])
def test_join_left_on_right_on_matches_duckdb(tpch, duck, how):
    cust = scan(tpch, "customer").select("c_custkey", "c_nationkey", "c_mktsegment").filter(col("c_custkey") < 3000)
    orders = scan(tpch, "orders").select("o_orderkey", "o_custkey", "o_totalprice").filter(col("o_orderkey") < 20000)
    got = cust.join(orders, left_on="c_custkey", right_on="o_custkey", how=how).collect().rows()
    expected = duck.execute(JOIN_SQL[how]).fetchall()
    assert len(expected) > 100
    rows_equal(got, expected)


@pytest.mark.parametrize("how", ["inner", "left", "right", "full", "semi", "anti"])
def test_join_on_matches_duckdb(tpch, duck, how):
    sup = scan(tpch, "supplier").select("s_suppkey", "s_nationkey").rename({"s_nationkey": "nk"})
    sup = sup.filter(col("nk") < 20)
    nat = scan(tpch, "nation").select("n_nationkey", "n_name").rename({"n_nationkey": "nk"})
    nat = nat.filter(col("nk") > 5)
    got = sup.join(nat, on="nk", how=how).collect()
    s = "(SELECT s_suppkey, s_nationkey AS nk FROM supplier WHERE s_nationkey < 20)"
    n = "(SELECT n_nationkey AS nk, n_name FROM nation WHERE n_nationkey > 5)"
    sql = {
        "inner": f"SELECT s.s_suppkey, s.nk, n.n_name FROM {s} s JOIN {n} n ON s.nk = n.nk",
        "left": f"SELECT s.s_suppkey, s.nk, n.n_name FROM {s} s LEFT JOIN {n} n ON s.nk = n.nk",
        "right": f"SELECT s.s_suppkey, n.nk, n.n_name FROM {s} s RIGHT JOIN {n} n ON s.nk = n.nk",
        "full": f"SELECT s.s_suppkey, s.nk, n.nk, n.n_name FROM {s} s FULL JOIN {n} n ON s.nk = n.nk",
        "semi": f"SELECT s.s_suppkey, s.nk FROM {s} s SEMI JOIN {n} n ON s.nk = n.nk",
        "anti": f"SELECT s.s_suppkey, s.nk FROM {s} s ANTI JOIN {n} n ON s.nk = n.nk",
    }[how]
    expected_columns = {
        "inner": ["s_suppkey", "nk", "n_name"],
        "left": ["s_suppkey", "nk", "n_name"],
        "right": ["s_suppkey", "nk", "n_name"],
        "full": ["s_suppkey", "nk", "nk_right", "n_name"],
        "semi": ["s_suppkey", "nk"],
        "anti": ["s_suppkey", "nk"],
    }[how]
    assert got.columns == expected_columns
    expected = duck.execute(sql).fetchall()
    assert len(expected) > 10
    rows_equal(got.rows(), expected)


def test_join_several_keys_and_expression_keys(tpch, duck):
    li = scan(tpch, "lineitem").filter(col("l_orderkey") < 3000)
    a = li.select("l_orderkey", "l_linenumber", "l_quantity")
    b = li.select("l_orderkey", "l_linenumber", "l_tax")
    got = a.join(b, on=["l_orderkey", "l_linenumber"]).collect()
    assert got.columns == ["l_orderkey", "l_linenumber", "l_quantity", "l_tax"]
    rows_equal(
        got.rows(),
        duck.execute(
            "SELECT l_orderkey, l_linenumber, l_quantity, l_tax FROM lineitem WHERE l_orderkey < 3000"
        ).fetchall(),
    )
    cust = scan(tpch, "customer").select("c_custkey", "c_nationkey").filter(col("c_custkey") < 1000)
    orders = scan(tpch, "orders").select("o_orderkey", "o_custkey")
    got = cust.join(orders, left_on=col("c_custkey") * 2, right_on=col("o_custkey")).collect().rows()
    expected = duck.execute(
        "SELECT c_custkey, c_nationkey, o_orderkey, o_custkey FROM customer JOIN orders "
        "ON c_custkey * 2 = o_custkey WHERE c_custkey < 1000"
    ).fetchall()
    assert len(expected) > 100
    rows_equal(got, expected)


def test_cross_join_matches_duckdb(tpch, duck):
    got = scan(tpch, "nation").select("n_name").join(
        scan(tpch, "region").select("r_name"), how="cross"
    ).collect()
    assert got.columns == ["n_name", "r_name"]
    rows_equal(got.rows(), duck.execute("SELECT n_name, r_name FROM nation CROSS JOIN region").fetchall())


SMALL_A = pa.table({"id": [1, 2, 3, None], "k2": ["a", "b", "c", "d"], "x": ["p", "q", "r", "s"]})
SMALL_B = pa.table({"id": [1, 3, 4, None], "k2": ["a", "z", "d", "d"], "x": ["s", "t", "u", "v"], "y": [1, 2, 3, 4]})


def _sorted(rows):
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


@pytest.mark.parametrize("how", ["inner", "left", "right", "full", "semi", "anti"])
@pytest.mark.parametrize(
    "keys",
    [dict(on="id"), dict(on=["id", "k2"]), dict(left_on="k2", right_on="x"), dict(left_on="id", right_on="y")],
    ids=["on", "on-two", "left_on-right_on", "left_on-right_on-other"],
)
def test_join_columns_and_rows_match_polars(how, keys):
    ours = ooc.from_arrow(SMALL_A).lazy().join(ooc.from_arrow(SMALL_B).lazy(), how=how, **keys).collect()
    theirs = pl.from_arrow(SMALL_A).join(pl.from_arrow(SMALL_B), how=how, **keys)
    assert ours.columns == theirs.columns
    assert _sorted(ours.rows()) == _sorted(theirs.rows())


def test_cross_join_columns_and_rows_match_polars():
    ours = ooc.from_arrow(SMALL_A).lazy().join(ooc.from_arrow(SMALL_B).lazy(), how="cross").collect()
    theirs = pl.from_arrow(SMALL_A).join(pl.from_arrow(SMALL_B), how="cross")
    assert ours.columns == theirs.columns
    assert len(ours.rows()) == 16
    assert _sorted(ours.rows()) == _sorted(theirs.rows())


def test_join_suffix_matches_polars():
    a = pa.table({"id": [1, 2], "x": [1, 2]})
    b = pa.table({"id": [2, 1], "x": [5, 6]})
    ours = ooc.from_arrow(a).lazy().join(ooc.from_arrow(b).lazy(), on="id", suffix="_b").collect()
    theirs = pl.from_arrow(a).join(pl.from_arrow(b), on="id", suffix="_b")
    assert ours.columns == theirs.columns == ["id", "x", "x_b"]
    assert _sorted(ours.rows()) == _sorted(theirs.rows()) == [(1, 1, 6), (2, 2, 5)]


def test_join_suffix_that_collides_again_is_an_error_as_in_polars():
    a = pa.table({"id": [1], "x": [1], "x_right": [2]})
    b = pa.table({"id": [1], "x": [3]})
    with pytest.raises(pl.exceptions.DuplicateError):
        pl.from_arrow(a).join(pl.from_arrow(b), on="id")
    with pytest.raises(ooc.PlanError, match="x_right"):
        ooc.from_arrow(a).lazy().join(ooc.from_arrow(b).lazy(), on="id")


def test_join_null_keys_never_match(nulls_duck):
    a = ooc.from_arrow(pa.table({"k": [1, None, 2], "v": ["a", "b", "c"]})).lazy()
    b = ooc.from_arrow(pa.table({"k": [None, 2, 2], "w": [10, 20, 30]})).lazy()
    assert _sorted(a.join(b, on="k").collect().rows()) == [(2, "c", 20), (2, "c", 30)]
    assert _sorted(a.join(b, on="k", how="anti").collect().rows()) == _sorted([(1, "a"), (None, "b")])
    assert len(a.join(b, on="k", how="full").collect().rows()) == 5


# ---------------------------------------------------------------------------------------------
# sort, head / limit / slice, unique, rename, drop
# ---------------------------------------------------------------------------------------------


def test_sort_descending_list_matches_duckdb(tpch, duck):
    got = (
        scan(tpch, "lineitem")
        .filter(col("l_orderkey") < 20000)
        .select("l_orderkey", "l_linenumber", "l_shipmode", "l_quantity")
        .sort("l_shipmode", "l_quantity", "l_orderkey", "l_linenumber", descending=[True, False, True, False])
        .collect()
        .rows()
    )
    expected = duck.execute(
        "SELECT l_orderkey, l_linenumber, l_shipmode, l_quantity FROM lineitem WHERE l_orderkey < 20000 "
        "ORDER BY l_shipmode DESC, l_quantity, l_orderkey DESC, l_linenumber"
    ).fetchall()
    assert len(expected) > 10000
    assert got == expected


def test_sort_by_expression_and_single_descending(tpch, duck):
    got = (
        scan(tpch, "orders")
        .sort(col("o_totalprice") * -1, "o_orderkey")
        .head(20)
        .select("o_orderkey", "o_totalprice")
        .collect()
        .rows()
    )
    expected = duck.execute(
        "SELECT o_orderkey, o_totalprice FROM orders ORDER BY o_totalprice DESC, o_orderkey LIMIT 20"
    ).fetchall()
    assert got == expected
    got = scan(tpch, "orders").sort("o_orderkey", descending=True).head(3).select("o_orderkey").collect().rows()
    assert got == duck.execute("SELECT o_orderkey FROM orders ORDER BY 1 DESC LIMIT 3").fetchall()


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("nulls_last", [False, True])
def test_sort_nulls_placement_matches_duckdb(nulls, nulls_duck, descending, nulls_last):
    got = nulls.sort("a", descending=descending, nulls_last=nulls_last).select("a").collect().rows()
    order = ("DESC" if descending else "ASC") + (" NULLS LAST" if nulls_last else " NULLS FIRST")
    assert got == nulls_duck.execute(f"SELECT a FROM t ORDER BY a {order}").fetchall()


def test_sort_per_key_nulls_last_list(nulls, nulls_duck):
    got = nulls.sort("k", "a", descending=[False, True], nulls_last=[True, False]).select("k", "a").collect().rows()
    assert got == nulls_duck.execute(
        "SELECT k, a FROM t ORDER BY k ASC NULLS LAST, a DESC NULLS FIRST"
    ).fetchall()


def test_head_limit_slice(tpch, duck):
    base = scan(tpch, "lineitem").sort("l_orderkey", "l_linenumber").select("l_orderkey", "l_linenumber")
    q = "SELECT l_orderkey, l_linenumber FROM lineitem ORDER BY 1, 2"
    assert base.head(7).collect().rows() == duck.execute(q + " LIMIT 7").fetchall()
    assert base.limit(3).collect().rows() == duck.execute(q + " LIMIT 3").fetchall()
    assert base.head().collect().height == 5
    assert base.slice(1000, 5).collect().rows() == duck.execute(q + " LIMIT 5 OFFSET 1000").fetchall()
    assert base.slice(299810).collect().rows() == duck.execute(q + " OFFSET 299810").fetchall()
    assert base.slice(10**9, 5).collect().height == 0
    assert base.head(0).collect().height == 0
    # Without a sort: a number of rows, all real rows of the input.
    li = scan(tpch, "lineitem")
    out = li.limit(100).collect()
    assert out.height == 100 and out.columns == li.columns
    assert li.slice(5, 10**9).collect().height == 299814 - 5


def test_top_k_after_sort_with_ties_matches_duckdb(tpch, duck):
    got = scan(tpch, "lineitem").sort("l_extendedprice", descending=True).head(7).collect()
    expected = duck.execute("SELECT l_extendedprice FROM lineitem ORDER BY 1 DESC LIMIT 7").fetchall()
    assert [(r[5],) for r in got.rows()] == expected


def test_unique_without_and_with_subset(tpch, duck):
    li = scan(tpch, "lineitem")
    got = li.select("l_returnflag", "l_linestatus", "l_shipmode").unique().collect().rows()
    rows_equal(got, duck.execute("SELECT DISTINCT l_returnflag, l_linestatus, l_shipmode FROM lineitem").fetchall())
    sub = li.unique(subset=["l_shipmode", "l_returnflag"]).collect()
    assert sub.columns == li.columns
    assert sub.height == duck.execute("SELECT count(DISTINCT (l_shipmode, l_returnflag)) FROM lineitem").fetchone()[0]
    keys = sorted((r[14], r[8]) for r in sub.rows())
    assert keys == sorted(duck.execute("SELECT DISTINCT l_shipmode, l_returnflag FROM lineitem").fetchall())
    # Each kept row is a real row of the input.
    some = sub.rows()[0]
    assert li.filter(l_orderkey=some[0], l_linenumber=some[3]).collect().rows() == [some]


def test_unique_keep_first_last_with_one_thread(tpch, duck):
    ooc.config(threads=1)
    li = scan(tpch, "lineitem").select("l_orderkey", "l_linenumber")
    first = li.unique(subset="l_orderkey", keep="first").collect().rows()
    last = li.unique(subset="l_orderkey", keep="last").collect().rows()
    rows_equal(first, duck.execute("SELECT l_orderkey, min(l_linenumber) FROM lineitem GROUP BY 1").fetchall())
    rows_equal(last, duck.execute("SELECT l_orderkey, max(l_linenumber) FROM lineitem GROUP BY 1").fetchall())


def test_unique_with_nulls(nulls, nulls_duck):
    got = nulls.select("k").unique().collect().rows()
    assert _sorted(got) == _sorted(nulls_duck.execute("SELECT DISTINCT k FROM t").fetchall())
    assert len(got) == 3


def test_rename_and_drop(tpch, duck):
    li = scan(tpch, "lineitem")
    renamed = li.rename({"l_orderkey": "ok", "l_comment": "c"})
    assert renamed.columns == ["ok"] + li.columns[1:-1] + ["c"]
    got = renamed.filter(col("ok") < 10).select("ok", "c").collect().rows()
    rows_equal(got, duck.execute("SELECT l_orderkey, l_comment FROM lineitem WHERE l_orderkey < 10").fetchall())
    # Swapping two names.
    small = ooc.from_arrow(pa.table({"a": [1], "b": ["x"]})).lazy()
    assert small.rename({"a": "b", "b": "a"}).collect().to_dicts() == [{"b": 1, "a": "x"}]

    dropped = li.drop("l_comment", "l_orderkey")
    assert dropped.columns == [c for c in li.columns if c not in ("l_comment", "l_orderkey")]
    assert li.drop(["l_tax"]).columns == [c for c in li.columns if c != "l_tax"]
    got = dropped.select(col("l_quantity").sum()).collect().rows()
    assert got == duck.execute("SELECT sum(l_quantity) FROM lineitem").fetchall()


def test_rename_onto_an_existing_name_is_rejected():
    """Polars raises DuplicateError here. A frame with two columns named 'id' could not have
    its column selected, and to_dicts() would silently drop one of them."""
    a = ooc.from_arrow(pa.table({"id": [1, 2], "x": [10, 20]})).lazy()
    with pytest.raises(pl.exceptions.DuplicateError):
        pl.from_arrow(pa.table({"id": [1, 2], "x": [10, 20]})).rename({"x": "id"})
    with pytest.raises((ValueError, ooc.OocError)):
        a.rename({"x": "id"}).collect()


# ---------------------------------------------------------------------------------------------
# schema, columns, explain
# ---------------------------------------------------------------------------------------------


def test_schema_and_columns(tpch):
    li = scan(tpch, "lineitem")
    arrow_schema = pq.read_schema(tpch / "lineitem.parquet")
    assert li.columns == arrow_schema.names
    assert li.width == 16
    s = li.schema
    assert s["l_orderkey"] == ooc.Int64 and s["l_linenumber"] == ooc.Int32
    assert s["l_quantity"] == ooc.Decimal(15, 2)
    assert s["l_shipdate"] == ooc.Date and s["l_comment"] == ooc.String
    assert li.collect_schema() == s
    q = li.group_by("l_returnflag").agg(
        n=ooc.len(), avg=col("l_quantity").mean(), flag=(col("l_tax").max() > 0)
    )
    assert q.columns == ["l_returnflag", "n", "avg", "flag"]
    assert q.schema == {"l_returnflag": ooc.String, "n": ooc.Int64, "avg": ooc.Float64, "flag": ooc.Boolean}
    # The schema of the collected frame agrees with the lazy one.
    df = q.collect()
    assert df.schema == q.schema and df.columns == q.columns and df.width == 4
    assert "l_returnflag: String" in repr(q)


def test_explain_names_operators(tpch):
    q = (
        scan(tpch, "lineitem")
        .filter(col("l_quantity") > 10)
        .group_by("l_returnflag")
        .agg(col("l_quantity").sum())
        .sort("l_returnflag")
    )
    plan = q.explain()
    for word in ("Sort", "HashAggregate", "Filter", "ParquetScan", "l_quantity", "l_returnflag"):
        assert word in plan, word
    assert "peak RSS" not in plan
    logical = q.explain(optimized=False)
    assert "TableScan" in logical and "ParquetScan" not in logical


def test_explain_analyze_runs_and_reports(tpch):
    q = (
        scan(tpch, "lineitem")
        .filter(col("l_quantity") > 10)
        .group_by("l_returnflag")
        .agg(col("l_quantity").sum())
        .sort("l_returnflag")
    )
    report = q.explain(analyze=True)
    for word in ("Sort", "HashAggregate", "ParquetScan", "rows_out=", "peak RSS", "wall time"):
        assert word in report, word
    assert "output rows: 3" in report
    assert "rows_out=299814" in report  # the scan read every row


# ---------------------------------------------------------------------------------------------
# Expressions, element-wise, against DuckDB on NULL-laden data
# ---------------------------------------------------------------------------------------------

EXPRESSIONS = [
    ("add", lambda: col("a") + col("b"), "a + b"),
    ("sub", lambda: col("a") - 1, "a - 1"),
    ("rsub", lambda: 10 - col("a"), "10 - a"),
    ("mul", lambda: col("a") * col("i32"), "a * i32"),
    ("truediv", lambda: col("a") / 2, "a / 2"),
    ("div_float", lambda: col("b") / col("a"), "b / a"),
    ("div_by_zero", lambda: col("a") / 0, "a / 0"),
    ("mod", lambda: col("a") % 3, "a % 3"),
    ("neg", lambda: -col("a"), "-a"),
    ("abs", lambda: col("m").abs(), "abs(m)"),
    ("eq", lambda: col("a") == 3, "a = 3"),
    ("ne", lambda: col("a") != 3, "a <> 3"),
    ("lt", lambda: col("a") < 3, "a < 3"),
    ("le", lambda: col("a") <= 3, "a <= 3"),
    ("gt", lambda: col("b") > 1, "b > 1"),
    ("ge", lambda: col("b") >= 1, "b >= 1"),
    ("str_lt", lambda: col("s") < "b", "s < 'b'"),
    ("date_cmp", lambda: col("d") < dt.date(1995, 1, 1), "d < DATE '1995-01-01'"),
    ("and", lambda: col("p") & (col("a") > 0), "p AND a > 0"),
    ("or", lambda: col("p") | (col("a") > 2), "p OR a > 2"),
    ("not", lambda: ~col("p"), "NOT p"),
    ("not_method", lambda: col("p").not_(), "NOT p"),
    ("and_null", lambda: (col("a") > 0) & ooc.lit(None), "a > 0 AND NULL"),
    ("or_null", lambda: (col("a") > 0) | ooc.lit(None), "a > 0 OR NULL"),
    ("is_null", lambda: col("a").is_null(), "a IS NULL"),
    ("is_not_null", lambda: col("s").is_not_null(), "s IS NOT NULL"),
    ("is_in", lambda: col("a").is_in([1, 3, 5]), "a IN (1, 3, 5)"),
    ("is_in_null", lambda: col("a").is_in([1, None]), "a IN (1, NULL)"),
    ("is_in_str", lambda: col("s").is_in(["Apple", "x"]), "s IN ('Apple', 'x')"),
    ("is_in_dec", lambda: col("m").is_in([Decimal("1.1"), Decimal("0.01")]), "m IN (1.1, 0.01)"),
    ("between", lambda: col("a").is_between(0, 3), "a BETWEEN 0 AND 3"),
    ("between_left", lambda: col("a").is_between(0, 3, closed="left"), "a >= 0 AND a < 3"),
    ("between_right", lambda: col("a").is_between(0, 3, closed="right"), "a > 0 AND a <= 3"),
    ("between_none", lambda: col("a").is_between(0, 3, closed="none"), "a > 0 AND a < 3"),
    ("between_dates", lambda: col("d").is_between(dt.date(1990, 1, 1), dt.date(2000, 2, 29)), "d BETWEEN DATE '1990-01-01' AND DATE '2000-02-29'"),
    ("fill_null_int", lambda: col("a").fill_null(0), "coalesce(a, 0)"),
    ("fill_null_expr", lambda: col("b").fill_null(col("a")), "coalesce(b, a)"),
    ("fill_null_str", lambda: col("s").fill_null("zz"), "coalesce(s, 'zz')"),
    ("fill_null_dec", lambda: col("m").fill_null(Decimal("9.99")), "coalesce(m, 9.99)"),
    ("fill_null_bool", lambda: col("p").fill_null(False), "coalesce(p, false)"),
    ("cast_float_int", lambda: col("b").cast(ooc.Int64), "CAST(b AS BIGINT)"),
    ("cast_int_str", lambda: col("a").cast(ooc.String), "CAST(a AS VARCHAR)"),
    ("cast_int_float", lambda: col("a").cast(ooc.Float64), "CAST(a AS DOUBLE)"),
    ("cast_int_int32", lambda: col("a").cast(ooc.Int32), "CAST(a AS INTEGER)"),
    ("cast_int_bool", lambda: col("a").cast(ooc.Boolean), "CAST(a AS BOOLEAN)"),
    ("cast_dec_float", lambda: col("m").cast(ooc.Float64), "CAST(m AS DOUBLE)"),
    ("cast_dec_int", lambda: col("m").cast(ooc.Int64), "CAST(m AS BIGINT)"),
    ("cast_dec_dec", lambda: col("m").cast(ooc.Decimal(10, 1)), "CAST(m AS DECIMAL(10, 1))"),
    ("cast_int_dec", lambda: col("a").cast(ooc.Decimal(10, 3)), "CAST(a AS DECIMAL(10, 3))"),
    ("cast_date_str", lambda: col("d").cast(ooc.String), "CAST(d AS VARCHAR)"),
    ("cast_dec_str", lambda: col("m").cast(ooc.String), "CAST(m AS VARCHAR)"),
    ("cast_str_name", lambda: col("a").cast("float64"), "CAST(a AS DOUBLE)"),
    ("contains_plain", lambda: col("s").str.contains("pp"), "contains(s, 'pp')"),
    ("contains_literal_meta", lambda: col("s").str.contains("e p", literal=True), "contains(s, 'e p')"),
    ("contains_literal_dot", lambda: col("s").str.contains("a.", literal=True), "contains(s, 'a.')"),
    ("contains_regex", lambda: col("s").str.contains("^[Aa]pp"), "regexp_matches(s, '^[Aa]pp')"),
    ("contains_regex2", lambda: col("s").str.contains("an+a$"), "regexp_matches(s, 'an+a$')"),
    ("contains_regex_dot", lambda: col("s").str.contains("a.p"), "regexp_matches(s, 'a.p')"),
    ("contains_unicode", lambda: col("s").str.contains("日"), "contains(s, '日')"),
    ("starts_with", lambda: col("s").str.starts_with("app"), "starts_with(s, 'app')"),
    ("ends_with", lambda: col("s").str.ends_with("e"), "ends_with(s, 'e')"),
    ("to_uppercase", lambda: col("s").str.to_uppercase(), "upper(s)"),
    ("to_lowercase", lambda: col("s").str.to_lowercase(), "lower(s)"),
    ("len_chars", lambda: col("s").str.len_chars(), "length(s)"),
    ("slice", lambda: col("s").str.slice(1, 3), "substring(s, 2, 3)"),
    ("slice_open", lambda: col("s").str.slice(2), "substring(s, 3)"),
    ("slice_past_end", lambda: col("s").str.slice(10, 2), "substring(s, 11, 2)"),
    ("year", lambda: col("d").dt.year(), "year(d)"),
    ("month", lambda: col("d").dt.month(), "month(d)"),
    ("day", lambda: col("d").dt.day(), "day(d)"),
    ("when_chain", lambda: ooc.when(col("a") > 2).then(ooc.lit("big")).when(col("a") > 0).then(ooc.lit("small")).otherwise(ooc.lit("other")),
     "CASE WHEN a > 2 THEN 'big' WHEN a > 0 THEN 'small' ELSE 'other' END"),
    ("when_no_otherwise", lambda: ooc.when(col("a") > 2).then(col("b")), "CASE WHEN a > 2 THEN b END"),
    ("when_bare_string_is_column", lambda: ooc.when(col("p")).then("s").otherwise("k"), "CASE WHEN p THEN s ELSE k END"),
    ("when_decimal", lambda: ooc.when(col("a") > 0).then(col("m")).otherwise(Decimal("0.5")), "CASE WHEN a > 0 THEN m ELSE 0.5 END"),
    ("when_null_condition", lambda: ooc.when(col("p")).then(1).otherwise(0), "CASE WHEN p THEN 1 ELSE 0 END"),
    ("lit_int", lambda: ooc.lit(7) + col("a"), "7 + a"),
    ("lit_float", lambda: ooc.lit(1.5) * col("b"), "1.5::DOUBLE * b"),
    ("lit_str", lambda: ooc.lit("x"), "'x'"),
    ("lit_bool", lambda: ooc.lit(True) & (col("a") > 0), "true AND a > 0"),
    ("lit_date", lambda: ooc.lit(dt.date(2000, 1, 1)), "DATE '2000-01-01'"),
    ("lit_datetime", lambda: ooc.lit(dt.datetime(2000, 1, 1, 1, 2, 3, 456789)), "TIMESTAMP '2000-01-01 01:02:03.456789'"),
    ("lit_decimal", lambda: ooc.lit(Decimal("123.456")), "123.456"),
    ("lit_decimal_neg", lambda: ooc.lit(Decimal("-0.5")), "-0.5"),
    ("lit_decimal_wide", lambda: ooc.lit(Decimal("12345678901234567890.123456789")), "12345678901234567890.123456789"),
    ("lit_with_dtype", lambda: ooc.lit(3, ooc.Float64) / 2, "3::DOUBLE / 2"),
    ("dec_plus_dec", lambda: col("m") + Decimal("0.05"), "m + 0.05"),
    ("dec_times_dec", lambda: col("m") * Decimal("0.001"), "m * 0.001"),
    ("dec_times_dec_col", lambda: col("m") * col("m"), "m * m"),
    ("dec_plus_int", lambda: col("m") + 1, "m + 1"),
    ("dec_cmp", lambda: col("m") > Decimal("1.1"), "m > 1.1"),
    ("round_float", lambda: col("b").round(0), "round(b, 0)"),
    ("round_dec", lambda: col("m").round(1), "round(m, 1)"),
]


@pytest.mark.parametrize("name,make,sql", EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_expression_matches_duckdb(nulls, nulls_duck, name, make, sql):
    got = nulls.select(make().alias("r")).collect().rows()
    expected = nulls_duck.execute(f"SELECT {sql} AS r FROM t").fetchall()
    strict_rows_equal(got, expected)


def test_decimal_literals_stay_exact_on_tpch(tpch, duck):
    got = scan(tpch, "lineitem").select(
        a=(col("l_extendedprice") * Decimal("0.1")).sum(),
        b=(col("l_extendedprice") * (Decimal("1.00") - col("l_discount")) * (1 + col("l_tax"))).sum(),
        c=(col("l_quantity") + Decimal("0.005")).max(),
    ).collect().rows()
    expected = duck.execute(
        "SELECT sum(l_extendedprice * 0.1), sum(l_extendedprice * (1.00 - l_discount) * (1 + l_tax)), "
        "max(l_quantity + 0.005) FROM lineitem"
    ).fetchall()
    assert all(isinstance(v, Decimal) for v in got[0])
    assert got == expected
    assert got[0][2] == Decimal("50.005")


def test_lit_values_and_their_types(nulls):
    out = nulls.head(1).select(
        i=ooc.lit(5), f=ooc.lit(0.25), s=ooc.lit("text"), d=ooc.lit(dt.date(1999, 12, 31)),
        m=ooc.lit(Decimal("-12.345")), b=ooc.lit(False), n=ooc.lit(None),
    ).collect()
    assert out.rows() == [(5, 0.25, "text", dt.date(1999, 12, 31), Decimal("-12.345"), False, None)]
    sch = out.schema
    assert sch["i"] == ooc.Int64 and sch["f"] == ooc.Float64 and sch["s"] == ooc.String
    assert sch["d"] == ooc.Date and sch["b"] == ooc.Boolean
    assert isinstance(sch["m"], ooc.Decimal) and sch["m"].scale == 3
    assert nulls.select(ooc.lit(1)).columns == ["literal"]


def test_expression_output_names():
    assert (col("x") + col("y")).meta_output_name == "x"
    assert (ooc.lit(1) + col("y")).alias("z").meta_output_name == "z"
    assert ooc.len().meta_output_name == "len"
    assert ooc.lit(3).meta_output_name == "literal"


def test_string_functions_on_tpch_match_duckdb(tpch, duck):
    part = scan(tpch, "part")
    got = part.select(
        n_brass=col("p_type").str.contains("BRASS").cast(ooc.Int64).sum(),
        n_regex=col("p_name").str.contains("^(green|red) .*ed$").cast(ooc.Int64).sum(),
        n_prefix=col("p_type").str.starts_with("PROMO").cast(ooc.Int64).sum(),
        n_suffix=col("p_container").str.ends_with("BOX").cast(ooc.Int64).sum(),
        total_len=col("p_comment").str.len_chars().sum(),
    ).collect().rows()
    expected = duck.execute(
        "SELECT sum(contains(p_type, 'BRASS')::BIGINT), "
        "sum(regexp_matches(p_name, '^(green|red) .*ed$')::BIGINT), "
        "sum(starts_with(p_type, 'PROMO')::BIGINT), sum(ends_with(p_container, 'BOX')::BIGINT), "
        "sum(length(p_comment)) FROM part"
    ).fetchall()
    assert got == expected
    assert all(v > 0 for v in got[0])
    got = (
        part.filter(col("p_partkey") < 200)
        .select("p_partkey", col("p_mfgr").str.to_lowercase(), col("p_brand").str.slice(6, 2).alias("b"),
                col("p_container").str.to_uppercase().alias("c"))
        .collect()
        .rows()
    )
    rows_equal(got, duck.execute(
        "SELECT p_partkey, lower(p_mfgr), substring(p_brand, 7, 2), upper(p_container) FROM part WHERE p_partkey < 200"
    ).fetchall())


def test_date_parts_on_tpch_match_duckdb(tpch, duck):
    got = (
        scan(tpch, "orders")
        .group_by(
            col("o_orderdate").dt.year().alias("y"),
            col("o_orderdate").dt.month().alias("m"),
        )
        .agg(n=ooc.len(), days=col("o_orderdate").dt.day().sum())
        .collect()
        .rows()
    )
    expected = duck.execute(
        "SELECT year(o_orderdate), month(o_orderdate), count(*), sum(day(o_orderdate)) FROM orders GROUP BY ALL"
    ).fetchall()
    assert len(expected) > 70
    rows_equal(got, expected)


def test_when_then_on_tpch_matches_duckdb(tpch, duck):
    promo = ooc.when(col("p_type").str.starts_with("PROMO")).then(
        col("l_extendedprice") * (1 - col("l_discount"))
    ).otherwise(Decimal("0"))
    got = (
        scan(tpch, "lineitem")
        .filter(col("l_shipdate").is_between(dt.date(1995, 9, 1), dt.date(1995, 10, 1), closed="left"))
        .join(scan(tpch, "part"), left_on="l_partkey", right_on="p_partkey")
        .select(promo=promo.sum(), total=(col("l_extendedprice") * (1 - col("l_discount"))).sum())
        .collect()
        .rows()
    )
    expected = duck.execute(
        "SELECT sum(CASE WHEN p_type LIKE 'PROMO%' THEN l_extendedprice * (1 - l_discount) ELSE 0 END), "
        "sum(l_extendedprice * (1 - l_discount)) FROM lineitem JOIN part ON l_partkey = p_partkey "
        "WHERE l_shipdate >= DATE '1995-09-01' AND l_shipdate < DATE '1995-10-01'"
    ).fetchall()
    assert got == expected
    assert isinstance(got[0][0], Decimal)


def test_aggregates_over_whole_frame_with_nulls(nulls, nulls_duck):
    got = nulls.select(
        s=col("a").sum(), avg=col("b").mean(), mn=col("d").min(), mx=col("m").max(),
        c=col("s").count(), nu=col("k").n_unique(), n=ooc.len(), smin=col("s").min(),
        msum=col("m").sum(),
    ).collect().rows()
    expected = nulls_duck.execute(
        "SELECT sum(a), avg(b), min(d), max(m), count(s), count(DISTINCT k) + 1, count(*), min(s), sum(m) FROM t"
    ).fetchall()
    strict_rows_equal(got, expected)


def test_expr_bool_and_hash_are_refused():
    with pytest.raises(TypeError):
        bool(col("a") > 1)
    with pytest.raises(TypeError):
        hash(col("a"))


# ---------------------------------------------------------------------------------------------
# Sinks and DataFrame writers
# ---------------------------------------------------------------------------------------------


def _query(tpch):
    return (
        scan(tpch, "lineitem")
        .filter(col("l_orderkey") < 500)
        .select("l_orderkey", "l_linenumber", "l_quantity", "l_shipdate", "l_comment",
                flag=col("l_returnflag") == "R", ratio=col("l_discount").cast(ooc.Float64) / 3)
        .sort("l_orderkey", "l_linenumber")
    )


def test_sink_parquet_roundtrip_and_no_leftovers(tpch, tmp_path, duck):
    q = _query(tpch)
    target = tmp_path / "out.parquet"
    stats = q.sink_parquet(target)
    assert stats["rows"] == 501
    assert os.listdir(tmp_path) == ["out.parquet"]
    table = pq.read_table(target)
    assert table.num_rows == 501
    assert table.schema.field("l_quantity").type == pa.decimal128(15, 2)
    assert table.schema.field("l_shipdate").type == pa.date32()
    assert table.schema.field("flag").type == pa.bool_()
    assert list(zip(*[c.to_pylist() for c in table.columns])) == q.collect().rows()
    # DuckDB reads the file and agrees with the source.
    assert duck.execute(f"SELECT sum(l_quantity), count(*) FROM read_parquet('{target}')").fetchall() == duck.execute(
        "SELECT sum(l_quantity), count(*) FROM lineitem WHERE l_orderkey < 500"
    ).fetchall()
    # Writing again replaces the file atomically.
    q.head(3).sink_parquet(target)
    assert pq.read_table(target).num_rows == 3
    assert os.listdir(tmp_path) == ["out.parquet"]


def test_sink_parquet_bloom_filters_rule_out_row_groups(tpch, tmp_path, duck):
    q = _query(tpch)
    target = tmp_path / "bloom.parquet"
    q.sink_parquet(target, bloom_filter_columns=["l_orderkey", "l_comment"])
    # Other readers read the file as before.
    assert pq.read_table(target).num_rows == 501
    lf = ooc.scan_parquet(target)
    present = duck.execute(f"SELECT l_orderkey FROM read_parquet('{target}') LIMIT 1").fetchone()[0]
    # A value between the row group's min and max that is not in the file.
    keys = {r[0] for r in duck.execute(f"SELECT DISTINCT l_orderkey FROM read_parquet('{target}')").fetchall()}
    lo, hi = min(keys), max(keys)
    absent = next(v for v in range(lo + 1, hi) if v not in keys)
    assert "bloom_pruned=1" in lf.filter(col("l_orderkey") == absent).explain()
    assert lf.filter(col("l_orderkey") == absent).collect().shape[0] == 0
    plan = lf.filter(col("l_orderkey") == present).explain()
    assert "bloom_pruned" not in plan
    assert lf.filter(col("l_orderkey") == present).collect().shape[0] == duck.execute(
        f"SELECT count(*) FROM read_parquet('{target}') WHERE l_orderkey = {present}"
    ).fetchone()[0]
    with pytest.raises(ooc.OocError, match="'nope'.*l_orderkey, l_linenumber"):
        q.sink_parquet(tmp_path / "x.parquet", bloom_filter_columns=["nope"])
    assert not (tmp_path / "x.parquet").exists()
    with pytest.raises(TypeError, match="list of column names"):
        q.sink_parquet(tmp_path / "x.parquet", bloom_filter_columns="l_orderkey")


def test_sink_csv_roundtrip_and_no_leftovers(tpch, tmp_path):
    q = _query(tpch)
    target = tmp_path / "out.csv"
    q.sink_csv(target)
    assert os.listdir(tmp_path) == ["out.csv"]
    with open(target, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        body = list(reader)
    assert header == q.columns
    expected = q.collect().rows()
    assert len(body) == len(expected) == 501
    for line, row in zip(body, expected):
        assert line[0] == str(row[0]) and line[1] == str(row[1])
        assert Decimal(line[2]) == row[2]
        assert line[3] == row[3].isoformat()
        assert line[4] == row[4]  # comments with commas are quoted and read back intact
        assert line[5] == ("true" if row[5] else "false")
        assert math.isclose(float(line[6]), row[6], rel_tol=1e-12)


def test_sink_csv_nulls_and_quoting(tmp_path):
    df = ooc.from_arrow(pa.table({"a": [1, None], "s": ['x,"y"', None], "f": [1.5, None]}))
    df.write_csv(tmp_path / "n.csv")
    with open(tmp_path / "n.csv", newline="") as f:
        assert list(csv.reader(f)) == [["a", "s", "f"], ["1", 'x,"y"', "1.5"], ["", "", ""]]
    assert os.listdir(tmp_path) == ["n.csv"]


def test_dataframe_write_parquet(tmp_path, nulls):
    df = nulls.collect()
    df.write_parquet(tmp_path / "w.parquet")
    assert os.listdir(tmp_path) == ["w.parquet"]
    back = pq.read_table(tmp_path / "w.parquet")
    assert back.num_rows == 6
    assert back.to_pylist() == NULLS.to_pylist()
    assert back.schema.field("m").type == pa.decimal128(15, 2)
    # And ooc reads its own file back.
    assert ooc.scan_parquet(tmp_path / "w.parquet").collect().rows() == df.rows()


def test_sink_ndjson(tmp_path, nulls):
    import json

    nulls.select("a", "s", "p").sink_ndjson(tmp_path / "o.ndjson")
    lines = (tmp_path / "o.ndjson").read_text().splitlines()
    got = [json.loads(line) for line in lines]
    expected = NULLS.select(["a", "s", "p"]).to_pylist()
    assert [{k: r.get(k) for k in ("a", "s", "p")} for r in got] == expected


# ---------------------------------------------------------------------------------------------
# DataFrame basics
# ---------------------------------------------------------------------------------------------


def test_dataframe_properties(tpch, duck):
    df = scan(tpch, "nation").collect()
    assert df.shape == (25, 4) and df.height == 25 and len(df) == 25 and df.width == 4
    assert df.columns == ["n_nationkey", "n_name", "n_regionkey", "n_comment"]
    assert df.nbytes > 0
    assert df.stats["rows"] == 25 and "report" in df.stats and df.stats["bytes_read"] > 0
    assert ooc.from_arrow(pa.table({"a": [1]})).stats is None
    assert df.to_dicts()[0] == dict(zip(df.columns, duck.execute("SELECT * FROM nation ORDER BY n_nationkey LIMIT 1").fetchone()))
    assert "shape: (25, 4)" in repr(df)
    rows_equal(df.lazy().filter(col("n_regionkey") == 1).collect().rows(),
               duck.execute("SELECT * FROM nation WHERE n_regionkey = 1").fetchall())


def test_scan_parquet_hive_partitioning(tmp_path):
    for year, values in ((2024, [1, 2]), (2025, [3])):
        folder = tmp_path / f"year={year}"
        folder.mkdir()
        pq.write_table(pa.table({"v": values}), folder / "part.parquet")
    with_folders = ooc.scan_parquet(tmp_path).sort("v").collect()
    assert with_folders.columns == ["v", "year"]
    assert with_folders.rows() == [(1, 2024), (2, 2024), (3, 2025)]
    plain = ooc.scan_parquet(tmp_path, hive_partitioning=False).sort("v").collect()
    assert plain.columns == ["v"]
    assert plain.rows() == [(1,), (2,), (3,)]
    theirs = pl.scan_parquet(tmp_path / "**" / "*.parquet", hive_partitioning=False).collect()
    assert theirs.columns == plain.columns
