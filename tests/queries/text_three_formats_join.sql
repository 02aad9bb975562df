-- A gzip CSV (header), a headerless TSV and a zstd NDJSON file joined with a Parquet table.
SELECT c.c_mktsegment, n.n_name,
       count(*) AS lines,
       sum(l.l_quantity) AS qty,
       max(o.column3) AS max_total
FROM 'tests/fixtures/text/lineitem.csv.gz' l
JOIN read_csv('tests/fixtures/text/orders.tsv', delim = '\t', header = false) o
  ON o.column0 = l.l_orderkey
JOIN read_ndjson('tests/fixtures/text/customer.ndjson.zst') c ON c.c_custkey = o.column1
JOIN nation n ON n.n_nationkey = c.c_nationkey
WHERE l.l_shipmode IN ('MAIL', 'SHIP', 'AIR')
GROUP BY c.c_mktsegment, n.n_name
ORDER BY lines DESC, c.c_mktsegment, n.n_name
LIMIT 12;
