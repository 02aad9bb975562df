"""A short run of the differential SQL tester (tests/difftest/difftest.py): random, well-typed
queries over NULL-heavy edge-case tables and small TPC-H tables, each answered by ooc (with no
memory limit and under a 4MB budget, so that operators spill) and by DuckDB, results equal.
`make difftest N=...` runs as many as wanted."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def _difftest():
    spec = importlib.util.spec_from_file_location("difftest", REPO / "tests" / "difftest" / "difftest.py")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclasses look their module up by name.
    sys.modules["difftest"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_queries_answer_as_duckdb_does(tpch, tmp_path, capsys):
    difftest = _difftest()
    status = difftest.main([
        "-n", "150", "--seed", "900001", "--data", str(tmp_path / "edge"), "--tpch", str(tpch),
        "--found", str(tmp_path / "found"),
    ])
    out = capsys.readouterr().out
    assert status == 0, out
    summary = out.strip().splitlines()[-1]
    assert "ok" in summary, summary


def test_a_difference_is_found_and_minimized(tmp_path):
    """The tester itself: a query whose answer differs is reported and shrunk."""
    difftest = _difftest()
    tables = difftest.write_edge_data(tmp_path / "edge")
    engines = difftest.Engines(tables, "4MB")
    # `length(s) + 1` where DuckDB is told `length(s)`: every row differs.
    ours = difftest.leaf(difftest.INT, "length(t1.s)")
    query = difftest.Query([ours], difftest.From("t AS t1", []), where=[difftest.leaf(difftest.BOOL, "t1.k = 3")])
    original = engines.duckdb
    engines.duckdb = lambda sql: original(sql.replace("length(t1.s)", "length(t1.s) + 1"))
    outcome = difftest.check(engines, query.render(), False)
    assert outcome.kind == "mismatch", outcome
    small = difftest.shrink(engines, query)
    assert small.where == [], small.render()
    assert difftest.compare([(1.0,)], [(1.0 + 1e-12,)], False) is None
    assert difftest.compare([(None,)], [(0,)], False) is not None
    assert difftest.compare([(1, "a"), (2, "b")], [(2, "b"), (1, "a")], True) is not None
