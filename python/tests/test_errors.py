"""Every exception class of ooc, with its attributes, raised by the situations it documents; and
Python-level misuse raising TypeError / ValueError. No error is ever pyo3's PanicException."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ooc
from ooc import col

LINEITEM_COLUMNS = [
    "l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice",
    "l_discount", "l_tax", "l_returnflag", "l_linestatus", "l_shipdate", "l_commitdate",
    "l_receiptdate", "l_shipinstruct", "l_shipmode", "l_comment",
]

ERROR_CLASSES = [
    ooc.ColumnNotFoundError, ooc.TableNotFoundError, ooc.SQLError, ooc.PlanError,
    ooc.SchemaError, ooc.CorruptFileError, ooc.InputError, ooc.ResourcesExhaustedError,
    ooc.SpillError, ooc.ComputeError, ooc.OutputError, ooc.QueryCancelledError,
    ooc.InternalError,
]


def scan(tpch, table):
    return ooc.scan_parquet(tpch / f"{table}.parquet")


@pytest.fixture
def temp_dir(tmp_path):
    """A spill directory for one test; the previous setting is restored afterwards (the shared
    config fixture does not restore temp_dir)."""
    spill = tmp_path / "spill"
    spill.mkdir()
    before = ooc.config()["temp_dir"]
    ooc.config(temp_dir=spill)
    yield spill
    ooc.config(temp_dir=before)


def assert_not_panic(exc: BaseException) -> None:
    assert isinstance(exc, ooc.OocError)
    names = {cls.__name__ for cls in type(exc).__mro__}
    assert "PanicException" not in names
    assert "panic" not in str(exc).lower()


# ---------------------------------------------------------------------------------------------
# The hierarchy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_is_an_ooc_error(cls):
    assert issubclass(cls, ooc.OocError)
    assert issubclass(cls, Exception)
    assert cls is not ooc.OocError
    assert "PanicException" not in {c.__name__ for c in cls.__mro__}
    assert getattr(ooc, cls.__name__) is cls


def test_error_classes_are_distinct():
    assert len(set(ERROR_CLASSES)) == len(ERROR_CLASSES)
    for a in ERROR_CLASSES:
        for b in ERROR_CLASSES:
            if a is not b:
                assert not issubclass(a, b)


# ---------------------------------------------------------------------------------------------
# ColumnNotFoundError
# ---------------------------------------------------------------------------------------------


def check_column_not_found(exc: ooc.ColumnNotFoundError, missing: str, valid: list) -> None:
    assert_not_panic(exc)
    assert exc.name == missing
    assert exc.valid == valid
    message = str(exc)
    assert repr(missing) in message or missing in message
    for name in valid:
        assert name in message


@pytest.mark.parametrize(
    "build",
    [
        lambda li: li.select("l_quantityy"),
        lambda li: li.select(col("nope") + 1),
        lambda li: li.filter(col("nope") > 1),
        lambda li: li.filter(nope=1),
        lambda li: li.group_by("nope").agg(col("l_quantity").sum()),
        lambda li: li.group_by("l_returnflag").agg(col("nope").sum()),
        lambda li: li.with_columns(x=col("nope")),
        lambda li: li.rename({"nope": "x"}),
        lambda li: li.drop("nope"),
        lambda li: li.unique(subset=["nope"]),
    ],
    ids=["select", "select-expr", "filter", "filter-kw", "group_by-key", "group_by-agg",
         "with_columns", "rename", "drop", "unique"],
)
def test_column_not_found_when_building(tpch, build):
    li = scan(tpch, "lineitem")
    with pytest.raises(ooc.ColumnNotFoundError) as info:
        build(li)
    missing = info.value.name
    assert missing in ("nope", "l_quantityy")
    check_column_not_found(info.value, missing, LINEITEM_COLUMNS)


def test_column_not_found_suggests_a_close_name(tpch):
    with pytest.raises(ooc.ColumnNotFoundError) as info:
        scan(tpch, "lineitem").select("l_quantityy")
    assert info.value.suggestion == "l_quantity"
    assert "did you mean 'l_quantity'" in str(info.value)


@pytest.mark.parametrize("key", ["nope", col("nope") * 2])
def test_column_not_found_from_sort(tpch, key):
    # Raised when the plan is built, like every other unknown column.
    lineitem = scan(tpch, "lineitem")
    with pytest.raises(ooc.ColumnNotFoundError) as info:
        lineitem.sort(key)
    check_column_not_found(info.value, "nope", LINEITEM_COLUMNS)


@pytest.mark.parametrize(
    "query",
    ["SELECT nope FROM nation", "SELECT * FROM nation WHERE nope > 1",
     "SELECT * FROM nation ORDER BY nope", "SELECT nope, count(*) FROM nation GROUP BY nope"],
)
def test_column_not_found_from_sql(tpch, query):
    with pytest.raises(ooc.ColumnNotFoundError) as info:
        ooc.sql(query, nation=tpch / "nation.parquet").collect()
    check_column_not_found(info.value, "nope", ["n_nationkey", "n_name", "n_regionkey", "n_comment"])


@pytest.mark.parametrize(
    "keys,side",
    [(dict(on="id"), "right"), (dict(left_on="id", right_on="nope"), "right"),
     (dict(left_on="nope", right_on="k"), "left")],
)
def test_column_not_found_from_join_names_the_users_column(keys, side):
    """The error of a join key that does not exist names the column as the user wrote it and
    lists the columns of the side it was looked up in, never the engine-internal qualifier
    of a join side ('#left0.' / '#right0.', or its raw '\x01' form)."""
    a = ooc.from_arrow(pa.table({"id": [1, 2], "x": [10, 20]})).lazy()
    b = ooc.from_arrow(pa.table({"k": [1, 2], "y": [10, 20]})).lazy()
    with pytest.raises(ooc.ColumnNotFoundError) as info:
        a.join(b, **keys)
    missing = keys.get("on") or (keys["right_on"] if side == "right" else keys["left_on"])
    assert info.value.valid == (["k", "y"] if side == "right" else ["id", "x"])
    for internal in ("#left0", "#right0", "\x01"):
        assert internal not in str(info.value)
    assert info.value.name == missing


# ---------------------------------------------------------------------------------------------
# TableNotFoundError, SQLError
# ---------------------------------------------------------------------------------------------


def test_table_not_found(tpch):
    with pytest.raises(ooc.TableNotFoundError) as info:
        ooc.sql("SELECT * FROM natoin", nation=tpch / "nation.parquet", region=tpch / "region.parquet")
    e = info.value
    assert_not_panic(e)
    assert e.name == "natoin"
    assert sorted(e.valid) == ["nation", "region"]
    assert "natoin" in str(e) and "nation" in str(e)


def test_table_not_found_without_any_table():
    with pytest.raises(ooc.TableNotFoundError) as info:
        ooc.sql("SELECT * FROM nowhere")
    assert info.value.name == "nowhere"


@pytest.mark.parametrize(
    "query,line,column",
    [
        ("SELECT * FROM t WHERE", 1, 22),
        ("SELECT a,\n b frm t", 2, 8),
        ("selec 1", 1, 1),
    ],
)
def test_sql_syntax_error_has_line_and_column(tpch, query, line, column):
    with pytest.raises(ooc.SQLError) as info:
        ooc.sql(query, t=tpch / "nation.parquet")
    e = info.value
    assert_not_panic(e)
    assert (e.line, e.column) == (line, column)
    assert f"line {line}" in str(e) and f"column {column}" in str(e)


# ---------------------------------------------------------------------------------------------
# PlanError
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,words",
    [
        (lambda li: li.select(col("l_comment").sum()), ["sum", "VARCHAR"]),
        (lambda li: li.select(col("l_shipdate").sum()), ["sum", "DATE"]),
        (lambda li: li.select(col("l_comment").mean()), ["avg", "VARCHAR"]),
        (lambda li: li.select(col("l_comment") + 1), ["+", "VARCHAR"]),
        (lambda li: li.select(col("l_comment").dt.year()), ["DATE"]),
        (lambda li: li.filter(col("l_orderkey") + 1), ["BOOLEAN"]),
        (lambda li: li.filter(col("l_comment").str.contains("a(b")), ["regular expression", "a(b"]),
        (lambda li: li.select(ooc.when(col("l_orderkey")).then(1)), ["BOOLEAN"]),
        (lambda li: li.select(col("l_orderkey") & col("l_partkey")), ["BOOLEAN"]),
        (lambda li: li.join(li, left_on=["l_orderkey", "l_partkey"], right_on="l_orderkey"), ["keys"]),
    ],
    ids=["sum-str", "sum-date", "mean-str", "str-plus-int", "year-of-str", "filter-int",
         "bad-regex", "when-int", "and-ints", "join-key-count"],
)
def test_plan_errors(tpch, build, words):
    li = scan(tpch, "lineitem")
    with pytest.raises(ooc.PlanError) as info:
        build(li).collect()
    assert_not_panic(info.value)
    for word in words:
        assert word in str(info.value)


def test_plan_error_unknown_sql_function():
    with pytest.raises(ooc.PlanError, match="nosuchfn"):
        ooc.sql("SELECT nosuchfn(1)").collect()


# ---------------------------------------------------------------------------------------------
# Input errors: SchemaError, CorruptFileError, InputError
# ---------------------------------------------------------------------------------------------


def test_schema_error_for_disagreeing_files(tmp_path):
    pq.write_table(pa.table({"a": pa.array([1, 2], pa.int64()), "b": [1.0, 2.0]}), tmp_path / "p1.parquet")
    pq.write_table(pa.table({"a": pa.array(["x", "y"], pa.string()), "b": [3.0, 4.0]}), tmp_path / "p2.parquet")
    with pytest.raises(ooc.SchemaError) as info:
        ooc.scan_parquet(str(tmp_path / "*.parquet")).collect()
    e = info.value
    assert_not_panic(e)
    assert e.column == "a"
    assert sorted(os.path.basename(p) for p in e.paths) == ["p1.parquet", "p2.parquet"]
    assert "'a'" in str(e) and "p1.parquet" in str(e) and "p2.parquet" in str(e)
    # The same through a list and through SQL.
    with pytest.raises(ooc.SchemaError):
        ooc.scan_parquet([tmp_path / "p1.parquet", tmp_path / "p2.parquet"]).collect()
    with pytest.raises(ooc.SchemaError):
        ooc.sql(f"SELECT * FROM '{tmp_path}/*.parquet'").collect()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_file_error_names_the_file(tpch, tmp_path, damage):
    raw = (tpch / "nation.parquet").read_bytes()
    data = {"truncated": raw[: len(raw) // 2], "garbage": b"not parquet at all " * 20, "empty": b""}[damage]
    bad = tmp_path / f"{damage}.parquet"
    bad.write_bytes(data)
    with pytest.raises(ooc.CorruptFileError) as info:
        ooc.scan_parquet(bad).collect()
    e = info.value
    assert_not_panic(e)
    assert e.path == str(bad)
    assert str(bad) in str(e)


def test_corrupt_file_among_good_ones(tpch, tmp_path):
    good = tmp_path / "a.parquet"
    good.write_bytes((tpch / "nation.parquet").read_bytes())
    bad = tmp_path / "b.parquet"
    bad.write_bytes((tpch / "nation.parquet").read_bytes()[:-100])
    with pytest.raises(ooc.CorruptFileError) as info:
        ooc.scan_parquet(tmp_path).collect()
    assert info.value.path == str(bad)


def _flip_a_value_byte(path, out):
    """Copy `path` to `out` with one byte changed inside the first data page of column 0."""
    import pyarrow.parquet as pq

    column = pq.ParquetFile(path).metadata.row_group(0).column(0)
    raw = bytearray(path.read_bytes())
    # Past the page header (tens of bytes) and well inside 80,000 bytes of plain int64s.
    raw[column.data_page_offset + 4000] ^= 0x01
    out.write_bytes(bytes(raw))


def test_page_checksums_turn_a_changed_byte_into_an_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"x": pa.array(range(10_000), pa.int64())})
    for checksums in (True, False):
        path = tmp_path / f"crc-{checksums}.parquet"
        pq.write_table(table, path, write_page_checksum=checksums, compression="none",
                       use_dictionary=False)
        assert ooc.scan_parquet(path).select(ooc.col("x").sum()).collect().rows() == [(49_995_000,)]
        bad = tmp_path / f"bad-{checksums}.parquet"
        _flip_a_value_byte(path, bad)
        if checksums:
            with pytest.raises(ooc.CorruptFileError) as info:
                ooc.scan_parquet(bad).collect()
            assert_not_panic(info.value)
            assert info.value.path == str(bad)
            assert "CRC" in str(info.value)
        else:
            # Without checksums nothing can tell: the sum is silently different.
            total = ooc.scan_parquet(bad).select(ooc.col("x").sum()).collect().rows()[0][0]
            assert total != 49_995_000


def test_input_error_missing_path_and_empty_glob(tmp_path):
    missing = tmp_path / "missing.parquet"
    with pytest.raises(ooc.InputError) as info:
        ooc.scan_parquet(missing)
    assert_not_panic(info.value)
    assert info.value.path == str(missing)
    assert str(missing) in str(info.value)

    pattern = str(tmp_path / "*.parquet")
    with pytest.raises(ooc.InputError) as info:
        ooc.scan_parquet(pattern)
    assert info.value.path == pattern

    with pytest.raises(ooc.InputError):
        ooc.sql("SELECT * FROM t", t=missing)
    with pytest.raises(ooc.InputError):
        ooc.sql(f"SELECT * FROM '{pattern}'")


# ---------------------------------------------------------------------------------------------
# Memory and spilling: ResourcesExhaustedError, SpillError
# ---------------------------------------------------------------------------------------------


def test_resources_exhausted_with_a_64_byte_limit(tpch, temp_dir):
    ooc.config(memory_limit=64)
    with pytest.raises(ooc.ResourcesExhaustedError) as info:
        scan(tpch, "lineitem").group_by("l_orderkey").agg(col("l_quantity").sum()).collect()
    e = info.value
    assert_not_panic(e)
    assert e.limit == 64
    assert "HashAggregate" in e.consumer
    assert e.requested > 0 and e.reserved >= 0
    assert e.consumer in str(e) and "64" in str(e)
    assert os.listdir(temp_dir) == []
    # Nothing is left broken: the same query runs once the limit is lifted.
    ooc.config(memory_limit=None)
    n = scan(tpch, "lineitem").group_by("l_orderkey").agg(col("l_quantity").sum()).collect().height
    assert n == 75000


def test_spill_error_when_the_temp_quota_is_exceeded(tpch, temp_dir):
    ooc.config(memory_limit="1MB", max_temp_size=1)
    with pytest.raises(ooc.SpillError) as info:
        scan(tpch, "lineitem").select("l_orderkey", "l_quantity", "l_comment").sort("l_comment").collect()
    e = info.value
    assert_not_panic(e)
    assert "quota" in str(e)
    assert e.path.startswith(str(temp_dir))
    # The failed query leaves nothing behind in the temp dir.
    assert os.listdir(temp_dir) == []


def test_spill_error_from_an_aggregate(tpch, temp_dir):
    ooc.config(memory_limit="1MB", max_temp_size=1)
    with pytest.raises(ooc.SpillError) as info:
        scan(tpch, "lineitem").group_by("l_orderkey", "l_comment").agg(col("l_quantity").sum()).collect()
    assert "aggregate" in info.value.path
    assert os.listdir(temp_dir) == []


def test_sort_of_lineitem_spills_at_1mb(tpch, temp_dir, duck):
    """With ``memory_limit='1MB'`` a sort of the whole of lineitem should spill sorted runs
    (README: operators spill "instead of failing"); with ``max_temp_size=1`` that spill
    must then fail with SpillError, leaving no files."""
    ooc.config(memory_limit="1MB")
    out = scan(tpch, "lineitem").sort("l_orderkey", "l_linenumber").collect()
    assert out.height == 299814
    assert out.stats["peak_spill_bytes"] > 0
    assert os.listdir(temp_dir) == []
    ooc.config(max_temp_size=1)
    with pytest.raises(ooc.SpillError):
        scan(tpch, "lineitem").sort("l_orderkey").collect()
    assert os.listdir(temp_dir) == []


def test_spilling_within_quota_gives_correct_result_and_cleans_up(tpch, temp_dir, duck):
    ooc.config(memory_limit="2MB")
    got = (
        scan(tpch, "lineitem")
        .select("l_orderkey", "l_linenumber")
        .sort("l_orderkey", "l_linenumber", descending=True)
        .collect()
    )
    assert got.stats["peak_spill_bytes"] > 0
    assert os.listdir(temp_dir) == []
    assert got.rows()[:5] == duck.execute(
        "SELECT l_orderkey, l_linenumber FROM lineitem ORDER BY 1 DESC, 2 DESC LIMIT 5"
    ).fetchall()
    assert got.height == 299814


# ---------------------------------------------------------------------------------------------
# ComputeError, OutputError
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,dtype,words",
    [
        (["1", "abc"], ooc.Int64, ["abc", "Int64"]),
        (["2020-13-45"], ooc.Date, ["2020-13-45"]),
        ([2**40], ooc.Int32, ["1099511627776"]),
        ([123456.0], ooc.Decimal(5, 2), ["precision"]),
    ],
    ids=["str-to-int", "str-to-date", "int-overflow", "decimal-overflow"],
)
def test_compute_error_on_invalid_casts(values, dtype, words):
    lf = ooc.from_arrow(pa.table({"v": values})).lazy()
    with pytest.raises(ooc.ComputeError) as info:
        lf.select(col("v").cast(dtype)).collect()
    assert_not_panic(info.value)
    for word in words:
        assert word in str(info.value)


def test_compute_error_on_integer_overflow():
    lf = ooc.from_arrow(pa.table({"v": [2**62, 2**62, 2**62]})).lazy()
    with pytest.raises(ooc.ComputeError, match="does not fit|overflow"):
        lf.select(col("v").sum()).collect()
    with pytest.raises(ooc.ComputeError, match="(?i)overflow"):
        lf.select(col("v") * 4).collect()


def test_compute_error_in_a_sink_leaves_no_file(tmp_path):
    lf = ooc.from_arrow(pa.table({"v": ["1", "abc"]})).lazy()
    with pytest.raises(ooc.ComputeError):
        lf.select(col("v").cast(ooc.Int64)).sink_parquet(tmp_path / "bad.parquet")
    assert os.listdir(tmp_path) == []


def test_output_error(tmp_path):
    lf = ooc.from_arrow(pa.table({"v": [1, 2]})).lazy()
    target = tmp_path / "no_such_dir" / "x.parquet"
    with pytest.raises(ooc.OutputError) as info:
        lf.sink_parquet(target)
    assert_not_panic(info.value)
    assert info.value.path == str(target)
    assert not target.exists()
    with pytest.raises(ooc.OutputError):
        lf.sink_csv(tmp_path)  # a directory
    assert os.listdir(tmp_path) == []


def test_a_sink_that_cannot_be_written_whole_names_it_and_the_process_goes_on(tpch, tmp_path):
    """A write that fails midway (here a file size limit, with SIGXFSZ ignored: the failed
    write(2) of a full disk, with EFBIG instead of ENOSPC): OutputError naming the file,
    nothing left, and the next sink works."""
    import resource
    import signal

    lf = scan(tpch, "lineitem").select("l_orderkey", "l_comment")
    target = tmp_path / "out.parquet"
    before = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 10, hard))
    try:
        for sink in (lf.sink_parquet, lf.sink_csv):
            with pytest.raises(ooc.OutputError, match="File too large") as info:
                sink(target)
            assert_not_panic(info.value)
            assert info.value.path == str(target)
            assert os.listdir(tmp_path) == []
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, before)
    lf.sink_parquet(target)
    assert pq.read_table(target).num_rows == lf.select(col("l_orderkey").count()).collect().rows()[0][0]
    assert os.listdir(tmp_path) == ["out.parquet"]


# ---------------------------------------------------------------------------------------------
# Python-level misuse
# ---------------------------------------------------------------------------------------------


def small():
    return ooc.from_arrow(pa.table({"a": [1, 2], "b": [3, 4]})).lazy()


@pytest.mark.parametrize(
    "action,exc",
    [
        (lambda: small().join(small(), on="a", how="bogus"), ValueError),
        (lambda: small().join(small().collect(), on="a"), TypeError),
        (lambda: small().join(small()), ValueError),
        (lambda: small().join(small(), on="a", how="cross"), ValueError),
        (lambda: small().join(small(), on="a", left_on="a", right_on="a"), ValueError),
        (lambda: bool(col("a")), TypeError),
        (lambda: (col("a") > 1) and (col("b") > 1), TypeError),
        (lambda: 1 < col("a") < 3, TypeError),
        (lambda: col("a") in [col("b")], TypeError),
        (lambda: col(1), TypeError),
        (lambda: ooc.lit(object()), TypeError),
        (lambda: ooc.lit(__import__("decimal").Decimal("NaN")), ValueError),
        (lambda: col("a").cast("int128"), ValueError),
        (lambda: col("a").cast(ooc.Decimal), TypeError),
        (lambda: col("a").is_in("abc"), TypeError),
        (lambda: col("a").is_between(1, 2, closed="sometimes"), ValueError),
        (lambda: col("a").str.slice(-1), ValueError),
        (lambda: small().sort("a", "b", descending=[True]), ValueError),
        (lambda: small().slice(-1), ValueError),
        (lambda: small().filter(), ValueError),
        (lambda: small().group_by(), ValueError),
        (lambda: small().group_by("a").agg(), ValueError),
        (lambda: small().group_by("a").agg(col("b")), ValueError),
        (lambda: small().select(col("a"), col("b").sum()), ValueError),
        (lambda: small().with_columns(col("b").sum()), ValueError),
        (lambda: small().filter(col("b").sum() > 1), ValueError),
        (lambda: small().unique(subset="a", keep="none"), ValueError),
        (lambda: small().group_by("a", maintain_order=True), NotImplementedError),
        (lambda: ooc.from_arrow(5), TypeError),
        (lambda: ooc.sql("SELECT 1", t=5), TypeError),
        (lambda: ooc.scan_parquet([]), ValueError),
        (lambda: ooc.config(memory_limit="lots"), ValueError),
        (lambda: ooc.config(memory_limit=-1), ValueError),
        (lambda: ooc.Datetime("h"), ValueError),
    ],
)
def test_python_misuse(action, exc):
    with pytest.raises(exc) as info:
        action()
    assert not isinstance(info.value, ooc.OocError)


def test_invalid_how_message_lists_the_choices():
    with pytest.raises(ValueError) as info:
        small().join(small(), on="a", how="outer_apply")
    for how in ("inner", "left", "right", "full", "semi", "anti", "cross"):
        assert how in str(info.value)


def test_errors_leave_the_engine_usable(tpch):
    for bad in (
        lambda: scan(tpch, "lineitem").select(col("l_comment").sum()).collect(),
        lambda: ooc.from_arrow(pa.table({"v": ["x"]})).lazy().select(col("v").cast(ooc.Int64)).collect(),
        lambda: ooc.sql("SELEC 1"),
    ):
        with pytest.raises(ooc.OocError) as info:
            bad()
        assert_not_panic(info.value)
    assert scan(tpch, "nation").select(ooc.len()).collect().rows() == [(25,)]
