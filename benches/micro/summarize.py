#!/usr/bin/env python3
"""Summarize the criterion micro-benchmarks of benches/micro as a Markdown table.

Reads every `<target-dir>/criterion/**/new/benchmark.json` (the benchmark's id and declared
throughput) with the `estimates.json` next to it (criterion's estimates in nanoseconds) and
prints, per benchmark, the median time per iteration with its 95 % confidence interval and
the throughput that median gives (rows/s, and bytes/s where the benchmark declares bytes).
Benchmarks are listed in the order they ran. A header records the machine: `nproc`, the CPU
model (`lscpu`), memory (`/proc/meminfo`), the kernel and the git commit.

Results of benchmarks that were renamed or removed stay in criterion's directory; delete
`<target-dir>/criterion` before a full run to summarize that run alone.

Usage:
    python3 benches/micro/summarize.py [--target-dir target] [--out FILE]
        [--title TITLE] [--wall-time SECONDS] [--command TEXT]

Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

# Groups in the order the bench files run (cargo runs them alphabetically by file name, but
# the table reads better by topic).
GROUP_ORDER = [
    "parquet_decode",
    "kernels",
    "in_place_vs_allocating",
    "aggregate",
    "sort",
    "spill",
    "join",
]


def run(args: list[str]) -> str:
    """Output of a command, or '' when it cannot run."""
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine_facts(repo: Path) -> list[tuple[str, str]]:
    """(name, value) pairs describing the machine and the checkout."""
    model = ""
    for line in run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                memory = f"{kib / 1024 / 1024:.1f} GiB ({kib} kB MemTotal)"
    except OSError:
        pass
    commit = run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return [
        ("CPUs (`nproc`)", run(["nproc"]) or str(os.cpu_count())),
        ("CPU model (`lscpu`)", model or "unknown"),
        ("Memory (`/proc/meminfo`)", memory or "unknown"),
        ("Kernel", platform.release()),
        ("rustc", run(["rustc", "--version"]) or "unknown"),
        ("Commit", (commit + (" + uncommitted changes" if dirty else "")) or "unknown"),
    ]


def format_time(ns: float) -> str:
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}" if ns / scale < 100 else f"{ns / scale:.0f} {unit}"
    return f"{ns:.3g} ns"


def format_rate(per_second: float, unit: str) -> str:
    if unit == "B":
        for name, scale in (("GiB/s", 1 << 30), ("MiB/s", 1 << 20), ("KiB/s", 1 << 10)):
            if per_second >= scale:
                return f"{per_second / scale:.3g} {name}"
        return f"{per_second:.3g} B/s"
    for name, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{per_second / scale:.3g} {name}{unit}/s"
    return f"{per_second:.3g} {unit}/s"


def throughput_amounts(throughput: dict | None) -> tuple[float | None, float | None]:
    """(elements, bytes) processed per iteration, from criterion's serialized Throughput."""
    if not throughput:
        return None, None
    (kind, value), = throughput.items()
    if kind == "Elements":
        return float(value), None
    if kind in ("Bytes", "BytesDecimal"):
        return None, float(value)
    if kind == "ElementsAndBytes":
        return float(value["elements"]), float(value["bytes"])
    if kind == "Bits":
        return None, float(value) / 8
    return None, None


def collect(criterion_dir: Path) -> list[dict]:
    rows = []
    for benchmark_file in criterion_dir.glob("**/new/benchmark.json"):
        estimates_file = benchmark_file.with_name("estimates.json")
        if not estimates_file.exists():
            continue
        benchmark = json.loads(benchmark_file.read_text())
        estimates = json.loads(estimates_file.read_text())
        median = estimates["median"]
        elements, nbytes = throughput_amounts(benchmark.get("throughput"))
        rows.append(
            {
                "group": benchmark["group_id"],
                "id": benchmark["full_id"],
                "median_ns": median["point_estimate"],
                "low_ns": median["confidence_interval"]["lower_bound"],
                "high_ns": median["confidence_interval"]["upper_bound"],
                "elements": elements,
                "bytes": nbytes,
                "finished": estimates_file.stat().st_mtime,
            }
        )
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    rows.sort(key=lambda r: (order.get(r["group"], len(order)), r["group"], r["finished"]))
    return rows


def render(rows: list[dict], facts: list[tuple[str, str]], args: argparse.Namespace) -> str:
    lines = [f"# {args.title}", ""]
    if args.command:
        lines += [f"Command: `{args.command}`", ""]
    lines += ["| Machine | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts]
    if args.wall_time:
        lines.append(f"| Wall time of the command | {float(args.wall_time):.0f} s |")
    finished = max((r["finished"] for r in rows), default=None)
    if finished:
        when = datetime.datetime.fromtimestamp(finished).strftime("%Y-%m-%d %H:%M")
        lines.append(f"| Last result written | {when} |")
    lines += [
        "",
        "Median time per iteration (95 % confidence interval of the median) and the throughput",
        "at that median. Rows/s count the input rows of one iteration; bytes/s count",
        "uncompressed in-memory Arrow bytes (decoded bytes for Parquet decode).",
        "",
    ]
    group = None
    for row in rows:
        if row["group"] != group:
            group = row["group"]
            lines += [
                "",
                f"## {group}",
                "",
                "| Benchmark | Median | 95 % CI | Rows/s | Bytes/s |",
                "|---|---:|---:|---:|---:|",
            ]
        seconds = row["median_ns"] / 1e9
        rate_rows = format_rate(row["elements"] / seconds, "rows") if row["elements"] else ""
        rate_bytes = format_rate(row["bytes"] / seconds, "B") if row["bytes"] else ""
        name = row["id"][len(group) + 1 :] if row["id"].startswith(group + "/") else row["id"]
        ci = f"{format_time(row['low_ns'])} – {format_time(row['high_ns'])}"
        lines.append(
            f"| `{name}` | {format_time(row['median_ns'])} | {ci} | {rate_rows} | {rate_bytes} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--target-dir",
        default=os.environ.get("CARGO_TARGET_DIR", str(repo / "target")),
        help="cargo target directory the benches ran in (default: $CARGO_TARGET_DIR or target)",
    )
    parser.add_argument("--out", help="write the Markdown here instead of stdout")
    parser.add_argument("--title", default="ooc micro-benchmarks (criterion)")
    parser.add_argument("--wall-time", help="seconds the command took (compiling included when it compiled), for the header")
    parser.add_argument("--command", help="the command that ran the benchmarks, for the header")
    args = parser.parse_args()

    criterion_dir = Path(args.target_dir) / "criterion"
    rows = collect(criterion_dir)
    if not rows:
        print(f"no criterion results under {criterion_dir}", file=sys.stderr)
        return 1
    text = render(rows, machine_facts(repo), args)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
