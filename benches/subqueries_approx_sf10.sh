#!/bin/bash
# Issue #26 items 3 and 5 at TPC-H SF10: subqueries (correlated by non-equalities, in grouped
# select lists, LATERAL) and approximate aggregates, ooc under 256MB and 1GB against DuckDB
# under 1GB; wall time and peak RSS of each process, 3 runs alternating. Results:
# benches/results/2026-12-06-subqueries-approx-sf10.md.
#
# Usage: benches/subqueries_approx_sf10.sh [DATA_DIR]   (default data/sf10; needs benches/.venv)
set -u
D=${1:-data/sf10}
OOC=${OOC:-target/release/ooc}
PY=${PY:-benches/.venv/bin/python}
OUT=$(mktemp -d)
declare -A Q
Q[band]="select count(*), sum(v) from (select o_orderkey, (select sum(l_extendedprice) from lineitem where l_orderkey = o_orderkey and l_shipdate > o_orderdate + 60) v from orders) t"
Q[grouped]="select count(*), sum(b) from (select o_custkey, count(*) n, (select max(c_acctbal) from customer where c_custkey = o_custkey) b from orders group by o_custkey having sum(o_totalprice) > (select 20 * avg(c_acctbal) from customer where c_custkey = o_custkey)) t"
Q[lateral_top2]="select count(*), sum(t.o_totalprice) from customer, lateral (select o_orderkey, o_totalprice from orders where o_custkey = c_custkey order by o_totalprice desc, o_orderkey limit 2) t"
Q[lateral_agg]="select count(*), sum(t.n), sum(t.s) from customer, lateral (select count(*) n, sum(o_totalprice) s from orders where o_custkey = c_custkey and o_totalprice > c_acctbal * 20) t"
Q[approx_global]="select approx_count_distinct(l_orderkey), approx_count_distinct(l_comment), approx_quantile(l_extendedprice, 0.5), approx_quantile(l_shipdate, 0.9) from lineitem"
Q[exact_global]="select count(distinct l_orderkey), count(distinct l_comment), quantile_disc(l_extendedprice, 0.5), quantile_disc(l_shipdate, 0.9) from lineitem"
Q[approx_grouped]="select count(*), sum(a), sum(q) from (select l_suppkey, approx_count_distinct(l_partkey) a, approx_quantile(l_quantity, 0.5) q from lineitem group by l_suppkey) t"
for name in band grouped lateral_top2 lateral_agg approx_global exact_global approx_grouped; do
  sql="${Q[$name]}"
  for run in 1 2 3; do
    for lim in 256MB 1GB; do
      /usr/bin/time -f "%e %M" -o "$OUT/t" "$OOC" query --data "$D" --memory-limit $lim "$sql" \
        --format csv > "$OUT/ooc.csv" 2> "$OUT/err" || head -c 300 "$OUT/err"
      echo "$name ooc_$lim run$run $(cat "$OUT/t") $(tail -1 "$OUT/ooc.csv")"
    done
    /usr/bin/time -f "%e %M" -o "$OUT/t" "$PY" -c "
import duckdb, sys
con = duckdb.connect()
con.execute('set enable_progress_bar=false')
con.execute(\"set memory_limit='1GB'\")
for t in ['lineitem', 'orders', 'customer']:
    con.execute(f\"create view {t} as select * from read_parquet('$D/{t}.parquet')\")
print(con.execute(sys.argv[1]).fetchall())" "$sql" > "$OUT/duck.txt" 2>&1
    echo "$name duckdb_1GB run$run $(cat "$OUT/t") $(tail -c 300 "$OUT/duck.txt")"
  done
done
rm -rf "$OUT"
