"""Expressions: ``col``, ``lit``, ``when`` and the ``Expr`` methods.

An ``Expr`` describes a computation; nothing runs until a ``LazyFrame`` is collected. Each
expression wraps the engine's logical expression, so the dataframe API and SQL build the same
plans. An expression's output name is its alias, else the first column it reads (as in Polars).
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import re
from typing import Any, Iterable, Optional, Sequence

from . import _ooc
from ._dtypes import DataTypeLike, engine_name

_EPOCH = _dt.date(1970, 1, 1)
_EPOCH_DT = _dt.datetime(1970, 1, 1)
_REGEX_META = re.compile(r"[\\.^$|?*+()\[\]{}]")


def _literal(value: Any) -> "_ooc.PyExpr":
    """The engine literal for a Python value."""
    if isinstance(value, Expr):
        return value._e
    if value is None:
        return _ooc.lit("null", None)
    if isinstance(value, bool):
        return _ooc.lit("bool", value)
    if isinstance(value, int):
        return _ooc.lit("int", value)
    if isinstance(value, float):
        return _ooc.lit("float", value)
    if isinstance(value, str):
        return _ooc.lit("str", value)
    if isinstance(value, _decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot use {value!r} as a literal")
        return _ooc.lit("decimal", format(value, "f"))
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        delta = value - _EPOCH_DT
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return _ooc.lit("datetime", micros)
    if isinstance(value, _dt.date):
        return _ooc.lit("date", (value - _EPOCH).days)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _literal(value.item())
    raise TypeError(f"cannot use a {type(value).__name__} as a literal")


def _operand(value: Any) -> "_ooc.PyExpr":
    """An operand: expressions as they are, other values as literals."""
    return _literal(value)


def _to_expr(value: Any) -> "_ooc.PyExpr":
    """A selection: strings name columns, expressions are used as they are."""
    if isinstance(value, str):
        return _ooc.col(value)
    if isinstance(value, Expr):
        return value._e
    raise TypeError(f"expected a column name or an expression, got {type(value).__name__}")


def _to_expr_or_lit(value: Any) -> "_ooc.PyExpr":
    """Strings name columns; other values are literals."""
    if isinstance(value, str):
        return _ooc.col(value)
    return _literal(value)


def _flatten(items: Iterable[Any]) -> list:
    out: list = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.extend(_flatten(item))
        else:
            out.append(item)
    return out


def _ddof(name: str, ddof: int) -> str:
    if ddof == 1:
        return name
    if ddof == 0:
        return name + "_pop"
    raise ValueError(f"{name}() supports ddof=0 (population) or ddof=1 (sample), not {ddof}")


class Expr:
    """A column expression, e.g. ``(col("price") * (1 - col("discount"))).alias("net")``.

    Example:
        >>> import ooc, pyarrow as pa
        >>> df = ooc.from_arrow(pa.table({"a": [1, 2, 3], "b": [10, 20, None]}))
        >>> df.lazy().select((ooc.col("a") * 2 + ooc.col("b")).alias("x")).collect().rows()
        [(12,), (24,), (None,)]
    """

    __slots__ = ("_e",)

    def __init__(self, inner: "_ooc.PyExpr") -> None:
        self._e = inner

    # -- operators -----------------------------------------------------------------------
    def _bin(self, op: str, other: Any) -> "Expr":
        return Expr(self._e.binary(op, _operand(other)))

    def _rbin(self, op: str, other: Any) -> "Expr":
        return Expr(_operand(other).binary(op, self._e))

    def __add__(self, other: Any) -> "Expr":
        return self._bin("+", other)

    def __radd__(self, other: Any) -> "Expr":
        return self._rbin("+", other)

    def __sub__(self, other: Any) -> "Expr":
        return self._bin("-", other)

    def __rsub__(self, other: Any) -> "Expr":
        return self._rbin("-", other)

    def __mul__(self, other: Any) -> "Expr":
        return self._bin("*", other)

    def __rmul__(self, other: Any) -> "Expr":
        return self._rbin("*", other)

    def __truediv__(self, other: Any) -> "Expr":
        return self._bin("/", other)

    def __rtruediv__(self, other: Any) -> "Expr":
        return self._rbin("/", other)

    def __mod__(self, other: Any) -> "Expr":
        return self._bin("%", other)

    def __rmod__(self, other: Any) -> "Expr":
        return self._rbin("%", other)

    def __eq__(self, other: Any) -> "Expr":  # type: ignore[override]
        return self._bin("==", other)

    def __ne__(self, other: Any) -> "Expr":  # type: ignore[override]
        return self._bin("!=", other)

    def __lt__(self, other: Any) -> "Expr":
        return self._bin("<", other)

    def __le__(self, other: Any) -> "Expr":
        return self._bin("<=", other)

    def __gt__(self, other: Any) -> "Expr":
        return self._bin(">", other)

    def __ge__(self, other: Any) -> "Expr":
        return self._bin(">=", other)

    def __and__(self, other: Any) -> "Expr":
        return self._bin("&", other)

    def __rand__(self, other: Any) -> "Expr":
        return self._rbin("&", other)

    def __or__(self, other: Any) -> "Expr":
        return self._bin("|", other)

    def __ror__(self, other: Any) -> "Expr":
        return self._rbin("|", other)

    def __invert__(self) -> "Expr":
        return Expr(self._e.not_())

    def __neg__(self) -> "Expr":
        return Expr(self._e.neg())

    def __pos__(self) -> "Expr":
        return self

    def __abs__(self) -> "Expr":
        return self.abs()

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of an Expr is ambiguous: use & and | instead of 'and' and 'or', "
            "and .is_between() instead of chained comparisons"
        )

    def __repr__(self) -> str:
        return f"<Expr {self._e!r}>"

    # -- naming, types, NULLs ----------------------------------------------------------------
    def alias(self, name: str) -> "Expr":
        """Name the expression's output column."""
        return Expr(self._e.alias(name))

    def cast(self, dtype: DataTypeLike) -> "Expr":
        """Convert to ``dtype`` with SQL ``CAST`` semantics (floats to integers round).

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"a": [1.4, 2.6]}))
            >>> df.lazy().select(ooc.col("a").cast(ooc.Int64)).collect().rows()
            [(1,), (3,)]
        """
        return Expr(self._e.cast(engine_name(dtype)))

    def is_null(self) -> "Expr":
        """True where the value is NULL."""
        return Expr(self._e.is_null())

    def is_not_null(self) -> "Expr":
        """True where the value is not NULL."""
        return Expr(self._e.is_not_null())

    def fill_null(self, value: Any) -> "Expr":
        """Replace NULLs by ``value`` (a literal or an expression).

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"a": [1, None]}))
            >>> df.lazy().select(ooc.col("a").fill_null(0)).collect().rows()
            [(1,), (0,)]
        """
        return Expr(self._e.fill_null(_operand(value)))

    def is_in(self, values: Sequence[Any]) -> "Expr":
        """True where the value equals one of ``values`` (SQL ``IN``)."""
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError("is_in() takes a list of values")
        return Expr(self._e.is_in([_operand(v) for v in values]))

    def is_between(self, lower: Any, upper: Any, closed: str = "both") -> "Expr":
        """True where ``lower <= value <= upper``; ``closed`` is both, left, right or none.

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"a": [1, 2, 3]}))
            >>> df.lazy().filter(ooc.col("a").is_between(2, 3)).collect().rows()
            [(2,), (3,)]
        """
        return Expr(self._e.is_between(_operand(lower), _operand(upper), closed))

    def not_(self) -> "Expr":
        """Boolean negation (same as ``~expr``)."""
        return Expr(self._e.not_())

    def abs(self) -> "Expr":
        """Absolute value."""
        return Expr(self._e.abs())

    def round(self, decimals: int = 0) -> "Expr":
        """Round to ``decimals`` digits."""
        return Expr(self._e.round(decimals))

    # -- aggregates --------------------------------------------------------------------------
    def sum(self) -> "Expr":
        """Sum of the non-NULL values (exact for integers and decimals).

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"k": ["x", "x", "y"], "v": [1, 2, 5]}))
            >>> df.lazy().group_by("k").agg(ooc.col("v").sum()).sort("k").collect().rows()
            [('x', 3), ('y', 5)]
        """
        return Expr(self._e.agg("sum"))

    def mean(self) -> "Expr":
        """Average of the non-NULL values, as Float64."""
        return Expr(self._e.agg("mean"))

    def min(self) -> "Expr":
        """Smallest non-NULL value."""
        return Expr(self._e.agg("min"))

    def max(self) -> "Expr":
        """Largest non-NULL value."""
        return Expr(self._e.agg("max"))

    def std(self, ddof: int = 1) -> "Expr":
        """Standard deviation of the non-NULL values: the sample's (``ddof=1``) or the
        population's (``ddof=0``), as Float64."""
        return Expr(self._e.agg(_ddof("std", ddof)))

    def var(self, ddof: int = 1) -> "Expr":
        """Variance of the non-NULL values (``ddof`` as for ``std``), as Float64."""
        return Expr(self._e.agg(_ddof("var", ddof)))

    def median(self) -> "Expr":
        """The median of the non-NULL values (the mean of the middle two for an even count),
        exact: computed by sorting, so it spills instead of holding a group's values.

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"g": ["a", "a", "a", "b"], "x": [1, 5, 2, 4]}))
            >>> df.lazy().group_by("g").agg(ooc.col("x").median()).sort("g").collect().rows()
            [('a', 2.0), ('b', 4.0)]
        """
        return Expr(self._e.agg("median"))

    def quantile(self, quantile: float, interpolation: str = "nearest") -> "Expr":
        """The ``quantile`` (0 to 1) of the non-NULL values, exact (see ``median``). With ``h =
        (n - 1) * quantile`` over the sorted values: ``nearest`` takes the value at the rank
        nearest ``h``, ``lower``/``higher`` the one below/above it, ``midpoint`` their mean and
        ``linear`` interpolates (SQL's ``quantile_cont``); ``equiprobable`` is SQL's
        ``quantile_disc``.

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"x": [1, 2, 3, 4, 10]}))
            >>> df.lazy().select(ooc.col("x").quantile(0.875, "linear")).collect().rows()
            [(7.0,)]
        """
        return Expr(self._e.quantile(float(quantile), interpolation))

    def count(self) -> "Expr":
        """Number of non-NULL values (``ooc.len()`` counts rows)."""
        return Expr(self._e.agg("count"))

    def n_unique(self) -> "Expr":
        """Number of distinct values; NULL counts as one value when present.

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"a": [1, 1, 2, None]}))
            >>> df.lazy().select(ooc.col("a").n_unique()).collect().rows()
            [(3,)]
        """
        return Expr(self._e.agg("n_unique"))

    def approx_n_unique(self) -> "Expr":
        """Number of distinct values, estimated with a HyperLogLog sketch (standard error about
        0.8%, near exact for small counts) in a fixed, small amount of memory per group; NULL
        counts as one value when present, as in ``n_unique``.

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"a": [1, 1, 2, None]}))
            >>> df.lazy().select(ooc.col("a").approx_n_unique()).collect().rows()
            [(3,)]
        """
        return Expr(self._e.agg("approx_n_unique"))

    def first(self) -> "Expr":
        """The value of each group's first row, NULL included.

        Rows reach the aggregate in file order with ``threads=1``; with several threads the
        partitions of a scan interleave, so "first" is a row of the group but not always
        the first in the file. Sort and use ``min``/``max`` where the order matters.
        """
        return Expr(self._e.agg("first"))

    def last(self) -> "Expr":
        """The value of each group's last row (see ``first`` for the order)."""
        return Expr(self._e.agg("last"))

    # -- windows -----------------------------------------------------------------------------
    def over(
        self,
        partition_by: Any = None,
        *more_partition_by: Any,
        order_by: Any = None,
        descending: bool = False,
        nulls_last: bool = True,
    ) -> "Expr":
        """Compute this expression per group of ``partition_by``, keeping every row:
        aggregates in it are over the row's whole group; order-dependent functions
        (``shift``, ``cum_sum``, ``rolling_mean``, ...) follow ``order_by``. With no
        ``partition_by``, the whole input is one group.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"g": ["a", "a", "b"], "t": [1, 2, 1], "v": [1, 2, 5]})).lazy()
            >>> lf.with_columns(
            ...     total=ooc.col("v").sum().over("g"),
            ...     previous=ooc.col("v").shift(1).over("g", order_by="t"),
            ... ).sort("g", "t").collect().rows()
            [('a', 1, 1, 3, None), ('a', 2, 2, 3, 1), ('b', 1, 5, 5, None)]
        """
        keys = [] if partition_by is None else _flatten([partition_by, *more_partition_by])
        order = [] if order_by is None else _flatten([order_by])
        return Expr(
            self._e.over(
                [_to_expr(k) for k in keys],
                [_to_expr(o) for o in order],
                descending,
                nulls_last,
            )
        )

    def rank(self, method: str = "average", *, descending: bool = False) -> "Expr":
        """Rank of each value (1 for the smallest; NULL stays NULL), over the whole input
        or per group with ``.over(...)``. Ties: ``average`` (Float64), ``min``, ``max``,
        ``dense`` (no gaps) or ``ordinal`` (ties in no particular order), as UInt32.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"v": [10, 20, 20, None]})).lazy()
            >>> lf.select(ooc.col("v"), r=ooc.col("v").rank("min")).sort("v").collect().rows()
            [(None, None), (10, 1), (20, 2), (20, 2)]
        """
        return Expr(self._e.rank(method, descending))

    def cum_sum(self) -> "Expr":
        """Running sum, in the order of ``.over(..., order_by=...)``."""
        return Expr(self._e.cumulative("sum"))

    def cum_min(self) -> "Expr":
        """Running minimum, in the order of ``.over(..., order_by=...)``."""
        return Expr(self._e.cumulative("min"))

    def cum_max(self) -> "Expr":
        """Running maximum, in the order of ``.over(..., order_by=...)``."""
        return Expr(self._e.cumulative("max"))

    def cum_count(self) -> "Expr":
        """Running count of non-NULL values, in the order of ``.over(..., order_by=...)``."""
        return Expr(self._e.cumulative("count"))

    def shift(self, n: int = 1, *, fill_value: Any = None) -> "Expr":
        """The value ``n`` rows before (after, for a negative ``n``) in the order of
        ``.over(..., order_by=...)``; ``fill_value`` (default NULL) where there is none."""
        fill = None if fill_value is None else _to_expr_or_lit(fill_value)
        return Expr(self._e.shift(n, fill))

    def _rolling(self, func: str, window_size: int, min_samples: Optional[int]) -> "Expr":
        return Expr(self._e.rolling(func, window_size, min_samples))

    def rolling_mean(self, window_size: int, min_samples: Optional[int] = None) -> "Expr":
        """Mean of the current row and the ``window_size - 1`` before it (in the order of
        ``.over(..., order_by=...)``); NULL until ``min_samples`` (default ``window_size``)
        of them are not NULL."""
        return self._rolling("mean", window_size, min_samples)

    def rolling_sum(self, window_size: int, min_samples: Optional[int] = None) -> "Expr":
        """Sum over a sliding window (see ``rolling_mean``)."""
        return self._rolling("sum", window_size, min_samples)

    def rolling_min(self, window_size: int, min_samples: Optional[int] = None) -> "Expr":
        """Minimum over a sliding window (see ``rolling_mean``)."""
        return self._rolling("min", window_size, min_samples)

    def rolling_max(self, window_size: int, min_samples: Optional[int] = None) -> "Expr":
        """Maximum over a sliding window (see ``rolling_mean``)."""
        return self._rolling("max", window_size, min_samples)

    def rolling_std(self, window_size: int, min_samples: Optional[int] = None) -> "Expr":
        """Sample standard deviation over a sliding window (see ``rolling_mean``)."""
        return self._rolling("std", window_size, min_samples)

    def rolling_var(self, window_size: int, min_samples: Optional[int] = None) -> "Expr":
        """Sample variance over a sliding window (see ``rolling_mean``)."""
        return self._rolling("var", window_size, min_samples)

    # -- namespaces --------------------------------------------------------------------------
    @property
    def str(self) -> "StringNamespace":
        """String functions: ``contains``, ``starts_with``, ``to_uppercase``, ..."""
        return StringNamespace(self)

    @property
    def dt(self) -> "DateTimeNamespace":
        """Date parts: ``year``, ``month``, ``day``, ..."""
        return DateTimeNamespace(self)

    @property
    def meta_output_name(self) -> str:
        """The name of the column this expression produces."""
        return self._e.output_name()


