"""``LazyFrame`` (a query plan), ``DataFrame`` (a collected result) and the entry points
``scan_parquet``, ``sql`` and ``from_arrow``.

A ``LazyFrame`` never holds data: every method returns a new plan, and only ``collect()``,
``iter_batches()``, ``sink_*()`` and ``explain(analyze=True)`` run it, in the engine, with the
GIL released and within ``ooc.config(memory_limit=...)``.
"""

from __future__ import annotations

import os
import sys
import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _ooc
from ._dtypes import DataType, from_engine_name
from ._expr import Expr, _flatten, _literal, _to_expr, col

PathLike = Union[str, "os.PathLike[str]"]

if TYPE_CHECKING:
    from ._profile import MemoryProfile


def _exprs(items: Sequence[Any], named: Dict[str, Any]) -> list:
    out = [_to_expr(e) for e in _flatten(items)]
    for name, value in named.items():
        e = value._e if isinstance(value, Expr) else _literal(value)
        out.append(e.alias(name))
    return out


class LazyFrame:
    """A lazy query over Parquet files, Arrow data or SQL.

    Example:
        >>> import ooc, pyarrow as pa
        >>> lf = ooc.from_arrow(pa.table({"k": ["a", "b", "a"], "v": [1, 2, 3]})).lazy()
        >>> q = lf.filter(ooc.col("v") > 1).group_by("k").agg(ooc.col("v").sum().alias("total"))
        >>> q.sort("k").collect().rows()
        [('a', 3), ('b', 2)]
    """

    __slots__ = ("_lf",)

    def __init__(self, inner: "_ooc.PyLazyFrame") -> None:
        self._lf = inner

    # -- transformations ---------------------------------------------------------------------
    def select(self, *exprs: Any, **named_exprs: Any) -> "LazyFrame":
        """Compute the given columns (names or expressions). If every expression aggregates,
        the result is one row over the whole input.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": [1, 2], "b": [3, 4]})).lazy()
            >>> lf.select("b", c=ooc.col("a") + 1).collect().rows()
            [(3, 2), (4, 3)]
        """
        return LazyFrame(self._lf.select(_exprs(exprs, named_exprs)))

    def with_columns(self, *exprs: Any, **named_exprs: Any) -> "LazyFrame":
        """Add columns, or replace the columns with the same names.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": [1, 2]})).lazy()
            >>> lf.with_columns(ooc.col("a") * 10, b=ooc.col("a") + 1).collect().rows()
            [(10, 2), (20, 3)]
        """
        return LazyFrame(self._lf.with_columns(_exprs(exprs, named_exprs)))

    def filter(self, *predicates: Any, **constraints: Any) -> "LazyFrame":
        """Keep the rows where every predicate is true (NULL counts as false).
        ``name=value`` keyword arguments mean ``col(name) == value``.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": [1, 2, 3], "b": ["x", "y", "x"]})).lazy()
            >>> lf.filter(ooc.col("a") >= 2, b="x").collect().rows()
            [(3, 'x')]
        """
        parts = [p if isinstance(p, Expr) else col(p) for p in _flatten(predicates)]
        parts += [col(name) == value for name, value in constraints.items()]
        if not parts:
            raise ValueError("filter() needs at least one predicate")
        predicate = parts[0]
        for p in parts[1:]:
            predicate = predicate & p
        return LazyFrame(self._lf.filter(predicate._e))

    def group_by(self, *by: Any, maintain_order: bool = False) -> "GroupBy":
        """Group by columns or expressions; finish with ``.agg(...)``.

        Groups come out in no particular order (sort the result if it matters);
        ``maintain_order=True`` is not supported.
        """
        if maintain_order:
            raise NotImplementedError(
                "group_by(maintain_order=True) is not supported: sort the result instead"
            )
        keys = [_to_expr(k) for k in _flatten(by)]
        if not keys:
            raise ValueError("group_by() needs at least one key")
        return GroupBy(self, keys)

    def join(
        self,
        other: "LazyFrame",
        on: Any = None,
        how: str = "inner",
        *,
        left_on: Any = None,
        right_on: Any = None,
        suffix: str = "_right",
    ) -> "LazyFrame":
        """Join with ``other`` on equal keys (NULL keys never match).

        ``how``: ``inner``, ``left``, ``right``, ``full``, ``semi``, ``anti`` or ``cross``.
        Output columns: this frame's, then ``other``'s; a name already taken gets ``suffix``.
        Inner and left joins keep one copy of each key column, a right join keeps the right
        ones, a full join keeps both.

        Example:
            >>> import ooc, pyarrow as pa
            >>> a = ooc.from_arrow(pa.table({"id": [1, 2, 3], "x": ["p", "q", "r"]})).lazy()
            >>> b = ooc.from_arrow(pa.table({"id": [1, 3, 4], "x": ["s", "t", "u"]})).lazy()
            >>> a.join(b, on="id", how="left").sort("id").collect().rows()
            [(1, 'p', 's'), (2, 'q', None), (3, 'r', 't')]
            >>> a.join(b, on="id", how="anti").collect().rows()
            [(2, 'q')]
        """
        if not isinstance(other, LazyFrame):
            raise TypeError(f"join() expects a LazyFrame, got {type(other).__name__}")
        if how == "cross":
            if on is not None or left_on is not None or right_on is not None:
                raise ValueError("a cross join takes no keys")
            return LazyFrame(self._lf.join(other._lf, "cross", [], [], suffix))
        if on is not None:
            if left_on is not None or right_on is not None:
                raise ValueError("give either on= or left_on= and right_on=, not both")
            left_on = right_on = on
        if left_on is None or right_on is None:
            raise ValueError("join() needs on= (or left_on= and right_on=) unless how='cross'")
        lk = [_to_expr(k) for k in _flatten([left_on])]
        rk = [_to_expr(k) for k in _flatten([right_on])]
        return LazyFrame(self._lf.join(other._lf, how, lk, rk, suffix))

    def sort(
        self,
        by: Any,
        *more_by: Any,
        descending: Union[bool, Sequence[bool]] = False,
        nulls_last: Union[bool, Sequence[bool]] = False,
    ) -> "LazyFrame":
        """Order rows by one or more columns or expressions. NULLs come first unless
        ``nulls_last=True`` (as in Polars). The sort spills to disk when it outgrows the
        memory limit.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": [2, None, 1]})).lazy()
            >>> lf.sort("a", descending=True, nulls_last=True).collect().rows()
            [(2,), (1,), (None,)]
        """
        keys = [_to_expr(k) for k in _flatten([by, *more_by])]
        n = len(keys)
        desc = [descending] * n if isinstance(descending, bool) else list(descending)
        nl = [nulls_last] * n if isinstance(nulls_last, bool) else list(nulls_last)
        if len(desc) != n or len(nl) != n:
            raise ValueError("descending= and nulls_last= need one entry per sort key")
        return LazyFrame(self._lf.sort(keys, desc, nl))

    def slice(self, offset: int, length: Optional[int] = None) -> "LazyFrame":
        """Rows ``offset`` to ``offset + length``."""
        if offset < 0:
            raise ValueError("slice() needs a non-negative offset")
        return LazyFrame(self._lf.slice(offset, length))

    def head(self, n: int = 5) -> "LazyFrame":
        """The first ``n`` rows (after a sort: the top ``n``, computed without a full sort).

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": [5, 3, 9, 1]})).lazy()
            >>> lf.sort("a").head(2).collect().rows()
            [(1,), (3,)]
        """
        return self.slice(0, n)

    def limit(self, n: int = 5) -> "LazyFrame":
        """Same as ``head``."""
        return self.head(n)

    def intersect(self, other: "LazyFrame", *, all: bool = False) -> "LazyFrame":  # noqa: A002
        """The distinct rows that ``other`` also has (SQL's ``INTERSECT``); with ``all=True``,
        a row ``m`` times here and ``n`` times there appears ``min(m, n)`` times. Columns match
        by position, names come from this frame, and NULLs equal each other. Spills like a
        group-by.

        Example:
            >>> import ooc, pyarrow as pa
            >>> a = ooc.from_arrow(pa.table({"x": [1, 1, 2, None]})).lazy()
            >>> b = ooc.from_arrow(pa.table({"y": [1, 1, 1, None]})).lazy()
            >>> a.intersect(b, all=True).sort("x").collect().rows()
            [(None,), (1,), (1,)]
        """
        return LazyFrame(self._lf.set_operation("intersect", _lazy(other)._lf, all))

    def difference(self, other: "LazyFrame", *, all: bool = False) -> "LazyFrame":  # noqa: A002
        """The distinct rows that ``other`` lacks (SQL's ``EXCEPT``); with ``all=True``,
        ``max(m - n, 0)`` copies of a row ``m`` times here and ``n`` times there.

        Example:
            >>> import ooc, pyarrow as pa
            >>> a = ooc.from_arrow(pa.table({"x": [1, 1, 2, None]})).lazy()
            >>> b = ooc.from_arrow(pa.table({"x": [1]})).lazy()
            >>> a.difference(b, all=True).sort("x").collect().rows()
            [(None,), (1,), (2,)]
        """
        return LazyFrame(self._lf.set_operation("except", _lazy(other)._lf, all))

    def unique(
        self,
        subset: Any = None,
        *,
        keep: str = "any",
        maintain_order: bool = False,
    ) -> "LazyFrame":
        """Distinct rows; with ``subset``, one row per distinct combination of those columns
        (``keep``: ``any``, ``first`` or ``last``; see ``Expr.first`` for what first means).

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": [1, 1, 2], "b": ["x", "x", "y"]})).lazy()
            >>> lf.unique().sort("a").collect().rows()
            [(1, 'x'), (2, 'y')]
        """
        if maintain_order:
            raise NotImplementedError("unique(maintain_order=True) is not supported: sort instead")
        names = None if subset is None else [str(s) for s in _flatten([subset])]
        return LazyFrame(self._lf.unique(names, keep))

    def rename(self, mapping: Dict[str, str]) -> "LazyFrame":
        """Rename columns: ``{"old": "new"}``."""
        return LazyFrame(self._lf.rename(list(mapping.items())))

    def drop(self, *columns: str) -> "LazyFrame":
        """Remove columns."""
        return LazyFrame(self._lf.drop([str(c) for c in _flatten(columns)]))

    # -- inspection --------------------------------------------------------------------------
    @property
    def schema(self) -> Dict[str, DataType]:
        """Column names and types of the result (without running anything)."""
        return {name: from_engine_name(t) for name, t in self._lf.schema()}

    def collect_schema(self) -> Dict[str, DataType]:
        """Same as ``schema``."""
        return self.schema

    @property
    def columns(self) -> List[str]:
        """Column names of the result."""
        return [name for name, _ in self._lf.schema()]

    @property
    def width(self) -> int:
        """Number of columns."""
        return len(self._lf.schema())

    def explain(
        self,
        *,
        analyze: bool = False,
        optimized: bool = True,
        executor: Any = None,
        **distributed: Any,
    ) -> str:
        """The plan that would run: operators, pruned row groups, operators that may spill.
        With ``analyze=True`` the query runs (its rows are discarded) and each operator shows
        rows, time, peak memory, bytes held at the query's peak and spills, followed by the
        query's wall time, bytes read, peak RSS and who held the memory at the peak. ``optimized=False`` shows the logical plan as built.

        With an ``executor`` (a Dask ``Client`` or a ``concurrent.futures`` executor): the
        stages the query is cut into, and with ``analyze=True`` every task's figures (see
        ``ooc.distributed``; other keyword arguments are its options).
        """
        if executor is not None:
            from . import distributed as _distributed

            return _distributed.explain(self, executor, analyze=analyze, **distributed)
        if distributed:
            raise TypeError(f"explain() got options for an executor but none: {sorted(distributed)}")
        return self._lf.explain(analyze, optimized)

    def profile_memory(
        self, path: Optional[PathLike] = None, *, title: Optional[str] = None
    ) -> "MemoryProfile":
        """Run the query (its rows are discarded) and return its memory profile: who held the
        memory at the query's peak (operator and part of its state, summing to the peak of
        reserved bytes), the process's RSS then, and the timeline of reserved bytes against RSS.
        It renders inline in Jupyter and marimo; with ``path`` it is also written there
        (``.svg``, or ``.html`` with the summary).
        """
        from ._profile import MemoryProfile

        summary, svg, html, figures = self._lf.profile_memory(title or "ooc memory profile")
        profile = MemoryProfile(summary, svg, html, figures)
        if path is not None:
            profile.save(path)
        return profile

    # -- execution ---------------------------------------------------------------------------
    def collect(
        self,
        *,
        cache: Optional[bool] = None,
        progress: Any = None,
        executor: Any = None,
        **distributed: Any,
    ) -> "DataFrame":
        """Run the query and gather the result in memory (Ctrl-C cancels it).

        The result is an ``ooc.DataFrame``: hand it to pyarrow, Polars, pandas or DuckDB
        without a copy. For results too big to hold, use ``iter_batches`` or ``sink_*``.

        ``cache=True`` serves the result from the result cache when the same query over the
        same files ran before (in this process or any other), and stores it otherwise;
        ``cache=False`` never does; the default follows ``ooc.config(cache=...)``. See
        ``ooc.cache``.

        ``progress``: in a Jupyter kernel, a query running longer than a second shows a
        progress bar (row groups done, rows per second) unless ``progress=False``; a callable
        is called instead as ``progress(done, total, rows, seconds)`` every 50 ms.

        ``executor``: a Dask ``Client`` (or any ``concurrent.futures`` executor) to run the
        query on, cut into tasks that each run with their own memory limit; the last part
        runs here. Other keyword arguments are ``ooc.distributed.collect``'s options.
        """
        if executor is not None:
            if cache:
                raise ValueError("collect(executor=...) does not use the result cache; drop cache=True")
            from . import distributed as _distributed

            return _distributed.collect(self, executor, **distributed)
        if distributed:
            raise TypeError(f"collect() got options for an executor but none: {sorted(distributed)}")
        callback = _progress_callback(progress)
        try:
            return DataFrame(self._lf.collect(cache, callback))
        finally:
            if isinstance(callback, _NotebookProgress):
                callback.close()

    def persist(self, name: Optional[str] = None) -> "LazyFrame":
        """Compute this frame once into the result cache's directory (``ooc.config(cache_dir=)``,
        default the user cache directory) and return a lazy frame that scans the stored result.

        Nothing of the result is held in memory: it streams to disk as it is computed, and
        later queries read the columns they need from the memory-mapped file (no Parquet file
        of the original query is read again). Persisting the same query over the same files
        again reuses the stored result, in this process or another. With a ``name``, the
        result is also kept under that name (never evicted by the cache's size bound): later
        processes read it with ``ooc.persisted(name)``, and ``ooc query`` as table ``name``.

        Example:
            >>> import ooc, pyarrow as pa, tempfile
            >>> _ = ooc.config(cache_dir=tempfile.mkdtemp())
            >>> lf = ooc.from_arrow(pa.table({"x": [1, 2, 3]})).lazy().filter(ooc.col("x") > 1).persist()
            >>> lf.select(ooc.col("x").sum()).collect().rows()
            [(5,)]
        """
        return LazyFrame(self._lf.persist(name))

    def iter_batches(
        self,
        batch_size: Optional[int] = None,
        *,
        to: str = "arrow",
        columns: Optional[Sequence[str]] = None,
        dtype: Optional[str] = None,
        shuffle: bool = False,
        seed: Optional[int] = None,
        shuffle_window: int = 8,
        drop_last: bool = False,
    ) -> Iterator[Any]:
        """Run the query and yield its result batch by batch as it is produced; only a few
        batches are in flight at a time, so a result far larger than memory can be streamed
        (into ``partial_fit``, a data loader, a file). Stopping early (``break``) cancels the
        query. Rows come in the files' order when the query streams a scan through filters
        and projections.

        Args:
            batch_size: rows per batch: every batch has exactly that many rows, the last one
                possibly fewer (see ``drop_last``). ``None``: batches as the engine makes them.
                Batches are assembled from the engine's batches without copying anything but
                the rows that straddle a boundary (none at all with ``dtype`` and ``to="numpy"``
                or ``"torch"``, where the matrix is the only copy).
            to: what each batch is: ``"arrow"`` (a ``pyarrow.RecordBatch``), ``"pandas"``
                (a ``DataFrame``), ``"polars"`` (a ``DataFrame``), ``"numpy"`` (a dict of
                1-D arrays by column; with ``dtype``, one C-contiguous 2-D array, columns in
                order) or ``"torch"`` (likewise, tensors that share the arrays' memory; needs
                ``torch``).
            columns: the columns to yield, in this order (default: all).
            dtype: a NumPy type name (``"float32"``, ``"int64"``, ...): every column is
                converted to it in the engine, before the data reaches Python. Dates become
                days, timestamps microseconds, booleans 0/1. A NULL is an error naming its
                column (``fill_null`` first), as is a value the type cannot hold.
            shuffle: rows in random order, in bounded memory: the files' slices are read in a
                random order, then rows are permuted within windows of ``shuffle_window``
                batches. The multiset of rows is unchanged.
            seed: the shuffle's seed: the same seed gives the same order (for queries that
                stream a scan through filters and projections, or sort). Default: random.
            shuffle_window: batches per shuffle window: the rows of this many batches are
                mixed. Larger windows mix better and hold more memory: about two windows of
                rows are held at once (one handed out while the next is read), each also as a
                matrix; the time per row hardly depends on the size.
            drop_last: leave out the last batch when it is shorter than ``batch_size``.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": list(range(10)), "b": [0.5] * 10})).lazy()
            >>> [b.num_rows for b in lf.iter_batches(4)]
            [4, 4, 2]
            >>> X = next(lf.iter_batches(4, to="numpy", dtype="float32"))
            >>> X.shape, X.dtype.name, X.flags["C_CONTIGUOUS"]
            ((4, 2), 'float32', True)
        """
        if to not in _FEED_TARGETS:
            raise ValueError(f"to={to!r}: expected one of {', '.join(_FEED_TARGETS)}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if drop_last and batch_size is None:
            raise ValueError("drop_last=True needs a batch_size")
        if shuffle_window < 1:
            raise ValueError(f"shuffle_window must be at least 1, got {shuffle_window!r}")
        if seed is not None and not shuffle:
            raise ValueError("seed= is the shuffle's seed: pass shuffle=True as well")
        frame = self if columns is None else self.select(*columns)
        names = frame.columns
        if to in ("numpy", "torch") and dtype is not None:
            output = "matrix"
        elif to == "torch":
            output = "columns"
        else:
            output = "batches"
        it = frame._lf.feed(
            batch_size,
            output,
            dtype,
            shuffle,
            _seed(seed) if shuffle else 0,
            shuffle_window,
            drop_last,
        )
        convert = _feed_converter(to, output, names)
        try:
            for item in it:
                yield convert(item)
        finally:
            it.close()

    def iter_xy(
        self,
        features: Sequence[str],
        target: str,
        batch_size: int,
        *,
        to: str = "numpy",
        dtype: str = "float32",
        target_dtype: Optional[str] = None,
        shuffle: bool = False,
        seed: Optional[int] = None,
        shuffle_window: int = 8,
        drop_last: bool = False,
    ) -> Iterator[Tuple[Any, Any]]:
        """Yield ``(X, y)`` pairs for out-of-core learning: ``X`` the ``features`` columns as
        one C-contiguous 2-D array of ``dtype``, ``y`` the ``target`` column as a 1-D array
        (of ``target_dtype``, or of the column's own type: ``int64`` labels stay integers).
        Both are made in the engine, batch by batch, so the table is never held whole.
        ``to="torch"`` yields tensors sharing the arrays' memory. ``batch_size``,
        ``shuffle``, ``seed``, ``shuffle_window`` and ``drop_last`` are as in
        ``iter_batches``.

        Example: principal components of a file, with scikit-learn's ``IncrementalPCA``
        (the same loop runs over a file far larger than memory; see the README):

            >>> import os, tempfile, ooc, pyarrow as pa, pyarrow.parquet as pq
            >>> from sklearn.decomposition import IncrementalPCA
            >>> path = os.path.join(tempfile.mkdtemp(), "points.parquet")
            >>> n = 10_000
            >>> pq.write_table(pa.table({"a": [float(i % 7) for i in range(n)],
            ...                          "b": [float(i % 11) * 2 for i in range(n)],
            ...                          "c": [float(i % 13) for i in range(n)],
            ...                          "label": [i % 2 for i in range(n)]}), path,
            ...                row_group_size=3_000)
            >>> pca = IncrementalPCA(n_components=2)
            >>> for X, y in ooc.scan_parquet(path).iter_xy(["a", "b", "c"], "label",
            ...                                             batch_size=2_500):
            ...     pca = pca.partial_fit(X)
            >>> int(pca.n_samples_seen_), X.shape, X.dtype.name, y.dtype.name
            (10000, (2500, 3), 'float32', 'int64')

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"a": [1, 2, 3], "b": [4, 5, 6], "y": [0, 1, 0]})).lazy()
            >>> X, y = next(lf.iter_xy(["a", "b"], "y", batch_size=2))
            >>> X.tolist(), y.tolist(), y.dtype.name
            ([[1.0, 4.0], [2.0, 5.0]], [0, 1], 'int64')
        """
        if to not in ("numpy", "torch"):
            raise ValueError(f"iter_xy(to={to!r}): expected 'numpy' or 'torch'")
        if isinstance(features, str):
            raise TypeError("features must be a list of column names, not one string")
        features = list(features)
        if not features:
            raise ValueError("iter_xy() needs at least one feature column")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if shuffle_window < 1:
            raise ValueError(f"shuffle_window must be at least 1, got {shuffle_window!r}")
        if seed is not None and not shuffle:
            raise ValueError("seed= is the shuffle's seed: pass shuffle=True as well")
        frame = self.select(*[col(f) for f in features], col(target).alias("__ooc_target"))
        it = frame._lf.feed(
            batch_size,
            "xy",
            dtype,
            shuffle,
            _seed(seed) if shuffle else 0,
            shuffle_window,
            drop_last,
            len(features),
            target_dtype,
        )
        torch = _import_torch() if to == "torch" else None
        try:
            for x, y in it:
                if torch is not None:
                    yield torch.from_numpy(x), torch.from_numpy(y)
                else:
                    yield x, y
        finally:
            it.close()

    def sink_parquet(
        self,
        path: PathLike,
        *,
        bloom_filter_columns: Optional[Sequence[str]] = None,
        executor: Any = None,
        **distributed: Any,
    ) -> Dict[str, Any]:
        """Stream the result into a zstd-compressed Parquet file. The file appears under
        ``path`` only once complete. Returns the query's statistics.

        Args:
            path: the file to write.
            bloom_filter_columns: columns that get a bloom filter in every row group, so that
                later ``col == v`` and ``col.is_in([...])`` filters (and SQL ``=`` / ``IN``)
                skip the row groups that do not hold the values. An unknown column is an
                error that lists the result's columns.
            executor: a Dask ``Client`` or ``concurrent.futures`` executor to run the query
                on (see ``collect``); the file is written here, from the last stage's output,
                or with ``per_task=True`` one file per task into the directory ``path``
                (see ``ooc.distributed.sink_parquet``).
        """
        if executor is not None:
            if bloom_filter_columns:
                raise ValueError("sink_parquet(executor=...) does not write bloom filters yet")
            from . import distributed as _distributed

            return _distributed.sink_parquet(self, path, executor, **distributed)
        if distributed:
            raise TypeError(
                f"sink_parquet() got options for an executor but none: {sorted(distributed)}"
            )
        if isinstance(bloom_filter_columns, str):
            raise TypeError("bloom_filter_columns takes a list of column names, not a string")
        columns = list(bloom_filter_columns or [])
        return self._lf.sink(os.fspath(path), "parquet", "float32", columns)

    def sink_csv(self, path: PathLike) -> Dict[str, Any]:
        """Stream the result into a CSV file (with a header), atomically."""
        return self._lf.sink(os.fspath(path), "csv")

    def sink_ndjson(self, path: PathLike) -> Dict[str, Any]:
        """Stream the result into a newline-delimited JSON file, atomically."""
        return self._lf.sink(os.fspath(path), "ndjson")

    def sink_numpy(
        self, path: PathLike, columns: Optional[Sequence[str]] = None, dtype: str = "float32"
    ) -> Dict[str, Any]:
        """Stream the result (or ``columns`` of it) into a NumPy ``.npy`` file: one 2-D
        array, row-major, every column converted to ``dtype`` (``float32``, ``float64``,
        ``int32`` or ``int64``; dates as days, timestamps as microseconds). It is written one
        batch at a time, atomically, so ``np.load(path, mmap_mode="r")`` maps a result larger
        than memory. A NULL is an error naming its column (``fill_null`` first).

        Example:
            >>> import ooc, pyarrow as pa, numpy as np, tempfile, os
            >>> lf = ooc.from_arrow(pa.table({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})).lazy()
            >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
            >>> _ = lf.sink_numpy(path)
            >>> np.load(path, mmap_mode="r").tolist()
            [[1.0, 0.5], [2.0, 1.5], [3.0, 2.5]]
        """
        frame = self if columns is None else self.select(*columns)
        return frame._lf.sink(os.fspath(path), "npy", dtype)

    def __repr__(self) -> str:
        return self._lf.__repr__()


_FEED_TARGETS = ("arrow", "pandas", "polars", "numpy", "torch")


def _seed(seed: Optional[int]) -> int:
    if seed is None:
        import secrets

        return secrets.randbits(64)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return seed


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("to='torch' needs PyTorch: pip install torch") from None
    return torch


def _feed_converter(to: str, output: str, names: List[str]) -> Any:
    """How an item of the engine's feed becomes what ``iter_batches(to=...)`` yields."""
    if output == "matrix":
        if to == "torch":
            torch = _import_torch()
            return torch.from_numpy
        return lambda x: x
    if output == "columns":
        torch = _import_torch()
        return lambda arrays: {n: torch.from_numpy(a) for n, a in zip(names, arrays)}
    import pyarrow as pa

    if to == "arrow":
        return pa.record_batch
    if to == "pandas":
        return lambda b: pa.record_batch(b).to_pandas()
    if to == "polars":
        import polars as pl

        return lambda b: pl.from_arrow(pa.record_batch(b))
    # numpy without dtype: one array per column, sharing Arrow's memory where it can.
    def to_numpy(b: Any) -> Dict[str, Any]:
        batch = pa.record_batch(b)
        return {
            n: batch.column(i).to_numpy(zero_copy_only=False) for i, n in enumerate(names)
        }

    return to_numpy


class GroupBy:
    """``LazyFrame.group_by(...)``: call ``agg`` to compute aggregates per group."""

    def __init__(self, frame: LazyFrame, keys: list) -> None:
        self._frame = frame
        self._keys = keys

    def agg(self, *aggs: Any, **named_aggs: Any) -> LazyFrame:
        """One row per group: the keys, then each aggregate expression. Expressions may
        combine aggregates (``col("a").sum() / col("b").count()``). Aggregates spill to disk
        when the groups outgrow the memory limit.

        Example:
            >>> import ooc, pyarrow as pa
            >>> lf = ooc.from_arrow(pa.table({"k": [1, 1, 2], "v": [2.0, 4.0, 5.0]})).lazy()
            >>> lf.group_by("k").agg(ooc.col("v").mean(), n=ooc.len()).sort("k").collect().rows()
            [(1, 3.0, 2), (2, 5.0, 1)]
        """
        exprs = _exprs(aggs, named_aggs)
        if not exprs:
            raise ValueError("agg() needs at least one aggregate")
        return LazyFrame(self._frame._lf.group_by_agg(self._keys, exprs))


class DataFrame:
    """A collected result. It implements the Arrow PyCapsule interface, so
    ``pyarrow.table(df)``, ``polars.from_arrow(df)`` and DuckDB read it without copying.

    Example:
        >>> import ooc, pyarrow as pa
        >>> df = ooc.from_arrow(pa.table({"a": [1, 2]}))
        >>> pa.table(df).num_rows
        2
    """

    __slots__ = ("_df", "_site", "_distributed", "__weakref__")

    def __init__(self, inner: "_ooc.PyDataFrame") -> None:
        self._df = inner
        self._site = _caller_site()
        self._distributed: Optional[Dict[str, Any]] = None
        _LIVE.add(self)

    # -- explicit release ---------------------------------------------------------------------
    def release(self) -> Dict[str, int]:
        """Free this frame's buffers now, whatever other names (``_``, a list, a closure)
        still point at it; any later use raises ``ooc.ReleasedError``.

        Buffers that something outside ooc still holds (a pyarrow table, a Polars frame or a
        DuckDB relation made from this frame without a copy) stay valid for their holder and
        are freed when it lets go. Returns ``freed_bytes`` and ``held_elsewhere_bytes``.

        Example:
            >>> import ooc, pyarrow as pa
            >>> df = ooc.from_arrow(pa.table({"a": [1, 2]}))
            >>> alias = df
            >>> _ = df.release()
            >>> alias.height  # doctest: +IGNORE_EXCEPTION_DETAIL
            Traceback (most recent call last):
            ooc.ReleasedError: this DataFrame was released (release() or the end of its ...
        """
        return self._df.release()

    @property
    def released(self) -> bool:
        """Whether ``release()`` was called."""
        return self._df.released

    def __enter__(self) -> "DataFrame":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def _repr_html_(self) -> str:
        """Jupyter's (and marimo's) rich display: shape, schema, the first rows, and where
        the data lives."""
        import html

        if self.released:
            return "<div><b>ooc.DataFrame</b> (released)</div>"
        memory = self._df.memory()
        where = (
            f"{_fmt_bytes(memory['mapped_bytes'])} mapped from the result cache"
            if memory["mapped_bytes"]
            else f"{_fmt_bytes(memory['heap_bytes'])} on the heap"
        )
        names = self.columns
        types = [str(t) for t in self.schema.values()]
        head = self.lazy().limit(10).collect().rows() if self.height else []
        cell = lambda v: html.escape("null" if v is None else str(v))  # noqa: E731
        header = "".join(
            f"<th>{html.escape(n)}<br><small>{html.escape(t)}</small></th>" for n, t in zip(names, types)
        )
        body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in head)
        more = f"<p>… {self.height - len(head)} more rows</p>" if self.height > len(head) else ""
        return (
            f"<div><b>ooc.DataFrame</b> shape: ({self.height}, {self.width}) · {where}"
            f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>{more}</div>"
        )

    def _mime_(self) -> Tuple[str, str]:
        """marimo's display protocol: the same HTML as Jupyter's."""
        return ("text/html", self._repr_html_())

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """Export as an Arrow C stream (buffers are shared, not copied)."""
        return self._df.__arrow_c_stream__(requested_schema)

    def __arrow_c_schema__(self) -> Any:
        """Export the schema as an Arrow C schema."""
        return self._df.__arrow_c_schema__()

    @property
    def height(self) -> int:
        """Number of rows."""
        return self._df.num_rows

    def __len__(self) -> int:
        return self._df.num_rows

    @property
    def width(self) -> int:
        """Number of columns."""
        return len(self._df.schema())

    @property
    def shape(self) -> Tuple[int, int]:
        """``(rows, columns)``."""
        return (self.height, self.width)

    @property
    def columns(self) -> List[str]:
        """Column names."""
        return [name for name, _ in self._df.schema()]

    @property
    def schema(self) -> Dict[str, DataType]:
        """Column names and types."""
        return {name: from_engine_name(t) for name, t in self._df.schema()}

    @property
    def nbytes(self) -> int:
        """Bytes held by the result's Arrow buffers."""
        return self._df.nbytes

    @property
    def stats(self) -> Optional[Dict[str, Any]]:
        """How the query that produced this frame ran: ``rows``, ``wall_seconds``,
        ``bytes_read``, ``peak_reserved_bytes`` (operator memory), ``peak_spill_bytes``,
        ``peak_rss_bytes`` (of this process so far), ``memory_at_peak`` (who held the memory
        at the query's peak, RSS then, the timeline: see ``LazyFrame.profile_memory``),
        ``operators`` (rows, time, peak bytes, bytes at the query's peak and spills per
        operator), ``report`` (the same as text) and ``cache`` (``"hit"``,
        ``"miss"``, or ``None`` when the result cache was not used). ``None`` for frames made
        with ``from_arrow``. A result computed on an executor (``collect(executor=...)``) also
        has ``distributed``: its stages, bytes shuffled and every task's report."""
        stats = self._df.stats()
        if self._distributed is not None:
            stats = dict(stats or {})
            stats["distributed"] = self._distributed
        return stats

    def lazy(self) -> LazyFrame:
        """A lazy frame over this result (shared, not copied)."""
        return LazyFrame(self._df.lazy())

    def to_arrow(self) -> Any:
        """The result as a ``pyarrow.Table`` (no copy)."""
        import pyarrow as pa

        batches = [pa.record_batch(b) for b in self._df.batches()]
        return pa.Table.from_batches(batches, schema=pa.schema(self))

    def to_polars(self) -> Any:
        """The result as a ``polars.DataFrame`` (no copy where Polars can share buffers)."""
        import polars as pl

        # pl.DataFrame reads the Arrow C stream directly; pl.from_arrow would build a Series
        # of structs from a generic stream.
        return pl.DataFrame(self)

    def to_pandas(self, **kwargs: Any) -> Any:
        """The result as a ``pandas.DataFrame`` (through pyarrow; keyword arguments go to
        ``pyarrow.Table.to_pandas``, e.g. ``types_mapper=pandas.ArrowDtype`` to keep Arrow
        memory)."""
        return self.to_arrow().to_pandas(**kwargs)

    def rows(self) -> List[tuple]:
        """All rows as Python tuples (small results only)."""
        table = self.to_arrow()
        columns = [c.to_pylist() for c in table.columns]
        return list(zip(*columns)) if columns else []

    def to_dicts(self) -> List[Dict[str, Any]]:
        """All rows as dicts (small results only)."""
        return self.to_arrow().to_pylist()

    def write_parquet(self, path: PathLike) -> None:
        """Write to a Parquet file, atomically."""
        self.lazy().sink_parquet(path)

    def write_csv(self, path: PathLike) -> None:
        """Write to a CSV file, atomically."""
        self.lazy().sink_csv(path)

    def __repr__(self) -> str:
        return f"shape: {self.shape}\n{self._df.format(10)}"


