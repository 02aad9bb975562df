-- A full sort of lineitem, every column, written to Parquet.
SELECT *
FROM lineitem
ORDER BY l_shipdate, l_orderkey, l_linenumber