class StringNamespace:
    """``expr.str``: string functions."""

    def __init__(self, expr: Expr) -> None:
        self._expr = expr

    def _call(self, name: str, *args: Any) -> Expr:
        return Expr(self._expr._e.str_fn(name, [_operand(a) for a in args]))

    def join(self, delimiter: str = "") -> Expr:
        """An aggregate: the group's non-NULL strings joined by ``delimiter`` (SQL's
        ``string_agg``), in the order rows arrive (sort first for a fixed order with one
        thread; SQL's ``string_agg(x, sep ORDER BY k)`` orders within the group).

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"g": [1, 1, 2], "s": ["a", None, "c"]}))
            >>> df.lazy().group_by("g").agg(ooc.col("s").str.join("-")).sort("g").collect().rows()
            [(1, 'a'), (2, 'c')]
        """
        return Expr(_ooc.aggregate2("string_agg", self._expr._e, _literal(delimiter)))

    def contains(self, pattern: str, literal: bool = False) -> Expr:
        """True where ``pattern`` (a regular expression, or plain text with ``literal=True``)
        occurs in the string.

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"s": ["apple", "banana", "cherry"]}))
            >>> df.lazy().filter(ooc.col("s").str.contains("an+a")).collect().rows()
            [('banana',)]
        """
        if literal or not _REGEX_META.search(pattern):
            return self._call("contains", pattern)
        return self._call("regex", pattern)

    def starts_with(self, prefix: str) -> Expr:
        """True where the string starts with ``prefix``."""
        return self._call("starts_with", prefix)

    def ends_with(self, suffix: str) -> Expr:
        """True where the string ends with ``suffix``."""
        return self._call("ends_with", suffix)

    def to_uppercase(self) -> Expr:
        """Upper-case the string."""
        return self._call("upper")

    def to_lowercase(self) -> Expr:
        """Lower-case the string."""
        return self._call("lower")

    def len_chars(self) -> Expr:
        """Length in characters."""
        return self._call("len")

    def strip_chars(self) -> Expr:
        """Remove leading and trailing whitespace."""
        return self._call("strip")

    def slice(self, offset: int, length: Optional[int] = None) -> Expr:
        """``length`` characters starting at 0-based ``offset`` (to the end when omitted).

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"s": ["abcdef"]}))
            >>> df.lazy().select(ooc.col("s").str.slice(1, 3)).collect().rows()
            [('bcd',)]
        """
        if offset < 0:
            raise ValueError("str.slice() needs a non-negative offset")
        if length is None:
            return self._call("slice", offset + 1)
        if length < 0:
            raise ValueError("str.slice() needs a non-negative length")
        return self._call("slice", offset + 1, length)


