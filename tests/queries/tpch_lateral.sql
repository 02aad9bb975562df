-- LATERAL: an aggregate per outer row (one row each, a count of 0 and NULL sums where there
-- are none, an inequality in the correlation), the top two orders per customer (ORDER BY ...
-- LIMIT ... OFFSET inside, numbered per customer), a LEFT JOIN LATERAL that keeps customers
-- without a match, and a lateral correlated with two FROM items.
SELECT 'agg' AS form, c_custkey AS k, t.n AS a, t.s AS b
FROM customer, LATERAL (SELECT count(*) AS n, sum(o_totalprice) AS s FROM orders
                         WHERE o_custkey = c_custkey AND o_totalprice > c_acctbal * 20) t
WHERE c_custkey <= 40
UNION ALL
SELECT 'top2', c_custkey, t.o_orderkey, t.o_totalprice
FROM customer CROSS JOIN LATERAL (SELECT o_orderkey, o_totalprice FROM orders
                                   WHERE o_custkey = c_custkey
                                   ORDER BY o_totalprice DESC, o_orderkey
                                   LIMIT 2 OFFSET 1) t
WHERE c_custkey <= 40
UNION ALL
SELECT 'left', c_custkey, t.o_orderkey, NULL
FROM customer LEFT JOIN LATERAL (SELECT o_orderkey FROM orders
                                  WHERE o_custkey = c_custkey AND o_totalprice > 400000) t ON true
WHERE c_custkey <= 40
UNION ALL
SELECT 'two_items', n_nationkey, x.a, x.b
FROM nation n, region r,
     LATERAL (SELECT count(*) AS a, count(c_phone) AS b FROM customer
               WHERE c_nationkey = n_nationkey AND r.r_regionkey = n.n_regionkey
                 AND c_acctbal < r_regionkey * 1000) x
WHERE r_name IN ('ASIA', 'EUROPE')
ORDER BY form, k, a, b;
