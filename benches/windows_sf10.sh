#!/usr/bin/env bash
# The two SF10 windows of issue #26 (see benches/results/2026-12-06-windows-sf10.md): ooc under
# 256MB and DuckDB without and with a 256MB limit, each writing Parquet, then DuckDB compares
# the answers row by row. Run from the repository root: DATA=data/sf10 benches/windows_sf10.sh
set -u
BIN=${BIN:-target/release/ooc}
D=${DATA:-data/sf10}
OUT=${OUT:-/tmp/ooc-windows}; mkdir -p "$OUT"
PY=${PY:-benches/.venv/bin/python}
Q1="SELECT l_orderkey, l_linenumber, l_suppkey, avg(l_extendedprice) OVER (PARTITION BY l_suppkey ORDER BY l_shipdate, l_orderkey, l_linenumber ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS moving_avg FROM lineitem"
Q2="SELECT l_orderkey, l_linenumber, sum(l_extendedprice) OVER (ORDER BY l_shipdate, l_orderkey, l_linenumber) AS running FROM lineitem"
for n in 1 2; do
  eval Q=\$Q$n
  rm -f $OUT/ooc$n.parquet $OUT/duck$n.parquet
  echo "== q$n ooc 256MB"
  /usr/bin/time -f "ooc q$n: %e s, peak RSS %M KB" $BIN query --no-progress --data $D --memory-limit 256MB --temp-dir "$OUT" -o $OUT/ooc$n.parquet "$Q" 2>&1 | tail -2
  echo "== q$n duckdb"
  /usr/bin/time -f "duckdb q$n: %e s, peak RSS %M KB" $PY -c "
import duckdb
con=duckdb.connect(config={'threads': 2})
con.execute(\"create view lineitem as select * from '$D/lineitem.parquet'\")
con.execute(\"copy ($Q) to '$OUT/duck$n.parquet' (format parquet)\")
" 2>&1 | tail -1
  echo "== q$n duckdb 256MB"
  /usr/bin/time -f "duckdb-256MB q$n: %e s, peak RSS %M KB" $PY -c "
import duckdb
con=duckdb.connect(config={'threads': 2, 'memory_limit': '256MB', 'temp_directory': '$OUT/duck-spill'})
con.execute(\"create view lineitem as select * from '$D/lineitem.parquet'\")
con.execute(\"copy ($Q) to '$OUT/duck${n}m.parquet' (format parquet)\")
" 2>&1 | tail -1
  $PY -c "
import duckdb
con=duckdb.connect(config={'threads': 2})
col = 'moving_avg' if $n == 1 else 'running'
r = con.sql(f\"\"\"select count(*), count(*) filter (where o.{col} is distinct from d.{col} and not (abs(o.{col} - d.{col}) <= 1e-9 * greatest(1, abs(d.{col})))) from '$OUT/ooc$n.parquet' o full join '$OUT/duck$n.parquet' d using (l_orderkey, l_linenumber)\"\"\").fetchall()
print('q$n rows, differing rows:', r)
"
done
