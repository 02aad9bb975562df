"""Batches for models: ``iter_batches(batch_size, to=, columns=, dtype=, shuffle=, seed=,
drop_last=)`` and ``iter_xy``, checked against DuckDB's values over the TPC-H fixture
(lineitem: 300k rows in 15 row groups, read by several threads)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import ooc
from ooc import col

NUMERIC = ["l_orderkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_discount"]


def lineitem(tpch):
    return ooc.scan_parquet(str(tpch / "lineitem.parquet"))


def duck_matrix(duck, columns, where="", dtype="float32"):
    """DuckDB's values, in the file's order, as a matrix of ``dtype``."""
    cols = ", ".join(f"CAST({c} AS DOUBLE)" for c in columns)
    rows = duck.execute(f"SELECT {cols} FROM lineitem {where}").fetchnumpy()
    return np.column_stack([rows[k] for k in rows]).astype(dtype)


@pytest.fixture
def threads4():
    ooc.config(threads=4)


def test_every_batch_has_the_exact_size_and_rows_keep_the_files_order(tpch, duck, threads4):
    batches = list(lineitem(tpch).iter_batches(7000, columns=["l_orderkey", "l_linenumber"]))
    sizes = [b.num_rows for b in batches]
    total = duck.execute("SELECT count(*) FROM lineitem").fetchone()[0]
    assert sizes[:-1] == [7000] * (len(sizes) - 1) and 0 < sizes[-1] <= 7000
    assert sum(sizes) == total
    got = pa.Table.from_batches(batches)
    want = duck.execute("SELECT l_orderkey, l_linenumber FROM lineitem").fetch_arrow_table()
    assert got.column("l_orderkey").to_pylist() == want.column("l_orderkey").to_pylist()
    assert got.column("l_linenumber").to_pylist() == want.column("l_linenumber").to_pylist()
    dropped = list(lineitem(tpch).iter_batches(7000, columns=["l_orderkey"], drop_last=True))
    assert [b.num_rows for b in dropped] == [7000] * (total // 7000)


def test_a_filtered_query_keeps_order_and_sizes(tpch, duck, threads4):
    q = lineitem(tpch).filter(col("l_quantity") > 45)
    batches = list(q.iter_batches(1000, columns=["l_orderkey", "l_quantity"]))
    assert all(b.num_rows == 1000 for b in batches[:-1])
    want = duck.execute("SELECT l_orderkey FROM lineitem WHERE l_quantity > 45").fetchall()
    assert pa.Table.from_batches(batches).column("l_orderkey").to_pylist() == [r[0] for r in want]


def test_dtype_gives_one_c_contiguous_matrix_equal_to_duckdb(tpch, duck, threads4):
    mats = list(lineitem(tpch).iter_batches(50_000, to="numpy", columns=NUMERIC, dtype="float32"))
    assert all(m.shape == (50_000, 5) for m in mats[:-1])
    for m in mats:
        assert m.dtype == np.float32 and m.flags["C_CONTIGUOUS"] and m.flags["WRITEABLE"]
        assert m.flags["OWNDATA"] or m.base is not None
    np.testing.assert_array_equal(np.concatenate(mats), duck_matrix(duck, NUMERIC))
    ints = next(lineitem(tpch).iter_batches(10, to="numpy", columns=["l_shipdate"], dtype="int32"))
    days = duck.execute(
        "SELECT CAST(l_shipdate - DATE '1970-01-01' AS INTEGER) FROM lineitem LIMIT 10"
    ).fetchall()
    assert ints[:, 0].tolist() == [d[0] for d in days]


def test_numpy_without_dtype_is_a_dict_of_columns(tpch, duck):
    batch = next(lineitem(tpch).iter_batches(100, to="numpy", columns=["l_orderkey", "l_comment"]))
    assert list(batch) == ["l_orderkey", "l_comment"]
    want = duck.execute("SELECT l_orderkey, l_comment FROM lineitem LIMIT 100").fetchnumpy()
    assert batch["l_orderkey"].dtype == np.int64
    np.testing.assert_array_equal(batch["l_orderkey"], want["l_orderkey"])
    assert list(batch["l_comment"]) == list(want["l_comment"])


def test_pandas_polars_and_arrow_outputs_hold_the_same_rows(tpch):
    lf = lineitem(tpch)
    arrow = next(lf.iter_batches(500, columns=["l_orderkey", "l_returnflag"]))
    pandas = next(lf.iter_batches(500, to="pandas", columns=["l_orderkey", "l_returnflag"]))
    polars = next(lf.iter_batches(500, to="polars", columns=["l_orderkey", "l_returnflag"]))
    assert isinstance(arrow, pa.RecordBatch) and arrow.num_rows == 500
    assert isinstance(pandas, pd.DataFrame) and isinstance(polars, pl.DataFrame)
    assert pandas["l_orderkey"].tolist() == arrow.column(0).to_pylist()
    assert polars["l_returnflag"].to_list() == arrow.column(1).to_pylist()
    cast = next(lf.iter_batches(500, columns=["l_quantity", "l_linenumber"], dtype="float64"))
    plain = next(lf.iter_batches(500, columns=["l_quantity", "l_linenumber"]))
    assert cast.schema.types == [pa.float64(), pa.float64()]
    for i in range(2):
        assert cast.column(i).to_pylist() == [float(v) for v in plain.column(i).to_pylist()]


def test_shuffle_keeps_the_rows_and_repeats_with_its_seed(tpch, duck, threads4):
    lf = lineitem(tpch)

    def run(seed):
        return list(lf.iter_batches(4096, to="numpy", columns=NUMERIC, dtype="float64",
                                    shuffle=True, seed=seed, shuffle_window=4))

    a, b, c = run(11), run(11), run(12)
    assert all(m.shape[0] == 4096 for m in a[:-1])
    x, y, z = np.concatenate(a), np.concatenate(b), np.concatenate(c)
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x, z)
    ordered = duck_matrix(duck, NUMERIC, dtype="float64")
    assert not np.array_equal(x, ordered)
    # The multiset of rows is unchanged: column sums, and the rows themselves once sorted.
    np.testing.assert_allclose(x.sum(axis=0), ordered.sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(np.unique(x, axis=0), np.unique(ordered, axis=0))
    assert x.shape == ordered.shape
    # Rows move across the whole file, not only within a window: the first batch holds rows
    # from far apart.
    keys = a[0][:, 0]
    assert keys.max() - keys.min() > 0.3 * ordered[:, 0].max()


def test_shuffled_arrow_batches_and_drop_last(tpch, threads4):
    lf = lineitem(tpch)
    sizes = [b.num_rows for b in lf.iter_batches(7000, columns=["l_orderkey"], shuffle=True,
                                                  seed=3, drop_last=True)]
    assert set(sizes) == {7000} and len(sizes) == lf.select(ooc.len()).collect().rows()[0][0] // 7000


def test_iter_xy_yields_features_and_target(tpch, duck, threads4):
    lf = lineitem(tpch)
    features = ["l_quantity", "l_extendedprice", "l_discount"]
    pairs = list(lf.iter_xy(features, "l_linenumber", batch_size=30_000))
    assert all(x.shape == (30_000, 3) and y.shape == (30_000,) for x, y in pairs[:-1])
    assert pairs[0][0].dtype == np.float32 and pairs[0][1].dtype == np.int32
    np.testing.assert_array_equal(np.concatenate([x for x, _ in pairs]), duck_matrix(duck, features))
    want_y = duck.execute("SELECT l_linenumber FROM lineitem").fetchnumpy()["l_linenumber"]
    np.testing.assert_array_equal(np.concatenate([y for _, y in pairs]), want_y)
    x, y = next(lf.iter_xy(features, "l_extendedprice", batch_size=10, target_dtype="float64"))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, x[:, 1], rtol=1e-6)


def test_incremental_pca_over_batches_matches_numpy(tpch):
    """partial_fit-style use: the running mean and covariance built batch by batch equal the
    ones of the whole matrix (scikit-learn is not a test dependency; the arithmetic is)."""
    lf = lineitem(tpch)
    n, total, outer = 0, np.zeros(4), np.zeros((4, 4))
    for x, _ in lf.iter_xy(["l_quantity", "l_extendedprice", "l_discount", "l_tax"],
                           "l_orderkey", batch_size=40_000, dtype="float64"):
        n += len(x)
        total += x.sum(axis=0)
        outer += x.T @ x
    whole = lf.select("l_quantity", "l_extendedprice", "l_discount", "l_tax").collect()
    m = np.column_stack([whole.to_arrow().column(i).to_numpy().astype(np.float64) for i in range(4)])
    cov = (outer - np.outer(total, total) / n) / (n - 1)
    # One-pass sums lose a few digits to cancellation; the data itself is compared exactly above.
    np.testing.assert_allclose(cov, np.cov(m, rowvar=False), rtol=1e-6)


def test_torch_tensors_share_the_arrays_memory(tpch, monkeypatch):
    """torch is optional and not installed for the tests: a stand-in module records what
    ``to="torch"`` hands it, which must be writable NumPy arrays (no copy, no warning)."""
    seen = []

    def from_numpy(array):
        assert isinstance(array, np.ndarray) and array.flags["WRITEABLE"]
        seen.append(array)
        return ("tensor", array)

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(from_numpy=from_numpy))
    lf = lineitem(tpch)
    tensor = next(lf.iter_batches(64, to="torch", columns=["l_quantity", "l_tax"], dtype="float32"))
    assert tensor[0] == "tensor" and tensor[1].shape == (64, 2)
    columns = next(lf.iter_batches(64, to="torch", columns=["l_orderkey", "l_linenumber"]))
    assert set(columns) == {"l_orderkey", "l_linenumber"}
    assert columns["l_orderkey"][1].dtype == np.int64 and columns["l_linenumber"][1].dtype == np.int32
    x, y = next(lf.iter_xy(["l_quantity"], "l_linenumber", batch_size=8, to="torch"))
    assert x[1].shape == (8, 1) and y[1].shape == (8,)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        next(lf.iter_batches(8, to="torch", dtype="float32", columns=["l_tax"]))


def test_errors_name_the_column_or_the_argument(tpch):
    lf = ooc.from_arrow(pa.table({"a": [1, None, 3], "s": ["x", "y", "z"], "big": [1, 2, 300]})).lazy()
    with pytest.raises(ooc.OocError, match="column 'a' has NULLs"):
        list(lf.iter_batches(2, to="numpy", columns=["a"], dtype="float32"))
    with pytest.raises(ooc.OocError, match="column 's' is VARCHAR"):
        list(lf.iter_batches(2, to="numpy", dtype="float32", columns=["s"]))
    with pytest.raises(ooc.OocError, match="column 'big'.*int8"):
        list(lf.iter_batches(2, to="numpy", dtype="int8", columns=["big"]))
    # fill_null first, as the message says.
    filled = lf.with_columns(col("a").fill_null(0))
    assert next(filled.iter_batches(3, to="numpy", columns=["a"], dtype="int64")).tolist() == [[1], [0], [3]]
    with pytest.raises(ValueError, match="to='parquet'"):
        next(lf.iter_batches(to="parquet"))
    with pytest.raises(ValueError, match="drop_last"):
        next(lf.iter_batches(drop_last=True))
    with pytest.raises(ValueError, match="shuffle=True"):
        next(lf.iter_batches(2, seed=1))
    with pytest.raises(ValueError, match="batch_size"):
        next(lf.iter_batches(0))
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        next(lf.iter_batches(2, to="numpy", dtype="float8"))
    with pytest.raises(ooc.ColumnNotFoundError):
        next(lf.iter_batches(2, columns=["nope"]))
    with pytest.raises(TypeError, match="list of column names"):
        next(lf.iter_xy("a", "s", batch_size=2))


def test_a_budget_smaller_than_the_data_still_feeds(tpch, duck):
    ooc.config(memory_limit="32MB", threads=2)
    total = 0.0
    for x in lineitem(tpch).iter_batches(25_000, to="numpy", columns=["l_extendedprice"], dtype="float64"):
        total += float(x.sum())
    want = duck.execute("SELECT sum(CAST(l_extendedprice AS DOUBLE)) FROM lineitem").fetchone()[0]
    assert total == pytest.approx(want, rel=1e-12)