class DateTimeNamespace:
    """``expr.dt``: parts of dates and timestamps (as Int64)."""

    def __init__(self, expr: Expr) -> None:
        self._expr = expr

    def _part(self, name: str) -> Expr:
        return Expr(self._expr._e.dt_part(name))

    def year(self) -> Expr:
        """The calendar year.

        Example:
            >>> import ooc, pyarrow as pa, datetime
            >>> df = ooc.from_arrow(pa.table({"d": [datetime.date(1995, 3, 15)]}))
            >>> d = ooc.col("d")
            >>> df.lazy().select(d.dt.year(), d.dt.month().alias("m"), d.dt.day().alias("x")).collect().rows()
            [(1995, 3, 15)]
        """
        return self._part("year")

    def quarter(self) -> Expr:
        """The quarter, 1 to 4."""
        return self._part("quarter")

    def month(self) -> Expr:
        """The month, 1 to 12."""
        return self._part("month")

    def week(self) -> Expr:
        """The ISO week number."""
        return self._part("week")

    def day(self) -> Expr:
        """The day of the month."""
        return self._part("day")

    def weekday(self) -> Expr:
        """The ISO day of the week: Monday is 1, Sunday is 7."""
        sunday0 = self._part("weekday")
        return ((sunday0 + 6) % 7) + 1

    def ordinal_day(self) -> Expr:
        """The day of the year, 1 to 366."""
        return self._part("ordinal_day")

    def hour(self) -> Expr:
        """The hour of a timestamp."""
        return self._part("hour")

    def minute(self) -> Expr:
        """The minute of a timestamp."""
        return self._part("minute")

    def second(self) -> Expr:
        """The second of a timestamp."""
        return self._part("second")


