#!/usr/bin/env python3
"""Markdown tables and PNG plots from a result file of `bench.py`.

    python benches/report.py benches/results/2026-11-25-tpch-sf10.json [...]

Writes next to each JSON file: `<name>.md` (per query: median wall seconds and peak RSS MiB
per engine, a correctness mark, and each peer's ratio to ooc; geometric means at the bottom)
and the plots `<name>-wall.png` and `<name>-rss.png` (per query and engine, log scale). For the
scale suite: `<name>-scale.png` (wall and peak RSS versus scale factor, one panel per query)
and the slope of peak RSS versus scale factor (MiB per SF unit, least squares) per engine.

Ratios are peer / ooc: above 1 means ooc is faster (wall) or smaller (RSS). A geometric mean of
a peer's ratios uses the queries that both ooc and that peer finished; the count is shown.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys

MARK = {True: "✓", False: "✗", None: "?"}


def benchmark(report: dict) -> str:
    """The data set's name: TPC-DS for the tpcds suite, TPC-H for the others."""
    return "TPC-DS" if report["suite"] == "tpcds" else "TPC-H"


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(max(v, 1e-9)) for v in values) / len(values))


def header(report: dict) -> list[str]:
    m, v = report["machine"], report["versions"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("duckdb", "polars", "datafusion", "pyarrow") if k in v)
    lines = [
        f"# Benchmark: {report['suite']} suite, {benchmark(report)} SF{report['sf']:g} "
        f"({report['date']})",
        "",
        f"- Machine: {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['cpu']}, {m['os']}",
        f"- ooc {v.get('ooc', '?')}; {peers}; Python {v.get('python', '?')}",
        f"- Command: `{report['command']}`",
        f"- Runs: {report['warmup']} warm-up + {report['runs']} measured per engine and query, "
        "interleaved; medians. Every run is its own process; peak RSS is `/usr/bin/time -f %M` "
        "of that process. Results are written to Parquet and compared with DuckDB's "
        "(✓ equal, ✗ different, ? no reference).",
    ]
    if report.get("memory_limit"):
        lines.append(f"- Memory limit: {report['memory_limit']} for ooc, ooc-python, DuckDB "
                     "(`memory_limit`) and DataFusion (fair spill pool); Polars has no such "
                     "setting and runs unlimited.")
    if report.get("index_build"):
        b = report["index_build"]
        lines.append(f"- Secondary index of {', '.join(b['columns'])} (used by `ooc`, not by "
                     f"`ooc-noindex`): built in {b['wall']} s under {b['memory_limit']}, peak RSS "
                     f"{b['rss']} MiB, {b['bytes'] / 2**20:.0f} MiB on disk "
                     f"({b['bytes_per_row_per_column']} bytes per row per column).")
    if report.get("elapsed_s"):
        lines.append(f"- Suite wall time: {report['elapsed_s'] / 60:.1f} min")
    lines.append("")
    return lines


def engines_of(report: dict) -> list[str]:
    present = {e for r in report["results"] for e in r["engines"]}
    return [e for e in report["engines"] if e in present]


def cell(e: dict | None) -> str:
    if e is None:
        return "– | –"
    if "wall" not in e:
        return f"failed | {short(e.get('error', ''))}"
    return f"{e['wall']:.2f} {MARK[e.get('correct')]} | {e['rss']:.0f}"


def short(text: str) -> str:
    text = text.replace("|", "/")
    for key, label in (("out of memory", "OOM"), ("Out of Memory", "OOM"),
                       ("timeout", "timeout"), ("ResourcesExhausted", "resources"),
                       ("resources exhausted", "resources"), ("Killed", "killed")):
        if key in text:
            return label
    return "error"


def ratios(report: dict, peer: str) -> tuple[list[float], list[float]]:
    walls, rsses = [], []
    for r in report["results"]:
        a, b = r["engines"].get("ooc"), r["engines"].get(peer)
        if a and b and "wall" in a and "wall" in b:
            walls.append(b["wall"] / a["wall"])
            rsses.append(b["rss"] / a["rss"])
    return walls, rsses


def table(report: dict) -> list[str]:
    engines = engines_of(report)
    peers = [e for e in engines if e != "ooc"]
    scale = report["suite"] == "scale"
    cols = (["SF"] if scale else []) + ["query"]
    cols += [f"{e} wall s | {e} RSS MiB" for e in engines]
    cols += [f"{p}/ooc wall | {p}/ooc RSS" for p in peers]
    width = len(cols) + len(engines) + len(peers)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * width]
    for r in report["results"]:
        row = ([f"{r['sf']:g}"] if scale else []) + [r["query"].removesuffix(".sql")]
        row += [cell(r["engines"].get(e)) for e in engines]
        a = r["engines"].get("ooc")
        for p in peers:
            b = r["engines"].get(p)
            if a and b and "wall" in a and "wall" in b:
                row.append(f"{b['wall'] / a['wall']:.2f} | {b['rss'] / a['rss']:.2f}")
            else:
                row.append("– | –")
        lines.append("| " + " | ".join(row) + " |")
    # Geometric means: each engine over the queries every engine that runs all queries
    # finished (ooc-python has lazy versions of a few only); ratios pairwise.
    full = [e for e in engines if all(e in r["engines"] for r in report["results"])]
    complete = [r for r in report["results"]
                if all("wall" in r["engines"].get(e, {}) for e in full)]
    row = ([""] if scale else []) + [f"geomean ({len(complete)} all finished)"]
    for e in engines:
        if complete and e in full:
            row.append(f"{geomean([r['engines'][e]['wall'] for r in complete]):.2f} | "
                       f"{geomean([r['engines'][e]['rss'] for r in complete]):.0f}")
        else:
            row.append("– | –")
    for p in peers:
        walls, rsses = ratios(report, p)
        row.append(f"{geomean(walls):.2f} | {geomean(rsses):.2f} ({len(walls)})" if walls
                   else "– | –")
    lines.append("| " + " | ".join(row) + " |")
    return lines


