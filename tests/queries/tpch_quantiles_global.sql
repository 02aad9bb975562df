-- Quantiles without GROUP BY (one partition of all the rows) and in a HAVING clause.
SELECT median(l_extendedprice) AS med,
       quantile_cont(l_discount, 0.333) AS q_disc,
       quantile_disc(l_shipdate, 0.9) AS late_ship,
       quantile_disc(l_comment, 0.5) AS mid_comment,
       avg(l_quantity) AS avg_qty
FROM lineitem
WHERE l_quantity > 10;