def col(name: str) -> Expr:
    """A reference to column ``name``.

    Example:
        >>> import ooc, pyarrow as pa
        >>> df = ooc.from_arrow(pa.table({"a": [3, 1, 2]}))
        >>> df.lazy().filter(ooc.col("a") > 1).sort("a").collect().rows()
        [(2,), (3,)]
    """
    if not isinstance(name, str):
        raise TypeError(f"col() takes a column name, not {type(name).__name__}")
    return Expr(_ooc.col(name))


def lit(value: Any, dtype: Optional[DataTypeLike] = None) -> Expr:
    """A constant: ``None``, bool, int, float, str, ``datetime.date``, ``datetime.datetime``
    or ``decimal.Decimal`` (kept exact), optionally cast to ``dtype``.

    Example:
        >>> import ooc, pyarrow as pa, decimal
        >>> df = ooc.from_arrow(pa.table({"a": [1]}))
        >>> df.lazy().select(ooc.lit(decimal.Decimal("0.10")).alias("d")).collect().rows()
        [(Decimal('0.10'),)]
    """
    e = Expr(_literal(value))
    return e.cast(dtype) if dtype is not None else e


def len() -> Expr:  # noqa: A001 - the name users know from Polars
    """The number of rows (``count(*)``), named ``len``.

    Example:
        >>> import ooc, pyarrow as pa
        >>> df = ooc.from_arrow(pa.table({"a": [1, None, 3]}))
        >>> df.lazy().select(ooc.len()).collect().rows()
        [(3,)]
    """
    return Expr(_ooc.count_rows()).alias("len")


