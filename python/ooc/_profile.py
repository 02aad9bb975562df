"""``MemoryProfile``: who held the memory at a query's peak, and the timeline of reserved
bytes against the process's RSS (``LazyFrame.profile_memory``)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]


class MemoryProfile:
    """The memory profile of one query run.

    ``holders`` lists every operator and part of its state (``groups``, ``build side``,
    ``sort buffer``, ``spill buffers``, ...) with the bytes it held at the moment of the
    query's peak, largest first; they sum exactly to ``peak_reserved_bytes``. ``rss_bytes``
    is the process's resident memory then (``rss_anon_bytes`` + ``rss_file_bytes``: the
    heap, and pages of mapped files), ``outside_pool_bytes`` what the pool does not account
    for. In Jupyter or marimo the profile renders inline as a flame graph over the timeline;
    ``save(path)`` writes it as ``.svg`` or ``.html``.
    """

    def __init__(self, summary: str, svg: str, html: str, figures: Dict[str, Any]) -> None:
        self.summary = summary
        self.svg = svg
        self._html = html
        self._figures = figures

    @property
    def peak_reserved_bytes(self) -> int:
        """The most bytes the query's operators held at once."""
        return self._figures["peak_reserved_bytes"]

    @property
    def peak_at_seconds(self) -> float:
        """When the peak was reached, in seconds since the query started."""
        return self._figures["peak_at_seconds"]

    @property
    def limit_bytes(self) -> Optional[int]:
        """The query's memory budget (``None``: no limit)."""
        return self._figures["limit_bytes"]

    @property
    def rss_bytes(self) -> Optional[int]:
        """The process's resident memory at the peak."""
        return self._figures["rss_bytes"]

    @property
    def rss_anon_bytes(self) -> Optional[int]:
        """Of ``rss_bytes``, the anonymous part (heap, stacks)."""
        return self._figures["rss_anon_bytes"]

    @property
    def rss_file_bytes(self) -> Optional[int]:
        """Of ``rss_bytes``, the pages of mapped files (input files, cache entries, code)."""
        return self._figures["rss_file_bytes"]

    @property
    def outside_pool_bytes(self) -> Optional[int]:
        """Resident bytes at the peak that the pool does not account for."""
        return self._figures["outside_pool_bytes"]

    @property
    def holders(self) -> List[Dict[str, Any]]:
        """``{"operator", "operator_index", "part", "bytes"}`` per holder at the peak."""
        return self._figures["holders"]

    @property
    def timeline(self) -> List[Tuple[float, int, int]]:
        """``(seconds, reserved_bytes, rss_bytes)`` points, a few hundred at most."""
        return self._figures["timeline"]

    def to_dict(self) -> Dict[str, Any]:
        """The figures as a dict (what ``DataFrame.stats["memory_at_peak"]`` holds)."""
        return dict(self._figures)

    def save(self, path: PathLike) -> None:
        """Write the profile to ``path``: an HTML page (flame graph and summary) when the name
        ends in ``.html``, else the SVG. Written to a temporary file, then renamed."""
        path = os.fspath(path)
        text = self._html if path.lower().endswith((".html", ".htm")) else self.svg
        directory = os.path.dirname(os.path.abspath(path))
        fd, temporary = tempfile.mkstemp(prefix=".ooc-profile-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise

    def _repr_html_(self) -> str:
        return self.svg

    def _repr_svg_(self) -> str:
        return self.svg

    def _mime_(self) -> Tuple[str, str]:
        # marimo's display protocol.
        return ("text/html", self.svg)

    def __str__(self) -> str:
        return self.summary

    def __repr__(self) -> str:
        return f"<MemoryProfile peak {self.peak_reserved_bytes} B reserved, {len(self.holders)} holders>"
