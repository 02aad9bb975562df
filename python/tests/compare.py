"""Comparing ooc's answers with DuckDB's (used by the tests and by benches/python_api.py)."""

from __future__ import annotations

TPCH_TABLES = [
    "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
]


def rows_equal(ours, theirs, *, ordered: bool = False, rel: float = 1e-9) -> None:
    """Assert two lists of row tuples are equal (as multisets unless ``ordered``); floats
    compare with a relative tolerance, everything else exactly (decimals stay Decimal)."""
    import math

    def norm(rows):
        return [tuple(r) for r in rows]

    a, b = norm(ours), norm(theirs)
    if not ordered:
        key = lambda r: tuple((v is None, str(type(v)), v if not isinstance(v, float) else round(v, 6)) for v in r)  # noqa: E731
        a, b = sorted(a, key=key), sorted(b, key=key)
    assert len(a) == len(b), f"{len(a)} rows vs {len(b)} rows"
    for i, (ra, rb) in enumerate(zip(a, b)):
        assert len(ra) == len(rb), f"row {i}: {ra} vs {rb}"
        for va, vb in zip(ra, rb):
            if isinstance(va, float) and isinstance(vb, float):
                assert (math.isnan(va) and math.isnan(vb)) or math.isclose(va, vb, rel_tol=rel, abs_tol=1e-12), f"row {i}: {ra} vs {rb}"
            else:
                assert va == vb, f"row {i}: {ra} vs {rb}"