def corr(a: Any, b: Any) -> Expr:
    """Pearson's correlation of two columns over the rows where both are non-NULL (NaN when
    one of them does not vary).

    Example:
        >>> import ooc, pyarrow as pa
        >>> df = ooc.from_arrow(pa.table({"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0, 6.5]}))
        >>> round(df.lazy().select(ooc.corr("a", "b")).collect().rows()[0][0], 4)
        0.9979
    """
    return Expr(_ooc.aggregate2("corr", _to_expr(a), _to_expr(b))).alias("corr")


def cov(a: Any, b: Any, ddof: int = 1) -> Expr:
    """The covariance of two columns over the rows where both are non-NULL: the sample's
    (``ddof=1``) or the population's (``ddof=0``)."""
    return Expr(_ooc.aggregate2("cov", _to_expr(a), _to_expr(b), ddof)).alias("cov")


def arg_min(arg: Any, by: Any) -> Expr:
    """``arg`` of the row with the smallest ``by`` (rows where either is NULL are skipped;
    ties go to the smallest ``arg``); SQL's ``arg_min(arg, by)``."""
    return Expr(_ooc.aggregate2("arg_min", _to_expr(arg), _to_expr(by)))


def arg_max(arg: Any, by: Any) -> Expr:
    """``arg`` of the row with the largest ``by`` (ties: the largest ``arg``)."""
    return Expr(_ooc.aggregate2("arg_max", _to_expr(arg), _to_expr(by)))


