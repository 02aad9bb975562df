#!/usr/bin/env python3
"""Alternating runs of two ooc binaries over the 22 TPC-H queries, for claims that a change
made ooc faster or slower (or did not): the machines are noisy, so the two binaries take turns.

    benches/alternate.py --old BIN --new BIN --data DIR --rounds N [--memory-limit SIZE]
                         [--queries DIR] --out FILE.json

Each round runs every query once with each binary, the order of the two alternating from round
to round; wall time is measured around the process, peak RSS by /usr/bin/time -f %M. Prints
per-query medians and the geometric means of the medians.
"""
import argparse, json, math, os, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--old", required=True)
p.add_argument("--new", required=True)
p.add_argument("--data", required=True)
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--memory-limit")
p.add_argument("--queries", default="tests/tpch/queries")
p.add_argument("--out", required=True)
a = p.parse_args()

queries = sorted(f for f in os.listdir(a.queries) if f.endswith(".sql"))
results = {"old": {}, "new": {}}

def run(binary, q):
    cmd = ["/usr/bin/time", "-f", "%M", binary, "query", "--data", a.data, "--file",
           os.path.join(a.queries, q), "--format", "csv", "--no-progress"]
    if a.memory_limit:
        cmd += ["--memory-limit", a.memory_limit]
    t = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"{binary} {q} failed: {proc.stderr}")
    rss_kib = int(proc.stderr.strip().splitlines()[-1])
    return wall, rss_kib

for r in range(a.rounds):
    order = [("old", a.old), ("new", a.new)]
    if r % 2:
        order.reverse()
    for q in queries:
        for name, binary in order:
            wall, rss = run(binary, q)
            results[name].setdefault(q, []).append((wall, rss))
    print(f"round {r + 1} done", file=sys.stderr, flush=True)

def summary(name):
    med = {q: statistics.median(w for w, _ in runs) for q, runs in results[name].items()}
    rss = {q: statistics.median(m for _, m in runs) for q, runs in results[name].items()}
    geo = math.exp(sum(math.log(v) for v in med.values()) / len(med))
    return med, rss, geo

old_med, old_rss, old_geo = summary("old")
new_med, new_rss, new_geo = summary("new")
print(f"{'query':8} {'old s':>8} {'new s':>8} {'new/old':>8} {'old MiB':>8} {'new MiB':>8}")
for q in queries:
    print(f"{q[:-4]:8} {old_med[q]:8.3f} {new_med[q]:8.3f} {new_med[q] / old_med[q]:8.3f} "
          f"{old_rss[q] / 1024:8.0f} {new_rss[q] / 1024:8.0f}")
print(f"geomean  {old_geo:8.3f} {new_geo:8.3f} {new_geo / old_geo:8.3f}")
json.dump({"runs": results, "old_geomean": old_geo, "new_geomean": new_geo,
           "ratio": new_geo / old_geo}, open(a.out, "w"), indent=1)
