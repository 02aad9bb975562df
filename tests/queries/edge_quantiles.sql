-- Exact quantiles per group and over everything: median, quantile_cont, quantile_disc and the
-- standard WITHIN GROUP spelling, beside ordinary and DISTINCT aggregates, over integers,
-- doubles and decimals, with NULLs and a group without values.
SELECT o_orderpriority,
       median(o_totalprice) AS med_price,
       quantile_cont(o_custkey, 0.9) AS p90_cust,
       quantile_disc(o_custkey, 0.25) AS q1_cust,
       percentile_cont(0.75) WITHIN GROUP (ORDER BY o_shippriority + 0.5) AS p75_ship,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY o_orderdate) AS mid_date,
       median(CASE WHEN o_orderstatus = 'X' THEN o_totalprice END) AS none_here,
       count(*) AS n,
       count(DISTINCT o_custkey) AS customers,
       sum(o_totalprice) AS total
FROM orders
GROUP BY o_orderpriority
ORDER BY o_orderpriority;