def row_number() -> Expr:
    """1, 2, 3, ... in the order of ``.over(partition_by, order_by=...)`` (an order is
    required: ooc's streams have no row order of their own); SQL's ``row_number()``.

    Example:
        >>> import ooc, pyarrow as pa
        >>> lf = ooc.from_arrow(pa.table({"g": ["a", "a", "b"], "t": [2, 1, 5]})).lazy()
        >>> lf.with_columns(n=ooc.row_number().over("g", order_by="t")).sort("g", "t").collect().rows()
        [('a', 1, 1), ('a', 2, 2), ('b', 5, 1)]
    """
    return Expr(_ooc.row_number()).alias("row_number")


def concat_str(exprs: Any, *more_exprs: Any, separator: str = "", ignore_nulls: bool = False) -> Expr:
    """The values of the expressions as strings, joined by ``separator``: NULL where one
    of them is NULL, or with ``ignore_nulls`` the non-NULL ones only (an empty string when
    there are none), as in Polars. Strings given are column names.

    Example:
        >>> import ooc, pyarrow as pa
        >>> lf = ooc.from_arrow(pa.table({"a": ["x", None], "b": [1, 2]})).lazy()
        >>> lf.select(ooc.concat_str("a", "b", separator="-").alias("s"),
        ...           ooc.concat_str(["a", "b"], separator="-", ignore_nulls=True).alias("t")).collect().rows()
        [('x-1', 'x-1'), (None, '2')]
    """
    items = _flatten([exprs, *more_exprs])
    if not items:
        raise ValueError("concat_str() needs at least one expression")
    joined = Expr(_ooc.concat_str([_to_expr(e) for e in items], separator, ignore_nulls))
    # Named after the first column, as in Polars.
    return joined.alias(items[0]) if isinstance(items[0], str) else joined


