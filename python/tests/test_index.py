"""Secondary indexes from Python: create_index / list_indexes / drop_index, queries that use them
(from SQL and from the lazy API) equal DuckDB's answers, and a file changed after indexing is
read without its index."""

import os
import shutil
import time

import pytest

import ooc
from ooc import col


@pytest.fixture()
def lineitem(tpch, tmp_path):
    """A private copy of the test lineitem (sidecars are written beside it)."""
    target = tmp_path / "lineitem.parquet"
    shutil.copy(tpch / "lineitem.parquet", target)
    return target


def _duck(duck, target, where):
    return duck.execute(
        f"SELECT count(*), sum(l_quantity), min(l_comment) FROM read_parquet('{target}') WHERE {where}"
    ).fetchone()


def _ooc(target, where):
    q = f"SELECT count(*) AS n, sum(l_quantity) AS q, min(l_comment) AS c FROM '{target}' WHERE {where}"
    return tuple(ooc.sql(q).collect().rows()[0]), ooc.sql(q).explain()


def test_indexes_answer_like_duckdb_and_are_listed_and_dropped(lineitem, duck):
    built = ooc.create_index(lineitem, ["l_partkey", "l_comment"], memory_limit="64MB")
    assert len(built) == 1 and built[0]["sidecar"].endswith(".lineitem.parquet.ooc-index")
    names = [c["name"] for c in built[0]["columns"]]
    assert names == ["l_partkey", "l_comment"]
    partkey = built[0]["columns"][0]
    total = duck.execute(f"SELECT count(*) FROM read_parquet('{lineitem}')").fetchone()[0]
    assert partkey["rows"] + partkey["nulls"] == total
    assert partkey["distinct"] == duck.execute(
        f"SELECT count(DISTINCT l_partkey) FROM read_parquet('{lineitem}')"
    ).fetchone()[0]

    key, comment = duck.execute(
        f"SELECT l_partkey, l_comment FROM read_parquet('{lineitem}') LIMIT 1 OFFSET 1234"
    ).fetchone()
    prefix = comment[:9].replace("'", "''")
    for where in [
        f"l_partkey = {key}",
        f"l_partkey IN ({key}, {key + 1}, 999999999)",
        f"l_partkey BETWEEN {key} AND {key + 3}",
        f"l_comment = '{comment.replace(chr(39), chr(39) * 2)}'",
        f"l_comment LIKE '{prefix}%'",
        f"l_partkey = {key} OR l_comment LIKE '{prefix}%'",
        f"l_partkey = {key} AND l_quantity > 10",
    ]:
        got, plan = _ooc(lineitem, where)
        assert got == _duck(duck, lineitem, where), where
        assert "index=[" in plan, (where, plan)

    # From the lazy API, too.
    lf = ooc.scan_parquet(lineitem).filter(col("l_partkey") == key)
    assert "index=[l_partkey = " in lf.explain()
    assert lf.select(ooc.len()).collect().to_dicts()[0]["len"] == _duck(duck, lineitem, f"l_partkey = {key}")[0]

    # Turned off.
    ooc.config(use_indexes=False)
    try:
        got, plan = _ooc(lineitem, f"l_partkey = {key}")
        assert "index=" not in plan
        assert got == _duck(duck, lineitem, f"l_partkey = {key}")
    finally:
        assert ooc.config(use_indexes=True)["use_indexes"] is True

    listed = ooc.list_indexes(lineitem)
    assert [c["name"] for c in listed[0]["columns"]] == ["l_partkey", "l_comment"]
    assert listed[0]["ignored"] is None
    left = ooc.drop_index(lineitem, "l_comment")
    assert [c["name"] for c in left[0]["columns"]] == ["l_partkey"]
    ooc.drop_index(lineitem)
    assert ooc.list_indexes(lineitem)[0]["sidecar"] is None
    assert sorted(os.listdir(lineitem.parent)) == ["lineitem.parquet"]


def test_a_file_changed_after_indexing_is_read_without_its_index(lineitem, duck, tmp_path):
    ooc.create_index(lineitem, "l_partkey")
    key = duck.execute(f"SELECT l_partkey FROM read_parquet('{lineitem}') LIMIT 1 OFFSET 77").fetchone()[0]
    where = f"l_partkey = {key}"

    # Touched.
    later = time.time() + 5
    os.utime(lineitem, (later, later))
    got, plan = _ooc(lineitem, where)
    assert "stale" in plan and ".lineitem.parquet.ooc-index" in plan, plan
    assert got == _duck(duck, lineitem, where)
    assert "stale" in ooc.list_indexes(lineitem)[0]["ignored"]

    # Rewritten by another writer with other rows (every l_partkey shifted by one).
    rewritten = tmp_path / "rewritten.parquet"
    duck.execute(
        f"COPY (SELECT * REPLACE (l_partkey + 1 AS l_partkey) FROM read_parquet('{lineitem}')) "
        f"TO '{rewritten}' (FORMAT parquet)"
    )
    os.replace(rewritten, lineitem)
    got, plan = _ooc(lineitem, where)
    assert "stale" in plan
    assert got == _duck(duck, lineitem, where)

    # A damaged sidecar: the right answer all the same.
    ooc.create_index(lineitem, "l_partkey")
    sidecar = ooc.list_indexes(lineitem)[0]["sidecar"]
    with open(sidecar, "r+b") as f:
        f.truncate(os.path.getsize(sidecar) // 3)
    got, plan = _ooc(lineitem, where)
    assert "damaged" in plan
    assert got == _duck(duck, lineitem, where)


def test_index_errors(lineitem, tmp_path):
    with pytest.raises(ooc.OocError, match="unknown column 'nope'.*l_orderkey"):
        ooc.create_index(lineitem, ["nope"])
    with pytest.raises(ooc.OocError):
        ooc.list_indexes(tmp_path / "missing.parquet")
    # An index directory for data one cannot write next to.
    index_dir = tmp_path / "indexes"
    ooc.create_index(lineitem, "l_orderkey", index_dir=index_dir)
    assert sorted(os.listdir(lineitem.parent)) == ["indexes", "lineitem.parquet"]
    assert ooc.list_indexes(lineitem)[0]["sidecar"] is None
    assert ooc.list_indexes(lineitem, index_dir=index_dir)[0]["columns"][0]["name"] == "l_orderkey"
