#!/usr/bin/env python3
"""Differential SQL testing: random, well-typed queries run by ooc and by DuckDB, compared.

    usage: difftest.py [-n N] [--seed S] [--data DIR] [--tpch DIR] [--budget 4MB]
                       [--found DIR] [--verbose]

Each query is generated from its own seed (``--seed`` + its number), so any query is
reproduced by ``--seed S -n 1``. It runs in DuckDB (the oracle) and in ooc twice: with no
memory limit and under ``--budget`` (4MB by default, so that aggregates, sorts and joins
spill). Outcomes:

- ``ok``: equal results (as multisets, or in order under an ORDER BY that orders every
  output column; floats to a relative 1e-9);
- ``both failed``: DuckDB refused the query too (an overflow, a conversion): nothing to
  compare;
- ``unverified``: ooc stopped on a value error (an overflowing product, a cast out of range)
  on rows where DuckDB never evaluated that expression (evaluation order);
- ``budget_too_small``: under the budget, ooc's named error for a plan that cannot fit;
- ``oracle_bug``: DuckDB refused a valid query in a known way (see ``DUCKDB_BINDER_BUG``);
- ``limitation``: ooc's named error for a known limitation (see ``LIMITATION``);
- ``mismatch``: different rows, or ooc failed where DuckDB answered, or answered where DuckDB
  failed. Each one is minimized (clauses dropped, expressions replaced by their operands
  while the difference stays) and written to ``--found`` as a SQL file with the difference.

The data: edge-case tables written here (NULL-heavy columns of every type, small row groups
so that pruning and several morsels are exercised; deterministic), and, with ``--tpch``,
TPC-H tables at a small scale factor. Exit status 1 when a mismatch was found.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import math
import pathlib
import random
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# --------------------------------------------------------------------------------------------
# Data

STRINGS = ["a", "b", "abc", "", "Zürich", "x y", "B", "a%b", "zz", "ab"]


def _edge_tables(rng: random.Random) -> Dict[str, dict]:
    """Columns of the edge-case tables, as Python lists, and their Arrow types."""
    import pyarrow as pa

    def maybe(p_null: float, value):
        return None if rng.random() < p_null else value

    def dec(scale: int, bound: int):
        q = decimal.Decimal(1).scaleb(-scale)
        return decimal.Decimal(rng.randint(-bound, bound)).scaleb(-scale).quantize(q)

    base = datetime.date(1990, 1, 1)
    n = 3000
    t = {
        "id": (list(range(n)), pa.int32()),
        "k": ([maybe(0.1, rng.randint(0, 9)) for _ in range(n)], pa.int32()),
        "i": ([maybe(0.15, rng.choice([0, 1, -1, rng.randint(-1000, 1000)])) for _ in range(n)], pa.int32()),
        "b": ([maybe(0.15, rng.choice([rng.randint(-50, 50), rng.randint(-4 * 10**15, 4 * 10**15)])) for _ in range(n)], pa.int64()),
        "d": ([maybe(0.15, rng.randint(-100000, 100000) / 100) for _ in range(n)], pa.float64()),
        "m": ([maybe(0.15, dec(2, 10**9)) for _ in range(n)], pa.decimal128(12, 2)),
        "s": ([maybe(0.2, rng.choice(STRINGS)) for _ in range(n)], pa.string()),
        "dt": ([maybe(0.15, base + datetime.timedelta(days=rng.randint(0, 15000))) for _ in range(n)], pa.date32()),
        "f": ([maybe(0.2, rng.random() < 0.5) for _ in range(n)], pa.bool_()),
    }
    n = 400
    u = {
        "id": (list(range(0, 2 * n, 2)), pa.int32()),
        "k": ([maybe(0.1, rng.randint(0, 12)) for _ in range(n)], pa.int32()),
        "v": ([maybe(0.1, rng.randint(-100, 100)) for _ in range(n)], pa.int64()),
        "s": ([maybe(0.2, rng.choice(STRINGS)) for _ in range(n)], pa.string()),
        "m": ([maybe(0.15, dec(3, 10**7)) for _ in range(n)], pa.decimal128(10, 3)),
        "dt": ([maybe(0.15, base + datetime.timedelta(days=rng.randint(0, 15000))) for _ in range(n)], pa.date32()),
    }
    w = {
        "k": ([0, 1, 2, 3, 3, 4, 5, 6, 7, 8, None, 11], pa.int32()),
        "name": (["zero", "one", "two", "three", "three again", None, "five", "six", "", "eight", "none", "eleven"], pa.string()),
    }
    return {"t": t, "u": u, "w": w}


def write_edge_data(out: pathlib.Path) -> Dict[str, pathlib.Path]:
    """Write the edge-case tables (deterministic) as Parquet files under `out`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, columns in _edge_tables(random.Random(20261207)).items():
        path = out / f"{name}.parquet"
        if not path.exists():
            table = pa.table({c: pa.array(values, type=t) for c, (values, t) in columns.items()})
            tmp = path.with_suffix(".tmp")
            pq.write_table(table, tmp, row_group_size=500, data_page_size=2048)
            tmp.rename(path)
        paths[name] = path
    return paths


