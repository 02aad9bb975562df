"""ooc: out-of-core dataframes.

Lazy queries over Parquet files much larger than RAM, run by a streaming Rust engine whose
memory stays within ``ooc.config(memory_limit=...)``: operators that outgrow it spill to disk.

Example:
    >>> import ooc, pyarrow as pa
    >>> lf = ooc.from_arrow(pa.table({"city": ["Oslo", "Lima", "Oslo"], "t": [3, 19, 5]})).lazy()
    >>> lf.group_by("city").agg(ooc.col("t").max().alias("max_t")).sort("city").collect().rows()
    [('Lima', 19), ('Oslo', 5)]
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Union

from . import _ooc
from ._dtypes import (
    Boolean,
    DataType,
    Date,
    Datetime,
    Decimal,
    Float32,
    Float64,
    Int8,
    Int16,
    Int32,
    Int64,
    Null,
    String,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Utf8,
)
from ._expr import Expr, arg_max, arg_min, col, concat_str, corr, cov, len, lit, row_number, when
from ._frame import (
    DataFrame,
    GroupBy,
    LazyFrame,
    concat,
    from_arrow,
    scan_csv,
    scan_ndjson,
    scan_parquet,
    sql,
)
from ._ooc import (
    ColumnNotFoundError,
    ComputeError,
    CorruptFileError,
    InputError,
    InternalError,
    OocError,
    OutputError,
    PlanError,
    QueryCancelledError,
    ResourcesExhaustedError,
    SchemaError,
    SpillError,
    SQLError,
    TableNotFoundError,
)

__version__: str = _ooc.__version__

_UNSET: Any = object()


def config(
    *,
    memory_limit: Union[int, str, None] = _UNSET,
    threads: Optional[int] = _UNSET,
    temp_dir: Optional[str] = _UNSET,
    max_temp_size: Union[int, str, None] = _UNSET,
    batch_size: int = _UNSET,
    max_concurrent_queries: Optional[int] = _UNSET,
) -> Dict[str, Any]:
    """Change the settings every later query runs with, and return them all.

    - ``memory_limit``: the process's budget for query operators, e.g. ``"512MB"``,
      ``"2GB"``, a number of bytes, or ``None`` for no limit. Default: ``OOC_MEMORY_LIMIT``,
      else half of the machine's memory. Operators spill to disk instead of exceeding it;
      queries running at the same time (from threads) share it, each holding at most an
      equal share. Peak RSS stays within the limit plus a fixed overhead (see the README).
    - ``max_concurrent_queries``: most queries that run at once under that budget (default
      4; ``None`` resets): each running query also holds some memory outside its share, so
      later ones wait, in order, until one ends, or until the running ones have all stood
      still for a second (an iterator nobody reads).
    - ``threads``: worker threads (default ``OOC_THREADS``, else all cores; ``None`` resets).
    - ``temp_dir``: where spill files go (default ``OOC_TEMP_DIR``, else the system temp dir).
    - ``max_temp_size``: most bytes of spill files at once (default unlimited).
    - ``batch_size``: rows per batch (default 8192).

    Example:
        >>> import ooc
        >>> ooc.config(memory_limit="256MB")["memory_limit"]
        268435456
        >>> _ = ooc.config(memory_limit=None)
    """
    given = {
        name: value
        for name, value in (
            ("memory_limit", memory_limit),
            ("threads", threads),
            ("temp_dir", temp_dir),
            ("max_temp_size", max_temp_size),
            ("batch_size", batch_size),
            ("max_concurrent_queries", max_concurrent_queries),
        )
        if value is not _UNSET
    }
    if "temp_dir" in given and given["temp_dir"] is not None:
        import os

        given["temp_dir"] = os.fspath(given["temp_dir"])
    return _ooc.config(**given)


def memory_budget() -> Dict[str, Any]:
    """The process's memory budget now, shared by the queries running at the same time.

    Returns ``limit`` (bytes, as set by ``config(memory_limit=...)``), ``reserved`` (bytes the
    running queries' operators hold together), ``peak_reserved`` (the most they held at once
    since the limit was set), ``active_queries``, ``max_running`` (see ``config``'s
    ``max_concurrent_queries``) and ``queries_waited`` (queries that waited for their turn);
    all ``None`` without a limit. Each query holds at most ``limit / active_queries``;
    operators spill beyond their share.

    Example:
        >>> import ooc
        >>> _ = ooc.config(memory_limit="128MB")
        >>> budget = ooc.memory_budget()
        >>> budget["limit"] == 128 * 1024 * 1024, budget["active_queries"]
        (True, 0)
        >>> _ = ooc.config(memory_limit=None)
    """
    return _ooc.memory_budget()


__all__ = [
    "Boolean",
    "ColumnNotFoundError",
    "ComputeError",
    "CorruptFileError",
    "DataFrame",
    "DataType",
    "Date",
    "Datetime",
    "Decimal",
    "Expr",
    "Float32",
    "Float64",
    "GroupBy",
    "InputError",
    "Int16",
    "Int32",
    "Int64",
    "Int8",
    "InternalError",
    "LazyFrame",
    "Null",
    "OocError",
    "OutputError",
    "PlanError",
    "QueryCancelledError",
    "ResourcesExhaustedError",
    "SQLError",
    "SchemaError",
    "SpillError",
    "String",
    "TableNotFoundError",
    "UInt16",
    "UInt32",
    "UInt64",
    "UInt8",
    "Utf8",
    "col",
    "config",
    "memory_budget",
    "from_arrow",
    "len",
    "corr",
    "cov",
    "arg_min",
    "arg_max",
    "lit",
    "concat",
    "concat_str",
    "row_number",
    "scan_csv",
    "scan_ndjson",
    "scan_parquet",
    "sql",
    "when",
]
