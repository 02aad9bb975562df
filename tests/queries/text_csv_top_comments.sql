-- Strings with embedded commas (quoted by DuckDB's writer), a filter and a top-k.
SELECT l_orderkey, l_linenumber, l_comment, l_shipinstruct
FROM read_csv_auto('tests/fixtures/text/lineitem.csv.gz')
WHERE l_comment LIKE '%,%' OR l_comment LIKE '%"%'
ORDER BY l_comment, l_orderkey, l_linenumber
LIMIT 20;