_LIVE: "weakref.WeakSet[DataFrame]" = weakref.WeakSet()


class _NotebookProgress:
    """A progress bar in a Jupyter output cell, shown once a query has run for a second."""

    def __init__(self) -> None:
        self._handle: Any = None

    def __call__(self, done: int, total: int, rows: int, seconds: float) -> None:
        if seconds < 1.0:
            return
        from IPython.display import HTML, display

        html = HTML(
            f"<progress value='{done}' max='{max(total, 1)}' style='width:20em'></progress> "
            f"{done}/{total} row groups · {rows / seconds / 1e6:.1f} M rows/s · {seconds:.0f} s"
        )
        if self._handle is None:
            self._handle = display(html, display_id=True)
        else:
            self._handle.update(html)

    def close(self) -> None:
        if self._handle is not None:
            from IPython.display import HTML

            self._handle.update(HTML(""))


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _progress_callback(progress: Any) -> Any:
    if callable(progress):
        return progress
    if progress is False or (progress is None and not _in_notebook()):
        return None
    return _NotebookProgress()


def _caller_site() -> str:
    """``file:line`` of the first caller outside the ooc package."""
    frame = sys._getframe(1)
    here = os.path.dirname(os.path.abspath(__file__))
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def persisted(name: str) -> LazyFrame:
    """A lazy frame over the result persisted as ``name`` (``LazyFrame.persist(name=...)``,
    ``ooc query --persist NAME``) in the cache directory ``ooc.config`` names."""
    return LazyFrame(_ooc.persisted(name))


