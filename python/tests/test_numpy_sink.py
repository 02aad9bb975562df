"""``LazyFrame.sink_numpy`` and ``ooc query -o out.npy``: a memory-mappable 2-D array equal to
DuckDB's values, written atomically; NULLs and strings are errors that name the column."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

import ooc


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sink_numpy_equals_duckdb(tpch, duck, tmp_path, dtype):
    path = tmp_path / "lineitem.npy"
    stats = (
        ooc.scan_parquet(tpch / "lineitem.parquet")
        .sort("l_orderkey", "l_linenumber")
        .sink_numpy(path, columns=["l_quantity", "l_extendedprice", "l_discount", "l_shipdate"], dtype=dtype)
    )
    mapped = np.load(path, mmap_mode="r")
    expected = duck.execute(
        f"""SELECT l_quantity::DOUBLE, l_extendedprice::DOUBLE, l_discount::DOUBLE,
                   (l_shipdate - DATE '1970-01-01')::DOUBLE
            FROM '{tpch / "lineitem.parquet"}' ORDER BY l_orderkey, l_linenumber"""
    ).fetchnumpy()
    columns = [expected[k] for k in expected]
    want = np.column_stack(columns).astype(dtype)
    assert mapped.dtype == np.dtype(dtype)
    assert mapped.flags["C_CONTIGUOUS"]
    assert stats["rows"] == mapped.shape[0] == want.shape[0]
    assert np.array_equal(np.asarray(mapped), want)


def test_sink_numpy_keeps_the_files_order(tpch, duck, tmp_path):
    """Row i of the array is row i of the file, although four threads read it: features and
    labels written to separate arrays line up."""
    ooc.config(threads=4)
    lf = ooc.scan_parquet(tpch / "lineitem.parquet").filter(ooc.col("l_quantity") > 10)
    lf.sink_numpy(tmp_path / "x.npy", columns=["l_orderkey", "l_partkey"], dtype="int64")
    lf.sink_numpy(tmp_path / "y.npy", columns=["l_linenumber"], dtype="int64")
    x, y = np.load(tmp_path / "x.npy"), np.load(tmp_path / "y.npy")
    want = duck.execute(
        "SELECT l_orderkey, l_partkey, l_linenumber FROM lineitem WHERE l_quantity > 10"
    ).fetchnumpy()
    assert np.array_equal(x[:, 0], want["l_orderkey"]) and np.array_equal(x[:, 1], want["l_partkey"])
    assert np.array_equal(y[:, 0], want["l_linenumber"])


def test_sink_numpy_refuses_nulls_and_strings_and_leaves_no_file(tmp_path):
    lf = ooc.from_arrow(pa.table({"a": [1, None], "s": ["x", "y"]})).lazy()
    path = tmp_path / "out.npy"
    with pytest.raises(ooc.OocError, match="column 'a' has NULLs"):
        lf.sink_numpy(path, columns=["a"])
    with pytest.raises(ooc.OocError, match="column 's' is VARCHAR"):
        lf.sink_numpy(path, columns=["s"])
    assert os.listdir(tmp_path) == []
    # fill_null first, as the message says.
    lf.with_columns(ooc.col("a").fill_null(0)).sink_numpy(path, columns=["a"], dtype="int64")
    assert np.load(path).tolist() == [[1], [0]]
    with pytest.raises(ValueError, match="unknown dtype .float16."):
        lf.sink_numpy(path, dtype="float16")
