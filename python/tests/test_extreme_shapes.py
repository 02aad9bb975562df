"""Shapes at the edge: expressions nested past the limit are a clear error (not a crashed
interpreter), and long IN lists are looked up in a set (answers equal DuckDB's)."""

import functools
import operator

import pytest

import ooc
from ooc import col


def test_expressions_nested_too_deeply_raise_instead_of_crashing(tpch):
    lf = ooc.scan_parquet(tpch / "nation.parquet")
    e = col("n_nationkey")
    for _ in range(998):
        e = e + 1
    # 999 levels plan and run.
    assert lf.select(e.alias("x")).collect().to_dicts()[0]["x"] == 998
    with pytest.raises(ValueError, match="nested more than 1000 levels"):
        for _ in range(30_000):
            e = e + 1
    # The same from SQL.
    chain = " + ".join(["1"] * 5000)
    with pytest.raises(ooc.OocError, match="nested more than 1000 levels"):
        ooc.sql(f"SELECT {chain} AS s").collect()


def test_long_in_lists_answer_like_duckdb(tpch, duck):
    keys = list(range(1, 60_000, 7))
    lf = ooc.scan_parquet(tpch / "lineitem.parquet")
    got = lf.filter(col("l_partkey").is_in(keys)).select(ooc.len()).collect().to_dicts()[0]["len"]
    in_list = ", ".join(map(str, keys))
    assert got == duck.execute(f"SELECT count(*) FROM lineitem WHERE l_partkey IN ({in_list})").fetchone()[0]
    q = f"SELECT count(*) AS n FROM '{tpch / 'lineitem.parquet'}' WHERE l_partkey NOT IN ({in_list}, NULL)"
    assert ooc.sql(q).collect().to_dicts()[0]["n"] == 0
    q = f"SELECT count(*) AS n FROM '{tpch / 'lineitem.parquet'}' WHERE l_partkey NOT IN ({in_list})"
    assert ooc.sql(q).collect().to_dicts()[0]["n"] == duck.execute(
        f"SELECT count(*) FROM lineitem WHERE l_partkey NOT IN ({in_list})"
    ).fetchone()[0]
    # An OR of 500 equalities (as generated SQL writes them) gives the same rows.
    ors = functools.reduce(operator.or_, [col("l_partkey") == k for k in keys[:500]])
    assert lf.filter(ors).select(ooc.len()).collect().to_dicts()[0]["len"] == duck.execute(
        f"SELECT count(*) FROM lineitem WHERE l_partkey IN ({', '.join(map(str, keys[:500]))})"
    ).fetchone()[0]
