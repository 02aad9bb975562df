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

from typing import Any, Dict, List, Optional, Sequence, Union

from . import _ooc
from . import cache
from . import distributed
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
    memory_report,
    persisted,
    scan_csv,
    scan_ndjson,
    scan_parquet,
    sql,
)
from ._profile import MemoryProfile
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
    ReleasedError,
    ResourcesExhaustedError,
    SchemaError,
    SpillError,
    SQLError,
    TableNotFoundError,
)

__version__: str = _ooc.__version__

# The exception classes live in the extension module; named as `ooc.X` they pickle by
# reference, so that an error raised by a task on a worker process (Dask, a process pool)
# reaches the caller as the same `ooc` exception the query would raise here.
for _cls in vars(_ooc).values():
    if isinstance(_cls, type) and issubclass(_cls, OocError):
        _cls.__module__ = "ooc"
del _cls

_UNSET: Any = object()


def config(
    *,
    memory_limit: Union[int, str, None] = _UNSET,
    threads: Optional[int] = _UNSET,
    temp_dir: Optional[str] = _UNSET,
    max_temp_size: Union[int, str, None] = _UNSET,
    batch_size: int = _UNSET,
    max_concurrent_queries: Optional[int] = _UNSET,
    use_indexes: bool = _UNSET,
    index_dir: Optional[str] = _UNSET,
    cache: bool = _UNSET,
    cache_dir: Optional[str] = _UNSET,
    cache_max_size: Union[int, str, None] = _UNSET,
    cache_min_time: Optional[float] = _UNSET,
    cache_compression: bool = _UNSET,
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
    - ``use_indexes``: whether scans use the secondary indexes of their files (built by
      ``create_index``; default True).
    - ``index_dir``: where scans (and ``create_index``) look for index sidecars first, for
      data one cannot write next to (default ``OOC_INDEX_DIR``, else none).
    - ``cache``: whether ``collect()`` (and ``explain``) use the result cache (default
      ``OOC_CACHE``, else False); ``collect(cache=...)`` decides for one query. See
      ``ooc.cache``.
    - ``cache_dir``: the cache's directory (default ``OOC_CACHE_DIR``, else the user cache
      directory, e.g. ``~/.cache/ooc``).
    - ``cache_max_size``: its size bound (default ``OOC_CACHE_MAX_SIZE``, else the smaller
      of 10 GB and a tenth of the free disk).
    - ``cache_min_time``: results computed in fewer seconds are not stored (default 0.1).
    - ``cache_compression``: compress new entries with zstd (default False: entries are
      mapped without a copy when read).

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
            ("use_indexes", use_indexes),
            ("index_dir", index_dir),
            ("cache", cache),
            ("cache_dir", cache_dir),
            ("cache_max_size", cache_max_size),
            ("cache_min_time", cache_min_time),
            ("cache_compression", cache_compression),
        )
        if value is not _UNSET
    }
    import os

    for key in ("temp_dir", "index_dir", "cache_dir"):
        if key in given and given[key] is not None:
            given[key] = os.fspath(given[key])
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


def create_index(
    path: Union[str, "os.PathLike[str]"],
    columns: Union[str, Sequence[str]],
    *,
    index_dir: Union[str, "os.PathLike[str]", None] = None,
    memory_limit: Union[int, str, None] = None,
) -> List[Dict[str, Any]]:
    """Build secondary indexes of ``columns`` for every Parquet file at ``path``.

    ``path`` is a file, a glob or a directory, as in ``scan_parquet``. Each file gets a sidecar
    beside it (or in ``index_dir``, for read-only data) holding, per distinct value, the rows
    that hold it. Later queries that filter an indexed column with ``==``, ``is_in``, ranges,
    ``is_null`` or ``LIKE 'prefix%'`` read only the rows that match. An index of a file changed
    after indexing is ignored (the file is scanned), never used. The build sorts under
    ``memory_limit`` (default: ``config``'s), spilling to ``config``'s ``temp_dir``. Columns
    already indexed are rebuilt, others kept.

    Returns one dict per file: ``data_file``, ``sidecar``, ``bytes`` and ``columns`` (each with
    ``name``, ``type``, ``distinct``, ``rows``, ``nulls``, ``bytes``).

    Example:
        >>> import ooc, tempfile, pyarrow as pa, pyarrow.parquet as pq
        >>> d = tempfile.mkdtemp()
        >>> pq.write_table(pa.table({"k": list(range(1000)) * 10}), d + "/t.parquet")
        >>> [c["distinct"] for c in ooc.create_index(d, "k")[0]["columns"]]
        [1000]
        >>> ooc.scan_parquet(d).filter(ooc.col("k") == 7).select(ooc.len()).collect().to_dicts()
        [{'len': 10}]
    """
    import os

    cols = [columns] if isinstance(columns, str) else list(columns)
    return _ooc.create_index(
        os.fspath(path), cols, None if index_dir is None else os.fspath(index_dir), memory_limit
    )


def list_indexes(
    path: Union[str, "os.PathLike[str]"], *, index_dir: Union[str, "os.PathLike[str]", None] = None
) -> List[Dict[str, Any]]:
    """The secondary indexes of the Parquet files at ``path``: one dict per file, as
    ``create_index`` returns, with ``sidecar`` None for a file without one and ``ignored``
    saying why a stale or damaged sidecar is not used."""
    import os

    return _ooc.list_index(os.fspath(path), None if index_dir is None else os.fspath(index_dir))


def drop_index(
    path: Union[str, "os.PathLike[str]"],
    columns: Union[str, Sequence[str], None] = None,
    *,
    index_dir: Union[str, "os.PathLike[str]", None] = None,
) -> List[Dict[str, Any]]:
    """Remove the indexes of ``columns`` (all of them when None) of the Parquet files at
    ``path``; a sidecar left without columns is deleted. Returns what remains per file."""
    import os

    cols = None if columns is None else ([columns] if isinstance(columns, str) else list(columns))
    return _ooc.drop_index(os.fspath(path), cols, None if index_dir is None else os.fspath(index_dir))


__all__ = [
    "Boolean",
    "cache",
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
    "MemoryProfile",
    "Null",
    "OocError",
    "OutputError",
    "PlanError",
    "QueryCancelledError",
    "ReleasedError",
    "memory_report",
    "persisted",
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
    "create_index",
    "drop_index",
    "list_indexes",
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
