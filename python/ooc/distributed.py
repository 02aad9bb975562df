"""Run ooc queries on a cluster: a Dask ``Client``, or any ``concurrent.futures`` executor.

ooc cuts the query's plan into stages of tasks at its pipeline breakers (aggregations, joins,
sorts); each task is an ordinary ooc query with its own memory limit, run where the executor
puts it, that writes its output as checksummed Arrow IPC files into a scratch directory every
worker and this process can read. The last part of the plan runs here, over the files of the
stages below it. Example (two worker processes on this machine)::

    from dask.distributed import Client, LocalCluster
    import ooc

    client = Client(LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1GB"))
    lf = ooc.scan_parquet("lineitem/").group_by("l_returnflag").agg(ooc.col("l_quantity").sum())
    df = lf.collect(executor=client)              # or ooc.distributed.collect(lf, client)

A ``concurrent.futures.ProcessPoolExecutor`` works the same way without Dask. A task that
fails raises the same ``ooc`` exception the query would raise in one process; a worker that
dies has its tasks run again by the executor (Dask does this by itself), and files written by
an attempt that died are never read. The scratch directory of a query is removed when it ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from . import _ooc

__all__ = ["collect", "sink_parquet", "explain", "run_task", "task_budget"]

# A Dask worker's nanny restarts the worker at 95% of its memory limit (and pauses it at 80%);
# the worker's interpreter, Dask itself and ooc's memory outside its pool (the promise in the
# README) come on top of a task's budget. Unless told otherwise, a task takes 80% of the
# worker's limit less this reserve (at a 1 GB worker: 490 MiB).
_WORKER_SHARE = 0.8
_WORKER_RESERVE = 256 << 20
_MIN_TASK_BUDGET = 64 << 20


def task_budget(worker_limit: int) -> int:
    """The memory limit of a task on a worker whose own limit is ``worker_limit`` bytes."""
    return max(_MIN_TASK_BUDGET, int(worker_limit * _WORKER_SHARE) - _WORKER_RESERVE)


def _dask_worker_limit() -> Optional[int]:
    """The memory limit of the Dask worker this runs in, if any."""
    try:
        from distributed import get_worker  # type: ignore
    except ImportError:
        return None
    try:
        worker = get_worker()
    except ValueError:
        return None
    limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
    if limit is None:
        limit = getattr(worker, "memory_limit", None)
    return int(limit) if limit else None


def run_task(fragment: bytes, memory_limit: Optional[int] = None, threads: int = 1) -> bytes:
    """Run one task of a distributed query (what the executor calls on a worker).

    ``memory_limit`` in bytes; ``None``: ``task_budget`` of the Dask worker's own limit when
    this runs in a Dask worker, else the current ``ooc.config`` limit.
    """
    if memory_limit is None:
        worker_limit = _dask_worker_limit()
        if worker_limit:
            memory_limit = task_budget(worker_limit)
    return _ooc.run_fragment(fragment, memory_limit, threads)


def _is_dask(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


def _workers(executor: Any) -> int:
    if _is_dask(executor):
        try:
            return max(1, len(executor.scheduler_info().get("workers", {})))
        except Exception:  # pragma: no cover - a client that cannot answer
            return 1
    for attr in ("_max_workers", "max_workers"):
        n = getattr(executor, attr, None)
        if isinstance(n, int) and n > 0:
            return n
    return os.cpu_count() or 1


def _first_done(futures: List[Any]) -> List[Any]:
    """Wait until at least one of ``futures`` has finished; return those that have."""
    import concurrent.futures as cf

    if all(isinstance(f, cf.Future) for f in futures):
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return list(done)
    try:
        from distributed import Future as DaskFuture, wait as dask_wait  # type: ignore

        if all(isinstance(f, DaskFuture) for f in futures):
            done, _ = dask_wait(futures, return_when="FIRST_COMPLETED")
            return list(done)
    except ImportError:
        pass
    # Anything else with done(): poll.
    while True:
        done = [f for f in futures if f.done()]
        if done:
            return done
        time.sleep(0.005)


def _submit(executor: Any, key: str, *args: Any) -> Any:
    if _is_dask(executor):
        return executor.submit(run_task, *args, key=key, pure=False)
    return executor.submit(run_task, *args)


class _Run:
    """One distributed run: the plan, its scratch directory, the reports."""

    def __init__(
        self,
        lf: Any,
        executor: Any,
        *,
        worker_memory_limit: Any,
        worker_threads: int,
        scratch_dir: Optional[str],
        buckets: Optional[int],
        scan_tasks: Optional[int],
        broadcast_bytes: Any,
        replicate_bytes: Any,
        compression: bool,
        sink_dir: Optional[str] = None,
    ) -> None:
        if not hasattr(executor, "submit"):
            raise TypeError(
                "executor must be a dask.distributed.Client or a concurrent.futures.Executor, "
                f"not {type(executor).__name__}"
            )
        self.executor = executor
        self.memory_limit = _ooc.parse_size(worker_memory_limit, "worker_memory_limit")
        self.threads = max(1, int(worker_threads))
        self.own_scratch = scratch_dir is None
        self.scratch = tempfile.mkdtemp(prefix="ooc-scratch-") if scratch_dir is None else scratch_dir
        os.makedirs(self.scratch, exist_ok=True)
        self.plan = _ooc.PyDistributedPlan(
            lf._lf,
            _workers(executor),
            self.scratch,
            buckets,
            scan_tasks,
            _ooc.parse_size(replicate_bytes, "replicate_bytes"),
            _ooc.parse_size(broadcast_bytes, "broadcast_bytes"),
            compression,
            sink_dir,
        )
        self.reports: List[Dict[str, Any]] = []
        self.seconds = 0.0

    def run_stages(self) -> None:
        """Run every stage: a stage's tasks are submitted as soon as the stages it reads have
        finished (not in waves), so a short stage does not wait for a long one beside it."""
        started = time.perf_counter()
        plan = self.plan
        submitted = set()
        running: Dict[Any, Tuple[int, int]] = {}
        try:
            while len(submitted) < plan.num_stages or running:
                for s in range(plan.num_stages):
                    if s in submitted or not all(plan.stage_done(i) for i in plan.stage_inputs(s)):
                        continue
                    for t in range(plan.num_tasks(s)):
                        key = f"ooc-{plan.query_id}-stage{s}-task{t}"
                        args = (plan.fragment(s, t), self.memory_limit, self.threads)
                        running[_submit(self.executor, key, *args)] = (s, t)
                    submitted.add(s)
                if not running:  # pragma: no cover - stages always come after their inputs
                    raise RuntimeError("a distributed plan whose stages wait for each other")
                for future in _first_done(list(running)):
                    del running[future]
                    self.reports.append(plan.record(future.result()))
        except BaseException:
            for future in running:
                future.cancel()
            raise
        self.seconds = time.perf_counter() - started

    def summary(self) -> Dict[str, Any]:
        pids = sorted({r["pid"] for r in self.reports})
        return {
            "stages": self.plan.num_stages,
            "tasks": len(self.reports),
            "workers_used": len(pids),
            "bytes_shuffled": sum(r["bytes_written"] for r in self.reports),
            "bytes_read": sum(r["bytes_read"] for r in self.reports),
            "max_task_peak_rss_bytes": max((r["peak_rss_bytes"] for r in self.reports), default=0),
            "max_task_peak_reserved_bytes": max(
                (r["peak_reserved_bytes"] for r in self.reports), default=0
            ),
            "stage_seconds": self.seconds,
            "task_reports": list(self.reports),
            "plan": self.plan.display(),
        }

    def close(self) -> None:
        target = self.scratch if self.own_scratch else os.path.join(self.scratch, self.plan.query_id)
        shutil.rmtree(target, ignore_errors=True)


def _run(lf: Any, executor: Any, options: Dict[str, Any], sink_dir: Optional[str] = None) -> _Run:
    return _Run(lf, executor, sink_dir=sink_dir, **options)


def _options(
    worker_memory_limit: Any = None,
    worker_threads: int = 1,
    scratch_dir: Optional[str] = None,
    buckets: Optional[int] = None,
    scan_tasks: Optional[int] = None,
    broadcast_bytes: Any = None,
    replicate_bytes: Any = None,
    compression: bool = False,
) -> Dict[str, Any]:
    return dict(
        worker_memory_limit=worker_memory_limit,
        worker_threads=worker_threads,
        scratch_dir=scratch_dir,
        buckets=buckets,
        scan_tasks=scan_tasks,
        broadcast_bytes=broadcast_bytes,
        replicate_bytes=replicate_bytes,
        compression=compression,
    )


def collect(lf: Any, executor: Any, **options: Any) -> Any:
    """Run the lazy frame ``lf`` on ``executor`` and gather the result here.

    Options: ``worker_memory_limit`` (per task: bytes or a size such as ``"1GB"``; default
    80% of a Dask worker's own limit less 256 MiB, see ``task_budget``; else the
    ``ooc.config`` limit),
    ``worker_threads`` (1), ``scratch_dir`` (a directory every worker and this process can
    read and write; default a temporary directory, which suits workers on this machine),
    ``buckets`` (hash partitions of each shuffle; default twice the workers), ``scan_tasks``
    (tasks sharing a large table's row groups; default four times the workers),
    ``broadcast_bytes`` (a join side estimated below this is sent whole to every task of the
    other side; 32 MB), ``replicate_bytes`` (tables whose columns take less than this in their
    files are read whole by every task; 16 MB), ``compression`` (zstd for exchange files).

    The result's ``stats["distributed"]`` holds the stages, the bytes shuffled and every
    task's report (rows, bytes read and written, peak memory, wall time, process).
    """
    from ._frame import DataFrame

    run = _run(lf, executor, _options(**options))
    try:
        run.run_stages()
        inner = run.plan.collect_root()
    finally:
        run.close()
    df = DataFrame(inner)
    df._distributed = run.summary()
    return df


def sink_parquet(
    lf: Any, path: str, executor: Any, *, per_task: bool = False, **options: Any
) -> Dict[str, Any]:
    """Run ``lf`` on ``executor`` and write the result as Parquet. Options as for
    :func:`collect`.

    By default one file at ``path``, written here from the last stage's output (atomically: a
    temporary file renamed when complete). With ``per_task=True``, ``path`` is a directory
    that the last stage's tasks fill with one file each (``part-STAGE-TASK.parquet``), written
    into a temporary directory beside it that is renamed to ``path`` once every task has
    finished (``path`` must not exist, or be empty); a query whose last step runs in one place
    (ORDER BY, LIMIT, an aggregate without GROUP BY) is refused. ``ooc.scan_parquet(path)``
    reads the directory back. Returns statistics with a ``distributed`` entry (and ``files``
    with ``per_task``)."""
    path = os.fspath(path)
    if not per_task:
        run = _run(lf, executor, _options(**options))
        try:
            run.run_stages()
            stats = dict(run.plan.sink_root(path, "parquet"))
        finally:
            run.close()
        stats["distributed"] = run.summary()
        return stats
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(f"{path} exists: sink_parquet(per_task=True) writes a new directory")
    parent = os.path.dirname(os.path.abspath(path))
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    try:
        run = _run(lf, executor, _options(**options), sink_dir=staging)
        try:
            run.run_stages()
            files = run.plan.output_files()
        finally:
            run.close()
        if os.path.isdir(path):
            os.rmdir(path)
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    written = [
        {"path": os.path.join(path, os.path.basename(p)), "rows": rows, "bytes": size}
        for p, rows, size in files
    ]
    return {
        "rows": sum(f["rows"] for f in written),
        "files": written,
        "distributed": run.summary(),
    }


def explain(lf: Any, executor: Any, *, analyze: bool = False, **options: Any) -> str:
    """The stages ``lf`` is cut into; with ``analyze=True`` the query runs on ``executor``
    and every task's figures follow (rows, bytes read and shuffled, peak memory, time)."""
    run = _run(lf, executor, _options(**options))
    try:
        if not analyze:
            return run.plan.display()
        run.run_stages()
        df = run.plan.collect_root()
        root_report = (df.stats() or {}).get("report", "")
    finally:
        run.close()
    lines = [run.plan.display(), "tasks:"]
    lines.append(
        f"  {'stage':>5} {'task':>4} {'pid':>7} {'rows':>12} {'read':>10} {'shuffled':>10} "
        f"{'peak rss':>10} {'reserved':>10} {'seconds':>8}"
    )
    for r in run.reports:
        lines.append(
            f"  {r['stage']:>5} {r['task']:>4} {r['pid']:>7} {r['output_rows']:>12} "
            f"{_mib(r['bytes_read']):>10} {_mib(r['bytes_written']):>10} "
            f"{_mib(r['peak_rss_bytes']):>10} {_mib(r['peak_reserved_bytes']):>10} "
            f"{r['wall_seconds']:>8.2f}"
        )
    summary = run.summary()
    lines.append(
        f"stages {summary['stages']}, tasks {summary['tasks']} on {summary['workers_used']} "
        f"worker processes in {summary['stage_seconds']:.2f} s; shuffled "
        f"{_mib(summary['bytes_shuffled'])}"
    )
    lines.append("root (this process):")
    lines.append(root_report)
    return "\n".join(lines)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
