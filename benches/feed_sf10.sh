#!/usr/bin/env bash
# Feeding models from TPC-H SF10 lineitem (60M rows), issue #33: throughput of iter_batches
# with and without conversion and shuffling, IncrementalPCA fed by ooc, DuckDB and Polars
# (components compared), and sink_numpy; peak RSS of each Python process by /usr/bin/time
# from this small shell. Runs alternate the cases RUNS times; the summary gives medians.
#   usage: benches/feed_sf10.sh [lineitem.parquet ...]   (default: data/sf10/lineitem.parquet)
#   env:   RUNS (default 3), OUT (default benches/results/feed-raw.jsonl), CASES (default: all;
#          the PCA comparison needs the three pca-* cases)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$repo/benches/.venv/bin/python"
runs="${RUNS:-3}"
out="${OUT:-$repo/benches/results/feed-raw.jsonl}"
files=("$@")
[[ ${#files[@]} -gt 0 ]] || files=("$repo/data/sf10/lineitem.parquet")
"$repo/benches/setup.sh"
"$py" -c "import sklearn" 2>/dev/null || "$py" -m pip install --quiet scikit-learn
: > "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for file in "${files[@]}"; do
    for run in $(seq "$runs"); do
        for case in ${CASES:-plain numpy arrow shuffle same-seed pca-ooc pca-duckdb pca-polars sink sink-check}; do
            result="$tmp/$case.npy"
            [[ "$case" == sink* ]] && result="$tmp/sink.npy"
            line="$(/usr/bin/time -f "%M" -o "$tmp/rss" "$py" "$repo/benches/feed.py" "$case" "$file" --out "$result" | tail -1)"
            rss_kib="$(tail -1 "$tmp/rss")"
            extra=""
            case "$case" in
                pca-*) cp "$result" "$tmp/$case.components.npy" ;;
            esac
            "$py" -c "import json,sys; d=json.loads(sys.argv[1]); d.update(file=sys.argv[2], run=int(sys.argv[3]), peak_rss_mib=int(sys.argv[4])/1024); print(json.dumps(d))" \
                "$line" "$file" "$run" "$rss_kib" >> "$out"
            tail -1 "$out"
        done
        # The components of the three PCA fits, against DuckDB-fed ones.
        [[ -f "$tmp/pca-duckdb.components.npy" ]] || continue
        "$py" - "$tmp" "$file" "$run" >> "$out" <<'EOF'
import json, sys
import numpy as np
tmp, file, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
duck = np.load(f"{tmp}/pca-duckdb.components.npy")
diff = {c: float(np.abs(np.load(f"{tmp}/{c}.components.npy") - duck).max()) for c in ("pca-ooc", "pca-polars")}
print(json.dumps({"case": "pca-compare", "file": file, "run": run, "max_abs_diff_vs_duckdb": diff}))
EOF
        tail -1 "$out"
    done
done
"$py" - "$out" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
files = sorted({r["file"] for r in rows})
for f in files:
    print(f"\n{f}")
    plain = statistics.median(r["rows_per_second"] for r in rows if r["file"] == f and r["case"] == "plain")
    for case in ("plain", "numpy", "arrow", "shuffle", "pca-ooc", "pca-duckdb", "pca-polars", "sink"):
        rs = [r for r in rows if r["file"] == f and r["case"] == case]
        if not rs:
            continue
        rate = statistics.median(r["rows_per_second"] for r in rs)
        print(f"  {case:11s} {statistics.median(r['seconds'] for r in rs):7.2f} s  "
              f"{rate / 1e6:6.2f} M rows/s ({rate / plain:5.2f} of plain)  "
              f"peak RSS {statistics.median(r['peak_rss_mib'] for r in rs):6.0f} MiB")
    for r in rows:
        if r["file"] == f and r["case"] in ("pca-compare", "shuffle", "same-seed", "sink-check"):
            checks = {k: v for k, v in r.items() if k not in ("file", "seconds", "rows_per_second", "sums", "file_order_sums")}
            print("  check:", json.dumps(checks))
EOF
