-- COUNT(DISTINCT) over a high-cardinality string column.
SELECT count(DISTINCT l_comment) AS comments
FROM lineitem