def memory_report() -> List[Dict[str, Any]]:
    """The collected ``ooc.DataFrame`` objects still alive in this process, largest first:
    ``rows``, ``heap_bytes`` (buffers on the heap), ``mapped_bytes`` (buffers in a file
    mapped from the result cache, which cost page cache, not heap), ``unread`` (a cache hit
    not read yet: it is read, and checked, when its data is first used), ``exported`` (handed to
    pyarrow, Polars or DuckDB, which may still hold the buffers) and ``site`` (the
    ``file:line`` that created it). Released frames are not listed.

    Example:
        >>> import ooc, pyarrow as pa
        >>> df = ooc.from_arrow(pa.table({"a": list(range(1000))}))
        >>> [r["rows"] for r in ooc.memory_report() if r["frame"] is df]
        [1000]
    """
    out = []
    for frame in list(_LIVE):
        if frame.released:
            continue
        entry = dict(frame._df.memory())
        entry["site"] = frame._site
        entry["frame"] = frame
        del entry["released"]
        out.append(entry)
    out.sort(key=lambda e: -(e["heap_bytes"] + e["mapped_bytes"]))
    return out


def scan_parquet(
    source: Union[PathLike, Sequence[PathLike]],
    *,
    hive_partitioning: Optional[bool] = None,
) -> LazyFrame:
    """A lazy scan of Parquet data: a file, a directory (read recursively), a glob such as
    ``"logs/*/*.parquet"``, or a list of those read as one table. Files must agree on column
    types. Hive folders (``year=2024/``) become columns unless ``hive_partitioning=False``;
    only footers are read here.

    Example:
        >>> import ooc, pyarrow as pa, pyarrow.parquet as pq, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
        >>> pq.write_table(pa.table({"a": [1, 2, 3]}), path)
        >>> ooc.scan_parquet(path).select(ooc.col("a").sum()).collect().rows()
        [(6,)]
    """
    if isinstance(source, (str, os.PathLike)):
        locations = [os.fspath(source)]
    else:
        locations = [os.fspath(s) for s in source]
    return LazyFrame(_ooc.scan_parquet(locations, hive_partitioning is not False))


