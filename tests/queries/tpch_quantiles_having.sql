SELECT l_suppkey, median(l_quantity) AS med_qty, count(*) AS n
FROM lineitem
GROUP BY l_suppkey
HAVING median(l_quantity) >= 27 AND count(*) > 60
ORDER BY med_qty DESC, l_suppkey
LIMIT 15;
