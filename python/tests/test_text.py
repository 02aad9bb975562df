"""CSV and NDJSON scans (``scan_csv``, ``scan_ndjson``, paths in ``sql``): the same rows as
DuckDB and Polars read from files those engines wrote, compressed or not, and bad records
reported with their line or skipped on request."""

from __future__ import annotations

import gzip
import pathlib

import duckdb
import polars as pl
import pytest

import ooc
from conftest import rows_equal

QUERY = """
SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_quantity) AS qty,
       sum(l_extendedprice * (1 - l_discount)) AS revenue, min(l_shipdate) AS first_ship,
       max(l_comment) AS last_comment
FROM {table}
WHERE l_shipdate <= DATE '1998-09-02'
GROUP BY 1, 2
ORDER BY 1, 2
"""

DECIMALS = {
    "l_quantity": "DECIMAL(15,2)",
    "l_extendedprice": "DECIMAL(15,2)",
    "l_discount": "DECIMAL(15,2)",
}


@pytest.fixture(scope="module")
def lineitem_files(tpch: pathlib.Path, tmp_path_factory) -> dict:
    """lineitem (SF0.05) as DuckDB writes CSV (plain and zstd) and Polars writes NDJSON
    (gzip)."""
    out = tmp_path_factory.mktemp("text")
    source = tpch / "lineitem.parquet"
    csv = out / "lineitem.csv"
    zst = out / "lineitem.csv.zst"
    ndjson = out / "lineitem.ndjson.gz"
    duckdb.sql(f"COPY (FROM '{source}') TO '{csv}' (HEADER)")
    duckdb.sql(f"COPY (FROM '{source}') TO '{zst}' (HEADER, COMPRESSION zstd)")
    # Polars writes decimals as JSON strings; as numbers they are what NDJSON usually holds.
    frame = pl.read_parquet(source).with_columns(pl.col(pl.Decimal).cast(pl.Float64))
    with gzip.open(ndjson, "wb", compresslevel=1) as f:
        frame.write_ndjson(f)
    return {"csv": csv, "zst": zst, "ndjson": ndjson}


def test_scan_csv_equals_duckdb_with_exact_decimals(lineitem_files):
    types = ", ".join(f"'{k}': '{v}'" for k, v in DECIMALS.items())
    expected = duckdb.sql(
        QUERY.format(table=f"read_csv('{lineitem_files['csv']}', types={{{types}}})")
    ).fetchall()
    for path in (lineitem_files["csv"], lineitem_files["zst"]):
        lf = ooc.scan_csv(path, schema_overrides={k: ooc.Decimal(15, 2) for k in DECIMALS})
        got = ooc.sql(QUERY.format(table="t"), t=lf).collect().rows()
        assert got == expected


def test_scan_ndjson_written_by_polars_equals_duckdb(lineitem_files):
    expected = duckdb.sql(
        QUERY.format(table=f"read_ndjson('{lineitem_files['ndjson']}')")
    ).fetchall()
    lf = ooc.scan_ndjson(lineitem_files["ndjson"], schema_overrides={"l_shipdate": ooc.Date})
    got = ooc.sql(QUERY.format(table="t"), t=lf).collect().rows()
    rows_equal(got, expected)


def test_lazy_api_on_csv_equals_polars(lineitem_files):
    expected = (
        pl.scan_csv(lineitem_files["csv"])
        .filter(pl.col("l_quantity") > 45)
        .group_by("l_shipmode")
        .agg(pl.len().alias("n"), pl.col("l_extendedprice").sum().alias("s"))
        .sort("l_shipmode")
        .collect()
        .rows()
    )
    got = (
        ooc.scan_csv(lineitem_files["csv"])
        .filter(ooc.col("l_quantity") > 45)
        .group_by("l_shipmode")
        .agg(ooc.len().alias("n"), ooc.col("l_extendedprice").sum().alias("s"))
        .sort("l_shipmode")
        .collect()
        .rows()
    )
    rows_equal(got, expected)


def test_options_and_bad_records(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("# made by hand\n1|a|x\n2|NA|y\n3|c|oops\n", encoding="utf-8")
    lf = ooc.scan_csv(
        path,
        separator="|",
        has_header=False,
        comment_prefix="#",
        null_values=["NA"],
        schema_overrides={"column2": ooc.String},
    )
    assert lf.collect().rows() == [(1, "a", "x"), (2, None, "y"), (3, "c", "oops")]

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(100)) + "x,1\n", encoding="utf-8")
    with pytest.raises(ooc.InputError) as info:
        ooc.scan_csv(bad, infer_schema_length=10).collect()
    assert "bad.csv:102" in str(info.value) and "'a'" in str(info.value)
    assert info.value.line == 102
    rows = ooc.scan_csv(bad, infer_schema_length=10, ignore_errors=True).collect()
    assert rows.shape == (100, 2)

    with pytest.raises(ooc.PlanError, match="zz"):
        ooc.scan_csv(bad, schema_overrides={"zz": ooc.Int32})
    with pytest.raises(ValueError, match="separator"):
        ooc.scan_csv(bad, separator="||")
