-- Two-argument aggregates: covariances, correlation and arg_min/arg_max (also min_by and
-- with FILTER), grouped and over decimals, integers and dates.
SELECT o_orderpriority,
       corr(o_totalprice, o_custkey) AS r,
       covar_pop(o_totalprice, o_shippriority + o_custkey) AS cp,
       covar_samp(o_custkey, o_totalprice) AS cs,
       arg_min(o_orderkey, o_totalprice) AS cheapest,
       arg_max(o_orderdate, o_totalprice) AS priciest_day,
       min_by(o_clerk, o_orderkey) AS first_clerk,
       arg_max(o_orderkey, o_totalprice) FILTER (WHERE o_orderstatus = 'F') AS priciest_f,
       corr(o_totalprice, o_totalprice) AS self_r
FROM orders
GROUP BY o_orderpriority
ORDER BY o_orderpriority;