def summary(report: dict) -> list[str]:
    lines = ["", "Geometric means of peer / ooc (queries both finished):", ""]
    for p in [e for e in engines_of(report) if e != "ooc"]:
        walls, rsses = ratios(report, p)
        if walls:
            lines.append(f"- {p}: wall {geomean(walls):.2f}, peak RSS {geomean(rsses):.2f} "
                         f"over {len(walls)} queries")
    for e in engines_of(report):
        finished = sum(1 for r in report["results"] if "wall" in r["engines"].get(e, {}))
        wrong = [r["query"] for r in report["results"]
                 if r["engines"].get(e, {}).get("correct") is False]
        ran = sum(1 for r in report["results"] if e in r["engines"])
        text = f"- {e}: finished {finished} of {ran}"
        if wrong:
            text += f"; results differ from DuckDB's on {', '.join(wrong)}"
        lines.append(text)
    return lines


def slopes(report: dict) -> list[str]:
    """Least-squares slope of peak RSS over scale factor, per engine and query."""
    lines = ["", "## Peak RSS versus scale factor", "",
             "Slope of a least-squares line through (SF, median peak RSS), in MiB per SF unit, "
             "and the RSS at the largest SF over the RSS at the smallest.", ""]
    engines = engines_of(report)
    queries = sorted({r["query"] for r in report["results"]}, key=str)
    lines.append("| query | " + " | ".join(f"{e} MiB/SF | {e} growth" for e in engines) + " |")
    lines.append("|---|" + "---|" * (2 * len(engines)))
    for q in queries:
        row = [q.removesuffix(".sql")]
        for e in engines:
            points = [(r["sf"], r["engines"][e]["rss"]) for r in report["results"]
                      if r["query"] == q and "rss" in r["engines"].get(e, {})]
            row.append(slope_cell(points))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def slope_cell(points: list[tuple[float, float]]) -> str:
    if len(points) < 2:
        return "– | –"
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    points.sort()
    return f"{slope:.0f} | {points[-1][1] / points[0][1]:.2f}×"


def plots(report: dict, stem: pathlib.Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["", "(matplotlib is not installed: no plots)"]
    engines = engines_of(report)
    title = (f"{report['suite']} suite, {benchmark(report)} SF{report['sf']:g}, "
             f"{report['machine']['cores']} cores")
    if report.get("memory_limit"):
        title += f", memory limit {report['memory_limit']}"
    written = []
    if report["suite"] != "scale":
        queries = [r["query"].removesuffix(".sql") for r in report["results"]]
        for key, label, suffix in (("wall", "wall time (s, median)", "wall"),
                                   ("rss", "peak RSS (MiB, median)", "rss")):
            fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(queries) + 2), 5.2))
            width = 0.8 / len(engines)
            for i, e in enumerate(engines):
                xs, ys = [], []
                for j, r in enumerate(report["results"]):
                    v = r["engines"].get(e, {}).get(key)
                    if v is not None:
                        xs.append(j + (i - (len(engines) - 1) / 2) * width)
                        ys.append(v)
                ax.bar(xs, ys, width, label=e)
            ax.set_xticks(range(len(queries)))
            ax.set_xticklabels(queries, rotation=45, ha="right")
            ax.set_yscale("log")
            ax.set_ylabel(label + ", log scale")
            ax.set_title(title)
            ax.legend(fontsize="small", ncol=len(engines), loc="upper center",
                      bbox_to_anchor=(0.5, -0.16), frameon=False)
            ax.grid(axis="y", alpha=0.3)
            fig.tight_layout()
            path = stem.parent / f"{stem.name}-{suffix}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path.name)
    else:
        queries = list(dict.fromkeys(r["query"] for r in report["results"]))
        fig, axes = plt.subplots(2, len(queries), figsize=(4 * len(queries), 7.5), squeeze=False)
        for col, q in enumerate(queries):
            for row, (key, label) in enumerate((("wall", "wall time (s)"), ("rss", "peak RSS (MiB)"))):
                ax = axes[row][col]
                for e in engines:
                    pts = sorted((r["sf"], r["engines"][e][key]) for r in report["results"]
                                 if r["query"] == q and key in r["engines"].get(e, {}))
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=e)
                ax.set_xlabel("scale factor")
                ax.set_ylabel(label)
                ax.set_title(q.removesuffix(".sql"))
                ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize="small")
        fig.suptitle(title)
        fig.tight_layout()
        path = stem.parent / f"{stem.name}-scale.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path.name)
    return [""] + [f"![{name}]({name})" for name in written]


def render(path: pathlib.Path) -> pathlib.Path:
    path = pathlib.Path(path)
    report = json.loads(path.read_text())
    stem = path.with_suffix("")
    lines = header(report) + table(report) + summary(report)
    if report["suite"] == "scale":
        lines += slopes(report)
    lines += plots(report, stem)
    failures = [(r["query"], e, x["error"]) for r in report["results"]
                for e, x in r["engines"].items() if "error" in x]
    if failures:
        lines += ["", "Failures (last error of each):", ""]
        lines += [f"- {q} {e}: {err}" for q, e, err in failures]
    out = path.with_suffix(".md")
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(render(pathlib.Path(arg)))
