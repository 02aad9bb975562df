"""The result cache: query results kept on disk and mapped back when the same query runs again.

Turn it on for one query with ``lf.collect(cache=True)``, or for every ``collect()`` with
``ooc.config(cache=True)`` (also ``cache_dir=``, ``cache_max_size=``, ``cache_min_time=``).
A result is stored under a key of its optimized plan and the fingerprints of its input files
(path, size, modification time, a hash of the Parquet footer), so a changed or added file is a
miss, while another memory limit or thread count is still a hit. A hit maps the stored Arrow
IPC file instead of reading it onto the heap. Entries are written to a temporary file and
renamed, checked by CRC-32 when read, and evicted least recently used first when the cache
outgrows its bound.

The functions here inspect and trim the cache directory (the one ``ooc.config`` names, or
``dir``), like ``ooc cache stats | list | verify | prune | clear`` on the command line.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Union

from . import _ooc

__all__ = ["info", "entries", "verify", "prune", "clear"]


def _dir(dir: Union[str, "os.PathLike[str]", None]) -> Optional[str]:
    return None if dir is None else os.fspath(dir)


def info(dir: Union[str, "os.PathLike[str]", None] = None) -> Dict[str, Any]:
    """Totals: ``dir``, ``entries``, ``bytes``, ``max_size`` (the bound), ``rows``,
    ``compute_seconds`` (what one hit on every entry saves) and ``leftovers`` (files of
    killed writers, removed by ``prune``)."""
    return _ooc.cache_info(_dir(dir))


def entries(dir: Union[str, "os.PathLike[str]", None] = None) -> List[Dict[str, Any]]:
    """Every entry, least recently used first: ``key``, ``rows``, ``bytes``,
    ``compute_seconds``, ``last_access`` and ``created`` (Unix seconds), ``compression``,
    ``schema``, ``inputs`` (paths) and ``plan``."""
    return _ooc.cache_entries(_dir(dir))


def verify(dir: Union[str, "os.PathLike[str]", None] = None) -> Dict[str, Any]:
    """Check every entry completely (every checksum, every batch decoded) and remove bad
    ones; returns ``checked``, ``removed`` (key and reason), ``freed_bytes``."""
    return _ooc.cache_verify(_dir(dir))


def prune(
    max_size: Union[int, str, None] = None, dir: Union[str, "os.PathLike[str]", None] = None
) -> Dict[str, Any]:
    """Remove least recently used entries until the cache fits ``max_size`` (bytes or e.g.
    ``"2GB"``; default: its bound), and files left by killed processes."""
    return _ooc.cache_prune(max_size, _dir(dir))


def clear(dir: Union[str, "os.PathLike[str]", None] = None) -> Dict[str, Any]:
    """Remove every entry."""
    return _ooc.cache_clear(_dir(dir))