def _lazy(frame: Any) -> "LazyFrame":
    if isinstance(frame, LazyFrame):
        return frame
    if isinstance(frame, DataFrame):
        return frame.lazy()
    raise TypeError(f"expected a LazyFrame or DataFrame, not {type(frame).__name__}")


def concat(items: Sequence[Any], *, how: str = "vertical") -> LazyFrame:
    """The rows of every frame (SQL's ``UNION ALL``; columns match by position, names come
    from the first frame, types are unified). ``how="vertical"`` only. As in SQL, the frames'
    rows may interleave, since their scans run on several threads at once: sort for an order.

    Example:
        >>> import ooc, pyarrow as pa
        >>> a = ooc.from_arrow(pa.table({"x": [1, 2]})).lazy()
        >>> b = ooc.from_arrow(pa.table({"x": [3]})).lazy()
        >>> sorted(ooc.concat([a, b]).collect().rows())
        [(1,), (2,), (3,)]
    """
    if how != "vertical":
        raise ValueError(f"concat(how={how!r}) is not supported; only how='vertical'")
    frames = [_lazy(f) for f in items]
    if not frames:
        raise ValueError("concat() needs at least one frame")
    result = frames[0]._lf
    for frame in frames[1:]:
        result = result.set_operation("union", frame._lf, True)
    return LazyFrame(result)