# --------------------------------------------------------------------------------------------
# Schema the generator draws from

INT, DEC, DBL, STR, DATE, BOOL = "int", "dec", "dbl", "str", "date", "bool"
NUMERIC = (INT, DEC, DBL)


@dataclass
class Column:
    name: str
    type: str
    domain: Optional[str] = None  # columns of one domain can be joined


@dataclass
class Table:
    name: str
    columns: List[Column]
    unique: Optional[str] = None  # a column unique in the table (for total orders)
    rows: int = 1000  # about how many rows (to keep joins from exploding)


# About how many distinct values each join domain has (rows of a join: L * R / distinct).
DOMAIN_VALUES = {"id": 3000, "k": 10, "s": 10, "dt": 3000, "nation": 25, "region": 5, "supp": 500,
                 "cust": 7500, "order": 75000}
MAX_JOIN_ROWS = 200_000


EDGE = [
    Table("t", [Column("id", INT, "id"), Column("k", INT, "k"), Column("i", INT), Column("b", INT),
                Column("d", DBL), Column("m", DEC), Column("s", STR, "s"), Column("dt", DATE, "dt"),
                Column("f", BOOL)], unique="id", rows=3000),
    Table("u", [Column("id", INT, "id"), Column("k", INT, "k"), Column("v", INT), Column("s", STR, "s"),
                Column("m", DEC), Column("dt", DATE, "dt")], unique="id", rows=400),
    Table("w", [Column("k", INT, "k"), Column("name", STR)], rows=12),
]

TPCH = [
    Table("nation", [Column("n_nationkey", INT, "nation"), Column("n_name", STR),
                     Column("n_regionkey", INT, "region"), Column("n_comment", STR)], unique="n_nationkey", rows=25),
    Table("region", [Column("r_regionkey", INT, "region"), Column("r_name", STR)], unique="r_regionkey", rows=5),
    Table("supplier", [Column("s_suppkey", INT, "supp"), Column("s_name", STR), Column("s_nationkey", INT, "nation"),
                       Column("s_acctbal", DEC)], unique="s_suppkey", rows=500),
    Table("customer", [Column("c_custkey", INT, "cust"), Column("c_nationkey", INT, "nation"),
                       Column("c_acctbal", DEC), Column("c_mktsegment", STR)], unique="c_custkey", rows=7500),
    Table("orders", [Column("o_orderkey", INT, "order"), Column("o_custkey", INT, "cust"),
                     Column("o_orderstatus", STR), Column("o_totalprice", DEC), Column("o_orderdate", DATE),
                     Column("o_orderpriority", STR), Column("o_shippriority", INT)], unique="o_orderkey", rows=75000),
]


# --------------------------------------------------------------------------------------------
# Expressions: a tree whose nodes know their SQL and their same-typed operands (for shrinking)


@dataclass
class E:
    """An expression: `sql` renders it; `parts` are operands of the same type, any of which may
    replace it when a mismatch is minimized."""

    type: str
    render: Callable[[], str]
    parts: List["E"] = field(default_factory=list)
    children: List["E"] = field(default_factory=list)
    agg: bool = False

    def __str__(self) -> str:
        return self.render()


def leaf(type_: str, text: str) -> E:
    return E(type_, lambda: text)


def node(type_: str, fmt: str, *children: E, same: Sequence[int] = (), agg: bool = False) -> E:
    """`fmt` with {0}, {1}... for the children; `same` lists the children of this type that
    may replace the node when shrinking."""
    kids = list(children)
    e = E(type_, lambda: fmt.format(*[str(c) for c in kids]), children=kids, agg=agg)
    e.parts = [kids[i] for i in same if kids[i].type == type_]
    return e


def literal(rng: random.Random, type_: str) -> E:
    if rng.random() < 0.05:
        return leaf(type_, f"CAST(NULL AS {sql_type(type_)})")
    if type_ == INT:
        return leaf(INT, str(rng.choice([0, 1, 2, -1, 3, 7, 10, 100, rng.randint(-1000, 1000)])))
    if type_ == DEC:
        return leaf(DEC, rng.choice(["0.00", "1.50", "-2.25", "100.00", "0.01", f"{rng.randint(-99999, 99999) / 100:.2f}"]))
    if type_ == DBL:
        return leaf(DBL, rng.choice(["0.5::DOUBLE", "1.0::DOUBLE", "-3.75::DOUBLE", "250.0::DOUBLE", "1e3"]))
    if type_ == STR:
        return leaf(STR, "'" + rng.choice(STRINGS).replace("'", "''") + "'")
    if type_ == DATE:
        return leaf(DATE, f"DATE '{rng.randint(1989, 2031)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}'")
    return leaf(BOOL, rng.choice(["TRUE", "FALSE"]))