class When:
    """``when(condition)``: call ``.then(value)`` next."""

    def __init__(self, conditions: list, values: list, condition: Any) -> None:
        self._conditions = conditions
        self._values = values
        self._condition = _operand(condition)

    def then(self, value: Any) -> "Then":
        """The value where the condition is true (a string names a column, as in Polars;
        use ``lit("text")`` for text)."""
        return Then(self._conditions + [self._condition], self._values + [_to_expr_or_lit(value)])


class Then(Expr):
    """A ``when/then`` chain: ``.when()`` adds a branch, ``.otherwise()`` sets the default.
    Used as an expression directly, rows that match no branch are NULL."""

    __slots__ = ("_conditions", "_values")

    def __init__(self, conditions: list, values: list) -> None:
        super().__init__(_ooc.when_then(conditions, values, None))
        self._conditions = conditions
        self._values = values

    def when(self, condition: Any) -> When:
        """Another branch, tried when the earlier ones are not true."""
        return When(self._conditions, self._values, condition)

    def otherwise(self, value: Any) -> Expr:
        """The value where no branch is true (a string names a column)."""
        return Expr(_ooc.when_then(self._conditions, self._values, _to_expr_or_lit(value)))


def when(condition: Any) -> When:
    """Start a conditional expression (SQL ``CASE WHEN``).

    Example:
        >>> import ooc, pyarrow as pa
        >>> df = ooc.from_arrow(pa.table({"a": [1, 5, 10]}))
        >>> size = ooc.when(ooc.col("a") < 3).then(ooc.lit("small")).when(ooc.col("a") < 8).then(ooc.lit("medium")).otherwise(ooc.lit("large"))
        >>> df.lazy().select(size.alias("size")).collect().rows()
        [('small',), ('medium',), ('large',)]
    """
    return When([], [], condition)
