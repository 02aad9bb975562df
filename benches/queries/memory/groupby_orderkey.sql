-- A huge group-by: one group per order (1.5M per scale factor unit).
SELECT l_orderkey, sum(l_quantity) AS qty, sum(l_extendedprice * (1 - l_discount)) AS revenue,
       count(*) AS n
FROM lineitem
GROUP BY l_orderkey
