"""Arrow PyCapsule round trips: ooc frames into pyarrow, Polars, pandas and DuckDB, Arrow data
from all of those into ooc, batch streaming, zero-copy sharing of buffers, and the types that
must survive the trip (Decimal128(15, 2), Date32, strings / string views, int64, float64,
booleans, NULLs)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ooc
from ooc import col
from conftest import rows_equal

TYPED = pa.table(
    {
        "i": pa.array([1, None, 3, -(2**62)], pa.int64()),
        "f": pa.array([1.5, None, float("nan"), -0.0], pa.float64()),
        "s": pa.array(["a", None, "ünï", ""], pa.string()),
        "b": pa.array([True, None, False, True], pa.bool_()),
        "d": pa.array([dt.date(2000, 1, 1), None, dt.date(1970, 1, 2), dt.date(1900, 3, 1)], pa.date32()),
        "m": pa.array([Decimal("1.25"), None, Decimal("-0.01"), Decimal("9999999999999.99")], pa.decimal128(15, 2)),
    }
)


def scan(tpch, table):
    return ooc.scan_parquet(tpch / f"{table}.parquet")


@pytest.fixture
def lineitem_df(tpch):
    """A collected frame straight from Parquet, with computed float and boolean columns."""
    return (
        scan(tpch, "lineitem")
        .filter(col("l_orderkey") < 3000)
        .select(
            "l_orderkey", "l_quantity", "l_shipdate", "l_comment", "l_returnflag",
            disc=col("l_discount").cast(ooc.Float64),
            returned=col("l_returnflag") == "R",
            maybe=ooc.when(col("l_linenumber") > 3).then(col("l_suppkey")),
        )
        .sort("l_orderkey", "l_comment")
        .collect()
    )


LINEITEM_SQL = (
    "SELECT l_orderkey, l_quantity, l_shipdate, l_comment, l_returnflag, "
    "l_discount::DOUBLE, l_returnflag = 'R', CASE WHEN l_linenumber > 3 THEN l_suppkey END "
    "FROM lineitem WHERE l_orderkey < 3000 ORDER BY l_orderkey, l_comment"
)


def addresses(table: pa.Table):
    """(column, chunk, buffer index) -> buffer address, for every non-empty buffer."""
    out = {}
    for name in table.column_names:
        for ci, chunk in enumerate(table.column(name).chunks):
            for bi, buf in enumerate(chunk.buffers()):
                if buf is not None and buf.size > 0:
                    out[(name, ci, bi)] = buf.address
    return out


def values_equal(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_same_values(got_rows, expected_rows):
    assert len(got_rows) == len(expected_rows)
    for ra, rb in zip(got_rows, expected_rows):
        assert len(ra) == len(rb)
        assert all(values_equal(x, y) for x, y in zip(ra, rb)), (ra, rb)


def table_rows(table: pa.Table):
    return list(zip(*[c.to_pylist() for c in table.columns]))


# ---------------------------------------------------------------------------------------------
# ooc -> other libraries
# ---------------------------------------------------------------------------------------------


def test_pyarrow_table_from_dataframe(lineitem_df, duck):
    t = pa.table(lineitem_df)
    assert t.num_rows == lineitem_df.height > 1000
    assert t.schema.types == [
        pa.int64(), pa.decimal128(15, 2), pa.date32(), pa.string_view(), pa.string_view(),
        pa.float64(), pa.bool_(), pa.int64(),
    ]
    assert t.column_names == lineitem_df.columns
    assert t.column("maybe").null_count > 0
    expected = duck.execute(LINEITEM_SQL).fetchall()
    assert_same_values(table_rows(t), expected)
    assert lineitem_df.to_arrow().equals(t)


def test_polars_from_dataframe(lineitem_df, tpch):
    expected = (
        pl.read_parquet(tpch / "lineitem.parquet")
        .filter(pl.col("l_orderkey") < 3000)
        .select(
            "l_orderkey", "l_quantity", "l_shipdate", "l_comment", "l_returnflag",
            disc=pl.col("l_discount").cast(pl.Float64),
            returned=pl.col("l_returnflag") == "R",
            maybe=pl.when(pl.col("l_linenumber") > 3).then(pl.col("l_suppkey")),
        )
        .sort("l_orderkey", "l_comment")
    )
    for frame in (lineitem_df.to_polars(), pl.DataFrame(lineitem_df)):
        assert isinstance(frame, pl.DataFrame)
        assert frame.schema == expected.schema
        assert frame.equals(expected)
    # polars.from_arrow on an object with __arrow_c_stream__ (as for any such producer)
    # builds a struct Series, one field per column.
    series = pl.from_arrow(lineitem_df)
    frame = series.struct.unnest() if isinstance(series, pl.Series) else series
    assert frame.equals(expected)


def test_pandas_from_dataframe(lineitem_df, duck):
    pdf = lineitem_df.to_pandas()
    assert isinstance(pdf, pd.DataFrame)
    assert list(pdf.columns) == lineitem_df.columns
    assert len(pdf) == lineitem_df.height
    expected = duck.execute(LINEITEM_SQL).fetchall()
    first = pdf.iloc[0]
    assert first["l_orderkey"] == expected[0][0]
    assert first["l_quantity"] == expected[0][1] and isinstance(first["l_quantity"], Decimal)
    assert first["l_shipdate"] == expected[0][2]
    assert first["l_comment"] == expected[0][3]
    assert pdf["returned"].dtype == bool
    assert pdf["disc"].sum() == pytest.approx(sum(r[5] for r in expected))
    assert int(pdf["maybe"].isna().sum()) == sum(r[7] is None for r in expected)
    # Arrow-backed pandas keeps the Arrow types (and NULLs).
    arrow_backed = lineitem_df.to_pandas(types_mapper=pd.ArrowDtype)
    assert arrow_backed["maybe"].dtype == pd.ArrowDtype(pa.int64())
    assert arrow_backed["l_quantity"].dtype == pd.ArrowDtype(pa.decimal128(15, 2))


def test_duckdb_reads_dataframe(lineitem_df, duck):
    con = duckdb.connect()
    ooc_frame = lineitem_df  # found by DuckDB's replacement scan under this name
    got = con.sql(
        "SELECT l_returnflag, count(*), sum(l_quantity), count(maybe), min(l_shipdate) "
        "FROM ooc_frame GROUP BY 1"
    ).fetchall()
    expected = duck.execute(
        "SELECT l_returnflag, count(*), sum(l_quantity), count(CASE WHEN l_linenumber > 3 THEN 1 END), "
        "min(l_shipdate) FROM lineitem WHERE l_orderkey < 3000 GROUP BY 1"
    ).fetchall()
    rows_equal(got, expected)
    assert isinstance(got[0][2], Decimal)
    # duckdb.from_arrow over the pyarrow table, and over the ooc frame itself.
    assert duckdb.from_arrow(lineitem_df.to_arrow()).fetchall() == duck.execute(LINEITEM_SQL).fetchall()
    assert con.from_arrow(lineitem_df).aggregate("count(*)").fetchall() == [(lineitem_df.height,)]


# ---------------------------------------------------------------------------------------------
# other libraries -> ooc
# ---------------------------------------------------------------------------------------------


def check_typed(df: ooc.DataFrame):
    assert df.schema == {
        "i": ooc.Int64, "f": ooc.Float64, "s": ooc.String, "b": ooc.Boolean,
        "d": ooc.Date, "m": ooc.Decimal(15, 2),
    }
    assert_same_values(df.rows(), table_rows(TYPED))
    # And the values compute: the engine sees the NULLs as NULLs.
    counts = df.lazy().select(*[col(c).count() for c in TYPED.column_names], n=ooc.len()).collect().rows()
    assert counts == [(3, 3, 3, 3, 3, 3, 4)]


def test_from_arrow_pyarrow_table_and_record_batch():
    check_typed(ooc.from_arrow(TYPED))
    batch = TYPED.to_batches()[0]
    assert isinstance(batch, pa.RecordBatch)
    check_typed(ooc.from_arrow(batch))
    # A table of several chunks.
    chunked = pa.concat_tables([TYPED.slice(0, 2), TYPED.slice(2)])
    assert chunked.column("i").num_chunks == 2
    check_typed(ooc.from_arrow(chunked))
    # A RecordBatchReader.
    check_typed(ooc.from_arrow(pa.RecordBatchReader.from_batches(TYPED.schema, TYPED.to_batches())))


def test_from_arrow_polars():
    frame = pl.from_arrow(TYPED)
    df = ooc.from_arrow(frame)
    assert df.schema == {
        "i": ooc.Int64, "f": ooc.Float64, "s": ooc.String, "b": ooc.Boolean,
        "d": ooc.Date, "m": ooc.Decimal(15, 2),
    }
    assert_same_values(df.rows(), table_rows(TYPED))
    assert df.lazy().select(col("m").sum(), col("i").count()).collect().rows() == [
        (Decimal("9999999999999.99") + Decimal("1.24"), 3)
    ]


def test_from_arrow_pandas():
    frame = pd.DataFrame(
        {
            "i": pd.array([1, None, 3], dtype="Int64"),
            "f": [1.5, None, 2.0],
            "s": ["a", None, "c"],
            "b": pd.array([True, None, False], dtype="boolean"),
        }
    )
    df = ooc.from_arrow(frame)
    assert df.schema == {"i": ooc.Int64, "f": ooc.Float64, "s": ooc.String, "b": ooc.Boolean}
    assert df.rows() == [(1, 1.5, "a", True), (None, None, None, None), (3, 2.0, "c", False)]
    # pandas through SQL.
    assert ooc.sql("SELECT sum(i) AS s, count(s) AS c FROM t", t=frame).collect().rows() == [(4, 2)]


def test_from_arrow_pandas_leaves_the_index_out():
    """A pandas DataFrame is converted with ``pa.Table.from_pandas(data, preserve_index=False)``
    even though pandas frames implement ``__arrow_c_stream__`` themselves (that stream would
    carry a non-default index as an extra ``__index_level_0__`` column)."""
    indexed = pd.DataFrame({"v": [1, 2]}, index=[10, 20])
    assert ooc.from_arrow(indexed).columns == ["v"]
    assert ooc.from_arrow(indexed).rows() == [(1,), (2,)]


def test_from_arrow_dict():
    df = ooc.from_arrow({"a": [1, None, 3], "s": ["x", "y", None], "d": [dt.date(2020, 1, 1), None, None]})
    assert df.schema == {"a": ooc.Int64, "s": ooc.String, "d": ooc.Date}
    assert df.rows() == [(1, "x", dt.date(2020, 1, 1)), (None, "y", None), (3, None, None)]


def test_from_arrow_duckdb_results(duck):
    query = (
        "SELECT o_orderkey, o_totalprice, o_orderdate, o_orderstatus, "
        "CASE WHEN o_orderkey % 3 = 0 THEN NULL ELSE o_shippriority END AS sp "
        "FROM orders WHERE o_orderkey < 1000 ORDER BY o_orderkey"
    )
    expected = duck.execute(query).fetchall()
    # Made one at a time: a pending DuckDB result is invalidated by the next query on the
    # same connection.
    sources = [
        lambda: duck.sql(query),
        lambda: duck.sql(query).fetch_arrow_table(),
        lambda: duck.sql(query).arrow(),
    ]
    for source in sources:
        df = ooc.from_arrow(source())
        assert df.columns == ["o_orderkey", "o_totalprice", "o_orderdate", "o_orderstatus", "sp"]
        assert df.schema["o_totalprice"] == ooc.Decimal(15, 2) and df.schema["o_orderdate"] == ooc.Date
        assert_same_values(df.rows(), expected)
    nulls = ooc.from_arrow(duck.sql("SELECT NULL::BIGINT AS a, NULL::VARCHAR AS s, NULL::DECIMAL(15,2) AS m"))
    assert nulls.rows() == [(None, None, None)]
    assert nulls.schema == {"a": ooc.Int64, "s": ooc.String, "m": ooc.Decimal(15, 2)}


def test_from_arrow_ooc_dataframe(lineitem_df, duck):
    again = ooc.from_arrow(lineitem_df)
    assert again.schema == lineitem_df.schema
    assert again.rows() == lineitem_df.rows()
    assert_same_values(again.rows(), duck.execute(LINEITEM_SQL).fetchall())
    # And a lazy query over it.
    got = again.lazy().group_by("l_returnflag").agg(col("l_quantity").sum()).collect().rows()
    rows_equal(got, duck.execute(
        "SELECT l_returnflag, sum(l_quantity) FROM lineitem WHERE l_orderkey < 3000 GROUP BY 1"
    ).fetchall())


def test_empty_and_zero_row_frames():
    empty = ooc.from_arrow(pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())}))
    assert empty.shape == (0, 2)
    t = pa.table(empty)
    assert t.num_rows == 0 and t.schema.types == [pa.int64(), pa.string()]
    assert empty.lazy().select(col("a").sum(), n=ooc.len()).collect().rows() == [(None, 0)]
    assert pl.DataFrame(empty).shape == (0, 2)


# ---------------------------------------------------------------------------------------------
# iter_batches
# ---------------------------------------------------------------------------------------------


def test_iter_batches_concatenate_to_collect(tpch):
    q = scan(tpch, "lineitem").filter(col("l_quantity") > 45).select(
        "l_orderkey", "l_linenumber", "l_quantity", "l_comment"
    ).sort("l_orderkey", "l_linenumber")
    batches = list(q.iter_batches())
    assert len(batches) > 1
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    collected = q.collect()
    assert sum(b.num_rows for b in batches) == collected.height > 10000
    streamed = pa.Table.from_batches(batches)
    assert streamed.equals(collected.to_arrow())


def test_iter_batches_unsorted_same_rows(tpch, duck):
    q = scan(tpch, "orders").filter(col("o_orderstatus") == "P").select("o_orderkey", "o_totalprice")
    batches = list(q.iter_batches())
    rows = [r for b in batches for r in zip(*[c.to_pylist() for c in b.columns])]
    rows_equal(rows, duck.execute("SELECT o_orderkey, o_totalprice FROM orders WHERE o_orderstatus = 'P'").fetchall())
    assert batches[0].schema.field("o_totalprice").type == pa.decimal128(15, 2)


def test_iter_batches_stop_early(tpch):
    it = scan(tpch, "lineitem").iter_batches()
    first = next(it)
    assert first.num_rows > 0 and first.num_columns == 16
    it.close()
    # The engine is still usable afterwards.
    assert scan(tpch, "nation").select(ooc.len()).collect().rows() == [(25,)]
    for i, _ in enumerate(scan(tpch, "lineitem").iter_batches()):
        if i == 2:
            break
    assert scan(tpch, "region").select(ooc.len()).collect().rows() == [(5,)]


# ---------------------------------------------------------------------------------------------
# Zero copy
# ---------------------------------------------------------------------------------------------


def test_exports_share_buffers(lineitem_df):
    first = addresses(pa.table(lineitem_df))
    second = addresses(pa.table(lineitem_df))
    via_to_arrow = addresses(lineitem_df.to_arrow())
    assert len(first) >= 8
    # Every column's values buffer (including the string view data buffers) is shared.
    for name in lineitem_df.columns:
        assert (name, 0, 1) in first
    assert first == second == via_to_arrow


def test_from_arrow_then_export_keeps_original_buffers():
    original = addresses(TYPED)
    df = ooc.from_arrow(TYPED)
    exported = pa.table(df)
    assert addresses(exported) == original
    assert exported.column("i").chunk(0).buffers()[1].address == TYPED.column("i").chunk(0).buffers()[1].address
    # Through a lazy frame with no computation as well.
    assert addresses(df.lazy().collect().to_arrow()) == original
    # Polars' string_view export, through ooc, back out unchanged.
    p = pl.from_arrow(TYPED)
    via_ooc = pa.table(ooc.from_arrow(p))
    direct = pa.table(ooc.from_arrow(p))
    assert addresses(via_ooc) == addresses(direct)


# ---------------------------------------------------------------------------------------------
# Types and NULLs through full round trips
# ---------------------------------------------------------------------------------------------


def test_types_and_nulls_survive_every_round_trip(tmp_path):
    df = ooc.from_arrow(TYPED)
    expected = table_rows(TYPED)
    # ooc -> pyarrow -> ooc
    assert_same_values(ooc.from_arrow(pa.table(df)).rows(), expected)
    # ooc -> polars -> ooc
    assert_same_values(ooc.from_arrow(df.to_polars()).rows(), expected)
    # ooc -> duckdb -> ooc
    con = duckdb.connect()
    back = ooc.from_arrow(con.from_arrow(df.to_arrow()).arrow())
    assert back.schema == df.schema
    assert_same_values(back.rows(), expected)
    # ooc -> parquet -> ooc
    df.write_parquet(tmp_path / "t.parquet")
    assert_same_values(ooc.scan_parquet(tmp_path / "t.parquet").collect().rows(), expected)
    assert pq.read_schema(tmp_path / "t.parquet").field("m").type == pa.decimal128(15, 2)
    # ooc -> pandas (object decimals, NaT for NULL dates)
    pdf = df.to_pandas()
    assert pdf["m"].iloc[0] == Decimal("1.25") and pd.isna(pdf["m"].iloc[1])
    assert pdf["d"].iloc[1] is None or pd.isna(pdf["d"].iloc[1])


def test_parquet_string_views_and_decimals_into_duckdb_and_back(tpch, duck):
    df = scan(tpch, "customer").filter(col("c_acctbal") < 0).select("c_custkey", "c_name", "c_acctbal").collect()
    assert pa.table(df).schema.field("c_name").type == pa.string_view()
    con = duckdb.connect()
    cust = df
    got = con.sql("SELECT count(*), sum(c_acctbal), max(c_name) FROM cust").fetchall()
    expected = duck.execute("SELECT count(*), sum(c_acctbal), max(c_name) FROM customer WHERE c_acctbal < 0").fetchall()
    assert got == expected
    assert isinstance(got[0][1], Decimal)
    back = ooc.from_arrow(con.sql("SELECT * FROM cust ORDER BY c_custkey"))
    assert back.rows() == sorted(df.rows())


def test_polars_null_typed_column_is_accepted():
    """Polars exports its Null dtype with a buffer the C data interface does not allow for
    that type; from_arrow still takes the frame (through pyarrow), values intact."""
    import polars as pl

    df = pl.DataFrame({"a": [1, 2], "n": [None, None]})
    assert df.schema["n"] == pl.Null
    out = ooc.from_arrow(df).lazy().select("a", ooc.col("n").is_null().alias("missing")).collect()
    assert out.rows() == [(1, True), (2, True)]