def _locations(source: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    if isinstance(source, (str, os.PathLike)):
        return [os.fspath(source)]
    return [os.fspath(s) for s in source]


def _overrides(schema_overrides: Optional[Dict[str, Any]]) -> List[Tuple[str, str]]:
    from ._dtypes import engine_name

    return [(name, engine_name(dtype)) for name, dtype in (schema_overrides or {}).items()]


def scan_csv(
    source: Union[PathLike, Sequence[PathLike]],
    *,
    separator: Optional[str] = None,
    has_header: Optional[bool] = None,
    quote_char: str = '"',
    escape_char: Optional[str] = None,
    comment_prefix: Optional[str] = None,
    null_values: Optional[Union[str, Sequence[str]]] = None,
    schema_overrides: Optional[Dict[str, Any]] = None,
    infer_schema_length: Optional[int] = 20480,
    ignore_errors: bool = False,
    compression: Optional[str] = None,
) -> LazyFrame:
    r"""A lazy scan of delimited text: a file, a directory, a glob, or a list of those read as
    one table; plain, gzip (``.gz``) or zstd (``.zst``). The file is streamed in chunks, never
    loaded whole, so it may be far larger than memory.

    The schema is inferred from the first ``infer_schema_length`` records of the first file
    (``None``: all of them); ``schema_overrides`` replaces the types of named columns (an
    ``ooc`` dtype or a name such as ``"decimal(15,2)"``). ``separator`` and ``has_header`` are
    detected when not given. ``null_values`` are read as NULL (the empty field always is). A
    value that does not fit its column's type raises an error naming the file, the line and
    the column; with ``ignore_errors=True`` such records are skipped and counted instead.

    Example:
        >>> import ooc, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
        >>> _ = open(path, "w").write("a;b\n1;x\n2;NA\n")
        >>> lf = ooc.scan_csv(path, null_values="NA")
        >>> lf.collect().rows()
        [(1, 'x'), (2, None)]
    """
    if isinstance(null_values, str):
        null_values = [null_values]
    return LazyFrame(
        _ooc.scan_text(
            _locations(source),
            "csv",
            separator=separator,
            has_header=has_header,
            quote_char=quote_char,
            escape_char=escape_char,
            comment_prefix=comment_prefix,
            null_values=list(null_values) if null_values is not None else None,
            types=_overrides(schema_overrides),
            sample_rows=infer_schema_length if infer_schema_length is not None else 2**62,
            skip_bad_rows=ignore_errors,
            compression=compression,
        )
    )


def scan_ndjson(
    source: Union[PathLike, Sequence[PathLike]],
    *,
    schema_overrides: Optional[Dict[str, Any]] = None,
    infer_schema_length: Optional[int] = 20480,
    ignore_errors: bool = False,
    compression: Optional[str] = None,
) -> LazyFrame:
    r"""A lazy scan of newline-delimited JSON (one object per line), streamed like
    :func:`scan_csv`, with the same options for the schema, bad records and compression.

    Example:
        >>> import ooc, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.ndjson")
        >>> _ = open(path, "w").write('{"a": 1, "b": "x"}\n{"a": 2}\n')
        >>> ooc.scan_ndjson(path).collect().rows()
        [(1, 'x'), (2, None)]
    """
    return LazyFrame(
        _ooc.scan_text(
            _locations(source),
            "ndjson",
            types=_overrides(schema_overrides),
            sample_rows=infer_schema_length if infer_schema_length is not None else 2**62,
            skip_bad_rows=ignore_errors,
            compression=compression,
        )
    )


def sql(query: str, **tables: Any) -> LazyFrame:
    """A lazy SQL query. ``tables`` maps each table name used in the query to a path (file,
    directory or glob), a ``LazyFrame`` or a ``DataFrame``. Paths can also be written in the
    query itself: ``FROM 'data/*.parquet'``.

    Example:
        >>> import ooc, pyarrow as pa
        >>> t = ooc.from_arrow(pa.table({"a": [1, 2, 3]}))
        >>> ooc.sql("SELECT sum(a) AS s FROM t WHERE a > 1", t=t).collect().rows()
        [(5,)]
    """
    resolved: Dict[str, Any] = {}
    for name, value in tables.items():
        if isinstance(value, LazyFrame):
            resolved[name] = value._lf
        elif isinstance(value, DataFrame):
            resolved[name] = value._df.lazy()
        elif isinstance(value, (str, os.PathLike)):
            resolved[name] = os.fspath(value)
        elif hasattr(value, "__arrow_c_stream__") or _is_pandas(value):
            resolved[name] = from_arrow(value)._df.lazy()
        else:
            raise TypeError(
                f"table {name!r} must be a path, a LazyFrame or Arrow data, not {type(value).__name__}"
            )
    return LazyFrame(_ooc.sql(query, resolved))


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "to_numpy")