def sql_type(type_: str) -> str:
    return {INT: "INTEGER", DEC: "DECIMAL(12,2)", DBL: "DOUBLE", STR: "VARCHAR", DATE: "DATE", BOOL: "BOOLEAN"}[type_]


@dataclass
class Scope:
    """Columns visible to an expression: (qualified SQL, Column)."""

    columns: List[Tuple[str, Column]]

    def of(self, type_: str) -> List[str]:
        return [q for q, c in self.columns if c.type == type_]


class Gen:
    """Random well-typed expressions and queries."""

    def __init__(self, rng: random.Random, tables: List[Table], nested: bool = False):
        self.rng = rng
        self.tables = tables
        self.aliases = 0
        # Inside a derived table or CTE: no further nesting.
        self.nested = nested

    def alias(self, prefix: str = "x") -> str:
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    # -- scalar expressions --------------------------------------------------------------------

    def expr(self, scope: Scope, type_: str, depth: int = 0) -> E:
        r = self.rng
        cols = scope.of(type_)
        if depth >= 3 or r.random() < 0.35 + 0.15 * depth:
            if cols and r.random() < 0.8:
                return leaf(type_, r.choice(cols))
            return literal(r, type_)
        d = depth + 1
        if type_ == BOOL:
            return self.predicate(scope, d)
        choice = r.random()
        if choice < 0.12:
            return node(type_, "CASE WHEN {0} THEN {1} ELSE {2} END", self.predicate(scope, d),
                        self.expr(scope, type_, d), self.expr(scope, type_, d), same=(1, 2))
        if choice < 0.2:
            return node(type_, "COALESCE({0}, {1})", self.expr(scope, type_, d), self.expr(scope, type_, d), same=(0, 1))
        if choice < 0.25:
            return node(type_, "NULLIF({0}, {1})", self.expr(scope, type_, d), self.expr(scope, type_, d), same=(0,))
        if type_ == INT:
            op = r.choice(["+", "-", "*", "%", "//"])
            if op in ("%", "//"):
                return node(INT, "({0} " + op + " {1})", self.expr(scope, INT, d), literal(r, INT), same=(0,))
            if r.random() < 0.2:
                fn = r.choice(["abs({0})", "sign({0})", "length({0})", "extract(year FROM {0})", "extract(month FROM {0})",
                               "CAST({0} AS INTEGER)", "CAST({0} AS BIGINT)", "greatest({0}, {1})", "least({0}, {1})"])
                if "length" in fn:
                    return node(INT, fn, self.expr(scope, STR, d))
                if "extract" in fn:
                    return node(INT, fn, self.expr(scope, DATE, d))
                if fn.startswith("CAST"):
                    return node(INT, fn, self.expr(scope, r.choice([INT, DEC, DBL]), d), same=(0,))
                if "{1}" in fn:
                    return node(INT, fn, self.expr(scope, INT, d), self.expr(scope, INT, d), same=(0, 1))
                return node(INT, fn, self.expr(scope, INT, d), same=(0,))
            return node(INT, "({0} " + op + " {1})", self.expr(scope, INT, d), self.expr(scope, INT, d), same=(0, 1))
        if type_ == DEC:
            op = r.choice(["+", "-", "*", "abs", "round", "cast"])
            if op == "abs":
                return node(DEC, "abs({0})", self.expr(scope, DEC, d), same=(0,))
            if op == "round":
                return node(DEC, "round({0}, " + str(r.choice([0, 1, 2])) + ")", self.expr(scope, DEC, d), same=(0,))
            if op == "cast":
                return node(DEC, "CAST({0} AS DECIMAL(12,2))", self.expr(scope, r.choice([INT, DEC]), d), same=(0,))
            if op == "*":
                # Keep products of decimals from overflowing DuckDB's 18-digit rule.
                return node(DEC, "({0} * {1})", self.expr(scope, DEC, d), literal(r, INT), same=(0,))
            return node(DEC, "({0} " + op + " {1})", self.expr(scope, DEC, d), self.expr(scope, r.choice([DEC, INT]), d), same=(0, 1))
        if type_ == DBL:
            op = r.choice(["+", "-", "*", "/", "cast", "sqrt", "abs"])
            if op == "cast":
                return node(DBL, "CAST({0} AS DOUBLE)", self.expr(scope, r.choice(NUMERIC), d), same=(0,))
            if op == "sqrt":
                return node(DBL, "sqrt(abs({0}))", self.expr(scope, DBL, d), same=(0,))
            if op == "abs":
                return node(DBL, "abs({0})", self.expr(scope, DBL, d), same=(0,))
            return node(DBL, "({0} " + op + " {1})", self.expr(scope, DBL, d), self.expr(scope, r.choice(NUMERIC), d), same=(0, 1))
        if type_ == STR:
            fn = r.choice(["upper({0})", "lower({0})", "({0} || {1})", "substr({0}, 2, 2)", "trim({0})", "reverse({0})",
                           "replace({0}, 'a', 'Q')", "CAST({2} AS VARCHAR)", "left({0}, 1)", "concat({0}, {1})", "lpad({0}, 4, '*')"])
            return node(STR, fn, self.expr(scope, STR, d), self.expr(scope, STR, d),
                        self.expr(scope, r.choice([INT, DATE]), d), same=(0, 1))
        if type_ == DATE:
            # DATE ± INTERVAL is a TIMESTAMP in DuckDB, a DATE in ooc (tests/oracle/NOTES.md).
            # No date_trunc: DuckDB 1.4.4 answers `date_trunc('month', x) <> DATE '…'` with TRUE
            # where x is NULL (a column; NULL for a constant), an oracle bug seen here.
            fn = r.choice(["CAST(({0} + INTERVAL 3 DAY) AS DATE)", "CAST(({0} - INTERVAL 1 MONTH) AS DATE)",
                           "last_day({0})", "make_date(extract(year FROM {0}), extract(month FROM {0}), 1)"])
            return node(DATE, fn, self.expr(scope, DATE, d), same=(0,))
        raise AssertionError(type_)

    def predicate(self, scope: Scope, depth: int = 0) -> E:
        r = self.rng
        d = depth + 1
        if depth >= 3:
            return self.comparison(scope, d)
        choice = r.random()
        if choice < 0.15:
            return node(BOOL, "({0} AND {1})", self.predicate(scope, d), self.predicate(scope, d), same=(0, 1))
        if choice < 0.27:
            return node(BOOL, "({0} OR {1})", self.predicate(scope, d), self.predicate(scope, d), same=(0, 1))
        if choice < 0.32:
            return node(BOOL, "(NOT {0})", self.predicate(scope, d), same=(0,))
        if choice < 0.4:
            t = r.choice([INT, DEC, DBL, STR, DATE, BOOL])
            return node(BOOL, "({0} IS " + r.choice(["", "NOT "]) + "NULL)", self.expr(scope, t, d))
        if choice < 0.48:
            t = r.choice([INT, STR, DEC, DATE])
            items = [literal(r, t) for _ in range(r.randint(1, 4))]
            fmt = "({0} " + r.choice(["IN", "NOT IN"]) + " (" + ", ".join("{%d}" % (i + 1) for i in range(len(items))) + "))"
            return node(BOOL, fmt, self.expr(scope, t, d), *items)
        if choice < 0.54:
            t = r.choice([INT, DEC, DATE, STR])
            return node(BOOL, "({0} " + r.choice(["", "NOT "]) + "BETWEEN {1} AND {2})", self.expr(scope, t, d),
                        literal(r, t), literal(r, t))
        if choice < 0.6:
            pattern = r.choice(["'a%'", "'%b'", "'%'", "'_'", "'a_c'", "'%ü%'", "''"])
            return node(BOOL, "({0} " + r.choice(["LIKE", "NOT LIKE", "ILIKE"]) + " " + pattern + ")", self.expr(scope, STR, d))
        if choice < 0.64:
            t = r.choice([INT, STR, DATE])
            return node(BOOL, "({0} IS " + r.choice(["", "NOT "]) + "DISTINCT FROM {1})", self.expr(scope, t, d), self.expr(scope, t, d))
        if choice < 0.68 and scope.of(BOOL):
            return leaf(BOOL, r.choice(scope.of(BOOL)))
        return self.comparison(scope, d)

    def comparison(self, scope: Scope, depth: int) -> E:
        r = self.rng
        t = r.choice([INT, INT, DEC, DBL, STR, DATE])
        op = r.choice(["=", "<>", "<", "<=", ">", ">="])
        if t in NUMERIC and r.random() < 0.4:
            other = r.choice(NUMERIC)
        else:
            other = t
        return node(BOOL, "({0} " + op + " {1})", self.expr(scope, t, depth), self.expr(scope, other, depth))

    # -- aggregates ------------------------------------------------------------------------------

    def aggregate(self, scope: Scope) -> E:
        r = self.rng
        fn = r.choice(["count(*)", "count", "count_distinct", "sum", "avg", "min", "max", "sum", "min", "max"])
        if fn == "count(*)":
            return E(INT, lambda: "count(*)", agg=True)
        if fn in ("count", "count_distinct"):
            arg = self.expr(scope, r.choice([INT, STR, DATE, DEC, BOOL]), 1)
            fmt = "count({0})" if fn == "count" else "count(DISTINCT {0})"
            return node(INT, fmt, arg, agg=True)
        if fn in ("sum", "avg"):
            t = r.choice([INT, DEC, DBL])
            arg = self.expr(scope, t, 1)
            out = DBL if (fn == "avg" or t == DBL) else (DEC if t == DEC else INT)
            filt = ""
            if r.random() < 0.1:
                p = self.predicate(scope, 2)
                return node(out, fn + "({0}) FILTER (WHERE {1})", arg, p, agg=True)
            return node(out, fn + "({0})" + filt, arg, agg=True)
        t = r.choice([INT, DEC, DBL, STR, DATE])
        return node(t, fn + "({0})", self.expr(scope, t, 1), agg=True)

    # -- FROM clauses ----------------------------------------------------------------------------

    def from_clause(self, allow_join: bool = True) -> Tuple["From", Scope]:
        r = self.rng
        if not self.nested and r.random() < 0.12:
            return self.derived_from()
        base = r.choice(self.tables)
        a = self.alias("t")
        text_parts = [f"{base.name} AS {a}"]
        joins: List[Tuple[str, str]] = []
        scope = Scope([(f"{a}.{c.name}", c) for c in base.columns])
        rows = base.rows
        if allow_join:
            for _ in range(r.choice([0, 0, 1, 1, 2])):
                # Join a table sharing a domain with the columns in scope.
                domains = {c.domain: q for q, c in scope.columns if c.domain}
                candidates = [(t, c) for t in self.tables for c in t.columns if c.domain in domains]
                if not candidates:
                    break
                other, col = r.choice(candidates)
                estimate = rows * other.rows // DOMAIN_VALUES.get(col.domain, 1)
                if estimate > MAX_JOIN_ROWS:
                    continue
                rows = max(rows, estimate)
                b = self.alias("t")
                kind = r.choice(["JOIN", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN", "LEFT JOIN"])
                new_scope = Scope(scope.columns + [(f"{b}.{c.name}", c) for c in other.columns])
                cond = f"{domains[col.domain]} = {b}.{col.name}"
                if r.random() < 0.25:
                    cond += f" AND {self.predicate(new_scope, 2)}"
                joins.append((f"{kind} {other.name} AS {b}", cond))
                scope = new_scope
        return From(text_parts[0], joins), scope


    def derived_from(self) -> Tuple["From", Scope]:
        """A generated query as the FROM item: a derived table, or a CTE named in a WITH
        clause (rendered by the outer query)."""
        inner = gen_query(self.rng, self.tables, nested=True)
        a = self.alias("d")
        columns = [Column(f"c{i}", e.type) for i, e in enumerate(inner.select)]
        scope = Scope([(f"{a}.{c.name}", c) for c in columns])
        if self.rng.random() < 0.5:
            return From(f"({inner.render()}) AS {a}", []), scope
        name = self.alias("cte")
        return From(f"{name} AS {a}", [], with_=(name, inner.render())), scope


@dataclass
class From:
    base: str
    joins: List[Tuple[str, str]]
    with_: Optional[Tuple[str, str]] = None  # (name, query) of a CTE the base reads

    def render(self) -> str:
        return self.base + "".join(f" {j} ON {c}" for j, c in self.joins)


# --------------------------------------------------------------------------------------------
# Queries: clause lists that shrinking can drop from


@dataclass
class Query:
    select: List[E]
    frm: From
    where: List[E] = field(default_factory=list)
    group_by: List[E] = field(default_factory=list)
    having: List[E] = field(default_factory=list)
    distinct: bool = False
    order_all: bool = False  # ORDER BY every output column
    limit: Optional[Tuple[int, int]] = None
    setop: Optional[Tuple[str, "Query"]] = None
    windows: bool = False

    def render(self) -> str:
        cols = ", ".join(f"{e} AS c{i}" for i, e in enumerate(self.select))
        sql = f"SELECT {'DISTINCT ' if self.distinct else ''}{cols} FROM {self.frm.render()}"
        if self.where:
            sql += " WHERE " + " AND ".join(str(p) for p in self.where)
        if self.group_by:
            sql += " GROUP BY " + ", ".join(str(g) for g in self.group_by)
        if self.having:
            sql += " HAVING " + " AND ".join(str(p) for p in self.having)
        if self.setop:
            op, other = self.setop
            sql = f"({sql}) {op} ({other.render()})"
            if self.order_all or self.limit:
                sql = f"SELECT * FROM ({sql}) AS so"
        if self.order_all:
            sql += " ORDER BY " + ", ".join(f"{i + 1}" for i in range(len(self.select)))
        if self.limit:
            n, offset = self.limit
            sql += f" LIMIT {n}" + (f" OFFSET {offset}" if offset else "")
        if self.frm.with_:
            name, body = self.frm.with_
            sql = f"WITH {name} AS ({body}) {sql}"
        return sql

    def ordered(self) -> bool:
        return self.order_all


def gen_query(rng: random.Random, tables: List[Table], signature: Optional[List[str]] = None,
              nested: bool = False) -> Query:
    g = Gen(rng, tables, nested)
    frm, scope = g.from_clause(allow_join=signature is None or rng.random() < 0.5)
    where = [g.predicate(scope) for _ in range(rng.choice([0, 1, 1, 2]))]
    if rng.random() < 0.25 and signature is None:
        where.append(subquery_predicate(g, scope))
    kind = rng.random()
    if kind < 0.4:
        # Aggregate, grouped or not.
        keys = [g.expr(scope, rng.choice([INT, STR, DATE, BOOL, DEC]), 2) for _ in range(rng.choice([0, 1, 1, 2]))]
        if signature is not None:
            keys = [g.expr(scope, t, 2) for t in signature]
            select = list(keys)
        else:
            select = list(keys) + [g.aggregate(scope) for _ in range(rng.randint(1, 3))]
        having = []
        if keys and rng.random() < 0.3:
            a = g.aggregate(scope)
            having.append(node(BOOL, "({0} > {1})", a, literal(rng, a.type if a.type != BOOL else INT)))
        q = Query(select, frm, where, keys, having)
    else:
        types = signature or [rng.choice([INT, INT, DEC, DBL, STR, DATE, BOOL]) for _ in range(rng.randint(1, 4))]
        select = [g.expr(scope, t) for t in types]
        if signature is None and rng.random() < 0.25:
            select.append(window_expr(g, scope))
        q = Query(select, frm, where, distinct=rng.random() < 0.15 and signature is None)
        if signature is None and rng.random() < 0.1:
            select.append(scalar_subquery(g, scope))
    if signature is None:
        if rng.random() < 0.15:
            other = gen_query(rng, tables, [e.type for e in q.select])
            q.setop = (rng.choice(["UNION", "UNION ALL", "INTERSECT", "EXCEPT", "INTERSECT ALL", "EXCEPT ALL"]), other)
        if rng.random() < 0.3:
            q.order_all = True
            if rng.random() < 0.6:
                q.limit = (rng.choice([1, 5, 10, 100]), rng.choice([0, 0, 3]))
    return q


def window_expr(g: Gen, scope: Scope) -> E:
    r = g.rng
    part_type = r.choice([INT, STR, DATE])
    part = g.expr(scope, part_type, 2)
    # A total order inside each partition: every column in scope as the last keys.
    ties = ", ".join(q for q, _ in scope.columns)
    choice = r.choice(["sum", "count", "min", "rank", "row_number", "running", "lag"])
    if choice in ("sum", "count", "min"):
        t = INT if choice == "count" else r.choice([INT, DEC])
        arg = g.expr(scope, t, 2)
        out = DEC if (t == DEC and choice != "count") else INT
        return node(out, choice + "({0}) OVER (PARTITION BY {1})", arg, part)
    if choice == "rank":
        key = g.expr(scope, r.choice([INT, STR, DATE]), 2)
        return node(INT, "rank() OVER (PARTITION BY {0} ORDER BY {1})", part, key)
    if choice == "row_number":
        return node(INT, "row_number() OVER (PARTITION BY {0} ORDER BY " + ties + ")", part)
    if choice == "running":
        arg = g.expr(scope, INT, 2)
        return node(INT, "sum({0}) OVER (PARTITION BY {1} ORDER BY " + ties +
                    " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)", arg, part)
    arg = g.expr(scope, INT, 2)
    return node(INT, "lag({0}) OVER (ORDER BY " + ties + ")", arg)


def inner_select(g: Gen, outer: Scope, type_: str, correlated: bool) -> Tuple[str, str]:
    """A subquery's FROM and WHERE over one table (correlated to the outer scope by a shared
    domain when asked), and one output expression of `type_`."""
    r = g.rng
    table = r.choice(g.tables)
    a = g.alias("s")
    scope = Scope([(f"{a}.{c.name}", c) for c in table.columns])
    where = []
    if r.random() < 0.5:
        where.append(str(g.predicate(scope, 2)))
    if correlated:
        domains = {c.domain: q for q, c in outer.columns if c.domain}
        shared = [(q, c) for q, c in scope.columns if c.domain in domains]
        if shared:
            q, c = r.choice(shared)
            where.append(f"{q} = {domains[c.domain]}")
    out = str(g.expr(scope, type_, 2))
    text = f"FROM {table.name} AS {a}" + (" WHERE " + " AND ".join(where) if where else "")
    return out, text


def subquery_predicate(g: Gen, scope: Scope) -> E:
    r = g.rng
    kind = r.choice(["in", "not in", "exists", "not exists", "scalar"])
    t = r.choice([INT, STR, DATE])
    if kind in ("in", "not in"):
        out, text = inner_select(g, scope, t, correlated=r.random() < 0.3)
        probe = g.expr(scope, t, 2)
        return node(BOOL, "({0} " + kind.upper() + f" (SELECT {out} {text}))", probe)
    if kind in ("exists", "not exists"):
        _, text = inner_select(g, scope, INT, correlated=True)
        return leaf(BOOL, f"({kind.upper()} (SELECT 1 {text}))")
    t = r.choice([INT, DEC])
    out, text = inner_select(g, scope, t, correlated=r.random() < 0.5)
    probe = g.expr(scope, t, 2)
    agg = r.choice(["max", "min", "sum", "count"])
    return node(BOOL, "({0} " + r.choice(["<", ">=", "="]) + f" (SELECT {agg}({out}) {text}))", probe)


def scalar_subquery(g: Gen, scope: Scope) -> E:
    r = g.rng
    t = r.choice([INT, DEC])
    out, text = inner_select(g, scope, t, correlated=True)
    agg = r.choice(["max", "min", "sum", "count"])
    return leaf(INT if agg == "count" else t, f"(SELECT {agg}({out}) {text})")


# --------------------------------------------------------------------------------------------
# Running and comparing


class Engines:
    def __init__(self, tables: Dict[str, pathlib.Path], budget: str):
        import duckdb
        import ooc

        self.ooc = ooc
        self.tables = tables
        self.budget = budget
        self.duck = duckdb.connect()
        self.duck.execute("SET threads TO 2")
        for name, path in tables.items():
            self.duck.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")

    def duckdb(self, sql: str):
        return self.duck.execute(sql).fetchall()

    def run_ooc(self, sql: str, limit: Optional[str]):
        self.ooc.config(memory_limit=limit)
        try:
            return self.ooc.sql(sql, **{n: str(p) for n, p in self.tables.items()}).collect().rows()
        finally:
            self.ooc.config(memory_limit=None)


def canonical(v):
    if isinstance(v, float):
        if math.isnan(v):
            return ("nan",)
        return round(v, 6) + 0.0
    if isinstance(v, decimal.Decimal):
        return float(round(v, 6))
    return v


def compare(ours, theirs, ordered: bool) -> Optional[str]:
    """None when equal, else a description of the first difference."""

    def key(row):
        # Rounded values first (engines differ in the last bits of float sums), then the
        # exact ones, so that rows equal when rounded still sort the same way in both.
        return tuple((v is None, str(type(canonical(v))), canonical(v) if v is not None else 0) for v in row) + \
            tuple((v is None, str(type(v)), v if v is not None else 0) for v in row)

    a, b = list(map(tuple, ours)), list(map(tuple, theirs))
    if not ordered:
        a, b = sorted(a, key=key), sorted(b, key=key)
    if len(a) != len(b):
        return f"{len(a)} rows from ooc, {len(b)} from DuckDB (first: {a[:3]} vs {b[:3]})"
    for i, (ra, rb) in enumerate(zip(a, b)):
        if len(ra) != len(rb):
            return f"row {i}: {ra} vs {rb}"
        for va, vb in zip(ra, rb):
            if not equal(va, vb):
                return f"row {i}: ooc {ra} vs DuckDB {rb}"
    return None


def equal(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        try:
            fa, fb = float(a), float(b)
        except (TypeError, ValueError):
            return False
        if math.isnan(fa) or math.isnan(fb):
            return math.isnan(fa) and math.isnan(fb)
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


# ooc's errors for values an expression cannot hold (see `check`).
VALUE_ERROR = re.compile(r"Overflow happened on: -?\d+ [-+*] -?\d+|cannot cast \S+ to \S+: .* is too (large|small) to store")
# ooc's sum of integers is a BIGINT that fails with this error beyond 2^63; DuckDB's is a
# 128-bit HUGEINT (tests/oracle/NOTES.md).
LIMITATION = re.compile(r"sum -?\d+ does not fit in BIGINT")
# DuckDB 1.4.4 folds `CAST(NULL AS VARCHAR) || x` to an untyped NULL, which a CTE's GROUP BY
# makes INTEGER; string functions on it are then refused (tests/oracle/NOTES.md).
DUCKDB_BINDER_BUG = re.compile(r"No function matches the given name and argument types '[^']*\(INTEGER")


@dataclass
class Outcome:
    kind: str  # ok, both_failed, mismatch
    detail: str = ""


def check(engines: Engines, sql: str, ordered: bool) -> Outcome:
    try:
        expected = engines.duckdb(sql)
        duck_error = None
    except Exception as e:  # noqa: BLE001 - any DuckDB refusal
        expected, duck_error = None, f"{type(e).__name__}: {e}"
    for limit in (None, engines.budget):
        mode = "unlimited" if limit is None else f"under {limit}"
        try:
            ours = engines.run_ooc(sql, limit)
        except Exception as e:  # noqa: BLE001
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            if limit is not None and "resources exhausted" in message and duck_error is None:
                # The named error for a budget too small for the plan: allowed, counted apart.
                return Outcome("budget_too_small", f"{mode}: {message}")
            if duck_error is not None:
                return Outcome("both_failed", f"ooc: {message} | DuckDB: {duck_error}")
            if LIMITATION.search(message):
                # Known and named: see LIMITATION.
                return Outcome("limitation", f"{mode}: ooc: {message}")
            if VALUE_ERROR.search(message):
                # A product that overflows or a cast out of range on real values: DuckDB raises
                # the same when it evaluates that expression on that row, but it skips rows and
                # whole expressions ooc evaluates (filter conjuncts after a semi-join, `x // 0`
                # or `NULL * x` folded, the other side of an empty set operation). Counted
                # apart, as unverified (tests/oracle/NOTES.md, "Evaluation order").
                return Outcome("unverified", f"{mode}: ooc: {message} | DuckDB answered")
            return Outcome("mismatch", f"{mode}: ooc failed ({type(e).__name__}: {message}); DuckDB answered {len(expected)} rows")
        if duck_error is not None:
            if DUCKDB_BINDER_BUG.search(duck_error) and "CAST(NULL AS VARCHAR) ||" in sql:
                return Outcome("oracle_bug", f"{mode}: DuckDB: {duck_error}")
            return Outcome("mismatch", f"{mode}: ooc answered {len(ours)} rows; DuckDB failed ({duck_error})")
        diff = compare(ours, expected, ordered)
        if diff:
            return Outcome("mismatch", f"{mode}: {diff}")
    return Outcome("ok")


def shrink(engines: Engines, q: Query) -> Query:
    """Drop clauses and replace expressions by their operands while the query still mismatches
    (and DuckDB still answers)."""

    def still_bad(candidate: Query) -> bool:
        try:
            sql = candidate.render()
        except Exception:  # noqa: BLE001
            return False
        out = check(engines, sql, candidate.ordered())
        return out.kind == "mismatch"

    def expr_slots(query: Query):
        """(getter, setter) for every expression node in the query."""
        slots = []

        def walk(e: E, set_: Callable[[E], None]):
            slots.append((e, set_))
            for i, c in enumerate(e.children):
                def setter(new, e=e, i=i):
                    e.children[i] = new
                walk(c, setter)

        for lst in (query.select, query.where, query.group_by, query.having):
            for i, e in enumerate(lst):
                def setter(new, lst=lst, i=i):
                    lst[i] = new
                walk(e, setter)
        return slots

    changed = True
    rounds = 0
    while changed and rounds < 20:
        changed = False
        rounds += 1
        # Drop whole clauses.
        for attr in ("setop", "limit"):
            if getattr(q, attr) is not None:
                saved = getattr(q, attr)
                setattr(q, attr, None)
                if still_bad(q):
                    changed = True
                else:
                    setattr(q, attr, saved)
        for attr in ("distinct", "order_all"):
            if getattr(q, attr):
                setattr(q, attr, False)
                if still_bad(q):
                    changed = True
                else:
                    setattr(q, attr, True)
        for lst in (q.where, q.having, q.select, q.frm.joins):
            i = 0
            while i < len(lst):
                if lst is q.select and len(lst) == 1:
                    break
                saved = lst.pop(i)
                if still_bad(q):
                    changed = True
                else:
                    lst.insert(i, saved)
                    i += 1
        # Replace expressions by same-typed operands.
        for e, set_ in expr_slots(q):
            for part in list(e.parts):
                set_(part)
                if still_bad(q):
                    changed = True
                    break
                set_(e)
    return q


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="queries to run")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first query")
    parser.add_argument("--data", default="target/difftest-data", help="where the edge-case tables are written")
    parser.add_argument("--tpch", help="folder of TPC-H Parquet files (nation, region, supplier, customer, orders)")
    parser.add_argument("--budget", default="4MB", help="the memory limit of the second ooc run")
    parser.add_argument("--found", default="target/difftest-found", help="where minimized mismatches are written")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    tables = write_edge_data(pathlib.Path(args.data))
    schemas = list(EDGE)
    if args.tpch:
        for t in TPCH:
            tables[t.name] = pathlib.Path(args.tpch) / f"{t.name}.parquet"
        schemas += TPCH
    engines = Engines(tables, args.budget)
    found = pathlib.Path(args.found)
    counts: Dict[str, int] = {}
    mismatches = []
    started = time.monotonic()
    for n in range(args.n):
        seed = args.seed + n
        rng = random.Random(seed)
        # Edge tables and TPC-H are not joined with each other (no shared domains).
        pool = EDGE if (not args.tpch or rng.random() < 0.7) else TPCH
        q = gen_query(rng, pool)
        sql = q.render()
        if args.verbose:
            print(f"[{seed}] {sql}", flush=True)
        outcome = check(engines, sql, q.ordered())
        counts[outcome.kind] = counts.get(outcome.kind, 0) + 1
        if args.verbose or outcome.kind == "mismatch":
            print(f"[{seed}] {outcome.kind}" + ("" if args.verbose else f": {sql}") +
                  (f"\n    {outcome.detail}" if outcome.detail else ""), flush=True)
        if outcome.kind == "mismatch":
            small = shrink(engines, q)
            small_sql = small.render()
            detail = check(engines, small_sql, small.ordered()).detail
            found.mkdir(parents=True, exist_ok=True)
            (found / f"seed{seed}.sql").write_text(f"-- seed {seed}: {detail}\n{small_sql};\n", encoding="utf-8")
            print(f"    minimized: {small_sql}\n    {detail}", flush=True)
            mismatches.append(seed)
    elapsed = time.monotonic() - started
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{args.n} queries (seeds {args.seed}..{args.seed + args.n - 1}) in {elapsed:.0f} s: {summary}")
    if mismatches:
        print(f"mismatches (minimized in {found}): seeds {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
