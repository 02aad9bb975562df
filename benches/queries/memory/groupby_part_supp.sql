-- A two-key group-by: about 800k (part, supplier) pairs per scale factor unit.
SELECT l_partkey, l_suppkey, sum(l_quantity) AS qty, avg(l_discount) AS avg_discount,
       count(*) AS n
FROM lineitem
GROUP BY l_partkey, l_suppkey