def from_arrow(data: Any) -> DataFrame:
    """A frame over Arrow data: anything with ``__arrow_c_stream__`` (pyarrow tables and
    record batches, Polars frames, DuckDB results, ooc frames) is shared without copying;
    a pandas DataFrame or a dict of columns is converted through pyarrow first.

    Example:
        >>> import ooc, pyarrow as pa
        >>> ooc.from_arrow(pa.table({"a": [1, 2]})).shape
        (2, 1)
    """
    if _is_pandas(data):
        # pandas exports its index as a column through its own stream; leave it out.
        import pyarrow as pa

        data = pa.Table.from_pandas(data, preserve_index=False)
    elif not hasattr(data, "__arrow_c_stream__"):
        import pyarrow as pa

        if isinstance(data, dict):
            data = pa.table(data)
        elif isinstance(data, pa.RecordBatchReader):
            data = data.read_all()
        else:
            raise TypeError(
                f"from_arrow() needs Arrow data (an object with __arrow_c_stream__), a pandas "
                f"DataFrame or a dict of columns, not {type(data).__name__}"
            )
    try:
        return DataFrame(_ooc.from_arrow(data))
    except ValueError as e:
        # Some exporters (Polars, for columns of its Null type) hand over buffers that the
        # Arrow C data interface does not allow for that type; pyarrow accepts them and
        # re-exports them by the book. Only objects that can be exported again qualify.
        if "C Data interface error" not in str(e) or not _reexportable(data):
            raise
        import pyarrow as pa

        return DataFrame(_ooc.from_arrow(pa.table(data)))


def _reexportable(data: Any) -> bool:
    """Whether ``__arrow_c_stream__`` can be called again (a frame, not a one-shot reader)."""
    import pyarrow as pa

    return not isinstance(data, pa.RecordBatchReader) and not type(data).__name__.endswith(
        "Reader"
    )


